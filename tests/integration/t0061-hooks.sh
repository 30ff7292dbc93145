#!/usr/bin/env bash
# Hooks (--hooks-dir DIR, DIR/POINT/ executables): the points of a move in
# order with the job's facts in their environment and a read-only copy of the
# domain XML; a before_* hook vetoes (exit 4) and leaves a consistent domain;
# a hook past --hook-timeout is killed with its children and vetoes; after_*
# failures are warnings; unsafe hooks are refused; every run is journaled.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

mkdir -m 755 "$T/dst7b"
for x in 1 2 3 4 5 6 7; do
	mkdir -m 755 "$T/src$x" "$T/dst$x"
done
new_image "$T/src1/base.qcow2" qcow2 64M 0x11 0 1M
new_overlay "$T/src1/top.qcow2" "$T/src1/base.qcow2" qcow2 0x12 1M 1M
new_image "$T/src1/data.raw" raw 16M 0x13 0 1M
dom1=$(dom_name 1)
make_domain "$dom1" persistent "vda:$T/src1/top.qcow2:qcow2" "vdb:$T/src1/data.raw:raw"
for x in 2 3 4 5 6 7; do
	new_image "$T/src$x/disk.qcow2" qcow2 64M 0x21 0 1M
	make_domain "$(dom_name "$x")" persistent "vda:$T/src$x/disk.qcow2:qcow2"
done

# rec_hooks DIR REC POINT...: at each POINT a hook that records in REC the
# point and its argument (REC/order), its SNAPMOVE_* environment
# (REC/POINT.env), and a copy, the mode and the path of $SNAPMOVE_DOMXML.
rec_hooks() {
	local dir=$1 rec=$2 p
	shift 2
	mkdir -p "$rec"
	for p in "$@"; do
		new_hook "$dir" "$p" 10-record "set -eu
r='$rec'
echo \"\$SNAPMOVE_HOOK \$1\" >>\"\$r/order\"
env | grep '^SNAPMOVE_' | grep -v '^SNAPMOVE_TEST_' | sort >\"\$r/\$SNAPMOVE_HOOK.env\"
stat -c '%a %U' \"\$SNAPMOVE_DOMXML\" >\"\$r/\$SNAPMOVE_HOOK.xmlmode\"
echo \"\$SNAPMOVE_DOMXML\" >\"\$r/\$SNAPMOVE_HOOK.xmlpath\"
cp \"\$SNAPMOVE_DOMXML\" \"\$r/\$SNAPMOVE_HOOK.xml\""
	done
}

envval() {  # REC POINT NAME
	sed -n "s|^$3=||p" "$1/$2.env"
}

hook_runs() {  # JOB: the journal's hook runs of JOB
	sqlite3 "$DB" "select point, replace(hook, '$H/', ''), exit_status, timed_out from hook_run where job_id = $1 order by id"
}

xml_source() {  # XML_FILE TARGET: the disk's active image in a saved domain XML
	xmllint --xpath "string(//devices/disk[target/@dev='$2']/source/@file)" "$1"
}

ALL_POINTS="before_move after_snapshot before_pivot after_pivot after_move after_abort on_failure"

