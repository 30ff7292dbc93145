#!/usr/bin/env bash
# --dry-run prints the plan (chains before and after, bytes to copy, free
# space) and changes nothing: no file, no snapshot, no job, no journal row.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/base.img" raw 64M 0x11 0 1M
new_overlay "$T/src/disk.qcow2" base.img raw 0x12 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
before_src=$(ls -A "$T/src")
before_xml=$(virsh dumpxml --inactive "$dom")

expect_exit 0 sm move "$dom" --dest "$T/dst" --dry-run
assert_contains "$T/out" "dry run: nothing was changed"
assert_contains "$T/out" "vda before: $T/src/disk.qcow2 (qcow2) <- $T/src/base.img (raw)"
assert_contains "$T/out" "vda after : $T/dst/disk.qcow2 (qcow2) <- $T/dst/base.img (raw)"
assert_contains "$T/out" "bytes to copy:"
assert_contains "$T/out" "free"

assert_eq "$(ls -A "$T/dst")" "" "destination after a dry run"
assert_eq "$(ls -A "$T/src")" "$before_src" "source after a dry run"
assert_eq "$(virsh dumpxml --inactive "$dom")" "$before_xml" "definition after a dry run"
want="$T/src/disk.qcow2 qcow2
$T/src/base.img raw"
assert_eq "$(live_chain "$dom" vda)" "$want" "live chain after a dry run"
assert_eq "$(block_job_count "$dom" vda)" 0 "block jobs after a dry run"
expect_exit 0 sm list
assert_contains "$T/out" "no jobs"
