#!/usr/bin/env bash
# A tampered rebalance in the journal is a clear error naming the rebalance
# and the row, never a crash or a silent 0.  A rebalance whose one move is
# planned (a running domain's disk to another folder) is written to the
# journal as snapmove writes it; then its rows are edited with sqlite3 the
# ways a hand or a bad disk would (text, a real, a blob or NULL where a whole
# number must be, negative and huge numbers, flags other than 0 and 1,
# unknown state names, a relative folder) and 'snapmove rebalance --resume'
# runs on it: it is refused (exit 3) saying "journal row of rebalance 1 is
# malformed (...)" and what is wrong, starts no move (no log, no job), and
# changes neither the journal nor the domain.  The untouched rebalance then
# resumes and moves the disk.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x61 0 2M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
journal_init
sqlite3 "$DB" "INSERT INTO rebalance (goal, state, max_parallel, bandwidth_mib, stop_on_error,
		job_floor, created_at) VALUES ('drain $T/src', 'failed', 1, 0, 0, 0, 1.7e9);
	INSERT INTO rebalance_move (rebalance_id, seq, domain, disk, running, from_storage,
		to_dir, bytes, state) VALUES (1, 1, '$dom', 'vda', 1, '$T/src', '$T/dst', 2097152,
		'planned')"
sqlite3 "$DB" ".backup '$T/pristine.db'"

restore() {
	rm -f "$DB" "$DB-wal" "$DB-shm"
	cp "$T/pristine.db" "$DB"
	chmod 600 "$DB"
}

drop_not_null() {  # TABLE
	command sqlite3 "$DB" "PRAGMA writable_schema = ON;
		UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '') WHERE name = '$1';"
}

world() {
	live_chain "$dom" vda
	ls "$T/src" "$T/dst"
	ls "$DB".rebalance-* 2>/dev/null || true
	sqlite3 "$DB" 'SELECT count(*) FROM job'
}
world >"$T/world.before"

# check_case NAME TEXT SQL...: restore, tamper with SQL, resume: refused with
# TEXT, nothing started or changed.
check_case() {
	local name=$1 text=$2 q rc=0
	shift 2
	note "$name"
	restore
	for q in "$@"; do
		case "$q" in
		not-null:*) drop_not_null "${q#not-null:}" ;;
		*) command sqlite3 "$DB" "$q" ;;
		esac
	done
	sqlite3 "$DB" ".dump" >"$T/journal.before"
	sm rebalance --resume >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -lt 128 ] || { cat "$T/err" >&2; fail "$name: died of signal $((rc - 128))"; }
	! grep -q 'Sanitizer\|runtime error' "$T/err" || { cat "$T/err" >&2; fail "$name: a sanitizer report"; }
	[ "$rc" = 3 ] || { cat "$T/out" "$T/err" >&2; fail "$name: exited $rc, expected 3"; }
	assert_contains "$T/err" "snapmove: error: journal row of rebalance 1 is malformed ($text"
	assert_contains "$T/err" "the journal may have been edited"
	sqlite3 "$DB" ".dump" >"$T/journal.now"
	diff -u "$T/journal.before" "$T/journal.now" >&2 || fail "$name: the journal changed"
	world >"$T/world.now"
	diff -u "$T/world.before" "$T/world.now" >&2 || fail "$name: a move started or a file changed"
}

check_case "text for a sequence number" "move: seq is not a whole number" \
	"UPDATE rebalance_move SET seq = 'one'"
check_case "a negative sequence number" "move: seq is out of range (-1)" \
	"UPDATE rebalance_move SET seq = -1"
check_case "a flag of 2" "move 1: running is out of range (2)" \
	"UPDATE rebalance_move SET running = 2"
check_case "a negative size" "move 1: bytes is out of range (-1)" \
	"UPDATE rebalance_move SET bytes = -1"
check_case "a huge size" "move 1: bytes is out of range (9223372036854775807)" \
	"UPDATE rebalance_move SET bytes = 9223372036854775807"
check_case "text for a size" "move 1: bytes is not a whole number" \
	"UPDATE rebalance_move SET bytes = '2M'"
check_case "a real for a size" "move 1: bytes is not a whole number" \
	"UPDATE rebalance_move SET bytes = 2.5"
check_case "an unknown move state" "move 1: unknown state 'weird'" \
	"UPDATE rebalance_move SET state = 'weird'"
check_case "a NULL move state" "move 1: state is NULL" \
	not-null:rebalance_move "UPDATE rebalance_move SET state = NULL"
check_case "a NULL domain" "move 1: domain is NULL" \
	not-null:rebalance_move "UPDATE rebalance_move SET domain = NULL"
check_case "a blob for a disk" "move 1: disk is not text" \
	"UPDATE rebalance_move SET disk = x'00ff'"
check_case "a relative destination" "move 1: to_dir is not an absolute path" \
	"UPDATE rebalance_move SET to_dir = 'dst'"
check_case "text for a job" "move 1: job_id is not a whole number" \
	"UPDATE rebalance_move SET job_id = 'x'"
check_case "a negative job" "move 1: job_id is out of range (-3)" \
	"UPDATE rebalance_move SET job_id = -3"
check_case "no parallel moves" "max_parallel is out of range (0)" \
	"UPDATE rebalance SET max_parallel = 0"
check_case "text for parallel moves" "max_parallel is not a whole number" \
	"UPDATE rebalance SET max_parallel = 'two'"
check_case "a negative bandwidth" "bandwidth_mib is out of range (-1)" \
	"UPDATE rebalance SET bandwidth_mib = -1"
check_case "a flag of 7" "stop_on_error is out of range (7)" \
	"UPDATE rebalance SET stop_on_error = 7"
check_case "a NULL job floor" "job_floor is NULL" \
	not-null:rebalance "UPDATE rebalance SET job_floor = NULL"
check_case "an unknown rebalance state" "unknown state 'weird'" \
	"UPDATE rebalance SET state = 'weird'"
check_case "a NULL rebalance state" "state is NULL" \
	not-null:rebalance "UPDATE rebalance SET state = NULL"

note "the untouched rebalance resumes"
restore
expect_exit 0 sm rebalance --resume
assert_eq "$(dirname "$(live_chain "$dom" vda | awk 'NR == 1 { print $1 }')")" "$T/dst" \
	"the folder $dom runs from"
assert_eq "$(sqlite3 "$DB" 'SELECT state FROM rebalance_move')" done "the move's state"
