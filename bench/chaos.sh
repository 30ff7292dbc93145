#!/usr/bin/env bash
# chaos.sh: libvirtd killed (kill -9, then restarted) at a random moment of each
# of CHAOS_MOVES live moves (default 50) while the guest writes, then
# 'snapmove resume' (or abort) until the job ends; every write the guest had
# acknowledged must be readable on the domain's final chain.  Run by hand, as
# root (not part of 'make bench' or 'make check').
#
# The libvirtd it kills is its own (CHAOS_PRIVATE=1, the default): the script
# starts again as pid 1 of new pid, mount and network namespaces (unshare),
# mounts tmpfs over /run (so /var/run), /var/lib/libvirt/qemu (owned by
# libvirt-qemu), /var/cache/libvirt (a copy of the host's: no 40 s capability
# probe), /etc/libvirt/qemu and /etc/libvirt/storage, and starts virtlogd and
# libvirtd there (named chaos-virtlogd and chaos-libvirtd, so that the tests'
# 'pgrep -x libvirtd' outside does not find them); qemu:///system, pgrep and
# kill then reach only those, and the host's libvirtd, its domains and every
# other user go on undisturbed.  All of it (libvirtd, QEMUs, mounts) ends with
# the script.  Domains are named with
# the pid outside (their cgroups and QEMU logs are the host's).  CHAOS_PRIVATE=0
# kills and restarts the host's libvirtd instead: only on a machine nobody
# else uses.
#
# Each move: a persistent domain (no OS) on top.qcow2 over base.raw (128 MiB,
# 0xaa in its last 8 MiB); a writer issues HMP qemu-io writes of 64 KiB, each at
# its own offset with its own pattern, one after the other, and counts a write
# acknowledged when the HMP command returned with no error; the move starts,
# libvirtd is killed CHAOS_WINDOW * random seconds later (CHAOS_WINDOW: the
# time an undisturbed move took, measured first) and restarted at once.  Then
# resume until the job is done or aborted (abort after 3 failed resumes; a QEMU
# that libvirtd lost, which resume names, is stopped with SIGTERM, as its
# message advises, and resume goes on offline).  The writer stops, the domain
# is destroyed, and each acknowledged write is read back offline (qemu-io
# read -P) through the chain its persistent definition names.
#
# CHAOS_AT=PHASE (pivot, collapse, ...) aims instead: libvirtd is killed a random
# 0 to CHAOS_DELAY_MS (default 200) ms after the move starts that phase (from a
# SNAPMOVE_TEST_HOOK), the window where libvirtd 9 can lose the domain.
#
# Prints per move: when the fault hit (ms after the start, the job's phase),
# the move's exit status, each resume/abort and its status, the outcome, the
# writes acknowledged and lost; then moves tried, faults injected (libvirtd
# killed while the move ran), writes checked, writes lost (must be 0), how
# the jobs ended (done, aborted, not ended) and the run time.  A move that lost
# a write, whose job did not end or that needed a second resume or an abort
# is kept in /var/tmp/snapmove-chaos-PID-K: its messages in full, the libvirtd
# log and (not ended) state.txt: virsh domstate, domblklist, blockjob --info,
# QEMU's block jobs and nodes, the journal's job row, dumpxml.
#   CHAOS_MOVES=20 CHAOS_SEED=7 bash bench/chaos.sh
#   CHAOS_MOVES=20 CHAOS_AT=pivot bash bench/chaos.sh   (needs make TEST_BUILD=1)

