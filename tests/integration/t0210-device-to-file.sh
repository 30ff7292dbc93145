#!/usr/bin/env bash
# A disk on a block device (<disk type='block'>, a loop device here) moves
# live to a file: raw on the device, qcow2 on the device, and raw on the
# device to a qcow2 file (--dest-format).  The base is
# read from the device (its size, not a file's; qcow2: its clusters only),
# the destination file is sparse, every guest write before, during and after
# the move is on the destination, the live XML and the persistent definition
# end as <disk type='file'> with the right <driver type>, and the device is
# never written after the snapshot, nor deleted.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/dev" "$T/dst"

# new_device FILE FORMAT: a 64 MiB loop device holding a FORMAT image (qcow2:
# a 48 MiB image, the device's tail 0xff, which no copy may take), in $loop.
# Not in a subshell: defer must reach this shell.
new_device() {
	local file=$1 fmt=$2
	if [ "$fmt" = raw ]; then
		new_image "$file" raw 64M 0x11 0 1M 0x12 40M 1M
	else
		new_image "$file" qcow2 48M 0x11 0 1M 0x12 40M 1M
		truncate -s 64M "$file"
		# Past the image's end: 0xff a qcow2 reader never sees.
		printf '\xff%.0s' $(seq 1 4096) | dd of="$file" bs=4096 seek=$((60 * 256)) conv=notrunc status=none
	fi
	loop=$(losetup --find --show "$file") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

# move_device DOM TARGET LOOP FORMAT [DEST_FORMAT]: move TARGET (converted to
# DEST_FORMAT) with the guest writing in every phase, then check everything
# above.
move_device() {
	local dom=$1 t=$2 loop=$3 sfmt=$4 fmt=${5:-$4} name img xml
	local -a conv=()
	[ "$fmt" = "$sfmt" ] || conv=(--dest-format "$fmt")
	name=$(basename "$loop")
	img=$T/dst/$name
	guest_write "$dom" "$t" 0x13 2M 64k   # before
	make_write_hook "$dom" "$t" copy:0x21:3M sync:0x22:4M pivot:0x23:5M collapse:0x24:6M \
		finalize:0x25:7M
	rm -f "$T/hook.log"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --disk "$t" \
		"${conv[@]}"
	assert_contains "$T/out" "moved domain $dom"
	assert_eq "$(wc -l <"$T/hook.log")" 5 "$fmt: hook writes during the move"
	guest_write "$dom" "$t" 0x31 8M 64k   # after

	xml=$(virsh dumpxml "$dom")
	xp() { xmllint --xpath "$1" - <<<"$xml"; }
	assert_eq "$(xp "string(//disk[target/@dev='$t']/@type)")" file "$fmt: live disk type"
	assert_eq "$(xp "string(//disk[target/@dev='$t']/source/@file)")" "$img" "$fmt: live source"
	assert_eq "$(xp "string(//disk[target/@dev='$t']/driver/@type)")" "$fmt" "$fmt: live format"
	assert_eq "$(xp "count(//disk[target/@dev='$t']/source/@dev)")" 0 "$fmt: live source dev"
	xml=$(virsh dumpxml --inactive "$dom")
	assert_eq "$(xp "string(//disk[target/@dev='$t']/@type)")" file "$fmt: defined disk type"
	assert_eq "$(xp "string(//disk[target/@dev='$t']/source/@file)")" "$img" \
		"$fmt: defined source"
	assert_eq "$(xp "string(//disk[target/@dev='$t']/driver/@type)")" "$fmt" \
		"$fmt: defined format"
	assert_eq "$(block_job_count "$dom" "$t")" 0 "$fmt: block jobs after the move"
	[ -b "$loop" ] || fail "$fmt: the device '$loop' is gone"
	assert_eq "$(qemu-img info -U -f "$fmt" --output=json "$img" |
		sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" \
		"$( [ "$sfmt" = raw ] && echo 67108864 || echo 50331648)" "$fmt: virtual size"
	# Sparse: the data written, not the device's 64 MiB.
	local kib
	kib=$(du -k "$img" | cut -f1)
	[ "$kib" -lt 12288 ] || fail "$fmt: '$img' allocates $kib KiB, not sparse"
	note "$fmt: $img allocates $kib KiB of a 64 MiB device"
}

# check_moved IMG FMT LOOP: every write on the destination; the device holds
# what it had at the snapshot and nothing later.
check_moved() {  # IMG FORMAT LOOP [LOOP_FORMAT]
	local img=$1 fmt=$2 loop=$3 lfmt=${4:-$2} p
	for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x21 3M 64k" "0x22 4M 64k" \
		"0x23 5M 64k" "0x24 6M 64k" "0x25 7M 64k" "0x31 8M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$img" "$fmt" $p
	done
	check_pattern "$img" "$fmt" 0x00 10M 1M
	check_pattern "$loop" "$lfmt" 0x13 2M 64k
	check_pattern "$loop" "$lfmt" 0x00 3M 64k
	check_pattern "$loop" "$lfmt" 0x00 8M 64k
}

new_device "$T/dev/raw.img" raw
raw_loop=$loop
new_device "$T/dev/qcow.img" qcow2
qcow_loop=$loop
new_device "$T/dev/conv.img" raw
conv_loop=$loop
dom=$(dom_name)
make_domain_xml "$dom" persistent "
<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='$raw_loop'/>
<target dev='vda' bus='virtio'/></disk>
<disk type='block' device='disk'><driver name='qemu' type='qcow2'/><source dev='$qcow_loop'/>
<target dev='vdb' bus='virtio'/></disk>
<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='$conv_loop'/>
<target dev='vdc' bus='virtio'/></disk>"

# 'snapmove chain' shows each as movable, with the image's virtual size.
expect_exit 0 sm chain "$dom"
grep -qx "vda (disk)" "$T/out" || { cat "$T/out" >&2; fail "vda is not movable"; }
grep -qx "vdb (disk)" "$T/out" || { cat "$T/out" >&2; fail "vdb is not movable"; }
assert_contains "$T/out" "  $raw_loop  block  raw  virtual 64.0 MiB"
assert_contains "$T/out" "  $qcow_loop  block  qcow2  virtual 48.0 MiB"
! grep -q "not movable" "$T/out" || { cat "$T/out" >&2; fail "a device disk is not movable"; }
expect_exit 0 sm chain "$dom" --json
# The plan, as text and as JSON (checked against docs/events.schema.json).
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --disk vdb --dry-run
assert_contains "$T/out" "  vda after : $T/dst/$(basename "$raw_loop") (raw)"
assert_contains "$T/out" "  vdb after : $T/dst/$(basename "$qcow_loop") (qcow2)"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --disk vdb --dry-run --json

note "raw on a device"
move_device "$dom" vda "$raw_loop" raw
note "qcow2 on a device"
move_device "$dom" vdb "$qcow_loop" qcow2
note "raw on a device, to a qcow2 file (--dest-format)"
move_device "$dom" vdc "$conv_loop" raw qcow2
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" \
	"$(printf '%s\n' "$(basename "$qcow_loop")" "$(basename "$raw_loop")" \
		"$(basename "$conv_loop")" | sort | tr '\n' ' ')" "destination files"

# 'cleanup' of a device move has no source file to delete: the device stays.
expect_exit 0 sm cleanup 1
assert_contains "$T/out" "job 1: freed 0 B at the source"
[ -b "$raw_loop" ] || fail "cleanup removed the device '$raw_loop'"

virsh -q destroy "$dom" >/dev/null
check_moved "$T/dst/$(basename "$raw_loop")" raw "$raw_loop"
check_moved "$T/dst/$(basename "$qcow_loop")" qcow2 "$qcow_loop"
check_moved "$T/dst/$(basename "$conv_loop")" qcow2 "$conv_loop" raw
# The device's tail past the qcow2 image was never taken.
cmp -s <(dd if="$qcow_loop" bs=4096 skip=$((60 * 256)) count=1 status=none) \
	<(printf '\xff%.0s' $(seq 1 4096)) || fail "the qcow2 device's tail changed"

# The domain starts again on its files.
virsh -q start "$dom" >/dev/null
wait_domain_running "$dom"
assert_eq "$(live_chain "$dom" vda)" "$T/dst/$(basename "$raw_loop") raw" "vda after a restart"
