#!/usr/bin/env bash
# A persistent domain (TRANSIENT_JOB mirror): afterwards its definition points
# at the destination, and after destroy + start it runs from the moved files
# with all data.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/base.qcow2" qcow2 64M 0x11 0 1M
new_overlay "$T/src/disk.qcow2" base.qcow2 qcow2 0x12 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
make_write_hook "$dom" vda copy:0x21:2M collapse:0x22:3M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
src=$(virsh dumpxml --inactive "$dom" |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" -)
assert_eq "$src" "$T/dst/disk.qcow2" "persistent definition's source"
virsh dumpxml --inactive "$dom" | grep -c "$T/src" >/dev/null && fail "the definition still names the source"

guest_write "$dom" vda 0x31 4M 64k
virsh -q destroy "$dom" >/dev/null
virsh -q start "$dom" >/dev/null
wait_domain_running "$dom"
want="$T/dst/disk.qcow2 qcow2
$T/dst/base.qcow2 qcow2"
assert_eq "$(live_chain "$dom" vda)" "$want" "chain after destroy + start"
guest_write "$dom" vda 0x41 5M 64k
virsh -q destroy "$dom" >/dev/null
for spec in "0x11 0 1M" "0x12 1M 1M" "0x21 2M 64k" "0x22 3M 64k" "0x31 4M 64k" "0x41 5M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst/disk.qcow2" qcow2 $spec
done