case_points_env() {
	local h=$H/hooks1 rec=$T/rec1 dom=$dom1 uuid job p
	uuid=$(virsh domuuid "$dom" | sed -n 1p)
	# shellcheck disable=SC2086
	rec_hooks "$h" "$rec" $ALL_POINTS
	expect_exit 0 sm --json --hooks-dir "$h" move "$dom" --dest "$T/dst1"
	cp "$T/out" "$T/move1.out"
	assert_events "$T/move1.out"
	job=$(jev "$T/move1.out" 'events[-1]["job"]')
	assert_eq "$(cat "$rec/order")" "before_move before_move
after_snapshot after_snapshot
before_pivot before_pivot
after_pivot after_pivot
after_move after_move" "hook points of a move, in order, with the point as argument"
	assert_eq "$(jev "$T/move1.out" '[e["point"] + " " + str(e["exit"]) + " " + str(e["timed_out"]) for e in ev("hook")]')" \
		"before_move 0 False
after_snapshot 0 False
before_pivot 0 False
after_pivot 0 False
after_move 0 False" "hook events"
	# Where they come among the phases.
	assert_eq "$(jev "$T/move1.out" '" ".join(e.get("point") or e["phase"] + ":" + e["status"] for e in events if e["event"] in ("hook", "phase") and (e["event"] == "hook" or e["phase"] in ("snapshot", "sync", "pivot", "finalize")))')" \
		"before_move snapshot:start snapshot:done after_snapshot sync:start sync:done before_pivot pivot:start pivot:done after_pivot finalize:start finalize:done after_move" \
		"hooks among the phases"

	declare -A phase=([before_move]=planned [after_snapshot]=snapshot [before_pivot]=pivot
		[after_pivot]=pivot [after_move]=finalize)
	declare -A state=([before_move]=planned [after_snapshot]=snapshotted [before_pivot]=ready
		[after_pivot]=pivoted [after_move]=done)
	for p in before_move after_snapshot before_pivot after_pivot after_move; do
		assert_eq "$(envval "$rec" $p SNAPMOVE_HOOK)" "$p" "SNAPMOVE_HOOK at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_JOB)" "$job" "SNAPMOVE_JOB at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_DOMAIN)" "$dom" "SNAPMOVE_DOMAIN at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_DOMAIN_UUID)" "$uuid" "SNAPMOVE_DOMAIN_UUID at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_DISKS)" "vda vdb" "SNAPMOVE_DISKS at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_PHASE)" "${phase[$p]}" "SNAPMOVE_PHASE at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_DEST)" "$T/dst1" "SNAPMOVE_DEST at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_SRC_CHAIN_vda)" "$T/src1/top.qcow2:$T/src1/base.qcow2" \
			"SNAPMOVE_SRC_CHAIN_vda at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_DST_CHAIN_vda)" "$T/dst1/top.qcow2:$T/dst1/base.qcow2" \
			"SNAPMOVE_DST_CHAIN_vda at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_SRC_CHAIN_vdb)" "$T/src1/data.raw" "SNAPMOVE_SRC_CHAIN_vdb at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_DST_CHAIN_vdb)" "$T/dst1/data.raw" "SNAPMOVE_DST_CHAIN_vdb at $p"
		envval "$rec" $p SNAPMOVE_CHAINS >"$rec/$p.chains"
		assert_eq "$(jdoc "$rec/$p.chains" '[k + " " + v["source"] + " " + v["destination"] + " " + v["state"] for k, v in sorted(doc.items())]')" \
			"vda $T/src1/top.qcow2:$T/src1/base.qcow2 $T/dst1/top.qcow2:$T/dst1/base.qcow2 ${state[$p]}
vdb $T/src1/data.raw $T/dst1/data.raw ${state[$p]}" "SNAPMOVE_CHAINS at $p"
		assert_eq "$(jdoc "$rec/$p.chains" 'sorted(set(len(v) for v in doc.values()))')" 3 \
			"fields of SNAPMOVE_CHAINS at $p"
		# (SNAPMOVE_EVENTS_FILE is snapmove's own environment, passed on:
		# lib.sh sets it for every test.)
		assert_eq "$(sed 's/=.*//' "$rec/$p.env" | tr '\n' ' ')" \
			"SNAPMOVE_CHAINS SNAPMOVE_DEST SNAPMOVE_DISKS SNAPMOVE_DOMAIN SNAPMOVE_DOMAIN_UUID SNAPMOVE_DOMXML SNAPMOVE_DST_CHAIN_vda SNAPMOVE_DST_CHAIN_vdb SNAPMOVE_EVENTS_FILE SNAPMOVE_HOOK SNAPMOVE_JOB SNAPMOVE_PHASE SNAPMOVE_SRC_CHAIN_vda SNAPMOVE_SRC_CHAIN_vdb " \
			"the SNAPMOVE_ variables at $p"
		assert_eq "$(envval "$rec" $p SNAPMOVE_EVENTS_FILE)" "$SNAPMOVE_EVENTS_FILE" \
			"SNAPMOVE_EVENTS_FILE at $p"
		# The domain's XML, read-only, removed once the hooks ran.
		assert_eq "$(cat "$rec/$p.xmlmode")" "444 root" "mode of SNAPMOVE_DOMXML at $p"
		assert_absent "$(cat "$rec/$p.xmlpath")"
		assert_eq "$(xmllint --xpath 'string(/domain/name)' "$rec/$p.xml")" "$dom" "domain name in the XML at $p"
		assert_eq "$(xmllint --xpath 'string(/domain/uuid)' "$rec/$p.xml")" "$uuid" "uuid in the XML at $p"
	done
	# The live XML of each moment.
	assert_eq "$(xml_source "$rec/before_move.xml" vda)" "$T/src1/top.qcow2" "vda in the XML before the move"
	assert_eq "$(xml_source "$rec/after_snapshot.xml" vda)" "$T/dst1/top.qcow2.snapmove-$job.src.qcow2" \
		"vda in the XML after the snapshot"
	assert_eq "$(xmllint --xpath "string(//devices/disk[target/@dev='vda']/mirror/source/@file)" "$rec/before_pivot.xml")" \
		"$T/dst1/top.qcow2.snapmove-$job.qcow2" "the mirror in the XML before the pivot"
	assert_eq "$(xml_source "$rec/after_pivot.xml" vda)" "$T/dst1/top.qcow2.snapmove-$job.qcow2" \
		"vda in the XML after the pivot"
	assert_eq "$(xml_source "$rec/after_move.xml" vda)" "$T/dst1/top.qcow2" "vda in the XML after the move"
	assert_eq "$(xml_source "$rec/after_move.xml" vdb)" "$T/dst1/data.raw" "vdb in the XML after the move"
	# Journaled.
	assert_eq "$(hook_runs "$job")" "before_move|hooks1/before_move/10-record|0|0
after_snapshot|hooks1/after_snapshot/10-record|0|0
before_pivot|hooks1/before_pivot/10-record|0|0
after_pivot|hooks1/after_pivot/10-record|0|0
after_move|hooks1/after_move/10-record|0|0" "hook_run rows"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst1/top.qcow2 qcow2
$T/dst1/base.qcow2 qcow2" "chain after the move"
}
run_case "a move runs before_move, after_snapshot, before_pivot, after_pivot, after_move with the job's facts" \
	case_points_env

case_failure_abort() {
	local h=$H/hooks2 rec=$T/rec2 dom job
	dom=$(dom_name 2)
	# shellcheck disable=SC2086
	rec_hooks "$h" "$rec" $ALL_POINTS
	make_write_hook "$dom" vda copy:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm --json --hooks-dir "$h" move "$dom" --dest "$T/dst2"
	assert_events "$T/out"
	job=$(jev "$T/out" 'events[-1]["job"]')
	assert_eq "$(cat "$rec/order")" "before_move before_move
after_snapshot after_snapshot
on_failure on_failure" "hook points of a failed move"
	assert_eq "$(envval "$rec" on_failure SNAPMOVE_PHASE)" copy "SNAPMOVE_PHASE at on_failure"
	assert_eq "$(jev "$T/out" '[e["point"] for e in ev("hook")]')" "before_move
after_snapshot
on_failure" "hook events of a failed move"
	: >"$rec/order"
	expect_exit 0 sm --json --hooks-dir "$h" abort "$job"
	assert_events "$T/out"
	assert_eq "$(cat "$rec/order")" "after_abort after_abort" "hook points of an abort"
	assert_eq "$(envval "$rec" after_abort SNAPMOVE_JOB)" "$job" "SNAPMOVE_JOB at after_abort"
	assert_eq "$(xml_source "$rec/after_abort.xml" vda)" "$T/src2/disk.qcow2" "vda in the XML after the abort"
	assert_eq "$(hook_runs "$job" | cut -d'|' -f1 | tr '\n' ' ')" \
		"before_move after_snapshot on_failure after_abort " "hook_run rows of a failed, aborted job"
}
run_case "on_failure when a move fails, after_abort on abort" case_failure_abort

case_veto_before_move() {
	local h=$H/hooks3 rec=$T/rec3 dom job before
	dom=$(dom_name 3)
	before=$(live_chain "$dom" vda)
	rec_hooks "$h" "$rec" before_move on_failure
	mv "$h/before_move/10-record" "$h/before_move/05-record"
	new_hook "$h" before_move 50-veto 'echo "maintenance window closed" >&2; exit 7'
	new_hook "$h" before_move 90-last "echo ran >'$rec/last'"
	expect_exit 4 sm --json --hooks-dir "$h" move "$dom" --dest "$T/dst3"
	cp "$T/out" "$T/veto3.out"
	cp "$T/err" "$T/veto3.err"
	assert_events "$T/veto3.out"
	job=$(jev "$T/veto3.out" 'events[-1]["job"]')
	assert_eq "$(jev "$T/veto3.out" 'events[-1]["status"] + " " + str(events[-1]["exit"])')" "vetoed 4" "result"
	assert_contains "$T/veto3.err" "vetoed by a before_move hook"
	assert_contains "$T/veto3.err" "$h/before_move/50-veto' exited 7: maintenance window closed"
	assert_contains "$T/veto3.out" "maintenance window closed"
	assert_eq "$(cat "$rec/order")" "before_move before_move" "hooks run before the veto"
	[ ! -e "$rec/last" ] || fail "a hook after the veto ran"
	# Nothing changed at all.
	assert_eq "$(live_chain "$dom" vda)" "$before" "live chain after a before_move veto"
	assert_eq "$(live_chain "$dom" vda --inactive)" "$before" "persistent chain after a before_move veto"
	assert_eq "$(block_job_count "$dom" vda)" 0 "block jobs after a before_move veto"
	assert_eq "$(ls -A "$T/src3")" disk.qcow2 "source files after a before_move veto"
	assert_eq "$(ls -A "$T/dst3")" "" "destination files after a before_move veto"
	expect_exit 0 sm status --json "$job"
	assert_document status "$T/out"
	assert_eq "$(jdoc "$T/out" 'doc["state"] + " " + doc["phase"] + " " + str("next" in doc)')" \
		"aborted planned False" "the vetoed job"
	assert_eq "$(jdoc "$T/out" '"maintenance window closed" in doc["error"]')" true "the vetoed job's error"
	assert_eq "$(jdoc "$T/out" 'sorted(set(f["state"] for f in doc["files"]))')" planned \
		"files of the vetoed job"
	assert_eq "$(hook_runs "$job")" "before_move|hooks3/before_move/05-record|0|0
before_move|hooks3/before_move/50-veto|7|0" "hook_run rows of the veto"
	assert_eq "$(sqlite3 "$DB" "select stderr from hook_run where job_id = $job and exit_status = 7")" \
		"maintenance window closed" "the veto's stderr in the journal"
	# The vetoed job blocks nothing.
	rm "$h/before_move/50-veto"
	expect_exit 0 sm --hooks-dir "$h" move "$dom" --dest "$T/dst3"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst3/disk.qcow2 qcow2" "chain after the next move"
}
run_case "a before_move veto: exit 4, nothing changed, the job aborted, later moves go on" \
	case_veto_before_move

case_veto_before_pivot() {
	local h=$H/hooks4 dom job rc=0
	dom=$(dom_name 4)
	new_hook "$h" before_pivot 50-veto 'echo "not during backups" >&2; exit 1'
	expect_exit 4 sm --json --hooks-dir "$h" move "$dom" --dest "$T/dst4"
	cp "$T/out" "$T/veto4.out"
	cp "$T/err" "$T/veto4.err"
	assert_events "$T/veto4.out"
	job=$(jev "$T/veto4.out" 'events[-1]["job"]')
	assert_eq "$(jev "$T/veto4.out" 'events[-1]["status"] + " " + str(events[-1]["exit"])')" "vetoed 4" "result"
	assert_eq "$(jev "$T/veto4.out" '[e["phase"] + ":" + e["status"] for e in ev("phase")][-1]')" sync:done \
		"the last phase before the veto"
	assert_contains "$T/veto4.err" "vetoed by a before_pivot hook"
	assert_contains "$T/veto4.err" "not during backups"
	# A consistent chain: the source overlay over the original, no block job.
	assert_eq "$(live_chain "$dom" vda)" "$T/dst4/disk.qcow2.snapmove-$job.src.qcow2 qcow2
$T/src4/disk.qcow2 qcow2" "live chain after a before_pivot veto"
	assert_eq "$(block_job_count "$dom" vda)" 0 "block jobs after a before_pivot veto"
	expect_exit 0 sm status --json "$job"
	assert_document status "$T/out"
	assert_eq "$(jdoc "$T/out" 'doc["state"] + " " + doc["next"]["resume"]')" "failed snapmove resume $job" \
		"the vetoed job is resumable"
	# Once the veto is lifted, resume finishes the move.
	rm "$h/before_pivot/50-veto"
	expect_exit 0 sm --json --hooks-dir "$h" resume "$job"
	assert_events "$T/out"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst4/disk.qcow2 qcow2" "chain after the resume"
	assert_absent "$T/dst4/disk.qcow2.snapmove-$job.src.qcow2"
	# The veto's message says how to go on (src/cli/cmd_move.c says "stopped
	# before changing anything" for every veto).
	grep -q "snapmove resume $job" "$T/veto4.err" && grep -q "snapmove abort $job" "$T/veto4.err" || rc=1
	! grep -q "before changing anything" "$T/veto4.err" || rc=1
	[ "$rc" = 0 ] || { cat "$T/veto4.err" >&2; fail "a before_pivot veto does not print the resume and abort commands"; }
}
run_case "a before_pivot veto: exit 4, the domain on its overlay, resume finishes" case_veto_before_pivot

# Is PID gone (or a zombie nobody has reaped yet)?
gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null || true)
	[ -z "$st" ] || [ "${st:0:1}" = Z ]
}

