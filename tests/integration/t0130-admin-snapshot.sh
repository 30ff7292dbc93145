#!/usr/bin/env bash
# An admin takes an external disk-only snapshot of the disk while it moves
# (virsh snapshot-create-as --disk-only --no-metadata), after a guest write,
# in three windows: before the mirror (dest_chain), after the pivot
# (collapse) and after the final commit (finalize).  The move must not
# mirror, commit or define the wrong image: it stops the disk (exit 1) with a
# message that names the snapshot and how to fold it back, deletes no file
# the domain's chain holds, and keeps the definition on the admin's image.
# Every guest write, before and after the snapshot, is readable from the
# domain's chain; after the advised 'virsh blockcommit ... --pivot' the job
# resumes and finishes.  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve mirror collapse finalize

# admin_window PHASE TOP: the admin's snapshot at PHASE, between two guest
# writes; TOP is the image the job expects the disk on (relative to $C).
admin_window() {
	local phase=$1 top=$C/$2 pat
	ic_hook "copy=write 0x21 3M" \
		"$phase=write 0x22 4M; virsh -q snapshot-create-as \"\$DOM\" --disk-only --no-metadata --diskspec vda,file=\$C/admin.qcow2 >/dev/null; write 0x23 5M"
	ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	[ -e "$C/admin.qcow2" ] || fail "the hook took no snapshot"
	assert_contains "$C/move.err" "disk 'vda' is now on '$C/admin.qcow2', not on the job's"
	assert_contains "$C/move.err" "somebody took a snapshot during the move"
	assert_contains "$C/move.err" "virsh blockcommit $DOM vda --active --base $top --pivot"
	assert_contains "$C/move.err" "snapmove resume 1"
	# Nothing the domain's chain holds was deleted, nor its definition moved
	# off the admin's image.
	[ -e "$top" ] || fail "'$top' was deleted"
	assert_eq "$(live_chain "$DOM" vda | head -n2)" "$C/admin.qcow2 qcow2
$top qcow2" "live chain after the stop"
	assert_eq "$(ic_def_source)" "$C/admin.qcow2" "persistent definition after the stop"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs after the stop"
	while read -r pat off len; do
		check_pattern "$C/admin.qcow2" qcow2 "$pat" "$off" "$len"
	done <"$C/patterns"
	# Resume and abort refuse the changed chain too.
	expect_exit 3 smc resume 1
	assert_contains "$T/err" "$C/admin.qcow2"

	# The advice folds it back; then the job finishes.
	virsh -q blockcommit "$DOM" vda --active --base "$top" --pivot >/dev/null
	rm "$C/admin.qcow2"
	ic_write 0x31 6M
	expect_exit 0 smc resume 1
	ic_check done
}

case_mirror() {
	ic_setup mirror
	admin_window dest_chain dst/top.qcow2.snapmove-1.src.qcow2
}
run_case "a snapshot before the mirror" case_mirror

case_collapse() {
	ic_setup collapse
	admin_window collapse dst/top.qcow2.snapmove-1.qcow2
}
run_case "a snapshot after the pivot, before the final commit" case_collapse

case_finalize() {
	ic_setup finalize
	admin_window finalize dst/top.qcow2
}
run_case "a snapshot after the final commit" case_finalize

cases_done
