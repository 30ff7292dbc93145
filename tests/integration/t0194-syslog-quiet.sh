#!/usr/bin/env bash
# Every job's start, phase starts, warnings, failures and end go to the
# host's log (syslog(3), facility daemon, one line each naming the job and
# its domain), as vdsm and libvirt log theirs; --quiet leaves only errors.
# The test runs in a private mount namespace whose /dev (an overlay of the
# host's) has its own /dev/log: a listener there catches snapmove's lines
# and the host's log never sees them.
if [ -z "${SM_SYSLOG_NS:-}" ]; then
	exec unshare --mount --propagation private env SM_SYSLOG_NS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/dst2" "$T/ov" "$T/ov/up" "$T/ov/work"
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$T/ov/up,workdir=$T/ov/work" /dev
SM_MOUNTS+=(/dev)
LOG=$T/syslog
# The listener: one datagram per line, the <PRI> kept (daemon is facility 3:
# <27> err, <28> warning, <29> notice, <30> info).
"$SM_PY" - "$LOG" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
PY
listener=$!
defer "kill $listener"
for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
[ -S /dev/log ] || fail "the test's syslog listener did not start"

new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
new_image "$T/src/fail.qcow2" qcow2 64M 0x21 0 1M
faildom=$(dom_name fail)
make_domain "$faildom" transient "vda:$T/src/fail.qcow2:qcow2"

# logged PATTERN: the listener got a line matching the extended regex (lines
# arrive within a moment of the command's end).
logged() {
	for _ in $(seq 30); do
		grep -qE -- "$1" "$LOG" && return 0
		sleep 0.1
	done
	cat "$LOG" >&2
	fail "no line matching '$1' in the syslog lines (above)"
}

case_done_quiet() {
	expect_exit 0 sm move "$dom" --dest "$T/dst" --quiet
	[ ! -s "$T/out" ] || { cat "$T/out"; fail "--quiet printed on stdout"; }
	[ ! -s "$T/err" ] || { cat "$T/err"; fail "--quiet printed on stderr"; }
	assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2" "chain after the move"
	local j="snapmove\[[0-9]+\]: job 1 \(domain '$dom'\)"
	logged "^<30>.*$j: started: moving to '$T/dst'\$"
	for p in snapshot dest_chain mirror copy sync pivot collapse finalize; do
		logged "^<30>.*$j: phase '$p' started\$"
	done
	logged "^<30>.*$j: ended done\$"
}
run_case "a move: its steps in the log, nothing printed under --quiet" case_done_quiet

case_failed() {
	make_write_hook "$faildom" vda copy:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$faildom" --dest "$T/dst2" -q
	[ ! -s "$T/out" ] || { cat "$T/out"; fail "--quiet printed on stdout"; }
	# The error still shows, and only errors.
	assert_contains "$T/err" "snapmove: error: "
	grep -v -e "^snapmove: " -e "^  finish it:" -e "^  undo it:" "$T/err" &&
		fail "--quiet printed more than the error (above)"
	local j="snapmove\[[0-9]+\]: job 2 \(domain '$faildom'\)"
	logged "^<27>.*$j: phase 'copy' failed: .*test hook fails copy"
	logged "^<27>.*$j: ended failed: .*test hook fails copy"
	expect_exit 0 sm abort 2 --quiet
	[ ! -s "$T/out" ] || { cat "$T/out"; fail "--quiet printed on stdout"; }
	logged "^<30>.*$j: abort started\$"
	logged "^<29>.*$j: ended aborted\$"
}
run_case "a failed move and its abort" case_failed

cases_done
