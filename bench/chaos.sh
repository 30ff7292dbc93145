#!/usr/bin/env bash
# chaos.sh: libvirtd killed (kill -9, then restarted) at a random moment of each
# of CHAOS_MOVES live moves (default 50) while the guest writes, then
# 'snapmove resume' (or abort) until the job ends; every write the guest had
# acknowledged must be readable on the domain's final chain.  Run by hand, as
# root (not part of 'make bench' or 'make check'): it restarts the libvirtd
# every other user of this host shares, once per move.
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
# killed while the move ran), writes checked, writes lost (must be 0).
#   CHAOS_MOVES=20 CHAOS_SEED=7 bash bench/chaos.sh
#   CHAOS_MOVES=20 CHAOS_AT=pivot bash bench/chaos.sh
. "$(dirname "$0")/lib.sh"

MOVES=${CHAOS_MOVES:-50}
AT=${CHAOS_AT:-}
AT_DELAY_MS=${CHAOS_DELAY_MS:-200}
SEED=${CHAOS_SEED:-$$}
RANDOM=$SEED
SIZE_MIB=128
WRITE_LIMIT=$(((SIZE_MIB - 8) * 16))   # 64 KiB slots below the base's 0xaa

command -v libvirtd >/dev/null || die "libvirtd is not installed"
pgrep -x libvirtd >/dev/null || die "libvirtd is not running"

libvirtd_wait() {
	local i
	for i in $(seq 1 300); do
		virsh version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "libvirtd does not answer 30 s after its restart"
}

# kill -9 the libvirtd (by its pid), start a new one, wait until it answers.
libvirtd_kill_restart() {
	local pid
	pid=$(pgrep -x libvirtd | head -n1)
	[ -n "$pid" ] && kill -9 "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	libvirtd -d
	libvirtd_wait
}
# Whatever happens, leave a libvirtd running.
chaos_exit() {
	local d
	pgrep -x libvirtd >/dev/null || libvirtd -d
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

job_state() {  # the job's state column, "none" without a job
	sqlite3 -cmd '.timeout 5000' "$D/j.db" "SELECT state || ' ' || phase FROM job WHERE id = 1" \
		2>/dev/null || echo "none"
}

# One move with a fault; prints its line and adds to the totals.
TRIED=0 FAULTS=0 CHECKED=0 LOST=0 STUCK=0 ORPHANS=0
one_move() {  # K WINDOW_MS (0: no fault, a calibration run)
	local k=$1 window=$2 dom delay rc mpid t0 fault="none" tries log="" st outcome
	local final n lost pat off out
	D=$W/m$k
	mkdir -m 755 "$D" "$D/src" "$D/dst"
	qemu-img create -q -f raw "$D/src/base.raw" "${SIZE_MIB}M"
	qemu-io -f raw -c "write -P 0xaa $(((SIZE_MIB - 8) * 1048576)) 8M" "$D/src/base.raw" >/dev/null
	qemu-img create -q -f qcow2 -F raw -b base.raw "$D/src/top.qcow2"
	dom=smchaos-$$-$k
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
	kill -9 \$(pgrep -x libvirtd | head -n1)
	sleep 0.05
	libvirtd -d' </dev/null >/dev/null 2>&1 &
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
			fault="${delay} ms after '$AT' started ($(cat "$D/fault.phase" 2>/dev/null || echo ?))"
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
			fault="at ${delay} ms (${st#* })"
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
	case "$outcome" in done | aborted) ;; *) STUCK=$((STUCK + 1)) ;; esac
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
	if [ "$lost" -gt 0 ]; then
		cat "$D"/lost.* "$D"/*.err >&2 || true
		cp -a "$D" "/var/tmp/snapmove-chaos-lost-$$-$k" 2>/dev/null || true
		echo "  kept in /var/tmp/snapmove-chaos-lost-$$-$k" >&2
	fi
	virsh -q undefine "$dom" >/dev/null 2>&1 || true
	rm -rf "$D"
}

print_machine
echo "inputs: $MOVES moves of a ${SIZE_MIB} MiB qcow2-over-raw disk, guest writing; seed $SEED"
MOVE_MS=0
one_move 0 0
WINDOW=${CHAOS_WINDOW_MS:-$MOVE_MS}
if [ -n "$AT" ]; then
	echo "an undisturbed move took ${MOVE_MS} ms: libvirtd is killed 0 to ${AT_DELAY_MS} ms after '$AT' starts"
else
	echo "an undisturbed move took ${MOVE_MS} ms: libvirtd is killed at a random moment in [0, ${WINDOW}) ms"
fi
TRIED=0 FAULTS=0 CHECKED=0 LOST=0 STUCK=0 ORPHANS=0
for k in $(seq 1 "$MOVES"); do
	one_move "$k" "$WINDOW"
done
echo
echo "moves tried:      $TRIED"
echo "faults injected:  $FAULTS (libvirtd killed while the move ran)"
echo "domains lost:     $ORPHANS (libvirtd restarted without them; their QEMU stopped)"
echo "jobs not ended:   $STUCK"
echo "writes checked:   $CHECKED"
echo "writes lost:      $LOST"
[ "$LOST" = 0 ] && [ "$STUCK" = 0 ]
