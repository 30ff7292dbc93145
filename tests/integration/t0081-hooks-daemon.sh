#!/usr/bin/env bash
# serial: times a hook's run to the second under strace (under 3 s, 3 to 4 s, the move under 5 s): another test's load would make it late
# A hook that leaves a daemon holding its output (setsid: out of the hook's
# process group, out of reach of the kill at the limit) does not hold the
# move: a hook that exits at once is done within a moment of its exit, and
# one that runs past --hook-timeout 3 is killed and let go of within two seconds
# of its limit.  No signal ever goes to a pid snapmove already reaped
# (strace: no kill(P) or kill(-P) after a wait4 that returned P).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

mkdir -m 755 "$T/src"
new_image "$T/src/disk.qcow2" qcow2 64M 0x21 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
defer "kill \$(cat '$T/daemon1.pid' '$T/daemon2.pid' 2>/dev/null) 2>/dev/null; true"

# no_kill_after_reap TRACE: the strace -f log of a run.
no_kill_after_reap() {
	"$SM_PY" - "$1" <<'PY'
import re, sys
reaped = set()
bad = []
for line in open(sys.argv[1]):
    m = re.search(r'wait4.*= (\d+)$', line.rstrip())
    if m:
        reaped.add(int(m.group(1)))
        continue
    m = re.search(r'\bkill\((-?\d+),', line)
    if m and abs(int(m.group(1))) in reaped:
        bad.append(line.strip())
if bad:
    print("kill of a reaped pid:\n" + "\n".join(bad))
    sys.exit(1)
PY
}

# traced_move TRACE ARGS...: sm ARGS under strace -f; output in $T/out, $T/err.
traced_move() {
	local trace=$1 rc=0
	shift
	# (LeakSanitizer cannot run in a traced process: off here in a
	# sanitized build; the other hook tests check these paths for leaks.)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -o "$trace" -e trace=kill,wait4,waitid \
		"$SNAPMOVE" --db "$DB" --json "$@" >"$T/out" 2>"$T/err" || rc=$?
	echo "$rc"
}

case_exits_at_once() {
	local rc
	mkdir -m 755 "$T/dst1"
	# (It waits for the daemon to be in its own session: a kill of the hook's
	# group before that would take the daemon with it.)
	new_hook "$H/h1" before_move 50-daemon "setsid sleep 25 & echo \$! >'$T/daemon1.pid'
until [ \"\$(ps -o sid= -p \$! | tr -d ' ')\" = \$! ]; do sleep 0.05; done
echo started; exit 0"
	rc=$(traced_move "$T/trace1" --hooks-dir "$H/h1" --hook-timeout 10 move "$dom" --dest "$T/dst1")
	assert_eq "$rc" 0 "exit status of the move"
	assert_events "$T/out"
	assert_eq "$(jev "$T/out" '[str(e["exit"]) + " " + str(e["timed_out"]) + " " + str(e["seconds"] < 3) for e in ev("hook")]')" \
		"0 False True" "the hook event (exit, timed out, under 3 s)"
	kill -0 "$(cat "$T/daemon1.pid")" || fail "the daemon (out of reach of snapmove) is gone"
	no_kill_after_reap "$T/trace1" || fail "snapmove signalled a pid it had reaped"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst1/disk.qcow2 qcow2" "the chain"
	note "move: $(jev "$T/out" 'round(events[-1]["time"] - events[0]["time"], 2)') s, the hook $(jev "$T/out" 'round(ev("hook")[0]["seconds"], 2)') s"
}
run_case "a hook that exits at once, leaving a daemon on its pipes, is done within 3 s (limit 10 s)" case_exits_at_once

case_past_limit() {
	local rc before
	mkdir -m 755 "$T/dst2"
	before=$(live_chain "$dom" vda)
	new_hook "$H/h2" before_move 50-daemon "setsid sleep 25 & echo \$! >'$T/daemon2.pid'; echo \$\$ >'$T/hook2.pid'; sleep 30"
	rc=$(traced_move "$T/trace2" --hooks-dir "$H/h2" --hook-timeout 3 move "$dom" --dest "$T/dst2")
	assert_eq "$rc" 4 "exit status of the move"
	assert_events "$T/out"
	assert_eq "$(jev "$T/out" '[str(e["exit"]) + " " + str(e["timed_out"]) + " " + str(3 <= e["seconds"] < 4) for e in ev("hook")]')" \
		"137 True True" "the hook event (killed, timed out, 3 to 4 s)"
	assert_contains "$T/err" "ran past its time limit of 3 s and was killed"
	# From its first event to its last, by snapmove's clock (strace -f
	# itself waits for the daemon it also follows).
	assert_eq "$(jev "$T/out" 'events[-1]["time"] - ev("hook")[0]["time"] + ev("hook")[0]["seconds"] < 5')" \
		true "the move under 5 s from the hook's start"
	! kill -0 "$(cat "$T/hook2.pid")" 2>/dev/null || fail "the hook still runs"
	no_kill_after_reap "$T/trace2" || fail "snapmove signalled a pid it had reaped"
	assert_eq "$(live_chain "$dom" vda)" "$before" "the chain"
	note "vetoed move: $(jev "$T/out" 'round(events[-1]["time"] - ev("hook")[0]["time"] + ev("hook")[0]["seconds"], 2)') s from the hook's start, the hook $(jev "$T/out" 'round(ev("hook")[0]["seconds"], 2)') s"
}
run_case "a hook past --hook-timeout 3 with a daemon on its pipes is let go of at 3 s" case_past_limit

cases_done
