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
assert_eq "$(sqlite3 "$DB" "SELECT copy_method FROM image WHERE depth = 1")" direct-uring "copy path"
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

# The direct path checks chunk N while it copies chunk N+1.
# crash_durable NAME P1 P2 P3 P4: a move of a fresh domain over a base whose
# four chunks hold 8 MiB of pattern P1..P4 each, killed right after chunk 1
# was journaled durable (its check not done); sets $job and $dir.
crash_durable() {
	local name=$1 rc=0 dom
	dir=$T/$name
	mkdir -m 755 "$dir" "$dir/src" "$dir/dst"
	new_image "$dir/src/base.raw" raw 256M "$2" 0 8M "$3" 64M 8M "$4" 128M 8M "$5" 192M 8M
	new_overlay "$dir/src/top.qcow2" base.raw raw 0x41 1M 1M
	dom=$(dom_name "$name")
	make_domain "$dom" transient "vda:$dir/src/top.qcow2:qcow2"
	SNAPMOVE_TEST_CRASH_AT=copy:durable bash -c '"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' \
		"$dir/move" "$SNAPMOVE" --db "$DB" move "$dom" --dest "$dir/dst" 2>/dev/null || rc=$?
	assert_eq "$rc" 137 "exit of the move killed at copy:durable"
	job=$(sqlite3 "$DB" "SELECT max(id) FROM job")
	assert_eq "$(sqlite3 "$DB" "SELECT idx || ':' || verified FROM chunk WHERE job_id = $job \
		AND depth = 1 ORDER BY idx" | tr '\n' ' ')" "0:1 1:0 " "chunks journaled at the crash"
}

# The resume re-reads chunk 1, checks it against the checksum journaled with
# it, and copies chunks 2 and 3 only.
crash_durable durable 0x31 0x32 0x33 0x34
expect_exit 0 sm resume "$job"
assert_contains "$T/err" "copied $dir/dst/base.raw: resumed after chunk 2, 16.0 MiB of 32.0 MiB copied now"
assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM chunk WHERE job_id = $job AND depth = 1 \
	AND verified = 1")" 4 "chunks journaled and verified after the resume"
cmp -s "$dir/src/base.raw" "$dir/dst/base.raw" || fail "the resumed copy differs from the source"

# Chunk 1 damaged at the destination before the resume: the resume's check
# finds it and copies that chunk again.
crash_durable damaged 0x51 0x52 0x53 0x54
printf '\xff' | dd of="$dir/dst/base.raw" bs=1 seek=$((64 * 1024 * 1024 + 4096)) conv=notrunc \
	status=none
expect_exit 0 sm resume "$job"
assert_contains "$T/err" "copied $dir/dst/base.raw: resumed after chunk 2, 24.0 MiB of 32.0 MiB copied now"
cmp -s "$dir/src/base.raw" "$dir/dst/base.raw" || fail "the damaged chunk was not copied again"
