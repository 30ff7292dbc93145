# lib.sh: shared helpers for the benchmarks, sourced by each bench/*.sh.
#
# Each benchmark gets its own work directory ($W, under /var/tmp, mode 0755 so
# QEMU can read it), its own copy of the snapmove binary (so a rebuild during a
# run does not mix versions), its own journals and domains, all removed on
# exit.  Results are kept as "ROUND COLUMN VALUE" lines in a file and printed
# by report(): one row per round, the medians, and ratios against a
# reference column.  No python: timing by date +%s%N, arithmetic in awk.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SNAPMOVE_BUILT=${SNAPMOVE:-$TOP/build/snapmove}
export LIBVIRT_DEFAULT_URI=qemu:///system
export LC_ALL=C
ROUNDS=${BENCH_ROUNDS:-${DEFAULT_ROUNDS:-3}}
BNAME=$(basename "$0" .sh)
W=$(mktemp -d /var/tmp/snapmove-bench.XXXXXX)
chmod 755 "$W"
BENCH_DOMAINS=()

# destroy_domain NAME: destroy a domain (all of ours are transient), retrying
# for a minute while libvirtd is unreachable (someone may be restarting it).
destroy_domain() {
	local i out
	for i in $(seq 1 60); do
		if out=$(virsh domstate "$1" 2>&1); then
			case $out in *"shut off"*) return 0 ;; esac
			virsh -q destroy "$1" >/dev/null 2>&1 || true
		else
			case $out in *"failed to get domain"* | *"not found"*) return 0 ;; esac
		fi
		sleep 1
	done
	echo "$BNAME: warning: could not destroy domain '$1': $out" >&2
}

bench_cleanup() {
	local d
	for d in "${BENCH_DOMAINS[@]}"; do
		destroy_domain "$d"
	done
	rm -rf "$W"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "$BNAME: error: $*" >&2
	exit 1
}

# The binary may be missing for a moment while someone rebuilds it: wait up to
# two minutes, then take a private copy for the whole benchmark.
take_snapmove() {
	local i
	for i in $(seq 1 120); do
		[ -x "$SNAPMOVE_BUILT" ] && break
		sleep 1
	done
	[ -x "$SNAPMOVE_BUILT" ] || die "'$SNAPMOVE_BUILT' is missing; run 'make' first"
	sleep 1  # a link in progress may have just created the file
	cp "$SNAPMOVE_BUILT" "$W/snapmove"
	SNAPMOVE=$W/snapmove
}
take_snapmove

can_drop_caches() {
	[ -w /proc/sys/vm/drop_caches ]
}

