#!/usr/bin/env bash
# 'snapmove rebalance' over three storages (tmpfs of 300, 400 and 500 MiB)
# and four running domains whose disks hold 4 to 200 MiB of data, two of
# them overlays over one shared raw template, and a fifth whose disk's chain
# spans two storages: a dry run (human and --json, a storage named by its
# pool) explains the plan against statvfs and changes nothing; impossible
# goals are refused, naming the storage (and the disk), before anything
# moves; --target-free leaves every storage at its share with the bytes the
# plan said; a drain empties the storage of all but the shared template,
# every VM runs from where the plan said with all its data, and each move is
# one done job.  A rebalance that ran ends its events (on --json's stdout and
# in SNAPMOVE_EVENTS_FILE) with a rebalance_result naming each move's job; a
# dry run or a refusal writes none.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

rb_storages s1:300M s2:400M s3:500M
S1=$T/s1 S2=$T/s2 S3=$T/s3
A=$(dom_name a) B=$(dom_name b) C=$(dom_name c) D=$(dom_name d)

new_image "$S1/a-vda.qcow2" qcow2 256M 0xa1 0 40M
new_image "$S2/a-vdb.qcow2" qcow2 256M 0xa2 0 30M
new_image "$S1/b-vda.raw" raw 128M 0xb1 0 30M
new_image "$S3/b-vdb.qcow2" qcow2 512M 0xb2 0 200M
new_image "$S1/tmpl.raw" raw 64M 0x77 0 20M
new_overlay "$S1/c-vda.qcow2" "$S1/tmpl.raw" raw 0xc1 32M 4M
new_image "$S3/c-vdb.qcow2" qcow2 128M 0xc2 0 25M
new_overlay "$S1/d-vda.qcow2" "$S1/tmpl.raw" raw 0xd1 32M 6M
new_image "$S2/d-vdb.qcow2" qcow2 128M 0xd2 0 20M
new_image "$S3/e-base.raw" raw 32M 0xe1 0 2M
new_overlay "$S2/e-vda.qcow2" "$S3/e-base.raw" raw 0xe2 4M 1M
make_domain "$A" transient "vda:$S1/a-vda.qcow2:qcow2" "vdb:$S2/a-vdb.qcow2:qcow2"
make_domain "$B" transient "vda:$S1/b-vda.raw:raw" "vdb:$S3/b-vdb.qcow2:qcow2"
make_domain "$C" transient "vda:$S1/c-vda.qcow2:qcow2" "vdb:$S3/c-vdb.qcow2:qcow2"
make_domain "$D" transient "vda:$S1/d-vda.qcow2:qcow2" "vdb:$S2/d-vdb.qcow2:qcow2"
E=$(dom_name e)
make_domain "$E" transient "vda:$S2/e-vda.qcow2:qcow2"
# s3 is also the dir pool $POOL.
POOL=smt-0070-$$
virsh -q pool-define-as "$POOL" dir --target "$S3" >/dev/null
defer "virsh -q pool-destroy '$POOL'; virsh -q pool-undefine '$POOL'"
virsh -q pool-start "$POOL" >/dev/null
# What the guests wrote live, before any rebalance: 64k of 0xee past the data.
DISKS="$A:vda $A:vdb $B:vda $B:vdb $C:vda $C:vdb $D:vda $D:vdb $E:vda"
live_off() {  # DOM:TARGET
	case "$1" in
	"$B:vda") echo 60M ;;
	"$B:vdb") echo 300M ;;
	"$C:vda" | "$D:vda") echo 50M ;;
	"$E:vda") echo 20M ;;
	*) echo 100M ;;
	esac
}
for dd in $DISKS; do
	guest_write "${dd%%:*}" "${dd#*:}" 0xee "$(live_off "$dd")" 64k
done

ALL=(--storage "$S1" --storage "$S2" --storage "$S3")

