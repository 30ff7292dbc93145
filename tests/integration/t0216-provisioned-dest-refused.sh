#!/usr/bin/env bash
# What 'move --dest-provisioner' refuses before anything changes (exit 2 or
# 3, the domain, its files, the destination and the journal's jobs as they
# were, no provisioner run): a provisioner that is not root's, or under a
# folder others can write; a bad --set; --set without a provisioner;
# --dest-dev with --dest-provisioner; --offline; a disk with a backing chain
# without --flatten; a --dest-pool that is a folder given with --dest, and a
# logical one without --dest.  Then provisioners that run and fail the
# move: one that exits 1, one that prints /dev/null, one that prints a
# device too small (someone else's loop device: asked to remove it, the
# provisioner leaves it, and it is untouched), and one that makes the first
# disk's device and fails the second's: each move exits 1, no snapshot was
# taken (the domain is on its files, no overlay, nothing in the destination),
# the job is aborted and no device of the job is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

mkdir -m 755 "$H/prov"
P=$H/prov/loop
install -m 0755 "$TOP/contrib/provisioners/loop" "$P"
LD=$T/loop
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"

jv() {  # SQL: one value of this test's journal
	sqlite3 "$DB" "$1"
}
ours() {  # the loop devices attached to a file of $LD
	losetup --list --noheadings --output NAME,BACK-FILE | awk -v d="$LD/" 'index($2, d) == 1 { print $1 }'
}

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/a.raw" raw 32M 0x11 0 1M
new_image "$T/src/base.qcow2" qcow2 32M 0x21 0 1M
new_overlay "$T/src/b.qcow2" "$T/src/base.qcow2" qcow2 0x22 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/a.raw:raw" "vdb:$T/src/b.qcow2:qcow2"
journal_init
save_state all "$dom" vda "$T/src" "$T/dst"

# refused NAME EXIT TEXT ARGS...: move exits EXIT saying TEXT; nothing changed,
# no provisioner ran.
refused() {
	local name=$1 want=$2 text=$3
	shift 3
	expect_exit "$want" sm move "$dom" --dest "$T/dst" "$@"
	assert_contains "$T/err" "$text"
	[ ! -s "$T/out" ] || fail "$name: printed on stdout"
	assert_unchanged all
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device") $(jv "SELECT count(*) FROM provision_run")" \
		"0 0" "$name: devices and runs journaled"
	assert_eq "$(ours)" "" "$name: loop devices"
}

case_not_roots() {
	install -m 0755 -o nobody "$TOP/contrib/provisioners/loop" "$H/prov/nobodys"
	refused "not root's" 3 "provisioner '$H/prov/nobodys' is not owned by root" --disk vda \
		--dest-provisioner "$H/prov/nobodys" --set "LOOP_DIR=$LD"
	assert_contains "$T/err" "snapmove: nothing was changed"
	install -m 0775 "$TOP/contrib/provisioners/loop" "$H/prov/groupw"
	refused "group-writable" 3 "provisioner '$H/prov/groupw' is writable by group or others" \
		--disk vda --dest-provisioner "$H/prov/groupw"
	# $T is under /var/tmp, which everyone may write.
	install -m 0755 "$TOP/contrib/provisioners/loop" "$T/loopcopy"
	refused "under /var/tmp" 3 "folder '/var/tmp' above the provisioner folder '$T' is writable by group or others" \
		--disk vda --dest-provisioner "$T/loopcopy"
	refused "missing" 3 "'$H/prov/none'" --disk vda --dest-provisioner "$H/prov/none"
}
run_case "a provisioner that is not root's alone, or missing" case_not_roots

case_usage() {
	refused "bad --set" 2 "--set takes KEY=VALUE for the provisioner" --disk vda \
		--dest-provisioner "$P" --set "loop_dir=$LD"
	refused "reserved --set" 2 "not 'JOB=7'" --disk vda --dest-provisioner "$P" --set JOB=7
	refused "--set alone" 2 "--set is for the provisioner; it needs --dest-provisioner PROG" \
		--disk vda --set "LOOP_DIR=$LD"
	refused "both" 2 "--dest-dev names the devices and --dest-provisioner makes them; give one of the two" \
		--disk vda --dest-provisioner "$P" --dest-dev vda=/dev/loop0
	refused "offline" 2 "--dest-provisioner moves a running domain only" --disk vda \
		--dest-provisioner "$P" --offline
}
run_case "usage errors: --set, --dest-dev with --dest-provisioner, --offline" case_usage

