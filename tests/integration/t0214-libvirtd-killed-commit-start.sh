#!/usr/bin/env bash
# serial: kills libvirtd (SIGKILL) and starts it again: every other test's libvirt calls would fail meanwhile
# libvirtd killed inside the start of the final commit (bench/chaos.sh
# CHAOS_AT=collapse, 2026-12-02: 2 jobs of 10 could not end).  libvirt 9
# registers the commit job (and saves it) before it asks QEMU, and records
# the disk's <mirror> only once QEMU has answered.  Killed in between, QEMU
# runs the commit, and the restarted libvirtd tracks it ('virsh blockjob'
# shows it) but shows no <mirror> for it, so it never shows it ready: every
# resume failed to start a new commit ("Operation not supported: disk 'vda'
# already in active block job") and every abort to start its mirror back.
# Cancelling that job crashes libvirt 9.0 (its handler of a failed active
# commit reads the missing mirror; seen here: libvirtd died).
# Made here deterministically: the commit ready, libvirtd killed, its status
# XML given that state (the job kept, the disk's <mirror> removed), libvirtd
# started again.  resume asks QEMU whether the commit is ready and pivots
# it; abort refuses the disk (it would have to cancel the job), saying to
# resume, which then finishes.  (Killing libvirtd while QEMU handles
# block-commit leaves this state only by chance; a QEMU stopped before the
# command drops it when libvirtd's socket closes.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"
. "$(dirname "$0")/lvkill-lib.sh"

ic_reserve commit-resume commit-abort

qemu_jobs_status() {
	virsh qemu-monitor-command "$DOM" '{"execute":"query-block-jobs"}' |
		"$SM_PY" -c 'import json, sys
print(" ".join(j["device"] + ":" + j["status"] for j in json.load(sys.stdin)["return"]))'
}

# The move up to the final commit's pivot, the commit ready; libvirtd killed
# and its status XML left as libvirtd leaves it when it dies inside
# virDomainBlockCommit once QEMU has started the job: the job saved (under
# <blockjobs>), the disk without its <mirror>; libvirtd started again.  The
# move, its connection gone, exits 1.
move_killed_in_commit_start() {
	local rc=0 st mpid
	ic_hook "collapse:pivot=reached at-pivot; for i in \$(seq 1 600); do [ -e \"\$C/go\" ] && break; sleep 0.1; done"
	SNAPMOVE_TEST_HOOK=$C/hook "$SNAPMOVE" --db "$C/j.db" move "$DOM" --dest "$C/dst" \
		>"$C/move.out" 2>"$C/move.err" &
	mpid=$!
	for _ in $(seq 1 600); do
		[ -e "$C/at-pivot" ] && break
		sleep 0.1
	done
	[ -e "$C/at-pivot" ] || { kill "$mpid"; cat "$C/move.err" >&2; fail "the move did not reach the commit's pivot"; }
	st=/run/libvirt/qemu/$DOM.xml
	grep -q "type='active-commit' state='ready'" "$st" ||
		{ grep -E "<mirror|<blockjob" "$st" >&2; fail "the commit is not ready"; }
	cat /run/libvirtd.pid >"$C/killed"
	kill -KILL "$(cat "$C/killed")"
	restart_libvirtd_after() {
		"$SM_PY" - "$st" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
n = len(re.findall(r"<mirror type='file' job='active-commit'", s))
s = re.sub(r"\n *<mirror type='file' job='active-commit'.*?</mirror>", "", s, flags=re.S)
open(p, "w").write(s)
sys.exit(0 if n == 1 else 1)
PY
	}
	for _ in $(seq 1 100); do
		kill -0 "$(cat "$C/killed")" 2>/dev/null || break
		sleep 0.05
	done
	restart_libvirtd_after || fail "no <mirror> of the commit in the status XML"
	restart_libvirtd
	touch "$C/go"
	wait "$mpid" || rc=$?
	[ "$rc" = 1 ] || { cat "$C/move.err" >&2; fail "the move exited $rc, expected 1"; }
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the restart"
	assert_eq "$(live_chain "$DOM" vda | head -n1)" \
		"$C/dst/top.qcow2.snapmove-1.qcow2 qcow2" "active image after the restart"
	case "$(qemu_jobs_status)" in
	commit-vda-*:ready) ;;
	*) fail "QEMU runs no ready commit after the restart ($(qemu_jobs_status))" ;;
	esac
	virsh dumpxml "$DOM" | grep -c '<mirror' >/dev/null &&
		fail "libvirt shows a <mirror> after the restart: not the state under test"
	virsh blockjob "$DOM" vda --info 2>&1 | grep -c 'Active Block Commit' >/dev/null ||
		fail "libvirt does not track the commit after the restart"
}

case_commit_resume() {
	ic_setup commit-resume
	ic_write 0x21 3M flush
	move_killed_in_commit_start
	ic_write 0x31 6M flush
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "libvirt runs an active commit on '$C/dst/top.qcow2.snapmove-1.qcow2' but shows no <mirror> for it"
	assert_eq "$(qemu_jobs_status)" "" "QEMU's block jobs after the resume"
	ic_check done
}
run_case "libvirtd killed inside the commit's start: resume pivots the commit QEMU runs" \
	case_commit_resume

case_commit_abort() {
	ic_setup commit-abort
	ic_write 0x21 3M flush
	move_killed_in_commit_start
	ic_write 0x31 6M flush
	expect_exit 1 smc abort 1
	assert_contains "$T/err" "libvirt 9.0 crashes when such a job is cancelled, so abort cannot undo this disk: finish the move with 'snapmove resume 1'"
	virsh list >/dev/null || fail "libvirtd died during the abort"
	case "$(qemu_jobs_status)" in
	commit-vda-*:ready) ;;
	*) fail "the commit does not run after the refused abort ($(qemu_jobs_status))" ;;
	esac
	expect_exit 0 smc resume 1
	ic_check done
}
run_case "libvirtd killed inside the commit's start: abort refuses, resume finishes" \
	case_commit_abort

cases_done
