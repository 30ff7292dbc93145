#!/usr/bin/env bash
# A tampered journal is a clear error naming the job, never a crash.  After a
# real move, the journal is edited with sqlite3 in the ways a hand or a bad
# disk would (a NULL where a value must be, an unknown state or phase name,
# text where a number is expected, negative and huge numbers, a blob, a disk
# whose image rows are gone) and list, status, cleanup, resume, abort and
# verify run on it: none dies of a signal, each one that reads the broken row
# says "journal row of job 1 is malformed (...)" and what is wrong, and no
# file, chain or job changes.  'snapmove forget 1', which the error offers,
# then drops the job and only the job.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/base.raw" raw 32M 0x11 0 4M
new_overlay "$T/src/top.qcow2" base.raw raw 0x12 1M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/top.qcow2:qcow2"
expect_exit 0 sm move "$dom" --dest "$T/dst"
expect_exit 0 sm verify 1
sqlite3 "$DB" ".backup '$T/pristine.db'"

# What no command may change: the files (names, sizes, contents), the chain.
files_state() {
	ls -l --time-style=+%s "$T/src" "$T/dst"
	md5sum "$T"/src/* "$T"/dst/*
	live_chain "$dom" vda
}
files_state >"$T/files.before"

# restore: the journal as the move left it.
restore() {
	rm -f "$DB" "$DB-wal" "$DB-shm"
	cp "$T/pristine.db" "$DB"
	chmod 600 "$DB"
}

# Columns declared NOT NULL accept NULL only once the declaration is gone,
# as a hand that wants it there would do.
drop_not_null() {  # TABLE
	command sqlite3 "$DB" "PRAGMA writable_schema = ON;
		UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '') WHERE name = '$1';"
}

# check_case NAME TEXT "MALFORMED COMMANDS" SQL...: restore, tamper with SQL,
# then run every command (or those in $CMDS); those in MALFORMED must report
# the row as malformed with TEXT; all must exit below 128 (no signal); nothing
# may change.
check_case() {
	local name=$1 text=$2 malformed=" $3 " cmd rc q
	shift 3
	note "$name"
	restore
	for q in "$@"; do
		case "$q" in
		not-null:*) drop_not_null "${q#not-null:}" ;;
		*) command sqlite3 "$DB" "$q" ;;
		esac
	done
	sqlite3 "$DB" ".dump" >"$T/journal.before"
	for cmd in ${CMDS:-list status cleanup resume abort verify list-json status-json}; do
		rc=0
		case "$cmd" in
		list) sm list >"$T/out" 2>"$T/err" || rc=$? ;;
		list-json) "$SNAPMOVE" --db "$DB" --json list >"$T/out" 2>"$T/err" || rc=$? ;;
		status-json) "$SNAPMOVE" --db "$DB" --json status 1 >"$T/out" 2>"$T/err" || rc=$? ;;
		*) sm "$cmd" 1 >"$T/out" 2>"$T/err" || rc=$? ;;
		esac
		[ "$rc" -lt 128 ] || { cat "$T/err" >&2; fail "$name: '$cmd' died of signal $((rc - 128))"; }
		# (a SANITIZE build reports leaks and undefined behaviour on stderr)
		! grep -q 'Sanitizer\|runtime error' "$T/err" || { cat "$T/err" >&2; fail "$name: '$cmd': a sanitizer report"; }
		case "$malformed" in
		*" $cmd "*)
			[ "$rc" != 0 ] || { cat "$T/out" >&2; fail "$name: '$cmd' exited 0"; }
			assert_contains "$T/err" "snapmove: error: journal row of job 1 is malformed ($text"
			assert_contains "$T/err" "the journal may have been edited: 'snapmove forget 1' or restore it"
			;;
		*)
			[ "$rc" = 0 ] || assert_contains "$T/err" "snapmove: error: "
			;;
		esac
	done
	files_state >"$T/files.now"
	diff -u "$T/files.before" "$T/files.now" >&2 || fail "$name: a command changed the files"
	sqlite3 "$DB" ".dump" >"$T/journal.now"
	diff -u "$T/journal.before" "$T/journal.now" >&2 || fail "$name: a command changed the journal"

	expect_exit 0 sm forget 1
	assert_contains "$T/out" "forgot job 1"
	assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM job')" 0 "$name: jobs after forget"
	files_state >"$T/files.now"
	diff -u "$T/files.before" "$T/files.now" >&2 || fail "$name: forget changed the files"
}

all="list status cleanup resume abort verify list-json status-json"
disk_readers="list status cleanup verify list-json status-json"

check_case "unknown phase" "unknown phase 'xyz'" "$all" \
	"UPDATE job SET phase = 'xyz'"
check_case "unknown job state" "unknown state 'weird'" "$all" \
	"UPDATE job SET state = 'weird'"
check_case "a NULL domain name" "domain_name is NULL" "$all" \
	not-null:job "UPDATE job SET domain_name = NULL"
check_case "a blob for the destination" "dest_dir is not text" "$all" \
	"UPDATE job SET dest_dir = x'00ff'"
check_case "a huge start time" "created_at is out of range" "$all" \
	"UPDATE job SET created_at = 1e300"
check_case "text for a flag" "persistent is not a whole number" "$all" \
	"UPDATE job SET persistent = 'yes'"
check_case "a NULL disk target" "disk: target is NULL" "$disk_readers" \
	not-null:disk "UPDATE disk SET target = NULL"
check_case "unknown disk state" "disk: unknown disk state 'xyz'" "$disk_readers" \
	"UPDATE disk SET state = 'xyz'"
check_case "a negative size" "disk: virtual_size is out of range (-1)" "$disk_readers" \
	"UPDATE disk SET virtual_size = -1"
check_case "text for an image size" "image: virtual_size is not a whole number" \
	"$disk_readers" "UPDATE image SET virtual_size = 'big'"
check_case "a NULL image path" "image: src_path is NULL" "$disk_readers" \
	not-null:image "UPDATE image SET src_path = NULL WHERE depth = 1"
check_case "no image rows" "disk 'vda' has no image rows" "$disk_readers" \
	"DELETE FROM image WHERE job_id = 1"
check_case "no image rows of an unfinished job" "disk 'vda' has no image rows" \
	"list status resume abort list-json status-json" "UPDATE job SET state = 'failed', finished_at = NULL" \
	"DELETE FROM image WHERE job_id = 1"
check_case "a gap in the image depths" "the depths of the images of disk 'vda'" \
	"$disk_readers" "UPDATE image SET depth = 5 WHERE depth = 1"
# cleanup does not read chunks: it would rightly delete the source.
CMDS="list status resume abort verify" \
check_case "a huge chunk" "chunk: length is out of range" "verify" \
	"UPDATE chunk SET length = 9223372036854775807"
CMDS="list status resume abort verify" \
check_case "a bad checksum" "chunk: checksum 'zz' is not 16 hex digits" "verify" \
	"UPDATE chunk SET checksum = 'zz'"
check_case "text for a step time" "step: started_at is not a number" \
	"status cleanup status-json" "UPDATE step SET started_at = 'noon'"
check_case "a NULL file path" "file: path is NULL" "status cleanup status-json" \
	not-null:file "UPDATE file SET path = NULL WHERE role = 'dst_image'"