# Everything a command that changes nothing must leave as it was.
rb_world() {
	local dd
	for dd in $DISKS; do
		echo "$dd:"
		live_chain "${dd%%:*}" "${dd#*:}"
	done
	ls -l --time-style=+%s "$S1" "$S2" "$S3"
	sm list
	rb_sql "SELECT 'rebalances', count(*) FROM rebalance; SELECT 'moves', count(*) FROM rebalance_move"
}
journal_init   # for the queries of rb_world
rb_world >"$T/world.0"
assert_unchanged_world() {
	rb_world >"$T/world.now"
	diff -u "$T/world.0" "$T/world.now" >&2 || fail "$1 changed something (diff above)"
}

# The allocated bytes of a file, as st_blocks counts them.
alloc() {
	echo $(($(stat -c '%b * %B' "$1")))
}

case_json_dry_run() {
	local mark
	mark=$(ev_mark)
	expect_exit 0 sm --json rebalance "${ALL[@]}" --drain "$S1" --dry-run
	python3 -m json.tool "$T/out" >/dev/null || fail "--json --dry-run is not one JSON document"
	cp "$T/out" "$T/plan.json"
	assert_eq "$(pyjson "$T/plan.json" 'doc["dry_run"]')" true "dry_run"
	assert_eq "$(pyjson "$T/plan.json" 'sorted(doc)')" \
		'["bytes", "dry_run", "moves", "not_movable", "storages"]' "document keys"
	assert_eq "$(pyjson "$T/plan.json" '" ".join(sorted(m["domain"] + ":" + m["disk"] for m in doc["moves"]))')" \
		"$A:vda $B:vda $C:vda $D:vda" "the disks a drain of s1 moves"
	assert_eq "$(pyjson "$T/plan.json" '[(u["domain"], u["disk"]) for u in doc["not_movable"]]')" \
		"[[\"$E\", \"vda\"]]" "not movable"
	assert_contains "$T/plan.json" "its chain spans several file systems"
	# Each move's bytes are the allocated bytes of what moves: the overlays of
	# C and D, not the template they share.
	for x in "$A a-vda.qcow2" "$B b-vda.raw" "$C c-vda.qcow2" "$D d-vda.qcow2"; do
		assert_eq "$(pyjson "$T/plan.json" "[m['bytes'] for m in doc['moves'] if m['domain'] == '${x% *}'][0]")" \
			"$(alloc "$S1/${x#* }")" "bytes of ${x#* }"
	done
	# The figures are statvfs's, and the plan is the documented heuristic:
	# largest first, each to the storage with the most free space at that step.
	python3 - "$T/plan.json" "$S1" "$S2=$(free_bytes "$S2")" "$S3=$(free_bytes "$S3")" \
		"$S1=$(free_bytes "$S1")" <<'PY' || fail "the --json plan (above)"
import json, sys
doc = json.load(open(sys.argv[1]))
drained = sys.argv[2]
statvfs = {a.split("=")[0]: int(a.split("=")[1]) for a in sys.argv[3:]}
st = {s["name"]: s for s in doc["storages"]}
bad = []
free = {}
for name, f in statvfs.items():
    if abs(st[name]["free_before"] - f) > 64 * 1024:
        bad.append("%s: free_before %d, statvfs %d" % (name, st[name]["free_before"], f))
    if st[name]["dir"] != name:
        bad.append("%s: dir %s" % (name, st[name]["dir"]))
    free[name] = st[name]["free_before"]
margin = 80 << 20
last = None
for m in doc["moves"]:
    if not m["live"] or m["from"] != drained or m["to"] == drained:
        bad.append("move %s" % m)
    if last is not None and m["bytes"] > last:
        bad.append("move %d is larger than the one before" % m["seq"])
    last = m["bytes"]
    best = max((n for n in free if n != drained and free[n] >= m["bytes"] + margin),
               key=lambda n: free[n])
    if m["to"] != best:
        bad.append("move %d goes to %s, %s has the most free space" % (m["seq"], m["to"], best))
    free[m["to"]] -= m["bytes"]
    free[m["from"]] += m["bytes"]
for name in free:
    if st[name]["free_after"] != free[name]:
        bad.append("%s: free_after %d, the moves give %d" % (name, st[name]["free_after"], free[name]))
if doc["bytes"] != sum(m["bytes"] for m in doc["moves"]):
    bad.append("bytes %d" % doc["bytes"])
if bad:
    print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
	# A storage named by its pool: the same plan, under the pool's name.
	expect_exit 0 sm --json rebalance --storage "$S1" --storage "$S2" --storage "$POOL" \
		--drain "$S1" --dry-run
	assert_eq "$(pyjson "$T/out" '[s["name"] + "=" + s["dir"] for s in doc["storages"]][2]')" \
		"$POOL=$S3" "the pool storage"
	assert_eq "$(pyjson "$T/out" '[(m["domain"], m["disk"], m["to"]) for m in doc["moves"]]')" \
		"$(pyjson "$T/plan.json" '[(m["domain"], m["disk"], m["to"]) for m in doc["moves"]]' |
			sed "s|\"$S3\"|\"$POOL\"|g")" "the moves with s3 named by its pool"
	# --exclude and --include choose the domains.
	expect_exit 0 sm --json rebalance "${ALL[@]}" --drain "$S1" --dry-run --exclude "$A"
	assert_eq "$(pyjson "$T/out" 'sorted(m["domain"] for m in doc["moves"])')" \
		"[\"$B\", \"$C\", \"$D\"]" "moves with --exclude $A"
	expect_exit 0 sm --json rebalance "${ALL[@]}" --drain "$S1" --dry-run --include "$C" \
		--include "$B"
	assert_eq "$(pyjson "$T/out" 'sorted(m["domain"] for m in doc["moves"])')" \
		"[\"$B\", \"$C\"]" "moves with --include $C --include $B"
	assert_unchanged_world "--json --dry-run"
	ev_since "$mark" "$T/dry.events"
	[ ! -s "$T/dry.events" ] || { cat "$T/dry.events" >&2; fail "dry runs wrote events"; }
}
run_case "--json --dry-run: the plan as one JSON document, checked against statvfs" \
	case_json_dry_run

