#!/usr/bin/env bash
# A guest OS that shuts itself down while its disk moves, in each phase (what
# t0199 plays with QEMU's 'quit', done by a real guest: tests/guest, a Debian
# kernel with qemu-guest-agent).  'agent': the admin's 'virsh shutdown --mode
# agent', qemu-ga runs /sbin/shutdown, the guest syncs and powers off, and the
# phase starts once libvirt shows the domain shut off.  'poweroff': the guest
# runs 'poweroff -f' itself, and the phase starts at once, racing it.
# A persistent domain: the move notices, finishes offline by itself (exit 0),
# the definition names the moved chain, every write the guest's disk took is
# there.  A transient one is gone with its definition: exit 1, saying where
# the data is.
. "$(dirname "$0")/lib.sh"

# SM_PHASES="copy pivot": only those for 'agent' (to debug one case);
# SM_RACE_PHASES the same for 'poweroff': by default the phases that wait on
# block jobs while the guest goes down (each case boots a guest: ~10-40 s
# under TCG).
read -ra PHASES <<<"${SM_PHASES:-snapshot dest_chain mirror copy sync pivot collapse finalize}"
read -ra RACE_PHASES <<<"${SM_RACE_PHASES:-mirror sync pivot collapse}"

# down_hook DOM PHASE HOW: at PHASE, a write lands on the guest's disk, then
# the guest goes down (HOW: agent or poweroff, as above).
down_hook() {
	local dom=$1 phase=$2 how=$3 stop
	case "$how" in
	agent) stop="virsh -q shutdown '$dom' --mode agent >/dev/null
		for _ in \$(seq 300); do
			[ \"\$(virsh domstate '$dom' 2>&1)\" = 'shut off' ] && exit 0
			virsh -q domstate '$dom' >/dev/null 2>&1 || exit 0
			sleep 0.1
		done
		echo 'the guest did not shut down in 30 s' >&2; exit 1" ;;
	poweroff) stop="virsh -q qemu-agent-command '$dom' \
		'{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/poweroff\",\"arg\":[\"-f\"]}}' \
		>/dev/null 2>&1 || true" ;;
	esac
	cat >"$T/hook.$dom" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
[ "\$1" = '$phase' ] || exit 0
alias=\$(virsh dumpxml '$dom' |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/alias/@name)" -)
virsh -q qemu-monitor-command '$dom' --hmp \
	"qemu-io -d \$alias/virtio-backend \"write -P 0x44 3M 64k\"" >/dev/null
$stop
HOOK
	chmod 755 "$T/hook.$dom"
}

# The cases: HOW:PHASE.
CASES=()
for phase in "${PHASES[@]}"; do
	CASES+=("agent:$phase")
done
for phase in "${RACE_PHASES[@]}"; do
	CASES+=("poweroff:$phase")
done
for n in "${!CASES[@]}"; do
	SM_DOMAINS+=("$(dom_name "$n")")
done
SM_DOMAINS+=("$(dom_name transient)")
guest_files

case_persistent() {
	local how=$1 phase=$2 i=$3 dom c t0
	dom=$(dom_name "$i")
	c=$T/$i
	mkdir -m 755 "$c" "$c/src" "$c/dst"
	new_image "$c/src/base.qcow2" qcow2 64M 0x11 0 1M
	new_overlay "$c/src/top.qcow2" base.qcow2 qcow2 0x22 1M 64k
	t0=$(date +%s%N)
	guest_domain "$dom" persistent - "vda:$c/src/top.qcow2:qcow2"
	guest_wait_agent "$dom" 120
	note "booted in $((($(date +%s%N) - t0) / 1000000)) ms"
	guest_write "$dom" vda 0x33 2M 64k
	down_hook "$dom" "$phase" "$how"
	SNAPMOVE_TEST_HOOK=$T/hook.$dom expect_exit 0 sm move "$dom" --dest "$c/dst"
	assert_contains "$T/out" "moved domain $dom"
	# In 'finalize' the move needs the domain no more: it just ends.  A
	# poweroff racing the phase may come after the phase needed the domain.
	[ "$phase" = finalize ] || [ "$how" = poweroff ] ||
		assert_contains "$T/out" "finished offline: the domain went down during the move"
	if [ "$how" = poweroff ]; then
		if grep -qF "finished offline" "$T/out"; then
			note "the guest went down first: finished offline"
		else
			note "the move ended first, live"
		fi
	fi
	local state i
	for i in $(seq 1 300); do
		state=$(virsh domstate "$dom")
		[ "$state" = "shut off" ] && break
		sleep 0.1
	done
	assert_eq "$state" "shut off" "state after the move"
	assert_eq "$(virsh domstate "$dom" --reason)" "shut off (shutdown)" \
		"the state and its reason (the guest shut down, not destroyed)"
	assert_eq "$(live_chain "$dom" vda --inactive)" "$c/dst/top.qcow2 qcow2" \
		"the definition after the move"
	assert_eq "$(backing_of "$c/dst/top.qcow2" qcow2)" base.qcow2 "the moved chain (its relative name kept)"
	check_pattern "$c/dst/top.qcow2" qcow2 0x11 0 1M
	check_pattern "$c/dst/top.qcow2" qcow2 0x22 1M 64k
	check_pattern "$c/dst/top.qcow2" qcow2 0x33 2M 64k
	check_pattern "$c/dst/top.qcow2" qcow2 0x44 3M 64k
	qemu-img check -q -f qcow2 "$c/dst/top.qcow2" || fail "qemu-img check of the moved image"
	assert_eq "$(sqlite3 "$DB" "SELECT state FROM job WHERE domain_name = '$dom'")" done \
		"the job's state"
}

for n in "${!CASES[@]}"; do
	how=${CASES[n]%%:*}
	phase=${CASES[n]#*:}
	eval "case_persistent_$n() { case_persistent $how $phase $n; }"
	run_case "persistent, $how in '$phase'" "case_persistent_$n"
done

case_transient() {
	local dom c=$T/tr
	dom=$(dom_name transient)
	mkdir -m 755 "$c" "$c/src" "$c/dst"
	new_image "$c/src/disk.qcow2" qcow2 64M 0x11 0 1M
	guest_domain "$dom" transient - "vda:$c/src/disk.qcow2:qcow2"
	guest_wait_agent "$dom" 120
	down_hook "$dom" copy agent
	SNAPMOVE_TEST_HOOK=$T/hook.$dom expect_exit 1 sm move "$dom" --dest "$c/dst"
	assert_contains "$T/err" "domain '$dom' went down during the move and no longer exists (it was transient)"
	# Where the data is: the job's source overlay over the original image.
	local ov
	ov=$(ls "$c/dst/"disk.qcow2.snapmove-*.src.qcow2)
	assert_contains "$T/out" "$ov"
	check_pattern "$ov" qcow2 0x11 0 1M
	check_pattern "$ov" qcow2 0x44 3M 64k
}
run_case "transient, agent shutdown in 'copy'" case_transient

cases_done
