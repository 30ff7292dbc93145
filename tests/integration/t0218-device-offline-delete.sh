#!/usr/bin/env bash
# Block devices moved with --offline (the domain shut off; qemu-img does the
# copy, the definition is rewritten): a device to a file, a file onto a
# device (--dest-dev), a device onto a device; each ends with every byte at
# the destination (the holes as zeros on a device that held 0xff) and the
# definition naming it with the right type and format.  Refused, nothing
# changed: a process holding QEMU's lock on the source device, or on the
# destination device, while the domain is shut off.  Then --delete-source of
# a source device: one the loop provisioner made ('snapmove provision
# create') is removed through it (journaled: the device row 'removed', the
# run 'remove'; the loop device and its file gone); one it did not make is
# kept and the move says so (exit 0); a provisioned one that another
# domain's definition names, or a process holds, or whose journaled device
# number is not the node's, is kept by 'snapmove cleanup', and removed by it
# once none of that holds.  Every loop device made here is
# detached at the end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"
mkdir -m 755 "$T/dev" "$T/src" "$T/dst"

# The shipped loop provisioner, in a folder only root can write; its loop
# files in $LD.  Whatever is left attached to them is detached at the end.
P=$H/prov/loop
mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/loop" "$P"
LD=$H/loop
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"

HOLDERS=()
stop_holders() {
	local p
	for p in "${HOLDERS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	HOLDERS=()
}
defer stop_holders

new_loop() {  # FILE: a loop device over FILE, in $loop
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}
new_target() {  # FILE SIZE: a device of SIZE full of 0xff
	qemu-img create -q -f raw "$1" "$2"
	qemu-io -f raw -c "write -P 0xff 0 $2" "$1" >/dev/null
	new_loop "$1"
}
block_disk() {  # TARGET DEV FORMAT
	echo "<disk type='block' device='disk'><driver name='qemu' type='$3'/>
<source dev='$2'/><target dev='$1' bus='virtio'/></disk>"
}
file_disk() {  # TARGET FILE FORMAT
	echo "<disk type='file' device='disk'><driver name='qemu' type='$3'/>
<source file='$2'/><target dev='$1' bus='virtio'/></disk>"
}
defined_is() {  # DOM TARGET "TYPE SOURCE FORMAT" WHAT
	local xml
	xml=$(virsh dumpxml --inactive "$1")
	assert_eq "$(xmllint --xpath "string(//disk[target/@dev='$2']/@type)" - <<<"$xml") $(
		xmllint --xpath "string(//disk[target/@dev='$2']/source/@dev | //disk[target/@dev='$2']/source/@file)" - <<<"$xml") $(
		xmllint --xpath "string(//disk[target/@dev='$2']/driver/@type)" - <<<"$xml")" \
		"$3" "$4: the definition"
}
# hold DEVICE FORMAT: a qemu-io holds QEMU's lock on DEVICE (pid in $HOLDER).
# A raw reader does not conflict with it: /proc/locks shows when it holds
# (QEMU's open file description locks on the node's inode).
hold() {
	local i ino
	ino=$(stat -c %i "$1")
	qemu-io -f "$2" -c 'sleep 60000' "$1" >/dev/null 2>&1 &
	HOLDER=$!
	HOLDERS+=("$HOLDER")
	for i in $(seq 1 300); do
		grep -q "^[0-9]*: OFDLCK .*:$ino 100 " /proc/locks && return 0
		kill -0 "$HOLDER" 2>/dev/null || fail "qemu-io exited before it held '$1'"
		sleep 0.1
	done
	fail "qemu-io does not hold '$1' after 30 s"
}
patterns() {  # IMAGE FORMAT: the source's data, and zeros where it had none
	local p
	for p in "0x11 0 1M" "0x12 40M 1M" "0x00 10M 1M" "0x00 20M 4M" "0x00 47M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$1" "$2" $p
	done
}
jv() {  # SQL: one value of this test's journal
	sqlite3 "$DB" "$1"
}

