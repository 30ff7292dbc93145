#!/usr/bin/env bash
# Global options (-c/--connect, --db, --json, --hooks-dir, --hook-timeout)
# are accepted anywhere on the line, as people type them: after the command
# and among its own options, in both spellings ("--db PATH", "--db=PATH",
# "-cURI"); "--" still ends the options.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
uri=qemu:///system

case_move() {
	# No 'sm' wrapper: every global option comes after the command.
	expect_exit 0 "$SNAPMOVE" move "$dom" --dest "$T/dst" --json --db "$DB" \
		-c "$uri" --hook-timeout 5 --hooks-dir "$T/nohooks"
	assert_events "$T/out"
	assert_eq "$(jev "$T/out" 'ev("result")[0]["status"]')" done "result of the move"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2" "chain after the move"
	expect_exit 0 "$SNAPMOVE" list --db="$DB" --json "-c$uri"
	assert_document list "$T/out"
	assert_contains "$T/out" "\"domain\":\"$dom\""
	expect_exit 0 "$SNAPMOVE" status 1 --connect="$uri" --db "$DB"
	assert_contains "$T/out" "job 1: done"
}
run_case "after the command" case_move

case_errors() {
	# A value-taking option with no value is named, nothing runs.
	expect_exit 2 "$SNAPMOVE" list --db
	assert_contains "$T/err" "'--db'"
	# After "--", words are the command's, not global options.
	expect_exit 2 "$SNAPMOVE" --db "$DB" list -- --json
	assert_contains "$T/err" "unexpected argument '--json'"
	expect_exit 2 "$SNAPMOVE" list --db "$DB" --hook-timeout 0
	assert_contains "$T/err" "--hook-timeout takes seconds (1 to 86400), not '0'"
}
run_case "bad uses" case_errors

cases_done
