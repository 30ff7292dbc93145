#!/usr/bin/env bash
# --json: every line snapmove writes on stdout during move (live and
# --offline), resume, abort and rebalance is one event that
# docs/events.schema.json accepts, in the documented order, with progress
# throttled and a final result whose chains are the real ones; human text goes
# to stderr.  list, status, chain, move --dry-run and rebalance --dry-run print
# one valid document, and so do the examples of docs/events.md.  Both
# spellings work: 'snapmove --json move' and 'move ... --json'.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"

MOVE_PHASES="snapshot:start snapshot:done dest_chain:start dest_chain:done mirror:start mirror:done copy:start copy:done sync:start sync:done pivot:start pivot:done collapse:start collapse:done finalize:start finalize:done"
RESUME_PHASES="snapshot:start snapshot:done dest_chain:start dest_chain:done copy:start copy:done mirror:start mirror:done sync:start sync:done pivot:start pivot:done collapse:start collapse:done finalize:start finalize:done"

phases_of() {  # FILE: "phase:status" of each phase event, space-separated
	jev "$1" '" ".join(e["phase"] + ":" + e["status"] for e in ev("phase"))'
}

# The last line is the one result event, with this status and exit.
assert_result() {  # FILE STATUS EXIT
	assert_eq "$(jev "$1" 'len(ev("result"))')" 1 "result events in $1"
	assert_eq "$(jev "$1" 'events[-1]["event"]')" result "last event of $1"
	assert_eq "$(jev "$1" 'events[-1]["status"]')" "$2" "result status in $1"
	assert_eq "$(jev "$1" 'events[-1]["exit"]')" "$3" "result exit in $1"
}

# Every event of FILE is about job JOB, and their times do not go back.
assert_one_job() {  # FILE JOB
	assert_eq "$(jev "$1" 'sorted(set(e["job"] for e in events))')" "$2" "jobs in $1"
	assert_eq "$(jev "$1" 'all(a["time"] <= b["time"] for a, b in zip(events, events[1:]))')" \
		true "event times in $1"
}

# A chain of the result's disk TARGET, as live_chain prints it.
result_chain() {  # FILE TARGET before|after
	jev "$1" "[chain(d[\"$3\"]) for d in events[-1][\"disks\"] if d[\"target\"] == \"$2\"]"
}

# Each image of a chain exists and its header points at the next one.
assert_chain_files() {  # "path format" lines
	local lines=$1 path fmt prev="" prevfmt=""
	while read -r path fmt; do
		[ -f "$path" ] || fail "'$path' of the chain does not exist"
		if [ -n "$prev" ]; then
			assert_eq "$(backing_of "$prev" "$prevfmt")" "$path" "backing of '$prev'"
		fi
		prev=$path
		prevfmt=$fmt
	done <<<"$lines"
	[ "$prevfmt" = raw ] || assert_eq "$(backing_of "$prev" "$prevfmt")" "" "backing of '$prev'"
}

mkdir -m 755 "$T/a" "$T/a-dst" "$T/b" "$T/b-dst" "$T/c" "$T/c-dst" "$T/d" "$T/d-dst" \
	"$T/dry" "$T/p" "$T/p-dst" "$T/k" "$T/k-dst" "$T/r" "$T/r-dst" "$T/f" "$T/f-dst" "$T/tpl" "$T/s" "$T/s-dst"

# A: two disks, a qcow2 over a qcow2 base with 40 MiB of data, and a raw disk.
new_image "$T/a/base.qcow2" qcow2 256M 0x11 0 40M
new_overlay "$T/a/top.qcow2" "$T/a/base.qcow2" qcow2 0x12 40M 1M
new_image "$T/a/data.raw" raw 32M 0x13 0 8M
doma=$(dom_name a)
make_domain "$doma" transient "vda:$T/a/top.qcow2:qcow2" "vdb:$T/a/data.raw:raw"
for x in b c d k r f p; do
	new_image "$T/$x/disk.qcow2" qcow2 64M 0x21 0 1M
	make_domain "$(dom_name "$x")" persistent "vda:$T/$x/disk.qcow2:qcow2"
