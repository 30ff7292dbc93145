#!/usr/bin/env bash
# The stable exit codes, one case each: 0 done; 1 failed after changing
# something (the job is resumable); 2 usage error; 3 refused before changing
# anything; 4 vetoed by a hook; 5 interrupted by SIGINT or SIGTERM (the job is
# resumable).  Under --json the result event carries the same code.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

for x in 0 1 3 4 5 5t; do
	mkdir -m 755 "$T/src$x" "$T/dst$x"
	new_image "$T/src$x/disk.qcow2" qcow2 64M 0x11 0 1M
	make_domain "$(dom_name "$x")" persistent "vda:$T/src$x/disk.qcow2:qcow2"
done

# The result event of $T/out, as "status exit".
result_of() {
	assert_events "$T/out"
	jev "$T/out" 'events[-1]["status"] + " " + str(events[-1]["exit"])'
}

case_0() {
	local dom
	dom=$(dom_name 0)
	expect_exit 0 sm --json move "$dom" --dest "$T/dst0"
	assert_eq "$(result_of)" "done 0" "result of a move"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst0/disk.qcow2 qcow2" "chain"
	expect_exit 0 sm list
	expect_exit 0 sm --help
	expect_exit 0 sm help move
	assert_contains "$T/out" "usage: snapmove move"
	expect_exit 0 sm --version
}
run_case "0: done" case_0

case_1() {
	local dom job
	dom=$(dom_name 1)
	make_write_hook "$dom" vda copy:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm --json move "$dom" --dest "$T/dst1"
	assert_eq "$(result_of)" "failed 1" "result of a failed move"
	job=$(jev "$T/out" 'events[-1]["job"]')
	assert_contains "$T/err" "snapmove resume $job"
	assert_contains "$T/err" "snapmove abort $job"
	expect_exit 0 sm status --json "$job"
	assert_eq "$(jdoc "$T/out" 'doc["state"]')" failed "job state"
	expect_exit 0 sm resume "$job"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst1/disk.qcow2 qcow2" "chain after the resume"
}
run_case "1: failed after changing something, resumable" case_1

# usage ARGS...: exit 2, nothing on stdout even under --json, no journal made.
usage() {
	local db=$T/usage.db
	rm -f "$db"
	expect_exit 2 "$SNAPMOVE" --db "$db" "$@"
	[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "'$*' printed on stdout"; }
	grep -q "snapmove" "$T/err" || { cat "$T/err" >&2; fail "'$*' said nothing on stderr"; }
	assert_absent "$db"
}

case_2() {
	local dom
	dom=$(dom_name 0)
	usage
	usage --json
	usage frobnicate
	usage --json frobnicate
	usage --bogus list
	usage --hook-timeout 0 list
	usage --hook-timeout x list
	usage help frobnicate
	usage move
	usage --json move "$dom"
	usage move "$dom" --dest-provisioner loop --dest-pool default
	usage move "$dom" --dest "$T/dst0" --dest-provisioner loop --dest-dev vda=/dev/loop0
	usage move "$dom" --dest "$T/dst0" --set LOOP_DIR=/x
	usage move "$dom" --dest "$T/dst0" extra
	usage move "$dom" --dest "$T/dst0" --bandwidth fast
	usage move "$dom" --dest "$T/dst0" --dest-format vmdk
	usage move "$dom" --dest "$T/dst0" --copy-method magic
	usage move "$dom" --dest "$T/dst0" --sync-writes maybe
	usage move "$dom" --dest "$T/dst0" --converge-timeout 0
	usage move "$dom" --dest "$T/dst0" --parallel 0
	usage move "$dom" --dest "$T/dst0" --no-such-option
	usage resume
	usage resume 1 2
	usage abort
	usage abort 1 --via magic
	usage status
	usage list extra
	usage chain
	usage chain "$dom" vda extra
	usage verify
	usage cleanup
	usage forget
	usage copy "$T/src0/disk.qcow2"
	usage copy a b --chunk-size 0
}
run_case "2: usage errors print nothing on stdout and touch nothing" case_2

# refused ARGS...: exit 3 with an error and nothing changed on stdout but,
# under --json, one refused result.
refused() {
	expect_exit 3 sm "$@"
	assert_contains "$T/err" "snapmove: error: "
}