# All of it in braces: bash reads it whole before it runs, so the file can be
# edited while a campaign runs.
{
PRIVATE=${CHAOS_PRIVATE:-1}
if [ "$PRIVATE" = 1 ] && [ -z "${CHAOS_NS:-}" ]; then
	# Start again as pid 1 of new pid, mount and network namespaces (the
	# mounts private: nothing done below is seen outside).  CHAOS_NS carries
	# this pid, which names the domains and so their cgroups, shared with
	# the host.
	[ "$(id -u)" = 0 ] || { echo "chaos: error: run it as root" >&2; exit 1; }
	command -v unshare >/dev/null || { echo "chaos: error: 'unshare' is not installed; run with CHAOS_PRIVATE=0 only if nothing else uses libvirtd" >&2; exit 1; }
	CHAOS_HOST_QEMUS=$(pgrep -c qemu-system || true) CHAOS_NS=$$ exec unshare --mount --pid --net --fork --mount-proc --propagation private \
		bash "$0" "$@"
fi
AT=${CHAOS_AT:-}
# The hook that aims the fault needs a test build (make TEST_BUILD=1).
if [ -n "$AT" ] && [ -z "${SNAPMOVE:-}" ]; then
	SNAPMOVE=$(cd "$(dirname "$0")/.." && pwd)/build-test/snapmove
fi
. "$(dirname "$0")/lib.sh"

MOVES=${CHAOS_MOVES:-50}
TAG=${CHAOS_NS:-$$}
T_START=$(now_ns)
AT_DELAY_MS=${CHAOS_DELAY_MS:-200}
SEED=${CHAOS_SEED:-$TAG}
RANDOM=$SEED
SIZE_MIB=128
WRITE_LIMIT=$(((SIZE_MIB - 8) * 16))   # 64 KiB slots below the base's 0xaa

command -v libvirtd >/dev/null || die "libvirtd is not installed"
if [ -n "$AT" ]; then
	grep -q SNAPMOVE_TEST_HOOK "$SNAPMOVE" ||
		die "CHAOS_AT needs the test hooks: build '$SNAPMOVE' with 'make TEST_BUILD=1'"
fi
# libvirtd -d as this campaign runs it, and its process name.  The private one
# runs under another name (through a symlink: chaos-libvirtd), so that a
# 'pgrep -x libvirtd' outside, as the integration tests do to kill the host's,
# does not see it; its errors and warnings go to the work folder (kept with a
# move that lost writes or did not end), not to the host's
# /var/log/libvirt/libvirtd.log.
LIBVIRTD_NAME=libvirtd
LIBVIRTD_START="libvirtd -d"
if [ "$PRIVATE" = 1 ]; then
	LIBVIRTD_NAME=chaos-libvirtd
	LIBVIRTD_START="env LIBVIRT_LOG_OUTPUTS=3:file:$W/libvirtd.log /run/chaos/chaos-libvirtd -d"
fi

# The private libvirtd: tmpfs over /run (so /var/run, the qemu:///system
# socket, the pid files and the running domains' state), over
# /var/lib/libvirt/qemu (owned by libvirt-qemu, who writes the domains'
# folders), /var/cache/libvirt (a copy of the host's, so the QEMU capabilities
# are not probed again) and /etc/libvirt/qemu and /etc/libvirt/storage (the
# persistent domains and networks, the pools: none).  Its own virtlogd; the
# QEMU logs in /var/log/libvirt/qemu are shared (the domains' names differ).
# pgrep, kill and virsh here see only this libvirtd and its QEMUs; they all
# die with this script, pid 1 of the namespace.  Outside, they are seen as
# chaos-libvirtd and chaos-virtlogd.
private_libvirtd() {
	local u g
	u=$(id -u libvirt-qemu) g=$(id -g libvirt-qemu)
	mkdir -m 700 "$W/cache"
	cp -a /var/cache/libvirt/. "$W/cache/"
	mount -t tmpfs -o mode=0755 chaos-run /run
	mkdir -m 1777 /run/lock
	mkdir -m 755 /run/user
	ln -s /dev/shm /run/shm
	mount -t tmpfs -o "mode=0750,uid=$u,gid=$g" chaos-qemu-lib /var/lib/libvirt/qemu
	mount -t tmpfs -o mode=0711 chaos-cache /var/cache/libvirt
	cp -a "$W/cache/." /var/cache/libvirt/
	rm -rf "$W/cache"
	mount -t tmpfs -o mode=0755 chaos-etc-qemu /etc/libvirt/qemu
	[ ! -d /etc/libvirt/storage ] ||
		mount -t tmpfs -o mode=0755 chaos-etc-storage /etc/libvirt/storage
	mkdir -m 755 /run/chaos
	ln -s "$(command -v libvirtd)" /run/chaos/chaos-libvirtd
	ln -s "$(command -v virtlogd)" /run/chaos/chaos-virtlogd
	env LIBVIRT_LOG_OUTPUTS="3:file:$W/virtlogd.log" /run/chaos/chaos-virtlogd -d
	$LIBVIRTD_START
	libvirtd_wait
}

libvirtd_wait() {
	local i
	for i in $(seq 1 300); do
		virsh version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "libvirtd does not answer 30 s after its restart"
}
# The running libvirtd's pid (not a killed one not yet reaped).
libvirtd_pid() {
	pgrep -x -r R,S,D "$LIBVIRTD_NAME" | head -n1
}

# kill -9 the libvirtd (by its pid), start a new one, wait until it answers.
libvirtd_kill_restart() {
	local pid
	pid=$(libvirtd_pid)
	[ -n "$pid" ] && kill -9 "$pid"
	for _ in $(seq 1 50); do
		case "$(ps -o stat= -p "$pid" 2>/dev/null)" in "" | Z*) break ;; esac
		sleep 0.02
	done
	$LIBVIRTD_START
	libvirtd_wait
}
# Whatever happens, leave a libvirtd running.
chaos_exit() {
	local d
	[ "$PRIVATE" = 1 ] || pgrep -x libvirtd >/dev/null || libvirtd -d
	stop_writer
	for d in "${BENCH_DOMAINS[@]}"; do
		destroy_domain "$d"
		virsh -q undefine "$d" >/dev/null 2>&1 || true
	done
}
WRITER=
stop_writer() {
	[ -n "$WRITER" ] || return 0
	touch "$D/stop"
	wait "$WRITER" 2>/dev/null || true
	WRITER=
}
trap 'chaos_exit; bench_cleanup' EXIT

