#!/usr/bin/env bash
# The destination fills up during the final commit (ENOSPC in QEMU's active
# commit of the destination overlay into the moved image): a hook at the
# collapse phase lets the guest write, then fills the small tmpfs
# destination.  The move fails (exit 1) naming the cause (QEMU's error text
# and the destination's free space) in the message, the event and the
# journal, without pivoting or cancelling the failed commit; the domain stays
# on the destination overlay with no block job; once the filler is gone
# 'snapmove resume' finishes.  See interrupt-lib.sh, t0028 and t0131.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

mkdir -m 755 "$T/commit" "$T/commit/dst"
mount -t tmpfs -o size=80M tmpfs "$T/commit/dst"
SM_MOUNTS+=("$T/commit/dst")
chmod 755 "$T/commit/dst"
ic_reserve commit

case_commit() {
	ic_setup commit
	ic_hook "copy=write 0x21 3M" \
		"collapse=write 0x22 8M; write 0x23 9M; write 0x24 10M; dd if=/dev/zero of=\"\$C/dst/filler\" bs=1M status=none 2>/dev/null || true"
	ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	[ -s "$C/dst/filler" ] || fail "the hook did not fill the destination"
	assert_contains "$C/move.err" "No space left on device"
	assert_contains "$C/move.err" "is full ("
	assert_contains "$C/move.err" "snapmove resume 1"
	! grep -F "cannot accept command verb" "$C/move.err" >&2 ||
		fail "snapmove pivoted or cancelled the failed commit"
	! grep -F "cannot cancel" "$C/move.err" >&2 ||
		fail "snapmove tried to cancel the failed commit"
	smc status 1 >"$C/status.out"
	assert_contains "$C/status.out" "No space left on device"
	grep -F 'No space left on device' "$SNAPMOVE_EVENTS_FILE" >/dev/null ||
		fail "no event names the cause"
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the failure"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs after the failure"
	assert_eq "$(live_chain "$DOM" vda | head -n1)" "$C/dst/top.qcow2.snapmove-1.qcow2 qcow2" \
		"live chain after the failure"

	rm "$C/dst/filler"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "destination full during the final commit, then resume" case_commit

cases_done
