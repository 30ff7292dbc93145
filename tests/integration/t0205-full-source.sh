#!/usr/bin/env bash
# Moving off a full storage (issue 15): the source folder is a small ext4
# file system (no blocks reserved for root, noatime, inode tables written at
# mkfs) filled to its last byte, so that not even root can write a block
# there.  A live move with the guest writing throughout (a writer looping
# over allocated clusters from before the move to after it, plus a write at
# the start of each phase) succeeds: the temporary overlay is on the
# destination.  Every write is on the destination chain (read offline), the
# source file system's used blocks did not grow, and the bytes its loop
# device was written are printed phase by phase (synced at each phase's
# start; the writer pauses over the snapshot phase, so that what lands there
# is the snapshot's own): metadata only (6 KiB to 134 KiB in the runs when
# this was written), nothing after it.  And an abort there: the commit back
# fails for want of room and names 'abort --via stream', which works.  The old placement (--overlay-dir naming the source
# folder) is refused on that full storage before anything changes.
. "$(dirname "$0")/lib.sh"

command -v mkfs.ext4 >/dev/null || { echo "SKIP: mkfs.ext4 is missing (e2fsprogs)"; exit 0; }
mkdir -m 755 "$T/src" "$T/dst"
truncate -s 48M "$T/src.ext4"
mkfs.ext4 -q -F -m 0 -I 256 -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$T/src.ext4"
mount -o loop,noatime "$T/src.ext4" "$T/src" || { echo "SKIP: cannot mount a loop file here"; exit 0; }
SM_MOUNTS+=("$T/src")
chmod 755 "$T/src"
loop=$(findmnt -n -o SOURCE --target "$T/src")
loop=${loop#/dev/}
[ -r "/sys/block/$loop/stat" ] || fail "no I/O statistics for '$loop'"

new_image "$T/src/base.raw" raw 32M 0x11 0 1M
new_overlay "$T/src/top.qcow2" base.raw raw 0x12 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/top.qcow2:qcow2"
guest_write "$dom" vda 0x13 2M 64k   # before, while there is room
# A second domain, for an abort on the full source (below).
new_image "$T/src/d2.qcow2" qcow2 16M 0x61 0 1M
dom2=$(dom_name 2)
make_domain "$dom2" transient "vda:$T/src/d2.qcow2:qcow2"

# Fill the file system to its last block: 1 MiB at a time, then a block at
# a time (mkfs gave such a small one 1 KiB blocks).
dd if=/dev/zero of="$T/src/filler" bs=1M status=none 2>/dev/null || true
dd if=/dev/zero of="$T/src/filler2" bs="$(stat -f -c %S "$T/src")" status=none 2>/dev/null || true
sync -f "$T/src"
assert_eq "$(df --output=avail -B1 "$T/src" | tail -n1 | tr -d ' ')" 0 "bytes available on the source"
assert_eq "$(stat -f -c %a "$T/src")" 0 "blocks available on the source (no reserve for root: -m 0)"
# ext4 still counts as free the clusters it keeps for its own metadata
# (s_resv_clusters, 2%): no file, not even root's, gets them (the probe below).
note "free blocks ext4 keeps for its metadata: $(stat -f -c %f "$T/src") of $(stat -f -c %b "$T/src")"
! dd if=/dev/zero of="$T/src/probe" bs=4k count=1 conv=fsync status=none 2>/dev/null ||
	fail "root can still write a block to the full source"
rm -f "$T/src/probe"
sync -f "$T/src"

# The plan says where the guest's writes go during the move.
expect_exit 0 sm move "$dom" --dest "$T/dst" --dry-run
assert_contains "$T/out" "the guest's writes during the move go to $T/dst (the destination)"

# The old placement needs room beside the image: refused, nothing changed.
save_state old "$dom" vda "$T/src" "$T/dst"
expect_exit 3 sm move "$dom" --dest "$T/dst" --overlay-dir "$T/src"
assert_contains "$T/err" "not enough free space in the overlay folder '$T/src'"
assert_contains "$T/err" "--overlay-dir"
assert_unchanged old

# The guest's writer: 16 slots of 64 KiB in clusters top.qcow2 already has
# (1M..2M), so it can write before the snapshot too; each write's pattern is
# logged once QEMU acknowledged it (HMP's qemu-io prints nothing then; a
# write that fails prints why).
alias=$(disk_alias "$dom" vda)
writer() {
	local k=0 off pat out
	while [ ! -e "$T/writer.stop" ]; do
		if [ -e "$T/writer.pause" ]; then
			touch "$T/writer.paused"
			sleep 0.05
			continue
		fi
		rm -f "$T/writer.paused"
		off=$((1048576 + (k % 16) * 65536))
		pat=$((64 + k % 128))
		if out=$(virsh -q qemu-monitor-command "$dom" --hmp \
			"qemu-io -d $alias/virtio-backend \"write -P $pat $off 64k\"" 2>&1); then
			case "$out" in
			"" | *"wrote 65536/65536"*) echo "$k $off $pat ok" ;;
			*) echo "$k $off $pat FAILED $out" ;;
			esac
		else
			echo "$k $off $pat not-sent $out"  # libvirt busy: never reached QEMU
		fi >>"$T/writer.log"
		k=$((k + 1))
		sleep 0.05
	done
}
make_write_hook "$dom" vda dest_chain:0x21:3M mirror:0x22:4M copy:0x23:5M sync:0x24:6M \
	pivot:0x25:7M collapse:0x26:8M finalize:0x27:9M

