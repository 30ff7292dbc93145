#!/usr/bin/env bash
# A live move onto block devices a provisioner makes (--dest-provisioner,
# the shipped 'loop' provisioner, its loop files in this test's folder):
# a raw file disk and a qcow2 file disk each move onto a loop device made
# for the job (raw: the disk's size exactly; qcow2: what qemu-img measure
# says), with guest writes before, during (every phase) and after the move,
# all found on the device afterwards.  The device is the job's in the
# journal (and in 'provision list'), status shows it provisioned, each run
# of the provisioner is a 'provision' event.  Then a second domain's moves
# that stop (before the pivot, and after it) are aborted: the domain is back
# on its file and the job's device is gone.  A device a domain still uses
# is kept by abort (warned) and removed by 'cleanup' once it is free.
# Every loop device the test made is gone at the end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

P=$H/prov/loop
mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/loop" "$P"
# The provisioner's loop files: in this test's own folder.
LD=$T/loop
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"

jv() {  # SQL: one value of this test's journal
	sqlite3 "$DB" "$1"
}
ours() {  # the loop devices attached to a file of $LD
	losetup --list --noheadings --output NAME,BACK-FILE | awk -v d="$LD/" 'index($2, d) == 1 { print $1 }'
}
xml_of() {  # DOM TARGET WHAT [--inactive]: type, source or format of the disk
	local xml
	xml=$(virsh dumpxml ${4:-} "$1")
	case "$3" in
	type) xmllint --xpath "string(//disk[target/@dev='$2']/@type)" - <<<"$xml" ;;
	dev) xmllint --xpath "string(//disk[target/@dev='$2']/source/@dev)" - <<<"$xml" ;;
	file) xmllint --xpath "string(//disk[target/@dev='$2']/source/@file)" - <<<"$xml" ;;
	format) xmllint --xpath "string(//disk[target/@dev='$2']/driver/@type)" - <<<"$xml" ;;
	esac
}

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/a.raw" raw 64M 0x11 0 1M 0x12 40M 1M
new_image "$T/src/b.qcow2" qcow2 48M 0x11 0 1M 0x12 40M 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/a.raw:raw" "vdb:$T/src/b.qcow2:qcow2"

# move_onto JOB TARGET FORMAT: move the disk onto a provisioned device.
move_onto() {
	local job=$1 t=$2 fmt=$3 dev p
	guest_write "$dom" "$t" 0x13 2M 64k
	make_write_hook "$dom" "$t" copy:0x21:3M sync:0x22:4M pivot:0x23:5M collapse:0x24:6M \
		finalize:0x25:7M
	rm -f "$T/hook.log"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" --disk "$t" \
		--dest-provisioner "$P" --set "LOOP_DIR=$LD" --json
	assert_contains "$T/err" "moved domain $dom"
	assert_eq "$(wc -l <"$T/hook.log")" 5 "$fmt: hook writes during the move"
	# The job's device, journaled as the job's, the one the domain is on.
	dev=$(jv "SELECT path FROM provisioned_device WHERE job_id = $job AND state = 'created'")
	case "$dev" in /dev/loop[0-9]*) ;; *) fail "$fmt: the job's device is '$dev'" ;; esac
	assert_eq "$(losetup --list --noheadings --output BACK-FILE "$dev" | sed 's/ *$//')" \
		"$LD/snapmove-$job-$t" "$fmt: the device's loop file"
	assert_eq "$(jv "SELECT dst_path || ' ' || dst_rdev FROM image WHERE job_id = $job")" \
		"$dev $(jv "SELECT rdev FROM provisioned_device WHERE job_id = $job")" \
		"$fmt: the image journaled onto the device"
	for p in "" --inactive; do
		assert_eq "$(xml_of "$dom" "$t" type $p)" block "$fmt: disk type ${p:-live}"
		assert_eq "$(xml_of "$dom" "$t" dev $p)" "$dev" "$fmt: disk source ${p:-live}"
		assert_eq "$(xml_of "$dom" "$t" format $p)" "$fmt" "$fmt: disk format ${p:-live}"
	done
	assert_eq "$(ls -A "$T/dst")" "" "$fmt: files left in the destination folder"
	# One create event, with the job and the device.
	grep '"event":"provision"' "$T/out" >"$T/prov.events" || fail "$fmt: no provision event"
	assert_eq "$(wc -l <"$T/prov.events")" 1 "$fmt: provision events"
	assert_contains "$T/prov.events" "\"job\":$job,\"action\":\"create\""
	assert_contains "$T/prov.events" "\"argument\":\"snapmove-$job-$t\",\"exit\":0"
	# status shows it provisioned; provision list shows the job.
	expect_exit 0 sm status "$job"
	assert_contains "$T/out" "$t: done"
	assert_contains "$T/out" "-> $dev ($fmt)"
	assert_contains "$T/out" "provisioned by '$P' (device $(jv "SELECT id FROM provisioned_device WHERE job_id = $job"), created)"
	sm status "$job" --json >"$T/status.json"
	assert_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["disk_states"][0]["images"][0]["dest_device"]; print(d["path"], d["provisioned"], d["device_state"])' "$T/status.json")" \
		"$dev True created" "$fmt: status --json dest_device"
	sm provision list >"$T/list"
	grep -E "^[0-9]+ +created +$job +.* $dev \($P\)$" "$T/list" >/dev/null ||
		{ cat "$T/list" >&2; fail "$fmt: provision list does not show job $job's device"; }
	eval "dev_$t=$dev"
}

