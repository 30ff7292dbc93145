#!/usr/bin/env bash
# 'snapmove abort --via stream': the original top image is streamed into the
# source overlay, and the domain ends on that overlay over the rest of the
# original chain (here dst/top.qcow2.snapmove-1.src.qcow2, where the move made
# it, over src/base.raw; see src/job/abort.c).  The stream writes only into
# the overlay: the way to undo a move off a full storage.  Offline (the domain shut off) and live, before and after the
# pivot; and a job stopped before the snapshot, which has no overlay to end on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve off-copy off-pivot live-copy live-pivot live-snapshot single

abort_stream() {  # live|offline
	expect_exit 0 smc abort --via stream 1
	assert_contains "$T/err" "job 1: aborting the move of $DOM ($1, via stream)"
	assert_contains "$T/out" "aborted job 1 of domain $DOM"
	assert_contains "$T/out" "vda now: $C/dst/top.qcow2.snapmove-1.src.qcow2 (qcow2, the original image streamed into it) <- $C/src/base.raw (raw)"
	# The original top image is out of the chain: nothing backs onto it.
	assert_eq "$(backing_of "$C/dst/top.qcow2.snapmove-1.src.qcow2" qcow2)" "$C/src/base.raw" \
		"backing file of the overlay"
}

case_offline_copy() {
	ic_setup off-copy
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M flush
	virsh -q destroy "$DOM" >/dev/null
	abort_stream offline
	ic_check stream "shut off"
}
run_case "offline, before the pivot" case_offline_copy

case_offline_pivot() {
	ic_setup off-pivot
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:done
	ic_write 0x31 6M flush   # into the destination overlay
	virsh -q destroy "$DOM" >/dev/null
	abort_stream offline
	ic_check stream "shut off"
}
run_case "offline, after the pivot" case_offline_pivot

case_live_copy() {
	ic_setup live-copy
	ic_hook "copy=write 0x21 3M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk
	ic_write 0x31 6M
	abort_stream live
	ic_check stream
}
run_case "live, before the pivot (the mirror still runs)" case_live_copy

case_live_pivot() {
	ic_setup live-pivot
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:done
	ic_write 0x31 6M
	abort_stream live
	ic_check stream
}
run_case "live, after the pivot (moves back first)" case_live_pivot

# Killed before the snapshot: the domain never left its original images, so
# there is no overlay to stream into; the abort must leave the domain and its
# definition on the original chain, not name an overlay that does not exist.
case_live_snapshot() {
	ic_setup live-snapshot
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=snapshot:start
	ic_write 0x31 6M
	expect_exit 0 smc abort --via stream 1
	cp "$T/out" "$C/abort.out"
	ic_check aborted
	! grep -F "snapmove-1." "$C/abort.out" >&2 ||
		fail "the abort reports an overlay the domain never had"
}
run_case "live, killed before the snapshot" case_live_snapshot

# A disk of one image: the whole original image is streamed into the
# overlay, which then stands alone.
case_single() {
	C=$T/single
	DOM=$(dom_name single)
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/disk.qcow2" qcow2 128M 0x11 0 1M 0x12 100M 1M
	printf '%s\n' "0x11 0 1M" "0x12 100M 1M" >"$C/patterns"
	make_domain "$DOM" persistent "vda:$C/src/disk.qcow2:qcow2"
	ic_write 0x14 2M
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=copy:done
	ic_write 0x31 6M
	expect_exit 0 smc abort --via stream 1
	local ovl=$C/dst/disk.qcow2.snapmove-1.src.qcow2
	cp "$T/out" "$C/abort.out"
	assert_eq "$(ic_files "$C/src")" "disk.qcow2" "files in src/"
	assert_eq "$(ic_files "$C/dst")" "disk.qcow2.snapmove-1.src.qcow2" "files in dst/"
	assert_eq "$(live_chain "$DOM" vda)" "$ovl qcow2" "live chain"
	assert_eq "$(ic_def_source)" "$ovl" "persistent definition"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs"
	assert_eq "$(backing_of "$ovl" qcow2)" "" "backing file of the overlay"
	ic_write 0x41 7M
	virsh -q destroy "$DOM" >/dev/null
	local pat off len
	while read -r pat off len; do
		check_pattern "$ovl" qcow2 "$pat" "$off" "$len"
	done <"$C/patterns"
	grep -qx "  vda now: $ovl (qcow2, the original image streamed into it)" "$C/abort.out" ||
		{ cat "$C/abort.out" >&2; fail "the outcome does not name the overlay alone"; }
}
run_case "live, a disk of one image" case_single

cases_done