done
# S: a template shared with another domain stays where it is.
new_image "$T/tpl/template.raw" raw 64M 0x31 0 1M
new_overlay "$T/s/s.qcow2" "$T/tpl/template.raw" raw 0x32 1M 1M
new_overlay "$T/s/other.qcow2" "$T/tpl/template.raw" raw 0x33 1M 1M
make_domain "$(dom_name s)" persistent "vda:$T/s/s.qcow2:qcow2"
make_domain "$(dom_name other)" transient "vda:$T/s/other.qcow2:qcow2"
# OFF: shut off, moved with --offline.
mkdir -m 755 "$T/off" "$T/off-dst"
new_image "$T/off/off.qcow2" qcow2 64M 0x41 0 2M
make_domain_xml "$(dom_name off)" defined "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$T/off/off.qcow2'/><target dev='vda' bus='virtio'/></disk>"
# Two storages (separate file systems) for a rebalance of RBA (running) and
# RBB (shut off).
for x in rb1 rb2; do
	mkdir -m 755 "$T/$x"
	mount -t tmpfs -o size=200M tmpfs "$T/$x"
	chmod 755 "$T/$x"
	SM_MOUNTS+=("$T/$x")
done
new_image "$T/rb1/rba.qcow2" qcow2 64M 0x51 0 8M
new_image "$T/rb1/rbb.qcow2" qcow2 64M 0x52 0 4M
make_domain "$(dom_name rba)" transient "vda:$T/rb1/rba.qcow2:qcow2"
make_domain_xml "$(dom_name rbb)" defined "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$T/rb1/rbb.qcow2'/><target dev='vda' bus='virtio'/></disk>"

