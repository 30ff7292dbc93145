#!/usr/bin/env bash
# Programs snapmove starts do not take orders from the caller's environment:
# a hook's environment is PATH (a fixed system one), LC_ALL=C, HOME=/root,
# SNAPMOVE_EVENTS_FILE and the job's SNAPMOVE_* facts, nothing else (no
# LD_PRELOAD, no BASH_ENV, no secrets); qemu-img is /usr/bin's (or another
# system folder's), never a 'qemu-img' found first in the caller's PATH, and
# it runs without the caller's LD_PRELOAD.  The move itself succeeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/bin" "$T/home"
new_image "$T/src/base.qcow2" qcow2 64M 0x21 0 1M
new_overlay "$T/src/disk.qcow2" "$T/src/base.qcow2" qcow2 0x22 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"

# A preloaded library that notes every program it is loaded into but
# snapmove itself.
cat >"$T/evil.c" <<C
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int fd;

	if (n <= 0)
		return;
	exe[n] = '\n';
	if (n >= 9 && memcmp(exe + n - 9, "/snapmove", 9) == 0)
		return;
	fd = open("$T/preloaded", O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		(void)!write(fd, exe, (size_t)n + 1);
		close(fd);
	}
}
C
cc -shared -fPIC -o "$T/evil.so" "$T/evil.c"
printf '#!/bin/bash\necho "$0 $*" >>%s/fake-qemu-img\nexec /usr/bin/qemu-img "$@"\n' "$T" >"$T/bin/qemu-img"
chmod 755 "$T/bin/qemu-img"
printf 'echo "BASH_ENV sourced by $0" >>%s/bash-env\n' "$T" >"$T/bash-env.sh"
new_hook "$H/hooks" before_move 50-env "tr '\\0' '\\n' </proc/\$\$/environ | sort >'$T/hook.env'"

case_env() {
	env PATH="$T/bin:$PATH" LD_PRELOAD="$T/evil.so" BASH_ENV="$T/bash-env.sh" SECRET=x \
		HOME="$T/home" LD_LIBRARY_PATH="$T/bin" \
		"$SNAPMOVE" --db "$DB" --hooks-dir "$H/hooks" move "$dom" --dest "$T/dst" \
		>"$T/move.out" 2>"$T/move.err" ||
		{ cat "$T/move.out" "$T/move.err" >&2; fail "the move failed"; }
	assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2
$T/dst/base.qcow2 qcow2" "the chain after the move"
	[ -s "$T/hook.env" ] || fail "the hook did not run"
	assert_eq "$(sed 's/=.*//' "$T/hook.env" | grep -v '^SNAPMOVE_' | tr '\n' ' ')" "HOME LC_ALL PATH " \
		"the hook's variables besides SNAPMOVE_*"
	assert_eq "$(grep -E '^(PATH|LC_ALL|HOME)=' "$T/hook.env" | tr '\n' ' ')" \
		"HOME=/root LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin " "the hook's PATH, LC_ALL, HOME"
	assert_eq "$(grep -c '^SNAPMOVE_EVENTS_FILE=' "$T/hook.env")" 1 "SNAPMOVE_EVENTS_FILE for the hook"
	! grep -E '^(SECRET|LD_|BASH_ENV)' "$T/hook.env" >&2 || fail "the hook saw the caller's variables (above)"
	assert_absent "$T/bash-env"
	[ ! -e "$T/fake-qemu-img" ] || { cat "$T/fake-qemu-img" >&2; fail "snapmove ran the caller's PATH's qemu-img (above)"; }
	[ ! -e "$T/preloaded" ] || { cat "$T/preloaded" >&2; fail "programs snapmove started loaded the caller's LD_PRELOAD (above)"; }
}
run_case "hooks and qemu-img get an environment of snapmove's own, not the caller's" case_env

cases_done
