#!/usr/bin/env bash
# Everything on block storage at once, as an oVirt/Proxmox user has it: a
# live move with --dest-provisioner and --overlay-provisioner (the shipped
# 'loop' provisioner, its loop files in this test's folder; overlays of
# 16 MiB to start), nothing written to files.
# 1. A raw disk on a loop device (<disk type='block'>) moves onto a device
#    the provisioner makes for the job; 2. a qcow2 file disk does too.  The
#    guest writes in every phase, 24 MiB while the mirror runs (the source
#    overlay active) and 24 MiB while the final commit runs (the destination
#    overlay active): both overlay devices grow.  At the end the disk is
#    <disk type='block'> on the job's device in the live XML and the
#    definition, every write is on it (read offline), the overlay devices
#    are removed (journal and loop devices: of the test's, only the source
#    and the destination are left) and 'cleanup' keeps the destination.
# 3. Moves killed (SNAPMOVE_TEST_CRASH_AT) at copy:start, pivot:done and
#    collapse:start:
#    'resume' ends as above; 'abort' puts the domain back on its source
#    device (or file) with every write there, and removes every device the
#    job made (destination and overlays).
# Every loop device and domain the test made is gone at the end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"
. "$(dirname "$0")/hmpw-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

P=$H/prov/loop
mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/loop" "$P"
# The provisioner's loop files: in this test's own folder.
LD=$T/loop
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"
PROV=(--dest-provisioner "$P" --set "LOOP_DIR=$LD" --overlay-provisioner "$P"
	--overlay-size 16M --overlay-set "LOOP_DIR=$LD")

jv() {  # SQL: one value of this test's journal
	sqlite3 "$DB" "$1"
}
ours() {  # the loop devices over a file of this test (sources and the provisioner's)
	losetup --list --noheadings --output NAME,BACK-FILE | awk -v d="$T/" 'index($2, d) == 1 { print $1 }' | sort
}
last_job() {
	jv "SELECT max(id) FROM job"
}

# new_loop FILE: a loop device over FILE, in $loop (not in a subshell:
# defer must reach this shell).
new_loop() {
	loop=$(losetup --find --show "$1") || fail "losetup cannot attach a loop device"
	# (By its file: the test detaches some early, and their numbers may be
	# another test's by then.)
	defer "losetup --list --noheadings --output NAME --associated '$1' | xargs -r -n1 losetup -d"
	[ -b "$loop" ] || fail "'$loop' is not a block device"
}

block_disk() {  # TARGET DEV FORMAT
	echo "<disk type='block' device='disk'><driver name='qemu' type='$3'/>
<source dev='$2'/><target dev='$1' bus='virtio'/></disk>"
}

disk_is() {  # DOM TARGET "TYPE SOURCE FORMAT" WHAT
	local p xml got
	for p in "" --inactive; do
		xml=$(virsh dumpxml $p "$1")
		got="$(xmllint --xpath "string(//disk[target/@dev='$2']/@type)" - <<<"$xml") $(
			xmllint --xpath "string(//disk[target/@dev='$2']/source/@dev | //disk[target/@dev='$2']/source/@file)" - <<<"$xml") $(
			xmllint --xpath "string(//disk[target/@dev='$2']/driver/@type)" - <<<"$xml")"
		assert_eq "$got" "$3" "$4: disk ${p:-live}"
	done
}

# new_source NAME KIND: a 128 MiB disk for a domain: "dev" a raw image on a
# loop device (source in $src, "block"), "file" a qcow2 file.
new_source() {
	if [ "$2" = dev ]; then
		new_image "$T/dev/$1.img" raw 128M 0x11 0 1M
		new_loop "$T/dev/$1.img"
		src=$loop src_type=block src_fmt=raw
	else
		new_image "$T/src/$1.qcow2" qcow2 128M 0x11 0 1M
		src=$T/src/$1.qcow2 src_type=file src_fmt=qcow2
	fi
}

# new_dom NAME KIND: a persistent domain on a new source (new_source), in $d.
new_dom() {
	new_source "$1" "$2"
	d=$(dom_name "$1")
	if [ "$2" = dev ]; then
		make_domain_xml "$d" persistent "$(block_disk vda "$src" raw)"
	else
		make_domain "$d" persistent "vda:$src:qcow2"
	fi
	guest_write "$d" vda 0x13 2M 64k
}