case_dry_run() {
	local mark
	mark=$(ev_mark)
	expect_exit 0 sm rebalance "${ALL[@]}" --drain "$S1" --dry-run
	assert_contains "$T/out" "dry run: nothing was changed"
	rb_plan "$T/out" >"$T/plan.dry"
	assert_eq "$(pyjson "$T/plan.dry" 'doc["nmoves"]')" 4 "moves in the dry run"
	rb_check_plan "$T/plan.dry" $((64 << 10)) "$S1" "$S2" "$S3"
	assert_unchanged_world "--dry-run"
	assert_eq "$(rb_sql 'SELECT count(*) FROM job')" 0 "jobs after dry runs"
	ev_since "$mark" "$T/dry.events"
	[ ! -s "$T/dry.events" ] || { cat "$T/dry.events" >&2; fail "a dry run wrote events"; }
}
run_case "--dry-run prints the plan and changes nothing" case_dry_run

case_impossible() {
	local mark
	mark=$(ev_mark)
	# s3's 200 MiB disk does not fit in s1 (200 MiB free, 80 MiB margin).
	expect_exit 3 sm rebalance --storage "$S1" --storage "$S3" --drain "$S3"
	assert_contains "$T/err" "snapmove: error: cannot drain '$S3'"
	assert_contains "$T/err" "disk vdb of domain '$B'"
	assert_contains "$T/err" "nothing was changed"
	[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "a refused rebalance printed a plan"; }
	expect_exit 3 sm rebalance "${ALL[@]}" --target-free 99
	# s3 is the furthest from 99% (495 MiB): the planner names it.
	assert_contains "$T/err" "snapmove: error: cannot reach 99% free on '$S3'"
	assert_contains "$T/err" "nothing was changed"
	# E's vda (on s2) has its base on s3: it cannot move, so s2 cannot drain.
	expect_exit 3 sm rebalance "${ALL[@]}" --drain "$S2"
	assert_contains "$T/err" "snapmove: error: cannot drain '$S2': disk vda of domain '$E' cannot be moved: its chain spans several file systems"
	# Two names of one file system.
	mkdir -p "$S1/sub"
	expect_exit 3 sm rebalance --storage "$S1" --storage "$S1/sub" --target-free 10
	rmdir "$S1/sub"
	assert_contains "$T/err" "storages '$S1' and '$S1/sub' are on one file system"
	# A drain name that is not one of the storages.
	expect_exit 3 sm rebalance --storage "$S1" --storage "$S2" --drain "$S3"
	assert_contains "$T/err" "'$S3'"
	assert_unchanged_world "an impossible goal"
	assert_eq "$(rb_sql 'SELECT count(*) FROM job')" 0 "jobs after refusals"
	# Each refusal ends with a refused result (no job), not a rebalance_result.
	ev_since "$mark" "$T/refused.events"
	rb_no_result "$T/refused.events"
	assert_eq "$(jev "$T/refused.events" '" ".join("%s:%s:%s" % (e["event"], e["status"], e["job"]) for e in events)')" \
		"$(printf 'result:refused:None %.0s' 1 2 3 4 5 | sed 's/ $//')" "the events of five refusals"
}
run_case "impossible goals are refused before anything moves" case_impossible

