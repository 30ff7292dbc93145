#!/usr/bin/env bash
# Two snapmove processes move two disks of one persistent domain at once
# (vda in one job, vdb in another, one journal), interleaved so that one job
# takes its snapshot, finishes and rewrites the persistent definition while
# the other is half-way (on its overlay with a mirror running, or pivoted but
# not collapsed): both succeed, and at the end the definition equals the live
# chains of both disks, the domain starts from the moved files after a
# destroy, and every guest write is there.
#
# The order is forced with hooks (each waits for a file the other makes),
# never with sleeps.
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name mid-copy)" "$(dom_name pivoted)")

# make_hook NAME PHASE:COMMANDS...: $C/hook.NAME runs COMMANDS at PHASE
# (with wait_for FILE: until FILE exists, for at most 60 s), and writes 64k
# of a pattern through the guest at its copy (0x21 for vda, 0x22 for vdb).
make_hook() {
	local name=$1 spec cases=""
	shift
	for spec in "$@"; do
		cases+="${spec%%:*}) ${spec#*:} ;;"$'\n'
	done
	cat >"$C/hook.$name" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
wait_for() {
	for i in \$(seq 1 600); do
		[ -e "\$1" ] && return 0
		sleep 0.1
	done
	echo "waited 60 s for \$1" >&2
	exit 1
}
write() {  # TARGET PATTERN
	local alias
	alias=\$(virsh dumpxml '$DOM' |
		xmllint --xpath "string(//devices/disk[target/@dev='\$1']/alias/@name)" -)
	virsh -q qemu-monitor-command '$DOM' --hmp \
		"qemu-io -d \$alias/virtio-backend \"write -P \$2 2M 64k\"" >/dev/null
}
case "\$1" in
$cases*) ;;
esac
HOOK
	chmod 755 "$C/hook.$name"
}

# start_move NAME TARGET: snapmove move of one disk in the background, with
# hook.NAME; its exit status lands in $C/rc.NAME.
start_move() {
	(
		rc=0
		SNAPMOVE_TEST_HOOK=$C/hook.$1 sm move "$DOM" --dest "$C/dst" --disk "$2" \
			>"$C/$1.out" 2>"$C/$1.err" || rc=$?
		echo "$rc" >"$C/rc.$1"
	) &
}

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	journal_init   # the journal exists before the two open it
	new_image "$C/src/base.raw" raw 64M 0x11 0 1M
	new_overlay "$C/src/a.qcow2" base.raw raw 0x12 1M 1M
	new_image "$C/src/b.img" raw 64M 0x13 0 1M
	make_domain "$DOM" persistent "vda:$C/src/a.qcow2:qcow2" "vdb:$C/src/b.img:raw"
}

finish() {
	local n rc
	wait
	for n in a b; do
		rc=$(cat "$C/rc.$n")
		[ "$rc" = 0 ] || { cat "$C/$n.out" "$C/$n.err" >&2; fail "the move of $n exited $rc"; }
	done
	expect_exit 0 sm list
	assert_eq "$(awk '$1 ~ /^[0-9]+$/ { print $3, $5 }' "$T/out" | sort | tr '\n' ' ')" \
		"done vda done vdb " "the two jobs"
	want_a="$C/dst/a.qcow2 qcow2
$C/dst/base.raw raw"
	assert_eq "$(live_chain "$DOM" vda)" "$want_a" "vda's chain"
	assert_eq "$(live_chain "$DOM" vdb)" "$C/dst/b.img raw" "vdb's chain"
	assert_eq "$(live_chain "$DOM" vda --inactive | head -n1)" "$C/dst/a.qcow2 qcow2" \
		"vda's definition"
	assert_eq "$(live_chain "$DOM" vdb --inactive | head -n1)" "$C/dst/b.img raw" \
		"vdb's definition"
	! virsh dumpxml --inactive "$DOM" | grep -F ".snapmove-" >&2 ||
		fail "the definition names an overlay"
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" "a.qcow2 b.img base.raw " "destination files"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "a.qcow2 b.img base.raw " "source files"
	virsh -q destroy "$DOM" >/dev/null
	virsh -q start "$DOM" >/dev/null
	wait_domain_running "$DOM"
	assert_eq "$(live_chain "$DOM" vda)" "$want_a" "vda's chain after destroy + start"
	assert_eq "$(live_chain "$DOM" vdb)" "$C/dst/b.img raw" "vdb's chain after destroy + start"
	guest_write "$DOM" vda 0x31 3M 64k
	guest_write "$DOM" vdb 0x32 3M 64k
	virsh -q destroy "$DOM" >/dev/null
	for spec in "0x11 0 1M" "0x12 1M 1M" "0x21 2M 64k" "0x31 3M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/a.qcow2" qcow2 $spec
	done
	for spec in "0x13 0 1M" "0x22 2M 64k" "0x32 3M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/b.img" raw $spec
	done
}

# vdb's job stays in its copy (mirror running, vdb on its overlay) while
# vda's job runs from its snapshot to its end.
case_mid_copy() {
	setup mid-copy
	make_hook b "copy:write vdb 0x22; touch '$C/b-copying'; wait_for '$C/rc.a'"
	make_hook a "snapshot:wait_for '$C/b-copying'" "copy:write vda 0x21"
	start_move b vdb
	start_move a vda
	finish
}
run_case "vda's whole move while vdb's job is in its copy" case_mid_copy

# vda's job waits after its pivot (vda on the destination overlay) while
# vdb's job runs from its snapshot to its end.
case_pivoted() {
	setup pivoted
	make_hook a "copy:write vda 0x21" "collapse:touch '$C/a-pivoted'; wait_for '$C/rc.b'"
	make_hook b "snapshot:wait_for '$C/a-pivoted'" "copy:write vdb 0x22"
	start_move a vda
	start_move b vdb
	finish
}
run_case "vdb's whole move while vda's job is pivoted, not collapsed" case_pivoted

cases_done
