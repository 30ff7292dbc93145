#!/usr/bin/env bash
# The journal holds every path a job touched and the start of each hook's
# stderr: its files are 0600 whatever existed before, never links, never
# another user's, in a folder nobody else can write; snapmove's own folder
# (the default one) is made 0700.  list, status and verify open it read-only:
# they work while a move writes it, and on a journal nobody can write.
. "$(dirname "$0")/lib.sh"

# refused TEXT COMMAND...: exit 3 with TEXT on stderr.
refused() {
	local text=$1
	shift
	expect_exit 3 "$@"
	assert_contains "$T/err" "snapmove: error: $text"
}

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 4M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"

# During the copy (the test hook runs while the move waits for it), list and
# status read the journal the move is writing, and the files are 0600.
cat >"$T/hook" <<EOF
#!/bin/bash
[ "\$1" = copy ] || exit 0
"$SNAPMOVE" --db "$DB" list >"$T/during.list" 2>&1 || echo "list exited \$?" >>"$T/during.err"
"$SNAPMOVE" --db "$DB" status 1 >"$T/during.status" 2>&1 ||
	echo "status exited \$?" >>"$T/during.err"
stat -c '%n %a %U' "$DB" "$DB-wal" "$DB-shm" "$DB.job-1.lock" >"$T/during.modes"
EOF
chmod +x "$T/hook"
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
[ ! -e "$T/during.err" ] || { cat "$T/during.err" "$T"/during.* >&2; fail "list or status failed during the move"; }
assert_contains "$T/during.list" "running"
assert_contains "$T/during.status" "job 1: running, phase copy"
assert_eq "$(cat "$T/during.modes")" "$DB 600 root
$DB-wal 600 root
$DB-shm 600 root
$DB.job-1.lock 600 root" "journal files during the move"

note "a 0644 journal is made 0600; its folder, the caller's choice, is left"
chmod 644 "$DB"
expect_exit 0 sm list
assert_eq "$(stat -c %a "$DB")" 600 "journal mode after list"
assert_eq "$(stat -c %a "$T")" 755 "mode of the journal's --db folder"

note "list, status and verify read a journal nobody can write"
defer "chattr -i '$DB'"
chattr +i "$DB"
expect_exit 0 sm list
assert_contains "$T/out" "done"
expect_exit 0 sm status 1
assert_contains "$T/out" "job 1: done, phase done"
expect_exit 0 sm verify 1
rc=0
sm forget 1 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" != 0 ] && [ "$rc" -lt 128 ] || fail "forget on an immutable journal exited $rc"
assert_contains "$T/err" "snapmove: error: "
chattr -i "$DB"

note "a link planted at the -wal's name is refused and its target untouched"
rm -f "$DB-wal" "$DB-shm"
echo secret >"$T/victim"
chmod 644 "$T/victim"
ln -s "$T/victim" "$DB-wal"
refused "cannot open the journal file '$DB-wal': it is a symbolic link" sm list
assert_eq "$(cat "$T/victim") $(stat -c %a "$T/victim")" "secret 644" "the link's target"
rm "$DB-wal"

note "a journal of another user is refused"
chown nobody "$DB"
refused "cannot open the journal '$DB': it belongs to uid $(id -u nobody), not to you (uid 0)" \
	sm list
chown root "$DB"

note "a folder others can write is refused"
mkdir -m 1777 "$T/shared"
cp -p "$DB" "$T/shared/j.db"
refused "the journal's folder '$T/shared' is writable by group or others" \
	"$SNAPMOVE" --db "$T/shared/j.db" list
assert_eq "$(stat -c %a "$T/shared")" 1777 "mode of a shared folder"

note "the default folder of a user is made 0700, the journal 0600"
mkdir -p "$T/xdg/snapmove"
cp "$DB" "$T/xdg/snapmove/journal.db"
chmod 755 "$T/xdg" "$T/xdg/snapmove"
chmod 644 "$T/xdg/snapmove/journal.db"
chown -R nobody "$T/xdg"
as_nobody() {
	runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME="$T/xdg" XDG_STATE_HOME="$T/xdg" \
		"$SNAPMOVE" "$@"
}
expect_exit 0 as_nobody list
assert_contains "$T/out" "done"
assert_eq "$(stat -c %a "$T/xdg/snapmove") $(stat -c %a "$T/xdg/snapmove/journal.db")" \
	"700 600" "modes of the default folder and journal"

note "a default folder of another user is refused"
chown root "$T/xdg/snapmove"
chmod 755 "$T/xdg/snapmove"
refused "the journal's folder '$T/xdg/snapmove' belongs to uid 0, not to you" as_nobody list
assert_eq "$(stat -c %a "$T/xdg/snapmove")" 755 "mode of another user's folder"
