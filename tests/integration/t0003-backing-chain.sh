#!/usr/bin/env bash
# A disk whose chain has two backing layers (qcow2 over qcow2 over raw, one
# backing pointer absolute, one relative) moves whole: every layer is copied,
# the copies point at each other (absolute stays absolute, relative stays
# relative), nothing on the final chain points at the source, and the final
# commit touches only the overlay's immediate backing image: the base layers
# stay byte-for-byte what they were.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/base.raw" raw 64M 0x11 0 1M
# mid -> base.raw (relative), top -> /abs/mid.qcow2 (absolute)
new_overlay "$T/src/mid.qcow2" base.raw raw 0x22 1M 1M
new_overlay "$T/src/top.qcow2" "$T/src/mid.qcow2" qcow2 0x33 2M 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/top.qcow2:qcow2"
make_write_hook "$dom" vda copy:0x41:3M pivot:0x42:4M collapse:0x43:5M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
want="$T/dst/top.qcow2 qcow2
$T/dst/mid.qcow2 qcow2
$T/dst/base.raw raw"
assert_eq "$(live_chain "$dom" vda)" "$want" "live chain"
live_chain "$dom" vda | grep -q "$T/src" && fail "the live chain still names the source"
guest_write "$dom" vda 0x51 6M 64k
virsh -q destroy "$dom" >/dev/null

assert_eq "$(backing_of "$T/dst/top.qcow2" qcow2)" "$T/dst/mid.qcow2" "top's backing pointer"
assert_eq "$(backing_of "$T/dst/mid.qcow2" qcow2)" "base.raw" "mid's backing pointer"

# The commit went into top only: base.raw is identical to the source, and the
# mid layer alone (without its backing) holds the same data as the source's.
cmp -s "$T/src/base.raw" "$T/dst/base.raw" || fail "base.raw changed: the commit went too deep"
layer() { echo "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"$1\"}}"; }
qemu-img compare -U "$(layer "$T/src/mid.qcow2")" "$(layer "$T/dst/mid.qcow2")" >/dev/null ||
	fail "mid.qcow2 changed: the commit went too deep"

for spec in "0x11 0 1M" "0x22 1M 1M" "0x33 2M 1M" "0x41 3M 64k" "0x42 4M 64k" "0x43 5M 64k" \
	"0x51 6M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst/top.qcow2" qcow2 $spec
done
# The guest's writes during the move are in the top image itself.
check_pattern "$(layer "$T/dst/top.qcow2")" qcow2 0x43 5M 64k
