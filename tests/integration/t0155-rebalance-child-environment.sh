#!/usr/bin/env bash
# The moves a rebalance starts do not take orders from the caller's
# environment: each child 'snapmove move' gets PATH (a fixed system one),
# LC_ALL=C, HOME=/root, SNAPMOVE_EVENTS_FILE and, in test builds only,
# SNAPMOVE_TEST_HOOK and SNAPMOVE_TEST_CRASH_AT; nothing else (no LD_PRELOAD,
# no BASH_ENV, no secrets, no other SNAPMOVE_*).  So the hooks and the test
# hook it runs see none of them either, no program but the rebalance itself
# loads the caller's LD_PRELOAD, and the moves succeed.  A release build
# passes no SNAPMOVE_TEST_* to its moves.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

REL=${SNAPMOVE_RELEASE:-$TOP/build/snapmove}
[ -x "$REL" ] || fail "no release binary at $REL (make all)"

rb_storages s1:200M s2:200M
S1=$T/s1 S2=$T/s2
mkdir -m 755 "$T/bin" "$T/home"
dom=$(dom_name)
new_image "$S1/disk.qcow2" qcow2 64M 0x51 0 4M
make_domain "$dom" transient "vda:$S1/disk.qcow2:qcow2"
journal_init

# A preloaded library that notes every process it is loaded into (pid and
# program), snapmove included.
cat >"$T/evil.c" <<C
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void)
{
	char exe[4096], line[4200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int fd, len;

	if (n <= 0)
		return;
	exe[n] = '\0';
	len = snprintf(line, sizeof(line), "%d %s\n", (int)getpid(), exe);
	fd = open("$T/preloaded", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		(void)!write(fd, line, (size_t)len);
		close(fd);
	}
}
C
cc -shared -fPIC -o "$T/evil.so" "$T/evil.c"
printf '#!/bin/bash\necho "$0 $*" >>%s/fake-qemu-img\nexec /usr/bin/qemu-img "$@"\n' "$T" >"$T/bin/qemu-img"
chmod 755 "$T/bin/qemu-img"
printf 'echo "BASH_ENV sourced by $0" >>%s/bash-env\n' "$T" >"$T/bash-env.sh"
# The hook writes its own environment and its parent's: the child move's.
new_hook "$H/hooks" before_move 50-env "tr '\\0' '\\n' </proc/\$\$/environ | sort >'$T/hook.env'
tr '\\0' '\\n' </proc/\$PPID/environ | sort >'$T/move.env'
readlink /proc/\$PPID/exe >'$T/move.exe'"
# The test hook (test builds) writes the environment it got from the move.
printf '#!/bin/bash\n[ "$1" = snapshot ] || exit 0\ntr "\\0" "\\n" </proc/$$/environ | sort >%s/testhook.env\n' \
	"$T" >"$T/testhook"
chmod 755 "$T/testhook"

# names FILE: the variable names in an environment dump, on one line.
names() {
	sed 's/=.*//' "$1" | tr '\n' ' '
}

# rebalance BINARY DRAIN TO VAR=VALUE...: a rebalance draining DRAIN into TO,
# run by BINARY in the caller's environment plus the variables given; sets
# PID (the rebalance's own process).
rebalance() {
	local bin=$1 from=$2 to=$3 rc=0
	shift 3
	rm -f "$T/hook.env" "$T/move.env" "$T/move.exe" "$T/testhook.env" "$T/preloaded"
	env "$@" "$bin" --db "$DB" --hooks-dir "$H/hooks" rebalance --storage "$from" \
		--storage "$to" --drain "$from" >"$T/out" 2>"$T/err" &
	PID=$!
	wait $PID || rc=$?
	[ $rc = 0 ] || { cat "$T/out" "$T/err" >&2; fail "the rebalance exited $rc"; }
	assert_eq "$(dirname "$(top_image "$dom" vda)")" "$to" "the folder $dom runs from"
	[ -s "$T/move.env" ] || fail "the before_move hook did not run"
}

case_test_build() {
	rebalance "$SNAPMOVE" "$S1" "$S2" PATH="$T/bin:$PATH" LD_PRELOAD="$T/evil.so" \
		BASH_ENV="$T/bash-env.sh" SECRET=x HOME="$T/home" LD_LIBRARY_PATH="$T/bin" \
		SNAPMOVE_OTHER=y SNAPMOVE_TEST_HOOK="$T/testhook"
	assert_eq "$(names "$T/move.env")" \
		"HOME LC_ALL PATH SNAPMOVE_EVENTS_FILE SNAPMOVE_TEST_HOOK " "the move's variables"
	assert_eq "$(grep -E '^(PATH|LC_ALL|HOME|SNAPMOVE_EVENTS_FILE|SNAPMOVE_TEST_HOOK)=' \
		"$T/move.env" | tr '\n' ' ')" "HOME=/root LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin \
SNAPMOVE_EVENTS_FILE=$SNAPMOVE_EVENTS_FILE SNAPMOVE_TEST_HOOK=$T/testhook " "the move's environment"
	assert_eq "$(cat "$T/move.exe")" "$(readlink -f "$SNAPMOVE")" "the program of the move"
	[ -s "$T/testhook.env" ] || fail "the test hook did not run"
	assert_eq "$(names "$T/testhook.env")" \
		"HOME LC_ALL PATH SNAPMOVE_EVENTS_FILE SNAPMOVE_TEST_HOOK " "the test hook's variables"
	assert_eq "$(sed 's/=.*//' "$T/hook.env" | grep -v '^SNAPMOVE_' | tr '\n' ' ')" \
		"HOME LC_ALL PATH " "the hook's variables besides SNAPMOVE_*"
	! grep -E '^(SECRET|LD_|BASH_ENV|SNAPMOVE_OTHER|SNAPMOVE_TEST)' "$T/hook.env" >&2 ||
		fail "the hook saw the caller's variables (above)"
	assert_absent "$T/bash-env"
	[ ! -e "$T/fake-qemu-img" ] || { cat "$T/fake-qemu-img" >&2; fail "a move ran the caller's PATH's qemu-img (above)"; }
	# The caller's LD_PRELOAD is loaded by the rebalance it started, and
	# by no program the rebalance started.
	[ -s "$T/preloaded" ] || fail "the preloaded library was never loaded"
	! grep -v "^$PID " "$T/preloaded" >&2 ||
		fail "programs the rebalance started loaded the caller's LD_PRELOAD (above)"
}
run_case "the moves of a rebalance (test build) get an environment of its own" case_test_build

case_release_build() {
	rebalance "$REL" "$S2" "$S1" SECRET=x SNAPMOVE_TEST_HOOK="$T/testhook" \
		SNAPMOVE_TEST_CRASH_AT=snapshot:start
	assert_eq "$(names "$T/move.env")" "HOME LC_ALL PATH SNAPMOVE_EVENTS_FILE " \
		"the release move's variables"
	assert_eq "$(cat "$T/move.exe")" "$(readlink -f "$REL")" "the program of the release move"
	assert_absent "$T/testhook.env"
}
run_case "the moves of a release rebalance get no test variables" case_release_build

cases_done
