#!/usr/bin/env bash
# A transient domain with one qcow2 disk moves live; guest writes made before,
# during every phase and after the move are all on the destination chain.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
guest_write "$dom" vda 0x12 1M 64k   # before

# During: the test hook writes a distinct pattern at the start of each phase.
make_write_hook "$dom" vda copy:0x21:2M sync:0x22:3M pivot:0x23:4M collapse:0x24:5M \
	finalize:0x25:6M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
assert_contains "$T/out" "moved domain $dom"
assert_eq "$(wc -l <"$T/hook.log")" 5 "hook writes during the move"

guest_write "$dom" vda 0x31 7M 64k   # after

assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2" "live chain"
assert_absent "$T/dst/disk.qcow2.snapmove-1.src.qcow2"
assert_absent "$T/dst/disk.qcow2.snapmove-1.qcow2"
[ "$(ls "$T/dst")" = disk.qcow2 ] || fail "unexpected files at the destination: $(ls "$T/dst")"
[ "$(ls "$T/src")" = disk.qcow2 ] || fail "unexpected files at the source: $(ls "$T/src")"
assert_eq "$(block_job_count "$dom" vda)" 0 "block jobs after the move"

expect_exit 0 sm status 1
assert_contains "$T/out" "job 1: done, phase done"
assert_contains "$T/out" "vda: done"

virsh -q destroy "$dom" >/dev/null
img=$T/dst/disk.qcow2
check_pattern "$img" qcow2 0x11 0 1M
check_pattern "$img" qcow2 0x12 1M 64k
check_pattern "$img" qcow2 0x21 2M 64k
check_pattern "$img" qcow2 0x22 3M 64k
check_pattern "$img" qcow2 0x23 4M 64k
check_pattern "$img" qcow2 0x24 5M 64k
check_pattern "$img" qcow2 0x25 6M 64k
check_pattern "$img" qcow2 0x31 7M 64k
assert_eq "$(backing_of "$img" qcow2)" "" "backing file of the moved image"
# The source image keeps what it had at the snapshot, nothing written later.
check_pattern "$T/src/disk.qcow2" qcow2 0x12 1M 64k
check_pattern "$T/src/disk.qcow2" qcow2 0x00 2M 64k
