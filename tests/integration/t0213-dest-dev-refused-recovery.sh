#!/usr/bin/env bash
# move --dest-dev: what is refused (exit 3, a message naming the fix, nothing
# changed: no snapshot, no file, no job): a regular file, a symbolic link in
# a folder others may write, a mounted device, a device another domain uses,
# a device too small (or, for a raw image, bigger than the disk), a disk with a backing chain without --flatten, a target
# the move does not take.  Then crashes (SNAPMOVE_TEST_CRASH_AT) of a move
# onto a device: resume ends on the device (<disk type='block'>), abort back
# on the source file, every guest write kept, the device never deleted.
. "$(dirname "$0")/lib.sh"

command -v mkfs.ext4 >/dev/null || { echo "SKIP: mkfs.ext4 is missing (e2fsprogs)"; exit 0; }
mkdir -m 755 "$T/src" "$T/dst" "$T/dev" "$T/mnt"
mkdir -m 1777 "$T/open"

new_loop() {  # FILE SIZE: a loop device in $loop
	qemu-img create -q -f raw "$1" "$2"
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

new_image "$T/src/disk.raw" raw 64M 0x11 0 1M
new_image "$T/src/base.raw" raw 64M 0x21 0 1M
new_overlay "$T/src/top.qcow2" base.raw raw 0x22 1M 1M
new_loop "$T/dev/good.img" 64M
good=$loop
new_loop "$T/dev/small.img" 16M
small=$loop
new_loop "$T/dev/big.img" 80M
big=$loop
new_loop "$T/dev/used.img" 64M
used=$loop
new_loop "$T/dev/mounted.img" 64M
mounted=$loop
mkfs.ext4 -q -F "$mounted"
mount "$mounted" "$T/mnt" || { echo "SKIP: cannot mount a loop device here"; exit 0; }
defer "umount $T/mnt"
ln -s "$good" "$T/open/good-link"

dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.raw:raw" "vdb:$T/src/top.qcow2:qcow2"
other=$(dom_name other)
make_domain_xml "$other" transient "<disk type='block' device='disk'><driver name='qemu' type='raw'/>
<source dev='$used'/><target dev='vda' bus='virtio'/></disk>"

save_state dom "$dom" vda "$T/src" "$T/dst"
refuse() {  # TEXT FIX OPTION...
	local text=$1 fix=$2
	shift 2
	note "${*: -1}"
	expect_refused_unchanged dom "$text" sm move "$dom" --dest "$T/dst" "$@"
	assert_contains "$T/case.err" "$fix"
}
refuse "destination device '$T/dev/good.img' is not a block device" "--dest-dev takes a device node" \
	--disk vda --dest-dev "vda=$T/dev/good.img"
refuse "destination device '$T/open/good-link' is a symbolic link that root does not own in a folder only root may write" \
	"give the device node as /dev/NAME" --disk vda --dest-dev "vda=$T/open/good-link"
refuse "destination device '$mounted' is mounted on '$T/mnt'" "unmount it or choose another --dest-dev" \
	--disk vda --dest-dev "vda=$mounted"
refuse "destination device '$used' is in use by domain '$other'" "choose a device no domain uses" \
	--disk vda --dest-dev "vda=$used"
refuse "destination device '$small' holds 16.0 MiB and disk 'vda' needs 64.0 MiB there" \
	"choose a bigger device or grow it" --disk vda --dest-dev "vda=$small"
refuse "destination device '$big' holds 80.0 MiB and disk 'vda' is 64.0 MiB raw" \
	"give a device of exactly 64.0 MiB, or add --dest-format qcow2" --disk vda --dest-dev "vda=$big"
refuse "disk 'vdb' has a backing chain and a device takes one image" "add --flatten" \
	--disk vdb --dest-dev "vdb=$good"
refuse "--dest-dev 'vdb=$good' names no disk this move takes" "name one of its --disk targets" \
	--disk vda --dest-dev "vdb=$good"
refuse "disks 'vda' and 'vdb' both name the destination device '$good'" "give each its own" \
	--disk vda --disk vdb --flatten --dest-dev "vda=$good" --dest-dev "vdb=$good"
# The device is left as it was: zeros (nothing wrote it).
check_pattern "$good" raw 0x00 0 1M

note "--flatten puts a chain onto a device (raw: qcow2 would need 64.3 MiB)"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vdb --flatten --dest-format raw \
	--dest-dev "vdb=$good"
assert_eq "$(virsh dumpxml "$dom" | xmllint --xpath "string(//disk[target/@dev='vdb']/source/@dev)" -)" \
	"$good" "vdb on the device"
virsh -q destroy "$dom" >/dev/null
check_pattern "$good" raw 0x21 0 1M
check_pattern "$good" raw 0x22 1M 1M

# ---- crash, then resume or abort ----
crash_onto() {  # POINT ACTION [FORMAT]
	local point=$1 action=$2 fmt=${3:-raw} c d rc name want
	c=$T/${point//:/-}-$action-$fmt
	mkdir -m 755 "$c" "$c/src" "$c/dst"
	new_image "$c/src/disk.$fmt" "$fmt" 32M 0x11 0 1M
	# raw: the device is the image, of its very size; qcow2: room for it.
	new_loop "$c/dev.img" "$([ "$fmt" = raw ] && echo 32M || echo 40M)"
	qemu-io -f raw -c "write -P 0xff 0 32M" "$loop" >/dev/null
	d=$(dom_name "${point//:/-}-$action-$fmt")
	make_domain "$d" persistent "vda:$c/src/disk.$fmt:$fmt"
	guest_write "$d" vda 0x13 2M 64k
	rc=0
	SNAPMOVE_TEST_CRASH_AT=$point bash -c '"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' \
		"$c/move" "$SNAPMOVE" --db "$c/j.db" move "$d" --dest "$c/dst" --dest-dev "vda=$loop" \
		2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$c/move.err" >&2; fail "$point: move exited $rc, not killed (137)"; }
	guest_write "$d" vda 0x41 6M 64k
	rc=0
	"$SNAPMOVE" --db "$c/j.db" "$action" 1 >"$c/act.out" 2>"$c/act.err" || rc=$?
	[ "$rc" = 0 ] || { cat "$c/act.out" "$c/act.err" >&2; fail "$point: $action exited $rc"; }
	guest_write "$d" vda 0x42 7M 64k
	[ -b "$loop" ] || fail "$point: the device is gone"
	assert_eq "$(ls -A "$c/dst")" "" "$point: files left in the destination"
	assert_eq "$(ls "$c/src")" "disk.$fmt" "$point: source files"
	if [ "$action" = resume ]; then
		want="block $loop"
	else
		want="file $c/src/disk.$fmt"
	fi
	for p in "" --inactive; do
		xml=$(virsh dumpxml $p "$d")
		assert_eq "$(xmllint --xpath "string(//disk[target/@dev='vda']/@type)" - <<<"$xml") $(
			xmllint --xpath "string(//disk[target/@dev='vda']/source/@dev | //disk[target/@dev='vda']/source/@file)" - <<<"$xml")" \
			"$want" "$point: disk ${p:-live} after $action"
	done
	virsh -q destroy "$d" >/dev/null
	set -- $want
	for p in "0x11 0 1M" "0x13 2M 64k" "0x41 6M 64k" "0x42 7M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$2" "$fmt" $p
	done
	[ "$action" = abort ] || check_pattern "$loop" "$fmt" 0x00 20M 1M
	note "$point $action: ends on $2"
}

for pc in dest_chain:done:resume copy:start:resume copy:done:abort pivot:done:abort \
	pivot:done:resume collapse:start:resume; do
	crash_onto "${pc%:*}" "${pc##*:}"
done
# qcow2 onto a device: a crash before the qcow2 is written on it (the device
# exists all along: only the journal says whether dest_chain prepared it).
crash_onto dest_chain:start resume qcow2
crash_onto copy:start resume qcow2
