#!/usr/bin/env bash
# A disk moves live from a file onto a block device (--dest-dev TARGET=DEVICE,
# a loop device here, filled with 0xff first): raw onto raw, and qcow2 onto a
# qcow2 image written on the device.  The overlays are files in --dest; every
# guest write before, during and after the move is on the device, what was a
# hole in the source reads as zeros there, and the live XML and the
# definition end as <disk type='block'> <source dev=DEVICE>.  With
# --dest-zeroed the zeros are not written: the verification finds the 0xff
# (the claim was false), and with --no-verify the 0xff shows through.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/dev"

# new_target_device FILE [SIZE]: a loop device (64 MiB) full of 0xff, in $loop.
new_target_device() {
	qemu-img create -q -f raw "$1" "${2:-64M}"
	qemu-io -f raw -c "write -P 0xff 0 ${2:-64M}" "$1" >/dev/null
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

new_image "$T/src/a.raw" raw 64M 0x11 0 1M 0x12 40M 1M
new_image "$T/src/b.qcow2" qcow2 48M 0x11 0 1M 0x12 40M 1M
new_target_device "$T/dev/a.img"
loop_a=$loop
new_target_device "$T/dev/b.img"
loop_b=$loop
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/a.raw:raw" "vdb:$T/src/b.qcow2:qcow2"

# move_onto DOM TARGET DEVICE FORMAT
move_onto() {
	local dom=$1 t=$2 dev=$3 fmt=$4 p xml
	guest_write "$dom" "$t" 0x13 2M 64k
	make_write_hook "$dom" "$t" copy:0x21:3M sync:0x22:4M pivot:0x23:5M collapse:0x24:6M \
		finalize:0x25:7M
	rm -f "$T/hook.log"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --disk "$t" \
		--dest-dev "$t=$dev"
	assert_contains "$T/out" "moved domain $dom"
	assert_eq "$(wc -l <"$T/hook.log")" 5 "$fmt: hook writes during the move"
	guest_write "$dom" "$t" 0x31 8M 64k
	for p in "" --inactive; do
		xml=$(virsh dumpxml $p "$dom")
		assert_eq "$(xmllint --xpath "string(//disk[target/@dev='$t']/@type)" - <<<"$xml")" \
			block "$fmt: disk type ${p:-live}"
		assert_eq "$(xmllint --xpath "string(//disk[target/@dev='$t']/source/@dev)" - <<<"$xml")" \
			"$dev" "$fmt: disk source ${p:-live}"
		assert_eq "$(xmllint --xpath "string(//disk[target/@dev='$t']/driver/@type)" - <<<"$xml")" \
			"$fmt" "$fmt: disk format ${p:-live}"
	done
	assert_eq "$(block_job_count "$dom" "$t")" 0 "$fmt: block jobs after the move"
	assert_eq "$(ls -A "$T/dst")" "" "$fmt: files left in the destination folder"
}

note "raw file onto a device"
move_onto "$dom" vda "$loop_a" raw
note "qcow2 file onto a device"
move_onto "$dom" vdb "$loop_b" qcow2
assert_eq "$(ls "$T/src" | tr '\n' ' ')" "a.raw b.qcow2 " "source files (kept)"

virsh -q destroy "$dom" >/dev/null
for d in "$loop_a raw" "$loop_b qcow2"; do
	set -- $d
	for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x21 3M 64k" "0x22 4M 64k" \
		"0x23 5M 64k" "0x24 6M 64k" "0x25 7M 64k" "0x31 8M 64k" \
		"0x00 10M 1M" "0x00 20M 4M" "0x00 47M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$1" "$2" $p
	done
done
# The raw device's last MiB was a hole of the source: zeros, not 0xff.
check_pattern "$loop_a" raw 0x00 63M 1M

# --dest-zeroed: the caller says the device reads as zeros, so the source's
# zeros are not written; this device holds 0xff, and the holes show it.
new_image "$T/src/c.raw" raw 32M 0x51 0 1M
new_target_device "$T/dev/c.img" 32M
loop_c=$loop
zdom=$(dom_name zeroed)
make_domain "$zdom" transient "vda:$T/src/c.raw:raw"
# With the verification (the default), the claim is checked: it is false
# here, the copy stops naming the difference, and abort puts the disk back.
expect_exit 1 sm move "$zdom" --dest "$T/dst" --dest-dev "vda=$loop_c" --dest-zeroed
assert_contains "$T/err" "verification failed: '$T/src/c.raw' and '$loop_c' differ"
expect_exit 0 sm abort 3
assert_eq "$(live_chain "$zdom" vda)" "$T/src/c.raw raw" "zeroed: back on the source"
expect_exit 0 sm move "$zdom" --dest "$T/dst" --dest-dev "vda=$loop_c" --dest-zeroed --no-verify
virsh -q destroy "$zdom" >/dev/null
check_pattern "$loop_c" raw 0x51 0 1M
check_pattern "$loop_c" raw 0xff 10M 1M
expect_exit 2 sm move "$zdom" --dest "$T/dst" --dest-zeroed
assert_contains "$T/err" "--dest-zeroed says the --dest-dev devices read as zeros; it needs a --dest-dev"

# The domain starts again on its devices.
virsh -q start "$dom" >/dev/null
wait_domain_running "$dom"
guest_write "$dom" vda 0x41 9M 64k
