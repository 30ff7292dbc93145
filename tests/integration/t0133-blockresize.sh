#!/usr/bin/env bash
# 'virsh blockresize' of the disk while it moves: before the mirror starts
# (dest_chain) and after the pivot (collapse); QEMU refuses it while a block
# job runs.  The move follows the new size (the
# destination overlay is made at the disk's size now) or stops saying that
# the disk was resized and what to do; a resume finishes either way, never
# failing again with the same advice.  The moved disk has the new size, and
# a write beyond the old end is kept.  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve before pivoted

# resized_at PHASE [said]: the hook grows the disk from 128 MiB to 192 MiB at
# PHASE and the guest writes beyond the old end; with "said", the move must
# say it followed the new size (the destination overlay it makes after).
resized_at() {
	ic_hook "copy=write 0x21 3M" \
		"$1=write 0x22 4M; virsh -q blockresize \"\$DOM\" vda 192M >/dev/null; write 0x23 150M"
	local rc=0
	env SNAPMOVE_TEST_HOOK="$C/hook" "$SNAPMOVE" --db "$C/j.db" move "$DOM" --dest "$C/dst" \
		>"$C/move.out" 2>"$C/move.err" || rc=$?
	grep -q "^0x23 150M" "$C/patterns" || fail "the hook did not resize and write"
	case $rc in
	0) ;;
	1)
		assert_contains "$C/move.err" "resized"
		! grep -F "see the domain's log" "$C/move.err" >&2 ||
			fail "the failure gives no cause"
		expect_exit 0 smc resume 1 ;;
	*) cat "$C/move.err" >&2; fail "move exited $rc" ;;
	esac
	[ "${2:-}" != said ] ||
		assert_contains "$C/move.err" "disk 'vda' was resized from 128.0 MiB to 192.0 MiB"
	ic_write 0x31 6M
	ic_check done
	local size
	size=$(qemu-img info -U -f qcow2 --output=json "$C/dst/top.qcow2" |
		sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' | head -n1)
	assert_eq "$size" $((192 << 20)) "virtual size of the moved disk"
}

case_before() {
	ic_setup before
	resized_at dest_chain said
}
run_case "resized before the mirror" case_before

# QEMU refuses to resize a disk while a block job runs on it ("is in use"):
# the next window is between the pivot and the final commit, which grows the
# moved image as it folds the bigger overlay into it.
case_pivoted() {
	ic_setup pivoted
	resized_at collapse
}
run_case "resized after the pivot, before the final commit" case_pivoted

cases_done
