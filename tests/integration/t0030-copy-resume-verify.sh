#!/usr/bin/env bash
# The copier inside a move: a copy killed with SIGKILL after two of four
# chunks resumes with the other two only; 'snapmove verify' re-reads the
# finished copies from the storage and finds a flipped byte.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
# base.raw: 8 MiB of data in each of four 64 MiB chunks.
new_image "$T/src/base.raw" raw 256M 0x11 0 8M 0x12 64M 8M 0x13 128M 8M 0x14 192M 8M
new_overlay "$T/src/top.qcow2" base.raw raw 0x21 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/top.qcow2:qcow2"

rc=0
SNAPMOVE_TEST_CRASH_AT=copy:chunk bash -c '"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' \
	"$T/move" "$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/dst" 2>/dev/null || rc=$?
assert_eq "$rc" 137 "exit of the killed move"
# Two chunks of base.raw were journaled before the crash.
assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM chunk WHERE depth = 1")" 2 "chunks journaled"

expect_exit 0 sm resume 1
assert_contains "$T/err" "copied $T/dst/base.raw: resumed after chunk 2, 16.0 MiB of 32.0 MiB copied now"
assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM chunk WHERE depth = 1")" 4 "chunks journaled"
assert_eq "$(sqlite3 "$DB" "SELECT copy_method FROM image WHERE depth = 1")" direct "copy path"
cmp -s "$T/src/base.raw" "$T/dst/base.raw" || fail "the resumed copy differs from the source"

expect_exit 0 sm verify 1
assert_contains "$T/out" "$T/dst/base.raw: 4 chunks match"
assert_contains "$T/out" "ok: 32.0 MiB re-read from the storage"

# A byte flipped in the third chunk of the moved base image.
virsh -q destroy "$dom" >/dev/null
printf '\xff' | dd of="$T/dst/base.raw" bs=1 seek=$((128 * 1024 * 1024 + 4096)) conv=notrunc status=none
expect_exit 1 sm verify 1
assert_contains "$T/out" "chunk 2 (offset 134217728, 67108864 bytes) DIFFERS"
assert_contains "$T/out" "MISMATCH"
