#!/usr/bin/env bash
# Two disks move together: one atomic snapshot (one snapshot step, both
# overlays named after the same job), both end on the destination with every
# guest write.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/a.qcow2" qcow2 64M 0x11 0 1M
new_image "$T/src/b.img" raw 64M 0x12 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/a.qcow2:qcow2" "vdb:$T/src/b.img:raw"

# At the start of the copy, both disks must already run on this job's overlays.
cat >"$T/hook" <<HOOK
#!/bin/bash
[ "\$1" = copy ] || exit 0
virsh -c qemu:///system domblklist '$dom' --details >'$T/during.txt'
HOOK
chmod 755 "$T/hook"

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
assert_contains "$T/during.txt" "$T/dst/a.qcow2.snapmove-1.src.qcow2"
assert_contains "$T/during.txt" "$T/dst/b.img.snapmove-1.src.qcow2"
assert_eq "$(live_chain "$dom" vda)" "$T/dst/a.qcow2 qcow2" "vda's chain"
assert_eq "$(live_chain "$dom" vdb)" "$T/dst/b.img raw" "vdb's chain"
expect_exit 0 sm status 1
assert_eq "$(grep -c '^  snapshot ' "$T/out")" 1 "snapshot steps"
assert_contains "$T/out" "vda: done"
assert_contains "$T/out" "vdb: done"

guest_write "$dom" vda 0x21 2M 64k
guest_write "$dom" vdb 0x22 2M 64k
virsh -q destroy "$dom" >/dev/null
check_pattern "$T/dst/a.qcow2" qcow2 0x11 0 1M
check_pattern "$T/dst/a.qcow2" qcow2 0x21 2M 64k
check_pattern "$T/dst/b.img" raw 0x12 0 1M
check_pattern "$T/dst/b.img" raw 0x22 2M 64k
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "a.qcow2 b.img " "destination files"