case_timeout() {
	local h=$H/hooks5 dom job t0 t1
	dom=$(dom_name 5)
	new_hook "$h" before_move 50-hang "sleep 300 & echo \$! >'$T/child.pid'; echo \$\$ >'$T/hook.pid'; sleep 300"
	t0=$(date +%s)
	expect_exit 4 sm --json --hooks-dir "$h" --hook-timeout 2 move "$dom" --dest "$T/dst5"
	t1=$(date +%s)
	[ $((t1 - t0)) -lt 20 ] || fail "the hook was not stopped at its time limit ($((t1 - t0)) s)"
	assert_events "$T/out"
	job=$(jev "$T/out" 'events[-1]["job"]')
	assert_eq "$(jev "$T/out" '[str(e["exit"]) + " " + str(e["timed_out"]) + " " + str(e["seconds"] >= 2) for e in ev("hook")]')" \
		"137 True True" "hook event of a hook killed at its limit"
	assert_eq "$(jev "$T/out" 'events[-1]["status"]')" vetoed "result"
	assert_contains "$T/err" "ran past its time limit of 2 s and was killed"
	assert_contains "$T/err" "vetoed by a before_move hook"
	gone "$(cat "$T/hook.pid")" || fail "the hook still runs"
	gone "$(cat "$T/child.pid")" || fail "the hook's child still runs"
	assert_eq "$(hook_runs "$job")" "before_move|hooks5/before_move/50-hang|137|1" "hook_run of the killed hook"
	assert_eq "$(live_chain "$dom" vda)" "$T/src5/disk.qcow2 qcow2" "chain after the timeout"
	assert_eq "$(ls -A "$T/dst5")" "" "destination after the timeout"
}
run_case "a hook past --hook-timeout is killed with its children and vetoes" case_timeout

