#!/usr/bin/env bash
# serial: kills libvirtd (SIGKILL, lvkill-lib.sh) and starts it again: every other test's libvirt calls would fail meanwhile
# libvirtd killed inside the pivot of the shallow mirror (bench/chaos.sh
# CHAOS_AT=pivot, issue 12): the pivot of a shallow copy first opens the
# destination chain in QEMU (blockdev-add of dst/base.raw, then dst/top.qcow2,
# 'libvirt-5-*', 'libvirt-6-*'), then completes the job.  Killed in between,
# the new libvirtd shows the mirror ready and names those nodes the same at
# the next pivot, so the first resume failed: "cannot pivot disk 'vda' to
# '.../dst/top.qcow2.snapmove-1.qcow2': internal error: unable to execute QEMU
# command 'blockdev-add': Duplicate nodes with node-name='libvirt-6-storage'"
# (the next try used new names).  resume now closes those nodes first and
# finishes at once; abort leaves nothing of the job open in QEMU.  Killed
# a moment later, the chain was the backing of the mirror's target
# ("Node 'libvirt-7-format' is busy: node is used as backing hd of
# 'libvirt-4-format'", seen once under load): resume takes it off first.  It kills
# the host's libvirtd (a second or two each case).  See lvkill-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"
. "$(dirname "$0")/lvkill-lib.sh"

ic_reserve pivot-resume pivot-abort attached-resume attached-abort

# The move, libvirtd killed as the pivot opens the destination base image;
# libvirtd restarted: the mirror is still ready, QEMU holds that image.
move_killed_in_pivot() {
	lk_move_killed pivot "$C/dst/base.raw"
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the restart"
	assert_eq "$(live_chain "$DOM" vda | head -n1)" \
		"$C/dst/top.qcow2.snapmove-1.src.qcow2 qcow2" "active image after the restart"
	assert_eq "$(qemu_jobs)" "copy-vda-libvirt-3-format" "QEMU's block jobs after the restart"
	[ -n "$(qemu_nodes_on "$C/dst/base.raw")" ] ||
		fail "QEMU does not hold '$C/dst/base.raw': the kill missed the pivot"
}

case_pivot_resume() {
	ic_setup pivot-resume
	ic_write 0x21 3M flush
	move_killed_in_pivot
	ic_write 0x31 6M flush
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "closed '$C/dst/base.raw' (QEMU node 'libvirt-"
	assert_eq "$(qemu_nodes_on "$C/dst/base.raw" | wc -l)" 1 "QEMU nodes on dst/base.raw"
	no_job_nodes
	ic_check done
}
run_case "libvirtd killed inside the pivot: the first resume finishes" case_pivot_resume

case_pivot_abort() {
	ic_setup pivot-abort
	ic_write 0x21 3M flush
	move_killed_in_pivot
	ic_write 0x31 6M flush
	expect_exit 0 smc abort 1
	assert_contains "$T/err" "closed '$C/dst/base.raw' (QEMU node 'libvirt-"
	no_job_nodes "$C/dst/base.raw" "$C/dst/top.qcow2"
	ic_check aborted
}
run_case "libvirtd killed inside the pivot: abort leaves nothing of the job open" \
	case_pivot_abort

# What a kill a moment later leaves (seen once under load): libvirtd had
# also opened dst/top.qcow2 and installed the destination chain as the
# backing of the mirror's target (the 'blockdev-snapshot' transaction it
# sends before 'job-complete'), and recorded none of it.  Done here through
# QMP as libvirt 9.0 does it, with the node names it gives.
attach_lost_chain() {
	local ovl=$C/dst/top.qcow2.snapmove-1.qcow2 st n tgt
	st=$(qemu_nodes_on "$C/dst/base.raw" | head -n1)
	case "$st" in libvirt-*-storage) ;; *) fail "unexpected node on dst/base.raw: '$st'" ;; esac
	n=${st#libvirt-}; n=${n%-storage}
	tgt=$(qemu_nodes_on "$ovl" | head -n1)
	tgt=${tgt%-storage}-format
	case "$tgt" in libvirt-*-format) ;; *) fail "mirror target node on '$ovl': '$tgt'" ;; esac
	virsh -q qemu-monitor-command "$DOM" "{\"execute\":\"blockdev-add\",\"arguments\":
		{\"node-name\":\"libvirt-$n-format\",\"driver\":\"raw\",\"read-only\":true,
		 \"file\":\"$st\"}}" >/dev/null
	virsh -q qemu-monitor-command "$DOM" "{\"execute\":\"blockdev-add\",\"arguments\":
		{\"node-name\":\"libvirt-$((n + 1))-storage\",\"driver\":\"file\",
		 \"filename\":\"$C/dst/top.qcow2\",\"auto-read-only\":true,\"discard\":\"unmap\"}}" \
		>/dev/null
	virsh -q qemu-monitor-command "$DOM" "{\"execute\":\"blockdev-add\",\"arguments\":
		{\"node-name\":\"libvirt-$((n + 1))-format\",\"driver\":\"qcow2\",\"read-only\":true,
		 \"file\":\"libvirt-$((n + 1))-storage\",\"backing\":\"libvirt-$n-format\"}}" >/dev/null
	virsh -q qemu-monitor-command "$DOM" "{\"execute\":\"transaction\",\"arguments\":
		{\"actions\":[{\"type\":\"blockdev-snapshot\",\"data\":
		{\"node\":\"libvirt-$((n + 1))-format\",\"overlay\":\"$tgt\"}}]}}" >/dev/null
	assert_eq "$(qemu_jobs)" "copy-vda-libvirt-3-format" "QEMU's block jobs"
}

case_attached_resume() {
	ic_setup attached-resume
	ic_write 0x21 3M flush
	move_killed_in_pivot
	attach_lost_chain
	ic_write 0x31 6M flush
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "took '$C/dst/top.qcow2' off the backing of QEMU node 'libvirt-"
	assert_contains "$T/err" "closed '$C/dst/top.qcow2' (QEMU node 'libvirt-"
	no_job_nodes
	ic_check done
}
run_case "killed after the pivot attached the destination chain: the first resume finishes" \
	case_attached_resume

case_attached_abort() {
	ic_setup attached-abort
	ic_write 0x21 3M flush
	move_killed_in_pivot
	attach_lost_chain
	ic_write 0x31 6M flush
	expect_exit 0 smc abort 1
	no_job_nodes "$C/dst/base.raw" "$C/dst/top.qcow2"
	ic_check aborted
}
run_case "killed after the pivot attached the destination chain: abort leaves nothing open" \
	case_attached_abort

cases_done
