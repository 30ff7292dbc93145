#!/usr/bin/env bash
# Hooks live in root's own folders, all the way from /: a hooks folder under
# a folder that group or others can write (even a sticky one like /var/tmp),
# or one another user owns, is refused, and so is a hook or a point folder
# that is a symbolic link; the hook does not run (its marker is never
# written), the move is vetoed (exit 4), nothing changed, and the error names
# the folder and why.  A hook swapped for a link to another program between
# its check and its start still runs the program that was checked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

mkdir -m 755 "$T/src"
new_image "$T/src/disk.qcow2" qcow2 64M 0x21 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"

# refused WHY HOOKS_DIR: a move with HOOKS_DIR is vetoed with WHY, its hook
# never ran, nothing changed.
refused() {
	local before dst
	before=$(live_chain "$dom" vda)
	dst=$(mktemp -d "$T/dst.XXXXXX")
	chmod 755 "$dst"
	rm -f "$T/ran"
	expect_exit 4 sm --hooks-dir "$2" move "$dom" --dest "$dst"
	assert_contains "$T/err" "snapmove: error: "
	assert_contains "$T/err" "$1"
	assert_contains "$T/err" "hooks run as root"
	assert_absent "$T/ran"
	assert_eq "$(live_chain "$dom" vda)" "$before" "the chain"
	assert_eq "$(ls -A "$dst")" "" "the destination"
}

ran_hook() {  # DIR: a before_move hook in DIR that records it ran
	new_hook "$1" before_move 50-mark "echo ran >>'$T/ran'"
}

case_sticky_parent() {
	# $T is in /var/tmp, mode 1777: whoever can write there could have
	# renamed the folder holding the hooks away and put their own.
	mkdir -m 755 "$T/hooks-in-tmp"
	ran_hook "$T/hooks-in-tmp"
	refused "folder '/var/tmp' above the hooks folder '$T/hooks-in-tmp' is writable by group or others" \
		"$T/hooks-in-tmp"
}
run_case "a hooks folder under /var/tmp (sticky, world-writable) is refused" case_sticky_parent

case_group_parent() {
	mkdir -m 775 "$H/shared"
	ran_hook "$H/shared/hooks"
	refused "folder '$H/shared' above the hooks folder '$H/shared/hooks' is writable by group or others" \
		"$H/shared/hooks"
	chmod 757 "$H/shared"
	refused "folder '$H/shared' above the hooks folder '$H/shared/hooks' is writable by group or others" \
		"$H/shared/hooks"
}
run_case "a hooks folder under a group- or other-writable folder is refused" case_group_parent

case_owned_parent() {
	mkdir -m 755 "$H/users"
	chown nobody "$H/users"
	ran_hook "$H/users/hooks"
	refused "folder '$H/users' above the hooks folder '$H/users/hooks' is not owned by root" \
		"$H/users/hooks"
}
run_case "a hooks folder under a folder another user owns is refused" case_owned_parent

case_links() {
	# A point folder that is a link to a root-owned folder of hooks.
	ran_hook "$H/real"
	mkdir -m 755 "$H/linked"
	ln -s "$H/real/before_move" "$H/linked/before_move"
	refused "hook folder '$H/linked/before_move' is not a directory" "$H/linked"
	# A hook that is a link to a root-owned hook.
	mkdir -m 755 "$H/hooklink" "$H/hooklink/before_move"
	ln -s "$H/real/before_move/50-mark" "$H/hooklink/before_move/50-mark"
	refused "hook file '$H/hooklink/before_move/50-mark' is not a regular file" "$H/hooklink"
	# The same hooks reached through a link to the hooks folder itself run:
	# the link is in a root-only folder and what it leads to is checked.
	ln -s "$H/real" "$H/via-link"
	rm -f "$T/ran"
	mkdir -m 755 "$T/dst-via-link"
	expect_exit 0 sm --hooks-dir "$H/via-link" move "$dom" --dest "$T/dst-via-link"
	assert_eq "$(cat "$T/ran")" ran "the hook reached through a linked hooks folder"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst-via-link/disk.qcow2 qcow2" "the chain"
}
run_case "a point folder or hook that is a link is refused; a linked hooks folder is followed" case_links

case_swap() {
	local tracer pid i held=0
	# 50-mark is checked, then swapped for a link to 'evil' (a program in
	# a folder others can write) while strace holds the answer of the
	# check's stat (by path before, of the open file now) back for 3 s.
	# What runs must be what was checked: the marker, not the evil.
	mkdir -m 755 "$H/swap" "$T/dst-swap"
	new_hook "$H/swap" before_move 50-mark "echo checked >>'$T/ran'"
	printf '#!/bin/bash\necho evil >>%s\n' "$T/ran" >"$T/evil"
	chmod 755 "$T/evil"
	rm -f "$T/ran"
	# (LeakSanitizer cannot run in a traced process: off for this one in a
	# sanitized build; the other tests check these paths for leaks.)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq --seccomp-bpf -o /dev/null -P "$H/swap/before_move/50-mark" \
		-e trace=newfstatat,fstat,lstat,statx \
		-e inject=newfstatat,fstat,lstat,statx:delay_exit=3000000:when=1 \
		"$SNAPMOVE" --db "$DB" --hooks-dir "$H/swap" move "$dom" --dest "$T/dst-swap" \
		>"$T/out" 2>"$T/err" &
	tracer=$!
	# Held: a thread of snapmove in a tracing stop for half a second.
	for i in $(seq 1 600); do
		pid=$(pgrep -P "$tracer" || true)
		if [ -n "$pid" ] && ps -L -o stat= -p "$pid" | grep -q '^t'; then
			held=$((held + 1))
			[ $held -lt 5 ] || break
		else
			held=0
		fi
		sleep 0.1
	done
	ln -s "$T/evil" "$H/swap/before_move/50-new"
	mv -T "$H/swap/before_move/50-new" "$H/swap/before_move/50-mark"
	wait "$tracer" || true
	[ $held = 5 ] || { cat "$T/err" >&2; fail "snapmove was never held at the hook's check"; }
	assert_eq "$(cat "$T/ran" 2>/dev/null)" checked "what ran after the swap"
}
run_case "a hook swapped for a link after its check: the checked program runs" case_swap

cases_done