case_dry_run() {
	expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --dest-provisioner "$P" \
		--set "LOOP_DIR=$LD" --dry-run
	assert_contains "$T/out" "dry run: nothing was changed"
	assert_contains "$T/out" "(a block device of 33554432 bytes that '$P' makes)"
	# The same as a document (checked against the schema when the test ends).
	expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --dest-provisioner "$P" \
		--set "LOOP_DIR=$LD" --dry-run --json
	assert_contains "$T/out" "a block device of 33554432 bytes"
	assert_unchanged all
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device") $(jv "SELECT count(*) FROM provision_run")" \
		"0 0" "dry run: devices and runs journaled"
	assert_eq "$(ours)" "" "dry run: loop devices"
}
run_case "--dry-run: the device it would ask for, none made" case_dry_run

case_chain() {
	refused "chain" 3 "disk 'vdb' has a backing chain and a device takes one image; add --flatten" \
		--disk vdb --dest-provisioner "$P" --set "LOOP_DIR=$LD"
}
run_case "a disk with a backing chain, without --flatten" case_chain

# Pools: a folder pool with --dest; a logical pool (defined only: this
# kernel has no device-mapper) without --dest.
fpool=smt-0216-$$-dir
lpool=smt-0216-$$-lvm
virsh -q pool-define-as "$fpool" dir --target "$T/dst" >/dev/null
defer "virsh -q pool-undefine '$fpool'"
virsh -q pool-start "$fpool" >/dev/null
defer "virsh -q pool-destroy '$fpool'"
virsh -q pool-define-as "$lpool" logical --source-name "smt0216vg$$" --target "/dev/smt0216vg$$" >/dev/null
defer "virsh -q pool-undefine '$lpool'"
case_pools() {
	refused "folder pool and --dest" 3 "storage pool '$fpool' is a folder: give --dest-pool or --dest, not both" \
		--disk vda --dest-pool "$fpool"
	expect_exit 3 sm move "$dom" --dest-pool "$lpool" --disk vda
	assert_contains "$T/err" "storage pool '$lpool' is a logical pool: its volumes take the disks' images, and the overlays need a folder; add --dest DIR"
	assert_unchanged all
	refused "logical pool and a provisioner" 2 "give --dest-pool or --dest-provisioner, not both" \
		--disk vda --dest-pool "$lpool" --dest-provisioner "$P"
}
run_case "--dest-pool: a folder pool with --dest, a logical pool without" case_pools

# Provisioners that run and fail the move.
fake() {  # NAME BODY: a provisioner whose create runs BODY, whose remove does nothing
	printf '#!/bin/sh\ncase $1 in\ncreate) %s ;;\nremove) exit 0 ;;\nesac\n' "$2" >"$H/prov/$1"
	chmod 755 "$H/prov/$1"
}
# Someone else's loop device, too small for vda (1 MiB), with data on it.
qemu-img create -q -f raw "$T/other.img" 1M
qemu-io -f raw -c "write -P 0x77 0 1M" "$T/other.img" >/dev/null
other=$(losetup --find --show "$T/other.img")
defer "losetup -d $other"
fake fails 'echo "no space in the pool" >&2; exit 1'
fake devnull 'echo /dev/null'
fake small "echo $other"
# The real loop provisioner for vda's device, a failure for vdb's.
printf '#!/bin/sh\ncase "$2" in\n*-vdb) echo "cannot make $2" >&2; exit 1 ;;\nesac\nexec %s "$@"\n' \
	"$P" >"$H/prov/second"
chmod 755 "$H/prov/second"

