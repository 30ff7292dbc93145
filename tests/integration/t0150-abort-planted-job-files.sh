#!/usr/bin/env bash
# 'abort' removes the job's own files (destination images and overlay, the
# source overlay) only while each is still the file the job made, in the
# folder it journaled reached from '/' without a symlink: after a crash,
# another user who can write the destination folder swaps it for a symlink
# to a folder of root's files with the same names, or puts a hard link to a
# root-only file or a symlink at a job file's name.  abort puts the domain
# back (exit 0), deletes nothing behind the swap, keeps the planted names,
# and names each kept file and why.  See src/srcfile.c.
. "$(dirname "$0")/lib.sh"

for n in folder names; do
	SM_DOMAINS+=("$(dom_name "$n")")
done

setup() {  # NAME: a domain on top.qcow2 over base.raw, a move killed at copy:start
	local rc=0
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0xa1 0 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0xa2 1M 1M
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	SNAPMOVE_TEST_CRASH_AT=copy:start bash -c '"$@" >"$0.out" 2>"$0.err"' "$C/move" \
		"$SNAPMOVE" --db "$DB" move "$DOM" --dest "$C/dst" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$C/move.err" >&2; fail "move exited $rc, not killed (137)"; }
	DOV=$C/dst/top.qcow2.snapmove-1.qcow2
	SOV=$C/dst/top.qcow2.snapmove-1.src.qcow2   # the source overlay, in dst/ too
	[ -f "$C/dst/top.qcow2" ] && [ -f "$C/dst/base.raw" ] && [ -f "$DOV" ] && [ -f "$SOV" ] ||
		fail "the crashed move did not leave its destination files"
	# Root's files the job never made.
	mkdir -m 700 "$C/root"
	echo precious >"$C/root/secret"
	chmod 600 "$C/root/secret"
}

assert_back() {
	assert_eq "$(live_chain "$DOM" vda)" "$C/src/top.qcow2 qcow2
$C/src/base.raw raw" "live chain after abort"
	sm status 1 >"$C/status.out" 2>&1 || true
	grep -q "^job 1: aborted" "$C/status.out" || { cat "$C/status.out" >&2; fail "job state"; }
}

case_folder() {
	setup folder
	# The destination folder becomes a symlink to a folder of root's files
	# named as the job's.
	mkdir -m 700 "$C/victim"
	for f in top.qcow2 base.raw "$(basename "$DOV")" "$(basename "$SOV")"; do
		echo precious >"$C/victim/$f"
	done
	mv "$C/dst" "$C/dst.old"
	ln -s "$C/victim" "$C/dst"
	expect_exit 0 sm abort 1
	for f in top.qcow2 base.raw "$(basename "$DOV")" "$(basename "$SOV")"; do
		assert_eq "$(cat "$C/victim/$f")" precious "$f behind the symlink"
		[ -f "$C/dst.old/$f" ] || fail "the moved-aside $f was removed"
		assert_contains "$T/err" "kept $C/dst/$f: its folder '$C/dst' is now reached through a symbolic link"
	done
	assert_back
	grep -q "kept" "$C/status.out" || { cat "$C/status.out" >&2; fail "status does not say kept"; }
}
run_case "a destination folder swapped for a symlink: nothing behind it deleted" case_folder

case_names() {
	setup names
	# A hard link to a root-only file at the moved image's name, a symlink
	# to it at the destination overlay's name.
	mv "$C/dst/top.qcow2" "$C/top.aside"
	ln "$C/root/secret" "$C/dst/top.qcow2"
	mv "$DOV" "$C/dov.aside"
	ln -s "$C/root/secret" "$DOV"
	expect_exit 0 sm abort 1
	assert_eq "$(cat "$C/root/secret")" precious "the root-only file"
	assert_eq "$(stat -c %h "$C/root/secret")" 2 "links to the root-only file"
	[ -L "$DOV" ] || fail "the planted symlink was removed"
	assert_contains "$T/err" "kept $C/dst/top.qcow2: another file now has its name"
	assert_contains "$T/err" "kept $DOV: another file now has its name"
	# What the job made and still is its own goes.
	assert_absent "$C/dst/base.raw"
	assert_absent "$SOV"
	assert_back
}
run_case "job file names replaced by a hard link and a symlink: both kept, named" case_names

cases_done
