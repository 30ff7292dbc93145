#!/usr/bin/env bash
# The job commands around an unfinished job.  One snapmove at a time per job:
# while a resume (or the move itself) is held inside a hook, a second resume
# and an abort are refused naming the other process, and change nothing; a
# second move of the disk is refused naming the job; then the first finishes.
# 'snapmove list' shows unfinished jobs first, each with the commands to
# finish or undo it, and JOB may be the name of a domain with exactly one
# unfinished job (status, resume, abort), refused clearly otherwise.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve held-resume held-move done resumed aborted two

# A hook that holds snapmove at PHASE until $C/go exists (at most 30 s),
# after the other hooks' COMMANDS.
hold_at() {  # PHASE [PHASE=COMMANDS]...
	local phase=$1
	shift
	ic_hook "$@" \
		"$phase=reached held; for i in \$(seq 1 300); do [ -e \"\$C/go\" ] && break; sleep 0.1; done"
}

wait_held() {  # PID
	local i
	for i in $(seq 1 300); do
		[ -e "$C/held" ] && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	fail "snapmove did not reach its hook"
}

case_held_resume() {
	ic_setup held-resume
	DB=$C/j.db   # for save_state's journal listing
	mkdir -m 755 "$C/dst2"
	ic_hook "copy=echo test hook fails copy >&2; exit 1"
	ic_move 1 SNAPMOVE_TEST_HOOK="$C/hook"
	ic_write 0x31 6M
	hold_at copy
	SNAPMOVE_TEST_HOOK=$C/hook "$SNAPMOVE" --db "$C/j.db" resume 1 \
		>"$C/first.out" 2>"$C/first.err" &
	local pid=$! rc=0
	wait_held "$pid"
	# Before the mirror starts again: nothing moves while the first waits.
	save_state held "$DOM" vda "$C/src" "$C/dst" "$C/dst2"
	local busy="job 1 is being run by another snapmove process (pid $pid); wait for it to finish or stop it first"
	expect_refused_unchanged held "$busy" smc resume 1
	expect_refused_unchanged held "$busy" smc abort 1
	expect_refused_unchanged held "$busy" smc abort --via stream 1
	expect_refused_unchanged held "$busy" smc resume "$DOM"
	expect_refused_unchanged held \
		"disk 'vda' of domain '$DOM' has an unfinished snapmove job 1; finish it with 'snapmove resume 1' or undo it with 'snapmove abort 1'" \
		smc move "$DOM" --dest "$C/dst2"
	expect_exit 0 smc status 1
	assert_contains "$T/out" "job 1: running,"
	touch "$C/go"
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || { cat "$C/first.err" >&2; fail "the first resume exited $rc"; }
	rmdir "$C/dst2"
	ic_check done
}
run_case "a resume held in a hook: a second resume and an abort are refused" case_held_resume

case_held_move() {
	ic_setup held-move
	hold_at sync "copy=write 0x21 3M"
	SNAPMOVE_TEST_HOOK=$C/hook "$SNAPMOVE" --db "$C/j.db" move "$DOM" --dest "$C/dst" \
		>"$C/first.out" 2>"$C/first.err" &
	local pid=$! rc=0
	wait_held "$pid"
	local busy="job 1 is being run by another snapmove process (pid $pid)"
	expect_exit 3 smc resume 1
	assert_contains "$T/err" "$busy"
	assert_contains "$T/err" "snapmove: nothing was changed"
	expect_exit 3 smc abort 1
	assert_contains "$T/err" "$busy"
	assert_contains "$T/err" "snapmove: nothing was changed"
	assert_eq "$(virsh domstate "$DOM")" running "domain state while the move is held"
	touch "$C/go"
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || { cat "$C/first.err" >&2; fail "the move exited $rc"; }
	ic_check done
}
run_case "a move held in a hook: resume and abort are refused" case_held_move

# A domain of its own with a failed move (the copy hook fails): job N.
failed_move() {  # NAME
	ic_setup "$1"
	ic_hook "copy=echo test hook fails copy >&2; exit 1"
	SNAPMOVE_TEST_HOOK=$C/hook expect_exit 1 "$SNAPMOVE" --db "$J" move "$DOM" --dest "$C/dst"
}

# The lines of 'snapmove list' ($T/out) that start a job, as "ID STATE".
listed_jobs() {
	awk '$1 ~ /^[0-9]+$/ { print $1, $3 }' "$T/out" | tr '\n' ' ' | sed 's/ $//'
}

