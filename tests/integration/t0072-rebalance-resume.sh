#!/usr/bin/env bash
# An interrupted 'snapmove rebalance' and '--resume', four running domains
# drained from one storage to the next three times:
#  - SIGINT to the rebalance while its second move runs: that move finishes,
#    no other starts, exit 5; '--resume' runs the other two with the
#    rebalance's own --bandwidth share and skips the moves already done;
#  - Ctrl-C (SIGINT to the whole process group): the same, as the rebalance
#    means its children to ignore SIGINT;
#  - SIGKILL: the move in flight (a child process) finishes alone, and
#    '--resume' finds it done in the journal.
# No move runs twice (one job per disk and rebalance), sources are deleted,
# and every guest's data is intact.  An interrupted rebalance ends its events
# with a rebalance_result "interrupted" (exit 5: the moves done with their
# jobs, the others planned), a killed one with none, and each --resume with
# "done" (exit 0) and every move's job.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

rb_four_domains
journal_init   # for the queries before the first rebalance

# wait_for SQL WANT SECONDS: poll the journal until SQL gives WANT.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[ "$(sqlite3 -batch -cmd '.timeout 5000' "$DB" "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
	done
	fail "waited $3 s for '$1' to give '$2'; it gives '$(rb_sql "$1")'"
}

# moves_of ID: "seq domain state job" for each move of rebalance ID.
moves_of() {
	rb_sql "SELECT seq, domain, state, coalesce(job_id, 0) FROM rebalance_move WHERE
		rebalance_id = $1 ORDER BY seq" | tr '|' ' '
}

# start_rebalance FILE ARGS...: a rebalance in the background, in a session of
# its own (so that a signal to its process group is what a terminal's Ctrl-C
# sends: to the rebalance and to its child moves); sets PID.
start_rebalance() {
	local out=$1
	shift
	setsid "$SNAPMOVE" --db "$DB" rebalance "$@" >"$out.out" 2>"$out.err" &
	PID=$!
}

# wait_second_move ID JOBS0: until the second move of rebalance ID runs and
# its job (a job after JOBS0) exists.
wait_second_move() {
	wait_for "SELECT count(*) FROM rebalance_move m JOIN job ON job.domain_name = m.domain
		WHERE m.rebalance_id = $1 AND m.seq = 2 AND m.state = 'running' AND
		job.state = 'running' AND job.id > $2" 1 30
}

# all_on DIR: every domain runs from DIR, one image each.
all_on() {
	local dom
	for dom in "${DOMS[@]}"; do
		[ "$(dirname "$(top_image "$dom" vda)")" = "$1" ] ||
			fail "$dom runs from $(top_image "$dom" vda), not from $1"
	done
}

# SIGINT to the rebalance alone while its second move runs: that move
# finishes, no other starts, exit 5; --resume runs the other two.
case_sigint() {
	local rc=0 id jobs0 mark
	jobs0=$(rb_sql "SELECT count(*) FROM job")
	mark=$(ev_mark)
	start_rebalance "$T/r1" --storage "$S1" --storage "$S2" --drain "$S1" --max-parallel 1 \
		--bandwidth 6
	wait_for "SELECT count(*) FROM rebalance WHERE state = 'running'" 1 10
	id=$(rb_sql "SELECT max(id) FROM rebalance")
	wait_second_move "$id" "$jobs0"
	kill -INT "$PID"
	wait "$PID" || rc=$?
	assert_eq "$rc" 5 "exit status of the interrupted rebalance"
	assert_contains "$T/r1.err" "interrupted: 'snapmove rebalance --resume' goes on"
	ev_since "$mark" "$T/r1.events"
	rb_result "$T/r1.events" interrupted 5 "1:done 2:done 3:planned 4:planned" "$id"
	moves_of "$id" >"$T/moves.1"
	# The move in flight finished; nothing started after it.
	assert_eq "$(awk '{ print $1, $3 }' "$T/moves.1" | tr '\n' ' ')" \
		"1 done 2 done 3 planned 4 planned " "the moves after SIGINT"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE id > $jobs0")" 2 "jobs after SIGINT"
	for i in 0 1; do
		[ "$(dirname "$(top_image "${DOMS[i]}" vda)")" = "$S2" ] || fail "${DOMS[i]} is not on s2"
	done
	for i in 2 3; do
		[ "$(dirname "$(top_image "${DOMS[i]}" vda)")" = "$S1" ] || fail "${DOMS[i]} left s1"
	done
	assert_eq "$(rb_sql "SELECT state FROM rebalance WHERE id = $id")" failed \
		"the interrupted rebalance's state"

	mark=$(ev_mark)
	expect_exit 0 sm rebalance --resume
	assert_contains "$T/err" "resuming rebalance $id"
	assert_contains "$T/err" "4 of 4 moves done, 0 failed"
	ev_since "$mark" "$T/r1-resume.events"
	rb_result "$T/r1-resume.events" done 0 "1:done 2:done 3:done 4:done" "$id"
	# The first two moves keep their jobs; the resume ran the other two.
	assert_eq "$(jev "$T/r1-resume.events" '[m["job"] for m in ev("rebalance_result")[0]["moves"][:2]]')" \
		"$(jev "$T/r1.events" '[m["job"] for m in ev("rebalance_result")[0]["moves"][:2]]')" \
		"the first two moves' jobs after --resume"
	assert_eq "$(jev "$T/r1-resume.events" 'len(ev("result"))')" 2 "the jobs --resume ran"
	moves_of "$id" >"$T/moves.2"
	assert_eq "$(awk '{ print $3 }' "$T/moves.2" | sort -u)" done "the moves after --resume"
	# The moves done before kept their jobs; none ran twice.
	assert_eq "$(head -n2 "$T/moves.2")" "$(head -n2 "$T/moves.1")" "the first two moves"
	for dom in "${DOMS[@]}"; do
		assert_eq "$(jobs_of "$dom" vda)" 1 "jobs of $dom"
	done
	all_on "$S2"
	assert_eq "$(ls -A "$S1")" "" "what is left on s1"
	assert_eq "$(rb_sql "SELECT state FROM rebalance WHERE id = $id")" done \
		"the resumed rebalance's state"
	# The resumed moves keep the rebalance's --bandwidth (recorded in the
	# journal), as the first two did.
	assert_eq "$(rb_sql "SELECT group_concat(bandwidth_mib, ' ') FROM (SELECT bandwidth_mib
		FROM job WHERE id > $jobs0 ORDER BY id)")" "6 6 6 6" \
		"each job's bandwidth (--bandwidth 6, one at a time)"
}
run_case "SIGINT to the rebalance during its second move, then --resume" case_sigint