case_move() {
	local before_a before_b out=$T/a.out err=$T/a.err
	before_a=$(live_chain "$doma" vda)
	before_b=$(live_chain "$doma" vdb)
	# 48 MiB at 16 MiB/s: about three seconds of copy progress per disk.
	expect_exit 0 sm --json move "$doma" --dest "$T/a-dst" --bandwidth 16
	cp "$T/out" "$out"
	cp "$T/err" "$err"
	assert_events "$out"
	assert_eq "$(jev "$out" 'events[0]["job"]')" 1 "the first job"
	assert_one_job "$out" 1
	assert_eq "$(phases_of "$out")" "$MOVE_PHASES" "phase events of a move"
	assert_result "$out" done 0
	assert_eq "$(jev "$out" '"error" in events[-1]')" false "an error in a done result"
	assert_eq "$(jev "$out" 'events[-1]["domain"]')" "$doma" "domain of the result"
	assert_eq "$(jev "$out" '" ".join(d["target"] + ":" + d["state"] for d in events[-1]["disks"])')" \
		"vda:done vdb:done" "disks of the result"
	# Human text on stderr only.
	assert_contains "$err" "moved domain $doma"
	assert_contains "$err" "taking the snapshot"
	! grep -q "moved domain" "$out" || fail "human text on stdout under --json"

	# The chains of the result are the real ones.
	assert_eq "$(result_chain "$out" vda before)" "$before_a" "vda before, in the result"
	assert_eq "$(result_chain "$out" vdb before)" "$before_b" "vdb before, in the result"
	assert_eq "$(result_chain "$out" vda after)" "$(live_chain "$doma" vda)" "vda after = live chain"
	assert_eq "$(result_chain "$out" vdb after)" "$(live_chain "$doma" vdb)" "vdb after = live chain"
	assert_eq "$(result_chain "$out" vda after)" "$T/a-dst/top.qcow2 qcow2
$T/a-dst/base.qcow2 qcow2" "vda after"
	assert_eq "$(result_chain "$out" vdb after)" "$T/a-dst/data.raw raw" "vdb after"
	assert_chain_files "$(result_chain "$out" vda after)"
	assert_chain_files "$(result_chain "$out" vda before)"

	# Progress: copies of each image, done never above total and never going
	# back, each copy ending at its total.
	assert_eq "$(jev "$out" 'sorted(set(e["disk"] + " " + e["image"] for e in ev("progress") if e["kind"] == "copy"))')" \
		"vda $T/a/base.qcow2
vda $T/a/top.qcow2
vdb $T/a/data.raw" "images with copy progress"
	"$SM_PY" - "$out" <<'PY' || fail "progress events are not throttled or not consistent (above)"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
prog = [e for e in events if e["event"] == "progress"]
bad = []
last = {}
for e in prog:
    if e["done"] > e["total"]:
        bad.append("done above total: %r" % e)
    key = (e["disk"], e["kind"], e.get("image"))
    if key in last and e["done"] < last[key]["done"]:
        bad.append("progress went back: %r after %r" % (e, last[key]))
    last[key] = e
for key, e in last.items():
    if key[1] == "copy" and e["done"] != e["total"]:
        bad.append("the last progress of %r is not at its total: %r" % (key, e))
# At most ten a second per disk and kind: 0.1 s between reports, except the
# last one of an image (done == total), which always goes out.
for disk in set(e["disk"] for e in prog):
    for kind in set(e["kind"] for e in prog if e["disk"] == disk):
        mid = [e for e in prog if e["disk"] == disk and e["kind"] == kind
               and e["done"] < e["total"]]
        for a, b in zip(mid, mid[1:]):
            if b["time"] - a["time"] < 0.09:
                bad.append("%s %s: two reports %.3f s apart" % (disk, kind, b["time"] - a["time"]))
    # and in any one second, at most 10 plus the ends of the images copied then
    times = [e["time"] for e in prog if e["disk"] == disk]
    for i, t in enumerate(times):
        n = len([u for u in times[i:] if u < t + 1.0])
        if n > 12:
            bad.append("%s: %d progress events within one second" % (disk, n))
            break
if len([e for e in prog if e["disk"] == "vda" and e["kind"] == "copy"]) < 10:
    bad.append("fewer than 10 copy progress events for vda over a 3 s copy")
for b in bad[:20]:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
	# chain --json names the same chains.
	expect_exit 0 sm chain --json "$doma"
	cp "$T/out" "$T/chain-a.json"
	assert_document chain "$T/chain-a.json"
	assert_eq "$(jdoc "$T/chain-a.json" '[chain(d["chain"]) for d in doc["disks"] if d["target"] == "vda"]')" \
		"$(live_chain "$doma" vda)" "vda in chain --json"
	assert_eq "$(jdoc "$T/chain-a.json" '[d["target"] + ":" + str(d["movable"]) for d in doc["disks"]]')" \
		"vda:True
vdb:True" "disks in chain --json"
	expect_exit 0 sm --json chain "$doma" vdb
	assert_document chain "$T/out"
	assert_eq "$(jdoc "$T/out" '[chain(d["chain"]) for d in doc["disks"]]')" "$T/a-dst/data.raw raw" \
		"chain --json of one disk"
	assert_eq "$(jdoc "$T/out" 'doc["disks"][0]["chain"][0]["virtual_size"]')" 33554432 \
		"virtual size of data.raw"
	expect_exit 3 sm chain --json "$doma" vdz
	[ ! -s "$T/out" ] || fail "chain of an unknown disk printed on stdout"
	assert_contains "$T/err" "has no disk 'vdz'"
}
run_case "a move with --json: events, order, throttled progress, the result's chains" case_move

