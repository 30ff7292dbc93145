#!/usr/bin/env bash
# A failure after validation (here: the copy phase fails) leaves the domain
# running on a consistent chain (its overlay over the original image, no block
# job left running), the job failed with the reason, and guest data intact.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
make_write_hook "$dom" vda copy:fail:0

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom" --dest "$T/dst"
assert_contains "$T/err" "test hook fails copy"
assert_contains "$T/err" "job 1 stopped"
assert_eq "$(virsh domstate "$dom")" running "domain state"
assert_eq "$(block_job_count "$dom" vda)" 0 "block jobs after the failure"
want="$T/dst/disk.qcow2.snapmove-1.src.qcow2 qcow2
$T/src/disk.qcow2 qcow2"
assert_eq "$(live_chain "$dom" vda)" "$want" "live chain after the failure"

expect_exit 0 sm status 1
assert_contains "$T/out" "job 1: failed, phase copy"
assert_contains "$T/out" "error:    "
assert_contains "$T/out" "test hook fails copy"
expect_exit 0 sm list
assert_contains "$T/out" "failed"

guest_write "$dom" vda 0x21 2M 64k
virsh -q destroy "$dom" >/dev/null
check_pattern "$T/dst/disk.qcow2.snapmove-1.src.qcow2" qcow2 0x11 0 1M
check_pattern "$T/dst/disk.qcow2.snapmove-1.src.qcow2" qcow2 0x21 2M 64k
