#!/usr/bin/env bash
# The test hooks exist only in test builds (make integration builds
# build-test/snapmove with -DSM_TEST_BUILD): the release binary ($SNAPMOVE_RELEASE,
# build/snapmove) ignores SNAPMOVE_TEST_HOOK (the program is never run) and
# SNAPMOVE_TEST_CRASH_AT (it does not kill itself) and moves as asked; the
# test binary honours both.
. "$(dirname "$0")/lib.sh"

REL=${SNAPMOVE_RELEASE:-$TOP/build/snapmove}
[ -x "$REL" ] || fail "no release binary '$REL': run 'make' first"
[ "$(realpath "$REL")" != "$(realpath "$SNAPMOVE")" ] || fail "the release binary is the test binary '$SNAPMOVE'"

mkdir -m 755 "$T/src" "$T/dst1" "$T/dst2"
new_image "$T/src/disk.qcow2" qcow2 64M 0x21 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
printf '#!/bin/bash\necho "$*" >>%s/test-hook.ran\n' "$T" >"$T/hook"
chmod 755 "$T/hook"

case_release() {
	SNAPMOVE_TEST_HOOK=$T/hook SNAPMOVE_TEST_CRASH_AT=copy:start \
		expect_exit 0 "$REL" --db "$DB" move "$dom" --dest "$T/dst1"
	assert_absent "$T/test-hook.ran"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst1/disk.qcow2 qcow2" "the chain after the move"
	! grep -q SNAPMOVE_TEST_ "$REL" || fail "the release binary holds the names of the test hooks"
}
run_case "the release binary ignores SNAPMOVE_TEST_HOOK and SNAPMOVE_TEST_CRASH_AT" case_release

case_test() {
	local rc=0
	SNAPMOVE_TEST_HOOK=$T/hook SNAPMOVE_TEST_CRASH_AT=copy:start \
		bash -c '"$@" >"$0.out" 2>"$0.err"' "$T/move2" \
		"$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/dst2" 2>/dev/null || rc=$?
	assert_eq "$rc" 137 "exit status of the test binary's move (killed at copy:start)"
	[ -s "$T/test-hook.ran" ] || fail "the test binary did not run SNAPMOVE_TEST_HOOK"
	expect_exit 0 sm abort 2
}
run_case "the test binary honours them" case_test

cases_done