case_3() {
	local dom
	dom=$(dom_name 3)
	save_state three "$dom" vda "$T/src3" "$T/dst3"
	refused --json move nosuchdomain-$$ --dest "$T/dst3"
	assert_eq "$(result_of)" "refused 3" "result of a refused move"
	assert_eq "$(wc -l <"$T/out")" 1 "lines of a refused move"
	assert_contains "$T/err" "nothing was changed"
	refused move "$dom" --dest "$T/missing"
	refused move "$dom" --dest "$T/dst3" --disk vdz
	refused move "$dom" --dest "$T/src3"
	refused --json resume 99
	assert_eq "$(result_of)" "refused 3" "result of a refused resume"
	refused abort 99
	refused status 99
	refused verify 99
	refused forget 99
	refused chain "$dom" vdz
	assert_unchanged three
	[ ! -s "$T/out" ] || fail "chain of an unknown disk printed on stdout"
	# chain of an unknown domain changes nothing either (src/cli/cmd_chain.c
	# exits 1 for it).
	refused chain nosuchdomain-$$
	assert_unchanged three
	# A mistyped --db: refused by every command that needs a journal
	# already there, naming the path, and no journal made.
	local cmd missing=$T/no-such-journal.db
	for cmd in list "status 1" "resume 1" "abort 1" "verify 1" "cleanup 1" "forget 1"; do
		# shellcheck disable=SC2086
		expect_exit 3 "$SNAPMOVE" --db "$missing" $cmd
		assert_contains "$T/err" "there is no journal at '$missing'"
		assert_absent "$missing"
	done
}
run_case "3: refused before changing anything" case_3

case_4() {
	local dom h=$H/hooks4 job
	dom=$(dom_name 4)
	mkdir -m 755 "$h" "$h/before_move"
	printf '#!/bin/sh\necho "frozen" >&2\nexit 1\n' >"$h/before_move/50-veto"
	chmod 755 "$h/before_move/50-veto"
	expect_exit 4 sm --json --hooks-dir "$h" move "$dom" --dest "$T/dst4"
	assert_eq "$(result_of)" "vetoed 4" "result of a vetoed move"
	assert_contains "$T/err" "vetoed by a before_move hook"
	assert_contains "$T/err" "frozen"
	job=$(jev "$T/out" 'events[-1]["job"]')
	assert_eq "$(live_chain "$dom" vda)" "$T/src4/disk.qcow2 qcow2" "chain after the veto"
	expect_exit 0 sm status --json "$job"
	assert_eq "$(jdoc "$T/out" 'doc["state"]')" aborted "state of the vetoed job"
}
run_case "4: vetoed by a hook" case_4

# interrupted DOM NAME SIGNAL: a hook sends SIGNAL to snapmove (its parent)
# when the copy starts; snapmove stops at the next safe point with exit 5.
interrupted() {
	local dom=$1 name=$2 sig=$3 job
	printf '#!/bin/sh\n[ "$1" = copy ] && kill -%s $PPID\nexit 0\n' "$sig" >"$T/sighook"
	chmod 755 "$T/sighook"
	SNAPMOVE_TEST_HOOK=$T/sighook expect_exit 5 sm --json move "$dom" --dest "$T/dst$name"
	assert_eq "$(result_of)" "interrupted 5" "result of an interrupted move"
	job=$(jev "$T/out" 'events[-1]["job"]')
	grep -qi interrupted "$T/err" || { cat "$T/err" >&2; fail "the error does not say interrupted"; }
	assert_contains "$T/err" "snapmove resume $job"
	assert_contains "$T/err" "snapmove abort $job"
	assert_eq "$(block_job_count "$dom" vda)" 0 "block jobs after the signal"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst$name/disk.qcow2.snapmove-$job.src.qcow2 qcow2
$T/src$name/disk.qcow2 qcow2" "chain after the signal"
	expect_exit 0 sm status --json "$job"
	assert_eq "$(jdoc "$T/out" 'doc["state"] + " " + doc["next"]["resume"]')" "failed snapmove resume $job" \
		"the interrupted job is resumable"
	expect_exit 0 sm resume "$job"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst$name/disk.qcow2 qcow2" "chain after the resume"
}

case_5() {
	interrupted "$(dom_name 5)" 5 INT
}
run_case "5: interrupted by SIGINT, resumable" case_5

case_5t() {
	interrupted "$(dom_name 5t)" 5t TERM
}
run_case "5: interrupted by SIGTERM, resumable" case_5t

cases_done
