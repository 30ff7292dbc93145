#!/usr/bin/env bash
# A transient domain destroyed in the middle of a move is gone: there is no
# definition to finish or undo the move in.  'snapmove resume' and 'snapmove
# abort' exit 1, delete nothing, and say where the data is: the newest file
# is the source overlay before the pivot, the destination overlay after it.
# Following that advice (a domain of the same name started on that file) lets
# 'snapmove resume' finish the move.  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve copy pivot pivot-unjournaled

# The files of src/ and dst/ with their checksums.
snapshot_files() {
	(cd "$C" && find src dst -type f | sort | xargs cksum)
}

# gone_case POINT NEWEST BACKING...: crash at POINT, a flushed guest write,
# destroy; then resume and abort must name NEWEST over BACKING... as the data.
gone_case() {
	local point=$1 newest=$2 chain action
	shift 2
	chain="    $newest (qcow2)"
	for b in "$@"; do
		chain+=" <- $b"
	done
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT="$point"
	ic_write 0x31 6M flush
	virsh -q destroy "$DOM" >/dev/null
	snapshot_files >"$C/files.before"
	for action in resume abort; do
		expect_exit 1 smc "$action" 1
		cp "$T/out" "$C/$action.out"
		cp "$T/err" "$C/$action.err"
		assert_contains "$T/out" "domain '$DOM' ("
		assert_contains "$T/out" ") no longer exists"
		grep -A1 -x "  vda: .*" "$T/out" | tail -n1 >"$C/$action.chain"
		assert_eq "$(cat "$C/$action.chain")" "$chain" "the data '$action' reports"
		assert_contains "$T/out" "then run 'snapmove resume 1' or 'snapmove abort 1'"
		assert_contains "$T/err" "job 1 cannot"
		snapshot_files >"$C/files.after"
		diff -u "$C/files.before" "$C/files.after" >&2 ||
			fail "'snapmove $action' changed files of a job without its domain"
		smc status 1 >"$C/status.out"
		! grep -Eq "^job 1: (done|aborted)," "$C/status.out" ||
			fail "'snapmove $action' closed a job it could not finish"
	done
	# The file named holds every write, made before, during and after.
	local pat off len
	while read -r pat off len; do
		check_pattern "$newest" qcow2 "$pat" "$off" "$len"
	done <"$C/patterns"
	# Follow the advice: a domain of that name on that file, then resume.
	make_domain "$DOM" transient "vda:$newest:qcow2"
	ic_write 0x51 8M
	expect_exit 0 smc resume 1
	ic_check done
	# Nothing claims that the vanished domain "runs on a consistent chain".
	! grep -F "the domain runs on a consistent chain" "$C/resume.err" "$C/abort.err" >&2 ||
		fail "resume or abort says a domain that is gone runs"
}

case_copy() {
	ic_setup copy transient
	gone_case copy:chunk "$C/dst/top.qcow2.snapmove-1.src.qcow2" \
		"$C/src/top.qcow2 (qcow2)" "$C/src/base.raw (raw)"
}
run_case "destroyed before the pivot: the source overlay has the data" case_copy

case_pivot() {
	ic_setup pivot transient
	gone_case pivot:done "$C/dst/top.qcow2.snapmove-1.qcow2" \
		"$C/dst/top.qcow2 (qcow2)" "$C/dst/base.raw (raw)"
}
run_case "destroyed after the pivot: the destination overlay has the data" case_pivot

# The pivot happened, but snapmove died before journaling it: the guest has
# written to the destination overlay since, so that is the file to name.
case_pivot_unjournaled() {
	ic_setup pivot-unjournaled transient
	gone_case pivot:unjournaled "$C/dst/top.qcow2.snapmove-1.qcow2" \
		"$C/dst/top.qcow2 (qcow2)" "$C/dst/base.raw (raw)"
}
run_case "destroyed after an unjournaled pivot" case_pivot_unjournaled

cases_done
