#!/usr/bin/env bash
# 'snapmove rebalance' running its moves: --max-parallel 2 runs two at once
# (never more), each with its share of --bandwidth, all done; a move that
# fails (a test hook fails one domain's copy) does not stop the others, the
# rebalance says which failed and exits 1, and --resume finishes it with the
# same job; --stop-on-error starts nothing after the first failure, and
# --resume goes on from there.  Four running domains, one disk each, drained
# from one storage to another and back; every guest's data is checked at the
# end.  Each run ends with a rebalance_result event (in SNAPMOVE_EVENTS_FILE:
# these rebalances run without --json): "done" and exit 0 with every move's
# job, or "failed" and exit 1 naming the move that failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

rb_four_domains
P1=${DOMS[0]} P2=${DOMS[1]}
journal_init   # for the queries before the first rebalance

# The test hook fails the copy of the domain named in $T/victim (if any).
cat >"$T/hook" <<HOOK
#!/bin/bash
[ "\$1" = copy ] && [ -s '$T/victim' ] || exit 0
dom=\$(sqlite3 -batch -cmd '.timeout 10000' '$DB' "SELECT domain_name FROM job WHERE id = \$2")
if [ "\$dom" = "\$(cat '$T/victim')" ]; then
	echo "test hook fails the copy of \$dom" >&2
	exit 1
fi
HOOK
chmod 755 "$T/hook"
export SNAPMOVE_TEST_HOOK=$T/hook

# all_on DIR: every domain runs from DIR.
all_on() {
	local dom
	for dom in "${DOMS[@]}"; do
		[ "$(dirname "$(top_image "$dom" vda)")" = "$1" ] ||
			fail "$dom runs from $(top_image "$dom" vda), not from $1"
	done
}

# The moves of the last rebalance: "seq domain state job" lines.
last_moves() {
	rb_sql "SELECT seq, domain, state, coalesce(job_id, 0) FROM rebalance_move WHERE
		rebalance_id = (SELECT max(id) FROM rebalance) ORDER BY seq" | tr '|' ' '
}

case_parallel() {
	local jobs0 mark
	jobs0=$(rb_sql 'SELECT count(*) FROM job')
	mark=$(ev_mark)
	expect_exit 0 sm rebalance --storage "$S1" --storage "$S3" --drain "$S1" \
		--max-parallel 2 --bandwidth 16
	assert_contains "$T/err" "4 of 4 moves done, 0 failed"
	ev_since "$mark" "$T/parallel.events"
	rb_result "$T/parallel.events" done 0 "1:done 2:done 3:done 4:done"
	assert_eq "$(jev "$T/parallel.events" 'sorted(m["job"] for m in ev("rebalance_result")[0]["moves"])')" \
		"$(seq $((jobs0 + 1)) $((jobs0 + 4)))" "the jobs of the moves"
	all_on "$S3"
	assert_eq "$(ls -A "$S1")" "" "what is left on s1"
	assert_eq "$(rb_sql "SELECT max_parallel, bandwidth_mib FROM rebalance")" "2|16" \
		"the rebalance's options in the journal"
	# Each move got half of the 16 MiB/s.
	assert_eq "$(rb_sql "SELECT group_concat(DISTINCT bandwidth_mib) FROM job WHERE id > $jobs0")" \
		8 "each job's bandwidth"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE id > $jobs0 AND state = 'done'")" 4 \
		"done jobs"
	# From the journal: at most two jobs ran at any time, and two did at once.
	rb_sql "SELECT created_at, finished_at FROM job WHERE id > $jobs0" | python3 -c '
import sys
spans = [tuple(map(float, l.split("|"))) for l in sys.stdin if l.strip()]
most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
sys.exit(0 if most == 2 else "%d jobs ran at once at most, expected 2: %s" % (most, spans))' ||
		fail "jobs at once"
}
run_case "--max-parallel 2 --bandwidth 16: two at once, 8 MiB/s each, all done" case_parallel

