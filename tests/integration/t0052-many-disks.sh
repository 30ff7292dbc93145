#!/usr/bin/env bash
# Three of a domain's four disks move with --parallel 3: one atomic snapshot
# (one snapshot step; during the copy all three run on overlays of job 1),
# the three copies run at the same time, the fourth disk is left alone, and
# every byte of all four disks is intact.
#
# Concurrency is proved from the journal while the move runs: a sampler reads
# each image's state and journaled chunk count every 50 ms, and some sample
# must show all three images 'copying' with at least one chunk journaled each
# (each copy: 128 MiB of data in two 64 MiB chunks at --bandwidth 48, about
# 2.7 s, so copies one after another could never all be half-way at once).
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/d0.qcow2" qcow2 256M 0x10 0 128M
new_image "$T/src/d1.qcow2" qcow2 256M 0x11 0 128M
new_image "$T/src/d2.qcow2" qcow2 256M 0x12 0 128M
new_image "$T/src/d3.qcow2" qcow2 256M 0x13 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/d0.qcow2:qcow2" "vdb:$T/src/d1.qcow2:qcow2" \
	"vdc:$T/src/d2.qcow2:qcow2" "vdd:$T/src/d3.qcow2:qcow2"

# At the copy: record the disks, and the guest writes to all four.
cat >"$T/hook" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
[ "\$1" = copy ] || exit 0
virsh domblklist '$dom' >'$T/during.txt'
n=0
for t in vda vdb vdc vdd; do
	alias=\$(virsh dumpxml '$dom' |
		xmllint --xpath "string(//devices/disk[target/@dev='\$t']/alias/@name)" -)
	virsh -q qemu-monitor-command '$dom' --hmp \
		"qemu-io -d \$alias/virtio-backend \"write -P 0x2\$n 200M 64k\"" >/dev/null
	n=\$((n + 1))
done
HOOK
chmod 755 "$T/hook"

# The sampler: one line per 50 ms, "vda:copying:1 vdb:copying:1 ...".
sampler() {
	while [ ! -e "$T/stop" ]; do
		if [ -e "$DB" ]; then
			sqlite3 -readonly -cmd '.timeout 2000' "$DB" \
				"select group_concat(target || ':' || state || ':' ||
				 (select count(*) from chunk c where c.job_id = i.job_id and
				  c.target = i.target and c.depth = i.depth), ' ')
				 from (select * from image where job_id = 1 order by target) i" \
				2>/dev/null || true
		fi
		sleep 0.05
	done
}
sampler >"$T/samples" &
sampler_pid=$!

rc=0
SNAPMOVE_TEST_HOOK=$T/hook sm move "$dom" --dest "$T/dst" --disk vda --disk vdb --disk vdc \
	--parallel 3 --bandwidth 48 --copy-method readwrite >"$T/out" 2>"$T/err" || rc=$?
touch "$T/stop"
wait "$sampler_pid"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "move exited $rc"; }

# One atomic snapshot: during the copy the three disks ran on job 1's
# overlays, and vdd on its own image.
during() {  # TARGET: its source during the copy
	awk -v t="$1" '$1 == t { print $2 }' "$T/during.txt"
}
assert_eq "$(during vda)" "$T/dst/d0.qcow2.snapmove-1.src.qcow2" "vda during the copy"
assert_eq "$(during vdb)" "$T/dst/d1.qcow2.snapmove-1.src.qcow2" "vdb during the copy"
assert_eq "$(during vdc)" "$T/dst/d2.qcow2.snapmove-1.src.qcow2" "vdc during the copy"
assert_eq "$(during vdd)" "$T/src/d3.qcow2" "vdd during the copy"
grep -q "d3.qcow2.snapmove" "$T/during.txt" && fail "vdd was snapshotted"

# The copies overlapped.
overlap=$(grep -cE '^vda:copying:[1-9][0-9]* vdb:copying:[1-9][0-9]* vdc:copying:[1-9][0-9]*$' \
	"$T/samples" || true)
[ "$overlap" -ge 1 ] || {
	sort "$T/samples" | uniq -c >&2
	fail "no sample shows the three copies half-way at the same time"
}
note "$overlap samples with all three copies half-way at once"

expect_exit 0 sm status 1
assert_contains "$T/out" "job 1: done, phase done"
assert_eq "$(grep -c '^  snapshot ' "$T/out")" 1 "snapshot steps"
for t in vda:d0 vdb:d1 vdc:d2; do
	assert_contains "$T/out" "  ${t%%:*}: done"
	assert_contains "$T/out" "    $T/src/${t#*:}.qcow2 -> $T/dst/${t#*:}.qcow2 (qcow2)"
done
grep -q '^  vdd' "$T/out" && fail "status lists vdd, which was not moved"
note "copy phase: $(sed -n 's/^  copy  *\([0-9.]* s\).*/\1/p' "$T/out")"

for t in vda:d0 vdb:d1 vdc:d2; do
	assert_eq "$(live_chain "$dom" "${t%%:*}")" "$T/dst/${t#*:}.qcow2 qcow2" "chain of ${t%%:*}"
	assert_eq "$(live_chain "$dom" "${t%%:*}" --inactive)" "$T/dst/${t#*:}.qcow2 qcow2" \
		"definition of ${t%%:*}"
done
assert_eq "$(live_chain "$dom" vdd)" "$T/src/d3.qcow2 qcow2" "chain of vdd"
assert_eq "$(live_chain "$dom" vdd --inactive)" "$T/src/d3.qcow2 qcow2" "definition of vdd"
assert_eq "$(ls "$T/src" | tr '\n' ' ')" "d0.qcow2 d1.qcow2 d2.qcow2 d3.qcow2 " "source files"
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "d0.qcow2 d1.qcow2 d2.qcow2 " "destination files"
assert_eq "$(block_job_count "$dom" vda)$(block_job_count "$dom" vdd)" 00 "block jobs"

virsh -q destroy "$dom" >/dev/null
for n in 0 1 2; do
	check_pattern "$T/dst/d$n.qcow2" qcow2 "0x1$n" 0 128M
	check_pattern "$T/dst/d$n.qcow2" qcow2 "0x2$n" 200M 64k
	# The source keeps what it had at the snapshot.
	check_pattern "$T/src/d$n.qcow2" qcow2 0x00 200M 64k
done
check_pattern "$T/src/d3.qcow2" qcow2 0x13 0 1M
check_pattern "$T/src/d3.qcow2" qcow2 0x23 200M 64k
