#!/usr/bin/env bash
# 'resume' removes the job's destination overlay only while it is still the
# file the job made: after a crash right after the final pivot, another user
# who can write the destination folder puts a hard link to a root-only file
# at the overlay's name.  resume finishes the move (exit 0), keeps the
# planted name and the root file, and names the kept file and why; 'status'
# says it was kept.  See src/srcfile.c.
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name hardlink)")

case_hardlink() {
	local rc=0
	C=$T/hardlink
	DB=$C/j.db
	DOM=$(dom_name hardlink)
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0xa1 0 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0xa2 1M 1M
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	SNAPMOVE_TEST_CRASH_AT=collapse:unjournaled bash -c '"$@" >"$0.out" 2>"$0.err"' \
		"$C/move" "$SNAPMOVE" --db "$DB" move "$DOM" --dest "$C/dst" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$C/move.err" >&2; fail "move exited $rc, not killed (137)"; }
	DOV=$C/dst/top.qcow2.snapmove-1.qcow2
	SOV=$C/dst/top.qcow2.snapmove-1.src.qcow2   # the source overlay, in dst/ too
	mkdir -m 700 "$C/root"
	echo precious >"$C/root/secret"
	chmod 600 "$C/root/secret"
	mv "$DOV" "$C/dov.aside"
	ln "$C/root/secret" "$DOV"

	expect_exit 0 sm resume 1
	assert_eq "$(cat "$C/root/secret")" precious "the root-only file"
	assert_eq "$(stat -c %h "$C/root/secret")" 2 "links to the root-only file"
	assert_contains "$T/err" "kept $DOV: another file now has its name"
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/top.qcow2 qcow2
$C/dst/base.raw raw" "live chain after resume"
	sm status 1 >"$C/status.out" 2>&1 || true
	grep -q "^job 1: done" "$C/status.out" || { cat "$C/status.out" >&2; fail "job state"; }
	grep -q "kept .*$DOV" "$C/status.out" || { cat "$C/status.out" >&2; fail "status does not say kept"; }
	# The JSON status says so too (checked against docs/events.schema.json).
	sm --json status 1 >"$C/status.json"
	grep -q '"state":"kept"' "$C/status.json" || grep -q '"state": "kept"' "$C/status.json" ||
		{ cat "$C/status.json" >&2; fail "status --json does not say kept"; }
}
run_case "the destination overlay's name replaced by a hard link: kept, named" case_hardlink

cases_done