# Where the source's writes happen: the device's written sectors at each
# phase's start (after a sync, so that ext4's journal has committed what
# came before), then the guest's write of that phase.
# The writer pauses over the snapshot phase only (the guest's writes before
# it go to the source, where its disk is until then), so that what the
# device gets there is the snapshot's own.
cat >"$T/hook.phases" <<HOOK
#!/bin/bash
if [ "\$1" = snapshot ]; then
	touch '$T/writer.pause'
	for i in \$(seq 100); do [ -e '$T/writer.paused' ] && break; sleep 0.1; done
fi
sync -f '$T/src'
echo "\$1 \$(awk '{ print \$7 }' /sys/block/$loop/stat)" >>'$T/sectors.log'
[ "\$1" = snapshot ] || rm -f '$T/writer.pause'
exec '$T/hook' "\$@"
HOOK
chmod 755 "$T/hook.phases"
read -r blocks0 free0 < <(stat -f -c '%b %f' "$T/src")
written0=$(awk '{ print $7 }' "/sys/block/$loop/stat")
writer &
wpid=$!
sleep 0.5   # writes before the move
SNAPMOVE_TEST_HOOK=$T/hook.phases expect_exit 0 sm move "$dom" --dest "$T/dst" --bandwidth 20
sleep 0.5   # and after it
touch "$T/writer.stop"
wait "$wpid"
sync -f "$T/src"
written1=$(awk '{ print $7 }' "/sys/block/$loop/stat")
read -r blocks1 free1 < <(stat -f -c '%b %f' "$T/src")
guest_write "$dom" vda 0x31 10M 64k   # after

assert_contains "$T/out" "moved domain $dom"
assert_eq "$(wc -l <"$T/hook.log")" 7 "hook writes during the move"
! grep -F FAILED "$T/writer.log" >&2 || fail "a guest write failed during the move"
nok=$(grep -c ' ok$' "$T/writer.log" || true)
[ "$nok" -ge 10 ] || { cat "$T/writer.log" >&2; fail "only $nok guest writes went through"; }
assert_eq "$(live_chain "$dom" vda)" "$T/dst/top.qcow2 qcow2
$T/dst/base.raw raw" "live chain after the move"
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "base.raw top.qcow2 " "destination files"
assert_eq "$(ls "$T/src" | tr '\n' ' ')" "base.raw d2.qcow2 filler filler2 lost+found top.qcow2 " \
	"source files"

# Nothing but metadata on the source: its used blocks did not grow (it is
# full: they could not), and the device was written little.
used0=$((blocks0 - free0)) used1=$((blocks1 - free1))
note "used blocks of the source: $used0 before the move, $used1 after"
[ "$used1" -le "$used0" ] || fail "the source's used blocks grew during the move: $used0 -> $used1"
prev=$written0 prevph=start
while read -r ph sec; do
	note "bytes written to the source, $prevph -> $ph: $(((sec - prev) * 512))"
	prev=$sec prevph=$ph
done <"$T/sectors.log"
note "bytes written to the source, $prevph -> end: $(((written1 - prev) * 512))"
snap=$(awk '$1 == "snapshot" { print $2 }' "$T/sectors.log")
after=$(awk '$1 == "dest_chain" { print $2 }' "$T/sectors.log")
snap_bytes=$(((after - snap) * 512)) after_bytes=$(((written1 - after) * 512))
note "the snapshot wrote $snap_bytes bytes to the source (its metadata), the rest of" \
	"the move $after_bytes; the guest's writes before the snapshot" \
	"$(((snap - written0) * 512))"
