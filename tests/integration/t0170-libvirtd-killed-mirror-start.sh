#!/usr/bin/env bash
# serial: kills libvirtd (SIGKILL, lvkill-lib.sh) and starts it again: every other test's libvirt calls would fail meanwhile
# libvirtd killed inside virDomainBlockCopy (bench/chaos.sh, issue 12): QEMU
# had opened the destination overlay (blockdev-add of 'libvirt-4-storage',
# maybe 'libvirt-4-format', maybe the mirror job 'copy-vda-libvirt-3-format'
# too) and libvirtd died before it recorded any of it.  The new libvirtd
# ignores a job it does not track and names the next nodes the same, so
# every resume failed ("Duplicate nodes with node-name='libvirt-4-storage'")
# and every abort ("block-commit: Need a root block node", shown as "no
# error" before).  resume and abort now end that job and close those nodes
# (only on the job's target file, only while libvirt shows no job), say so,
# and finish; every write the guest made is on the final chain.  It kills
# the host's libvirtd (a second or two each case).  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"
. "$(dirname "$0")/lvkill-lib.sh"

ic_reserve nodes-resume job-resume job-abort

# The move, libvirtd killed once QEMU has the destination overlay open
# (libvirtd is then inside virDomainBlockCopy: blockdev-add done, its record
# not saved), libvirtd restarted.  The state it leaves: QEMU holds the
# destination overlay, libvirt shows no job.
move_killed_in_mirror_start() {
	local ovl=$C/dst/top.qcow2.snapmove-1.qcow2
	lk_move_killed mirror "$ovl"
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the restart"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs libvirt shows after the restart"
	[ -n "$(qemu_nodes_on "$ovl")" ] ||
		fail "QEMU does not hold '$ovl': the kill missed the mirror's start"
}

# What a kill a moment later leaves: libvirtd had also added the format
# node and started the mirror (what virDomainBlockCopy sends next, as it
# names it), and recorded neither.
add_lost_mirror() {
	local ovl=$C/dst/top.qcow2.snapmove-1.qcow2 st nodes
	st=$(qemu_nodes_on "$ovl" | head -n1)
	case "$st" in libvirt-*-storage) ;; *) fail "unexpected node on '$ovl': '$st'" ;; esac
	# all of virsh's output first: 'virsh | grep -q' can end virsh by SIGPIPE
	nodes=$(virsh qemu-monitor-command "$DOM" \
		'{"execute":"query-named-block-nodes","arguments":{"flat":true}}')
	[[ "$nodes" == *"\"node-name\":\"${st%-storage}-format\""* ]] ||
		virsh -q qemu-monitor-command "$DOM" "{\"execute\":\"blockdev-add\",\"arguments\":
			{\"node-name\":\"${st%-storage}-format\",\"driver\":\"qcow2\",
			 \"file\":\"$st\",\"backing\":null}}" >/dev/null
	virsh -q qemu-monitor-command "$DOM" "{\"execute\":\"blockdev-mirror\",\"arguments\":
		{\"job-id\":\"copy-vda-libvirt-3-format\",\"device\":\"libvirt-3-format\",
		 \"target\":\"${st%-storage}-format\",\"sync\":\"top\",
		 \"auto-finalize\":true,\"auto-dismiss\":false}}" >/dev/null
	assert_eq "$(qemu_jobs)" "copy-vda-libvirt-3-format" "QEMU's block jobs"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs libvirt shows"
}

case_nodes_resume() {
	ic_setup nodes-resume
	move_killed_in_mirror_start
	ic_write 0x31 6M flush
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "closed '$C/dst/top.qcow2.snapmove-1.qcow2' (QEMU node 'libvirt-"
	no_job_nodes
	ic_check done
}
run_case "libvirtd killed inside the mirror's start (nodes left): resume finishes" \
	case_nodes_resume

case_job_resume() {
	ic_setup job-resume
	move_killed_in_mirror_start
	add_lost_mirror
	ic_write 0x31 6M flush
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "cancelled QEMU's block job 'copy-vda-libvirt-3-format'"
	no_job_nodes
	ic_check done
}
run_case "a mirror job libvirt lost runs too: resume cancels it and finishes" case_job_resume

case_job_abort() {
	ic_setup job-abort
	move_killed_in_mirror_start
	add_lost_mirror
	ic_write 0x31 6M flush
	expect_exit 0 smc abort 1
	assert_contains "$T/err" "cancelled QEMU's block job 'copy-vda-libvirt-3-format'"
	! grep -q "no error" "$T/err" || fail "abort said 'no error'"
	no_job_nodes
	ic_check aborted
}
run_case "a mirror job libvirt lost runs too: abort cancels it and puts the disk back" \
	case_job_abort

cases_done