case_fail_resume() {
	local dom before job
	dom=$(dom_name b)
	before=$(live_chain "$dom" vda)
	make_write_hook "$dom" vda copy:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom" --dest "$T/b-dst" --json
	cp "$T/out" "$T/b.out"
	assert_events "$T/b.out"
	job=$(jev "$T/b.out" 'events[0]["job"]')
	assert_one_job "$T/b.out" "$job"
	assert_eq "$(phases_of "$T/b.out")" "snapshot:start snapshot:done dest_chain:start dest_chain:done mirror:start mirror:done copy:start copy:failed" \
		"phase events of a failed move"
	assert_eq "$(jev "$T/b.out" '[e["error"] for e in ev("phase") if e["status"] == "failed"]')" \
		"'$T/hook copy' failed (exit 1): test hook fails copy" "error of the failed phase"
	assert_result "$T/b.out" failed 1
	assert_eq "$(jev "$T/b.out" '"test hook fails copy" in events[-1]["error"]')" true "error of the result"
	assert_eq "$(result_chain "$T/b.out" vda before)" "$before" "before, failed move"
	assert_eq "$(result_chain "$T/b.out" vda after)" "$(live_chain "$dom" vda)" "after = live chain, failed move"
	assert_eq "$(result_chain "$T/b.out" vda after)" "$T/b-dst/disk.qcow2.snapmove-$job.src.qcow2 qcow2
$T/b/disk.qcow2 qcow2" "a failed move leaves the domain on its overlay"
	assert_contains "$T/err" "snapmove resume $job"

	expect_exit 0 sm status --json "$job"
	assert_document status "$T/out"
	assert_eq "$(jdoc "$T/out" 'doc["state"] + " " + doc["phase"] + " " + doc["next"]["resume"]')" \
		"failed copy snapmove resume $job" "status --json of the failed job"

	expect_exit 0 sm --json resume "$job"
	cp "$T/out" "$T/b-resume.out"
	assert_events "$T/b-resume.out"
	assert_one_job "$T/b-resume.out" "$job"
	assert_eq "$(phases_of "$T/b-resume.out")" "$RESUME_PHASES" "phase events of a resume"
	assert_result "$T/b-resume.out" done 0
	assert_eq "$(result_chain "$T/b-resume.out" vda before)" "$before" "before, resume"
	assert_eq "$(result_chain "$T/b-resume.out" vda after)" "$T/b-dst/disk.qcow2 qcow2" "after, resume"
	assert_eq "$(live_chain "$dom" vda)" "$T/b-dst/disk.qcow2 qcow2" "live chain after the resume"
	assert_contains "$T/err" "finished job $job"

	# Resuming a finished job is refused: one result, no job yet.
	expect_exit 3 sm resume "$job" --json
	assert_events "$T/out"
	assert_eq "$(wc -l <"$T/out")" 1 "lines of a refused resume"
	assert_result "$T/out" refused 3
	assert_contains "$T/out" "nothing to resume"
}
run_case "a failed move (move ... --json), then resume --json" case_fail_resume

case_fail_abort() {
	local dom before job
	dom=$(dom_name c)
	before=$(live_chain "$dom" vda)
	make_write_hook "$dom" vda copy:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm --json move "$dom" --dest "$T/c-dst"
	assert_events "$T/out"
	assert_result "$T/out" failed 1
	job=$(jev "$T/out" 'events[-1]["job"]')
	expect_exit 0 sm abort "$job" --json
	cp "$T/out" "$T/c-abort.out"
	assert_events "$T/c-abort.out"
	assert_one_job "$T/c-abort.out" "$job"
	assert_result "$T/c-abort.out" aborted 0
	assert_eq "$(jev "$T/c-abort.out" 'len(ev("phase"))')" 0 "phase events of an abort"
	assert_eq "$(result_chain "$T/c-abort.out" vda after)" "$before" "after an abort: the original chain"
	assert_eq "$(live_chain "$dom" vda)" "$before" "live chain after the abort"
	assert_eq "$(ls -A "$T/c-dst")" "" "destination after the abort"
	assert_contains "$T/err" "aborted job $job"
	expect_exit 0 sm --json status "$job"
	assert_document status "$T/out"
	assert_eq "$(jdoc "$T/out" 'doc["state"] + " " + str("next" in doc)')" "aborted False" \
		"status --json of the aborted job"
	# Aborting it again is refused, with one result line.
	expect_exit 3 sm --json abort "$job"
	assert_events "$T/out"
	assert_eq "$(wc -l <"$T/out")" 1 "lines of a refused abort"
	assert_result "$T/out" refused 3
}
run_case "a failed move, then abort --json" case_fail_abort

# After the pivot, abort moves the disk back: progress of another kind.
case_abort_after_pivot() {
	local dom before job
	dom=$(dom_name p)
	before=$(live_chain "$dom" vda)
	make_write_hook "$dom" vda collapse:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm --json move "$dom" --dest "$T/p-dst"
	assert_events "$T/out"
	assert_result "$T/out" failed 1
	job=$(jev "$T/out" 'events[-1]["job"]')
	assert_eq "$(jev "$T/out" 'events[-1]["disks"][0]["state"]')" pivoted "disk state after a failed collapse"
	assert_eq "$(result_chain "$T/out" vda after)" "$(live_chain "$dom" vda)" "after = live chain, pivoted"
	expect_exit 0 sm --json abort "$job"
	assert_events "$T/out"
	assert_result "$T/out" aborted 0
	# (how many depends on how soon each block job is ready)
	assert_eq "$(jev "$T/out" 'set(e["kind"] for e in ev("progress")) <= {"moving back", "commit back"}')" \
		true "progress kinds of an abort after the pivot"
	assert_eq "$(result_chain "$T/out" vda after)" "$before" "after the abort: the original chain"
	assert_eq "$(live_chain "$dom" vda)" "$before" "live chain after the abort"
}
run_case "abort --json after the pivot" case_abort_after_pivot