# make_hook DOM LOG: the guest writes 1 MiB blocks in every phase, each
# logged ("PATTERN OFFSET_MIB") once QEMU said it wrote it: 24 MiB at
# 32..55 MiB while the mirror runs, 24 MiB at 64..87 MiB in the final
# commit (the destination overlay active), one in every other phase.  A
# write of HMP's qemu-io that found an overlay device full fails with no
# pause (not through the disk's error policy: see t0219), virsh exits 0 and
# qemu-io says it in the domain's QEMU log only: the hook reads it there and
# writes it again, as QEMU retries a guest's write once the domain paused on
# ENOSPC is resumed (LOG.failed keeps each failure; hmpw-lib.sh).
make_hook() {
	hmpw_file "$1" "$2" "$2.w.sh"
	cat >"$T/hook" <<HOOK
#!/bin/bash
set -euo pipefail
. '$2.w.sh'
case \$1 in
copy) for i in \$(seq 0 23); do w \$((0x40 + i)) \$((32 + i)); done ;;
sync) w 0x22 4 ;;
pivot) w 0x23 5 ;;
collapse) for i in \$(seq 0 23); do w \$((0x60 + i)) \$((64 + i)); done ;;
finalize) w 0x25 6 ;;
esac
HOOK
	chmod 755 "$T/hook"
}

# has_writes IMAGE FORMAT LOG: every write of the test is on IMAGE.
has_writes() {
	local pat off
	if [ -s "$3.failed" ]; then
		note "$(wc -l <"$3.failed") hook writes failed and were written again, first: $(head -n1 "$3.failed")"
	fi
	check_pattern "$1" "$2" 0x11 0 1M
	check_pattern "$1" "$2" 0x13 2M 64k
	check_pattern "$1" "$2" 0x00 100M 1M
	while read -r pat off; do
		check_pattern "$1" "$2" "$pat" "${off}M" 1M
	done <"$3"
}

# grew JOB: each overlay device of the job was extended (journaled).
grew() {
	local end n
	for end in src dst; do
		n=$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = $1 AND d.name LIKE '%-$end' AND r.op = 'extend' AND r.exit_status = 0")
		note "job $1: the $end overlay's device extended $n times"
		[ "$n" -ge 1 ] || fail "job $1: the $end overlay's device never grew"
	done
	assert_eq "$(jv "SELECT min(r.bytes) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = $1 AND d.name LIKE '%-src' AND r.op = 'create'")" \
		16777216 "job $1: the source overlay's device at the start"
}

# on_dest JOB DOM FORMAT LOG [SRC]: the job is done, the domain on the job's
# device, its overlay devices removed, every write on the device; cleanup
# keeps the device.  Then the job is forgotten and its device removed.
on_dest() {
	local job=$1 d=$2 fmt=$3 log=$4 src=${5:-} dev
	dev=$(jv "SELECT path FROM provisioned_device WHERE job_id = $job AND name = 'snapmove-$job-vda'")
	case "$dev" in /dev/loop[0-9]*) ;; *) fail "job $job: the job's device is '$dev'" ;; esac
	assert_eq "$(jv "SELECT state FROM job WHERE id = $job")" "done" "job $job: state"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = (SELECT id FROM provisioned_device WHERE job_id = $job AND name = 'snapmove-$job-vda')")" \
		created "job $job: the destination device's state"
	disk_is "$d" vda "block $dev $fmt" "job $job"
	assert_eq "$(block_job_count "$d" vda)" 0 "job $job: block jobs"
	assert_eq "$(jv "SELECT count(*) || ' ' || group_concat(DISTINCT state) FROM provisioned_device WHERE job_id = $job AND name != 'snapmove-$job-vda'")" \
		"2 removed" "job $job: the overlay devices (journaled)"
	assert_eq "$(jv "SELECT group_concat(DISTINCT state) FROM file WHERE job_id = $job AND role IN ('src_overlay', 'dst_overlay')")" \
		removed "job $job: the overlays' file rows"
	assert_eq "$(ours)" "$({ [ -z "$src" ] || echo "$src"; echo "$dev"; } | sort)" "job $job: the test's loop devices"
	assert_eq "$(find "$LD" -name "snapmove-$job-vda-*" | wc -l)" 0 "job $job: overlay loop files left"
	assert_eq "$(ls -A "$T/dst")" "" "job $job: files left in the destination folder"
	guest_write "$d" vda 0x31 8M 64k
	virsh -q destroy "$d" >/dev/null
	has_writes "$dev" "$fmt" "$log"
	check_pattern "$dev" "$fmt" 0x31 8M 64k
	expect_exit 0 sm cleanup "$job"
	if [ ! -b "$dev" ] || [ "$(jv "SELECT state FROM provisioned_device WHERE job_id = $job AND name = 'snapmove-$job-vda'")" != created ]; then
		fail "job $job: cleanup removed the destination device"
	fi
	has_writes "$dev" "$fmt" "$log"
	# (No definition may name the device once it is gone: see lib.sh.)
	virsh -q undefine "$d" >/dev/null
	expect_exit 0 sm forget "$job"
	expect_exit 0 sm provision remove "$dev"
}

