#!/usr/bin/env bash
# A raw image with a block device at one end is copied by snapmove's own
# copier (chunks journaled with checksums, verified), not by qemu-img
# convert: raw device -> file, file -> device, device -> device (loop devices
# of 256 MiB, four 64 MiB chunks, 8 MiB of data in each; the destination
# devices filled with 0xff first).  Each move is killed with SIGKILL in the
# middle of the copy (SNAPMOVE_TEST_CRASH_AT=copy:chunk, after two chunks
# were journaled; and once by 'kill -9' from outside while --bandwidth holds
# the copy back), the guest writes while nothing drives the job, and the
# resume copies only the chunks the journal does not hold: the journal's
# rows and the resume's own figure ("resumed after chunk N, X of 256 MiB
# copied now") show it.  The data ends right: every pattern, every guest
# write, zeros where the source had zeros (not the device's 0xff), a file
# destination sparse.  Every loop device made here is detached at the end.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/dev" "$T/src"
job=0

# new_loop FILE: a loop device over FILE, in $loop (not in a subshell:
# defer must reach this shell).
new_loop() {
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	defer "losetup -d $loop"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

# new_source FILE: 256 MiB raw, 8 MiB of a pattern at the start of each
# 64 MiB chunk, the rest zeros (holes of the file).
new_source() {
	new_image "$1" raw 256M 0x11 0 8M 0x12 64M 8M 0x13 128M 8M 0x14 192M 8M
}

# new_target FILE: a device of 256 MiB full of 0xff, in $loop.
new_target() {
	qemu-img create -q -f raw "$1" 256M
	qemu-io -f raw -c "write -P 0xff 0 256M" "$1" >/dev/null
	new_loop "$1"
}

block_disk() {  # TARGET DEV
	echo "<disk type='block' device='disk'><driver name='qemu' type='raw'/>
<source dev='$2'/><target dev='$1' bus='virtio'/></disk>"
}

file_disk() {  # TARGET FILE
	echo "<disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='$2'/><target dev='$1' bus='virtio'/></disk>"
}

chunks() {  # JOB [WHERE]
	sqlite3 "$DB" "SELECT count(*) FROM chunk WHERE job_id = $1 AND depth = 0 ${2:-}"
}

# check_image IMAGE WHAT: the data of the source, the guest's writes, and
# zeros where the source had zeros (the destination devices held 0xff).
check_image() {
	local p
	for p in "0x11 0 8M" "0x12 64M 8M" "0x13 128M 8M" "0x14 192M 8M" "0x21 10M 64k" \
		"0x41 12M 64k" "0x42 14M 64k" "0x00 20M 4M" "0x00 100M 4M" "0x00 150M 4M" \
		"0x00 252M 4M"; do
		# shellcheck disable=SC2086
		check_pattern "$1" raw $p
	done
	note "$2: every pattern, guest write and zero found in '$1'"
}

# move_killed NAME DISK_XML COPIED DEST_ARGS...: a domain on DISK_XML moves
# with a SIGKILL after two chunks were journaled; the guest writes before,
# while nothing drives the job, and after the resume, which copies the two
# other chunks only (COPIED: "X of Y", the data bytes of those chunks of the
# source's; a device's zeros are data).  Sets $dom and $job.
move_killed() {
	local name=$1 disk=$2 copied=$3 rc=0
	shift 3
	mkdir -m 755 "$T/$name"
	dom=$(dom_name "$name")
	make_domain_xml "$dom" transient "$disk"
	job=$((job + 1))
	guest_write "$dom" vda 0x21 10M 64k
	SNAPMOVE_TEST_CRASH_AT=copy:chunk bash -c '"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' \
		"$T/$name/move" "$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/$name" --disk vda "$@" \
		2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$T/$name/move.err" >&2; fail "$name: move exited $rc, not killed"; }
	grep -q "test crash at 'copy:chunk'" "$T/$name/move.err" ||
		fail "$name: the crash point was not reached"
	assert_eq "$(chunks "$job")" 2 "$name: chunks journaled when killed"
	assert_eq "$(sqlite3 "$DB" "SELECT coalesce(copy_method, '') FROM image WHERE job_id = $job")" \
		"" "$name: no conversion started"
	guest_write "$dom" vda 0x41 12M 64k
	expect_exit 0 sm resume "$job"
	assert_contains "$T/err" "resumed after chunk 2, $copied copied now"
	assert_eq "$(chunks "$job" "AND verified = 1")" 4 "$name: chunks journaled, verified"
	case "$(sqlite3 "$DB" "SELECT copy_method FROM image WHERE job_id = $job")" in
	direct-uring | direct | readwrite) ;;
	*) fail "$name: the copy was not made by the copier" ;;
	esac
	guest_write "$dom" vda 0x42 14M 64k
	virsh -q destroy "$dom" >/dev/null
}

