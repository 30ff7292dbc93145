#!/usr/bin/env bash
# The source overlay lives in the destination folder (the default since
# issue 15) or in --overlay-dir: snapmove SIGKILLed at a few points, then
# 'snapmove resume' finishes the move and 'snapmove abort' puts the domain
# back on its original chain with every guest write there, and no file is
# left in the destination folder (or the overlay folder) but the moved chain
# after a resume, nothing after an abort.  Right after each crash the overlay
# is where the plan put it, and the domain runs on it once the snapshot was
# taken.  --overlay-dir naming the source folder (the placement before; a job
# journaled before issue 15 has that path) and a scratch folder are covered
# too.  The crash itself is crash-lib.sh's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/crash-lib.sh"

# Where the source overlay of job 1 is for the overlay folder in use.
overlay_of() {  # DIR
	case "${CRASH_OVERLAY_DIR:-}" in
	"" | dst) echo "$1/dst/top.qcow2.snapmove-1.src.qcow2" ;;
	*) echo "$1/$CRASH_OVERLAY_DIR/top.qcow2.snapmove-1.qcow2" ;;
	esac
}

crash_killed() {  # DIR DOM POINT
	local c=$1 dom=$2 point=$3 ov
	ov=$(overlay_of "$c")
	[ -f "$ov" ] || fail "$point: no source overlay at '$ov' after the crash"
	assert_eq "$(backing_of "$ov" qcow2)" "$c/src/top.qcow2" "$point: the overlay's backing file"
	# The destination overlay is never the source overlay's name.
	case "$point" in
	snapshot:made)
		assert_eq "$(live_chain "$dom" vda | head -n1)" "$c/src/top.qcow2 qcow2" \
			"$point: the domain before the snapshot" ;;
	pivot:done)
		assert_eq "$(live_chain "$dom" vda | head -n1)" \
			"$c/dst/top.qcow2.snapmove-1.qcow2 qcow2" "$point: the domain after the pivot" ;;
	*)
		assert_eq "$(live_chain "$dom" vda | head -n2)" "$ov qcow2
$c/src/top.qcow2 qcow2" "$point: the domain on its source overlay" ;;
	esac
	if [ "${CRASH_OVERLAY_DIR:-dst}" != src ]; then
		assert_eq "$(ls "$c/src" | tr '\n' ' ')" "base.raw top.qcow2 " \
			"$point: source files after the crash"
	fi
}

# On the destination (the default).
for point in snapshot:made copy:chunk sync:start pivot:done; do
	crash_case "$point" resume
	crash_case "$point" abort
done

# Beside the source image, as before issue 15 (and as an old job's journal has it).
CRASH_OVERLAY_DIR=src
for point in snapshot:made copy:chunk pivot:done; do
	crash_case "$point" resume
	crash_case "$point" abort
done

# In a scratch folder of its own.
CRASH_OVERLAY_DIR=scratch
crash_case copy:chunk resume
crash_case pivot:done abort
unset CRASH_OVERLAY_DIR

# A file planted at the source overlay's name in the destination refuses the
# move before anything changes (it is claimed O_EXCL like every file snapmove
# makes there).
c=$T/planted
mkdir -m 755 "$c" "$c/src" "$c/dst"
new_image "$c/src/disk.qcow2" qcow2 16M 0x11 0 1M
dom=$(dom_name planted)
make_domain "$dom" transient "vda:$c/src/disk.qcow2:qcow2"
echo precious >"$c/dst/disk.qcow2.snapmove-1.src.qcow2"
save_state planted "$dom" vda "$c/src" "$c/dst"
expect_exit 3 sm move "$dom" --dest "$c/dst"
assert_contains "$T/err" "overlay file '$c/dst/disk.qcow2.snapmove-1.src.qcow2' already exists"
assert_unchanged planted
assert_eq "$(cat "$c/dst/disk.qcow2.snapmove-1.src.qcow2")" precious "the planted file"
note "planted file at the overlay's name: refused"

# The source overlay made, then (snapmove killed before the snapshot) another
# file put at its name by someone who can write the destination: resume does
# not delete it as the job's, keeps it, says why, and stops before the
# snapshot; the domain stays on its original image.
c=$T/swapped
mkdir -m 755 "$c" "$c/src" "$c/dst"
new_image "$c/src/disk.qcow2" qcow2 16M 0x11 0 1M
dom3=$(dom_name swapped)
make_domain "$dom3" transient "vda:$c/src/disk.qcow2:qcow2"
rc=0
SNAPMOVE_TEST_CRASH_AT=snapshot:made bash -c '"$@" >"$0.out" 2>"$0.err"' "$c/move" \
	"$SNAPMOVE" --db "$c/j.db" move "$dom3" --dest "$c/dst" 2>/dev/null || rc=$?
[ "$rc" = 137 ] || { cat "$c/move.err" >&2; fail "swapped: move exited $rc, not killed (137)"; }
ov=$c/dst/disk.qcow2.snapmove-1.src.qcow2
mv "$ov" "$c/made.aside"
echo "someone else's" >"$ov"
expect_exit 1 "$SNAPMOVE" --db "$c/j.db" resume 1
assert_contains "$T/err" "kept $ov: another file now has its name"
assert_eq "$(cat "$ov")" "someone else's" "the file put at the overlay's name"
assert_eq "$(live_chain "$dom3" vda)" "$c/src/disk.qcow2 qcow2" "the domain after the refused resume"
note "a file swapped in at the made overlay's name: kept, the resume stops"

# Bad --overlay-dir values: a usage error, or refused with nothing changed.
rm "$c/dst/disk.qcow2.snapmove-1.src.qcow2"
expect_exit 2 sm move "$dom" --dest "$c/dst" --overlay-dir scratch
assert_contains "$T/err" "--overlay-dir takes an absolute folder, not 'scratch'"
save_state bad "$dom" vda "$c/src" "$c/dst"
expect_exit 3 sm move "$dom" --dest "$c/dst" --overlay-dir "$c/missing"
assert_contains "$T/err" "overlay folder '$c/missing' cannot be used (No such file or directory)"
touch "$c/afile"
expect_exit 3 sm move "$dom" --dest "$c/dst" --overlay-dir "$c/afile"
assert_contains "$T/err" "overlay folder '$c/afile' is not a directory"
mkdir -m 700 "$c/closed"
expect_exit 3 sm move "$dom" --dest "$c/dst" --overlay-dir "$c/closed"
assert_contains "$T/err" "overlay folder '$c/closed' cannot be entered by other users (mode 0700)"
assert_unchanged bad
note "bad --overlay-dir values: refused"
