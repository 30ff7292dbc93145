#!/usr/bin/env bash
# 'snapmove move' refuses a disk that is busy (exit 3, nothing changed): a
# block job started outside snapmove (a copy with its <mirror>, a pull without
# one), and an unfinished snapmove job on the same disk.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/dst2" "$T/other"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"

new_image "$T/src/base.qcow2" qcow2 64M 0x21 0 4M
new_overlay "$T/src/top.qcow2" "$T/src/base.qcow2" qcow2 0x22 1M 64k
pulldom=$(dom_name pull)
make_domain "$pulldom" transient "vda:$T/src/top.qcow2:qcow2"

new_image "$T/src/failed.qcow2" qcow2 64M 0x31 0 1M
faildom=$(dom_name failed)
make_domain "$faildom" transient "vda:$T/src/failed.qcow2:qcow2"

case_copy_job() {
	# A persistent domain needs --transient-job; 1 byte/s keeps the job running.
	virsh -q blockcopy "$dom" vda --dest "$T/other/copy.qcow2" --transient-job \
		--bandwidth 1 --bytes >/dev/null
	assert_eq "$(block_jobs "$dom" vda)" 1 "block jobs after virsh blockcopy"
	save_state copy "$dom" vda "$T/src" "$T/dst" "$T/other"
	expect_refused_unchanged copy \
		"disk 'vda' already has a block job running (copy); wait for it or run 'virsh blockjob $dom vda --abort'" \
		sm move "$dom" --dest "$T/dst"
	expect_refused_unchanged copy "disk 'vda' already has a block job running" \
		sm move "$dom" --dest "$T/dst" --dry-run
	# Still the job virsh started, not aborted or pivoted by snapmove.
	assert_contains "$T/state.copy" "<mirror type=\"file\" file=\"$T/other/copy.qcow2\""
	virsh -q blockjob "$dom" vda --abort >/dev/null
	assert_eq "$(block_jobs "$dom" vda)" 0 "block jobs after the abort"
	assert_eq "$(live_chain "$dom" vda)" "$T/src/disk.qcow2 qcow2" "chain after the abort"
}
run_case "a block copy already running" case_copy_job

case_pull_job() {
	virsh -q blockpull "$pulldom" vda --bandwidth 1 --bytes >/dev/null
	assert_eq "$(block_jobs "$pulldom" vda)" 1 "block jobs after virsh blockpull"
	save_state pull "$pulldom" vda "$T/src" "$T/dst"
	! grep -q "<mirror" "$T/state.pull" || fail "a pull job shows a <mirror>"
	expect_refused_unchanged pull \
		"disk 'vda' already has a block job running; wait for it or run 'virsh blockjob $pulldom vda --abort'" \
		sm move "$pulldom" --dest "$T/dst"
	virsh -q blockjob "$pulldom" vda --abort >/dev/null
	assert_eq "$(block_jobs "$pulldom" vda)" 0 "block jobs after the abort"
}
run_case "a block pull already running" case_pull_job

case_unfinished_job() {
	make_write_hook "$faildom" vda copy:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$faildom" --dest "$T/dst"
	assert_contains "$T/err" "test hook fails copy"
	assert_contains "$T/err" "job 1 stopped"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "job 1: failed"
	assert_eq "$(block_jobs "$faildom" vda)" 0 "block jobs after the failed move"

	# The second attempt, to the same destination or another, with or without
	# --disk or --dry-run, changes nothing of what the failure left.
	save_state second "$faildom" vda "$T/src" "$T/dst" "$T/dst2"
	expect_refused_unchanged second \
		"disk 'vda' of domain '$faildom' has an unfinished snapmove job 1; finish it with 'snapmove resume 1' or undo it with 'snapmove abort 1'" \
		sm move "$faildom" --dest "$T/dst2"
	expect_refused_unchanged second "has an unfinished snapmove job 1; finish it with 'snapmove resume 1' or undo it with 'snapmove abort 1'" \
		sm move "$faildom" --dest "$T/dst2" --disk vda
	expect_refused_unchanged second "has an unfinished snapmove job 1; finish it with 'snapmove resume 1' or undo it with 'snapmove abort 1'" \
		sm move "$faildom" --dest "$T/dst2" --dry-run
	expect_refused_unchanged second "has an unfinished snapmove job 1; finish it with 'snapmove resume 1' or undo it with 'snapmove abort 1'" \
		sm move "$faildom" --dest "$T/dst"
	expect_exit 0 sm list
	assert_eq "$(grep -c "$faildom" "$T/out")" 1 "jobs of the domain in the journal"
}
run_case "an unfinished snapmove job on the disk" case_unfinished_job

cases_done
