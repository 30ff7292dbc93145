#!/usr/bin/env bash
# How base images reach the destination: a reflink clone when source and
# destination share an XFS file system with reflinks, a qemu-img conversion
# with --dest-format, and --bandwidth slowing the copy down.
. "$(dirname "$0")/lib.sh"

# XFS with reflinks on a loop device: src/ and dst/ on one file system.
truncate -s 1G "$T/xfs.img"
mkfs.xfs -q -m reflink=1 "$T/xfs.img"
mkdir -m 755 "$T/xfs"
mount -o loop "$T/xfs.img" "$T/xfs"
SM_MOUNTS+=("$T/xfs")
chmod 755 "$T/xfs"
mkdir -m 755 "$T/xfs/src" "$T/xfs/dst"
new_image "$T/xfs/src/base.raw" raw 128M 0x11 0 4M 0x12 100M 4M
new_overlay "$T/xfs/src/top.qcow2" base.raw raw 0x13 4M 1M
dom=$(dom_name reflink)
make_domain "$dom" transient "vda:$T/xfs/src/top.qcow2:qcow2"
expect_exit 0 sm move "$dom" --dest "$T/xfs/dst"
assert_contains "$T/err" "copied $T/xfs/dst/base.raw: 8.0 MiB"
assert_contains "$T/err" "(reflink, verified)"
virsh -q destroy "$dom" >/dev/null
cmp -s "$T/xfs/src/base.raw" "$T/xfs/dst/base.raw" || fail "the cloned base differs"
check_pattern "$T/xfs/dst/top.qcow2" qcow2 0x12 100M 4M
check_pattern "$T/xfs/dst/top.qcow2" qcow2 0x13 4M 1M

# --dest-format qcow2: a raw disk becomes a qcow2 image of the same name.
mkdir -m 755 "$T/src" "$T/dst" "$T/dst2"
new_image "$T/src/disk.img" raw 64M 0x21 0 1M 0x22 40M 1M
dom=$(dom_name convert)
make_domain "$dom" persistent "vda:$T/src/disk.img:raw"
make_write_hook "$dom" vda copy:0x23:2M collapse:0x24:3M
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --dest-format qcow2
assert_contains "$T/err" "converted $T/dst/disk.img to qcow2"
assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.img qcow2" "chain after conversion"
assert_eq "$(virsh dumpxml --inactive "$dom" |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/driver/@type)" -)" qcow2 \
	"format in the persistent definition"
virsh -q destroy "$dom" >/dev/null
for spec in "0x21 0 1M" "0x22 40M 1M" "0x23 2M 64k" "0x24 3M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst/disk.img" qcow2 $spec
done
qemu-img info -f qcow2 "$T/dst/disk.img" >/dev/null || fail "the converted image is not qcow2"

# --dest-format raw on a chain is refused before anything changes.
new_image "$T/src/b.raw" raw 64M
new_overlay "$T/src/t.qcow2" b.raw raw
dom=$(dom_name chain)
make_domain "$dom" transient "vda:$T/src/t.qcow2:qcow2"
expect_exit 3 sm move "$dom" --dest "$T/dst2" --dest-format raw
assert_contains "$T/err" "--dest-format converts only single-image disks"
assert_eq "$(ls -A "$T/dst2")" "" "destination after a refused conversion"

# --bandwidth limits the out-of-band copy too: 24 MiB at 8 MiB/s.
new_image "$T/src/slow.raw" raw 64M 0x31 0 24M
dom=$(dom_name slow)
make_domain "$dom" transient "vda:$T/src/slow.raw:raw"
start=$(date +%s%N)
expect_exit 0 sm move "$dom" --dest "$T/dst2" --bandwidth 8
took=$((($(date +%s%N) - start) / 1000000))
[ "$took" -ge 2500 ] || fail "24 MiB at 8 MiB/s took only $took ms"

# On ext4 (this test's directory) the default path is direct I/O, through
# io_uring where the kernel allows it (this machine's does): a move
# says so and journals it, and a plain copy leaves none of the destination in
# the page cache (it was written and re-read with O_DIRECT); the buffered loop
# can still be asked for.
new_image "$T/src/direct.raw" raw 64M 0x41 0 8M 0x42 40M 8M
dom=$(dom_name direct)
make_domain "$dom" transient "vda:$T/src/direct.raw:raw"
mkdir -m 755 "$T/dst3" "$T/dst4"
expect_exit 0 sm move "$dom" --dest "$T/dst3"
assert_contains "$T/err" "copied $T/dst3/direct.raw: 16.0 MiB"
assert_contains "$T/err" "(direct-uring, verified)"
assert_eq "$(sqlite3 "$DB" "SELECT copy_method FROM image i JOIN job j ON j.id = i.job_id \
	WHERE j.domain_name = '$dom'")" direct-uring "copy path in the journal"
expect_exit 0 sm copy "$T/src/direct.raw" "$T/dst4/copy.raw"
assert_contains "$T/out" "by direct-uring, verified"
assert_eq "$(fincore --noheadings --bytes --output RES "$T/dst4/copy.raw" | tr -d ' ')" 0 \
	"bytes of the direct copy in the page cache"
cmp -s "$T/src/direct.raw" "$T/dst4/copy.raw" || fail "the direct copy differs"
# A kernel that refuses io_uring (faked in the test build): the reader
# thread's direct path, said so; direct-uring by name is refused.
SNAPMOVE_TEST_NO_URING=1 expect_exit 0 sm copy "$T/src/direct.raw" "$T/dst4/copy3.raw"
assert_contains "$T/out" "by direct, verified"
cmp -s "$T/src/direct.raw" "$T/dst4/copy3.raw" || fail "the direct copy without io_uring differs"
SNAPMOVE_TEST_NO_URING=1 expect_exit 1 sm copy --copy-method direct-uring "$T/src/direct.raw" \
	"$T/dst4/copy4.raw"
assert_contains "$T/err" "cannot use io_uring to copy '$T/src/direct.raw'"
[ ! -e "$T/dst4/copy4.raw" ] || fail "the refused copy left its destination"
expect_exit 0 sm copy --copy-method readwrite "$T/src/direct.raw" "$T/dst4/copy2.raw"
assert_contains "$T/out" "by readwrite, verified"
[ "$(fincore --noheadings --bytes --output RES "$T/dst4/copy2.raw" | tr -d ' ')" -gt 0 ] ||
	fail "the buffered copy left nothing in the page cache: the check above means nothing"
cmp -s "$T/src/direct.raw" "$T/dst4/copy2.raw" || fail "the read/write copy differs"