# In a guest whose virtio balloon has free page reporting, the memory the
# page cache held goes back to the hypervisor a second or two after it is
# freed, and touching it again costs a fault in the host.  A run that starts
# while that is under way is fast or slow by chance (2x apart here); one that
# starts after it is done pays for every page it touches, the same each time.
# So wait for it: BENCH_SETTLE seconds (default 3 there, 0 elsewhere).
free_page_reporting() {
	local d
	for d in /sys/bus/virtio/devices/*; do
		[ "$(cat "$d/device" 2>/dev/null)" = 0x0005 ] || continue
		[ "$(cut -c6 "$d/features" 2>/dev/null)" = 1 ] && return 0  # bit 5: REPORTING
	done
	return 1
}
if free_page_reporting; then
	SETTLE=${BENCH_SETTLE:-3}
else
	SETTLE=${BENCH_SETTLE:-0}
fi

# Before each timed run: write back everything, empty the page cache, settle.
drop_caches() {
	sync
	if can_drop_caches; then
		echo 3 >/proc/sys/vm/drop_caches
		sleep "$SETTLE"
	fi
}

now_ns() {
	date +%s%N
}

# Seconds between two now_ns readings, to the millisecond.
secs() {  # START_NS END_NS
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

mib() {  # BYTES
	awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'
}

# Allocated bytes of a file (what du counts).
alloc_bytes() {
	echo $(($(stat -c '%b * %B' "$1")))
}

# ROUND ORDER: the tools of a round, rotated by the round number, so each tool
# runs first, second, ... in turn and none always gets the coldest disk.
rotate() {  # ROUND TOOL...
	local r=$1 i n
	shift
	n=$#
	local tools=("$@")
	for ((i = 0; i < n; i++)); do
		echo "${tools[(i + r - 1) % n]}"
	done
}

# A file of random (incompressible) data, made once per benchmark.
random_file() {  # PATH MIB
	dd if=/dev/urandom of="$1" bs=1M count="$2" status=none
}

# place PATH RANDOM SKIP_MIB COUNT_MIB OFFSET_BYTES: copy COUNT MiB of the
# random file, from SKIP MiB in, into PATH at OFFSET (bytes), not truncating.
place() {
	dd if="$2" of="$1" bs=1M skip="$3" count="$4" seek="$5" oflag=seek_bytes \
		conv=notrunc status=none
}

record() {  # FILE ROUND COLUMN VALUE
	echo "$2 $3 $4" >>"$1"
}

# report FILE TITLE UNIT REF COLUMN...: a table with one row per round and a
# median row, then for each column but REF the ratio of its median to REF's
# and the median of the per-round ratios (the rounds are paired).  REF may
# name several references, comma-separated (cp,limit): one block of ratios
# for each.
report() {
	local file=$1 title=$2 unit=$3 ref=$4
	shift 4
	awk -v title="$title" -v unit="$unit" -v ref="$ref" -v cols="$*" '
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		for (i = 2; i <= n; i++) {
			t = a[i]
			for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--)
				a[j + 1] = a[j]
			a[j + 1] = t
		}
		if (n == 0)
			return ""
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ v[$1, $2] = $3; if (!($1 in seen)) { seen[$1] = 1; rounds[++nr] = $1 } }
	END {
		nc = split(cols, c, " ")
		w = 10
		for (i = 1; i <= nc; i++)
			if (length(c[i]) + 2 > w)
				w = length(c[i]) + 2
		printf "\n%s (%s)\n", title, unit
		printf "%-8s", "round"
		for (i = 1; i <= nc; i++)
			printf "%" w "s", c[i]
		printf "\n"
		for (r = 1; r <= nr; r++) {
			printf "%-8s", rounds[r]
			for (i = 1; i <= nc; i++) {
				x = ((rounds[r], c[i]) in v) ? v[rounds[r], c[i]] : "-"
				printf "%" w "s", x
				if (x != "-")
					all[c[i]] = all[c[i]] " " x
			}
			printf "\n"
		}
		printf "%-8s", "median"
		for (i = 1; i <= nc; i++) {
			m[c[i]] = median(all[c[i]])
			printf "%" w "s", m[c[i]] == "" ? "-" : sprintf("%.3f", m[c[i]])
		}
		printf "\n"
		printf "%-8s", "min"
		for (i = 1; i <= nc; i++) {
			n = split(all[c[i]], a, " ")
			lo = ""
			for (j = 1; j <= n; j++)
				if (lo == "" || a[j] + 0 < lo + 0)
					lo = a[j]
			printf "%" w "s", lo == "" ? "-" : sprintf("%.3f", lo)
		}
		printf "\n"
		nref = split(ref, refs, ",")
		for (k = 1; k <= nref; k++) {
			rf = refs[k]
			if (m[rf] == "" || m[rf] + 0 == 0)
				continue
			printf "ratios to %s: median/median (median of per-round ratios)\n", rf
			for (i = 1; i <= nc; i++) {
				if (c[i] == rf || m[c[i]] == "")
					continue
				pr = ""
				for (r = 1; r <= nr; r++)
					if (((rounds[r], c[i]) in v) && ((rounds[r], rf) in v) &&
					    v[rounds[r], rf] + 0 != 0)
						pr = pr " " v[rounds[r], c[i]] / v[rounds[r], rf]
				printf "  %-28s %6.3f  (%.3f)\n", c[i], m[c[i]] / m[rf], median(pr)
			}
		}
	}' "$file"
}

# median FILE COLUMN: the median of one column, for a verdict line.
median_of() {  # FILE COLUMN
	awk -v col="$2" '$2 == col { a[++n] = $3 }
	END {
		for (i = 2; i <= n; i++) {
			t = a[i]
			for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--)
				a[j + 1] = a[j]
			a[j + 1] = t
		}
		if (n) printf "%.3f", n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}' "$1"
}

# verdict NAME VALUE OP LIMIT: "met" or "NOT met" for VALUE OP LIMIT.
verdict() {  # TEXT VALUE OP LIMIT
	awk -v t="$1" -v x="$2" -v op="$3" -v l="$4" 'BEGIN {
		ok = (op == "<=") ? (x + 0 <= l + 0) : (x + 0 < l + 0)
		printf "goal: %s: %.3f %s %s: %s\n", t, x, op, l, ok ? "met" : "NOT met"
	}'
}

print_machine() {
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "work dir: $W on $(df -T "$W" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
	echo "snapmove: $("$SNAPMOVE" --version 2>&1 | head -n1), binary built $(date -u -r "$SNAPMOVE_BUILT" "+%F %T UTC" 2>/dev/null), sha256 $(sha256sum "$SNAPMOVE" | cut -c1-12); tree at $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo "?")$(git -C "$TOP" diff --quiet HEAD -- src 2>/dev/null || echo " with uncommitted changes in src/")"
	echo "page cache dropped before each timed run: $(can_drop_caches && echo yes || echo 'no (not writable)')"
	echo "free page reporting (virtio balloon): $(free_page_reporting && echo yes || echo no); settle after each drop: $SETTLE s"
	echo "rounds: $ROUNDS (tools rotate their order each round)"
	echo "at start: load average $(cut -d" " -f1-3 /proc/loadavg), $(others_running) other QEMU process(es) running"
	[ "$(others_running)" = 0 ] ||
		echo "note: other domains are running; idle ones cost little, busy ones make figures noisy"
}

# --- domains ------------------------------------------------------------

domain_type() {
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" = kvm ]; then
		echo kvm
	else
		echo qemu
	fi
}

# start_domain NAME PATH FORMAT: a transient domain with no OS and one virtio
# disk vda; returns when QEMU runs.
start_domain() {
	local name=$1 path=$2 fmt=$3
	cat >"$W/$name.xml" <<XML
<domain type='$(domain_type)'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='$fmt'/>
      <source file='$path'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
	BENCH_DOMAINS+=("$name")
	virsh -q create "$W/$name.xml" >/dev/null
}

stop_domain() {  # NAME
	destroy_domain "$1"
}

qemu_pid() {  # DOMAIN
	cat "/run/libvirt/qemu/$1.pid"
}

# CPU seconds (user + system) a process has used, all its threads.
cpu_secs() {  # PID
	cpu_secs_of "/proc/$1/stat"
}

cpu_secs_of() {  # /proc/.../stat
	awk -v hz="$(getconf CLK_TCK)" '{
		sub(/^.*\) /, "")   # the command name may hold spaces
		printf "%.2f", ($12 + $13) / hz   # utime, stime: fields 14, 15 of stat
	}' "$1"
}

# CPU seconds of the vCPU threads ("CPU 0/KVM", "CPU 0/TCG") of a QEMU process;
# the rest of its CPU time is the main loop, I/O workers and block jobs.
vcpu_secs() {  # PID
	local t sum=0
	for t in /proc/"$1"/task/*; do
		case $(cat "$t/comm" 2>/dev/null) in
		"CPU "[0-9]*/*) sum="$sum $(cpu_secs_of "$t/stat")" ;;
		esac
	done
	echo $sum | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s }'
}

