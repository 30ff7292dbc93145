#!/usr/bin/env bash
# A domain with libvirt snapshot or checkpoint metadata is refused (exit 3,
# nothing changed), live, dry run and offline: the metadata names the disks'
# files and bitmaps where they are, and snapmove rewrites neither (README,
# Limits).  Once the metadata is deleted as the message says, the move runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
rb_storages s1:96M s2:96M
new_image "$T/s1/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/s1/disk.qcow2:qcow2"

new_image "$T/src/cp.qcow2" qcow2 64M 0x21 0 1M
cpdom=$(dom_name cp)
make_domain "$cpdom" persistent "vda:$T/src/cp.qcow2:qcow2"

new_image "$T/src/off.qcow2" qcow2 64M 0x31 0 1M
offdom=$(dom_name off)
make_domain "$offdom" defined "vda:$T/src/off.qcow2:qcow2"

case_snapshot() {
	virsh -q snapshot-create-as "$dom" s1 --disk-only \
		--diskspec "vda,file=$T/s1/disk.s1" >/dev/null
	assert_eq "$(live_chain "$dom" vda)" "$T/s1/disk.s1 qcow2
$T/s1/disk.qcow2 qcow2" "chain after the admin's snapshot"
	save_state snap "$dom" vda "$T/s1" "$T/s2"
	expect_refused_unchanged snap \
		"domain '$dom' has 1 snapshot in libvirt's metadata (first: 's1') that names its files where they are now; delete it ('virsh snapshot-delete $dom NAME --metadata' keeps the images) or leave the domain where it is" \
		sm move "$dom" --dest "$T/s2"
	expect_refused_unchanged snap "has 1 snapshot in libvirt's metadata" \
		sm move "$dom" --dest "$T/s2" --dry-run
	# A drain cannot leave it behind: refused, with the reason.
	expect_refused_unchanged snap \
		"cannot drain '$T/s1': disk vda of domain '$dom' cannot be moved: domain '$dom' has 1 snapshot in libvirt's metadata" \
		sm rebalance --storage "$T/s1" --storage "$T/s2" --drain "$T/s1"
	assert_eq "$(virsh snapshot-list "$dom" --name | sed '/^$/d')" s1 "snapshots after the refusals"
	# As the message says: the metadata goes, the images stay, the move runs.
	virsh -q snapshot-delete "$dom" s1 --metadata >/dev/null
	expect_exit 0 sm move "$dom" --dest "$T/s2"
	assert_eq "$(live_chain "$dom" vda)" "$T/s2/disk.s1 qcow2
$T/s2/disk.qcow2 qcow2" "chain after the move"
	assert_eq "$(live_chain "$dom" vda --inactive)" "$T/s2/disk.s1 qcow2" \
		"persistent definition after the move"
}
run_case "snapshot metadata: refused until deleted" case_snapshot

case_checkpoint() {
	virsh -q checkpoint-create-as "$cpdom" c1 >/dev/null
	virsh -q checkpoint-create-as "$cpdom" c2 >/dev/null
	save_state cp "$cpdom" vda "$T/src" "$T/dst"
	expect_refused_unchanged cp \
		"domain '$cpdom' has 2 checkpoints (first: 'c1') whose bitmaps snapmove does not carry over; delete them ('virsh checkpoint-delete $cpdom NAME') and take a full backup after the move, or leave the domain where it is" \
		sm move "$cpdom" --dest "$T/dst"
	assert_eq "$(virsh checkpoint-list "$cpdom" --name | sed '/^$/d' | sort | tr '\n' ' ')" \
		"c1 c2 " "checkpoints after the refusal"
}
run_case "checkpoints: refused" case_checkpoint

case_offline() {
	# On a shut-off domain, libvirt takes an internal snapshot (qemu-img).
	virsh -q snapshot-create-as "$offdom" s1 >/dev/null
	save_state off "$offdom" vda "$T/src" "$T/dst"
	expect_refused_unchanged off "domain '$offdom' has 1 snapshot in libvirt's metadata" \
		sm move "$offdom" --dest "$T/dst" --offline
}
run_case "offline: refused" case_offline

cases_done
