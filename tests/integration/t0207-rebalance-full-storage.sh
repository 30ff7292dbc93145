#!/usr/bin/env bash
# 'snapmove rebalance --drain' of a storage filled to its last byte (issue
# 15): the planner asks the drained storage for no room (the moves' overlays
# are on the destination), the move runs with the guest writing at each
# phase, the domains end on the other storage with every write, and the
# drained storage's images are deleted (--delete-source), so it has room
# again.  Before, the plan was refused: "needs ... there for the disk's
# temporary overlay".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

rb_storages s1:64M s2:256M
S1=$T/s1 S2=$T/s2
dom=$(dom_name)
new_image "$S1/base.raw" raw 32M 0x11 0 2M
new_overlay "$S1/top.qcow2" base.raw raw 0x12 2M 1M
make_domain "$dom" persistent "vda:$S1/top.qcow2:qcow2"
guest_write "$dom" vda 0x13 4M 64k
dd if=/dev/zero of="$S1/filler" bs=64k status=none 2>/dev/null || true
assert_eq "$(free_bytes "$S1")" 0 "bytes free on the drained storage"
make_write_hook "$dom" vda copy:0x21:5M sync:0x22:6M pivot:0x23:7M collapse:0x24:8M

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm rebalance --storage "$S1" --storage "$S2" --drain "$S1"
assert_eq "$(wc -l <"$T/hook.log")" 4 "hook writes during the move"
guest_write "$dom" vda 0x31 9M 64k
assert_eq "$(live_chain "$dom" vda)" "$S2/top.qcow2 qcow2
$S2/base.raw raw" "live chain after the drain"
assert_eq "$(ls "$S1" | tr '\n' ' ')" "filler " "the drained storage"
assert_eq "$(ls "$S2" | tr '\n' ' ')" "base.raw top.qcow2 " "the storage drained into"
[ "$(free_bytes "$S1")" -gt 0 ] || fail "the drained storage has no room after the drain"
virsh -q destroy "$dom" >/dev/null
for w in "0x11 0 2M" "0x12 2M 1M" "0x13 4M 64k" "0x21 5M 64k" "0x22 6M 64k" "0x23 7M 64k" \
	"0x24 8M 64k" "0x31 9M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$S2/top.qcow2" qcow2 $w
done
