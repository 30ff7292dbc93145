#!/usr/bin/env bash
# Two snapmove processes move two domains at the same time, into the same
# destination directory, with one journal (--db the same file): both
# succeed, as jobs 1 and 2, each domain's overlays named after its own job,
# and both domains' data intact.  Once with a journal that exists already,
# once with a new one that both processes open (and so create) at once.
#
# That the moves overlap is not left to timing: each process's hook, at the
# start of its copy, waits until the other process has reached its copy too
# (or has ended).
. "$(dirname "$0")/lib.sh"

for n in existing fresh; do
	SM_DOMAINS+=("$(dom_name "$n-one")" "$(dom_name "$n-two")")
done

# make_barrier_hook NAME DOM PATTERN OTHER: $C/hook.NAME, which at the start
# of the copy records the domain's disks and its job, writes PATTERN at 100M
# through the guest, then waits for the process OTHER to reach its copy.
make_barrier_hook() {
	cat >"$C/hook.$1" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
[ "\$1" = copy ] || exit 0
virsh domblklist '$2' >'$C/during.$1'
echo "\$2" >'$C/job.$1'
alias=\$(virsh dumpxml '$2' |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/alias/@name)" -)
virsh -q qemu-monitor-command '$2' --hmp \
	"qemu-io -d \$alias/virtio-backend \"write -P $3 100M 64k\"" >/dev/null
touch '$C/at-copy.$1'
for i in \$(seq 1 600); do
	[ -e '$C/at-copy.$4' ] && exit 0
	[ -e '$C/rc.$4' ] && break
	sleep 0.1
done
echo "the other snapmove never reached its copy" >&2
exit 1
HOOK
	chmod 755 "$C/hook.$1"
}

# start_move NAME DOM: snapmove move DOM in the background, with hook.NAME;
# its exit status lands in $C/rc.NAME.
start_move() {
	(
		rc=0
		SNAPMOVE_TEST_HOOK=$C/hook.$1 sm move "$2" --dest "$C/dst" >"$C/$1.out" \
			2>"$C/$1.err" || rc=$?
		echo "$rc" >"$C/rc.$1"
	) &
}

two_at_once() {  # NAME existing|fresh
	local dom1 dom2 job1 job2 rc1 rc2 spec
	C=$T/$1
	DB=$C/j.db
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	[ "$2" = fresh ] || journal_init
	new_image "$C/src/one-base.raw" raw 128M 0x11 0 1M 0x12 64M 32M
	new_overlay "$C/src/one.qcow2" one-base.raw raw 0x13 1M 1M
	new_image "$C/src/two.qcow2" qcow2 128M 0x14 0 96M
	dom1=$(dom_name "$1-one")
	dom2=$(dom_name "$1-two")
	make_domain "$dom1" persistent "vda:$C/src/one.qcow2:qcow2"
	make_domain "$dom2" transient "vda:$C/src/two.qcow2:qcow2"
	make_barrier_hook one "$dom1" 0x21 two
	make_barrier_hook two "$dom2" 0x22 one

	start_move one "$dom1"
	start_move two "$dom2"
	wait
	rc1=$(cat "$C/rc.one")
	rc2=$(cat "$C/rc.two")
	[ "$rc1" = 0 ] || { cat "$C/one.out" "$C/one.err" >&2; fail "the move of $dom1 exited $rc1"; }
	[ "$rc2" = 0 ] || { cat "$C/two.out" "$C/two.err" >&2; fail "the move of $dom2 exited $rc2"; }

	job1=$(cat "$C/job.one")
	job2=$(cat "$C/job.two")
	assert_eq "$(printf '%s\n' "$job1" "$job2" | sort | tr '\n' ' ')" "1 2 " "the two jobs' numbers"
	assert_contains "$C/one.out" "moved domain $dom1"
	assert_contains "$C/one.out" "(job $job1)"
	assert_contains "$C/two.out" "moved domain $dom2"
	assert_contains "$C/two.out" "(job $job2)"
	# Each domain ran on an overlay named after its own job.
	assert_eq "$(awk '$1 == "vda" { print $2 }' "$C/during.one")" \
		"$C/dst/one.qcow2.snapmove-$job1.src.qcow2" "$dom1's overlay during the copy"
	assert_eq "$(awk '$1 == "vda" { print $2 }' "$C/during.two")" \
		"$C/dst/two.qcow2.snapmove-$job2.src.qcow2" "$dom2's overlay during the copy"

	expect_exit 0 sm list
	assert_eq "$(awk '$1 ~ /^[0-9]+$/ { print $1, $2, $3, $4 }' "$T/out" | sort)" \
		"$(printf '%s\n' "$job1 $dom1 done done" "$job2 $dom2 done done" | sort)" \
		"jobs in the list"
	expect_exit 0 sm status "$job1"
	assert_contains "$T/out" "job $job1: done, phase done"
	assert_contains "$T/out" "  domain:   $dom1 ("
	expect_exit 0 sm status "$job2"
	assert_contains "$T/out" "job $job2: done, phase done"
	assert_contains "$T/out" "  domain:   $dom2 ("

	assert_eq "$(live_chain "$dom1" vda)" "$C/dst/one.qcow2 qcow2
$C/dst/one-base.raw raw" "$dom1's chain"
	assert_eq "$(live_chain "$dom1" vda --inactive | head -n1)" "$C/dst/one.qcow2 qcow2" \
		"$dom1's definition"
	assert_eq "$(live_chain "$dom2" vda)" "$C/dst/two.qcow2 qcow2" "$dom2's chain"
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" "one-base.raw one.qcow2 two.qcow2 " \
		"destination files"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "one-base.raw one.qcow2 two.qcow2 " "source files"

	guest_write "$dom1" vda 0x31 101M 64k
	guest_write "$dom2" vda 0x32 101M 64k
	virsh -q destroy "$dom1" >/dev/null
	virsh -q destroy "$dom2" >/dev/null
	for spec in "0x11 0 1M" "0x13 1M 1M" "0x12 64M 32M" "0x21 100M 64k" "0x31 101M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/one.qcow2" qcow2 $spec
	done
	for spec in "0x14 0 96M" "0x22 100M 64k" "0x32 101M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/two.qcow2" qcow2 $spec
	done
}

case_existing() {
	two_at_once existing existing
}
run_case "two moves at once with one journal" case_existing

case_fresh() {
	two_at_once fresh fresh
}
run_case "two moves at once, both creating the journal" case_fresh

cases_done