# The domain: vda raw on a device, vdb a qcow2 file, vdc raw on a device.
new_image "$T/dev/a.img" raw 64M 0x11 0 1M 0x12 40M 1M
new_loop "$T/dev/a.img"
src_a=$loop
new_image "$T/src/b.qcow2" qcow2 48M 0x11 0 1M 0x12 40M 1M
new_target "$T/dev/b2.img" 56M
dst_b=$loop
new_image "$T/dev/c.img" raw 64M 0x11 0 1M 0x12 40M 1M
new_loop "$T/dev/c.img"
src_c=$loop
new_target "$T/dev/c2.img" 64M
dst_c=$loop
dom=$(dom_name)
make_domain_xml "$dom" defined "$(block_disk vda "$src_a" raw)
$(file_disk vdb "$T/src/b.qcow2" qcow2)
$(block_disk vdc "$src_c" raw)"

note "refused while a process holds the source device, or the destination device"
save_state off "$dom" vda "$T/src" "$T/dst"
hold "$src_a" raw
expect_refused_unchanged off "image '$src_a' of disk 'vda' is open in qemu-io (pid $HOLDER)" \
	sm move "$dom" --dest "$T/dst" --disk vda --offline
assert_contains "$T/case.err" "although domain '$dom' is shut off"
stop_holders
hold "$dst_c" raw
expect_refused_unchanged off "image '$dst_c' of disk 'vdc' is open in qemu-io (pid $HOLDER)" \
	sm move "$dom" --dest "$T/dst" --disk vdc --dest-dev "vdc=$dst_c" --offline
stop_holders
check_pattern "$dst_c" raw 0xff 0 1M   # nothing wrote it

note "offline: a device to a file (--delete-source: not a provisioned device, kept)"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --offline --delete-source
assert_contains "$T/out" "moved domain $dom"
assert_contains "$T/err" "kept device $src_a: no provisioner of this journal made it"
defined_is "$dom" vda "file $T/dst/$(basename "$src_a") raw" "device to file"
[ -b "$src_a" ] || fail "the source device '$src_a' is gone"
patterns "$T/dst/$(basename "$src_a")" raw
patterns "$src_a" raw

note "offline: a qcow2 file onto a device"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vdb --dest-dev "vdb=$dst_b" --offline
defined_is "$dom" vdb "block $dst_b qcow2" "file to device"
patterns "$dst_b" qcow2
assert_eq "$(ls "$T/src")" "b.qcow2" "source files (kept)"

note "offline: a device onto a device"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vdc --dest-dev "vdc=$dst_c" --offline
defined_is "$dom" vdc "block $dst_c raw" "device to device"
patterns "$dst_c" raw
check_pattern "$dst_c" raw 0x00 63M 1M   # 0xff before: the source's zeros written
assert_eq "$(ls "$T/dst")" "$(basename "$src_a")" "files in the destination folder"

note "the domain starts on what the definitions name"
virsh -q start "$dom" >/dev/null
wait_domain_running "$dom"
guest_write "$dom" vda 0x31 8M 64k
guest_write "$dom" vdb 0x32 8M 64k
guest_write "$dom" vdc 0x33 8M 64k
virsh -q destroy "$dom" >/dev/null
check_pattern "$T/dst/$(basename "$src_a")" raw 0x31 8M 64k
check_pattern "$dst_b" qcow2 0x32 8M 64k
check_pattern "$dst_c" raw 0x33 8M 64k

# ---- --delete-source of a provisioned source device ----
# provision NAME: a 64 MiB loop device made by the loop provisioner holding
# the source's data, in $dev (its journaled id in $devid).
provision() {
	expect_exit 0 sm provision create "$1" 64M --provisioner "$P" --set "LOOP_DIR=$LD"
	dev=$(cat "$T/out")
	[ -b "$dev" ] || fail "the provisioner printed '$dev', not a block device"
	devid=$(jv "SELECT id FROM provisioned_device WHERE path = '$dev' AND state = 'created'")
	qemu-io -f raw -c "write -P 0x11 0 1M" -c "write -P 0x12 40M 1M" "$dev" >/dev/null
}