# Checks the data of every disk, wherever it is now (the domains are
# destroyed first, so nothing writes).
check_all_data() {
	local dd dom disk top fmt
	for dd in $DISKS; do
		dom=${dd%%:*} disk=${dd#*:}
		live_chain "$dom" "$disk" >"$T/chain.$dom.$disk"
	done
	for dd in $DISKS; do
		virsh -q destroy "${dd%%:*}" >/dev/null 2>&1 || true
	done
	for dd in $DISKS; do
		dom=${dd%%:*} disk=${dd#*:}
		read -r top fmt <"$T/chain.$dom.$disk"
		case "$dom:$disk" in
		"$A:vda") check_pattern "$top" "$fmt" 0xa1 0 40M ;;
		"$A:vdb") check_pattern "$top" "$fmt" 0xa2 0 30M ;;
		"$B:vda") check_pattern "$top" "$fmt" 0xb1 0 30M ;;
		"$B:vdb") check_pattern "$top" "$fmt" 0xb2 0 200M ;;
		"$C:vda") check_pattern "$top" "$fmt" 0x77 0 20M
			check_pattern "$top" "$fmt" 0xc1 32M 4M ;;
		"$C:vdb") check_pattern "$top" "$fmt" 0xc2 0 25M ;;
		"$D:vda") check_pattern "$top" "$fmt" 0x77 0 20M
			check_pattern "$top" "$fmt" 0xd1 32M 6M ;;
		"$D:vdb") check_pattern "$top" "$fmt" 0xd2 0 20M ;;
		"$E:vda") check_pattern "$top" "$fmt" 0xe1 0 2M
			check_pattern "$top" "$fmt" 0xe2 4M 1M ;;
		esac
		check_pattern "$top" "$fmt" 0xee "$(live_off "$dd")" 64k
	done
}

