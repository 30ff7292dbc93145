#!/usr/bin/env bash
# A persistent domain shut off (virsh destroy) in the middle of a move: the
# move finishes offline by itself, or, when snapmove itself died too,
# 'snapmove resume' finishes the move offline.  The domain stays shut off, its
# definition names the destination chain, and it then starts from the
# destination files with every guest write made before the move, during it
# and before the shutdown.  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve snapshot hook-sync copy-chunk pivot-unjournaled pivot collapse

# The resume of a domain that is shut off says so and leaves it shut off.
resume_offline() {
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "domain '$DOM' is not running"
	assert_contains "$T/err" "offline"
	assert_contains "$T/out" "finished job 1 of domain $DOM"
	assert_contains "$T/out" "vda now: $C/dst/top.qcow2 (qcow2) <- $C/dst/base.raw (raw)"
	ic_check done "shut off"
}

case_snapshot() {
	ic_setup snapshot
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=snapshot:start
	ic_write 0x31 6M flush   # into the original top image
	virsh -q destroy "$DOM" >/dev/null
	resume_offline
}
run_case "snapmove killed before the snapshot, then the domain destroyed: resume offline" case_snapshot

# The move notices that the domain went down and finishes offline itself.
case_hook_sync() {
	ic_setup hook-sync
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M; virsh -q destroy \"\$DOM\" >/dev/null"
	ic_move 0 SNAPMOVE_TEST_HOOK="$C/hook"
	assert_contains "$C/move.err" "domain '$DOM' went down during the move: finishing it offline"
	assert_contains "$C/move.out" "finished offline: the domain went down during the move"
	ic_check done "shut off"
}
run_case "destroyed while the mirror syncs (from a hook): the move finishes offline" case_hook_sync

case_copy_chunk() {
	ic_setup copy-chunk
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M flush
	virsh -q destroy "$DOM" >/dev/null
	resume_offline
}
run_case "snapmove killed mid-copy, then the domain destroyed: resume offline" case_copy_chunk

# The pivot went through but snapmove died before journaling it: the
# definition, which libvirt updated, says where the newest writes are.
case_pivot_unjournaled() {
	ic_setup pivot-unjournaled
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:unjournaled
	ic_write 0x31 6M flush   # into the destination overlay
	virsh -q destroy "$DOM" >/dev/null
	resume_offline
}
run_case "destroyed after an unjournaled pivot: resume offline" case_pivot_unjournaled

case_pivot() {
	ic_setup pivot
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:done
	ic_write 0x31 6M flush   # into the destination overlay
	virsh -q destroy "$DOM" >/dev/null
	resume_offline
}
run_case "destroyed after the pivot: resume offline" case_pivot

case_collapse() {
	ic_setup collapse
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M" "collapse=write 0x23 5M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=collapse:unjournaled
	ic_write 0x31 6M flush   # into the moved image
	virsh -q destroy "$DOM" >/dev/null
	resume_offline
}
run_case "destroyed after the final commit pivoted: resume offline" case_collapse

cases_done