# Ctrl-C reaches the whole process group: the rebalance means to decide when
# to stop (its children ignore SIGINT), so the move in flight still finishes.
case_ctrl_c() {
	local rc=0 id jobs0 mark rr=0
	jobs0=$(rb_sql "SELECT count(*) FROM job")
	mark=$(ev_mark)
	start_rebalance "$T/r2" --storage "$S2" --storage "$S3" --drain "$S2" --bandwidth 6
	wait_for "SELECT count(*) FROM rebalance WHERE state = 'running'" 1 10
	id=$(rb_sql "SELECT max(id) FROM rebalance")
	wait_second_move "$id" "$jobs0"
	kill -INT -- "-$PID"
	wait "$PID" || rc=$?
	moves_of "$id" >"$T/moves.3"
	# Checked now against the journal, reported after the --resume.
	ev_since "$mark" "$T/r2.events"
	(rb_result "$T/r2.events" interrupted 5 "1:done 2:done 3:planned 4:planned" "$id") || rr=$?
	# Whatever happened, --resume brings every disk over.
	mark=$(ev_mark)
	expect_exit 0 sm rebalance --resume
	assert_contains "$T/err" "4 of 4 moves done, 0 failed"
	ev_since "$mark" "$T/r2-resume.events"
	rb_result "$T/r2-resume.events" done 0 "1:done 2:done 3:done 4:done" "$id"
	all_on "$S3"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE id > $jobs0")" 4 \
		"jobs of the rebalance (one per disk)"
	assert_eq "$rc" 5 "exit status of the interrupted rebalance"
	assert_eq "$(awk '{ print $1, $3 }' "$T/moves.3" | tr '\n' ' ')" \
		"1 done 2 done 3 planned 4 planned " \
		"the moves after Ctrl-C (the rebalance says: $(tail -n3 "$T/r2.err"))"
	[ "$rr" = 0 ] || fail "the rebalance_result of the rebalance stopped by Ctrl-C (above)"
	assert_eq "$(ls -A "$S2")" "" "what is left on s2"
}
run_case "Ctrl-C (SIGINT to the process group) during the second move, then --resume" case_ctrl_c

case_sigkill() {
	local rc=0 id jobs0 job mark
	jobs0=$(rb_sql "SELECT count(*) FROM job")
	mark=$(ev_mark)
	start_rebalance "$T/r3" --storage "$S3" --storage "$S1" --drain "$S3" --bandwidth 6
	wait_for "SELECT count(*) FROM rebalance WHERE state = 'running'" 1 10
	id=$(rb_sql "SELECT max(id) FROM rebalance")
	wait_second_move "$id" "$jobs0"
	kill -KILL "$PID"
	wait "$PID" || rc=$?
	assert_eq "$rc" 137 "exit status of the killed rebalance"
	job=$(rb_sql "SELECT max(id) FROM job")
	# Its child goes on alone and finishes the move.
	wait_for "SELECT state FROM job WHERE id = $job" done 60
	moves_of "$id" >"$T/moves.3"
	assert_eq "$(awk '{ print $1, $3 }' "$T/moves.3" | tr '\n' ' ')" \
		"1 done 2 running 3 planned 4 planned " "the journal after SIGKILL"
	# Killed: no rebalance_result (its moves' events are there).
	ev_since "$mark" "$T/r3.events"
	rb_no_result "$T/r3.events"

	mark=$(ev_mark)
	expect_exit 0 sm rebalance --resume
	assert_contains "$T/err" "4 of 4 moves done, 0 failed"
	ev_since "$mark" "$T/r3-resume.events"
	rb_result "$T/r3-resume.events" done 0 "1:done 2:done 3:done 4:done" "$id"
	assert_eq "$(jev "$T/r3-resume.events" '[m["job"] for m in ev("rebalance_result")[0]["moves"] if m["seq"] == 2]')" \
		"$job" "the second move's job in the rebalance_result"
	moves_of "$id" >"$T/moves.4"
	assert_eq "$(awk '{ print $3 }' "$T/moves.4" | sort -u)" done "the moves after --resume"
	assert_eq "$(awk '$1 == 2 { print $4 }' "$T/moves.4")" "$job" "the second move's job"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE id > $jobs0")" 4 \
		"jobs of this rebalance (one per disk)"
	all_on "$S1"
	assert_eq "$(ls -A "$S3")" "" "what is left on s3"
}
run_case "SIGKILL during the second move, its child finishes, then --resume" case_sigkill

run_case "every guest's data is intact" rb_case_data

cases_done
