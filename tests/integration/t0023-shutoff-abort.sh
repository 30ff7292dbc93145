#!/usr/bin/env bash
# A persistent domain shut off (virsh destroy) in the middle of a move:
# 'snapmove abort' undoes the move offline.  The domain stays shut off, its
# definition names the original image again, dst/ is empty, and it then starts
# from the original files with every guest write, also those made after the
# pivot (into the destination overlay, brought back).  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve snapshot hook-sync copy-chunk pivot-unjournaled pivot

abort_offline() {
	expect_exit 0 smc abort 1
	assert_contains "$T/err" "job 1: aborting the move of $DOM (offline, via commit)"
	assert_contains "$T/out" "aborted job 1 of domain $DOM"
	assert_contains "$T/out" "vda now: $C/src/top.qcow2 (qcow2) <- $C/src/base.raw (raw)"
	ic_check aborted "shut off"
}

case_snapshot() {
	ic_setup snapshot
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=snapshot:start
	ic_write 0x31 6M flush   # into the original top image
	virsh -q destroy "$DOM" >/dev/null
	abort_offline
}
run_case "snapmove killed before the snapshot, then the domain destroyed: abort offline" case_snapshot

# Destroyed mid-sync and snapmove killed with it (a move that goes on would
# finish offline by itself, t0022): the hook kills the process the journal
# names as the job's.
case_hook_sync() {
	local rc=0
	ic_setup hook-sync
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M; virsh -q destroy \"\$DOM\" >/dev/null
		kill -9 \$(sqlite3 -cmd '.timeout 5000' \"\$C/j.db\" \"SELECT pid FROM job WHERE id = \$job\")"
	SNAPMOVE_TEST_HOOK="$C/hook" bash -c '"$@" >"$0.out" 2>"$0.err"' "$C/move" \
		"$SNAPMOVE" --db "$C/j.db" move "$DOM" --dest "$C/dst" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$C/move.out" "$C/move.err" >&2; fail "move exited $rc, not killed"; }
	assert_eq "$(virsh domstate "$DOM")" "shut off" "domain state after the move was killed"
	abort_offline
}
run_case "destroyed while the mirror syncs, snapmove killed (from a hook): abort offline" case_hook_sync

case_copy_chunk() {
	ic_setup copy-chunk
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M flush
	virsh -q destroy "$DOM" >/dev/null
	abort_offline
}
run_case "snapmove killed mid-copy, then the domain destroyed: abort offline" case_copy_chunk

# The pivot went through but snapmove died before journaling it: the
# definition, which libvirt updated, says where the newest writes are.
case_pivot_unjournaled() {
	ic_setup pivot-unjournaled
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:unjournaled
	ic_write 0x31 6M flush   # into the destination overlay
	virsh -q destroy "$DOM" >/dev/null
	abort_offline
}
run_case "destroyed after an unjournaled pivot: abort offline" case_pivot_unjournaled

case_pivot() {
	ic_setup pivot
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:done
	ic_write 0x31 6M flush   # into the destination overlay
	virsh -q destroy "$DOM" >/dev/null
	abort_offline
}
run_case "destroyed after the pivot: abort offline moves back" case_pivot

cases_done