# The snapshot: QEMU flushes the old top image (its qcow2 caches, which may
# hold the metadata of the guest's earlier writes) and marks it clean, ext4
# journals the inode changes; in blocks already allocated (used blocks above).
[ "$snap_bytes" -le $((1024 * 1024)) ] ||
	fail "the snapshot wrote $snap_bytes bytes to the source storage (more than 1 MiB)"
[ "$after_bytes" -le $((64 * 1024)) ] ||
	fail "$after_bytes bytes were written to the source storage after the snapshot"

virsh -q destroy "$dom" >/dev/null
img=$T/dst/top.qcow2
assert_eq "$(virsh dumpxml --inactive "$dom" |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" -)" "$img" \
	"persistent definition"
check_pattern "$img" qcow2 0x11 0 1M
check_pattern "$img" qcow2 0x13 2M 64k
for w in "0x21 3M" "0x22 4M" "0x23 5M" "0x24 6M" "0x25 7M" "0x26 8M" "0x27 9M" "0x31 10M"; do
	set -- $w
	check_pattern "$img" qcow2 "$1" "$2" 64k
done
# Each writer slot holds the last pattern QEMU acknowledged there.
for slot in $(seq 0 15); do
	off=$((1048576 + slot * 65536))
	last=$(awk -v off="$off" '$2 == off && $4 == "ok" { p = $3 } END { print p }' "$T/writer.log")
	[ -n "$last" ] || last=18   # 0x12: never written
	check_pattern "$img" qcow2 "$last" "$off" 64k
done
# The source images hold what they had at the snapshot.
check_pattern "$T/src/top.qcow2" qcow2 0x13 2M 64k
check_pattern "$T/src/top.qcow2" qcow2 0x00 3M 64k

# Undoing a move off the full source: the commit back needs new clusters in
# the original image, so it fails there (the domain stays on its overlay, on
# the destination) and says what needs no room: 'abort --via stream', which
# writes only into the overlay, where the domain then stays.
rc=0
SNAPMOVE_TEST_CRASH_AT=copy:start bash -c '"$@" >"$0.out" 2>"$0.err"' "$T/move2" \
	"$SNAPMOVE" --db "$DB" move "$dom2" --dest "$T/dst" 2>/dev/null || rc=$?
[ "$rc" = 137 ] || { cat "$T/move2.err" >&2; fail "the second move exited $rc, not killed (137)"; }
ov2=$T/dst/d2.qcow2.snapmove-2.src.qcow2
guest_write "$dom2" vda 0x62 4M 64k   # into the overlay, on the destination
read -r blocks0 free0 < <(stat -f -c '%b %f' "$T/src")
expect_exit 1 sm abort 2
assert_contains "$T/err" "No space left on device"
assert_contains "$T/err" "run 'snapmove abort 2 --via stream', which writes only into the overlay '$ov2'"
assert_eq "$(live_chain "$dom2" vda)" "$ov2 qcow2
$T/src/d2.qcow2 qcow2" "chain after the failed commit back"
expect_exit 0 sm abort 2 --via stream
assert_eq "$(live_chain "$dom2" vda)" "$ov2 qcow2" "chain after the stream back"
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "base.raw d2.qcow2.snapmove-2.src.qcow2 top.qcow2 " \
	"destination files after the stream back"
sync -f "$T/src"
read -r blocks1 free1 < <(stat -f -c '%b %f' "$T/src")
[ "$((blocks1 - free1))" -le "$((blocks0 - free0))" ] || fail "the aborts grew the source's used blocks"
virsh -q destroy "$dom2" >/dev/null
check_pattern "$ov2" qcow2 0x61 0 1M
check_pattern "$ov2" qcow2 0x62 4M 64k
note "abort on the full source: the commit back refused by ENOSPC, the stream back done"

# A source overlay of the job still at its journaled name (as when one was
# kept) stands on the old image from the destination folder: cleanup reads
# that folder too and keeps what it uses.
ov=$T/dst/top.qcow2.snapmove-1.src.qcow2
qemu-img create -q -f qcow2 -F qcow2 -b "$T/src/top.qcow2" "$ov"
expect_exit 0 sm cleanup 1
cat "$T/out" "$T/err" >"$T/cleanup1.txt"
assert_contains "$T/cleanup1.txt" "kept $T/src/top.qcow2: used by image '$ov'"
[ -f "$T/src/top.qcow2" ] && [ -f "$T/src/base.raw" ] || fail "cleanup deleted an image the overlay uses"
rm "$ov"

# The way off is done: the source images go, and the storage has room again.
expect_exit 0 sm cleanup 1
assert_absent "$T/src/top.qcow2"
assert_absent "$T/src/base.raw"
[ "$(stat -f -c %f "$T/src")" -gt 0 ] || fail "cleanup freed nothing on the source"
