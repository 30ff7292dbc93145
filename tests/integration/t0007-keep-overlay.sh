#!/usr/bin/env bash
# --keep-overlay: the domain ends on the destination overlay over the moved
# image; no commit ran, the source overlay is gone.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
make_write_hook "$dom" vda copy:0x21:2M pivot:0x22:3M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --keep-overlay
ovl=$T/dst/disk.qcow2.snapmove-1.qcow2
want="$ovl qcow2
$T/dst/disk.qcow2 qcow2"
assert_eq "$(live_chain "$dom" vda)" "$want" "live chain"
assert_absent "$T/dst/disk.qcow2.snapmove-1.src.qcow2"
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "disk.qcow2 disk.qcow2.snapmove-1.qcow2 " "files at the destination"
expect_exit 0 sm status 1
grep -q "^  collapse" "$T/out" && fail "a collapse ran with --keep-overlay"
src=$(virsh dumpxml --inactive "$dom" |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" -)
assert_eq "$src" "$ovl" "persistent definition's source"
guest_write "$dom" vda 0x31 4M 64k
virsh -q destroy "$dom" >/dev/null
check_pattern "$ovl" qcow2 0x11 0 1M
check_pattern "$ovl" qcow2 0x21 2M 64k
check_pattern "$ovl" qcow2 0x22 3M 64k
check_pattern "$ovl" qcow2 0x31 4M 64k