# The QEMU running guest NAME, if any (pid), whatever libvirt says.
qemu_of() {
	local p
	for p in $(pgrep -f "guest=$1(,|$| )" || true); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-name guest=$1[, ]" &&
			echo "$p" && return 0
	done
	return 0
}

define_domain() {  # NAME TOP
	cat >"$D/dom.xml" <<XML
<domain type='$(domain_type)'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
	BENCH_DOMAINS+=("$1")
	virsh -q define "$D/dom.xml" >/dev/null
	virsh -q start "$1" >/dev/null
}

# The guest: 64 KiB writes at slot i (offset i * 64 KiB) of pattern
# (i % 250) + 1, one after the other; "PATTERN OFFSET" appended to
# $D/acked once its HMP command returned without an error.
writer() {  # DOM
	local i=0 out
	: >"$D/acked"
	while [ ! -e "$D/stop" ] && [ "$i" -lt "$WRITE_LIMIT" ]; do
		out=$(virsh -q qemu-monitor-command "$1" --hmp \
			"qemu-io -d virtio-disk0/virtio-backend \"write -P $((i % 250 + 1)) $((i * 65536)) 64k\"" 2>&1) &&
			[ -z "$(tr -d '[:space:]' <<<"$out")" ] &&
			echo "$((i % 250 + 1)) $((i * 65536))" >>"$D/acked"
		i=$((i + 1))
		sleep 0.05
	done
}

# What libvirt and the journal say about a move that did not end, before its
# domain is destroyed: enough to reproduce it.
libvirt_state() {  # DOM
	echo "== virsh domstate --reason"; virsh domstate --reason "$1"
	echo "== virsh domblklist"; virsh domblklist "$1" --details
	echo "== virsh blockjob vda --info"; virsh blockjob "$1" vda --info
	echo "== query-block-jobs"; virsh qemu-monitor-command "$1" --pretty '{"execute":"query-block-jobs"}'
	echo "== query-named-block-nodes (flat)"
	virsh qemu-monitor-command "$1" '{"execute":"query-named-block-nodes","arguments":{"flat":true}}' |
		grep -o '"node-name": *"[^"]*"\|"file": *"[^"]*"' | paste - - || true
	echo "== journal"
	sqlite3 -cmd '.timeout 5000' "$D/j.db" '.mode line' 'SELECT * FROM job' 2>&1 || true
	echo "== virsh dumpxml"; virsh dumpxml "$1"
}