mkdir -m 755 "$T/dev" "$T/src" "$T/dst"

# ---- 1, 2: a device, and a qcow2 file, onto a provisioned device ----
# live_move KIND: a move of a new domain's disk (new_dom) onto a device.
live_move() {
	local job
	make_hook "$d" "$T/$1.log"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$d" --dest "$T/dst" --disk vda "${PROV[@]}"
	assert_contains "$T/out" "moved domain $d"
	job=$(last_job)
	assert_eq "$(wc -l <"$T/$1.log")" 51 "$1: acknowledged hook writes"
	grew "$job"
	if [ "$1" = dev ]; then
		on_dest "$job" "$d" raw "$T/$1.log" "$src"
	else
		on_dest "$job" "$d" qcow2 "$T/$1.log"
		assert_absent "$src"
	fi
}
case_dev() { live_move dev; }
case_file() { live_move file; }
new_dom dev dev
run_case "a raw disk on a device onto a provisioned device, overlays on devices" case_dev
virsh -q undefine "$d" >/dev/null 2>&1 || true
losetup -d "$src"
new_dom file file
run_case "a qcow2 file disk onto a provisioned device, overlays on devices" case_file

# ---- 3: crashes, then resume or abort ----
# crashed NAME KIND POINT ACTION: a move of a new domain killed at POINT,
# the guest writes while nothing drives the job, ACTION ends it.
crashed() {
	local kind=$2 point=$3 action=$4 job devs dev
	make_hook "$d" "$T/$1.log"
	SNAPMOVE_TEST_HOOK=$T/hook SNAPMOVE_TEST_CRASH_AT=$point expect_exit 137 \
		sm move "$d" --dest "$T/dst" --disk vda "${PROV[@]}"
	assert_contains "$T/err" "test crash at '$point'"
	job=$(last_job)
	guest_write "$d" vda 0x41 9M 1M   # while nothing drives the job
	echo "0x41 9" >>"$T/$1.log"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm "$action" "$job"
	if [ "$action" = resume ]; then
		on_dest "$job" "$d" "$src_fmt" "$T/$1.log" "$([ "$kind" = dev ] && echo "$src")"
		return
	fi
	# abort: back on the source, every write there, every device removed.
	disk_is "$d" vda "$src_type $src $src_fmt" "$point abort"
	assert_eq "$(block_job_count "$d" vda)" 0 "$point abort: block jobs"
	devs=$(jv "SELECT count(*) FROM provisioned_device WHERE job_id = $job")
	[ "$devs" -ge 1 ] || fail "$point abort: the job made no device"
	assert_eq "$(jv "SELECT group_concat(DISTINCT state) FROM provisioned_device WHERE job_id = $job")" \
		removed "$point abort: the job's $devs devices"
	for dev in $(jv "SELECT path FROM provisioned_device WHERE job_id = $job AND path IS NOT NULL"); do
		losetup --list --noheadings --output NAME,BACK-FILE | grep -q "^$dev .*snapmove-$job-" &&
			fail "$point abort: the job's device $dev is still attached"
	done
	assert_eq "$(ours)" "$([ "$kind" = dev ] && echo "$src")" "$point abort: the test's loop devices"
	assert_eq "$(find "$LD" -name "snapmove-$job-*" | wc -l)" 0 "$point abort: loop files left"
	assert_eq "$(ls -A "$T/dst")" "" "$point abort: files left in the destination folder"
	guest_write "$d" vda 0x42 10M 64k
	virsh -q destroy "$d" >/dev/null
	has_writes "$src" "$src_fmt" "$T/$1.log"
	check_pattern "$src" "$src_fmt" 0x42 10M 64k
	virsh -q undefine "$d" >/dev/null
	expect_exit 0 sm forget "$job"
}
case_crashed() { crashed "$name" "$kind" "$ph:$at" "$action"; }
for c in copy:start:resume:dev pivot:done:resume:dev collapse:start:resume:file \
	copy:start:abort:dev pivot:done:abort:dev pivot:done:abort:file; do
	IFS=: read -r ph at action kind <<<"$c"
	name=$ph-$at-$action-$kind
	new_dom "$name" "$kind"
	run_case "killed at $ph:$at, then $action ($kind source)" case_crashed
	virsh -q undefine "$d" >/dev/null 2>&1 || true
	[ "$kind" != dev ] || losetup -d "$src"
done

[ "$(jv "SELECT count(*) FROM provisioned_device WHERE state != 'removed'")" = 0 ] ||
	fail "devices journaled and not removed: $(jv "SELECT id, name, state FROM provisioned_device WHERE state != 'removed'")"
assert_eq "$(ours)" "" "the test's loop devices at the end"
cases_done
