#!/usr/bin/env bash
# 'snapmove rebalance --include-offline': a shut-off persistent domain's
# disks on the drained storage (a qcow2 overlay over its own raw base, and a
# second qcow2 disk) are planned only with the flag, move offline (the
# definition is rewritten), and the domain then starts from the new storage
# with all its data; a running domain on the same storage moves live beside
# them.  With --max-parallel 2 the shut-off domain's two disks are the first
# two moves and start together: both must end up in its definition.  The
# rebalance ends its events with a rebalance_result "done" naming the job of
# each move, offline ones included.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

rb_storages s1:300M s2:400M
S1=$T/s1 S2=$T/s2
R=$(dom_name run) O=$(dom_name off)

new_image "$S1/r.qcow2" qcow2 128M 0x31 0 8M
make_domain "$R" transient "vda:$S1/r.qcow2:qcow2"
new_image "$S1/o-base.raw" raw 64M 0x41 0 16M
new_overlay "$S1/o-vda.qcow2" "$S1/o-base.raw" raw 0x42 32M 4M
new_image "$S1/o-vdb.qcow2" qcow2 64M 0x43 0 18M
disk_xml() {  # TARGET PATH
	echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$2'/><target dev='$1' bus='virtio'/></disk>"
}
make_domain_xml "$O" defined "$(disk_xml vda "$S1/o-vda.qcow2")$(disk_xml vdb "$S1/o-vdb.qcow2")"
assert_eq "$(virsh domstate "$O")" "shut off" "state of $O"
journal_init

ARGS=(--storage "$S1" --storage "$S2" --drain "$S1")

case_without_flag() {
	expect_exit 0 sm --json rebalance "${ARGS[@]}" --dry-run
	assert_eq "$(pyjson "$T/out" '" ".join(m["domain"] + ":" + m["disk"] for m in doc["moves"])')" \
		"$R:vda" "the moves without --include-offline"
	assert_eq "$(pyjson "$T/out" 'doc["not_movable"]')" "[]" "not movable"
	expect_exit 0 sm rebalance "${ARGS[@]}" --dry-run
	grep -qF "$O" "$T/out" && { cat "$T/out" >&2; fail "$O is in the plan without --include-offline"; }
	assert_contains "$T/out" "1 move,"
	true
}
run_case "without --include-offline a shut-off domain is not planned" case_without_flag

case_with_flag() {
	local bytes mark
	expect_exit 0 sm --json rebalance "${ARGS[@]}" --dry-run --include-offline
	cp "$T/out" "$T/json"
	assert_eq "$(pyjson "$T/out" '" ".join(sorted("%s:%s:%s" % (m["domain"], m["disk"], m["live"]) for m in doc["moves"]))')" \
		"$(printf '%s\n' "$O:vda:False" "$O:vdb:False" "$R:vda:True" | sort | tr '\n' ' ' | sed 's/ $//')" \
		"the moves with --include-offline"
	# The shut-off disk's bytes are its whole chain (the base is its own).
	bytes=$(($(stat -c '%b * %B' "$S1/o-vda.qcow2") + $(stat -c '%b * %B' "$S1/o-base.raw")))
	assert_eq "$(pyjson "$T/out" "[m['bytes'] for m in doc['moves'] if m['domain'] == '$O' and m['disk'] == 'vda'][0]")" \
		"$bytes" "bytes of $O's vda"
	expect_exit 0 sm rebalance "${ARGS[@]}" --dry-run --include-offline
	assert_eq "$(grep -F "$O" "$T/out" | grep -cF '(offline)')" 2 "offline moves in the table"

	# The two largest are the shut-off domain's two disks: they start together.
	assert_eq "$(pyjson "$T/json" '" ".join(m["domain"] + ":" + m["disk"] for m in doc["moves"])')" \
		"$O:vda $O:vdb $R:vda" "the order of the moves"
	mark=$(ev_mark)
	expect_exit 0 sm rebalance "${ARGS[@]}" --include-offline --max-parallel 2
	assert_contains "$T/err" "3 of 3 moves done, 0 failed"
	ev_since "$mark" "$T/events"
	rb_result "$T/events" done 0 "1:done 2:done 3:done"
	assert_eq "$(jev "$T/events" '" ".join("%s:%s:%s" % (m["domain"], m["disk"], m["job"]) for m in ev("rebalance_result")[0]["moves"])')" \
		"$O:vda:$(rb_sql "SELECT id FROM job WHERE domain_name = '$O' AND id IN (SELECT job_id FROM disk WHERE target = 'vda')") $O:vdb:$(rb_sql "SELECT id FROM job WHERE domain_name = '$O' AND id IN (SELECT job_id FROM disk WHERE target = 'vdb')") $R:vda:$(rb_sql "SELECT id FROM job WHERE domain_name = '$R'")" \
		"the moves and their jobs in the rebalance_result"
	assert_eq "$(ls -A "$S1")" "" "what is left on s1"
	assert_eq "$(virsh domstate "$O")" "shut off" "state of $O after the move"
	assert_eq "$(jobs_of "$O" vda done) $(jobs_of "$O" vdb done) $(jobs_of "$R" vda done)" \
		"1 1 1" "done jobs per disk"
	# The definition names the new images, and their headers the new base.
	assert_eq "$(live_chain "$O" vda --inactive | awk 'NR == 1 { print $1 }')" \
		"$S2/o-vda.qcow2" "$O's vda in its definition"
	assert_eq "$(live_chain "$O" vdb --inactive | awk 'NR == 1 { print $1 }')" \
		"$S2/o-vdb.qcow2" "$O's vdb in its definition"
	case "$(backing_of "$S2/o-vda.qcow2" qcow2)" in
	o-base.raw | "$S2/o-base.raw") ;;
	*) fail "$S2/o-vda.qcow2 is backed by '$(backing_of "$S2/o-vda.qcow2" qcow2)'" ;;
	esac
	assert_eq "$(top_image "$R" vda)" "$S2/r.qcow2" "$R's vda"
	# It starts from there.
	virsh -q start "$O" >/dev/null || fail "$O does not start after the move"
	wait_domain_running "$O"
	assert_eq "$(live_chain "$O" vda | tr '\n' ' ')" "$S2/o-vda.qcow2 qcow2 $S2/o-base.raw raw " \
		"$O's live chain"
	assert_eq "$(top_image "$O" vdb)" "$S2/o-vdb.qcow2" "$O's live vdb"
	guest_write "$O" vda 0x44 40M 64k
	virsh -q destroy "$O" >/dev/null
	check_pattern "$S2/o-vda.qcow2" qcow2 0x41 0 16M
	check_pattern "$S2/o-vda.qcow2" qcow2 0x42 32M 4M
	check_pattern "$S2/o-vda.qcow2" qcow2 0x44 40M 64k
	check_pattern "$S2/o-vdb.qcow2" qcow2 0x43 0 18M
	virsh -q destroy "$R" >/dev/null
	check_pattern "$S2/r.qcow2" qcow2 0x31 0 8M
}
run_case "--include-offline moves the shut-off domain's disks offline; it starts from s2" \
	case_with_flag

cases_done