case_target_free() {
	local before2 before3 bytes mark
	before2=$(free_bytes "$S2") before3=$(free_bytes "$S3")
	mark=$(ev_mark)
	# s3 (about 275 of 500 MiB free) is short of 58%; its smallest disk that
	# covers the shortfall is C's vdb (25 MiB), and only s2 keeps its share
	# with it (s1 would need 25 + 80 + 174 MiB free).
	expect_exit 0 sm --json rebalance "${ALL[@]}" --target-free 58
	grep '"event":"rebalance_plan"' "$T/out" >"$T/plan.tf" ||
		fail "no rebalance_plan event: $(cat "$T/out" "$T/err")"
	assert_eq "$(pyjson "$T/plan.tf" '[(m["domain"], m["disk"], m["from"], m["to"]) for m in doc["moves"]]')" \
		"[[\"$C\", \"vdb\", \"$S3\", \"$S2\"]]" "the --target-free plan"
	bytes=$(pyjson "$T/plan.tf" 'doc["bytes"]')
	# It ends with its rebalance_result, and the events file got the same
	# lines as stdout (the move's own included).
	cp "$T/out" "$T/tf.events"
	rb_result "$T/tf.events" done 0 "1:done"
	ev_since "$mark" "$T/tf.file"
	diff -u <(sort "$T/tf.events") <(sort "$T/tf.file") >&2 ||
		fail "the events file differs from --json's stdout (above)"
	assert_eq "$(pyjson "$T/plan.tf" 'doc["moves"][0]["bytes"]')" "$bytes" "bytes of the move"
	assert_eq "$(top_image "$C" vdb)" "$S2/c-vdb.qcow2" "C's vdb after --target-free"
	assert_absent "$S3/c-vdb.qcow2"
	for d in "$S1:300" "$S2:400" "$S3:500"; do
		[ "$(free_bytes "${d%:*}")" -ge $((${d#*:} * 58 * 1048576 / 100)) ] ||
			fail "${d%:*} has $(free_bytes "${d%:*}") bytes free, under 58% of ${d#*:} MiB"
	done
	# The source got back exactly the bytes the plan said; the destination
	# lost them, give or take the copy's own metadata.
	assert_eq "$(($(free_bytes "$S3") - before3))" "$bytes" "bytes freed on s3"
	python3 -c 'import sys; d = int(sys.argv[1]) - int(sys.argv[2]); b = int(sys.argv[3])
sys.exit(0 if abs(d - b) <= (1 << 20) else "s2 lost %d bytes, the plan said %d" % (d, b))' \
		"$before2" "$(free_bytes "$S2")" "$bytes" || fail "bytes taken on s2"
	assert_eq "$(jobs_of "$C" vdb done)" 1 "done jobs of C's vdb"
	assert_eq "$(rb_sql 'SELECT count(*) FROM job')" 1 "jobs"
	assert_eq "$(rb_sql "SELECT goal, state FROM rebalance")" "target-free 58|done" "rebalance"
	# Met now: nothing more to do, a rebalance_result with no rebalance and
	# no move.
	mark=$(ev_mark)
	expect_exit 0 sm rebalance "${ALL[@]}" --target-free 58
	assert_contains "$T/out" "nothing to move: the goal is already met"
	ev_since "$mark" "$T/met.events"
	rb_result "$T/met.events" done 0 "" null
	assert_eq "$(rb_sql 'SELECT count(*) FROM job')" 1 "jobs after the second --target-free"
}
run_case "--target-free 58: every storage keeps 58% free, the plan's bytes moved" case_target_free

case_drain() {
	local dd n mark
	mark=$(ev_mark)
	expect_exit 0 sm rebalance "${ALL[@]}" --drain "$S1"
	cp "$T/out" "$T/drain.out"
	cp "$T/err" "$T/drain.err"
	# Without --json: events in the file only, the moves' too.
	ev_since "$mark" "$T/drain.events"
	rb_result "$T/drain.events" done 0 "1:done 2:done 3:done 4:done"
	assert_eq "$(jev "$T/drain.events" 'len(ev("rebalance_plan"))')" 1 "rebalance_plan events of the drain"
	assert_eq "$(jev "$T/drain.events" 'len(ev("result"))')" 4 "result events of the drain's moves"
	if grep -n '^[[:space:]]*{\|"event"' "$T/drain.out" "$T/drain.err" >&2; then
		fail "JSON on stdout or stderr of a rebalance without --json (above)"
	fi
	rb_plan "$T/drain.out" >"$T/plan.drain"
	n=$(pyjson "$T/plan.drain" 'doc["nmoves"]')
	assert_eq "$n" 4 "moves of the drain"
	# The figures were statvfs's when it planned: compare with what the
	# statvfs says now against the plan's 'after' (the sources are deleted).
	python3 - "$T/plan.drain" "$S1=$(free_bytes "$S1")" "$S2=$(free_bytes "$S2")" \
		"$S3=$(free_bytes "$S3")" <<'PY' || fail "free space after the drain (above)"
import json, sys
plan = json.load(open(sys.argv[1]))
now = {a.split("=")[0]: int(a.split("=")[1]) for a in sys.argv[2:]}
bad = []
for s in plan["storages"]:
    if abs(now[s["name"]] - s["free_after"]) > 2 << 20:
        bad.append("%s: %d free now, the plan said %d after" % (s["name"], now[s["name"]],
                                                              s["free_after"]))
if bad:
    print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
	# The plan's 'before' was statvfs's then: s1 now has its moved bytes back.
	rb_sql "SELECT domain, disk, to_dir, state, job_id FROM rebalance_move WHERE
		rebalance_id = (SELECT max(id) FROM rebalance) ORDER BY seq" >"$T/moves"
	assert_eq "$(cut -d'|' -f4 "$T/moves" | sort -u)" done "states of the drain's moves"
	assert_eq "$(rb_sql 'SELECT state FROM rebalance WHERE id = (SELECT max(id) FROM rebalance)')" \
		done "the drain's state"
	# Every disk is where the plan said, each move one done job.
	pyjson "$T/plan.drain" '"\n".join("%s %s %s" % (m["domain"], m["disk"], m["to"]) for m in doc["moves"])' |
	while read -r dom disk to; do
		top=$(top_image "$dom" "$disk")
		assert_eq "$(dirname "$top")" "$to" "where $dom $disk runs"
		assert_eq "$(jobs_of "$dom" "$disk")" 1 "jobs of $dom $disk"
		assert_eq "$(jobs_of "$dom" "$disk" done)" 1 "done jobs of $dom $disk"
		grep -qF "$dom|$disk|$to|done|" "$T/moves" || fail "no done move of $dom $disk to $to"
	done
	assert_eq "$(rb_sql 'SELECT count(*) FROM job')" 5 "jobs in all (one --target-free, four drain)"
	assert_eq "$(rb_sql "SELECT count(*) FROM job WHERE state != 'done'")" 0 "unfinished jobs"
	[ "$(sm list | grep -c ' done ')" = 5 ] || { sm list >&2; fail "'snapmove list' does not show 5 done jobs"; }
	# What stays on s1: only the template C and D share; it stays their base.
	assert_eq "$(ls -A "$S1")" tmpl.raw "what is left on s1"
	for dom in "$C" "$D"; do
		assert_eq "$(live_chain "$dom" vda | sed -n 2p)" "$S1/tmpl.raw raw" "$dom's vda base"
	done
	assert_contains "$T/drain.err" "4 of 4 moves done, 0 failed"
}
run_case "drain s1: all but the shared template moves" case_drain

# Under --target-free, a disk that cannot move is listed with its reason.
case_not_movable_listed() {
	expect_exit 0 sm rebalance "${ALL[@]}" --target-free 10 --dry-run
	assert_contains "$T/out" "nothing to move: the goal is already met"
	assert_contains "$T/out" "not movable: $E disk vda on $S2: its chain spans several file systems"
}
run_case "a disk that cannot move is listed as such" case_not_movable_listed

run_case "every disk's data is intact" check_all_data

cases_done
