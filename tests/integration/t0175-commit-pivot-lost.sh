#!/usr/bin/env bash
# serial: kills libvirtd (SIGKILL) and starts it again: every other test's libvirt calls would fail meanwhile
# libvirtd dies during the final commit's pivot, after QEMU finished it.
# libvirt (9) asks QEMU to complete the active commit, records the job as
# 'pivoting' and, when QEMU says the job concluded, dismisses it and moves
# the disk onto the base image.  Killed between the dismissal and its record,
# the new libvirtd finds in its status XML a job QEMU no longer has: it drops
# the job but keeps <mirror job='active-commit' ready='pivot'> and the disk on
# the destination overlay, while QEMU writes to the moved image below it.
# libvirt keeps that view until the domain stops; no block job can start on
# the disk.  Made here deterministically: QEMU stopped (SIGSTOP) when the
# move asks for the pivot, libvirtd killed, QEMU continued and its job
# completed and dismissed on its monitor socket, as the dead libvirtd would
# have done, then libvirtd started again.
#
# resume must see it at once (no 30 s wait), say what it found and what to
# do (stop the domain, resume), and journal the commit as done; once the
# domain is off, resume finishes without folding the stale destination
# overlay into the moved image again: every acknowledged write is there.
# It kills the host's libvirtd (for about a second): run it alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve lost cancelled lost-abort
defer 'virsh list >/dev/null 2>&1 || libvirtd -d'

libvirtd_up() {
	local i
	for i in $(seq 1 150); do
		virsh list >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "libvirtd does not answer after its restart"
}

libvirtd_kill() {
	local pid i
	# Its pid file: a second 'libvirtd -d' someone just started (which
	# exits, the pid file being locked) is not it.
	pid=$(cat /run/libvirtd.pid) && kill -0 "$pid" || fail "libvirtd does not run"
	kill -KILL "$pid"
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	fail "libvirtd $pid does not die"
}

# qmp_finish_jobs VERB: on the QEMU monitor socket of $DOM (libvirtd must be
# down), VERB (job-complete: the pivot; job-cancel: the job ends without one)
# every block job that is ready, wait until each concluded, dismiss it.
# Prints query-jobs before and after, as JSON.
qmp_finish_jobs() {  # job-complete | job-cancel
	local sock
	sock=$(sed -n "s/.*<monitor path='\\([^']*\\)'.*/\\1/p" "/run/libvirt/qemu/$DOM.xml")
	"$SM_PY" - "$sock" "$1" <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" in r:
            continue
        if "error" in r:
            raise SystemExit("%s: %s" % (name, r["error"]))
        return r["return"]
json.loads(f.readline())  # greeting
cmd("qmp_capabilities")
jobs = cmd("query-jobs")
print(json.dumps(jobs))
for j in jobs:
    if j["status"] == "ready":
        cmd(sys.argv[2], id=j["id"])
for j in jobs:
    for _ in range(200):
        st = [x["status"] for x in cmd("query-jobs") if x["id"] == j["id"]]
        if not st or st[0] == "concluded":
            break
        time.sleep(0.05)
    if st:
        cmd("job-dismiss", id=j["id"])
print(json.dumps(cmd("query-jobs")))
PY
}

# The file QEMU's device for vda writes to (QEMU's own view, through libvirt).
qemu_file() {
	virsh -q qemu-monitor-command "$DOM" '{"execute":"query-block"}' |
		"$SM_PY" -c 'import json,sys
for b in json.load(sys.stdin)["return"]:
    if "virtio-disk0" in b.get("qdev", "") + b.get("device", ""):
        f = b["inserted"]["file"]
        print(json.loads(f[5:])["file"]["filename"] if f.startswith("json:") else f)'
}

