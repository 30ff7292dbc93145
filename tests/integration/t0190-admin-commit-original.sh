#!/usr/bin/env bash
# A move killed before its snapshot (snapshot:start) leaves the disk on its
# original image; an admin then runs 'virsh blockcommit --active' of that
# image into its backing file.  No step of snapmove commits the original
# image, so 'abort' and 'resume' must refuse it as a block job snapmove did
# not start (exit 3), naming the way out, and change nothing: the commit
# still runs, the chain is the admin's, no file is made.  Before, abort took
# the commit for its own and pivoted it (the domain ended on the backing
# file) or, --via stream, cancelled it and streamed into the original image.
# Once the admin cancels the commit, abort finishes (nothing to undo).
. "$(dirname "$0")/lib.sh"

c=$T/c
mkdir -m 755 "$c" "$c/src" "$c/dst"
new_image "$c/src/base.raw" raw 64M 0x11 0 1M
new_overlay "$c/src/top.qcow2" base.raw raw 0x13 1M 1M
DOM=$(dom_name commit)
make_domain "$DOM" persistent "vda:$c/src/top.qcow2:qcow2"
guest_write "$DOM" vda 0x14 2M 64k

rc=0
SNAPMOVE_TEST_CRASH_AT=snapshot:start bash -c '"$@" >"$0.out" 2>"$0.err"; exit $?' "$c/move" \
	"$SNAPMOVE" --db "$DB" move "$DOM" --dest "$c/dst" 2>/dev/null || rc=$?
[ "$rc" = 137 ] || { cat "$c/move.err" >&2; fail "move exited $rc, not killed (137)"; }
assert_eq "$(live_chain "$DOM" vda | head -n1)" "$c/src/top.qcow2 qcow2" "chain after the kill"

# The admin's active commit of the original image, left in its ready phase.
virsh -q blockcommit "$DOM" vda --active --wait >/dev/null ||
	fail "virsh blockcommit --active failed"
assert_eq "$(block_job_count "$DOM" vda)" 1 "block jobs after the admin's commit"

for how in "abort 1" "abort 1 --via stream" "resume 1"; do
	# shellcheck disable=SC2086
	expect_exit 3 sm $how
	assert_contains "$T/err" "block job snapmove did not start"
	assert_contains "$T/err" "active commit of its original image '$c/src/top.qcow2'"
	assert_contains "$T/err" "virsh blockjob $DOM vda --abort"
	assert_eq "$(block_job_count "$DOM" vda)" 1 "block jobs after '$how'"
	assert_eq "$(live_chain "$DOM" vda | head -n1)" "$c/src/top.qcow2 qcow2" \
		"the disk's image after '$how'"
	assert_eq "$(ls -A "$c/dst")" "" "destination files after '$how'"
done
assert_eq "$(ls "$c/src" | tr '\n' ' ')" "base.raw top.qcow2 " "source files"

# The way out the message names, then the abort has nothing to undo.
virsh -q blockjob "$DOM" vda --abort >/dev/null
expect_exit 0 sm abort 1
assert_eq "$(live_chain "$DOM" vda | head -n1)" "$c/src/top.qcow2 qcow2" "chain after the abort"
check_pattern "$c/src/top.qcow2" qcow2 0x14 2M 64k
check_pattern "$c/src/top.qcow2" qcow2 0x13 1M 1M
