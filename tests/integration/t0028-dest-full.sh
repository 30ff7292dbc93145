#!/usr/bin/env bash
# The destination fills up during the copy (ENOSPC): the destination is a
# small tmpfs that passes validation (the chain's allocated bytes plus the
# 64 MiB margin fit) and a hook fills it when the copy starts.  The move
# fails (exit 1) saying the destination is full and to free space, the domain
# runs on its overlay (made on the destination) over the original images with
# no block job, and once
# the filler is gone 'snapmove resume' finishes the move.  See
# interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

# The mounts are made here: run_case's subshell cannot add to SM_MOUNTS.
for m in full offline; do
	mkdir -m 755 "$T/$m" "$T/$m/dst"
	mount -t tmpfs -o size=80M tmpfs "$T/$m/dst"
	SM_MOUNTS+=("$T/$m/dst")
	chmod 755 "$T/$m/dst"
done
ic_reserve full offline

case_full() {
	ic_setup full
	ic_hook "copy=write 0x21 3M; dd if=/dev/zero of=\"\$C/dst/filler\" bs=1M status=none 2>/dev/null || true"
	ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	[ -s "$C/dst/filler" ] || fail "the hook did not fill the destination"
	assert_contains "$C/move.err" "the destination is full"
	assert_contains "$C/move.err" "free space"
	assert_contains "$C/move.err" "snapmove resume 1"
	assert_contains "$C/move.err" "snapmove abort 1"
	smc status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: failed,"
	assert_contains "$C/status.out" "the destination is full"
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the failure"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs after the failure"
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/top.qcow2.snapmove-1.src.qcow2 qcow2
$C/src/top.qcow2 qcow2
$C/src/base.raw raw" "live chain after the failure"

	# The source overlay is on the destination too: the guest's next write
	# needs the room the filler takes.
	rm "$C/dst/filler"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
	# The way on is 'snapmove resume': a second move is refused while the
	# job is unfinished, so the error must not send the user there.
	! grep -F "then move again" "$C/move.err" >&2 ||
		fail "the error says to move again; that move would be refused"
}
run_case "destination full during the copy, then resume" case_full

# The same while a shut-off domain's move is finished offline: the resume
# fails, the domain stays shut off on a definition it can start from (its
# overlay over the original images), and the next resume finishes.
case_offline() {
	ic_setup offline
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=copy:start
	ic_write 0x31 6M flush
	virsh -q destroy "$DOM" >/dev/null
	dd if=/dev/zero of="$C/dst/filler" bs=1M status=none 2>/dev/null || true
	expect_exit 1 smc resume 1
	cp "$T/err" "$C/resume.err"
	assert_contains "$T/err" "domain '$DOM' is not running"
	assert_contains "$T/err" "the destination is full"
	assert_contains "$T/err" "snapmove resume 1"
	smc status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: failed,"
	assert_contains "$C/status.out" "the destination is full"
	assert_eq "$(virsh domstate "$DOM")" "shut off" "domain state after the failure"
	assert_eq "$(ic_def_source)" "$C/dst/top.qcow2.snapmove-1.src.qcow2" \
		"persistent definition after the failure"
	check_pattern "$C/dst/top.qcow2.snapmove-1.src.qcow2" qcow2 0x31 6M 64k

	rm "$C/dst/filler"
	expect_exit 0 smc resume 1
	ic_check done "shut off"
	# The domain does not run: nothing may say it does.
	! grep -F "the domain runs" "$C/resume.err" >&2 ||
		fail "the failed offline resume says the shut-off domain runs"
}
run_case "destination full while finishing offline, then resume" case_offline

cases_done
