#!/usr/bin/env bash
# A disk on a block device: what a move refuses (exit 3, nothing changed) and
# how a move of one that dies half-way is finished or undone.
# Refused: a device with a backing chain below it, an --overlay-dir in the
# device's folder (/dev).  (--offline and --delete-source of a device: t0218.)
# Crashes (SNAPMOVE_TEST_CRASH_AT, as in crash-lib.sh) at several points:
# resume ends on the destination file, abort back on the device (also with
# the domain shut off before it, finished offline)
# (<disk type='block'>, live and defined), every guest write kept, the device
# never deleted, no job file left.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/dev" "$T/src" "$T/dst"

# new_device FILE: a 64 MiB loop device holding a raw image, in $loop.
new_device() {
	new_image "$1" raw 64M 0x11 0 1M 0x12 40M 1M
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

block_disk() {  # TARGET DEV FORMAT
	echo "<disk type='block' device='disk'><driver name='qemu' type='$3'/>
<source dev='$2'/><target dev='$1' bus='virtio'/></disk>"
}

# ---- refused ----
new_device "$T/dev/a.img"
a=$loop
# qcow2 on a device over a file: a device with a backing chain.
new_image "$T/src/base.raw" raw 64M 0x21 0 1M
qemu-img create -q -f qcow2 -F raw -b "$T/src/base.raw" "$T/dev/b.img" 64M
truncate -s 64M "$T/dev/b.img"
loop=$(losetup --find --show "$T/dev/b.img") || fail "losetup cannot attach a loop device"
defer "losetup -d $loop"
b=$loop
dom=$(dom_name)
make_domain_xml "$dom" persistent "$(block_disk vda "$a" raw)
$(block_disk vdb "$b" qcow2)"
save_state dom "$dom" vda "$T/src" "$T/dst"

note "a device with a backing chain"
expect_refused_unchanged dom "disk 'vdb' image '$b' is a block device with a backing chain" \
	sm move "$dom" --dest "$T/dst" --disk vdb
assert_contains "$T/case.err" "virsh blockcommit DOMAIN vdb --active --pivot"
note "--overlay-dir in /dev"
expect_refused_unchanged dom "overlay folder '/dev' is on the file system of the device '$a'" \
	sm move "$dom" --dest "$T/dst" --disk vda --overlay-dir /dev
assert_contains "$T/case.err" "choose an --overlay-dir on storage"
note "without --disk a device is not picked"
expect_refused_unchanged dom "domain '$dom' has no writable file-backed disk to move" \
	sm move "$dom" --dest "$T/dst"
virsh -q destroy "$dom" >/dev/null

# ---- crash, then resume or abort ----
# crash_device POINT ACTION: a persistent domain on a fresh loop device moves
# with a SIGKILL at POINT, the guest writes while nothing drives the job,
# ACTION finishes or undoes it.
crash_device() {
	local point=$1 action=$2 c dom rc name want_type want_src p
	c=$T/${point//:/-}-$action${CRASH_POWEROFF:+-off}
	mkdir -m 755 "$c" "$c/dst"
	new_device "$c/dev.img"
	name=$(basename "$loop")
	dom=$(dom_name "${point//:/-}-$action${CRASH_POWEROFF:+-off}")
	make_domain_xml "$dom" persistent "$(block_disk vda "$loop" raw)"
	guest_write "$dom" vda 0x13 2M 64k
	make_write_hook "$dom" vda copy:0x31:3M sync:0x32:4M collapse:0x33:5M
	rc=0
	SNAPMOVE_TEST_HOOK=$T/hook SNAPMOVE_TEST_CRASH_AT=$point bash -c \
		'"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' "$c/move" \
		"$SNAPMOVE" --db "$c/j.db" move "$dom" --dest "$c/dst" --disk vda 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$c/move.err" >&2; fail "$point: move exited $rc, not killed (137)"; }
	grep -q "test crash at '$point'" "$c/move.err" || fail "$point: the crash point was not reached"
	guest_write "$dom" vda 0x41 6M 64k   # while nothing drives the job
	[ -z "${CRASH_POWEROFF:-}" ] || virsh -q destroy "$dom" >/dev/null
	rc=0
	"$SNAPMOVE" --db "$c/j.db" "$action" 1 >"$c/act.out" 2>"$c/act.err" || rc=$?
	[ "$rc" = 0 ] || { cat "$c/act.out" "$c/act.err" >&2; fail "$point: $action exited $rc"; }
	if [ -n "${CRASH_POWEROFF:-}" ]; then
		virsh -q start "$dom" >/dev/null
		wait_domain_running "$dom"
	fi
	guest_write "$dom" vda 0x42 7M 64k
	[ -b "$loop" ] || fail "$point: the device '$loop' is gone"
	if [ "$action" = resume ]; then
		want_type=file want_src="file='$c/dst/$name'"
		assert_eq "$(ls "$c/dst")" "$name" "$point: destination files"
	else
		want_type=block want_src="dev='$loop'"
		assert_eq "$(ls -A "$c/dst")" "" "$point: destination files after abort"
	fi
	for p in "" --inactive; do
		virsh dumpxml $p "$dom" | xmllint --xpath "//disk[target/@dev='vda']" - >"$c/disk.xml"
		grep -q "<disk type=\"$want_type\" device=\"disk\">" "$c/disk.xml" ||
			{ cat "$c/disk.xml" >&2; fail "$point: disk ${p:-live} is not type='$want_type'"; }
		grep -q "<source ${want_src//\'/\"}" "$c/disk.xml" ||
			{ cat "$c/disk.xml" >&2; fail "$point: disk ${p:-live} source is not $want_src"; }
	done
	assert_eq "$(block_job_count "$dom" vda)" 0 "$point: block jobs after $action"
	virsh -q destroy "$dom" >/dev/null
	local img=$c/dst/$name
	[ "$action" = resume ] || img=$loop
	for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x41 6M 64k" "0x42 7M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$img" raw $p
	done
	# The hook wrote in the phases the first run reached.
	for p in copy:0x31:3M sync:0x32:4M collapse:0x33:5M; do
		IFS=: read -r ph pat off <<<"$p"
		if grep -qx "$ph" "$T/hook.log" 2>/dev/null; then
			check_pattern "$img" raw "$pat" "$off" 64k
		fi
	done
	rm -f "$T/hook.log"
	note "$point $action: ends on $img"
}

for pc in copy:start:resume copy:start:abort mirror:done:abort pivot:done:abort \
	pivot:done:resume collapse:start:resume; do
	crash_device "${pc%:*}" "${pc##*:}"
done
# The domain shut off while nothing drove the job: finished, or undone, offline.
for pc in copy:start:resume pivot:done:resume copy:start:abort; do
	CRASH_POWEROFF=1 crash_device "${pc%:*}" "${pc##*:}"
done