case_one_fails() {
	local job mark
	echo "$P2" >"$T/victim"
	mark=$(ev_mark)
	expect_exit 1 sm rebalance --storage "$S3" --storage "$S2" --drain "$S3" --max-parallel 2
	ev_since "$mark" "$T/fails.events"
	assert_contains "$T/err" "$P2 vda: FAILED"
	assert_contains "$T/err" "3 of 4 moves done, 1 failed"
	assert_contains "$T/err" "snapmove rebalance --resume"
	last_moves >"$T/moves"
	assert_eq "$(awk '{ print $2, $3 }' "$T/moves" | sort)" \
		"$(printf '%s done\n' "${DOMS[@]}" | sed "s/^$P2 done/$P2 failed/" | sort)" \
		"the moves' states"
	assert_eq "$(rb_sql "SELECT state FROM rebalance WHERE id = (SELECT max(id) FROM rebalance)")" \
		failed "the rebalance's state"
	rb_sql "SELECT error FROM rebalance_move WHERE domain = '$P2' AND
		rebalance_id = (SELECT max(id) FROM rebalance)" >"$T/error"
	assert_contains "$T/error" "exit 1"
	assert_contains "$T/error" "test hook fails the copy"
	assert_contains "$T/error" ".rebalance-"
	for dom in "${DOMS[@]}"; do
		[ "$dom" = "$P2" ] && continue
		[ "$(dirname "$(top_image "$dom" vda)")" = "$S2" ] || fail "$dom is not on s2"
	done
	job=$(awk -v d="$P2" '$2 == d { print $4 }' "$T/moves")
	[ "$job" -gt 0 ] || fail "no job recorded for the failed move"
	assert_eq "$(rb_sql "SELECT state FROM job WHERE id = $job")" failed "the failed job"
	# The second largest, P2, is the second move.
	rb_result "$T/fails.events" failed 1 "1:done 2:failed 3:done 4:done"
	assert_eq "$(jev "$T/fails.events" '[m["domain"] + " " + str(m["job"]) for m in ev("rebalance_result")[0]["moves"] if m["status"] == "failed"]')" \
		"$P2 $job" "the failed move in the rebalance_result"
	# The cause gone, --resume resumes that job and finishes the rebalance.
	: >"$T/victim"
	mark=$(ev_mark)
	expect_exit 0 sm rebalance --resume
	assert_contains "$T/err" "resuming its job"
	ev_since "$mark" "$T/resume.events"
	rb_result "$T/resume.events" done 0 "1:done 2:done 3:done 4:done"
	assert_eq "$(jev "$T/resume.events" '[m["job"] for m in ev("rebalance_result")[0]["moves"] if m["domain"] == "'"$P2"'"]')" \
		"$job" "$P2's job after --resume"
	assert_eq "$(jev "$T/resume.events" '[e["job"] for e in ev("result")]')" "$job" \
		"the jobs --resume ran"
	all_on "$S2"
	assert_eq "$(rb_sql "SELECT state FROM job WHERE id = $job")" done "the resumed job"
	assert_eq "$(jobs_of "$P2" vda)" 2 "jobs of $P2 (one per rebalance)"
	assert_eq "$(last_moves | awk '{ print $3 }' | sort -u)" done "the moves' states after --resume"
	assert_eq "$(rb_sql "SELECT state FROM rebalance WHERE id = (SELECT max(id) FROM rebalance)")" \
		done "the rebalance's state after --resume"
	expect_exit 3 sm rebalance --resume
	assert_contains "$T/err" "no unfinished rebalance"
	# The resumed move deleted its source too, as every move of a rebalance
	# does (the plan counts on the space).
	assert_eq "$(ls -A "$S3")" "" "what is left on s3 after --resume"
}
run_case "one move fails, the others finish; --resume finishes it" case_one_fails