note "--delete-source of a device the loop provisioner made: removed through it (live)"
N=t0218-$$-d
provision "$N"
pdev=$dev
pid=$devid
new_target "$T/dev/d2.img" 64M
dst_d=$loop
pdom=$(dom_name prov)
make_domain_xml "$pdom" persistent "$(block_disk vda "$pdev" raw)"
guest_write "$pdom" vda 0x13 2M 64k
expect_exit 0 sm move "$pdom" --dest "$T/dst" --disk vda --dest-dev "vda=$dst_d" --delete-source
assert_contains "$T/err" "removed device $pdev (64.0 MiB) through its provisioner '$P'"
assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = $pid")" removed \
	"the source device's journal row"
assert_eq "$(jv "SELECT exit_status FROM provision_run WHERE device_id = $pid AND op = 'remove'")" \
	0 "the journaled remove run"
[ ! -e "$LD/$N" ] || fail "the loop provisioner's file '$LD/$N' is still there"
assert_eq "$(losetup --list --noheadings --output BACK-FILE | grep -c "$LD/$N" || true)" 0 \
	"loop devices over '$LD/$N'"
guest_write "$pdom" vda 0x14 3M 64k
virsh -q destroy "$pdom" >/dev/null
defined_is "$pdom" vda "block $dst_d raw" "provisioned device to device"
for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x14 3M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$dst_d" raw $p
done

note "a provisioned device another domain's definition names is kept by cleanup (offline move)"
N=t0218-$$-e
provision "$N"
edev=$dev
eid=$devid
edom=$(dom_name shared)
other=$(dom_name other)
make_domain_xml "$edom" defined "$(block_disk vda "$edev" raw)"
expect_exit 0 sm move "$edom" --dest "$T/dst" --disk vda --offline
defined_is "$edom" vda "file $T/dst/$(basename "$edev") raw" "provisioned device to file"
patterns "$T/dst/$(basename "$edev")" raw
# Named by another domain once the move is done: 'cleanup' keeps it.
make_domain_xml "$other" defined "$(block_disk vdz "$edev" raw)"
ejob=$(jv "SELECT max(id) FROM job")
expect_exit 0 sm cleanup "$ejob"
assert_contains "$T/err" "kept device $edev: used by domain '$other'"
[ -b "$edev" ] || fail "the provisioned device '$edev' is gone"
assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = $eid")" created \
	"the shared device's journal row"
virsh -q undefine "$other" >/dev/null
# Held by a process (QEMU's lock): kept.
hold "$edev" raw
expect_exit 0 sm cleanup "$ejob"
assert_contains "$T/err" "kept device $edev: open in qemu-io (pid $HOLDER)"
stop_holders
# Its journaled device number is not the node's any more: kept.
jv "UPDATE provisioned_device SET rdev = rdev + 1 WHERE id = $eid"
expect_exit 0 sm cleanup "$ejob"
assert_contains "$T/err" "kept device $edev: it is no longer the device"
jv "UPDATE provisioned_device SET rdev = rdev - 1 WHERE id = $eid"
assert_eq "$(jv "SELECT count(*) FROM provision_run WHERE device_id = $eid AND op = 'remove'")" 0 \
	"remove runs of a kept device"
# Once nothing names or holds it, 'snapmove cleanup' removes it through the
# provisioner.
expect_exit 0 sm cleanup "$ejob"
assert_contains "$T/err" "removed device $edev (64.0 MiB) through its provisioner '$P'"
assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = $eid")" removed \
	"the device's journal row after cleanup"
[ ! -e "$LD/$N" ] || fail "the loop provisioner's file '$LD/$N' is still there"
