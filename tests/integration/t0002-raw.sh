#!/usr/bin/env bash
# A raw disk moves live and stays raw; holes stay holes at the destination.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.img" raw 256M 0x11 0 1M 0x12 200M 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.img:raw"
make_write_hook "$dom" vda copy:0x21:2M sync:0x22:3M collapse:0x23:4M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.img raw" "live chain"
guest_write "$dom" vda 0x31 5M 64k
virsh -q destroy "$dom" >/dev/null

img=$T/dst/disk.img
assert_eq "$(stat -c %s "$img")" "$(stat -c %s "$T/src/disk.img")" "size of the moved image"
alloc=$(( $(stat -c %b "$img") * 512 ))
[ "$alloc" -lt $((16 << 20)) ] || fail "the copy of a 2 MiB-data raw image allocates $alloc bytes"
for spec in "0x11 0 1M" "0x12 200M 1M" "0x21 2M 64k" "0x22 3M 64k" "0x23 4M 64k" "0x31 5M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$img" raw $spec
done
[ "$(ls "$T/dst")" = disk.img ] || fail "unexpected files at the destination: $(ls "$T/dst")"
