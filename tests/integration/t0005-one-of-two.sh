#!/usr/bin/env bash
# --disk vdb moves vdb only; vda keeps its image, gets no overlay and no data
# of vdb's move.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/a.qcow2" qcow2 64M 0x11 0 1M
new_image "$T/src/b.qcow2" qcow2 64M 0x12 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/a.qcow2:qcow2" "vdb:$T/src/b.qcow2:qcow2"
make_write_hook "$dom" vdb copy:0x21:2M collapse:0x22:3M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vdb
assert_eq "$(live_chain "$dom" vda)" "$T/src/a.qcow2 qcow2" "vda's chain"
assert_eq "$(live_chain "$dom" vdb)" "$T/dst/b.qcow2 qcow2" "vdb's chain"
assert_eq "$(ls "$T/dst")" b.qcow2 "destination files"
assert_eq "$(ls "$T/src" | tr '\n' ' ')" "a.qcow2 b.qcow2 " "source files"
guest_write "$dom" vda 0x31 4M 64k
virsh -q destroy "$dom" >/dev/null
check_pattern "$T/src/a.qcow2" qcow2 0x31 4M 64k
check_pattern "$T/dst/b.qcow2" qcow2 0x12 0 1M
check_pattern "$T/dst/b.qcow2" qcow2 0x21 2M 64k
check_pattern "$T/dst/b.qcow2" qcow2 0x22 3M 64k