note "raw device -> file"
new_source "$T/src/a.img"
new_loop "$T/src/a.img"
src_a=$loop
move_killed dev-file "$(block_disk vda "$src_a")" "128.0 MiB of 256.0 MiB"
check_image "$T/dev-file/$(basename "$src_a")" "device -> file"
# The device's zero blocks were read, and not written: the file is sparse.
[ "$(allocated "$T/dev-file/$(basename "$src_a")")" -lt $((64 << 20)) ] ||
	fail "device -> file: the copy is not sparse ($(allocated "$T/dev-file/$(basename "$src_a")") bytes)"

note "raw file -> device"
new_source "$T/src/b.raw"
new_target "$T/dev/b.img"
dst_b=$loop
# The file's data: 4 x 8 MiB and the guest's 64 KiB in chunk 0.
move_killed file-dev "$(file_disk vda "$T/src/b.raw")" "16.0 MiB of 32.1 MiB" --dest-dev "vda=$dst_b"
check_image "$dst_b" "file -> device"

note "raw device -> device"
new_source "$T/src/c.img"
new_loop "$T/src/c.img"
src_c=$loop
new_target "$T/dev/c.img"
dst_c=$loop
move_killed dev-dev "$(block_disk vda "$src_c")" "128.0 MiB of 256.0 MiB" --dest-dev "vda=$dst_c"
check_image "$dst_c" "device -> device"
# The source device holds what it had at the snapshot.
check_pattern "$src_c" raw 0x21 10M 64k
check_pattern "$src_c" raw 0x00 12M 64k

note "device -> device, killed from outside while --bandwidth holds the copy back"
new_source "$T/src/d.img"
new_loop "$T/src/d.img"
src_d=$loop
new_target "$T/dev/d.img"
dst_d=$loop
mkdir -m 755 "$T/kill"
dom=$(dom_name kill)
make_domain_xml "$dom" transient "$(block_disk vda "$src_d")"
job=$((job + 1))
guest_write "$dom" vda 0x21 10M 64k
"$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/kill" --disk vda --dest-dev "vda=$dst_d" --bandwidth 48 \
	>"$T/kill/move.out" 2>"$T/kill/move.err" &
pid=$!
for _ in $(seq 600); do
	n=$(sqlite3 "$DB" "SELECT count(*) FROM chunk WHERE job_id = $job" 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 1 ] && break
	sleep 0.05
done
kill -9 "$pid"
rc=0
wait "$pid" 2>/dev/null || rc=$?
assert_eq "$rc" 137 "exit of the move killed from outside"
n=$(chunks "$job")
if [ "$n" -lt 1 ] || [ "$n" -ge 4 ]; then
	fail "killed from outside: $n chunks journaled, not 1 to 3"
fi
note "killed from outside with $n of 4 chunks journaled"
guest_write "$dom" vda 0x41 12M 64k
expect_exit 0 sm resume "$job"
assert_contains "$T/err" "resumed after chunk $n, $((64 * (4 - n))).0 MiB of 256.0 MiB copied now"
assert_eq "$(chunks "$job" "AND verified = 1")" 4 "killed from outside: chunks verified"
guest_write "$dom" vda 0x42 14M 64k
virsh -q destroy "$dom" >/dev/null
check_image "$dst_d" "device -> device, killed from outside"
# The chunks no guest wrote, byte for byte: the device against the source.
for r in "64M 64M" "128M 128M"; do
	# shellcheck disable=SC2086
	set -- $r
	cmp -s -i "$(numfmt --from=iec "$1")" -n "$(numfmt --from=iec "$2")" "$src_d" "$dst_d" ||
		fail "device -> device: bytes $1+$2 differ from the source"
done
