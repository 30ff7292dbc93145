#!/usr/bin/env bash
# 'snapmove recover' after three moves were killed (as a host crash would):
# it lists every unfinished job with what resume would do (live, offline),
# changing nothing; a job another snapmove process holds is left alone; with
# --resume it finishes the others one after another (live and offline), and
# every guest write is where the moved disk is.  Run again, it has nothing to do.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
declare -A DOM
for n in a b c; do
	new_image "$T/src/$n.qcow2" qcow2 64M 0x11 0 1M
	DOM[$n]=$(dom_name "$n")
done
make_domain "${DOM[a]}" persistent "vda:$T/src/a.qcow2:qcow2"
make_domain "${DOM[b]}" transient "vda:$T/src/b.qcow2:qcow2"
make_domain "${DOM[c]}" persistent "vda:$T/src/c.qcow2:qcow2"

# killed_move NAME POINT: a move of NAME's disk that SIGKILLs itself at POINT.
killed_move() {
	local rc=0
	SNAPMOVE_TEST_CRASH_AT=$2 bash -c '"$@" >"$0.out" 2>"$0.err"; exit $?' "$T/$1" \
		"$SNAPMOVE" --db "$DB" move "${DOM[$1]}" --dest "$T/dst" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$T/$1.err" >&2; fail "move of $1: exited $rc, not killed"; }
}
killed_move a copy:start
killed_move b pivot:done
killed_move c mirror:done
for n in a b c; do guest_write "${DOM[$n]}" vda 0x22 2M 64k; done
virsh -q destroy "${DOM[c]}" >/dev/null   # persistent: now shut off

case_list() {
	save_state list - - "$T/src" "$T/dst"
	expect_exit 0 sm recover
	assert_contains "$T/out" "job 1: running, domain ${DOM[a]}, last in 'copy': resume live (the domain runs)"
	assert_contains "$T/out" "job 2: running, domain ${DOM[b]}, last in 'pivot': resume live"
	assert_contains "$T/out" "job 3: running, domain ${DOM[c]}, last in 'mirror': resume offline (the domain is shut off)"
	assert_contains "$T/out" "'snapmove recover --resume' resumes them"
	assert_unchanged list
}
run_case "the list changes nothing" case_list

case_busy() {
	# Another snapmove holds job 1: left alone; the others are finished.
	# (exec: the process killed below is the one holding the lock.)
	(
		exec 9>>"$DB.job-1.lock"
		flock 9
		exec sleep 60
	) &
	local holder=$!
	for _ in $(seq 50); do
		flock -n "$DB.job-1.lock" true 2>/dev/null || break
		sleep 0.1
	done
	expect_exit 1 sm recover --resume
	kill "$holder"; wait "$holder" 2>/dev/null || true
	assert_contains "$T/out" "job 1: running, domain ${DOM[a]}, last in 'copy': job 1 is being run by another snapmove process"
	assert_contains "$T/out" "; left alone"
	assert_contains "$T/out" "recovered 2 of 3 unfinished jobs"
	assert_eq "$(live_chain "${DOM[b]}" vda)" "$T/dst/b.qcow2 qcow2" "b after recover"
	assert_eq "$(virsh domstate "${DOM[c]}")" "shut off" "c's state after recover"
	assert_eq "$(live_chain "${DOM[c]}" vda --inactive)" "$T/dst/c.qcow2 qcow2" "c after recover"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "job 1: running"
}
run_case "a job another process holds is left alone" case_busy

case_resume() {
	expect_exit 0 sm recover --resume
	assert_contains "$T/out" "recovered 1 of 1 unfinished job"
	assert_eq "$(live_chain "${DOM[a]}" vda)" "$T/dst/a.qcow2 qcow2" "a after recover"
	for n in 1 2 3; do
		expect_exit 0 sm status "$n"
		assert_contains "$T/out" "job $n: done"
	done
	expect_exit 0 sm recover --resume
	assert_contains "$T/out" "no unfinished jobs"
	guest_write "${DOM[a]}" vda 0x33 3M 64k
	guest_write "${DOM[b]}" vda 0x33 3M 64k
	for n in a b; do virsh -q destroy "${DOM[$n]}" >/dev/null; done
	for n in a b c; do
		check_pattern "$T/dst/$n.qcow2" qcow2 0x11 0 1M
		check_pattern "$T/dst/$n.qcow2" qcow2 0x22 2M 64k
	done
	check_pattern "$T/dst/a.qcow2" qcow2 0x33 3M 64k
	check_pattern "$T/dst/b.qcow2" qcow2 0x33 3M 64k
}
run_case "--resume finishes them, live and offline" case_resume

cases_done
