#!/usr/bin/env bash
# What a resumed copy onto a block device must check and remember (loop
# devices of 256 MiB, filled with 0xff; a raw file of four 64 MiB chunks
# copied onto them by the copier, killed after two chunks were journaled):
# - another device put at the journaled path between the kill and the resume
#   (the node /dev/loopN made again for another loop device: what a LUN or
#   logical volume re-pointed looks like) is refused by the resume, which
#   names the device and the device number it expected, and writes nothing to
#   the new device; once the path names the journaled device again, the
#   resume finishes and the data is right;
# - --dest-zeroed is journaled with the job: the resumed copy writes no zeros
#   either, so the 0xff of this device (which does not read as zeros: the
#   caller's claim, taken at its word with --no-verify) stays in every hole,
#   in the chunks copied after the resume too.
# Every loop device made here is detached and every node put back at the end.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/dev" "$T/src" "$T/dst"

# new_loop FILE: a loop device over FILE, in $loop.
new_loop() {
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

# new_target FILE PATTERN: a device of 256 MiB full of PATTERN, in $loop.
new_target() {
	qemu-img create -q -f raw "$1" 256M
	qemu-io -f raw -c "write -P $2 0 256M" "$1" >/dev/null
	new_loop "$1"
}

# move_killed NAME SOURCE DEVICE ARGS...: a domain on the raw file SOURCE
# moves onto DEVICE, killed after two chunks were journaled.  Sets $dom.
move_killed() {
	local name=$1 src=$2 dev=$3 rc=0
	shift 3
	mkdir -m 755 "$T/$name"
	dom=$(dom_name "$name")
	make_domain "$dom" transient "vda:$src:raw"
	guest_write "$dom" vda 0x21 10M 64k
	SNAPMOVE_TEST_CRASH_AT=copy:chunk bash -c '"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' \
		"$T/$name/move" "$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/$name" \
		--dest-dev "vda=$dev" "$@" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$T/$name/move.err" >&2; fail "$name: move exited $rc, not killed"; }
	guest_write "$dom" vda 0x41 12M 64k
}

chunks() {  # JOB
	sqlite3 "$DB" "SELECT count(*) FROM chunk WHERE job_id = $1 AND depth = 0"
}

note "another device at the journaled path: the resume refuses it"
new_image "$T/src/a.raw" raw 256M 0x11 0 8M 0x12 64M 8M 0x13 128M 8M 0x14 192M 8M
new_target "$T/dev/a.img" 0xff
dev=$loop
new_target "$T/dev/other.img" 0xee
other=$loop
move_killed swapped "$T/src/a.raw" "$dev"
assert_eq "$(chunks 1)" 2 "chunks journaled when killed"
rdev=$(stat -c '%t:%T' "$dev")
want="$((16#${rdev%:*})):$((16#${rdev#*:}))"
ordev=$(stat -c '%t:%T' "$other")
# The node made again for the other device; put back at the end (before the
# loop devices are detached: a later defer runs first).
defer "rm -f $dev; mknod -m 600 $dev b $((16#${rdev%:*})) $((16#${rdev#*:}))"
rm -f "$dev"
mknod -m 600 "$dev" b "$((16#${ordev%:*}))" "$((16#${ordev#*:}))"
sum_before=$(md5sum <"$T/dev/other.img")
expect_exit 1 sm resume 1
assert_contains "$T/err" "destination device '$dev' is no longer the device $want the job checked"
sync
assert_eq "$(md5sum <"$T/dev/other.img")" "$sum_before" "the other device after the refused resume"
check_pattern "$other" raw 0xee 0 256M
assert_eq "$(chunks 1)" 2 "chunks journaled after the refused resume"
# The journaled device at its path again: the resume finishes the copy.
rm -f "$dev"
mknod -m 600 "$dev" b "$((16#${rdev%:*}))" "$((16#${rdev#*:}))"
expect_exit 0 sm resume 1
assert_contains "$T/err" "resumed after chunk 2"
guest_write "$dom" vda 0x42 14M 64k
virsh -q destroy "$dom" >/dev/null
for p in "0x11 0 8M" "0x12 64M 8M" "0x13 128M 8M" "0x14 192M 8M" "0x21 10M 64k" \
	"0x41 12M 64k" "0x42 14M 64k" "0x00 20M 4M" "0x00 150M 4M" "0x00 252M 4M"; do
	# shellcheck disable=SC2086
	check_pattern "$dev" raw $p
done
assert_eq "$(md5sum <"$T/dev/other.img")" "$sum_before" "the other device at the end"

note "--dest-zeroed survives the resume: no zeros written after it either"
new_image "$T/src/z.raw" raw 256M 0x31 0 8M 0x32 64M 8M 0x33 128M 8M 0x34 192M 8M
new_target "$T/dev/z.img" 0xff
zdev=$loop
move_killed zeroed "$T/src/z.raw" "$zdev" --dest-zeroed --no-verify
assert_eq "$(chunks 2)" 2 "zeroed: chunks journaled when killed"
assert_eq "$(sqlite3 "$DB" "SELECT dest_zeroed FROM job WHERE id = 2")" 1 "dest_zeroed journaled"
expect_exit 0 sm resume 2
assert_contains "$T/err" "resumed after chunk 2, 16.0 MiB of 32.1 MiB copied now"
virsh -q destroy "$dom" >/dev/null
for p in "0x31 0 8M" "0x32 64M 8M" "0x33 128M 8M" "0x34 192M 8M" "0x21 10M 64k" \
	"0x41 12M 64k" "0xff 20M 4M" "0xff 100M 4M" "0xff 150M 4M" "0xff 252M 4M"; do
	# shellcheck disable=SC2086
	check_pattern "$zdev" raw $p
done

note "a loop device attached again to another file (the same 7:N): the resume refuses it"
# Offline: no QEMU holds the device between the kill and the resume (a live
# mirror's QEMU would: 'losetup -d' would only mark it to go when closed).
# These loop devices are detached by their files, not their names: the name
# is let go of and taken again below.
new_image "$T/src/o.raw" raw 256M 0x51 0 8M 0x52 64M 8M 0x53 128M 8M 0x54 192M 8M
qemu-img create -q -f raw "$T/dev/o.img" 256M
qemu-io -f raw -c "write -P 0xff 0 256M" "$T/dev/o.img" >/dev/null
qemu-img create -q -f raw "$T/dev/o2.img" 256M
qemu-io -f raw -c "write -P 0xee 0 256M" "$T/dev/o2.img" >/dev/null
for f in o.img o2.img; do
	defer "for d in \$(losetup -n -O NAME -j $T/dev/$f); do losetup -d \$d; done"
done
odev=$(losetup --find --show "$T/dev/o.img") || fail "losetup cannot attach a loop device"
odom=$(dom_name offline)
mkdir -m 755 "$T/offline"
make_domain "$odom" defined "vda:$T/src/o.raw:raw"
rc=0
SNAPMOVE_TEST_CRASH_AT=copy:chunk bash -c '"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' \
	"$T/offline/move" "$SNAPMOVE" --db "$DB" move "$odom" --dest "$T/offline" \
	--dest-dev "vda=$odev" --offline 2>/dev/null || rc=$?
[ "$rc" = 137 ] || { cat "$T/offline/move.err" >&2; fail "offline: move exited $rc, not killed"; }
assert_eq "$(chunks 3)" 2 "offline: chunks journaled when killed"
seq_before=$(sqlite3 "$DB" "SELECT dst_diskseq FROM image WHERE job_id = 3")
[ "$seq_before" -gt 0 ] || fail "offline: no disk sequence number journaled"
rdev_before=$(stat -c '%t:%T' "$odev")
losetup -d "$odev"
losetup "$odev" "$T/dev/o2.img" ||
	fail "'$odev' was taken by another program between the detach and the attach"
assert_eq "$(stat -c '%t:%T' "$odev")" "$rdev_before" "offline: the device number, attached again"
sum_before=$(md5sum <"$T/dev/o2.img")
expect_exit 1 sm resume 3
assert_contains "$T/err" "destination device '$odev' ($((16#${rdev_before%:*})):$((16#${rdev_before#*:}))) is another disk than the one job 3 copied onto"
sync
assert_eq "$(md5sum <"$T/dev/o2.img")" "$sum_before" "the file attached again after the refused resume"
assert_eq "$(chunks 3)" 2 "offline: chunks journaled after the refused resume"
# As it says: abort, and the domain is defined on its source again.
expect_exit 0 sm abort 3
assert_eq "$(live_chain "$odom" vda --inactive)" "$T/src/o.raw raw" "offline: after abort"
assert_eq "$(md5sum <"$T/dev/o2.img")" "$sum_before" "the file attached again after abort"
