#!/usr/bin/env bash
# run.sh: run the integration tests (tests/integration/t*.sh) one by one against
# the real libvirtd, and print "N passed, N failed".  A test passes only when
# it exits 0; there is no skip.  Usage: run.sh [PATTERN] (a substring of names).
set -u
cd "$(dirname "$0")"
pass=0
failed=()
for t in t[0-9]*.sh; do
	case "$t" in *"${1:-}"*) ;; *) continue ;; esac
	start=$(date +%s%N)
	echo "== $t"
	# A sanitized build (make SANITIZE=... integration) writes its ASan and
	# LSan reports to SM_SANITIZER_LOGS: a test that left one fails.
	san=${SM_SANITIZER_LOGS:-}
	if [ -n "$san" ]; then
		rm -rf "$san" && mkdir -p "$san"
	fi
	ok=true
	bash "$t" || ok=false
	if [ -n "$san" ] && [ -n "$(ls -A "$san")" ]; then
		cat "$san"/* >&2
		echo "   sanitizer report (above)"
		ok=false
	fi
	if $ok; then
		pass=$((pass + 1))
		echo "   ok ($((($(date +%s%N) - start) / 1000000)) ms)"
	else
		failed+=("$t")
		echo "   FAILED"
	fi
done
echo
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "integration: ${pass} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
