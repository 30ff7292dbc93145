#!/usr/bin/env bash
# 'snapmove move' refuses disks it cannot move (exit 3, nothing changed): an
# unknown target (a block device is only planned here, with and without
# --delete-source: t0210 moves one, t0218 deletes one), an NBD network disk, a file overlay on an
# NBD backing image, a cdrom (with and without media), a floppy, a read-only
# disk, a shareable disk, a disk named twice; a domain with no movable disk at
# all; and without --disk it picks only the movable ones.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/aux"

# A loop device on a small raw file for the type='block' disk.
qemu-img create -q -f raw "$T/aux/block.raw" 16M
loop=$(losetup --find --show "$T/aux/block.raw") ||
	fail "losetup cannot attach a loop device"
defer "losetup -d $loop"
[ -b "$loop" ] || fail "'$loop' is not a block device"

# An NBD server on a unix socket for the type='network' disk.  QEMU runs as its
# own user: the socket must be connectable by everyone.
new_image "$T/aux/nbd.qcow2" qcow2 64M 0x33 0 1M
old_umask=$(umask)
umask 000
qemu-nbd --socket="$T/aux/nbd.sock" -f qcow2 --persistent "$T/aux/nbd.qcow2" \
	2>"$T/aux/nbd.log" &
nbd_pid=$!
umask "$old_umask"
defer "kill $nbd_pid; wait $nbd_pid"
for _ in $(seq 1 50); do
	[ -S "$T/aux/nbd.sock" ] && break
	sleep 0.1
done
[ -S "$T/aux/nbd.sock" ] || fail "qemu-nbd made no socket: $(cat "$T/aux/nbd.log")"

# A second, read-only NBD export as the backing image of a file overlay.
qemu-img create -q -f raw "$T/aux/nbd-base.raw" 64M
umask 000
qemu-nbd --socket="$T/aux/base.sock" -f raw --read-only --persistent --shared=4 \
	"$T/aux/nbd-base.raw" 2>"$T/aux/base.log" &
base_pid=$!
umask "$old_umask"
defer "kill $base_pid; wait $base_pid"
for _ in $(seq 1 50); do
	[ -S "$T/aux/base.sock" ] && break
	sleep 0.1
done
[ -S "$T/aux/base.sock" ] || fail "qemu-nbd made no socket: $(cat "$T/aux/base.log")"
qemu-img create -q -f qcow2 -F raw -b "nbd+unix:///?socket=$T/aux/base.sock" \
	"$T/src/over-nbd.qcow2" 64M

qemu-img create -q -f raw "$T/src/cd.iso" 1M
qemu-img create -q -f raw "$T/src/floppy.img" 1440K
new_image "$T/src/ro.qcow2" qcow2 64M 0x44 0 1M
new_image "$T/src/shared.raw" raw 64M 0x55 0 1M

disk_xml() {  # TYPE DEVICE FORMAT SOURCE TARGET BUS [EXTRA] [DRIVER_ATTRS]
	echo "<disk type='$1' device='$2'><driver name='qemu' type='$3'${8:+ $8}/>$4
<target dev='$5' bus='$6'/>${7:-}</disk>"
}

# Every disk of this domain is unmovable.
bad=$(dom_name bad)
make_domain_xml "$bad" transient "
$(disk_xml block disk raw "<source dev='$loop'/>" vdb virtio)
$(disk_xml network disk raw "<source protocol='nbd'><host transport='unix' socket='$T/aux/nbd.sock'/></source>" vdc virtio)
$(disk_xml file disk qcow2 "<source file='$T/src/ro.qcow2'/>" vdd virtio '<readonly/>')
$(disk_xml file disk qcow2 "<source file='$T/src/over-nbd.qcow2'/>" vdf virtio)
$(disk_xml file disk raw "<source file='$T/src/shared.raw'/>" vde virtio '<shareable/>' "cache='none'")
$(disk_xml file cdrom raw "<source file='$T/src/cd.iso'/>" hdc ide '<readonly/>')
$(disk_xml file cdrom raw "" hdd ide '<readonly/>')
$(disk_xml file floppy raw "<source file='$T/src/floppy.img'/>" fda fdc)"

