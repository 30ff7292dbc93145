#!/usr/bin/env bash
# The destination fills up while the mirror runs (ENOSPC in QEMU's mirror
# job, after the base copy): the destination is a small tmpfs and a hook
# fills it when the sync phase starts, then the guest writes.  The source
# overlay is kept beside the source image (--overlay-dir): on the full
# destination, where it goes by default, the guest's writes would fail
# before the mirror's do.  The move fails
# (exit 1) naming the cause (QEMU's own error text and the destination's free
# space) in its message, its event and the journal, without pivoting or
# cancelling the failed job; the domain stays on its overlay with no block
# job; once the filler is gone 'snapmove resume' finishes the move.  See
# interrupt-lib.sh and t0028 (full during the copy).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

for m in syncing ready; do
	mkdir -m 755 "$T/$m" "$T/$m/dst"
	mount -t tmpfs -o size=80M tmpfs "$T/$m/dst"
	SM_MOUNTS+=("$T/$m/dst")
	chmod 755 "$T/$m/dst"
done
ic_reserve syncing ready

# full_at PHASE: the hook fills the destination when PHASE starts, then the
# guest writes (the mirror's copies of those writes fail); the move fails
# and a resume after the filler is gone finishes.
full_at() {
	ic_hook "copy=write 0x21 3M" \
		"$1=dd if=/dev/zero of=\"\$C/dst/filler\" bs=1M status=none 2>/dev/null || true; write 0x22 8M; write 0x23 9M; write 0x24 10M; sleep 1"
	IC_MOVE_ARGS="--overlay-dir $C/src" ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	[ -s "$C/dst/filler" ] || fail "the hook did not fill the destination"
	assert_contains "$C/move.err" "No space left on device"
	assert_contains "$C/move.err" "free"
	assert_contains "$C/move.err" "snapmove resume 1"
	! grep -F "cannot accept command verb" "$C/move.err" >&2 ||
		fail "snapmove pivoted or cancelled the failed job"
	smc status 1 >"$C/status.out"
	assert_contains "$C/status.out" "No space left on device"
	grep -F '"No space left on device' "$SNAPMOVE_EVENTS_FILE" >/dev/null ||
		grep -F 'No space left on device' "$SNAPMOVE_EVENTS_FILE" >/dev/null ||
		fail "no event names the cause"
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the failure"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs after the failure"
	assert_eq "$(live_chain "$DOM" vda | head -n1)" "$C/src/top.qcow2.snapmove-1.qcow2 qcow2" \
		"live chain after the failure"
	! grep -F "cannot cancel" "$C/move.err" >&2 ||
		fail "snapmove tried to cancel the failed job"
	ic_write 0x31 6M

	rm "$C/dst/filler"
	expect_exit 0 smc resume 1
	cp "$T/err" "$C/resume.err"
	ic_check done
}

case_syncing() {
	ic_setup syncing
	full_at sync
}
run_case "destination full while the mirror syncs, then resume" case_syncing

# The mirror is ready when the destination fills: the job fails before the
# pivot, which must not be tried on it.
case_ready() {
	ic_setup ready
	full_at pivot
}
run_case "destination full after the mirror is ready, then resume" case_ready

cases_done
