#!/usr/bin/env bash
# move --overlay-provisioner: what is refused with nothing changed, a
# provisioner whose create fails, and an abort in the middle of the mirror.
# - a bad --overlay-size (not a size, below 8 MiB), --overlay-provisioner
#   with --overlay-dir, --overlay-size without a provisioner, with --offline:
#   usage (exit 2), nothing changed, no job;
# - a provisioner in a folder others can write (/var/tmp): refused (exit 3),
#   nothing changed, no job;
# - a provisioner whose create fails for the destination overlay (after the
#   source overlay's device was made): exit 1, the job aborted, no snapshot
#   (the chain as it was), the device it made removed, no loop device left;
# - an abort of a move killed while its mirror runs onto the destination
#   overlay's device: the domain back on its image with the guest's writes
#   of the move, both overlay devices removed through the provisioner
#   (journaled removed), no loop device, no loop file left;
# - a journal row edited to name another device: the abort leaves it (and
#   keeps the job's own, said), cleanup removes the job's once the row is
#   right again;
# - an abort after the pivot, once the destination overlay's device grew
#   past the source one's: grown to match before the mirror back;
# - a move whose provisioner cannot remove the devices at the end (kept,
#   said), then 'snapmove cleanup' removes them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/loop" "$H/prov/loop"
# The loop provisioner, except that it cannot make a destination overlay's
# device (its name ends in -dst).
cat >"$H/prov/nodst" <<EOF
#!/bin/sh
case "\$1 \${2:-}" in
create\ *-dst) echo "nodst: no room for '\$2'" >&2; exit 1 ;;
esac
exec '$H/prov/loop' "\$@"
EOF
chmod 755 "$H/prov/nodst"
# ...and one whose remove fails while $H/prov/busy exists.
cat >"$H/prov/noremove" <<EOF
#!/bin/sh
if [ "\$1" = remove ] && [ -e '$H/prov/busy' ]; then
	echo "noremove: '\$2' is busy" >&2
	exit 1
fi
exec '$H/prov/loop' "\$@"
EOF
chmod 755 "$H/prov/noremove"
LD=$T/loop
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"
loops_of_test() {  # the loop devices over files of $LD
	losetup --list --noheadings --output NAME,BACK-FILE | awk -v d="$LD/" 'index($2, d) == 1 { print $1 }'
}
jv() { sqlite3 "$DB" "$1"; }

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
PROV=(--overlay-provisioner "$H/prov/loop" --overlay-set "LOOP_DIR=$LD")

usage_unchanged() {  # TEXT ARGS...: move exits 2 naming TEXT, nothing changed
	local text=$1
	shift
	save_state usage "$dom" vda "$T/src" "$T/dst"
	expect_exit 2 sm move "$dom" --dest "$T/dst" "$@"
	assert_contains "$T/err" "$text"
	assert_unchanged usage
}

case_usage() {
	usage_unchanged "--overlay-size takes a size of at least 8M" "${PROV[@]}" --overlay-size lots
	usage_unchanged "--overlay-size takes a size of at least 8M" "${PROV[@]}" --overlay-size 1M
	usage_unchanged "--overlay-size takes a size of at least 8M" "${PROV[@]}" --overlay-size 0
	usage_unchanged "give one of them" "${PROV[@]}" --overlay-dir "$T/src"
	usage_unchanged "add it or leave them out" --overlay-size 16M
	usage_unchanged "leave it out" "${PROV[@]}" --offline
	assert_eq "$(loops_of_test)" "" "loop devices"
}
run_case "bad --overlay-size, --overlay-dir with it, no provisioner: usage, nothing changed" case_usage

case_dry_run() {
	save_state dry "$dom" vda "$T/src" "$T/dst"
	expect_exit 0 sm move "$dom" --dest "$T/dst" "${PROV[@]}" --dry-run
	assert_contains "$T/out" "go to block devices that '$H/prov/loop' makes"
	expect_exit 0 sm move "$dom" --dest "$T/dst" "${PROV[@]}" --dry-run --json
	assert_eq "$("$SM_PY" -c 'import json, sys; print(json.load(sys.stdin)["overlay_provisioner"])' <"$T/out")" \
		"$H/prov/loop" "the dry run's overlay_provisioner"
	assert_unchanged dry
	assert_eq "$(loops_of_test)" "" "loop devices"
}
run_case "a dry run names the provisioner and makes no device" case_dry_run

