#!/usr/bin/env bash
# --trim: once the move is done, the guest agent is asked to trim the guest's
# file systems (as Proxmox does, so thin storage stays thin).  A domain with
# no agent channel is refused before anything changes; with a channel but no
# agent answering (no guest OS here), the move is done (exit 0) and says,
# as a warning, that nothing was trimmed and why.  --trim is journaled.
# A guest that really trims (qemu-guest-agent in a Debian guest): t0201.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/json-lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/dst2"
new_image "$T/src/plain.qcow2" qcow2 64M 0x11 0 1M
plain=$(dom_name plain)
make_domain "$plain" transient "vda:$T/src/plain.qcow2:qcow2"
new_image "$T/src/ga.qcow2" qcow2 64M 0x21 0 1M
ga=$(dom_name ga)
make_domain_xml "$ga" transient "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='$T/src/ga.qcow2'/><target dev='vda' bus='virtio'/></disk>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"

case_no_channel() {
	save_state plain "$plain" vda "$T/src" "$T/dst"
	expect_refused_unchanged plain \
		"domain '$plain' has no guest agent channel, so --trim cannot ask the guest to trim; add <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel> and run qemu-guest-agent in the guest, or leave --trim out" \
		sm move "$plain" --dest "$T/dst" --trim
	expect_exit 2 sm move "$plain" --dest "$T/dst" --trim --offline
	assert_contains "$T/err" "--trim asks the running guest's agent to trim"
}
run_case "no agent channel: refused" case_no_channel

case_no_agent() {
	expect_exit 0 sm --json move "$ga" --dest "$T/dst2" --trim
	assert_events "$T/out"
	assert_eq "$(jev "$T/out" 'ev("result")[0]["trimmed"]')" false "trimmed in the result"
	assert_contains "$T/out" "\"message\":\"the guest's file systems were not trimmed: "
	assert_contains "$T/err" "moved domain $ga"
	assert_contains "$T/err" "warning: the guest's file systems were not trimmed: "
	assert_contains "$T/err" "agent"
	assert_contains "$T/err" "; the move is done"
	assert_eq "$(live_chain "$ga" vda)" "$T/dst2/ga.qcow2 qcow2" "chain after the move"
	assert_eq "$(sqlite3 "$DB" 'SELECT trim FROM job WHERE id = 1')" 1 "job.trim"
}
run_case "a channel but no agent: moved, with a warning" case_no_agent

cases_done