case_abort_refused_after_fold() {
	local dom job
	dom=$(dom_name d)
	make_write_hook "$dom" vda finalize:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm --json move "$dom" --dest "$T/d-dst"
	assert_events "$T/out"
	assert_result "$T/out" failed 1
	job=$(jev "$T/out" 'events[-1]["job"]')
	# The job found, then refused: one result event, not two.
	expect_exit 3 sm --json abort "$job"
	cp "$T/out" "$T/d-abort.out"
	expect_exit 0 sm --json resume "$job"
	assert_events "$T/out"
	assert_result "$T/out" done 0
	assert_events "$T/d-abort.out"
	assert_contains "$T/d-abort.out" "snapmove resume $job"
	assert_eq "$(jev "$T/d-abort.out" 'len(ev("result"))')" 1 \
		"result events of an abort refused after the fold (src/cli/cmd_resume.c emits a second one)"
	assert_result "$T/d-abort.out" refused 3
}
run_case "abort refused once the overlay is folded: one result event" case_abort_refused_after_fold

case_dry_run() {
	local dom=$doma
	save_state dry "$dom" vda "$T/a-dst" "$T/dry"
	expect_exit 0 sm --json move "$dom" --dest "$T/dry" --dry-run
	cp "$T/out" "$T/dry.json"
	assert_document dry_run "$T/dry.json"
	assert_unchanged dry
	assert_eq "$(jdoc "$T/dry.json" '[chain(d["before"]) for d in doc["disks"] if d["target"] == "vda"]')" \
		"$(live_chain "$dom" vda)" "dry run: vda before"
	assert_eq "$(jdoc "$T/dry.json" '[chain(d["after"]) for d in doc["disks"] if d["target"] == "vda"]')" \
		"$T/dry/top.qcow2 qcow2
$T/dry/base.qcow2 qcow2" "dry run: vda after"
	assert_eq "$(jdoc "$T/dry.json" 'doc["bytes_to_copy"] == sum(d["bytes"] for d in doc["disks"]) and doc["bytes_to_copy"] > 48 << 20')" \
		true "dry run: bytes to copy"
	assert_eq "$(jdoc "$T/dry.json" 'doc["dest"] + " " + str(doc["dest_free"] > 0)')" "$T/dry True" "dry run: dest"
	assert_eq "$(jdoc "$T/dry.json" 'doc["overlay_dir"]')" "$T/dry" "dry run: the overlays' folder"
	# --keep-overlay: the domain would end on an overlay over the moved chain.
	expect_exit 0 sm move "$dom" --dest "$T/dry" --dry-run --keep-overlay --disk vda --json
	assert_document dry_run "$T/out"
	assert_eq "$(jdoc "$T/out" '[i["path"] for i in doc["disks"][0]["after"]][1:]')" "$T/dry/top.qcow2
$T/dry/base.qcow2" "dry run --keep-overlay: below the overlay"
	assert_eq "$(jdoc "$T/out" 'doc["disks"][0]["after"][0]["path"].startswith("'"$T"'/dry/top.qcow2.snapmove-")')" \
		true "dry run --keep-overlay: the overlay"
	assert_unchanged dry
	# Refused: one result line, nothing else on stdout.
	expect_exit 3 sm --json move "$dom" --dest "$T/nonexistent"
	assert_events "$T/out"
	assert_eq "$(wc -l <"$T/out")" 1 "lines of a refused move"
	assert_result "$T/out" refused 3
	assert_eq "$(jev "$T/out" 'events[0]["job"] is None')" true "job of a refused move"
	assert_unchanged dry
	# A shared template: kept, and who uses it.
	expect_exit 0 sm move "$(dom_name s)" --dest "$T/s-dst" --dry-run --json
	assert_document dry_run "$T/out"
	assert_eq "$(jdoc "$T/out" 'doc["disks"][0]["kept"]')" "$T/tpl/template.raw" "dry run: kept"
	assert_contains "$T/out" "$(dom_name other)"
}
run_case "move --dry-run --json: the plan, nothing changed" case_dry_run

