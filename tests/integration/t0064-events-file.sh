#!/usr/bin/env bash
# SNAPMOVE_EVENTS_FILE: a move with --json appends to the file exactly the
# lines it prints on stdout (the file made mode 0600); a move without --json
# appends its events after what the file held while its stdout stays human
# text; a refused move writes its refused result there, a dry run nothing; a
# path that cannot be opened (in a missing directory, a directory) is a usage
# error (exit 2) naming the variable, with nothing done: no job in the
# journal, no snapshot (the domain's chains as they were), no file anywhere.
# Each run here has its own events file, validated and then appended to the
# test's own.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"

MOVE_PHASES="snapshot:start snapshot:done dest_chain:start dest_chain:done mirror:start mirror:done copy:start copy:done sync:start sync:done pivot:start pivot:done collapse:start collapse:done finalize:start finalize:done"

phases_of() {  # FILE: "phase:status" of each phase event, space-separated
	jev "$1" '" ".join(e["phase"] + ":" + e["status"] for e in ev("phase"))'
}

mkdir -m 755 "$T/src" "$T/dst1" "$T/dst2" "$T/dst3" "$T/ev" "$T/evdir"
new_image "$T/src/base.qcow2" qcow2 64M 0x21 0 4M
new_overlay "$T/src/disk.qcow2" "$T/src/base.qcow2" qcow2 0x22 8M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
guest_write "$dom" vda 0xee 16M 64k

# keep FILE: add a run's own events to the test's, checked when it ends.
keep() {
	cat "$1" >>"$SNAPMOVE_EVENTS_FILE"
}

case_json() {
	local ev=$T/ev/json
	SNAPMOVE_EVENTS_FILE=$ev expect_exit 0 sm --json move "$dom" --dest "$T/dst1"
	keep "$ev"
	assert_events "$T/out"
	# The very same lines, in the same order, in the file and on stdout.
	diff -u "$T/out" "$ev" >&2 || fail "the events file differs from stdout (above)"
	assert_eq "$(stat -c %a "$ev")" 600 "mode of the events file"
	assert_eq "$(phases_of "$ev")" "$MOVE_PHASES" "phase events in the file"
	assert_eq "$(jev "$ev" 'sorted(set(e["job"] for e in events))')" 1 "jobs in the file"
	assert_eq "$(jev "$ev" 'events[-1]["event"] + " " + events[-1]["status"]')" "result done" \
		"the last event in the file"
	assert_eq "$(jev "$ev" 'len(ev("progress")) > 0')" true "progress events in the file"
	! grep -q "moved domain" "$T/out" || fail "human text on stdout under --json"
	assert_contains "$T/err" "moved domain $dom"
}
run_case "move --json: the events file holds exactly the lines of stdout" case_json

case_text() {
	local ev=$T/ev/text n0
	# The file already holds the first move's events: they stay, the new
	# ones come after them.
	cp "$T/ev/json" "$ev"
	n0=$(wc -l <"$ev")
	SNAPMOVE_EVENTS_FILE=$ev expect_exit 0 sm move "$dom" --dest "$T/dst2"
	# stdout: the human report, no JSON.
	assert_contains "$T/out" "moved domain $dom"
	if grep -n '^[[:space:]]*[{[]\|"event"' "$T/out" "$T/err" >&2; then
		fail "JSON on stdout or stderr without --json (above)"
	fi
	head -n "$n0" "$ev" | cmp - "$T/ev/json" >&2 || fail "the events the file held changed"
	tail -n +"$((n0 + 1))" "$ev" >"$T/ev/text.new"
	keep "$T/ev/text.new"
	assert_events "$T/ev/text.new"
	assert_eq "$(jev "$T/ev/text.new" 'sorted(set(e["job"] for e in events))')" 2 "jobs of the new events"
	assert_eq "$(phases_of "$T/ev/text.new")" "$MOVE_PHASES" "phase events without --json"
	assert_eq "$(jev "$T/ev/text.new" 'len(ev("result"))')" 1 "result events without --json"
	assert_eq "$(jev "$T/ev/text.new" 'events[-1]["event"] + " " + events[-1]["status"] + " " + str(events[-1]["exit"])')" \
		"result done 0" "the last event without --json"
	assert_eq "$(jev "$T/ev/text.new" '[chain(d["after"]) for d in events[-1]["disks"]]')" \
		"$(live_chain "$dom" vda)" "the result's chain after"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst2/disk.qcow2 qcow2
$T/dst2/base.qcow2 qcow2" "the live chain after the move without --json"
}
run_case "move without --json: events in the file, appended; human text on stdout" case_text

case_refused_dry_run() {
	local ev=$T/ev/refused
	# A refused move: its one result in the file, nothing on stdout.
	SNAPMOVE_EVENTS_FILE=$ev expect_exit 3 sm move "$dom" --dest "$T/nonexistent"
	keep "$ev"
	[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "a refused move printed on stdout"; }
	assert_events "$ev"
	assert_eq "$(wc -l <"$ev")" 1 "events of a refused move"
	assert_eq "$(jev "$ev" 'events[0]["event"] + " " + events[0]["status"] + " " + str(events[0]["job"])')" \
		"result refused None" "the refused move's event"
	# A dry run prints a document, and documents are not events.
	SNAPMOVE_EVENTS_FILE=$T/ev/dry expect_exit 0 sm --json move "$dom" --dest "$T/dst3" --dry-run
	assert_document dry_run "$T/out"
	[ ! -s "$T/ev/dry" ] || { cat "$T/ev/dry" >&2; fail "a dry run wrote to the events file"; }
}
run_case "a refused move writes its result to the file, a dry run nothing" case_refused_dry_run

# How many jobs the journal holds.
njobs() {
	sm list --json >"$T/list.json"
	jdoc "$T/list.json" 'len(doc["jobs"])'
}

case_cannot_open() {
	local path json jobs
	jobs=$(njobs)
	assert_eq "$jobs" 2 "jobs before"
	save_state bad "$dom" vda "$T/src" "$T/dst2" "$T/dst3" "$T/ev" "$T/evdir"
	for path in "$T/missing/events" "$T/evdir"; do
		for json in "" --json; do
			# shellcheck disable=SC2086
			SNAPMOVE_EVENTS_FILE=$path expect_exit 2 sm $json move "$dom" --dest "$T/dst3"
			assert_contains "$T/err" "SNAPMOVE_EVENTS_FILE"
			assert_contains "$T/err" "'$path'"
			[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "stdout of a move with events file '$path'"; }
			assert_unchanged bad
			assert_eq "$(njobs)" "$jobs" \
				"jobs after a move with events file '$path'"
			assert_eq "$(block_jobs "$dom" vda)" 0 "block jobs"
			assert_absent "$T/missing"
		done
	done
	# No snapshot: the chain is still the one the last move left.
	assert_eq "$(live_chain "$dom" vda)" "$T/dst2/disk.qcow2 qcow2
$T/dst2/base.qcow2 qcow2" "the live chain"
}
run_case "an events file that cannot be opened: exit 2, naming the variable, nothing done" \
	case_cannot_open

case_data() {
	virsh -q destroy "$dom" >/dev/null
	check_pattern "$T/dst2/disk.qcow2" qcow2 0x21 0 4M
	check_pattern "$T/dst2/disk.qcow2" qcow2 0x22 8M 1M
	check_pattern "$T/dst2/disk.qcow2" qcow2 0xee 16M 64k
}
run_case "the guest's data is intact" case_data

cases_done
