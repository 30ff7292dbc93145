#!/usr/bin/env bash
# A domain that goes down while its disk moves: destroyed by an admin, or
# shut down from inside (QEMU quits, as at a guest's poweroff), in each phase.
# A persistent one: the move notices, finishes offline by itself and says so
# (exit 0), the definition names the moved chain, and every write the guest
# made is there.  A transient one is gone with its definition: the move says
# where the data is, and asks for nothing it cannot do (exit 1).
. "$(dirname "$0")/lib.sh"

# SM_PHASES="copy pivot": only those (to debug one case).
read -ra PHASES <<<"${SM_PHASES:-snapshot dest_chain mirror copy sync pivot collapse finalize}"

# down_hook DOM PHASE HOW: at PHASE, the guest writes, then the domain goes
# down (destroy: virsh destroy; quit: QEMU quits from its monitor).
down_hook() {
	local dom=$1 phase=$2 how=$3 stop
	case "$how" in
	destroy) stop="virsh -q destroy '$dom' >/dev/null" ;;
	quit) stop="virsh -q qemu-monitor-command '$dom' --hmp quit >/dev/null 2>&1 || true
		for _ in \$(seq 100); do
			[ \"\$(virsh domstate '$dom')\" = 'shut off' ] && break; sleep 0.1
		done" ;;
	esac
	cat >"$T/hook.$dom" <<HOOK
#!/bin/bash
set -euo pipefail
[ "\$1" = '$phase' ] || exit 0
alias=\$(virsh dumpxml '$dom' |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/alias/@name)" -)
virsh -q qemu-monitor-command '$dom' --hmp \
	"qemu-io -d \$alias/virtio-backend \"write -P 0x44 3M 64k\"" >/dev/null
$stop
HOOK
	chmod 755 "$T/hook.$dom"
}

n=0
for how in destroy quit; do
	for phase in "${PHASES[@]}"; do
		n=$((n + 1))
		SM_DOMAINS+=("$(dom_name "$n")")
	done
done
SM_DOMAINS+=("$(dom_name transient)")

case_persistent() {
	local how=$1 phase=$2 i=$3 dom c
	dom=$(dom_name "$i")
	c=$T/$i
	mkdir -m 755 "$c" "$c/src" "$c/dst"
	new_image "$c/src/base.qcow2" qcow2 64M 0x11 0 1M
	new_overlay "$c/src/top.qcow2" base.qcow2 qcow2 0x22 1M 64k
	make_domain "$dom" persistent "vda:$c/src/top.qcow2:qcow2"
	guest_write "$dom" vda 0x33 2M 64k
	down_hook "$dom" "$phase" "$how"
	SNAPMOVE_TEST_HOOK=$T/hook.$dom expect_exit 0 sm move "$dom" --dest "$c/dst"
	assert_contains "$T/out" "moved domain $dom"
	# In 'finalize' the move needs the domain no more: it just ends.
	[ "$phase" = finalize ] ||
		assert_contains "$T/out" "finished offline: the domain went down during the move"
	assert_eq "$(virsh domstate "$dom")" "shut off" "state after the move"
	assert_eq "$(live_chain "$dom" vda --inactive)" "$c/dst/top.qcow2 qcow2" \
		"the definition after the move"
	assert_eq "$(backing_of "$c/dst/top.qcow2" qcow2)" base.qcow2 "the moved chain (its relative name kept)"
	check_pattern "$c/dst/top.qcow2" qcow2 0x11 0 1M
	check_pattern "$c/dst/top.qcow2" qcow2 0x22 1M 64k
	check_pattern "$c/dst/top.qcow2" qcow2 0x33 2M 64k
	check_pattern "$c/dst/top.qcow2" qcow2 0x44 3M 64k
	assert_eq "$(sqlite3 "$DB" "SELECT state FROM job WHERE domain_name = '$dom'")" done \
		"the job's state"
}

n=0
for how in destroy quit; do
	for phase in "${PHASES[@]}"; do
		n=$((n + 1))
		eval "case_persistent_$n() { case_persistent $how $phase $n; }"
		run_case "persistent, $how in '$phase'" "case_persistent_$n"
	done
done

case_transient() {
	local dom c=$T/tr
	dom=$(dom_name transient)
	mkdir -m 755 "$c" "$c/src" "$c/dst"
	new_image "$c/src/disk.qcow2" qcow2 64M 0x11 0 1M
	make_domain "$dom" transient "vda:$c/src/disk.qcow2:qcow2"
	down_hook "$dom" copy destroy
	SNAPMOVE_TEST_HOOK=$T/hook.$dom expect_exit 1 sm move "$dom" --dest "$c/dst"
	assert_contains "$T/err" "domain '$dom' went down during the move and no longer exists (it was transient)"
	# Where the data is: the job's source overlay over the original image.
	local ov
	ov=$(ls "$c/dst/"disk.qcow2.snapmove-*.src.qcow2)
	assert_contains "$T/out" "$ov"
	check_pattern "$ov" qcow2 0x11 0 1M
	check_pattern "$ov" qcow2 0x44 3M 64k
}
run_case "transient, destroyed in 'copy'" case_transient

cases_done
