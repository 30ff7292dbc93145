#!/usr/bin/env bash
# Overlays on devices that grow (move --overlay-provisioner): both overlays
# of the disk are qcow2 images on loop devices the shipped 'loop'
# provisioner makes, 16 MiB to start.  A heavy guest writer (HMP qemu-io,
# 1 MiB writes back to back) writes 128 MiB while the source overlay is the
# active image and the mirror runs (the test hook at the copy phase), then
# 24 MiB more after the pivot, while the destination overlay is active and
# the final commit runs.  (A write of HMP's qemu-io that found the device
# full does not go through the disk's error policy, so it would not pause
# the domain, as a guest's would, and virsh does not show its error: every
# write is read back from the destination instead.)  The source overlay's device must grow at least
# three times (journaled extends), the destination overlay's too, the
# domain must never pause (no Suspended lifecycle event, no resume said),
# every write must be on the destination at the end, and no device, loop
# file or journaled device may be left.  Then a move killed during its
# mirror and resumed: the resumed job grows them again.  Then the test
# guest (tests/guest) writing faster than a slow provisioner grows them:
# paused on ENOSPC, grown and resumed by snapmove, which says so.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hmpw-lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v losetup >/dev/null || sm_skip "no losetup on this host (util-linux's mount package)"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

# The shipped provisioner in a folder only root can write; its loop files in
# the test's folder.
mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/loop" "$H/prov/loop"
LD=$T/loop
defer "for f in '$LD'/*; do losetup --list --noheadings --output NAME --associated \"\$f\" | xargs -r -n1 losetup -d; done"
loops_of_test() {  # the loop devices over files of $LD
	losetup --list --noheadings --output NAME,BACK-FILE | awk -v d="$LD/" 'index($2, d) == 1 { print $1 }'
}

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 256M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"

# The hook: at the copy phase (the mirror runs, the source overlay is
# active) 128 writes of 1 MiB at 1..128 MiB (while the mirror writes both
# sides the devices grow two chunks at a time: enough to grow them at least
# three times); at the collapse phase (the destination overlay is active)
# 24 more at 150..173 MiB.  Each write is logged once QEMU wrote it
# (hmpw-lib.sh: one that found a device full is written again, counted).
hmpw_file "$dom" "$T/writes" "$T/w.sh"
cat >"$T/hook" <<HOOK
#!/bin/bash
set -euo pipefail
. '$T/w.sh'
case \$1 in
copy) for i in \$(seq 1 128); do w \$((0x40 + i % 64)) \$i; done ;;
collapse) for i in \$(seq 0 23); do w \$((0xc0 + i)) \$((150 + i)); done ;;
esac
HOOK
chmod 755 "$T/hook"

timeout 600 virsh event "$dom" --event lifecycle --loop >"$T/lifecycle" 2>&1 &
ev=$!
defer "kill $ev"
sleep 0.5

SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst" \
	--overlay-provisioner "$H/prov/loop" --overlay-size 16M --overlay-set "LOOP_DIR=$LD"
kill "$ev" 2>/dev/null || true

jv() { sqlite3 "$DB" "$1"; }

case_grew() {
	local src_ext dst_ext
	src_ext=$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 1 AND d.name LIKE '%-src' AND r.op = 'extend' AND r.exit_status = 0")
	dst_ext=$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 1 AND d.name LIKE '%-dst' AND r.op = 'extend' AND r.exit_status = 0")
	note "source overlay device extended $src_ext times, destination overlay device $dst_ext times"
	[ "$src_ext" -ge 3 ] || fail "the source overlay's device grew $src_ext times, not at least 3"
	[ "$dst_ext" -ge 3 ] || fail "the destination overlay's device grew $dst_ext times, not at least 3"
	# Started at 16 MiB; the source one holds the 128 MiB written on it.
	[ "$(jv "SELECT min(r.bytes) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 1 AND r.op = 'create'")" = 16777216 ] ||
		fail "the overlay devices did not start at 16 MiB"
	[ "$(jv "SELECT max(r.bytes) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 1 AND d.name LIKE '%-src' AND r.op = 'extend'")" -gt 134217728 ] ||
		fail "the source overlay's device never grew past 128 MiB"
	assert_contains "$T/err" "grown to"
}
run_case "the overlay devices grew at least three times each, journaled" case_grew

