#!/usr/bin/env bash
# A disk on a block device moves live onto another block device (--disk
# TARGET --dest-dev TARGET=DEVICE; loop devices here, the destinations filled
# with 0xff first): raw onto raw (of the very size), qcow2 on a device onto a
# qcow2 written on the new one.  Every guest write before, during and after
# the move is on the new device, what reads as zeros on the source reads as
# zeros there (not 0xff), the live XML and the definition end as
# <disk type='block'> <source dev=NEW> with the format, the old device is left
# as it was at the snapshot, and no file is left in --dest.  Then crashes
# (SNAPMOVE_TEST_CRASH_AT) of a device->device move: resume ends on the new
# device, abort back on the old one (also with the domain shut off before
# it: finished or undone offline), every guest write kept, no device gone.
# Every loop device made here is detached at the end.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/dev" "$T/dst"

# new_loop FILE: a loop device over FILE, in $loop (not in a subshell:
# defer must reach this shell).
new_loop() {
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

# new_source FILE FORMAT: a 64 MiB device holding FORMAT (qcow2: a 48 MiB
# image, the device's tail 0xff, which no copy may take).
new_source() {
	local file=$1 fmt=$2
	if [ "$fmt" = raw ]; then
		new_image "$file" raw 64M 0x11 0 1M 0x12 40M 1M
	else
		new_image "$file" qcow2 48M 0x11 0 1M 0x12 40M 1M
		truncate -s 64M "$file"
		qemu-io -f raw -c "write -P 0xff 60M 1M" "$file" >/dev/null
	fi
	new_loop "$file"
}

# new_target FILE SIZE: a device of SIZE full of 0xff.
new_target() {
	qemu-img create -q -f raw "$1" "$2"
	qemu-io -f raw -c "write -P 0xff 0 $2" "$1" >/dev/null
	new_loop "$1"
}

block_disk() {  # TARGET DEV FORMAT
	echo "<disk type='block' device='disk'><driver name='qemu' type='$3'/>
<source dev='$2'/><target dev='$1' bus='virtio'/></disk>"
}

disk_is() {  # DOM TARGET "TYPE SOURCE FORMAT" WHAT
	local p xml got
	for p in "" --inactive; do
		xml=$(virsh dumpxml $p "$1")
		got="$(xmllint --xpath "string(//disk[target/@dev='$2']/@type)" - <<<"$xml") $(
			xmllint --xpath "string(//disk[target/@dev='$2']/source/@dev | //disk[target/@dev='$2']/source/@file)" - <<<"$xml") $(
			xmllint --xpath "string(//disk[target/@dev='$2']/driver/@type)" - <<<"$xml")"
		assert_eq "$got" "$3" "$4: disk ${p:-live}"
	done
}

new_source "$T/dev/a.img" raw
src_a=$loop
new_source "$T/dev/b.img" qcow2
src_b=$loop
new_target "$T/dev/a2.img" 64M
dst_a=$loop
# A qcow2 of 48 MiB fully allocated needs a little more: qemu-img measure.
new_target "$T/dev/b2.img" 56M
dst_b=$loop
new_target "$T/dev/small.img" 40M
small=$loop
dom=$(dom_name)
make_domain_xml "$dom" persistent "$(block_disk vda "$src_a" raw)
$(block_disk vdb "$src_b" qcow2)"

note "a device too small, or of another size for raw, is refused"
save_state dom "$dom" vda "$T/dst"
expect_refused_unchanged dom "destination device '$small' holds 40.0 MiB and disk 'vdb' needs" \
	sm move "$dom" --dest "$T/dst" --disk vdb --dest-dev "vdb=$small"
expect_refused_unchanged dom "destination device '$dst_a' holds 64.0 MiB and disk 'vdb' is 48.0 MiB raw" \
	sm move "$dom" --dest "$T/dst" --disk vdb --dest-format raw --dest-dev "vdb=$dst_a"
expect_refused_unchanged dom "destination device '$src_b' is in use by domain '$dom'" \
	sm move "$dom" --dest "$T/dst" --disk vda --dest-dev "vda=$src_b"

# move_dev TARGET SRC DST FORMAT: the move with the guest writing in every phase.
move_dev() {
	local t=$1 src=$2 dst=$3 fmt=$4
	guest_write "$dom" "$t" 0x13 2M 64k
	make_write_hook "$dom" "$t" copy:0x21:3M sync:0x22:4M pivot:0x23:5M collapse:0x24:6M \
		finalize:0x25:7M
	rm -f "$T/hook.log"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --disk "$t" \
		--dest-dev "$t=$dst"
	assert_contains "$T/out" "moved domain $dom"
	assert_eq "$(wc -l <"$T/hook.log")" 5 "$fmt: hook writes during the move"
	guest_write "$dom" "$t" 0x31 8M 64k
	disk_is "$dom" "$t" "block $dst $fmt" "$fmt"
	assert_eq "$(block_job_count "$dom" "$t")" 0 "$fmt: block jobs after the move"
	assert_eq "$(ls -A "$T/dst")" "" "$fmt: files left in the destination folder"
	[ -b "$src" ] || fail "$fmt: the source device '$src' is gone"
}

note "the plan names the new devices (text, and JSON checked against the schema)"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --disk vdb --dest-dev "vda=$dst_a" \
	--dest-dev "vdb=$dst_b" --dry-run
assert_contains "$T/out" "  vda before: $src_a (raw)"
assert_contains "$T/out" "  vda after : $dst_a (raw)"
assert_contains "$T/out" "  vdb after : $dst_b (qcow2)"
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vda --disk vdb --dest-dev "vda=$dst_a" \
	--dest-dev "vdb=$dst_b" --dry-run --json

note "raw device onto a raw device"
move_dev vda "$src_a" "$dst_a" raw
note "qcow2 on a device onto a qcow2 on a device"
move_dev vdb "$src_b" "$dst_b" qcow2

virsh -q destroy "$dom" >/dev/null
for d in "$dst_a raw" "$dst_b qcow2"; do
	# shellcheck disable=SC2086
	set -- $d
	for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x21 3M 64k" "0x22 4M 64k" \
		"0x23 5M 64k" "0x24 6M 64k" "0x25 7M 64k" "0x31 8M 64k" \
		"0x00 10M 1M" "0x00 20M 4M" "0x00 47M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$1" "$2" $p
	done
done
# The raw device's last MiB was zeros on the source: zeros, not 0xff.
check_pattern "$dst_a" raw 0x00 63M 1M
# The qcow2 is the image on the new device, 48 MiB, its format pinned.
assert_eq "$(qemu-img info -U -f qcow2 --output=json "$dst_b" |
	sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" 50331648 "qcow2: virtual size"
# The old devices hold what they had at the snapshot, and nothing later.
check_pattern "$src_a" raw 0x13 2M 64k
check_pattern "$src_a" raw 0x00 3M 64k
check_pattern "$src_b" qcow2 0x13 2M 64k
check_pattern "$src_b" qcow2 0x00 3M 64k
# The domain starts again on its new devices.
virsh -q start "$dom" >/dev/null
wait_domain_running "$dom"
guest_write "$dom" vda 0x41 9M 64k
virsh -q destroy "$dom" >/dev/null
check_pattern "$dst_a" raw 0x41 9M 64k

# ---- crash, then resume or abort ----
# crash_dd POINT ACTION FORMAT: a persistent domain on a fresh source device
# moves onto a fresh device with a SIGKILL at POINT, the guest writes while
# nothing drives the job, ACTION finishes or undoes it.
crash_dd() {
	local point=$1 action=$2 fmt=$3 c d rc src dst img p
	c=$T/${point//:/-}-$action-$fmt${CRASH_POWEROFF:+-off}
	mkdir -m 755 "$c" "$c/dst"
	new_source "$c/src.img" "$fmt"
	src=$loop
	new_target "$c/dst.img" "$([ "$fmt" = raw ] && echo 64M || echo 56M)"
	dst=$loop
	d=$(dom_name "${point//:/-}-$action-$fmt${CRASH_POWEROFF:+-off}")
	make_domain_xml "$d" persistent "$(block_disk vda "$src" "$fmt")"
	guest_write "$d" vda 0x13 2M 64k
	make_write_hook "$d" vda copy:0x31:3M sync:0x32:4M collapse:0x33:5M
	rm -f "$T/hook.log"
	rc=0
	SNAPMOVE_TEST_HOOK=$T/hook SNAPMOVE_TEST_CRASH_AT=$point bash -c \
		'"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' "$c/move" \
		"$SNAPMOVE" --db "$c/j.db" move "$d" --dest "$c/dst" --disk vda \
		--dest-dev "vda=$dst" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$c/move.err" >&2; fail "$point: move exited $rc, not killed (137)"; }
	grep -q "test crash at '$point'" "$c/move.err" || fail "$point: the crash point was not reached"
	guest_write "$d" vda 0x41 6M 64k   # while nothing drives the job
	[ -z "${CRASH_POWEROFF:-}" ] || virsh -q destroy "$d" >/dev/null
	rc=0
	"$SNAPMOVE" --db "$c/j.db" "$action" 1 >"$c/act.out" 2>"$c/act.err" || rc=$?
	[ "$rc" = 0 ] || { cat "$c/act.out" "$c/act.err" >&2; fail "$point: $action exited $rc"; }
	if [ -n "${CRASH_POWEROFF:-}" ]; then
		virsh -q start "$d" >/dev/null
		wait_domain_running "$d"
	fi
	guest_write "$d" vda 0x42 7M 64k
	[ -b "$src" ] || fail "$point: the source device '$src' is gone"
	[ -b "$dst" ] || fail "$point: the destination device '$dst' is gone"
	assert_eq "$(ls -A "$c/dst")" "" "$point: files left in the destination"
	if [ "$action" = resume ]; then img=$dst; else img=$src; fi
	disk_is "$d" vda "block $img $fmt" "$point $action $fmt"
	assert_eq "$(block_job_count "$d" vda)" 0 "$point: block jobs after $action"
	virsh -q destroy "$d" >/dev/null
	for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x41 6M 64k" "0x42 7M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$img" "$fmt" $p
	done
	# The hook wrote in the phases the first run reached.
	for p in copy:0x31:3M sync:0x32:4M collapse:0x33:5M; do
		IFS=: read -r ph pat off <<<"$p"
		if grep -qx "$ph" "$T/hook.log" 2>/dev/null; then
			check_pattern "$img" "$fmt" "$pat" "$off" 64k
		fi
	done
	[ "$action" = abort ] || check_pattern "$img" "$fmt" 0x00 20M 1M
	note "$point $action $fmt${CRASH_POWEROFF:+ (shut off before)}: ends on $img"
}

for pc in copy:start:resume copy:done:abort mirror:done:resume pivot:done:abort \
	pivot:done:resume collapse:start:resume; do
	crash_dd "${pc%:*}" "${pc##*:}" raw
done
crash_dd dest_chain:start resume qcow2
crash_dd pivot:done abort qcow2
# The domain shut off while nothing drove the job: finished, or undone,
# offline (qemu-img onto and from the devices).
CRASH_POWEROFF=1 crash_dd copy:start resume raw
CRASH_POWEROFF=1 crash_dd pivot:done resume qcow2
CRASH_POWEROFF=1 crash_dd pivot:done abort raw