case_after_fails() {
	local h=$H/hooks6 dom job
	dom=$(dom_name 6)
	new_hook "$h" after_snapshot 50-fail 'echo "snapshot hook broke" >&2; exit 3'
	new_hook "$h" after_move 50-fail 'echo "after hook broke" >&2; exit 2'
	new_hook "$h" after_move 60-fine 'exit 0'
	expect_exit 0 sm --json --hooks-dir "$h" move "$dom" --dest "$T/dst6"
	assert_events "$T/out"
	job=$(jev "$T/out" 'events[-1]["job"]')
	assert_eq "$(jev "$T/out" 'events[-1]["status"]')" done "result"
	assert_eq "$(jev "$T/out" '[e["message"] for e in ev("warning")]')" \
		"hook '$h/after_snapshot/50-fail' exited 3: snapshot hook broke
hook '$h/after_move/50-fail' exited 2: after hook broke" "warning events"
	assert_contains "$T/err" "warning: hook '$h/after_snapshot/50-fail' exited 3: snapshot hook broke"
	assert_contains "$T/err" "warning: hook '$h/after_move/50-fail' exited 2: after hook broke"
	assert_eq "$(hook_runs "$job")" "after_snapshot|hooks6/after_snapshot/50-fail|3|0
after_move|hooks6/after_move/50-fail|2|0
after_move|hooks6/after_move/60-fine|0|0" "hook_run rows (the next hook still runs)"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst6/disk.qcow2 qcow2" "chain after the move"
}
run_case "after_* hooks that fail are warnings; the move succeeds" case_after_fails

