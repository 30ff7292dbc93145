#!/usr/bin/env bash
# run.sh: run the benchmarks in order (copy, move, scale, resume), each printing its
# inputs, per-round figures, medians and ratios.  Run by 'make bench' after
# setup and build; not part of 'make check'.  BENCH_ROUNDS=N changes the
# number of rounds (at least 3 for figures worth quoting), BENCH_SETTLE=S the
# pause after each page-cache drop, BENCH_WAIT_QUIET=S waits up to S seconds
# for a quiet machine first; arguments pick benchmarks by name
# (bash bench/run.sh copy scale).  Exits non-zero when any benchmark failed.
# copy and move measure the storage's limit with fio (Debian's package),
# which lib.sh's need_fio installs when it is missing.
set -u
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "bench: run as root (domains on qemu:///system, drop_caches)" >&2; exit 2; }

# BENCH_WAIT_QUIET=S: first wait up to S seconds for a quiet machine: no
# test suite of this project running (they start domains and copy images)
# and a one-minute load average below 1.
busy() {
	pgrep -f "tests/integration/" >/dev/null ||
		awk '{ exit !($1 >= 1) }' /proc/loadavg
}
quiet_wait=${BENCH_WAIT_QUIET:-0}
while [ "$quiet_wait" -gt 0 ] && busy; do
	sleep 5
	quiet_wait=$((quiet_wait - 5))
done
busy && [ "${BENCH_WAIT_QUIET:-0}" -gt 0 ] &&
	echo "bench: warning: the machine is still busy after ${BENCH_WAIT_QUIET} s; running anyway"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(copy move scale resume)

echo "== snapmove benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "host: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
	"kernel $(uname -r), /var/tmp on $(df -T /var/tmp | awk 'NR == 2 { print $2 }')"
echo "QEMU: $(qemu-system-x86_64 --version | head -n1)"
echo "fio: $(fio --version 2>/dev/null || echo "missing (copy and move install it)")"
echo "libvirt: $(virsh -c qemu:///system version 2>/dev/null | sed -n 's/^Using library: //p')," \
	"qemu-img $(qemu-img --version | head -n1 | awk '{ print $3 }'), $(cp --version | head -n1)"

failed=()
for n in "${names[@]}"; do
	echo
	start=$(date +%s)
	if bash "./$n.sh"; then
		echo "-- $n: done in $(($(date +%s) - start)) s"
	else
		failed+=("$n")
		echo "-- $n: FAILED after $(($(date +%s) - start)) s"
	fi
done
echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}"
	exit 1
fi
echo "bench: all done"