case_untrusted() {
	mkdir -p -m 1777 "$T/tmpprov"
	install -m 0755 "$TOP/contrib/provisioners/loop" "$T/tmpprov/loop"
	save_state untrusted "$dom" vda "$T/src" "$T/dst"
	expect_refused "provisioners run as root" sm move "$dom" --dest "$T/dst" \
		--overlay-provisioner "$T/tmpprov/loop" --overlay-set "LOOP_DIR=$LD"
	assert_unchanged untrusted
}
run_case "a provisioner others could change: refused, nothing changed" case_untrusted

case_create_fails() {
	expect_exit 1 sm move "$dom" --dest "$T/dst" --overlay-provisioner "$H/prov/nodst" \
		--overlay-size 16M --overlay-set "LOOP_DIR=$LD"
	assert_contains "$T/err" "cannot make the destination overlay device of disk 'vda'"
	assert_contains "$T/err" "nodst: no room for 'snapmove-1-vda-dst'"
	assert_contains "$T/err" "the domain was not touched"
	assert_eq "$(live_chain "$dom" vda)" "$T/src/disk.qcow2 qcow2" "the chain (no snapshot)"
	assert_eq "$(block_jobs "$dom" vda)" 0 "block jobs"
	assert_eq "$(loops_of_test)" "" "loop devices"
	assert_eq "$(find "$LD" -mindepth 1 | wc -l)" 0 "files in the loop folder"
	assert_eq "$(jv "SELECT state FROM job WHERE id = 1")" aborted "the job"
	assert_eq "$(jv "SELECT name || ' ' || state FROM provisioned_device ORDER BY id")" \
		"snapmove-1-vda-src removed
snapmove-1-vda-dst failed" "the journaled devices"
	assert_eq "$(ls -A "$T/dst")" "" "the destination folder"
}
run_case "a provisioner whose create fails: no snapshot, no device left" case_create_fails

case_abort_mid_mirror() {
	local alias
	alias=$(disk_alias "$dom" vda)
	# Killed at the copy phase's start: the mirror runs onto the
	# destination overlay's device; the guest wrote onto the source one.
	SNAPMOVE_TEST_CRASH_AT=copy:start expect_exit 137 sm move "$dom" --dest "$T/dst" \
		"${PROV[@]}" --overlay-size 16M
	local src dst
	src=$(jv "SELECT path FROM provisioned_device WHERE job_id = 2 AND name LIKE '%-src'")
	dst=$(jv "SELECT path FROM provisioned_device WHERE job_id = 2 AND name LIKE '%-dst'")
	[ -b "$src" ] && [ -b "$dst" ] || fail "the overlay devices are not there: '$src' '$dst'"
	assert_eq "$(virsh domblklist "$dom" | awk '$1 == "vda" { print $2 }')" "$src" \
		"the active image during the move"
	# libvirt lists the job a moment after QEMU started it.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(block_jobs "$dom" vda)" = 1 ] && break
		sleep 0.5
	done
	[ "$(block_jobs "$dom" vda)" = 1 ] || { virsh dumpxml "$dom" | sed -n '/<disk/,/<\/disk>/p' >&2; cat "$T/err" >&2; tail -5 "/var/log/libvirt/qemu/$dom.log" >&2; fail "no mirror"; }
	assert_eq "$(virsh dumpxml "$dom" | xmllint --xpath \
		"string(//devices/disk[target/@dev='vda']/mirror/source/@dev)" -)" "$dst" \
		"the mirror's target (a block device)"
	guest_write "$dom" vda 0x5c 8M 4M
	expect_exit 0 sm abort 2
	assert_eq "$(live_chain "$dom" vda)" "$T/src/disk.qcow2 qcow2" "the chain after the abort"
	check_pattern "$T/src/disk.qcow2" qcow2 0x11 0 1M
	check_pattern "$T/src/disk.qcow2" qcow2 0x5c 8M 4M
	assert_eq "$(loops_of_test)" "" "loop devices after the abort"
	assert_eq "$(find "$LD" -mindepth 1 | wc -l)" 0 "files in the loop folder"
	assert_eq "$(jv "SELECT group_concat(state) FROM provisioned_device WHERE job_id = 2")" \
		"removed,removed" "the job's devices"
	assert_eq "$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 2 AND r.op = 'remove' AND r.exit_status = 0")" \
		2 "journaled removals"
	assert_eq "$(jv "SELECT state FROM job WHERE id = 2")" aborted "the job"
}
run_case "abort in the middle of the mirror removes the overlay devices" case_abort_mid_mirror