case_offline() {
	local dom
	dom=$(dom_name off)
	expect_exit 0 sm --json move "$dom" --dest "$T/off-dst" --offline
	assert_events "$T/out"
	assert_result "$T/out" done 0
	assert_eq "$(jev "$T/out" 'len(ev("phase"))')" 0 "phase events of an offline move"
	assert_eq "$(result_chain "$T/out" vda before)" "$T/off/off.qcow2 qcow2" "before, offline"
	assert_eq "$(result_chain "$T/out" vda after)" "$T/off-dst/off.qcow2 qcow2" "after, offline"
	assert_eq "$(live_chain "$dom" vda --inactive)" "$T/off-dst/off.qcow2 qcow2" "definition after an offline move"
}
run_case "move --offline --json" case_offline

case_rebalance() {
	local a b
	a=$(dom_name rba)
	b=$(dom_name rbb)
	expect_exit 0 sm --json rebalance --storage "$T/rb1" --storage "$T/rb2" --drain "$T/rb1" \
		--include-offline --dry-run
	cp "$T/out" "$T/rb-dry.json"
	assert_document rebalance_dry_run "$T/rb-dry.json"
	assert_eq "$(jdoc "$T/rb-dry.json" 'sorted(m["domain"] + ":" + str(m["live"]) for m in doc["moves"])')" \
		"$a:True
$b:False" "moves of the rebalance dry run"
	assert_eq "$(ls "$T/rb1" | tr '\n' ' ')" "rba.qcow2 rbb.qcow2 " "rb1 after the dry run"

	expect_exit 0 sm --json rebalance --storage "$T/rb1" --storage "$T/rb2" --drain "$T/rb1" \
		--include-offline --max-parallel 2
	cp "$T/out" "$T/rb.out"
	assert_events "$T/rb.out"
	assert_eq "$(jev "$T/rb.out" 'events[0]["event"]')" rebalance_plan "first event of a rebalance"
	assert_eq "$(jev "$T/rb.out" 'len(ev("rebalance_plan"))')" 1 "plan events"
	# One result per planned move, each done, and each job's events in order.
	assert_eq "$(jev "$T/rb.out" 'sorted(e["domain"] + ":" + e["status"] for e in ev("result"))')" \
		"$a:done
$b:done" "results of the rebalance's moves"
	# It ends with its rebalance_result: done, each move with its job.
	assert_eq "$(jev "$T/rb.out" 'events[-1]["event"] + " " + events[-1]["status"] + " " + str(events[-1]["exit"])')" \
		"rebalance_result done 0" "the last event of a rebalance"
	assert_eq "$(jev "$T/rb.out" 'sorted("%s:%s:%s" % (m["domain"], m["job"], m["status"]) for m in events[-1]["moves"])')" \
		"$(jev "$T/rb.out" 'sorted("%s:%s:done" % (e["domain"], e["job"]) for e in ev("result"))')" \
		"the moves of the rebalance_result"
	local job
	for job in $(jev "$T/rb.out" '[str(e["job"]) for e in ev("result")]'); do
		jev "$T/rb.out" "[e for e in events if e.get('job') == $job]" >"$T/rb-job.out"
		assert_eq "$(jev "$T/rb-job.out" 'events[-1]["event"]')" result "last event of job $job"
		if [ "$(jev "$T/rb-job.out" 'events[-1]["domain"]')" = "$a" ]; then
			assert_eq "$(phases_of "$T/rb-job.out")" "$MOVE_PHASES" "phases of job $job"
		else
			assert_eq "$(phases_of "$T/rb-job.out")" "" "phases of the offline job $job"
		fi
	done
	assert_eq "$(live_chain "$a" vda)" "$T/rb2/rba.qcow2 qcow2" "chain of $a after the rebalance"
	assert_eq "$(live_chain "$b" vda --inactive)" "$T/rb2/rbb.qcow2 qcow2" "chain of $b after the rebalance"
}
run_case "rebalance --json: the plan, then each move's events" case_rebalance