case_stop_on_error() {
	local jobs0 mark
	jobs0=$(rb_sql 'SELECT count(*) FROM job')
	echo "$P1" >"$T/victim"   # the largest: the first move
	mark=$(ev_mark)
	expect_exit 1 sm rebalance --storage "$S2" --storage "$S1" --drain "$S2" --stop-on-error
	ev_since "$mark" "$T/stop.events"
	rb_result "$T/stop.events" failed 1 "1:failed 2:planned 3:planned 4:planned"
	assert_contains "$T/err" "$P1 vda: FAILED"
	assert_contains "$T/err" "0 of 4 moves done, 1 failed"
	assert_eq "$(last_moves | awk '{ print $1, $3 }' | tr '\n' ' ')" \
		"1 failed 2 planned 3 planned 4 planned " "the moves after --stop-on-error"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE id > $jobs0")" 1 "jobs started"
	for dom in "${DOMS[@]:1}"; do
		[ "$(dirname "$(top_image "$dom" vda)")" = "$S2" ] || fail "$dom moved after the failure"
	done
	: >"$T/victim"
	mark=$(ev_mark)
	expect_exit 0 sm rebalance --resume
	assert_contains "$T/err" "4 of 4 moves done, 0 failed"
	ev_since "$mark" "$T/stop-resume.events"
	rb_result "$T/stop-resume.events" done 0 "1:done 2:done 3:done 4:done"
	all_on "$S1"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE id > $jobs0")" 4 "jobs after --resume"
	assert_eq "$(ls -A "$S2")" "" "what is left on s2 after --resume"
}
run_case "--stop-on-error starts nothing after a failure; --resume goes on" case_stop_on_error

# A move the child refuses (exit 3: a file of that name is in the way at the
# destination) fails without a job of its own; once the file is gone,
# --resume must run it, not take the disk's older done job for it.
case_refused_child() {
	local jobs0 P3=${DOMS[2]} job mark
	jobs0=$(rb_sql 'SELECT max(id) FROM job')
	[ "$(jobs_of "$P3" vda done)" -ge 1 ] || fail "$P3 has no done job from the cases before"
	all_on "$S1"
	rm -f "$S2"/*   # sources the resumed moves above may have left (asserted there)
	echo "in the way" >"$S2/p3.qcow2"
	mark=$(ev_mark)
	expect_exit 1 sm rebalance --storage "$S1" --storage "$S2" --drain "$S1"
	assert_contains "$T/err" "$P3 vda: FAILED (exit 3"
	assert_contains "$T/err" "3 of 4 moves done, 1 failed"
	# The refused move has no job.
	ev_since "$mark" "$T/refused-child.events"
	rb_result "$T/refused-child.events" failed 1 "1:done 2:done 3:failed 4:done"
	assert_eq "$(jev "$T/refused-child.events" '[m["job"] for m in ev("rebalance_result")[0]["moves"] if m["seq"] == 3]')" \
		null "the job of the refused move"
	rm "$S2/p3.qcow2"
	mark=$(ev_mark)
	expect_exit 0 sm rebalance --resume
	assert_contains "$T/err" "4 of 4 moves done, 0 failed"
	ev_since "$mark" "$T/refused-resume.events"
	rb_result "$T/refused-resume.events" done 0 "1:done 2:done 3:done 4:done"
	[ "$(dirname "$(top_image "$P3" vda)")" = "$S2" ] ||
		fail "$P3 runs from $(top_image "$P3" vda) after --resume said all moves were done"
	job=$(rb_sql "SELECT job_id FROM rebalance_move WHERE domain = '$P3' AND
		rebalance_id = (SELECT max(id) FROM rebalance)")
	[ "$job" -gt "$jobs0" ] || fail "$P3's move is recorded as job $job, a job from before it"
	assert_eq "$(ls -A "$S1")" "" "what is left on s1"
}
run_case "a move refused by its child is run by --resume" case_refused_child

run_case "every guest's data is intact" rb_case_data

cases_done