# Each disk is what the test means it to be, as libvirt reports it.
xml=$(virsh dumpxml "$bad")
xp() { xmllint --xpath "$1" - <<<"$xml"; }
assert_eq "$(xp "string(//disk[target/@dev='vdb']/@type)")" block "vdb type"
assert_eq "$(xp "string(//disk[target/@dev='vdb']/source/@dev)")" "$loop" "vdb source"
assert_eq "$(xp "string(//disk[target/@dev='vdc']/@type)")" network "vdc type"
assert_eq "$(xp "string(//disk[target/@dev='vdc']/source/@protocol)")" nbd "vdc protocol"
assert_eq "$(xp "count(//disk[target/@dev='vdd']/readonly)")" 1 "vdd readonly"
assert_eq "$(xp "string(//disk[target/@dev='vdf']/@type)")" file "vdf type"
assert_eq "$(xp "string(//disk[target/@dev='vdf']/backingStore/@type)")" network "vdf backing type"
assert_eq "$(xp "count(//disk[target/@dev='vde']/shareable)")" 1 "vde shareable"
assert_eq "$(xp "string(//disk[target/@dev='hdc']/@device)")" cdrom "hdc device"
assert_eq "$(xp "count(//disk[target/@dev='hdd']/source)")" 0 "hdd has no media"
assert_eq "$(xp "string(//disk[target/@dev='fda']/@device)")" floppy "fda device"
assert_eq "$(xp "string(//disk[target/@dev='fda']/target/@bus)")" fdc "fda bus"

# refuse_disk TARGET TEXT...: moving TARGET alone is refused, saying each TEXT.
refuse_disk() {
	local target=$1 text
	shift
	save_state "$target" "$bad" "$target" "$T/src" "$T/dst"
	expect_refused "$1" sm move "$bad" --dest "$T/dst" --disk "$target"
	for text in "$@"; do
		assert_contains "$T/err" "$text"
	done
	assert_unchanged "$target"
}

note "block disk: moved to a file only when named (t0210); --delete-source accepted (t0218)"
save_state vdb "$bad" vdb "$T/src" "$T/dst"
expect_exit 0 sm move "$bad" --dest "$T/dst" --disk vdb --dry-run
assert_contains "$T/out" "  vdb before: $loop (raw)"
assert_contains "$T/out" "  vdb after : $T/dst/$(basename "$loop") (raw)"
assert_unchanged vdb
# A device is removed only through the provisioner that made it (t0218):
# --delete-source is no reason to refuse one.
expect_exit 0 sm move "$bad" --dest "$T/dst" --disk vdb --delete-source --dry-run
assert_unchanged vdb
note "network disk"
refuse_disk vdc "disk 'vdc' image is a network source, not a file" "leave it out of --disk"
note "file disk over a network backing image"
refuse_disk vdf "disk 'vdf' backing image is a network source, not a file" \
	"leave it out of --disk"
note "read-only disk"
refuse_disk vdd "disk 'vdd' is read-only" "leave it out of --disk"
note "shareable disk"
refuse_disk vde "disk 'vde' is shareable" "leave it out of --disk"
note "cdrom"
refuse_disk hdc "disk 'hdc' is a cdrom, not a disk" "leave it out of --disk"
note "cdrom without media"
refuse_disk hdd "disk 'hdd' is a cdrom, not a disk" "leave it out of --disk"
note "floppy"
refuse_disk fda "disk 'fda' is a floppy, not a disk" "leave it out of --disk"

note "no movable disk without --disk"
save_state none "$bad" vdb "$T/src" "$T/dst"
expect_refused "domain '$bad' has no writable file-backed disk to move" \
	sm move "$bad" --dest "$T/dst"
assert_contains "$T/err" "see 'snapmove chain $bad'"
assert_unchanged none
expect_refused "domain '$bad' has no writable file-backed disk to move" \
	sm move "$bad" --dest "$T/dst" --dry-run
assert_unchanged none

# A domain with one movable disk and a cdrom.
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
qemu-img create -q -f raw "$T/src/install.iso" 1M
dom=$(dom_name)
make_domain_xml "$dom" persistent "
$(disk_xml file disk qcow2 "<source file='$T/src/disk.qcow2'/>" vda virtio)
$(disk_xml file cdrom raw "<source file='$T/src/install.iso'/>" hdc ide '<readonly/>')"
save_state dom "$dom" vda "$T/src" "$T/dst"

note "unknown disk target"
expect_refused "domain '$dom' has no disk 'vdz'; its disks are: vda, hdc" \
	sm move "$dom" --dest "$T/dst" --disk vdz
assert_unchanged dom
# Known and unknown together: still refused, the good one is not moved.
expect_refused "domain '$dom' has no disk 'vdz'; its disks are: vda, hdc" \
	sm move "$dom" --dest "$T/dst" --disk vda --disk vdz
assert_unchanged dom

note "a movable disk named with an unmovable one"
expect_refused "disk 'hdc' is a cdrom, not a disk" \
	sm move "$dom" --dest "$T/dst" --disk vda --disk hdc
assert_unchanged dom

note "a disk named twice"
expect_refused "disk 'vda' is named twice with --disk; name it once" \
	sm move "$dom" --dest "$T/dst" --disk vda --disk vda
assert_unchanged dom

note "without --disk only the movable disk is planned"
expect_exit 0 sm move "$dom" --dest "$T/dst" --dry-run
assert_contains "$T/out" "dry run: nothing was changed"
assert_contains "$T/out" "  vda before: $T/src/disk.qcow2 (qcow2)"
assert_contains "$T/out" "  vda after : $T/dst/disk.qcow2 (qcow2)"
assert_eq "$(grep -c '^  [a-z]* \(before\|after \):' "$T/out")" 2 "chain lines in the dry run"
! grep -q "hdc\|install.iso" "$T/out" || { cat "$T/out" >&2; fail "the dry run plans the cdrom"; }
assert_unchanged dom