# unsafe NAME WHY SETUP: with hooks dir $H/h-NAME prepared by SETUP (a shell
# string run in it), a move is refused at before_move with WHY.
unsafe() {
	local name=$1 why=$2 setup=$3 h=$H/h-$1 dom
	dom=$(dom_name 7)
	new_hook "$h" before_move 50-ok 'exit 0'
	(cd "$h" && eval "$setup")
	expect_exit 4 sm --hooks-dir "$h" move "$dom" --dest "$T/dst7"
	assert_contains "$T/err" "snapmove: error: "
	assert_contains "$T/err" "$why"
	assert_contains "$T/err" "hooks run as root"
	assert_eq "$(live_chain "$dom" vda)" "$T/src7/disk.qcow2 qcow2" "chain after refusing a hook ($name)"
	assert_eq "$(ls -A "$T/dst7")" "" "destination after refusing a hook ($name)"
	assert_eq "$(ls -A "$T/src7")" disk.qcow2 "source after refusing a hook ($name)"
}

case_unsafe() {
	local dom
	dom=$(dom_name 7)
	unsafe owner "hook file '$H/h-owner/before_move/50-ok' is not owned by root" \
		"chown nobody before_move/50-ok"
	unsafe group "hook file '$H/h-group/before_move/50-ok' is writable by group or others" \
		"chmod 775 before_move/50-ok"
	unsafe others "hook file '$H/h-others/before_move/50-ok' is writable by group or others" \
		"chmod 757 before_move/50-ok"
	unsafe folder "hook folder '$H/h-folder/before_move' is writable by group or others" \
		"chmod 757 before_move"
	unsafe top "hook folder '$H/h-top' is writable by group or others" "chmod 777 ."
	unsafe symlink "hook file '$H/h-symlink/before_move/60-link' is not a regular file" \
		"ln -s 50-ok before_move/60-link"
	unsafe noexec "hook file '$H/h-noexec/before_move/50-ok' is not executable" \
		"chmod 644 before_move/50-ok"
	unsafe folder-owner "hook folder '$H/h-folder-owner/before_move' is not owned by root" \
		"chown nobody before_move"
	# Each refusal ended its job, which blocks nothing.
	expect_exit 0 sm list --json
	assert_eq "$(jdoc "$T/out" 'sorted(set(j["state"] for j in doc["jobs"] if j["domain"] == "'"$dom"'"))')" \
		aborted "jobs of the refused hooks"
}
run_case "unsafe hooks are refused: owner, mode, folders, symlinks, not executable" case_unsafe

