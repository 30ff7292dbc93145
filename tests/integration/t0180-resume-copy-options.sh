#!/usr/bin/env bash
# A resume copies the way the move was asked to: --copy-method and
# --parallel are journaled with the job (schema 011) and 'status' shows them.
# Before, a resume fell back to the 'auto' method and one copy per device of
# the destination, whatever the move had been given.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/dst2"
for n in 0 1; do
	new_image "$T/src/d$n.qcow2" qcow2 128M "0x1$n" 0 16M
done
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/d0.qcow2:qcow2" "vdb:$T/src/d1.qcow2:qcow2"

# Killed at the start of the copy: the job is journaled, nothing copied.
rc=0
SNAPMOVE_TEST_CRASH_AT=copy:start bash -c '"$@" >"$0.out" 2>"$0.err"' "$T/move" \
	"$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/dst" --copy-method readwrite \
	--parallel 2 2>/dev/null || rc=$?
[ "$rc" = 137 ] || { cat "$T/move.out" "$T/move.err" >&2; fail "move exited $rc, expected 137"; }
assert_contains "$T/move.err" "test crash at 'copy:start'"

sm status 1 >"$T/status.out"
assert_contains "$T/status.out" "  copy:     method readwrite, up to 2 disks at once"
guest_write "$dom" vda 0x21 32M 64k
expect_exit 0 sm resume 1
assert_contains "$T/err" "copying 2 disks, 2 at once"
for n in 0 1; do
	assert_contains "$T/err" "copied $T/dst/d$n.qcow2: "
	grep "copied $T/dst/d$n.qcow2: " "$T/err" | grep -q "(readwrite, verified)" ||
		{ cat "$T/err" >&2; fail "the resume did not copy d$n with the readwrite method"; }
done
sm status 1 >"$T/status.out"
assert_contains "$T/status.out" "job 1: done, phase done"
assert_contains "$T/status.out" "  copy:     method readwrite, up to 2 disks at once"

# A move without the options: status says what the default is.
expect_exit 0 sm move "$dom" --dest "$T/dst2" --disk vdb
sm status 2 >"$T/status.out"
assert_contains "$T/status.out" "  copy:     method auto, disks at once: one per device of the destination"

virsh -q destroy "$dom" >/dev/null
check_pattern "$T/dst/d0.qcow2" qcow2 0x10 0 16M
check_pattern "$T/dst/d0.qcow2" qcow2 0x21 32M 64k
check_pattern "$T/dst2/d1.qcow2" qcow2 0x11 0 16M