job_state() {  # the job's state and phase, "none" without a job
	local st
	st=$(sqlite3 -cmd '.timeout 5000' "$D/j.db" "SELECT state || ' ' || phase FROM job WHERE id = 1" \
		2>/dev/null) || st=
	echo "${st:-none}"
}

# One move with a fault; prints its line and adds to the totals.
TRIED=0 FAULTS=0 CHECKED=0 LOST=0 STUCK=0 ORPHANS=0 DONE=0 ABORTED=0 NOJOB=0
one_move() {  # K WINDOW_MS (0: no fault, a calibration run)
	local k=$1 window=$2 dom delay rc mpid t0 fault="none" tries log="" st outcome
	local final n lost pat off out
	D=$W/m$k
	mkdir -m 755 "$D" "$D/src" "$D/dst"
	qemu-img create -q -f raw "$D/src/base.raw" "${SIZE_MIB}M"
	qemu-io -f raw -c "write -P 0xaa $(((SIZE_MIB - 8) * 1048576)) 8M" "$D/src/base.raw" >/dev/null
	qemu-img create -q -f qcow2 -F raw -b base.raw "$D/src/top.qcow2"
	dom=smchaos-$TAG-$k
	define_domain "$dom" "$D/src/top.qcow2"
	writer "$dom" &
	WRITER=$!
	sleep 1
	t0=$(now_ns)
	if [ -n "$AT" ] && [ "$window" -gt 0 ]; then
		delay=$((RANDOM % AT_DELAY_MS))
		cat >"$D/hook" <<HOOK
#!/bin/bash
[ "\$1" = "$AT" ] || exit 0
setsid bash -c 'sleep $(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')
	sqlite3 -cmd ".timeout 5000" "$D/j.db" "SELECT phase FROM job WHERE id = 1" >"$D/fault.phase"
	kill -9 \$(pgrep -x -r R,S,D $LIBVIRTD_NAME | head -n1)
	sleep 0.05
	$LIBVIRTD_START' </dev/null >/dev/null 2>&1 &
