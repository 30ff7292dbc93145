#!/usr/bin/env bash
# A source image that another process holds open (QEMU's lock on it, here a
# qemu-io) is not deleted under it: 'cleanup' keeps it and names the process;
# once that process is gone, 'cleanup' deletes it.
. "$(dirname "$0")/lib.sh"

DOM=$(dom_name)
C=$T/c
mkdir -m 755 "$C" "$C/src" "$C/dst"
new_image "$C/src/base.raw" raw 64M 0x81 0 1M
new_overlay "$C/src/top.qcow2" base.raw raw 0x82 1M 1M
make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
expect_exit 0 sm move "$DOM" --dest "$C/dst"

# Another user of the old base: a qemu-io that keeps it open (and locked).
qemu-io -f raw -c 'sleep 60000' "$C/src/base.raw" >/dev/null 2>&1 &
HOLDER=$!
defer "kill $HOLDER 2>/dev/null || true"
for _ in $(seq 50); do
	[ -n "$(find "/proc/$HOLDER/fd" -lname "$C/src/base.raw" 2>/dev/null)" ] && break
	sleep 0.1
done
[ -n "$(find "/proc/$HOLDER/fd" -lname "$C/src/base.raw" 2>/dev/null)" ] ||
	fail "qemu-io did not open the image"

note "cleanup keeps an image open in another process and names it"
expect_exit 0 sm cleanup 1
assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
assert_contains "$T/err" "kept $C/src/base.raw: it is open in qemu-io (pid $HOLDER)"
assert_contains "$T/err" "which holds QEMU's lock on it"
[ -f "$C/src/base.raw" ] || fail "an image open in qemu-io was deleted"

note "once the process is gone, cleanup deletes it"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
expect_exit 0 sm cleanup 1
assert_contains "$T/err" "deleted $C/src/base.raw ("
assert_absent "$C/src/base.raw"