move_onto 1 vda raw
move_onto 2 vdb qcow2
# The raw device is the disk: of its size exactly.
assert_eq "$(blockdev --getsize64 "$dev_vda")" 67108864 "the raw disk's device size"
guest_write "$dom" vda 0x31 8M 64k
guest_write "$dom" vdb 0x31 8M 64k
virsh -q destroy "$dom" >/dev/null
for d in "$dev_vda raw" "$dev_vdb qcow2"; do
	set -- $d
	for p in "0x11 0 1M" "0x12 40M 1M" "0x13 2M 64k" "0x21 3M 64k" "0x22 4M 64k" \
		"0x23 5M 64k" "0x24 6M 64k" "0x25 7M 64k" "0x31 8M 64k" "0x00 10M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$1" "$2" $p
	done
done
# A finished move keeps its devices: they hold the disks.  cleanup deletes
# the source file, never the device.
expect_exit 0 sm cleanup 1
assert_absent "$T/src/a.raw"
[ -b "$dev_vda" ] && [ "$(jv "SELECT state FROM provisioned_device WHERE job_id = 1")" = created ] ||
	fail "cleanup of a done job removed its device"
virsh -q start "$dom" >/dev/null
wait_domain_running "$dom"
guest_write "$dom" vda 0x41 9M 64k

# A second domain whose moves stop and are aborted.
new_image "$T/src/c.raw" raw 32M 0x51 0 1M
cdom=$(dom_name abort)
make_domain "$cdom" persistent "vda:$T/src/c.raw:raw"

# aborted_move JOB PHASE: the move stops at PHASE; abort removes its device.
aborted_move() {
	local job=$1 phase=$2 dev
	make_write_hook "$cdom" vda "$phase:fail:0"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$cdom" --dest "$T/dst" \
		--dest-provisioner "$P" --set "LOOP_DIR=$LD"
	assert_contains "$T/err" "test hook fails $phase"
	dev=$(jv "SELECT path FROM provisioned_device WHERE job_id = $job")
	[ -b "$dev" ] || fail "$phase: the job's device '$dev' is not there before abort"
	expect_exit 0 sm abort "$job"
	assert_contains "$T/err" "removed device"
	assert_eq "$(live_chain "$cdom" vda)" "$T/src/c.raw raw" "$phase: back on the source"
	assert_eq "$(xml_of "$cdom" vda file --inactive)" "$T/src/c.raw" "$phase: the definition"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE job_id = $job")" removed \
		"$phase: the device's state"
	[ -z "$(losetup --list --noheadings --output NAME --associated "$LD/snapmove-$job-vda")" ] ||
		fail "$phase: the loop device of job $job is still attached"
	assert_absent "$LD/snapmove-$job-vda"
	assert_eq "$(ls -A "$T/dst")" "" "$phase: files left in the destination folder"
}
case_abort_before_pivot() { aborted_move 3 copy; }
case_abort_after_pivot() { aborted_move 4 collapse; }
run_case "a move stopped before the pivot, aborted: no device left" case_abort_before_pivot
run_case "a move stopped after the pivot, aborted: no device left" case_abort_after_pivot
guest_write "$cdom" vda 0x52 2M 64k
check_pattern "$T/src/c.raw" raw 0x51 0 1M

# A device a domain uses is never removed: abort keeps it (warned), and
# cleanup removes it once nothing uses it.  (The domain that uses it is
# made outside the case, which runs in a subshell.)
make_write_hook "$cdom" vda "copy:fail:0"
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$cdom" --dest "$T/dst" \
	--dest-provisioner "$P" --set "LOOP_DIR=$LD"
busy=$(jv "SELECT path FROM provisioned_device WHERE job_id = 5")
[ -b "$busy" ] || fail "job 5 has no device ('$busy')"
udom=$(dom_name user)
make_domain_xml "$udom" transient "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='$busy'/><target dev='vda' bus='virtio'/></disk>"
case_busy_device() {
	local dev=$busy
	expect_exit 0 sm abort 5
	assert_contains "$T/err" "device $(jv "SELECT id FROM provisioned_device WHERE job_id = 5") ('$dev') of job 5 was not removed"
	assert_contains "$T/err" "in use by domain '$udom'"
	[ -b "$dev" ] && [ "$(jv "SELECT state FROM provisioned_device WHERE job_id = 5")" = created ] ||
		fail "abort removed a device a domain uses"
	expect_exit 3 sm cleanup 5
	assert_contains "$T/err" "in use by domain '$udom'"
	virsh -q destroy "$udom" >/dev/null
	expect_exit 0 sm cleanup 5
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE job_id = 5")" removed \
		"the device after cleanup"
	assert_absent "$LD/snapmove-5-vda"
}
run_case "a device a domain uses: kept by abort, removed by cleanup" case_busy_device

# The events of the provisioner's runs, in the events file too (the schema
# is checked when the test ends).
assert_contains "$SNAPMOVE_EVENTS_FILE" '"job":3,"action":"remove"'

# The done jobs' devices: forgotten jobs' devices are the admin's to remove.
virsh -q destroy "$dom" >/dev/null
expect_exit 0 sm forget 1
expect_exit 0 sm forget 2
expect_exit 0 sm provision remove "$dev_vda"
expect_exit 0 sm provision remove "$dev_vdb"
assert_eq "$(ours)" "" "loop devices of this test left attached"
cases_done
