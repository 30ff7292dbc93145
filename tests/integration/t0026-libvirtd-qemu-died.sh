#!/usr/bin/env bash
# serial: kills libvirtd (SIGKILL) and starts it again: every other test's libvirt calls would fail meanwhile
# What runs under snapmove dies in the middle of a move.  libvirtd killed
# and restarted: QEMU and its mirror live on, and 'snapmove resume' picks the
# mirror up (or starts it again) and finishes live.  QEMU killed (kill -9):
# the domain is shut off and the move itself (or, when snapmove died too,
# 'snapmove resume') finishes offline; every guest write acknowledged and
# flushed before the kill is there.  Each both after
# snapmove itself was killed and while it waits in a phase.  See
# interrupt-lib.sh.  It kills the host's libvirtd: other tests running on the
# same libvirtd at that moment fail, so run it alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve lv-crash lv-wait qemu-crash qemu-wait

# Whatever happens, leave libvirtd running for the next tests.
# (pgrep would also see the libvirtd of another pid namespace.)
defer 'virsh list >/dev/null 2>&1 || libvirtd -d'

# Kill libvirtd (as a crash would), start it again, wait until it answers.
restart_libvirtd() {
	local pid i
	pid=$(cat /run/libvirtd.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null ||
		fail "libvirtd does not run (no live pid in /run/libvirtd.pid)"
	kill -KILL "$pid"
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	libvirtd -d
	for i in $(seq 1 100); do
		virsh version >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "libvirtd does not answer after the restart"
}

# Kill the domain's QEMU and wait for libvirt to see it shut off.
kill_qemu() {
	local i
	kill -KILL "$(ic_qemu_pid)"
	for i in $(seq 1 100); do
		[ "$(virsh domstate "$DOM" 2>/dev/null)" = "shut off" ] && return 0
		sleep 0.1
	done
	fail "the domain is not shut off after QEMU was killed"
}

# The move runs in the background until its hook reaches PHASE: then the test
# does ACTION (a function) and lets the hook return.  The move must fail.
move_interrupted_at() {  # PHASE ACTION [WANT: 1, the move stops; 0, it finishes]
	ic_hook "copy=write 0x21 3M" \
		"$1=reached at-$1; for i in \$(seq 1 300); do [ -e \"\$C/go\" ] && break; sleep 0.1; done"
	SNAPMOVE_TEST_HOOK=$C/hook timeout 120 "$SNAPMOVE" --db "$C/j.db" move "$DOM" \
		--dest "$C/dst" >"$C/move.out" 2>"$C/move.err" &
	local pid=$! i rc=0
	for i in $(seq 1 300); do
		[ -e "$C/at-$1" ] && break
		sleep 0.1
	done
	[ -e "$C/at-$1" ] || { kill "$pid"; fail "the move did not reach $1"; }
	"$2"
	touch "$C/go"
	wait "$pid" || rc=$?
	[ "$rc" = "${3:-1}" ] ||
		{ cat "$C/move.err" >&2; fail "the move exited $rc, expected ${3:-1}"; }
	[ "$rc" = 0 ] && return 0
	assert_contains "$C/move.err" "snapmove resume 1"
	smc status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: failed"
}

case_libvirtd_crash() {
	ic_setup lv-crash
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=sync:start
	assert_eq "$(block_job_count "$DOM" vda)" 1 "block jobs before the restart"
	restart_libvirtd
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the restart"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "snapmove killed mid-mirror, libvirtd restarted: resume" case_libvirtd_crash

case_libvirtd_wait() {
	ic_setup lv-wait
	ic_write 0x22 4M
	move_interrupted_at sync restart_libvirtd
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the move failed"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "libvirtd restarted while the move waits for the mirror: resume" case_libvirtd_wait

case_qemu_crash() {
	ic_setup qemu-crash
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M flush
	kill_qemu
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "domain '$DOM' is not running"
	ic_check done "shut off"
}
run_case "snapmove killed mid-copy, QEMU killed: resume offline" case_qemu_crash

# The domain is shut off under the waiting move, which finishes offline.
case_qemu_wait() {
	ic_setup qemu-wait
	move_interrupted_at sync kill_qemu 0
	assert_contains "$C/move.err" "domain '$DOM' went down during the move: finishing it offline"
	assert_contains "$C/move.out" "finished offline: the domain went down during the move"
	ic_check done "shut off"
}
run_case "QEMU killed while the move waits for the mirror: the move finishes offline" case_qemu_wait

cases_done