case_unsafe_after() {
	local dom
	dom=$(dom_name 7)
	# At an after_* point the same refusal is a warning, on stderr and in
	# --json (src/hooks.c's "refused:" path writes no warning event).
	new_hook "$H/h-after" after_move 50-ok 'exit 0'
	chmod 644 "$H/h-after/after_move/50-ok"
	expect_exit 0 sm --json --hooks-dir "$H/h-after" move "$dom" --dest "$T/dst7"
	cp "$T/out" "$T/after7.out"
	assert_events "$T/after7.out"
	assert_contains "$T/err" "warning: hook file '$H/h-after/after_move/50-ok' is not executable"
	assert_eq "$(jev "$T/after7.out" '[e["message"] for e in ev("warning")]')" \
		"hook file '$H/h-after/after_move/50-ok' is not executable; hooks run as root, so they must be root's own regular executables in root's own folders: 'chmod u+x $H/h-after/after_move/50-ok'" \
		"warning event of a refused after_move hook"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst7/disk.qcow2 qcow2" "chain after the move"
	chmod 757 "$H/h-after/after_move"
	expect_exit 0 sm --json --hooks-dir "$H/h-after" move "$dom" --dest "$T/dst7b"
	cp "$T/out" "$T/after7b.out"
	assert_events "$T/after7b.out"
	assert_contains "$T/err" "warning: hook folder '$H/h-after/after_move' is writable by group or others"
	assert_eq "$(jev "$T/after7b.out" 'len(ev("warning"))')" 1 \
		"warning events of a refused after_move folder (src/hooks.c)"
}
run_case "an unsafe after_* hook or folder is a warning, on stderr and in --json" case_unsafe_after

cases_done