# The journal edited so that the job's destination overlay device's row
# names another loop device (a decoy of the test, not made by snapmove): the
# abort undoes the move but removes nothing but what it made, re-checked
# against the journaled device number: the decoy stays attached, untouched,
# and the job's own device is kept with a warning; with the row put back,
# 'snapmove cleanup' of the aborted job removes it.
# (Made here: a deferred command belongs outside the cases' subshells.)
truncate -s 16M "$T/decoy.img"
decoy=$(losetup --find --show "$T/decoy.img")
defer "losetup -d $decoy"
printf 'decoy' | dd of="$decoy" conv=notrunc status=none
case_edited_row() {
	local job dstid real
	SNAPMOVE_TEST_CRASH_AT=copy:start expect_exit 137 sm move "$dom" --dest "$T/dst" \
		"${PROV[@]}" --overlay-size 16M
	job=$(jv "SELECT max(id) FROM job")
	dstid=$(jv "SELECT id FROM provisioned_device WHERE job_id = $job AND name LIKE '%-dst'")
	real=$(jv "SELECT path FROM provisioned_device WHERE id = $dstid")
	jv "UPDATE provisioned_device SET path = '$decoy' WHERE id = $dstid"
	expect_exit 0 sm abort "$job"
	assert_contains "$T/err" "kept overlay device $real"
	assert_contains "$T/err" "snapmove acts only on the device it journaled"
	assert_eq "$(live_chain "$dom" vda)" "$T/src/disk.qcow2 qcow2" "the chain after the abort"
	assert_eq "$(losetup --list --noheadings --output BACK-FILE "$decoy" | sed 's/ *$//')" \
		"$T/decoy.img" "the decoy's backing file"
	assert_eq "$(head -c 5 "$T/decoy.img")" decoy "the decoy's data"
	[ -b "$real" ] || fail "the job's own device '$real' went without its provisioner"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = $dstid")" created \
		"the edited device's state"
	jv "UPDATE provisioned_device SET path = '$real' WHERE id = $dstid"
	expect_exit 0 sm cleanup "$job"
	assert_contains "$T/err" "removed device $dstid ('$real') of job $job"
	assert_eq "$(loops_of_test)" "" "loop devices after cleanup"
	assert_eq "$(jv "SELECT group_concat(state) FROM provisioned_device WHERE job_id = $job")" \
		"removed,removed" "the job's devices after cleanup"
}
run_case "a journal row edited to name another device: that device is never removed" case_edited_row

