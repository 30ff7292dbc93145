#!/usr/bin/env bash
# Two disks move and one of them fails half-way (its destination image is
# deleted, or made immutable, when the copy starts): the other disk finishes
# on the destination, the failed one stays on its source overlay over its
# original image (live and in the persistent definition), 'move' exits 1 and
# says which disk is where, 'snapmove status' shows the same, and once the
# cause is gone 'snapmove resume' finishes the failed disk.  Every guest
# write to both disks is on the destination at the end.
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name deleted)" "$(dom_name pivot)" "$(dom_name immutable)")

# The hook: at the copy, the guest writes to both disks; at PHASE, BREAK runs.
make_hook() {  # PHASE BREAK
	cat >"$C/hook" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
[ "\$1" = '$1' ] && { $2; }
[ "\$1" = copy ] || exit 0
for spec in vda:0x21 vdb:0x22; do
	alias=\$(virsh dumpxml '$DOM' |
		xmllint --xpath "string(//devices/disk[target/@dev='\${spec%%:*}']/alias/@name)" -)
	virsh -q qemu-monitor-command '$DOM' --hmp \
		"qemu-io -d \$alias/virtio-backend \"write -P \${spec#*:} 2M 64k\"" >/dev/null
done
HOOK
	chmod 755 "$C/hook"
}

# one_fails NAME PHASE STATE BREAK FIX REASON: the case.  BREAK runs at the
# start of PHASE, and vdb must then stop in STATE, saying REASON; FIX (a shell
# string) removes the cause.
one_fails() {
	local name=$1 phase=$2 state=$3 break=$4 fix=$5 reason=$6 rc=0
	C=$T/$name
	DB=$C/j.db
	DOM=$(dom_name "$name")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0x11 0 1M
	new_overlay "$C/src/a.qcow2" base.raw raw 0x12 1M 1M
	new_image "$C/src/b.img" raw 64M 0x13 0 1M
	make_domain "$DOM" persistent "vda:$C/src/a.qcow2:qcow2" "vdb:$C/src/b.img:raw"
	make_hook "$phase" "$break"

	SNAPMOVE_TEST_HOOK=$C/hook sm move "$DOM" --dest "$C/dst" --parallel 2 \
		>"$C/move.out" 2>"$C/move.err" || rc=$?
	[ "$rc" = 1 ] || { cat "$C/move.out" "$C/move.err" >&2; fail "move exited $rc, expected 1"; }
	# The report: which disk is where, and why vdb stopped.
	assert_contains "$C/move.err" "  vdb: stopped: $reason"
	assert_contains "$C/move.err" "  vda: done ($C/dst/a.qcow2), moved"
	assert_contains "$C/move.err" "  vdb: $state ($C/dst/b.img.snapmove-1.src.qcow2), runs on its source overlay over the original image; stopped: $reason"
	assert_contains "$C/move.err" "snapmove: error: disk 'vdb' stopped: $reason"
	assert_contains "$C/move.err" "snapmove resume 1"
	grep -q "  vda: stopped" "$C/move.err" && fail "vda is reported stopped"

	# The world: vda moved, vdb on its overlay over the original, no job.
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/a.qcow2 qcow2
$C/dst/base.raw raw" "vda's chain after the failure"
	assert_eq "$(live_chain "$DOM" vdb)" "$C/dst/b.img.snapmove-1.src.qcow2 qcow2
$C/src/b.img raw" "vdb's chain after the failure"
	assert_eq "$(block_job_count "$DOM" vda)$(block_job_count "$DOM" vdb)" 00 "block jobs"
	assert_eq "$(live_chain "$DOM" vda --inactive | head -n1)" "$C/dst/a.qcow2 qcow2" \
		"vda's definition after the failure"
	assert_eq "$(live_chain "$DOM" vdb --inactive | head -n1)" \
		"$C/dst/b.img.snapmove-1.src.qcow2 qcow2" "vdb's definition after the failure"
	assert_absent "$C/dst/a.qcow2.snapmove-1.src.qcow2"
	assert_absent "$C/dst/a.qcow2.snapmove-1.qcow2"
	sm status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: failed, phase "
	assert_contains "$C/status.out" "  vda: done"
	assert_contains "$C/status.out" "  vdb: $state: $reason"

	# The guest goes on writing (vdb into its source overlay).
	guest_write "$DOM" vda 0x31 3M 64k
	guest_write "$DOM" vdb 0x32 3M 64k

	eval "$fix"
	expect_exit 0 sm resume 1
	assert_contains "$T/out" "finished job 1 of domain $DOM"
	assert_contains "$T/out" "vdb now: $C/dst/b.img (raw)"
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/a.qcow2 qcow2
$C/dst/base.raw raw" "vda's chain after resume"
	assert_eq "$(live_chain "$DOM" vdb)" "$C/dst/b.img raw" "vdb's chain after resume"
	assert_eq "$(live_chain "$DOM" vdb --inactive)" "$C/dst/b.img raw" "vdb's definition after resume"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "a.qcow2 b.img base.raw " "source files after resume"
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" "a.qcow2 b.img base.raw " "destination files after resume"
	sm status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: done, phase done"
	assert_contains "$C/status.out" "  vdb: done"

	guest_write "$DOM" vdb 0x42 4M 64k
	virsh -q destroy "$DOM" >/dev/null
	for spec in "0x11 0 1M" "0x12 1M 1M" "0x21 2M 64k" "0x31 3M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/a.qcow2" qcow2 $spec
	done
	for spec in "0x13 0 1M" "0x22 2M 64k" "0x32 3M 64k" "0x42 4M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/b.img" raw $spec
	done
}

case_deleted() {
	one_fails deleted copy mirroring "rm -f '$T/deleted/dst/b.img'" ":" \
		"destination file '$T/deleted/dst/b.img' was renamed or replaced while job 1 wrote it"
}
run_case "vdb's destination image deleted during the copy; resume recreates it" case_deleted

case_deleted_before_pivot() {
	one_fails pivot sync ready "rm -f '$T/pivot/dst/b.img'" ":" \
		"cannot pivot disk 'vdb' to '$T/pivot/dst/b.img.snapmove-1.qcow2'"
}
run_case "vdb's destination image deleted after the copy: its pivot fails alone" \
	case_deleted_before_pivot

case_immutable() {
	one_fails immutable copy mirroring "chattr +i '$T/immutable/dst/b.img'" \
		"chattr -i '$T/immutable/dst/b.img'" "cannot write '$T/immutable/dst/b.img': Operation not permitted"
}
defer "chattr -i '$T/immutable/dst/b.img'"
run_case "vdb's destination image made immutable; chattr -i, then resume" case_immutable

cases_done