# A domain with no OS keeps its vCPU busy for some seconds while the firmware
# looks for something to boot; wait (at most 30 s) until the vCPU threads use
# less than 10 % of a CPU, so that does not count as the move's cost.
wait_domain_idle() {  # PID
	local i c0 c1 calm=0
	for i in $(seq 1 60); do
		c0=$(vcpu_secs "$1")
		sleep 0.5
		c1=$(vcpu_secs "$1")
		if awk -v a="$c0" -v b="$c1" 'BEGIN { exit !(b - a < 0.05) }'; then
			calm=$((calm + 1))
			[ $calm -lt 2 ] || return 0
		else
			calm=0
		fi
	done
	echo "$BNAME: warning: the domain's vCPU is still busy after 30 s" >&2
}

# The file the domain's vda is on now.
disk_source() {  # DOMAIN
	virsh domblklist "$1" --details | awk '$3 == "vda" { print $4 }'
}

# --- other activity -----------------------------------------------------

# QEMU processes that are not this benchmark's: other people's domains
# competing for the two CPUs and the disk.
others_running() {
	local n=0 p
	for p in $(pgrep qemu-system || true); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "guest=smbench-[a-z]*-$$-" ||
			n=$((n + 1))
	done
	echo "$n"
}

# Call right after each timed run; busy_summary prints how many of them ended
# while this project's integration tests were running (they start domains and
# copy images on the same two CPUs and disk), so a reader knows how far to
# trust the figures.
TIMED_RUNS=0
BUSY_RUNS=0
note_others() {
	TIMED_RUNS=$((TIMED_RUNS + 1))
	if pgrep -f "tests/integration/" >/dev/null; then
		BUSY_RUNS=$((BUSY_RUNS + 1))
	fi
}

