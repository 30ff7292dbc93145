#!/usr/bin/env bash
# An 'abort --via stream' killed after its stream ended (crash point
# abort:disk): the domain runs on the source overlay over base.raw, the
# original top image pulled into it, and the job is still unfinished.  The
# next 'resume' and 'abort --via commit' refuse it (exit 3), naming the way
# on and changing nothing; 'abort --via stream' run again finishes it (the
# definition on the overlay, the destination files removed, every guest
# write readable).  Before, both abort and resume refused the chain as
# edited by hand, and the job could not be finished.  Live and offline.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve live offline

interrupted_stream() {  # live|offline
	local rc=0
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M flush
	[ "$1" = live ] || virsh -q destroy "$DOM" >/dev/null
	SNAPMOVE_TEST_CRASH_AT=abort:disk smc abort --via stream 1 >"$C/abort.out" \
		2>"$C/abort.err" || rc=$?
	[ "$rc" = 137 ] || { cat "$C/abort.out" "$C/abort.err" >&2; fail "abort exited $rc, not killed"; }
	grep -q "test crash at 'abort:disk'" "$C/abort.err" || fail "abort:disk was not reached"
	assert_eq "$(backing_of "$C/dst/top.qcow2.snapmove-1.src.qcow2" qcow2)" "$C/src/base.raw" \
		"backing file of the overlay after the stream"
	if [ "$1" = live ]; then
		ic_write 0x41 7M
		assert_eq "$(live_chain "$DOM" vda | head -n2)" "$C/dst/top.qcow2.snapmove-1.src.qcow2 qcow2
$C/src/base.raw raw" "live chain after the stream"
		for how in "resume 1" "abort 1"; do
			# shellcheck disable=SC2086
			expect_exit 3 smc $how
			assert_contains "$T/err" "disk 'vda' runs on the overlay '$C/dst/top.qcow2.snapmove-1.src.qcow2' over '$C/src/base.raw'"
			assert_contains "$T/err" "finish the abort with 'snapmove abort 1 --via stream'"
			assert_eq "$(live_chain "$DOM" vda | head -n1)" \
				"$C/dst/top.qcow2.snapmove-1.src.qcow2 qcow2" "chain after '$how'"
		done
		assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs"
	fi
	expect_exit 0 smc abort --via stream 1
	assert_contains "$T/out" "aborted job 1 of domain $DOM"
	if [ "$1" = live ]; then
		ic_check stream
	else
		ic_check stream "shut off"
	fi
}

case_live() {
	ic_setup live
	interrupted_stream live
}
run_case "live: resume and abort --via commit refuse, abort --via stream finishes" case_live

case_offline() {
	ic_setup offline
	interrupted_stream offline
}
run_case "offline: abort --via stream run again finishes" case_offline

cases_done