case_never_paused() {
	assert_eq "$(wc -l <"$T/writes")" 152 "acknowledged guest writes"
	if grep -q "Suspended" "$T/lifecycle"; then
		fail "the domain paused during the move: $(cat "$T/lifecycle")"
	fi
	if grep -q "paused on a full overlay" "$T/err"; then
		fail "snapmove resumed a paused domain: $(grep paused "$T/err")"
	fi
	assert_eq "$(virsh domstate "$dom")" running "the domain's state"
	note "$(hmpw_failed "$T/writes") of 152 HMP writes found a device full and were written again"
}
run_case "the domain never paused" case_never_paused

case_data() {
	assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2" "the chain after the move"
	check_pattern "$T/dst/disk.qcow2" qcow2 0x11 0 1M
	while read -r pat off; do
		check_pattern "$T/dst/disk.qcow2" qcow2 "$pat" "${off}M" 1M
	done <"$T/writes"
}
run_case "every write is on the destination" case_data

case_nothing_left() {
	assert_eq "$(loops_of_test)" "" "loop devices left over the test's files"
	assert_eq "$(find "$LD" -mindepth 1 | wc -l)" 0 "files left in the loop folder"
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device WHERE state != 'removed'")" 0 \
		"journaled devices not removed"
	assert_eq "$(jv "SELECT count(*) FROM provisioned_device")" 2 "journaled devices"
	assert_eq "$(jv "SELECT group_concat(state) FROM file WHERE role IN ('src_overlay', 'dst_overlay')")" \
		"removed,removed" "the overlays' file rows"
}
run_case "no device is left" case_nothing_left

# A move killed while its mirror runs (nothing grows the overlays then),
# resumed: the resumed job grows them again while the guest writes 40 MiB
# more at the copy phase (the resumed mirror running), and finishes.
mkdir -m 755 "$T/src2" "$T/dst2"
new_image "$T/src2/disk.qcow2" qcow2 256M 0x22 0 1M
dom2=$(dom_name 2)
make_domain "$dom2" transient "vda:$T/src2/disk.qcow2:qcow2"
hmpw_file "$dom2" "$T/writes2" "$T/w2.sh"
cat >"$T/hook2" <<HOOK
#!/bin/bash
set -euo pipefail
[ "\$1" = copy ] || exit 0
. '$T/w2.sh'
for i in \$(seq 1 40); do w \$((0x60 + i)) \$i; done
HOOK
chmod 755 "$T/hook2"

case_resume_grows() {
	SNAPMOVE_TEST_CRASH_AT=copy:start expect_exit 137 sm move "$dom2" --dest "$T/dst2" \
		--overlay-provisioner "$H/prov/loop" --overlay-size 16M --overlay-set "LOOP_DIR=$LD"
	assert_eq "$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 2 AND r.op = 'extend'")" \
		0 "extends before the resume"
	SNAPMOVE_TEST_HOOK=$T/hook2 expect_exit 0 sm resume 2
	[ "$(jv "SELECT count(*) FROM provision_run r JOIN provisioned_device d ON d.id = r.device_id WHERE d.job_id = 2 AND d.name LIKE '%-src' AND r.op = 'extend' AND r.exit_status = 0")" -ge 2 ] ||
		fail "the resumed job did not grow the source overlay's device twice"
	assert_eq "$(live_chain "$dom2" vda)" "$T/dst2/disk.qcow2 qcow2" "the chain after the resume"
	check_pattern "$T/dst2/disk.qcow2" qcow2 0x22 0 1M
	while read -r pat off; do
		check_pattern "$T/dst2/disk.qcow2" qcow2 "$pat" "${off}M" 1M
	done <"$T/writes2"
	assert_eq "$(wc -l <"$T/writes2")" 40 "acknowledged guest writes"
	assert_eq "$(loops_of_test)" "" "loop devices after the resume"
	assert_eq "$(jv "SELECT group_concat(state) FROM provisioned_device WHERE job_id = 2")" \
		"removed,removed" "the resumed job's devices"
}
run_case "a resumed move grows the overlays again" case_resume_grows

