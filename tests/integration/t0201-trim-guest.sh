#!/usr/bin/env bash
# --trim with a guest that really trims (tests/guest: a Debian kernel with
# qemu-guest-agent): the guest fills, then deletes, a big file on the ext4 file
# system of its disk (mounted without 'discard': the blocks stay allocated).
# A move without --trim copies them all; a move with --trim says trimmed: true
# and leaves the destination image far smaller, and the file the guest kept
# reads back the same in the guest and in a clean file system offline.  A
# second disk without discard='unmap' (QEMU drops the guest's discards): its
# image keeps every block, and the move says so in a warning naming it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"

MIB=$((1024 * 1024))
GONE_MIB=96   # written, then deleted by the guest (vda)
KEPT_MIB=8    # kept (vda)
GONE2_MIB=32  # written, then deleted by the guest (vdb, no discard='unmap')

mkdir -m 755 "$T/src" "$T/dst1" "$T/dst2"
# The file system is made here (inode tables and journal written out, so the
# guest's kernel has no lazy initialisation to do), as a sparse qcow2.
for disk in disk disk2; do
	truncate -s 256M "$T/fs.raw"
	mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$T/fs.raw"
	qemu-img convert -q -f raw -O qcow2 "$T/fs.raw" "$T/src/$disk.qcow2"
	rm -f "$T/fs.raw"
done
dom=$(dom_name)
start=$(date +%s%N)
guest_domain "$dom" transient vda,vdb "vda:$T/src/disk.qcow2:qcow2" \
	"vdb:$T/src/disk2.qcow2:qcow2:ignore"
guest_wait_agent "$dom" 120
note "guest booted, agent answering, in $((($(date +%s%N) - start) / 1000000)) ms ($(guest_type))"

guest_exec "$dom" "set -e
	dd if=/dev/urandom of=/mnt/vda/gone bs=1M count=$GONE_MIB 2>/dev/null
	dd if=/dev/urandom of=/mnt/vda/kept bs=1M count=$KEPT_MIB 2>/dev/null
	dd if=/dev/urandom of=/mnt/vdb/gone bs=1M count=$GONE2_MIB 2>/dev/null
	sync
	rm /mnt/vda/gone /mnt/vdb/gone
	sync" || fail "the guest could not write its files"
kept=$(guest_exec "$dom" "md5sum /mnt/vda/kept") || fail "md5sum in the guest failed"
kept=${kept%% *}

case_no_trim() {
	expect_exit 0 sm move "$dom" --dest "$T/dst1"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst1/disk.qcow2 qcow2" "chain after the move"
	assert_eq "$(live_chain "$dom" vdb)" "$T/dst1/disk2.qcow2 qcow2" "chain after the move"
	local a a2
	a=$(allocated "$T/dst1/disk.qcow2")
	a2=$(allocated "$T/dst1/disk2.qcow2")
	note "without --trim: vda $((a / MIB)) MiB, vdb $((a2 / MIB)) MiB allocated"
	# The deleted files' blocks came along.
	[ "$a" -ge $(((GONE_MIB + KEPT_MIB) * MIB)) ] ||
		fail "without --trim the destination holds $a bytes, less than the $((GONE_MIB + KEPT_MIB)) MiB the guest wrote"
	[ "$a2" -ge $((GONE2_MIB * MIB)) ] ||
		fail "without --trim vdb's destination holds $a2 bytes, less than the $GONE2_MIB MiB the guest wrote"
}
run_case "moved without --trim: the deleted file's blocks are copied" case_no_trim

case_trim() {
	local before after before2 after2
	before=$(allocated "$T/dst1/disk.qcow2")
	before2=$(allocated "$T/dst1/disk2.qcow2")
	expect_exit 0 sm --json move "$dom" --dest "$T/dst2" --trim
	assert_events "$T/out"
	assert_eq "$(jev "$T/out" 'ev("result")[0]["trimmed"]')" true "trimmed in the result"
	# One warning: vdb's image did not get the trim.
	assert_eq "$(jev "$T/out" '[e.get("disk") for e in ev("warning")]')" vdb "warnings"
	assert_contains "$T/out" "disk 'vdb' has no discard='unmap' in its <driver>, so QEMU dropped the guest's trim and its image '$T/dst2/disk2.qcow2' keeps the freed blocks"
	assert_contains "$T/err" "warning: disk 'vdb' has no discard='unmap'"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst2/disk.qcow2 qcow2" "chain after the move"
	assert_eq "$(live_chain "$dom" vdb)" "$T/dst2/disk2.qcow2 qcow2" "chain after the move"
	after=$(allocated "$T/dst2/disk.qcow2")
	after2=$(allocated "$T/dst2/disk2.qcow2")
	note "with --trim: vda $((before / MIB)) MiB allocated before (the source), $((after / MIB)) MiB after"
	note "with --trim: vdb (no discard='unmap') $((before2 / MIB)) MiB before, $((after2 / MIB)) MiB after"
	[ "$after2" -ge $((before2 - 4 * MIB)) ] ||
		fail "vdb's image shrank from $before2 to $after2 bytes without discard='unmap'"
	# The deleted file's 96 MiB are gone (a margin of 16 MiB for what the
	# file system's metadata and the image's own may hold); the kept file's
	# 8 MiB stay.
	[ "$after" -le $((before - (GONE_MIB - 16) * MIB)) ] ||
		fail "after --trim the destination holds $after bytes, not $((GONE_MIB - 16)) MiB less than the $before bytes before"
	[ "$after" -ge $((KEPT_MIB * MIB)) ] ||
		fail "after --trim the destination holds $after bytes, less than the kept file"
	# What the guest kept reads back from the storage (page cache dropped).
	local sum
	sum=$(guest_exec "$dom" "echo 3 >/proc/sys/vm/drop_caches; md5sum /mnt/vda/kept") ||
		fail "reading the kept file in the guest failed"
	assert_eq "${sum%% *}" "$kept" "the kept file, read in the guest after the trim"
}
run_case "moved with --trim: trimmed, the destination shrinks" case_trim

case_offline() {
	# The guest powers off (agent); the image is consistent, its file system
	# clean, and the kept file there.
	virsh -q shutdown "$dom" --mode agent >/dev/null
	local i
	for i in $(seq 1 300); do
		virsh -q domstate "$dom" >/dev/null 2>&1 || break
		sleep 0.1
	done
	virsh -q domstate "$dom" >/dev/null 2>&1 && fail "the guest did not power off"
	qemu-img check -q -f qcow2 "$T/dst2/disk.qcow2" || fail "qemu-img check of the trimmed image"
	qemu-img convert -q -f qcow2 -O raw "$T/dst2/disk.qcow2" "$T/fs.raw"
	e2fsck -fn "$T/fs.raw" >"$T/fsck" 2>&1 || { cat "$T/fsck" >&2; fail "e2fsck of the trimmed file system"; }
	[ "$(debugfs -R 'dump /kept /dev/stdout' "$T/fs.raw" 2>/dev/null | md5sum | cut -d' ' -f1)" = "$kept" ] ||
		fail "the kept file, read offline, is not what the guest wrote"
	rm -f "$T/fs.raw"
}
run_case "after the guest powers off: the image and its file system are clean" case_offline

cases_done
