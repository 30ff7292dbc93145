#!/usr/bin/env bash
# A persistent domain's definition equals its live chain after each way a job
# ends: a move, a live abort before the pivot, and a resume finished offline
# (snapmove killed mid-copy, then the domain destroyed).  The domain has three
# disks: vda (top.qcow2 over base.raw) and vdb (raw) are moved, vdc is not.
# Each case destroys and starts the domain and checks it runs from the files
# expected, with every guest write.  (t0006, t0021..t0024 cover one disk.)
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name move)" "$(dom_name abort)" "$(dom_name offline)")

# write_flush TARGET PATTERN OFFSET: the guest writes 64k and flushes, as
# its fsync would (a destroy then loses nothing); recorded in $C/patterns.
write_flush() {
	local alias
	guest_write "$DOM" "$1" "$2" "$3" 64k
	alias=$(disk_alias "$DOM" "$1")
	virsh -q qemu-monitor-command "$DOM" --hmp \
		"qemu-io -d $alias/virtio-backend flush" >/dev/null
	echo "$1 $2 $3 64k" >>"$C/patterns"
}

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 128M 0x11 0 1M 0x12 100M 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0x13 1M 1M
	new_image "$C/src/b.img" raw 128M 0x14 0 1M 0x15 100M 1M
	new_image "$C/src/c.qcow2" qcow2 64M 0x16 0 1M
	printf '%s\n' "vda 0x11 0 1M" "vda 0x12 100M 1M" "vda 0x13 1M 1M" "vdb 0x14 0 1M" \
		"vdb 0x15 100M 1M" "vdc 0x16 0 1M" >"$C/patterns"
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2" "vdb:$C/src/b.img:raw" \
		"vdc:$C/src/c.qcow2:qcow2"
	write_flush vda 0x21 2M
	write_flush vdb 0x22 2M
	write_flush vdc 0x23 2M
}

# The disks of a domain's XML as "TARGET FORMAT FILE" lines, backing
# stores included when the XML lists them.
disks_of() {  # DOM [--inactive]
	local xml t
	xml=$(virsh dumpxml "$1" ${2:-})
	for t in $(xmllint --xpath '//devices/disk/target/@dev' - <<<"$xml" |
		sed 's/ *dev="\([^"]*\)"/\1\n/g'); do
		echo "$t $(xmllint --xpath "string(//devices/disk[target/@dev='$t']/driver/@type)" - <<<"$xml") $(xmllint --xpath "string(//devices/disk[target/@dev='$t']/source/@file)" - <<<"$xml")"
	done
}

# check_definition WHAT VDA_DIR VDB_DIR: the definition names, for each disk,
# the active image the domain runs on, and those are VDA_DIR/top.qcow2,
# VDB_DIR/b.img and src/c.qcow2; after destroy + start the domain runs on the
# whole chains expected, and holds every write of $C/patterns.
check_definition() {
	local what=$1 a=$2 b=$3 t pat off len img fmt
	assert_eq "$(disks_of "$DOM" --inactive)" "$(disks_of "$DOM")" \
		"$what: persistent definition vs live disks"
	assert_eq "$(disks_of "$DOM" --inactive)" "vda qcow2 $a/top.qcow2
vdb raw $b/b.img
vdc qcow2 $C/src/c.qcow2" "$what: persistent definition"
	# Nothing of the other side, and no overlay of the job.
	! virsh dumpxml --inactive "$DOM" | grep -F ".snapmove-1." >&2 ||
		fail "$what: the definition names an overlay of the job"
	[ "$(virsh domstate "$DOM")" = "shut off" ] || virsh -q destroy "$DOM" >/dev/null
	virsh -q start "$DOM" >/dev/null || fail "$what: the domain does not start"
	wait_domain_running "$DOM"
	assert_eq "$(live_chain "$DOM" vda)" "$a/top.qcow2 qcow2
$a/base.raw raw" "$what: vda's chain after start"
	assert_eq "$(live_chain "$DOM" vdb)" "$b/b.img raw" "$what: vdb's chain after start"
	assert_eq "$(live_chain "$DOM" vdc)" "$C/src/c.qcow2 qcow2" "$what: vdc's chain after start"
	write_flush vda 0x41 7M
	write_flush vdb 0x42 7M
	write_flush vdc 0x43 7M
	virsh -q destroy "$DOM" >/dev/null
	while read -r t pat off len; do
		case "$t" in
		vda) img=$a/top.qcow2 fmt=qcow2 ;;
		vdb) img=$b/b.img fmt=raw ;;
		vdc) img=$C/src/c.qcow2 fmt=qcow2 ;;
		esac
		check_pattern "$img" "$fmt" "$pat" "$off" "$len"
	done <"$C/patterns"
}

# crash_move: a move of vda and vdb that kills itself after the second
# chunk of a copy, with the guest writing at the copy.
crash_move() {
	local rc=0
	make_write_hook "$DOM" vda copy:0x31:3M
	echo "vda 0x31 3M 64k" >>"$C/patterns"
	env SNAPMOVE_TEST_HOOK="$T/hook" SNAPMOVE_TEST_CRASH_AT=copy:chunk bash -c \
		'"$@" >"$0.out" 2>"$0.err"' "$C/move" "$SNAPMOVE" --db "$DB" move "$DOM" \
		--dest "$C/dst" --disk vda --disk vdb 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$C/move.err" >&2; fail "move exited $rc, not killed (137)"; }
	assert_contains "$C/move.err" "test crash at 'copy:chunk'"
}

case_move() {
	setup move
	make_write_hook "$DOM" vda copy:0x31:3M collapse:0x32:4M
	echo "vda 0x31 3M 64k" >>"$C/patterns"
	echo "vda 0x32 4M 64k" >>"$C/patterns"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$DOM" --dest "$C/dst" --disk vda --disk vdb
	write_flush vdb 0x33 5M
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" "b.img base.raw top.qcow2 " "files moved"
	check_definition "after the move" "$C/dst" "$C/dst"
}
run_case "move: the definition names the moved chains" case_move

case_abort() {
	setup abort
	crash_move
	write_flush vda 0x34 5M
	write_flush vdb 0x35 5M
	expect_exit 0 sm abort 1
	assert_contains "$T/out" "aborted job 1 of domain $DOM"
	assert_eq "$(virsh domstate "$DOM")" running "domain state after the abort"
	assert_eq "$(ls -A "$C/dst")" "" "destination files after the abort"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "b.img base.raw c.qcow2 top.qcow2 " \
		"source files after the abort"
	sm status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: aborted"
	check_definition "after a live abort" "$C/src" "$C/src"
}
run_case "live abort before the pivot: the definition names the original chains" case_abort

case_offline_resume() {
	setup offline
	crash_move
	write_flush vda 0x34 5M
	write_flush vdb 0x35 5M
	virsh -q destroy "$DOM" >/dev/null
	expect_exit 0 sm resume 1
	assert_contains "$T/err" "domain '$DOM' is not running: "
	grep -q "offline" "$T/err" || { cat "$T/err" >&2; fail "the resume does not say it works offline"; }
	assert_contains "$T/out" "finished job 1 of domain $DOM"
	assert_eq "$(virsh domstate "$DOM")" "shut off" "domain state after the offline resume"
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" "b.img base.raw top.qcow2 " "files moved"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "b.img base.raw c.qcow2 top.qcow2 " \
		"source files after the resume"
	sm status 1 >"$C/status.out"
	assert_contains "$C/status.out" "job 1: done, phase done"
	check_definition "after an offline resume" "$C/dst" "$C/dst"
}
run_case "resume finished offline: the definition names the moved chains" case_offline_resume

cases_done