# lose_pivot NAME VERB: the case's move up to the final commit's pivot, which
# libvirt records and loses as above; QEMU's job ended by VERB.
lose_pivot() {
	local rc=0 st
	libvirtd_up
	ic_setup "$1"
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M" "collapse=write 0x23 5M" \
		"collapse:pivot=reached at-pivot; for i in \$(seq 1 600); do [ -e \"\$C/go\" ] && break; sleep 0.1; done"
	SNAPMOVE_TEST_HOOK=$C/hook "$SNAPMOVE" --db "$C/j.db" move "$DOM" --dest "$C/dst" \
		>"$C/move.out" 2>"$C/move.err" &
	local mpid=$!
	for _ in $(seq 1 600); do
		[ -e "$C/at-pivot" ] && break
		sleep 0.1
	done
	[ -e "$C/at-pivot" ] || { kill "$mpid"; cat "$C/move.err" >&2; fail "the move did not reach the commit's pivot"; }
	# The commit is ready.  What libvirt 9 does for a pivot, up to where it
	# dies: 'job-complete' accepted by QEMU, the job recorded as pivoting
	# in the status XML (ready='pivot'), QEMU's job concluded and dismissed.
	st=/run/libvirt/qemu/$DOM.xml
	grep -q "type='active-commit' state='ready'" "$st" || { grep -E "<mirror|<blockjob" "$st" >&2; fail "the commit is not ready"; }
	libvirtd_kill
	sed -i -e "s/type='active-commit' state='ready' newstate='ready'/type='active-commit' state='pivoting'/" \
		-e "s/job='active-commit' ready='yes'/job='active-commit' ready='pivot'/" "$st"
	qmp_finish_jobs "$2" >"$C/qmp.out" || { libvirtd -d || true; libvirtd_up; fail "QMP failed"; }
	libvirtd -d 2>/dev/null || true  # another test may have started one
	libvirtd_up
	touch "$C/go"
	wait "$mpid" || rc=$?
	[ "$rc" = 1 ] || { cat "$C/move.err" >&2; fail "the move exited $rc, expected 1"; }
	cat "$C/qmp.out" >&2
	virsh dumpxml "$DOM" >"$C/live.xml"
	grep "<mirror" "$C/live.xml" >&2 || true
	assert_contains "$C/live.xml" "job='active-commit' ready='pivot'"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs libvirt reports"
}

case_lost() {
	local t0 t1
	lose_pivot lost job-complete
	assert_eq "$(qemu_file)" "$C/dst/top.qcow2" "the file QEMU writes to"
	# Acknowledged, flushed writes into the moved image; one over a cluster
	# the destination overlay still holds (its stale 0x23).
	ic_write 0x31 6M flush
	ic_write 0x32 5M flush
	sed -i '/^0x23 5M /d' "$C/patterns"

	t0=$(date +%s)
	expect_exit 1 timeout 120 "$SNAPMOVE" --db "$C/j.db" resume 1
	t1=$(date +%s)
	cat "$T/err" >&2
	[ $((t1 - t0)) -le 10 ] || fail "resume took $((t1 - t0)) s to stop"
	assert_contains "$T/err" "QEMU finished the commit of disk 'vda' into '$C/dst/top.qcow2'"
	assert_contains "$T/err" "virsh shutdown $DOM"
	assert_contains "$T/err" "then run 'snapmove resume 1'"
	assert_eq "$(qemu_file)" "$C/dst/top.qcow2" "the file QEMU writes to after resume"
	assert_eq "$(ic_def_source)" "$C/dst/top.qcow2" "the persistent definition after resume"
	grep -q "^job 1: failed" <(smc status 1) || fail "job 1 is not recorded as failed"
	virsh -q destroy "$DOM" >/dev/null
	expect_exit 0 smc resume 1
	ic_check done "shut off"
}
run_case "libvirtd killed after QEMU finished the commit's pivot: resume says so, then finishes offline" \
	case_lost

# abort in that state: the commit is done in QEMU, so it cannot be undone
# live; abort records what it found (the commit done, the definition on the
# moved image), so it exits 1 with the job failed, never 3 ("nothing was
# changed"); once the domain is off, resume finishes.
case_lost_abort() {
	lose_pivot lost-abort job-complete
	ic_write 0x31 6M flush
	ic_write 0x32 5M flush
	sed -i '/^0x23 5M /d' "$C/patterns"
	expect_exit 1 timeout 120 "$SNAPMOVE" --db "$C/j.db" abort 1
	assert_contains "$T/err" "QEMU finished the commit of disk 'vda' into '$C/dst/top.qcow2'"
	grep -q "nothing was changed" "$T/err" && fail "abort says nothing was changed after recording the commit"
	grep -q "^job 1: failed" <(smc status 1) || fail "job 1 is not recorded as failed"
	assert_eq "$(ic_def_source)" "$C/dst/top.qcow2" "the persistent definition after abort"
	virsh -q destroy "$DOM" >/dev/null
	expect_exit 0 smc resume 1
	ic_check done "shut off"
}
run_case "libvirtd killed after QEMU finished the commit's pivot: abort records it and exits 1" \
	case_lost_abort

# The same view in libvirt, but QEMU's commit ended without its pivot (as if
# cancelled): QEMU still writes to the destination overlay, which an offline
# resume folds.
case_cancelled() {
	local t0 t1
	lose_pivot cancelled job-cancel
	assert_eq "$(qemu_file)" "$C/dst/top.qcow2.snapmove-1.qcow2" "the file QEMU writes to"
	ic_write 0x31 6M flush
	ic_write 0x32 5M flush
	sed -i '/^0x23 5M /d' "$C/patterns"
	t0=$(date +%s)
	expect_exit 3 timeout 120 "$SNAPMOVE" --db "$C/j.db" resume 1
	t1=$(date +%s)
	[ $((t1 - t0)) -le 10 ] || fail "resume took $((t1 - t0)) s to stop"
	assert_contains "$T/err" "QEMU still writes to the destination overlay '$C/dst/top.qcow2.snapmove-1.qcow2'"
	assert_contains "$T/err" "then run 'snapmove resume 1', which folds the overlay offline"
	virsh -q destroy "$DOM" >/dev/null
	expect_exit 0 smc resume 1
	ic_check done "shut off"
}
run_case "libvirtd killed, QEMU's commit ended without the pivot: resume says so, then finishes offline" \
	case_cancelled

cases_done
