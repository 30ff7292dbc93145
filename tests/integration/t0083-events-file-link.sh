#!/usr/bin/env bash
# SNAPMOVE_EVENTS_FILE is never a way into a file the caller did not mean:
# a symbolic link (to a root file, or dangling towards a file to create) is
# not followed, an existing file another user owns or that others can write
# is refused; each is a usage error (exit 2) that names the variable and why,
# with nothing done (no job, no snapshot) and the file the link leads to
# untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/ev"
new_image "$T/src/disk.qcow2" qcow2 64M 0x21 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"
echo "root's own file" >"$H/precious"
chmod 600 "$H/precious"
touch -d '2020-01-01' "$H/precious"

# refused PATH WHY: a move with SNAPMOVE_EVENTS_FILE=PATH exits 2 with WHY.
refused() {
	local json
	for json in "" --json; do
		# shellcheck disable=SC2086
		SNAPMOVE_EVENTS_FILE=$1 expect_exit 2 sm $json move "$dom" --dest "$T/dst"
		assert_contains "$T/err" "'$1' (SNAPMOVE_EVENTS_FILE)"
		assert_contains "$T/err" "$2"
		[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "stdout of a refused move"; }
		assert_eq "$(live_chain "$dom" vda)" "$T/src/disk.qcow2 qcow2" "the chain"
		assert_eq "$(ls -A "$T/dst")" "" "the destination"
		assert_eq "$(ls -A "$T/src")" disk.qcow2 "the source folder"
		if [ -e "$DB" ]; then
			assert_eq "$(sqlite3 "$DB" 'select count(*) from job')" 0 "jobs in the journal"
		fi
	done
	assert_eq "$(cat "$H/precious")" "root's own file" "the root file's contents"
	assert_eq "$(stat -c '%a %Y' "$H/precious")" "600 $(date -d 2020-01-01 +%s)" "the root file's mode and time"
}

case_link() {
	ln -s "$H/precious" "$T/ev/link"
	refused "$T/ev/link" "is a symbolic link"
}
run_case "a link to a root file is not followed" case_link

case_dangling() {
	ln -s "$H/created" "$T/ev/dangling"
	refused "$T/ev/dangling" "is a symbolic link"
	assert_absent "$H/created"
}
run_case "a dangling link is not followed to create a file" case_dangling

case_owner() {
	echo planted >"$T/ev/theirs"
	chown nobody "$T/ev/theirs"
	refused "$T/ev/theirs" "is not owned by you"
	assert_eq "$(cat "$T/ev/theirs")" planted "the other user's file"
}
run_case "a file another user owns is refused" case_owner

case_writable() {
	: >"$T/ev/open"
	chmod 666 "$T/ev/open"
	refused "$T/ev/open" "is writable by others"
	[ ! -s "$T/ev/open" ] || fail "events written to a file others can write"
}
run_case "a file others can write is refused" case_writable

case_fine() {
	# A file of one's own, or a new one: events appended (t0064 holds the
	# rest); a new file is 0600.
	SNAPMOVE_EVENTS_FILE=$T/ev/new expect_exit 0 sm move "$dom" --dest "$T/dst" --dry-run
	assert_eq "$(stat -c %a "$T/ev/new")" 600 "mode of a new events file"
}
run_case "a new events file is made 0600" case_fine

cases_done
