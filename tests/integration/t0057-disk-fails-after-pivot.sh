#!/usr/bin/env bash
# One disk of two fails after its pivot: when the final commit starts,
# someone else runs a block job (virsh blockpull) on vdb, so its commit cannot
# start.  vda finishes; vdb stays on the destination overlay over the moved
# image (live and in the persistent definition) and snapmove leaves the block
# job it did not start alone; 'move' exits 1 and says where each disk is.
# Once the other job is gone, 'snapmove resume' commits vdb and removes both
# overlays.  Every guest write is on the destination.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/a.qcow2" qcow2 64M 0x11 0 1M
new_image "$T/src/b.img" raw 64M 0x12 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/a.qcow2:qcow2" "vdb:$T/src/b.img:raw"

cat >"$T/hook" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
write() {  # TARGET PATTERN OFFSET
	local alias
	alias=\$(virsh dumpxml '$dom' |
		xmllint --xpath "string(//devices/disk[target/@dev='\$1']/alias/@name)" -)
	virsh -q qemu-monitor-command '$dom' --hmp \
		"qemu-io -d \$alias/virtio-backend \"write -P \$2 \$3 64k\"" >/dev/null
}
case "\$1" in
copy) write vda 0x21 2M; write vdb 0x22 2M ;;
collapse)
	write vda 0x23 3M; write vdb 0x24 3M
	virsh -q blockpull '$dom' vdb --bandwidth 1 >/dev/null ;;
esac
HOOK
chmod 755 "$T/hook"

rc=0
SNAPMOVE_TEST_HOOK=$T/hook sm move "$dom" --dest "$T/dst" >"$T/move.out" 2>"$T/move.err" || rc=$?
[ "$rc" = 1 ] || { cat "$T/move.out" "$T/move.err" >&2; fail "move exited $rc, expected 1"; }
why="cannot start the commit of disk 'vdb' into '$T/dst/b.img'"
assert_contains "$T/move.err" "  vdb: stopped: $why"
assert_contains "$T/move.err" "  vda: done ($T/dst/a.qcow2), moved"
assert_contains "$T/move.err" "  vdb: pivoted ($T/dst/b.img.snapmove-1.qcow2), runs on the destination overlay over the moved chain; stopped: $why"
assert_contains "$T/move.err" "snapmove: error: disk 'vdb' stopped: $why"
assert_contains "$T/move.err" "snapmove resume 1"

assert_eq "$(live_chain "$dom" vda)" "$T/dst/a.qcow2 qcow2" "vda's chain"
assert_eq "$(live_chain "$dom" vdb)" "$T/dst/b.img.snapmove-1.qcow2 qcow2
$T/dst/b.img raw" "vdb's chain after the failure"
assert_eq "$(live_chain "$dom" vda --inactive)" "$T/dst/a.qcow2 qcow2" "vda's definition"
assert_eq "$(live_chain "$dom" vdb --inactive | head -n1)" "$T/dst/b.img.snapmove-1.qcow2 qcow2" \
	"vdb's definition after the failure"
# snapmove did not cancel the block job someone else started.
assert_eq "$(block_job_count "$dom" vdb)" 1 "the other block job on vdb"
sm status 1 >"$T/status.out"
assert_contains "$T/status.out" "job 1: failed, phase "
assert_contains "$T/status.out" "  vda: done"
assert_contains "$T/status.out" "  vdb: pivoted: $why"

guest_write "$dom" vdb 0x31 4M 64k   # into the destination overlay
virsh -q blockjob "$dom" vdb --abort >/dev/null
expect_exit 0 sm resume 1
assert_contains "$T/out" "finished job 1 of domain $dom"
assert_eq "$(live_chain "$dom" vdb)" "$T/dst/b.img raw" "vdb's chain after resume"
assert_eq "$(live_chain "$dom" vdb --inactive)" "$T/dst/b.img raw" "vdb's definition after resume"
assert_eq "$(block_job_count "$dom" vdb)" 0 "block jobs after resume"
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "a.qcow2 b.img " "destination files"
assert_eq "$(ls "$T/src" | tr '\n' ' ')" "a.qcow2 b.img " "source files"
sm status 1 >"$T/status.out"
assert_contains "$T/status.out" "job 1: done, phase done"

guest_write "$dom" vdb 0x41 5M 64k
virsh -q destroy "$dom" >/dev/null
for spec in "0x11 0 1M" "0x21 2M 64k" "0x23 3M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst/a.qcow2" qcow2 $spec
done
for spec in "0x12 0 1M" "0x22 2M 64k" "0x24 3M 64k" "0x31 4M 64k" "0x41 5M 64k"; do
	# shellcheck disable=SC2086
	check_pattern "$T/dst/b.img" raw $spec
done
