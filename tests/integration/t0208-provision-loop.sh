#!/usr/bin/env bash
# The loop provisioner (contrib/provisioners/loop) run through 'snapmove
# provision': create a 64 MiB device, which is a real loop block device a
# running domain uses as a <disk type='block'> (written through QEMU, read
# back), extend it to 128 MiB (the kernel's size grows, QEMU follows with
# blockresize, the data stays), remove it (device detached, file gone), each
# run journaled.  Then what snapmove refuses: a provisioner printing a
# symbolic link (outside /dev, or in /dev/shm which others can write), a
# regular file, a character device, a device too small; 'remove' of a loop
# device snapmove did not make, and of one whose journal row was edited to
# name another loop device (the provisioner itself refuses); a provisioner in
# a group-writable folder or under /var/tmp; --pool of a pool that is not a
# logical one; usage errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

# The shipped provisioner, in a folder only root can write ($H, under
# /var/lib); its loop files in $LD.
P=$H/prov/loop
mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/loop" "$P"
LD=$H/loop
# Whatever is left attached to a file of $LD is detached when the test ends
# (before $H goes).
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"

size_of() {  # DEVICE: its size in bytes, as the kernel says
	blockdev --getsize64 "$1"
}
backing() {  # DEVICE: its backing file, as losetup says
	losetup --list --noheadings --output BACK-FILE "$1" 2>/dev/null | sed 's/^ *//; s/ *$//'
}
jv() {  # SQL: one value of this test's journal
	sqlite3 "$DB" "$1"
}

N=t0208-$$-vdb
expect_exit 0 sm provision create "$N" 64M --provisioner "$P" --set "LOOP_DIR=$LD"
dev=$(cat "$T/out")
assert_contains "$T/err" "made by '$P'"
# Names the attacks plant under /dev, removed whatever happens.
defer "rm -f /dev/shm/t0208-$$ /dev/t0208-$$-out /dev/t0208-$$-file"

case_created() {
	case "$dev" in /dev/loop[0-9]*) ;; *) fail "create printed '$dev', not a loop device" ;; esac
	[ -b "$dev" ] && [ ! -L "$dev" ] || fail "'$dev' is not a block device"
	[ "$(size_of "$dev")" -ge 67108864 ] || fail "'$dev' is $(size_of "$dev") bytes, not 64 MiB"
	assert_eq "$(backing "$dev")" "$LD/$N" "the backing file of $dev"
	assert_eq "$(stat -c '%a %U' "$LD")" "700 root" "the loop folder"
	assert_eq "$(cat "$LD/$N.owner")" "device=1" "the owner file"
	assert_eq "$(jv "SELECT state || ' ' || path || ' ' || bytes || ' ' || size FROM provisioned_device WHERE id = 1")" \
		"created $dev 67108864 67108864" "the journaled device"
	assert_eq "$(jv "SELECT rdev FROM provisioned_device WHERE id = 1")" \
		"$(( 0x$(stat -c %t "$dev") * 256 + 0x$(stat -c %T "$dev") ))" "the journaled device number"
	assert_eq "$(jv "SELECT op || ' ' || argument || ' ' || bytes || ' ' || exit_status FROM provision_run WHERE device_id = 1")" \
		"create $N 67108864 0" "the journaled run"
	sm provision list >"$T/list"
	assert_contains "$T/list" "created"
	assert_contains "$T/list" "$dev ($P)"
}
run_case "create: a loop device of 64 MiB, journaled" case_created

# A domain with a small file disk and the provisioned device as vdb, a
# <disk type='block'> (its machine has no hotplug: the disk is there from
# the start).
mkdir -m 755 "$T/src"
new_image "$T/src/vda.qcow2" qcow2 16M
dom=$(dom_name)
make_domain_xml "$dom" transient "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$T/src/vda.qcow2'/><target dev='vda' bus='virtio'/></disk><disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='$dev'/><target dev='vdb' bus='virtio'/></disk>"