# After the pivot: the guest writes 24 MiB onto the destination overlay
# (its device grows alone), then snapmove is killed before the final commit.
# The abort moves the disk back: the source overlay's device is written anew
# and grown to the destination one's size before the mirror back copies
# into it, then the commit back; both devices removed.
# (Its domain made here: the test removes the domains it knows of, and a
# case runs in a subshell.)
d3=$T/ap
mkdir -m 755 "$d3" "$d3/src" "$d3/dst"
new_image "$d3/src/disk.qcow2" qcow2 128M 0x33 0 1M
dom3=$(dom_name 3)
make_domain "$dom3" transient "vda:$d3/src/disk.qcow2:qcow2"
case_abort_after_pivot() {
	local d=$d3 alias before
	alias=$(disk_alias "$dom3" vda)
	cat >"$d/hook" <<HOOK
#!/bin/bash
set -euo pipefail
[ "\$1" = collapse ] || exit 0
for i in \$(seq 0 23); do
	virsh -c qemu:///system -q qemu-monitor-command '$dom3' --hmp \
		"qemu-io -d $alias/virtio-backend \"write -P \$((0x90 + i)) \$((40 + i))M 1M\"" >/dev/null
done
sleep 1  # the last growth journaled
kill -9 \$PPID
HOOK
	chmod 755 "$d/hook"
	SNAPMOVE_TEST_HOOK=$d/hook expect_exit 137 sm move "$dom3" --dest "$d/dst" \
		"${PROV[@]}" --overlay-size 16M
	local job src dst
	job=$(jv "SELECT max(id) FROM job")
	src=$(jv "SELECT path FROM provisioned_device WHERE job_id = $job AND name LIKE '%-src'")
	dst=$(jv "SELECT path FROM provisioned_device WHERE job_id = $job AND name LIKE '%-dst'")
	assert_eq "$(virsh domblklist "$dom3" | awk '$1 == "vda" { print $2 }')" "$dst" \
		"the active image after the pivot"
	[ "$(blockdev --getsize64 "$dst")" -gt "$(blockdev --getsize64 "$src")" ] ||
		fail "the destination overlay's device did not grow past the source one's"
	before=$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.id = (SELECT id FROM provisioned_device WHERE path = '$src' AND job_id = $job) AND r.op = 'extend'")
	expect_exit 0 sm abort "$job"
	assert_contains "$T/err" "grown to"
	[ "$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = $job AND d.name LIKE '%-src' AND r.op = 'extend'")" -gt "$before" ] ||
		fail "the abort did not grow the source overlay's device before the mirror back"
	assert_eq "$(live_chain "$dom3" vda)" "$d/src/disk.qcow2 qcow2" "the chain after the abort"
	check_pattern "$d/src/disk.qcow2" qcow2 0x33 0 1M
	for i in $(seq 0 23); do
		check_pattern "$d/src/disk.qcow2" qcow2 $((0x90 + i)) $((40 + i))M 1M
	done
	assert_eq "$(loops_of_test)" "" "loop devices after the abort"
	assert_eq "$(jv "SELECT group_concat(state) FROM provisioned_device WHERE job_id = $job")" \
		"removed,removed" "the job's devices"
}
run_case "abort after the pivot: the source overlay's device grown, the disk moved back" case_abort_after_pivot

case_cleanup_removes_left_devices() {
	touch "$H/prov/busy"
	expect_exit 0 sm move "$dom" --dest "$T/dst" --overlay-provisioner "$H/prov/noremove" \
		--overlay-size 16M --overlay-set "LOOP_DIR=$LD"
	assert_contains "$T/err" "kept overlay device"
	assert_contains "$T/err" "noremove: '"
	local job
	job=$(jv "SELECT max(id) FROM job")
	assert_eq "$(loops_of_test | wc -l)" 2 "loop devices the move could not remove"
	assert_eq "$(jv "SELECT group_concat(state) FROM provisioned_device WHERE job_id = $job")" \
		"removing,removing" "the job's devices"
	rm "$H/prov/busy"
	expect_exit 0 sm cleanup "$job"
	assert_contains "$T/err" "removed device "
	assert_eq "$(loops_of_test)" "" "loop devices after cleanup"
	assert_eq "$(jv "SELECT group_concat(state) FROM provisioned_device WHERE job_id = $job")" \
		"removed,removed" "the job's devices after cleanup"
	assert_eq "$(find "$LD" -mindepth 1 | wc -l)" 0 "files in the loop folder"
}
run_case "cleanup removes the overlay devices a move could not" case_cleanup_removes_left_devices

assert_eq "$(loops_of_test)" "" "loop devices at the end"
cases_done
echo "PASS"
