#!/usr/bin/env bash
# A QEMU block node of an earlier mirror still holds the destination overlay
# (issue 12 item 5: a node libvirt did not blockdev-del kept the old overlay
# open, deleted, with QEMU's write lock).  Not reproduced by a full
# destination (t0131: libvirt removes the failed mirror's nodes); made here
# by hand: the move killed while the mirror runs, the mirror cancelled, and
# a node for the overlay added on QEMU's monitor (as a lost mirror leaves
# it).  resume must not delete and make again a file QEMU has open: it stops
# naming the node and how to remove it; once it is removed, resume finishes.
# See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve leaked

# Files under $C/dst/ the domain's QEMU has open though they are deleted.
pinned() {
	ls -l "/proc/$(ic_qemu_pid)/fd" | sed -n "s|.*-> \\($C/dst/.*(deleted)\\)|\\1|p"
}

qmp() {
	virsh -q qemu-monitor-command "$DOM" "$1"
}

case_leaked() {
	local ovl
	ic_setup leaked
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=sync:start
	virsh -q blockjob "$DOM" vda --abort >/dev/null
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs after the cancel"
	ovl=$C/dst/top.qcow2.snapmove-1.qcow2
	qmp '{"execute":"blockdev-add","arguments":{"driver":"file","node-name":"leak-storage","filename":"'"$ovl"'"}}' >/dev/null
	qmp '{"execute":"blockdev-add","arguments":{"driver":"qcow2","node-name":"leak-format","file":"leak-storage","backing":null}}' >/dev/null
	ic_write 0x31 6M
	expect_exit 1 smc resume 1
	assert_contains "$T/err" "QEMU still has the destination overlay '$ovl' of disk 'vda' open as block node 'leak-format, leak-storage'"
	assert_contains "$T/err" "blockdev-del"
	assert_contains "$T/err" "then run 'snapmove resume 1'"
	[ -e "$ovl" ] || fail "resume removed the overlay QEMU holds"
	assert_eq "$(pinned)" "" "deleted files QEMU holds"
	qmp '{"execute":"blockdev-del","arguments":{"node-name":"leak-format"}}' >/dev/null
	qmp '{"execute":"blockdev-del","arguments":{"node-name":"leak-storage"}}' >/dev/null
	expect_exit 0 smc resume 1
	assert_eq "$(pinned)" "" "deleted files QEMU holds after the move"
	ic_check done
}
run_case "a leaked QEMU node holds the destination overlay: resume names it, then finishes" \
	case_leaked

cases_done