case_domain_uses_it() {
	xml=$(virsh dumpxml "$dom")
	[ "$(xmllint --xpath "string(//devices/disk[target/@dev='vdb']/@type)" - <<<"$xml")" = block ] ||
		fail "vdb is not a block disk"
	assert_eq "$(xmllint --xpath "string(//devices/disk[target/@dev='vdb']/source/@dev)" - <<<"$xml")" \
		"$dev" "vdb's source"
	guest_write "$dom" vdb 0x5a 0 1M
	guest_write "$dom" vdb 0xa5 60M 1M
	# What QEMU wrote is on the device.
	check_pattern "$dev" raw 0x5a 0 1M
	check_pattern "$dev" raw 0xa5 60M 1M
}
run_case "a running domain uses it as <disk type='block'>: written, read back" case_domain_uses_it

case_extend() {
	expect_exit 0 sm provision extend "$dev" 128M
	assert_contains "$T/out" "is now 128.0 MiB"
	assert_eq "$(size_of "$dev")" 134217728 "the device's size after extend"
	assert_eq "$(stat -c %s "$LD/$N")" 134217728 "the backing file's size"
	assert_eq "$(jv "SELECT bytes || ' ' || size FROM provisioned_device WHERE id = 1")" \
		"134217728 134217728" "the journaled size"
	# QEMU is told; the guest's data stayed.
	virsh -q blockresize "$dom" vdb 128M >/dev/null
	assert_eq "$(virsh domblkinfo "$dom" vdb | awk '/Capacity/ { print $2 }')" 134217728 \
		"vdb's capacity in QEMU"
	guest_write "$dom" vdb 0x3c 127M 1M
	check_pattern "$dev" raw 0x5a 0 1M
	check_pattern "$dev" raw 0x3c 127M 1M
	# Devices only grow.
	expect_refused "devices only grow" sm provision extend "$dev" 64M
}
run_case "extend to 128 MiB: the device grows, QEMU follows" case_extend

# Attacks: a provisioner that prints what snapmove must not use.  Each is a
# root-owned script in $H/prov; the device it "made" is failed in the
# journal, nothing is printed on stdout, exit 1 (it ran).
fake() {  # NAME BODY: a provisioner whose create runs BODY
	printf '#!/bin/sh\ncase $1 in\ncreate) %s ;;\nesac\n' "$2" >"$H/prov/$1"
	chmod 755 "$H/prov/$1"
}
bad_output() {  # NAME SIZE WHY
	expect_exit 1 sm provision create "$1" "$2" --provisioner "$H/prov/$1"
	assert_contains "$T/err" "$3"
	[ ! -s "$T/out" ] || fail "a refused device was printed: $(cat "$T/out")"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE name = '$1'")" failed \
		"the journaled state of '$1'"
	jv "SELECT error FROM provisioned_device WHERE name = '$1'" | grep -qF -- "$3" ||
		fail "the journaled error of '$1' does not say '$3'"
}

case_symlink() {
	ln -s "$dev" "$T/link"
	fake link-out "echo '$T/link'"
	bad_output link-out 1M "printed '$T/link', which is not a plain path under /dev"
	ln -s "$dev" "/dev/shm/t0208-$$"
	fake link-shm "echo /dev/shm/t0208-$$"
	bad_output link-shm 1M "folder '/dev/shm' is writable by group or others"
	rm -f "/dev/shm/t0208-$$"
	# A link under /dev (root's) that leads out of /dev.
	ln -s "$LD/$N" "/dev/t0208-$$-out"
	fake link-dev "echo /dev/t0208-$$-out"
	bad_output link-dev 1M "a link to '$LD/$N', outside /dev"
	rm -f "/dev/t0208-$$-out"
}
run_case "a provisioner printing a symbolic link is refused" case_symlink

case_not_block() {
	: >"/dev/t0208-$$-file"
	fake regular "echo /dev/t0208-$$-file"
	bad_output regular 1M "which is a regular file, not a block device"
	rm -f "/dev/t0208-$$-file"
	fake chardev "echo /dev/null"
	bad_output chardev 1M "which is a character device, not a block device"
	fake chatty "echo made it; echo $dev"
	bad_output chatty 1M "printed more than one line"
}
run_case "a provisioner printing a regular file or a character device is refused" case_not_block

case_too_small() {
	fake small "echo $dev"
	bad_output small 1G "a device of 128.0 MiB, smaller than the 1.0 GiB asked for"
	# Asked again: the same row, not a new one.
	bad_output small 1G "smaller than the"
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device WHERE name = 'small'")" 1 "rows of 'small'"
	assert_eq "$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.name = 'small'")" \
		2 "runs of 'small'"
}
run_case "a provisioner printing a device too small is refused" case_too_small

# A loop device this test attaches by hand: not snapmove's.
truncate -s 8M "$T/other.img"
other=$(losetup --find --show "$T/other.img")
defer "losetup -d '$other'"

case_not_ours() {
	expect_refused "'$other' is not a device snapmove provisioned" sm provision remove "$other"
	expect_refused "no provisioned device 99" sm provision remove 99
	expect_refused "'$other' is not a device snapmove provisioned" sm provision extend "$other" 16M
	assert_eq "$(backing "$other")" "$T/other.img" "the other loop device"
	# The journal edited to name the other device, number and all: snapmove
	# asks the provisioner, which finds the device is not its file's, and
	# refuses; the device stays.
	rdev=$(( 0x$(stat -c %t "$other") * 256 + 0x$(stat -c %T "$other") ))
	jv "INSERT INTO provisioned_device (provisioner, settings, name, path, rdev, bytes, size, state, created_at, updated_at) VALUES ('$P', 'SNAPMOVE_LOOP_DIR=$LD', 'forged', '$other', $rdev, 8388608, 8388608, 'created', 0, 0)"
	expect_exit 1 sm provision remove "$other"
	assert_contains "$T/err" "loop: '$other' is not the loop device of '$LD/forged'"
	assert_eq "$(backing "$other")" "$T/other.img" "the other loop device after a forged remove"
	jv "DELETE FROM provisioned_device WHERE name = 'forged'"
}
run_case "remove of a device snapmove did not make is refused" case_not_ours

case_untrusted_folder() {
	mkdir -m 775 "$H/gw"
	install -m 0755 "$P" "$H/gw/loop"
	before=$(jv "SELECT count(*) FROM provisioned_device")
	expect_refused "provisioner folder '$H/gw' is writable by group or others; provisioners run as root" \
		sm provision create t0208-gw 1M --provisioner "$H/gw/loop" --set "LOOP_DIR=$LD"
	mkdir -m 755 "$T/tmpprov"
	install -m 0755 "$P" "$T/tmpprov/loop"
	expect_refused "folder '/var/tmp' above the provisioner folder '$T/tmpprov' is writable by group or others" \
		sm provision create t0208-tmp 1M --provisioner "$T/tmpprov/loop" --set "LOOP_DIR=$LD"
	chmod 775 "$P"
	expect_refused "provisioner '$P' is writable by group or others" \
		sm provision create t0208-w 1M --provisioner "$P" --set "LOOP_DIR=$LD"
	chmod 755 "$P"
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device")" "$before" "device rows"
	assert_absent "$LD/t0208-gw"
	assert_absent "$LD/t0208-tmp"
	assert_absent "$LD/t0208-w"
}
run_case "a provisioner in a group-writable folder, or under /var/tmp, is refused" case_untrusted_folder

case_usage() {
	before=$(jv "SELECT count(*) FROM provision_run")
	L=LOOP_DIR=$LD
	expect_exit 2 sm provision create x 1M --set "$L"
	assert_contains "$T/err" "needs --provisioner PROG"
	expect_exit 2 sm provision create x 1Q --provisioner "$P" --set "$L"
	assert_contains "$T/err" "SIZE is a number of bytes"
	expect_exit 2 sm provision create x 0 --provisioner "$P" --set "$L"
	expect_exit 2 sm provision create ../x 1M --provisioner "$P" --set "$L"
	assert_contains "$T/err" "is not a device name"
	expect_exit 2 sm provision create x 1M --provisioner "$P" --set "$L" --set path=/tmp
	assert_contains "$T/err" "--set takes KEY=VALUE"
	expect_exit 2 sm provision create x 1M --provisioner "$P" --set "$L" --set JOB=3
	expect_exit 2 sm provision create x 1M --provisioner "$P" --set "$L" --set 'A=b
c'
	expect_exit 2 sm provision create x 1M --provisioner "$P" --set "$L" --timeout 0
	expect_exit 2 sm provision remove "$dev" --provisioner "$P"
	assert_contains "$T/err" "takes no --provisioner"
	expect_exit 2 sm provision destroy "$dev"
	assert_contains "$T/err" "no provision command 'destroy'"
	expect_exit 2 sm provision list --json
	expect_exit 2 sm provision create x 1M --provisioner "$P" --pool default --set "$L"
	assert_contains "$T/err" "one of them"
	assert_eq "$(jv "SELECT count(*) FROM provision_run")" "$before" "provisioner runs"
	assert_absent "$LD/x"
}
run_case "usage errors: exit 2, nothing run" case_usage

# A dir pool (transient, removed at exit): not a logical one.
pool=smt0208-$$
mkdir -m 755 "$T/pool"
virsh -q pool-create-as "$pool" dir --target "$T/pool" >/dev/null
defer "virsh -q pool-destroy '$pool'"
case_pool_not_logical() {
	before=$(jv "SELECT count(*) FROM provisioned_device")
	expect_refused "storage pool '$pool' is of type 'dir'" sm provision create x 1M --pool "$pool"
	expect_refused "no storage pool named 'smt0208-none-$$'" sm provision create x 1M --pool "smt0208-none-$$"
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device")" "$before" "device rows"
}
run_case "--pool of a pool that is not logical is refused" case_pool_not_logical

case_remove() {
	# The domain lets go of it first.
	virsh -q destroy "$dom" >/dev/null
	expect_exit 0 sm provision remove "$dev"
	assert_contains "$T/out" "device 1 removed"
	assert_eq "$(backing "$dev")" "" "the backing file of $dev after remove"
	assert_absent "$LD/$N"
	assert_absent "$LD/$N.owner"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = 1")" removed "the journaled state"
	assert_eq "$(jv "SELECT group_concat(op || ':' || exit_status, ' ') FROM provision_run WHERE device_id = 1 ORDER BY id")" \
		"create:0 extend:0 remove:0" "the journaled runs"
	# Removed: not again (the path names no created device any more).
	expect_refused "is not a device snapmove provisioned" sm provision remove "$dev"
}
run_case "remove: detached, its file gone, journaled" case_remove

cases_done
