#!/usr/bin/env bash
# A template shared by two domains stays where it is: the moved chain points at
# it, it is never written, and the other domain keeps working; --copy-shared
# copies it.  --flatten puts one image at the destination instead of a chain.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/tpl" "$T/src" "$T/dst" "$T/dst2" "$T/dst3"
new_image "$T/tpl/template.raw" raw 64M 0x11 0 1M 0x12 40M 1M
sum_before=$(md5sum <"$T/tpl/template.raw")
new_overlay "$T/src/a.qcow2" "$T/tpl/template.raw" raw 0x21 1M 1M
new_overlay "$T/src/b.qcow2" "$T/tpl/template.raw" raw 0x22 1M 1M
doma=$(dom_name a)
domb=$(dom_name b)
make_domain "$doma" persistent "vda:$T/src/a.qcow2:qcow2"
make_domain "$domb" transient "vda:$T/src/b.qcow2:qcow2"

expect_exit 0 sm move "$doma" --dest "$T/dst" --dry-run
assert_contains "$T/out" "keeps '$T/tpl/template.raw'"
assert_contains "$T/out" "used by domain '$domb' disk vda"

make_write_hook "$doma" vda copy:0x31:2M collapse:0x32:3M
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$doma" --dest "$T/dst"
assert_eq "$(live_chain "$doma" vda)" "$T/dst/a.qcow2 qcow2
$T/tpl/template.raw raw" "chain over the template"
assert_eq "$(ls "$T/dst")" a.qcow2 "destination files"
assert_eq "$(backing_of "$T/dst/a.qcow2" qcow2)" "$T/tpl/template.raw" "backing pointer"
guest_write "$domb" vda 0x41 2M 64k
virsh -q destroy "$doma" >/dev/null
virsh -q start "$doma" >/dev/null
assert_eq "$(live_chain "$doma" vda)" "$T/dst/a.qcow2 qcow2
$T/tpl/template.raw raw" "chain after destroy + start"
virsh -q destroy "$doma" >/dev/null
virsh -q destroy "$domb" >/dev/null
assert_eq "$(md5sum <"$T/tpl/template.raw")" "$sum_before" "the template"
for spec in "0x11 0 1M" "0x12 40M 1M" "0x21 1M 1M" "0x31 2M 64k" "0x32 3M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst/a.qcow2" qcow2 $spec
done
check_pattern "$T/src/b.qcow2" qcow2 0x41 2M 64k

# --copy-shared moves the template along with b's chain.
make_domain "$(dom_name b2)" transient "vda:$T/src/b.qcow2:qcow2"
expect_exit 0 sm move "$(dom_name b2)" --dest "$T/dst2" --copy-shared
assert_eq "$(ls "$T/dst2" | tr '\n' ' ')" "b.qcow2 template.raw " "copied with --copy-shared"
assert_eq "$(md5sum <"$T/tpl/template.raw")" "$sum_before" "the template after --copy-shared"

# --flatten: one qcow2 image holding the whole chain's data.
mkdir -m 755 "$T/f"
new_image "$T/f/base.raw" raw 64M 0x51 0 1M
new_overlay "$T/f/mid.qcow2" base.raw raw 0x52 1M 1M
new_overlay "$T/f/top.qcow2" mid.qcow2 qcow2 0x53 2M 1M
domf=$(dom_name flat)
make_domain "$domf" persistent "vdb:$T/f/top.qcow2:qcow2"
make_write_hook "$domf" vdb copy:0x54:3M collapse:0x55:4M
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$domf" --dest "$T/dst3" --flatten
assert_eq "$(live_chain "$domf" vdb)" "$T/dst3/top.qcow2 qcow2" "flattened chain"
assert_eq "$(ls "$T/dst3")" top.qcow2 "destination files after --flatten"
assert_eq "$(backing_of "$T/dst3/top.qcow2" qcow2)" "" "backing of the flattened image"
virsh -q destroy "$domf" >/dev/null
for spec in "0x51 0 1M" "0x52 1M 1M" "0x53 2M 1M" "0x54 3M 64k" "0x55 4M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst3/top.qcow2" qcow2 $spec
done