# More kinds of jobs, for the result event and status --json of each.
case_scenarios() {
	local dom
	dom=$(dom_name k)
	expect_exit 0 sm --json move "$dom" --dest "$T/k-dst" --keep-overlay
	assert_events "$T/out"
	assert_result "$T/out" done 0
	assert_eq "$(result_chain "$T/out" vda after)" "$(live_chain "$dom" vda)" "after, --keep-overlay"
	assert_eq "$(jev "$T/out" '"collapse" in [e["phase"] for e in ev("phase")]')" false \
		"a collapse phase with --keep-overlay"
	dom=$(dom_name r)
	expect_exit 0 sm --json move "$dom" --dest "$T/r-dst" --dest-format raw
	assert_events "$T/out"
	assert_result "$T/out" done 0
	assert_eq "$(result_chain "$T/out" vda after)" "$T/r-dst/disk.qcow2 raw" "after, --dest-format raw"
	dom=$(dom_name f)
	expect_exit 0 sm --json move "$dom" --dest "$T/f-dst" --flatten
	assert_events "$T/out"
	assert_result "$T/out" done 0
	dom=$(dom_name s)
	expect_exit 0 sm --json move "$dom" --dest "$T/s-dst"
	assert_events "$T/out"
	assert_result "$T/out" done 0
	assert_eq "$(result_chain "$T/out" vda after)" "$T/s-dst/s.qcow2 qcow2
$T/tpl/template.raw raw" "after, with a shared template"
	assert_eq "$(result_chain "$T/out" vda after)" "$(live_chain "$dom" vda)" "after = live, shared template"

	# Every job of this test, whatever its end, has a valid status document.
	expect_exit 0 sm list --json
	cp "$T/out" "$T/list.json"
	assert_document list "$T/list.json"
	local n=0 id
	for id in $(jdoc "$T/list.json" '[str(j["job"]) for j in doc["jobs"]]'); do
		expect_exit 0 sm status "$id" --json
		assert_document status "$T/out"
		assert_eq "$(jdoc "$T/out" 'doc["job"]')" "$id" "job of status --json $id"
		n=$((n + 1))
	done
	[ "$n" -ge 8 ] || fail "only $n jobs in list --json"
	assert_eq "$(jdoc "$T/list.json" 'sorted(set(j["state"] for j in doc["jobs"]))')" "aborted
done" "job states in the list"
	# The kept template in status --json.
	id=$(jdoc "$T/list.json" '[j["job"] for j in doc["jobs"] if j["domain"] == "'"$(dom_name s)"'"]')
	expect_exit 0 sm status "$id" --json
	assert_eq "$(jdoc "$T/out" 'doc["disk_states"][0]["kept"]')" "$T/tpl/template.raw" \
		"status --json: the kept template"
}
run_case "keep-overlay, dest-format, flatten, a shared template; list and status --json of every job" \
	case_scenarios

# The examples of docs/events.md are valid too.
case_doc_examples() {
	"$SM_PY" - "$TOP/docs/events.md" "$T/doc" <<'PY' || fail "cannot extract the examples of docs/events.md"
import json, os, re, sys
text = open(sys.argv[1]).read()
os.makedirs(sys.argv[2])
n = 0
for block in re.findall(r"```json\n(.*?)\n```", text, re.S):
    n += 1
    if block.startswith('{"'):
        name = "events"
    else:
        doc = json.loads(block)
        name = ("list" if "jobs" in doc else "rebalance_dry_run" if "moves" in doc
                else "dry_run" if "dry_run" in doc
                else "status" if "disk_states" in doc else "chain")
    with open(os.path.join(sys.argv[2], "%02d.%s" % (n, name)), "w") as f:
        f.write(block + "\n")
sys.exit(0 if n >= 9 else 1)
PY
	local f kinds=""
	for f in "$T"/doc/*; do
		kinds+="${f##*.} "
		if [ "${f##*.}" = events ]; then
			assert_events "$f"
		else
			assert_document "${f##*.}" "$f"
		fi
	done
	assert_eq "$(tr ' ' '\n' <<<"$kinds" | sed '/^$/d' | sort -u | tr '\n' ' ')" \
		"chain dry_run events list rebalance_dry_run status " "kinds of examples in docs/events.md"
}
run_case "the examples of docs/events.md match the schema" case_doc_examples

cases_done