# A real guest (tests/guest) writing faster than the overlays grow: its
# provisioner takes 3 s per extend, and the guest's dd writes 64 MiB with
# O_DIRECT while the mirror runs.  The guest's writes fill the device before
# it grows, QEMU pauses the domain on ENOSPC (its disk's error policy; what
# HMP's qemu-io above never triggers), and snapmove grows the devices,
# resumes the domain and says so; the guest's data is whole at the end.
cat >"$H/prov/slowext" <<P
#!/bin/sh
[ "\$1" = extend ] && sleep 3
exec '$H/prov/loop' "\$@"
P
chmod 755 "$H/prov/slowext"

# (Its domain made here: the test removes the domains it knows of, and a
# case runs in a subshell.)
d3=$T/pause
mkdir -m 755 "$d3" "$d3/src" "$d3/dst"
qemu-img create -q -f qcow2 "$d3/src/disk.qcow2" 256M
dom3=$(dom_name 3)
guest_domain "$dom3" transient - "vda:$d3/src/disk.qcow2:qcow2"

case_paused_resumed() {
	local d=$d3 ev3 sums
	guest_wait_agent "$dom3" 180
	# The hook starts the writer in the guest and waits for its end (the
	# agent does not answer while the domain is paused: asked again).
	cat >"$d/hook" <<HOOK
#!/bin/bash
[ "\$1" = copy ] || exit 0
virsh -q qemu-agent-command '$dom3' '{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","yes snapmove-t0219 | head -c 67108864 >/tmp/pat; dd if=/tmp/pat of=/dev/vda bs=1M seek=8 oflag=direct 2>/tmp/dd.err && echo done >/tmp/dd.done"]}}' >/dev/null
for i in \$(seq 1 600); do
	sleep 0.5
	out=\$(virsh -q qemu-agent-command '$dom3' --timeout 2 '{"execute":"guest-exec","arguments":{"path":"/bin/cat","arg":["/tmp/dd.done"]}}' 2>/dev/null) || continue
	pid=\$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"\$out")
	sleep 0.3
	st=\$(virsh -q qemu-agent-command '$dom3' --timeout 2 "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":\$pid}}" 2>/dev/null) || continue
	case "\$st" in *'"exitcode":0'*) exit 0 ;; esac
done
echo "the guest's writer did not end" >&2
exit 1
HOOK
	chmod 755 "$d/hook"
	timeout 900 virsh event "$dom3" --event lifecycle --loop >"$d/lifecycle" 2>&1 &
	ev3=$!
	sleep 0.5
	SNAPMOVE_TEST_HOOK=$d/hook expect_exit 0 sm move "$dom3" --dest "$d/dst" \
		--overlay-provisioner "$H/prov/slowext" --overlay-size 16M --overlay-set "LOOP_DIR=$LD"
	kill "$ev3" 2>/dev/null || true
	assert_contains "$T/err" "paused on a full overlay device (the guest wrote faster than it grew); it was grown and resumed"
	assert_contains "$d/lifecycle" "Suspended I/O Error"
	assert_contains "$d/lifecycle" "Resumed"
	assert_eq "$(virsh domstate "$dom3")" running "the domain's state after the move"
	assert_eq "$(live_chain "$dom3" vda)" "$d/dst/disk.qcow2 qcow2" "the chain after the move"
	# What the guest wrote, read back through the moved disk.
	sums=$(guest_exec "$dom3" "md5sum </tmp/pat; dd if=/dev/vda bs=1M skip=8 count=64 iflag=direct 2>/dev/null | md5sum")
	[ "$(sed -n 1p <<<"$sums")" = "$(sed -n 2p <<<"$sums")" ] ||
		fail "the guest's 64 MiB differ on the moved disk: $sums"
	assert_eq "$(loops_of_test)" "" "loop devices after the move"
}
run_case "a guest faster than the growth: paused on ENOSPC, grown and resumed, data whole" case_paused_resumed

[ ${#SM_FAILED_CASES[@]} = 0 ] || fail "cases failed: ${SM_FAILED_CASES[*]}"
echo "PASS"