touch "$D/faulted"
HOOK
		chmod 755 "$D/hook"
		SNAPMOVE_TEST_HOOK=$D/hook "$SNAPMOVE" --db "$D/j.db" move "$dom" --dest "$D/dst" \
			>"$D/move.out" 2>"$D/move.err" &
		mpid=$!
	else
		"$SNAPMOVE" --db "$D/j.db" move "$dom" --dest "$D/dst" >"$D/move.out" 2>"$D/move.err" &
		mpid=$!
	fi
	if [ -n "$AT" ] && [ "$window" -gt 0 ]; then
		for _ in $(seq 1 3000); do
			[ -e "$D/faulted" ] || ! kill -0 "$mpid" 2>/dev/null && break
			sleep 0.1
		done
		if [ -e "$D/faulted" ]; then
			sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 + 0.3 }')"
			libvirtd_wait
			fault="${delay} ms after '$AT' started ($(cat "$D/fault.phase" 2>/dev/null || echo ?), $(date -u -r "$D/faulted" +%T))"
			FAULTS=$((FAULTS + 1))
		else
			fault="none: the move never reached '$AT'"
		fi
	elif [ "$window" -gt 0 ]; then
		delay=$((RANDOM * 32768 + RANDOM))
		delay=$((delay % window))
		sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
		if kill -0 "$mpid" 2>/dev/null; then
			st=$(job_state)
			libvirtd_kill_restart
			[ "$st" != none ] || st="none no job yet"
			fault="at ${delay} ms (${st#* }, $(date -u +%T))"
			FAULTS=$((FAULTS + 1))
		else
			fault="none: the move ended before ${delay} ms"
		fi
	fi
	# A move that outlives 5 minutes is stuck: stop it as an admin would.
	for _ in $(seq 1 3000); do
		kill -0 "$mpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$mpid" 2>/dev/null; then
		log+=" move hung: SIGTERM;"
		kill -TERM "$mpid"
		sleep 10
		kill -9 "$mpid" 2>/dev/null || true
	fi
	rc=0
	wait "$mpid" || rc=$?
	[ "$window" -gt 0 ] || MOVE_MS=$((($(now_ns) - t0) / 1000000))
	log="move rc $rc;$log"
	tries=0
	while :; do
		st=$(job_state)
		case "$st" in done* | aborted* | none) break ;; esac
		tries=$((tries + 1))
		if [ "$tries" -gt 6 ]; then
			log+=" gave up"
			break
		fi
		local verb=resume
		[ "$tries" -le 3 ] || verb=abort
		rc=0
		timeout 300 "$SNAPMOVE" --db "$D/j.db" "$verb" 1 >"$D/$verb.$tries.out" \
			2>"$D/$verb.$tries.err" || rc=$?
		log+=" $verb rc $rc"
		if [ "$rc" != 0 ]; then
			log+=" ($(grep -m1 'snapmove: error:' "$D/$verb.$tries.err" | cut -c17-140))"
			touch "$D/keep"
		fi
		log+=";"
		# libvirt missed a pivot QEMU made: do what the refusal says (stop
		# the domain, point its definition at the destination overlay).
		local onto
		onto=$(sed -n "s/.*point its definition at '\([^']*\)' ('virsh edit.*/\1/p" \
			"$D/$verb.$tries.err")
		if [ -n "$onto" ]; then
			log+=" missed pivot: destroy, definition onto the destination overlay;"
			destroy_domain "$dom"
			virsh dumpxml --inactive "$dom" |
				sed "s|<source file='[^']*'|<source file='$onto'|" >"$D/redefine.xml"
			virsh -q define "$D/redefine.xml" >/dev/null
		fi
		# libvirtd lost the running domain: stop its QEMU (cleanly: SIGTERM
		# flushes and closes the images), as the refusal advises.
		local orphan
		orphan=$(sed -n 's/.*a QEMU still runs it (pid \([0-9]*\)).*/\1/p' "$D/$verb.$tries.err")
		if [ -n "$orphan" ]; then
			ORPHANS=$((ORPHANS + 1))
			log+=" lost domain: kill -TERM $orphan;"
			kill -TERM "$orphan" 2>/dev/null || true
			for _ in $(seq 1 100); do
				kill -0 "$orphan" 2>/dev/null || break
				sleep 0.1
			done
		fi
	done
	stop_writer
	st=$(job_state)
	outcome=${st%% *}
	case "$outcome" in
	none)
		NOJOB=$((NOJOB + 1))
		outcome="no job (the move stopped before it made one: $(grep -m1 'snapmove: error:' "$D/move.err" | cut -c17-140))"
		;;
	done) DONE=$((DONE + 1)) ;;
	aborted) ABORTED=$((ABORTED + 1)) ;;
	*)
		STUCK=$((STUCK + 1))
		outcome="not ended ($st)"
		libvirt_state "$dom" >"$D/state.txt" 2>&1 || true
		;;
	esac
	destroy_domain "$dom"
	local q
	q=$(qemu_of "$dom")
	if [ -n "$q" ]; then
		log+=" a QEMU of the guest still runs (pid $q): SIGTERM;"
		kill -TERM "$q" 2>/dev/null || true
		sleep 2
	fi
	final=$(virsh dumpxml --inactive "$dom" 2>/dev/null |
		xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" - 2>/dev/null || true)
	n=0 lost=0
	if [ -z "$final" ]; then
		log+=" no definition to read the final chain from;"
		n=$(wc -l <"$D/acked")
		lost=$n
	else
		while read -r pat off; do
			n=$((n + 1))
			out=$(qemu-io -r -U -f qcow2 -c "read -P $pat $off 64k" "$final" 2>&1) || true
			case "$out" in
			*"read 65536/65536"*) case "$out" in *failed*) lost=$((lost + 1)) ;; esac ;;
			*) lost=$((lost + 1)) ;;
			esac
			[ "$lost" = 0 ] || [ -e "$D/lost.$lost" ] || echo "$pat $off: $out" >"$D/lost.$lost"
		done <"$D/acked"
		out=$(qemu-io -r -U -f qcow2 -c "read -P 0xaa $(((SIZE_MIB - 8) * 1048576)) 8M" \
			"$final" 2>&1) || true
		case "$out" in *"read 8388608/8388608"*) ;; *) log+=" base data lost;"; lost=$((lost + 1)) ;; esac
	fi
	TRIED=$((TRIED + 1))
	CHECKED=$((CHECKED + n))
	LOST=$((LOST + lost))
	printf 'move %2d: fault %s; %s outcome %s on %s; writes %d acked, %d lost\n' \
		"$k" "$fault" "$log" "$outcome" "${final:-?}" "$n" "$lost"
	if [ "$lost" -gt 0 ] || [ -e "$D/state.txt" ] || [ -e "$D/keep" ]; then
		cat "$D"/lost.* "$D"/*.err >&2 2>/dev/null || true
		cp "$W"/*.log "$D/" 2>/dev/null || true
		cp -a "$D" "/var/tmp/snapmove-chaos-$TAG-$k" 2>/dev/null || true
		echo "  kept in /var/tmp/snapmove-chaos-$TAG-$k (seed $SEED)" >&2
	fi
	virsh -q undefine "$dom" >/dev/null 2>&1 || true
	BENCH_DOMAINS=()  # one domain at a time: nothing left for the exit to stop
	rm -rf "$D"
}

if [ "$PRIVATE" = 1 ]; then
	private_libvirtd
else
	pgrep -x libvirtd >/dev/null || die "libvirtd is not running"
fi
print_machine
if [ "$PRIVATE" = 1 ]; then
	echo "libvirtd: a private one (pid $(libvirtd_pid) in its own pid, mount and network namespaces), killed and restarted in each move; the host's is not touched"
	echo "outside the namespace: ${CHAOS_HOST_QEMUS:-?} QEMU process(es) of others running at start (the line above counts this namespace only)"
else
	echo "libvirtd: the host's (CHAOS_PRIVATE=0), killed and restarted in each move"
fi
echo "inputs: $MOVES moves of a ${SIZE_MIB} MiB qcow2-over-raw disk, guest writing; seed $SEED"
MOVE_MS=0
one_move 0 0
WINDOW=${CHAOS_WINDOW_MS:-$MOVE_MS}
if [ -n "$AT" ]; then
	echo "an undisturbed move took ${MOVE_MS} ms: libvirtd is killed 0 to ${AT_DELAY_MS} ms after '$AT' starts"
else
	echo "an undisturbed move took ${MOVE_MS} ms: libvirtd is killed at a random moment in [0, ${WINDOW}) ms"
fi
TRIED=0 FAULTS=0 CHECKED=0 LOST=0 STUCK=0 ORPHANS=0 DONE=0 ABORTED=0 NOJOB=0
for k in $(seq 1 "$MOVES"); do
	one_move "$k" "$WINDOW"
done
echo
echo "moves tried:      $TRIED"
echo "faults injected:  $FAULTS (libvirtd killed while the move ran)"
echo "domains lost:     $ORPHANS (libvirtd restarted without them; their QEMU stopped)"
echo "jobs done:        $DONE"
echo "jobs aborted:     $ABORTED"
echo "jobs not ended:   $STUCK"
echo "no job made:      $NOJOB (libvirtd killed before the move made its job: nothing changed)"
echo "writes checked:   $CHECKED"
echo "writes lost:      $LOST"
echo "run time:         $(secs "$T_START" "$(now_ns)") s (seed $SEED)"
[ "$LOST" = 0 ] && [ "$STUCK" = 0 ]
exit
}
