# lvkill-lib.sh: libvirtd killed (SIGKILL) inside a libvirt call of a move,
# at the moment QEMU opens a given file, and started again; what QEMU holds
# then.  Shared by t0170 and t0171; sourced after interrupt-lib.sh.

# Whatever happens, leave a libvirtd answering (pgrep would also see the
# libvirtd of another pid namespace).
defer 'virsh list >/dev/null 2>&1 || libvirtd -d'

# The watcher a phase's hook starts: SIGKILL libvirtd (pid) the moment
# QEMU (pid) opens a file, and write libvirtd's pid to OUT.  Through
# fanotify's permission events QEMU's open waits until libvirtd is dead,
# so libvirtd never gets past the command that opened the file, however
# loaded the machine (polling /proc for the open file was late once in a
# while: libvirtd had recorded the job by then).  The file READY tells the
# hook that the watch is in place.  Without fanotify permission events
# (a kernel without CONFIG_FANOTIFY_ACCESS_PERMISSIONS) it polls, as before.
cat >"$T/watch.py" <<'PY'
import ctypes, os, select, signal, struct, sys, time
qemu, path, out, lv = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ready = out + ".ready"

def kill_libvirtd():
    os.kill(lv, signal.SIGKILL)
    end = time.time() + 10
    while time.time() < end and os.path.exists("/proc/%d" % lv):
        try:
            with open("/proc/%d/stat" % lv) as f:
                if f.read().split(") ")[1].startswith("Z"):
                    break
        except OSError:
            break
        time.sleep(0.005)
    with open(out, "w") as f:
        f.write("%d\n" % lv)

libc = ctypes.CDLL(None, use_errno=True)
FAN_CLASS_CONTENT, FAN_OPEN_PERM, FAN_MARK_ADD, FAN_ALLOW = 0x4, 0x10000, 0x1, 0x1
FAN_EVENT_ON_CHILD = 0x08000000
fan = libc.fanotify_init(FAN_CLASS_CONTENT, os.O_RDONLY | os.O_LARGEFILE)
why = "fanotify_init: " + os.strerror(ctypes.get_errno())
if fan >= 0:
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64,
                                   ctypes.c_int, ctypes.c_char_p]
    # the folder's children: the file may not exist yet
    if libc.fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, -100,
                          os.path.dirname(path).encode()) != 0:
        why = "fanotify_mark: " + os.strerror(ctypes.get_errno())
        os.close(fan)
        fan = -1
with open(ready, "w") as f:
    f.write("fanotify\n" if fan >= 0 else "polling (%s)\n" % why)
end = time.time() + 60
if fan >= 0:
    done = False
    while not done and time.time() < end:
        if not select.select([fan], [], [], 1)[0]:
            continue
        buf = os.read(fan, 4096)
        off = 0
        while off + 24 <= len(buf):
            elen, _, _, _, _, fd, pid = struct.unpack_from("IBBHQii", buf, off)
            try:
                name = os.readlink("/proc/self/fd/%d" % fd)
            except OSError:
                name = ""
            if pid == qemu and name == path and not done:
                kill_libvirtd()
                done = True
            os.write(fan, struct.pack("iI", fd, FAN_ALLOW))
            os.close(fd)
            off += elen
    sys.exit(0)
fds = "/proc/%d/fd" % qemu
while time.time() < end:
    try:
        names = os.listdir(fds)
    except OSError:
        break
    for n in names:
        try:
            if os.readlink(fds + "/" + n) == path:
                kill_libvirtd()
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
	ic_hook "$1=setsid $SM_PY '$T/watch.py' $(ic_qemu_pid) '$2' \"\$C/killed\" $(cat /run/libvirtd.pid) </dev/null >/dev/null 2>&1 & for i in \$(seq 1 200); do [ -e \"\$C/killed.ready\" ] && break; sleep 0.05; done"
	ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	[ -s "$C/killed" ] || fail "libvirtd was not killed when QEMU opened '$2'"
	[ "$(cat "$C/killed.ready")" = fanotify ] ||
		echo "    (the kill $(cat "$C/killed.ready"): it may land late)"
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