busy_summary() {
	echo "timed runs that ended while integration tests ran: $BUSY_RUNS of $TIMED_RUNS"
}

# --- the storage's limit: fio ---------------------------------------------
#
# The 'limit' column: what this storage gives a copy at best.  fio reads the
# bytes a tool copies from the source (the same extents of the same file)
# and writes as many to a new destination file (made as the copier makes
# it: truncated to the source's size, nothing allocated, written at the
# same offsets) at the same time, with O_DIRECT and a final fsync, at the
# request size and depth a short sweep at the start found best.
# 'limit-verify' adds a second reader of the same bytes: the I/O a verified
# copy cannot do without (read twice, written once).  The time is fio's
# own, at the rates the jobs kept while all of them ran: fio starts its jobs
# tens of ms to seconds apart (the writer first fills its buffers with
# random data, 15 ms a MiB on this busy VM, and bs x iodepth of them), a lag
# no copier has, so the two jobs never fully overlap.  From the per-request
# latency logs (Unix-epoch ms): the window where all jobs ran, each job's
# bytes completed in it, and so its rate while the others ran; the time is
# the slowest job's bytes at its rate, plus the writer's final fsync (fio's
# runtime of the job past its last completion).  A request counts in the
# window for the share of its life (submission to completion) spent there:
# with 16 MiB requests 16 deep, a 1 GiB job is 64 requests, and counting
# only those completed in the window made one round's rate 5x too low
# (2026-12-02: 17.9 s "limit" from a fio that ran 1.2 s).  The time is
# never more than the jobs' whole span, lags included.  Where the window is
# under a quarter of the longest job, all of it counts, lag included (flagged).
# fio's start-up (about 0.7 s here: forks, a 100 ms poll) is left out; the
# lag, the overlap and fio's whole wall time are printed beside.

# fio comes from Debian's package; installed here when missing, so 'make
# bench' (and each script alone) has it.
need_fio() {
	command -v fio >/dev/null && return 0
	[ "$(id -u)" = 0 ] || die "'fio' is missing; install it with 'apt-get install fio'"
	echo "$BNAME: installing fio (apt-get install fio)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends fio >&2 ||
		{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends fio >&2; } ||
		die "cannot install 'fio'; install it with 'apt-get install fio'"
}

# io_uring where this kernel and fio allow it, else libaio.
fio_engine() {
	local e=libaio
	truncate -s 1M "$W/fio-probe"
	if fio --name=probe --filename="$W/fio-probe" --size=1M --bs=64k --rw=read \
		--direct=1 --ioengine=io_uring --output=/dev/null >/dev/null 2>&1; then
		e=io_uring
	fi
	rm -f "$W/fio-probe"
	echo "$e"
}

# Set by the benchmark before fio_run: the source, the destination's size,
# and fio's options that pick the bytes (offset/size, or zones for extents).
FIO_SRC=
FIO_DST_SIZE=
FIO_LAYOUT=
FIO_ENGINE=
FIO_BS=
FIO_QD=

