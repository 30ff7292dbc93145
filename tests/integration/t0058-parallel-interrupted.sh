#!/usr/bin/env bash
# SIGINT while three copies run in parallel: each copy stops at its next
# safe point with its finished chunks journaled, the move exits 5
# (interrupted), every disk runs on its source overlay with no block job, and
# 'snapmove resume' continues each of the three copies after its last
# journaled chunk (not from the start), then finishes; all data intact.
#
# The signal is sent by the test when the journal shows every copy half-way
# (at least one chunk journaled, none copied): 128 MiB of data per disk at
# --bandwidth 32 takes about 4 s per copy.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
for n in 0 1 2; do
	new_image "$T/src/d$n.qcow2" qcow2 256M "0x1$n" 0 128M
done
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/d0.qcow2:qcow2" "vdb:$T/src/d1.qcow2:qcow2" \
	"vdc:$T/src/d2.qcow2:qcow2"
make_write_hook "$dom" vdb copy:0x21:200M

images() {  # "vda:copying:1 vdb:..." for job 1
	sqlite3 -readonly -cmd '.timeout 2000' "$DB" \
		"select group_concat(target || ':' || state || ':' ||
		 (select count(*) from chunk c where c.job_id = i.job_id and
		  c.target = i.target and c.depth = i.depth), ' ')
		 from (select * from image where job_id = 1 order by target) i" 2>/dev/null || true
}

# snapmove itself in the background (not through sm(), a shell function:
# $! must be snapmove's pid).
SNAPMOVE_TEST_HOOK=$T/hook "$SNAPMOVE" --db "$DB" move "$dom" --dest "$T/dst" --parallel 3 \
	--bandwidth 32 --copy-method readwrite >"$T/move.out" 2>"$T/move.err" &
pid=$!
sent=
for i in $(seq 1 300); do
	if [ -e "$DB" ] && images | grep -qE \
		'^vda:copying:[1-9][0-9]* vdb:copying:[1-9][0-9]* vdc:copying:[1-9][0-9]*$'; then
		kill -INT "$pid"
		sent=$(images)
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
rc=0
wait "$pid" || rc=$?
[ -n "$sent" ] || { cat "$T/move.err" >&2; fail "the three copies were never half-way at once"; }
note "SIGINT at: $sent"
[ "$rc" = 5 ] || { cat "$T/move.out" "$T/move.err" >&2; fail "move exited $rc, expected 5"; }
grep -qi interrupted "$T/move.err" || { cat "$T/move.err" >&2; fail "the move does not say it was interrupted"; }
assert_contains "$T/move.err" "snapmove resume 1"

# Stopped at a safe point: each disk on its overlay, no block job, and each
# copy with chunks journaled but not copied.
for t in vda:d0 vdb:d1 vdc:d2; do
	assert_eq "$(live_chain "$dom" "${t%%:*}")" "$T/dst/${t#*:}.qcow2.snapmove-1.src.qcow2 qcow2
$T/src/${t#*:}.qcow2 qcow2" "${t%%:*}'s chain after the signal"
	assert_eq "$(block_job_count "$dom" "${t%%:*}")" 0 "${t%%:*}'s block jobs after the signal"
done
stopped=$(images)
echo "$stopped" | grep -qE '^vda:copying:[1-9][0-9]* vdb:copying:[1-9][0-9]* vdc:copying:[1-9][0-9]*$' ||
	fail "after the signal the journal shows '$stopped', not three half-done copies"
sm status 1 >"$T/status.out"
assert_contains "$T/status.out" "job 1: failed,"

guest_write "$dom" vda 0x31 201M 64k
expect_exit 0 sm resume 1
for n in 0 1 2; do
	assert_contains "$T/err" "copied $T/dst/d$n.qcow2: resumed after chunk "
done
sm status 1 >"$T/status.out"
assert_contains "$T/status.out" "job 1: done, phase done"
for t in vda:d0 vdb:d1 vdc:d2; do
	assert_eq "$(live_chain "$dom" "${t%%:*}")" "$T/dst/${t#*:}.qcow2 qcow2" "${t%%:*}'s chain"
	assert_eq "$(live_chain "$dom" "${t%%:*}" --inactive)" "$T/dst/${t#*:}.qcow2 qcow2" \
		"${t%%:*}'s definition"
done
assert_eq "$(ls "$T/dst" | tr '\n' ' ')" "d0.qcow2 d1.qcow2 d2.qcow2 " "destination files"
assert_eq "$(ls "$T/src" | tr '\n' ' ')" "d0.qcow2 d1.qcow2 d2.qcow2 " "source files"
expect_exit 0 sm verify 1

virsh -q destroy "$dom" >/dev/null
for n in 0 1 2; do
	check_pattern "$T/dst/d$n.qcow2" qcow2 "0x1$n" 0 128M
done
check_pattern "$T/dst/d1.qcow2" qcow2 0x21 200M 64k
check_pattern "$T/dst/d0.qcow2" qcow2 0x31 201M 64k