# failed_move NAME TEXT ARGS...: the move exits 1 saying TEXT; no snapshot,
# the job aborted, none of its devices left.
failed_move() {
	local name=$1 text=$2
	shift 2
	expect_exit 1 sm move "$dom" --dest "$T/dst" --set "LOOP_DIR=$LD" "$@"
	job=$(jv "SELECT max(id) FROM job")
	cp "$T/err" "$T/move.err"
	assert_contains "$T/err" "$text"
	assert_eq "$(live_chain "$dom" vda)" "$T/src/a.raw raw" "$name: vda's chain"
	assert_eq "$(live_chain "$dom" vdb | tr '\n' ' ')" "$T/src/b.qcow2 qcow2 $T/src/base.qcow2 qcow2 " \
		"$name: vdb's chain"
	assert_eq "$(ls -A "$T/dst")" "" "$name: files in the destination"
	assert_eq "$(ls -A "$T/src" | tr '\n' ' ')" "a.raw b.qcow2 base.qcow2 " "$name: files in the source"
	assert_eq "$(jv "SELECT state || ' ' || phase FROM job WHERE id = $job")" "aborted planned" \
		"$name: the job"
	assert_eq "$(jv "SELECT count(*) FROM step WHERE job_id = $job")" 0 "$name: phases run"
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device WHERE job_id = $job AND state NOT IN ('removed', 'failed')")" \
		0 "$name: devices of the job left"
	assert_eq "$(ours)" "" "$name: loop devices"
	expect_exit 3 sm abort "$job"
	assert_contains "$T/err" "job $job is aborted; there is nothing to abort"
}

case_fails() {
	failed_move "exits 1" "provisioner '$H/prov/fails' (create) exited 1: no space in the pool" \
		--disk vda --dest-provisioner "$H/prov/fails"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE job_id = $job")" failed "the device's state"
}
run_case "a provisioner that fails" case_fails

case_devnull() {
	failed_move "/dev/null" "printed '/dev/null', which is a character device, not a block device" \
		--disk vda --dest-provisioner "$H/prov/devnull"
}
run_case "a provisioner that prints /dev/null" case_devnull

case_small() {
	failed_move "too small" "provisioner '$H/prov/small' printed '$other', a device of 1.0 MiB, smaller than" \
		--disk vda --dest-provisioner "$H/prov/small"
	# Someone else's device: snapmove only asked its provisioner.
	[ -b "$other" ] || fail "'$other' is gone"
	assert_eq "$(losetup --list --noheadings --output BACK-FILE "$other" | sed 's/ *$//')" \
		"$T/other.img" "the other loop device's file"
	check_pattern "$other" raw 0x77 0 1M
}
run_case "a provisioner that prints a device too small" case_small

case_second_fails() {
	failed_move "second disk" "-vdb" --disk vda --disk vdb \
		--flatten --dest-provisioner "$H/prov/second"
	# vda's device was made, then removed again.
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE job_id = $job AND name LIKE '%-vda'")" \
		removed "vda's device"
	assert_contains "$T/move.err" "cannot make snapmove-$job-vdb"
	assert_contains "$T/move.err" "removed device"
	assert_absent "$LD/snapmove-$job-vda"
}
run_case "the second disk's device fails: the first's is removed" case_second_fails

# snapmove killed while the provisioner makes the device (it kills its
# parent once the loop device exists, the first time): the device's row is the job's,
# 'creating'; resume refuses, abort asks create again (which hands back the
# same device) and removes it.
printf '#!/bin/sh\n%s "$@"\nrc=$?\nif [ "$1" = create ] && [ ! -e %s ]; then : >%s; kill -9 $PPID; fi\nexit $rc\n' \
	"$P" "$T/crashed" "$T/crashed" >"$H/prov/crash"
chmod 755 "$H/prov/crash"
expect_exit 137 sm move "$dom" --dest "$T/dst" --disk vda --dest-provisioner "$H/prov/crash" \
	--set "LOOP_DIR=$LD"
cjob=$(jv "SELECT max(id) FROM job")
case_crash() {
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE job_id = $cjob")" creating \
		"the device after the crash"
	[ -n "$(ours)" ] || fail "the crashed create left no loop device (the case tests nothing)"
	expect_refused "job $cjob stopped while its provisioner was making its destination devices" \
		sm resume "$cjob"
	expect_exit 0 sm abort "$cjob"
	assert_contains "$T/err" "removed device"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE job_id = $cjob")" removed \
		"the device after abort"
	assert_eq "$(jv "SELECT group_concat(op, ' ') FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = $cjob")" \
		"create remove" "the runs journaled (the crashed create was not)"
	assert_eq "$(live_chain "$dom" vda)" "$T/src/a.raw raw" "vda after abort"
	assert_eq "$(ls -A "$T/dst")" "" "files in the destination after abort"
}
run_case "snapmove killed inside create: resume refuses, abort removes the device" case_crash

assert_eq "$(ours)" "" "loop devices of this test left attached"
cases_done
