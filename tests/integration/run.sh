#!/usr/bin/env bash
# run.sh: run the integration tests (tests/integration/t*.sh) against the real
# libvirtd, N at once, and print "N passed, N skipped, N failed".  A test passes
# only when it exits 0.  A test that cannot run on this host (a kernel without
# device-mapper) prints "SKIP: REASON" and exits 77 (lib.sh's sm_skip): it is
# counted as skipped, with its reason, never as passed, and fails nothing.
#   Usage: run.sh [-j N] [PATTERN]   (PATTERN: a substring of names)
# N: -j, else $SM_TEST_JOBS, else 3 (most of a test's time is spent waiting on
# QEMU and libvirtd, not on a CPU).  Each test's output is printed as one block
# when it ends.  A test with a '# serial: REASON' line runs alone, after the
# others, with no other test running: it kills libvirtd, counts what runs on
# the host, or depends on timing that another test's load would upset.
set -u
cd "$(dirname "$0")"
jobs=${SM_TEST_JOBS:-3}
if [ "${1:-}" = -j ]; then
	jobs=${2:-}
	shift 2 || shift
fi
case "$jobs" in
'' | *[!0-9]* | 0) echo "run.sh: -j takes a number of tests at once, not '$jobs'" >&2; exit 2 ;;
esac
pattern=${1:-}
# A sanitized build (make SANITIZE=... integration) writes each test's ASan and
# LSan reports to SM_SANITIZER_LOGS/TEST (log_path, set here per test): a test
# that left one fails.
san=${SM_SANITIZER_LOGS:-}
out=$(mktemp -d "${TMPDIR:-/tmp}/snapmove-run.XXXXXX")
# Loop devices over the tests' files (block-device tests make them) whose
# file is gone with its test's folder: every test removes its own, so one
# left behind fails the run (a device over a file that still exists belongs
# to a test still running, here or in another run).
test_loops() {
	local dev file
	command -v losetup >/dev/null || return 0
	losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null |
		while read -r dev file; do
			file=${file% (deleted)}
			case "$file" in /var/tmp/snapmove-test.*) ;; *) continue ;; esac
			[ -e "$file" ] || echo "$dev $file"
		done | sort
}
loops_before=$(test_loops)
pass=0
failed=()
skipped=()
declare -A pid_test=() started=()

# Each test in its own process group (kill -- -PID stops all of it).
set -m
stop_all() {
	local p t
	for p in "${!pid_test[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null
	done
	wait 2>/dev/null
	# What the tests still running had printed.
	for t in "${pid_test[@]}"; do
		echo "== $t (interrupted)"
		cat "$out/${t%.sh}.log"
	done
	rm -rf "$out"
	echo "integration: interrupted" >&2
	exit 130
}
trap stop_all INT TERM

start_test() {  # TEST
	local t=$1 name=${1%.sh}
	if [ -n "$san" ]; then
		rm -rf "${san:?}/$name" && mkdir -p "$san/$name"
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$san/$name/report" \
			bash "$t" </dev/null >"$out/$name.log" 2>&1 &
	else
		bash "$t" </dev/null >"$out/$name.log" 2>&1 &
	fi
	pid_test[$!]=$t
	started[$t]=$(date +%s%N)
}

# Wait for one running test to end; print its block and count it.
finish_one() {
	local pid rc=0 t name ok=true
	wait -n -p pid || rc=$?
	t=${pid_test[$pid]}
	unset "pid_test[$pid]"
	name=${t%.sh}
	echo "== $t"
	cat "$out/$name.log"
	if [ "$rc" = 77 ] && grep -q '^SKIP: ' "$out/$name.log"; then
		skipped+=("$t")
		echo "   skipped: $(sed -n 's/^SKIP: //p' "$out/$name.log" | head -n 1)"
		return
	fi
	[ "$rc" = 0 ] || ok=false
	if [ -n "$san" ] && [ -n "$(ls -A "$san/$name")" ]; then
		cat "$san/$name"/*
		echo "   sanitizer report (above)"
		ok=false
	fi
	if $ok; then
		pass=$((pass + 1))
		echo "   ok ($((($(date +%s%N) - ${started[$t]}) / 1000000)) ms)"
	else
		failed+=("$t")
		echo "   FAILED"
	fi
}

together=() alone=()
for t in t[0-9]*.sh; do
	case "$t" in *"$pattern"*) ;; *) continue ;; esac
	reason=$(sed -n 's/^# serial:[[:space:]]*//p' "$t" | head -n 1)
	if grep -q '^# serial:' "$t"; then
		if [ -z "$reason" ]; then
			echo "== $t"
			echo "run.sh: '$t' says '# serial:' without a reason; add it"
			echo "   FAILED"
			failed+=("$t")
			continue
		fi
		alone+=("$t")
	else
		together+=("$t")
	fi
done
echo "integration: ${#together[@]} tests, $jobs at once, then ${#alone[@]} alone"

for t in "${together[@]}"; do
	while [ ${#pid_test[@]} -ge "$jobs" ]; do
		finish_one
	done
	start_test "$t"
done
while [ ${#pid_test[@]} -gt 0 ]; do
	finish_one
done
for t in "${alone[@]}"; do
	start_test "$t"
	finish_one
done
rm -rf "$out"

left=$(comm -13 <(echo "$loops_before") <(test_loops) | sed '/^$/d')
if [ -n "$left" ]; then
	echo "== loop devices left behind by the tests (now detached):"
	echo "$left" | sed 's/^/   /'
	echo "$left" | while read -r dev _; do losetup -d "$dev" 2>/dev/null || true; done
	failed+=("(loop devices left behind)")
fi

echo
[ ${#skipped[@]} -eq 0 ] || echo "skipped: ${skipped[*]}"
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "integration: ${pass} passed, ${#skipped[@]} skipped, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
