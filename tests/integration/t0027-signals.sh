#!/usr/bin/env bash
# SIGINT or SIGTERM to snapmove during a move (or a resume): it stops at the
# next safe point, exits 5 ("interrupted", see 'snapmove --help') and prints the commands to resume or abort the job,
# which is 'failed' with an error saying it was interrupted.  The domain runs
# on a consistent chain (its overlay over the original images, no block job),
# and 'snapmove resume' then finishes the move.  The signal comes from a hook
# (snapmove is the hook's parent).  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve int-copy term-sync term-resume

# The job stopped on a signal: what the command said, the journal, the domain.
check_stopped() {  # OUT ERR
	grep -qi "interrupted" "$2" || { cat "$2" >&2; fail "the error does not say 'interrupted'"; }
	assert_contains "$2" "snapmove resume 1"
	assert_contains "$2" "snapmove abort 1"
	! grep -q "test hook" "$2" || { cat "$2" >&2; fail "the hook failed, not the signal"; }
	smc status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: failed,"
	grep -qi "^  error: .*interrupted" "$C/status.out" ||
		{ cat "$C/status.out" >&2; fail "the job's error does not say it was interrupted"; }
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the signal"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs after the signal"
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/top.qcow2.snapmove-1.src.qcow2 qcow2
$C/src/top.qcow2 qcow2
$C/src/base.raw raw" "live chain after the signal"
}

case_int_copy() {
	ic_setup int-copy
	ic_hook "copy=write 0x21 3M; kill -INT \$PPID" "sync=write 0x22 4M"
	ic_move 5 SNAPMOVE_TEST_HOOK="$C/hook"
	check_stopped "$C/move.out" "$C/move.err"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "SIGINT during the copy" case_int_copy

case_term_sync() {
	ic_setup term-sync
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M; kill -TERM \$PPID"
	ic_move 5 SNAPMOVE_TEST_HOOK="$C/hook"
	check_stopped "$C/move.out" "$C/move.err"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "SIGTERM while waiting for the mirror" case_term_sync

case_term_resume() {
	ic_setup term-resume
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M
	ic_hook "sync=write 0x22 4M; kill -TERM \$PPID"
	SNAPMOVE_TEST_HOOK=$C/hook expect_exit 5 smc resume 1
	check_stopped "$T/out" "$T/err"
	ic_write 0x32 9M
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "SIGTERM during a resume" case_term_resume

cases_done
