# lvkill-lib.sh: libvirtd killed (SIGKILL) inside a libvirt call of a move,
# at the moment QEMU opens a given file, and started again; what QEMU holds
# then.  Shared by t0170 and t0171; sourced after interrupt-lib.sh.

# Whatever happens, leave a libvirtd answering (pgrep would also see the
# libvirtd of another pid namespace).
defer 'virsh list >/dev/null 2>&1 || libvirtd -d'

# The watcher a phase's hook starts: SIGKILL libvirtd (pid) the moment
# QEMU (pid) has the file open, and write libvirtd's pid to OUT.
cat >"$T/watch.py" <<'PY'
import os, signal, sys, time
qemu, path, out, lv = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fds = "/proc/%s/fd" % qemu
end = time.time() + 60
while time.time() < end:
    try:
        names = os.listdir(fds)
    except OSError:
        break
    for n in names:
        try:
            if os.readlink(fds + "/" + n) == path:
                os.kill(lv, signal.SIGKILL)
                open(out, "w").write("%d\n" % lv)
                sys.exit(0)
        except OSError:
            pass
PY

# Start libvirtd again once the killed one ($C/killed) is gone; wait until
# it answers.
restart_libvirtd() {
	local pid i
	pid=$(cat "$C/killed")
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	libvirtd -d 2>/dev/null || true
	for i in $(seq 1 150); do
		virsh list >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "libvirtd does not answer after the restart"
}

# The QEMU nodes that have file $1 open, one name per line.
qemu_nodes_on() {
	virsh qemu-monitor-command "$DOM" \
		'{"execute":"query-named-block-nodes","arguments":{"flat":true}}' |
		"$SM_PY" -c 'import json, sys
for n in json.load(sys.stdin)["return"]:
    if n["drv"] == "file" and n["file"] == sys.argv[1]:
        print(n["node-name"])' "$1"
}

qemu_jobs() {
	virsh qemu-monitor-command "$DOM" '{"execute":"query-block-jobs"}' |
		"$SM_PY" -c 'import json, sys
print(" ".join(j["device"] for j in json.load(sys.stdin)["return"]))'
}

# lk_move_killed PHASE FILE: the move of $DOM, libvirtd killed by the
# watcher, started when the move starts PHASE, as QEMU opens FILE; the move
# exits 1; libvirtd started again.
lk_move_killed() {
	ic_hook "$1=setsid $SM_PY '$T/watch.py' $(ic_qemu_pid) '$2' \"\$C/killed\" $(cat /run/libvirtd.pid) </dev/null >/dev/null 2>&1 & sleep 0.3"
	ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	[ -s "$C/killed" ] || fail "libvirtd was not killed when QEMU opened '$2'"
	restart_libvirtd
}

# Nothing of the job is open in QEMU but the final chain: no node on
# either overlay (nor on the files given), no block job.
no_job_nodes() {
	local f
	for f in "$C/dst/top.qcow2.snapmove-1.qcow2" "$C/dst/top.qcow2.snapmove-1.src.qcow2" \
		"$@"; do
		assert_eq "$(qemu_nodes_on "$f")" "" "QEMU nodes on '$f'"
	done
	assert_eq "$(qemu_jobs)" "" "QEMU's block jobs"
}