# fio_prepare DST: the destination as the copier makes it (untimed).
fio_prepare() {
	rm -f "$1"
	truncate -s "$FIO_DST_SIZE" "$1"
}

# fio_run MODE BS QD DST: one cold run (the caller prepared DST and dropped
# the cache); MODE rw (read + write) or verify (read twice + write).  Sets
# FIO_SECS (fio's time, see above), FIO_WALL (the whole command), FIO_LAG_MS
# (how long after the first reader the writer started), FIO_OVERLAP (the
# window where all ran, % of the longest job; -1: too short, all counted),
# FIO_FSYNC_MS, FIO_RMBS, FIO_WMBS (MB/s over FIO_SECS).
fio_run() {
	local mode=$1 bs=$2 qd=$3 dst=$4 job=$W/fio.job t0 t1 opt
	{
		echo "[global]"
		echo "ioengine=$FIO_ENGINE"
		echo "direct=1"
		echo "bs=$bs"
		echo "iodepth=$qd"
		for opt in $FIO_LAYOUT; do echo "$opt"; done
		echo "[read]"
		echo "filename=$FIO_SRC"
		echo "rw=read"
		if [ "$mode" = verify ]; then
			echo "[reread]"
			echo "filename=$FIO_SRC"
			echo "rw=read"
		fi
		echo "[write]"
		echo "filename=$dst"
		echo "rw=write"
		echo "fallocate=none"
		echo "end_fsync=1"
	} >"$job"
	rm -f "$W"/fiolat_*.log
	t0=$(now_ns)
	fio --output-format=terse --terse-version=3 --output="$W/fio.terse" \
		--write_lat_log="$W/fiolat" --log_unix_epoch=1 "$job" >"$W/fio.log" 2>&1 ||
		{ cat "$W/fio.log" "$W/fio.terse" >&2; die "fio failed (bs $bs, iodepth $qd, $mode)"; }
	t1=$(now_ns)
	FIO_WALL=$(secs "$t0" "$t1")
	local nj rt rb wb i span
	# Terse version 3: one line per job; 3 name, 5 error, 6 read KiB,
	# 47 write KiB, 50 write runtime (ms, with the final fsync).
	awk -F';' '$5 != 0 { bad = 1 } END { exit bad }' "$W/fio.terse" ||
		die "fio reported an error (bs $bs, iodepth $qd, $mode)"
	nj=$(awk -F';' 'NF > 50 { n++ } END { print n + 0 }' "$W/fio.terse")
	rt=$(awk -F';' '$3 == "write" { print $50 }' "$W/fio.terse")
	rb=$(awk -F';' 'NF > 50 { s += $6 * 1024 } END { printf "%.0f", s }' "$W/fio.terse")
	wb=$(awk -F';' 'NF > 50 { s += $47 * 1024 } END { printf "%.0f", s }' "$W/fio.terse")
	# fio's time (see above), from the latency logs (one line per request:
	# completion time in Unix-epoch ms, latency in ns, direction, bytes), in job
	# order (read, [reread,] write): each job's span from its first
	# submission to its last completion, the window where all ran, each job's
	# rate in that window, and the time at those rates; with the writer's
	# final fsync (its first submission plus fio's runtime, past its last
	# completion) on top.
	span=$(for ((i = 1; i <= nj; i++)); do
		awk -F', *' -v j="$i" '{ printf "%d %.0f %.3f %.0f\n", j, $1, $1 - $2 / 1e6, $4 }' \
			"$W/fiolat_lat.$i.log"
	done | awk -v rt="$rt" -v nj="$nj" '
		{
			j = $1; n[j]++; t[j, n[j]] = $2; q[j, n[j]] = $3; b[j, n[j]] = $4; tot[j] += $4
			if (!(j in s) || $3 < s[j]) s[j] = $3
			if (!(j in e) || $2 > e[j]) e[j] = $2
		}
		END {
			S = s[1]; E = e[1]; long = 0
			for (j = 1; j <= nj; j++) {
				if (s[j] > S) S = s[j]
				if (e[j] < E) E = e[j]
				if (e[j] - s[j] > long) long = e[j] - s[j]
			}
			fs = s[nj] + rt - e[nj]
			if (fs < 0) fs = 0
			ov = E - S
			time = 0
			if (ov > 0.25 * long) {
				for (j = 1; j <= nj; j++) {
					in_ = 0
					# each request counts for the share of its life
					# (submission to completion) inside the window
					for (k = 1; k <= n[j]; k++) {
						lo = q[j, k] > S ? q[j, k] : S
						hi = t[j, k] < E ? t[j, k] : E
						if (t[j, k] > q[j, k]) {
							if (hi > lo) in_ += b[j, k] * (hi - lo) / (t[j, k] - q[j, k])
						} else if (t[j, k] > S && t[j, k] <= E)
							in_ += b[j, k]
					}
					if (in_ > 0 && tot[j] * ov / in_ > time) time = tot[j] * ov / in_
				}
			}
			st = s[1]; en = e[1]
			for (j = 2; j <= nj; j++) { if (s[j] < st) st = s[j]; if (e[j] > en) en = e[j] }
			# never longer than the jobs really took, lags included
			if (time > en - st) time = en - st
			if (time == 0) {   # too little overlap to measure: all of it, lags included
				time = en - st
				ov = -1
			}
			printf "%.3f %.0f %.0f %.0f\n", (time + fs) / 1000, s[nj] - s[1],
				ov < 0 ? -1 : 100 * ov / long, fs
		}')
	read -r FIO_SECS FIO_LAG_MS FIO_OVERLAP FIO_FSYNC_MS <<<"$span"
	FIO_RMBS=$(awk -v b="$rb" -v s="$FIO_SECS" 'BEGIN { printf "%.0f", b / 1e6 / s }')
	FIO_WMBS=$(awk -v b="$wb" -v s="$FIO_SECS" 'BEGIN { printf "%.0f", b / 1e6 / s }')
	FIO_RBYTES=$rb
	FIO_WBYTES=$wb
}

fio_overlap() {
	if [ "$FIO_OVERLAP" -lt 0 ]; then echo "short"; else echo "$FIO_OVERLAP%"; fi
}

# fio_sweep: one cold run of read + write per (request size, depth) of
# BENCH_FIO_BS x BENCH_FIO_QD; prints the table and sets FIO_BS, FIO_QD to the
# fastest.
fio_sweep() {
	local bs qd best=
	local dst=$W/fio-sweep.out
	FIO_ENGINE=$(fio_engine)
	echo "limit: fio $(fio --version | sed 's/^fio-//'), ioengine $FIO_ENGINE, direct, read + write at once, final fsync"
	echo "limit: sweep (one cold run each; MB/s over fio's time; lag: the writer's start after the reader's;"
	echo "       overlap: the window where both ran, % of the longer job; fsync: the final one, ms)"
	printf "  %-6s %7s %9s %9s %10s %7s %8s %6s %9s\n" bs iodepth "time_s" "read_MB/s" "write_MB/s" \
		"lag_ms" "overlap" "fsync" "fio_wall"
	for bs in ${BENCH_FIO_BS:-1M 4M 16M}; do
		for qd in ${BENCH_FIO_QD:-1 4 16}; do
			fio_prepare "$dst"
			drop_caches
			fio_run rw "$bs" "$qd" "$dst"
			printf "  %-6s %7s %9s %9s %10s %7s %8s %6s %9s\n" "$bs" "$qd" "$FIO_SECS" \
				"$FIO_RMBS" "$FIO_WMBS" "$FIO_LAG_MS" "$(fio_overlap)" "$FIO_FSYNC_MS" "$FIO_WALL"
			if [ -z "$best" ] || awk -v a="$FIO_SECS" -v b="$best" 'BEGIN { exit !(a < b) }'; then
				best=$FIO_SECS
				FIO_BS=$bs
				FIO_QD=$qd
			fi
		done
	done
	rm -f "$dst"
	echo "limit: chosen bs $FIO_BS, iodepth $FIO_QD ($best s in the sweep)"
}