case_list_and_names() {
	J=$T/names.db
	ic_setup done
	local done_dom=$DOM
	expect_exit 0 "$SNAPMOVE" --db "$J" move "$DOM" --dest "$C/dst"      # job 1
	failed_move resumed                                                  # job 2
	local resumed_dom=$DOM resumed_c=$C
	failed_move aborted                                                  # job 3
	local aborted_dom=$DOM aborted_c=$C
	# Two unfinished jobs of one domain: one per disk.
	C=$T/two
	DOM=$(dom_name two)
	local two_dom=$DOM
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/a.qcow2" qcow2 64M 0x11 0 1M
	new_image "$C/src/b.qcow2" qcow2 64M 0x12 0 1M
	make_domain "$DOM" persistent "vda:$C/src/a.qcow2:qcow2" "vdb:$C/src/b.qcow2:qcow2"
	ic_hook "copy=echo test hook fails copy >&2; exit 1"
	SNAPMOVE_TEST_HOOK=$C/hook expect_exit 1 "$SNAPMOVE" --db "$J" move "$DOM" \
		--dest "$C/dst" --disk vda                                    # job 4
	SNAPMOVE_TEST_HOOK=$C/hook expect_exit 1 "$SNAPMOVE" --db "$J" move "$DOM" \
		--dest "$C/dst" --disk vdb                                    # job 5

	expect_exit 0 "$SNAPMOVE" --db "$J" list
	assert_eq "$(listed_jobs)" "5 failed 4 failed 3 failed 2 failed 1 done" "jobs listed"
	local id
	for id in 2 3 4 5; do
		grep -A1 "^$id " "$T/out" | tail -n1 | grep -qF "snapmove resume $id" ||
			{ cat "$T/out" >&2; fail "list does not say how to resume job $id"; }
		grep -A1 "^$id " "$T/out" | tail -n1 | grep -qF "snapmove abort $id" ||
			{ cat "$T/out" >&2; fail "list does not say how to abort job $id"; }
	done
	! grep -qF "snapmove resume 1" "$T/out" || fail "list offers to resume a finished job"

	# A domain with one unfinished job names it.
	expect_exit 0 "$SNAPMOVE" --db "$J" status "$resumed_dom"
	assert_contains "$T/out" "job 2: failed,"
	expect_exit 0 "$SNAPMOVE" --db "$J" resume "$resumed_dom"
	assert_contains "$T/out" "finished job 2 of domain $resumed_dom"
	expect_exit 0 "$SNAPMOVE" --db "$J" abort "$aborted_dom"
	assert_contains "$T/out" "aborted job 3 of domain $aborted_dom"
	# A domain with no unfinished job, with two, and one unknown: refused.
	local name
	for name in "$done_dom" "$resumed_dom" no-such-domain; do
		for cmd in status resume abort; do
			expect_exit 3 "$SNAPMOVE" --db "$J" "$cmd" "$name"
			assert_contains "$T/err" "'$name' is neither a job number nor a domain with an unfinished job; see 'snapmove list'"
		done
	done
	for cmd in status resume abort; do
		expect_exit 3 "$SNAPMOVE" --db "$J" "$cmd" "$two_dom"
		assert_contains "$T/err" "domain '$two_dom' has 2 unfinished jobs (4 and 5); name the job by number"
	done
	expect_exit 0 "$SNAPMOVE" --db "$J" list
	assert_eq "$(listed_jobs)" "5 failed 4 failed 3 aborted 2 done 1 done" "jobs listed at the end"

	# The jobs finished by name really did.
	C=$resumed_c DOM=$resumed_dom
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/top.qcow2 qcow2
$C/dst/base.raw raw" "chain of the domain resumed by name"
	assert_eq "$(ic_files "$C/dst")" "base.raw top.qcow2" "files in dst/ of the domain resumed by name"
	C=$aborted_c DOM=$aborted_dom
	assert_eq "$(live_chain "$DOM" vda)" "$C/src/top.qcow2 qcow2
$C/src/base.raw raw" "chain of the domain aborted by name"
	assert_eq "$(ic_files "$C/dst")" "" "files in dst/ of the domain aborted by name"
}
run_case "list shows unfinished jobs first; JOB as a domain name" case_list_and_names

cases_done
