#!/usr/bin/env bash
# 'snapmove move' refuses a destination that is the source directory, however
# either is spelled (trailing slash, relative, through a symlink), a chain with
# a backing image already in the destination, and a leftover overlay at the
# source; exit 3, a message that says so and what to do, nothing changed.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/real"
ln -s src "$T/srclink"
ln -s real "$T/via"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"

# A domain whose image libvirt knows through a symlinked directory.
new_image "$T/real/disk.qcow2" qcow2 64M 0x22 0 1M
viadom=$(dom_name via)
make_domain "$viadom" transient "vda:$T/via/disk.qcow2:qcow2"
assert_eq "$(live_chain "$viadom" vda)" "$T/via/disk.qcow2 qcow2" "chain through the symlink"

# A chain whose backing image is already in the destination.
new_image "$T/dst/base.qcow2" qcow2 64M 0x33 0 1M
new_overlay "$T/src/top.qcow2" "$T/dst/base.qcow2" qcow2 0x34 1M 64k
chaindom=$(dom_name chain)
make_domain "$chaindom" transient "vda:$T/src/top.qcow2:qcow2"

SAME="is already in the destination"
FIX="choose a --dest that is not the source directory"

# refused DOM TEXT DEST DIR...: moving DOM's disks to DEST is refused saying
# TEXT and FIX-like advice in $T/case.err, nothing changed in DIR....
refused() {
	local d=$1 text=$2 dest=$3
	shift 3
	save_state case "$d" vda "$@"
	expect_refused_unchanged case "$text" sm move "$d" --dest "$dest"
	expect_exit 0 sm list
	assert_eq "$(cat "$T/out")" "no jobs" "journal"
}

case_same() {
	refused "$dom" "disk 'vda' image '$T/src/disk.qcow2' $SAME '$T/src'; $FIX" "$T/src" "$T/src"
}
run_case "destination is the source directory" case_same

case_spellings() {
	refused "$dom" "$SAME '$T/src'; $FIX" "$T/src/" "$T/src"
	refused "$dom" "$SAME '$T/src'; $FIX" "$T/src/." "$T/src"
	refused "$dom" "$SAME '$T/src'; $FIX" "$T/dst/../src" "$T/src" "$T/dst"
	(cd "$T" && refused "$dom" "$SAME '$T/src'; $FIX" src "$T/src")
}
run_case "the source directory spelled differently" case_spellings

case_dest_symlink() {
	refused "$dom" "$SAME '$T/src'; $FIX" "$T/srclink" "$T/src"
}
run_case "destination is a symlink to the source directory" case_dest_symlink

# libvirt names the image $T/via/disk.qcow2; $T/via is $T/real.  Moving it
# to $T/real would make the image its own destination: that must be called
# what it is, not "destination file already exists; remove it", which points
# at the live image.
case_source_symlink() {
	refused "$viadom" "$SAME" "$T/real" "$T/real"
	assert_contains "$T/case.err" "$FIX"
	! grep -q "remove it" "$T/case.err" ||
		fail "the refusal tells to remove the domain's own image: $(cat "$T/case.err")"
	refused "$viadom" "$SAME" "$T/via" "$T/real"
	assert_contains "$T/case.err" "$FIX"
}
run_case "the source named through a symlinked directory" case_source_symlink

case_backing_in_dest() {
	refused "$chaindom" "disk 'vda' image '$T/dst/base.qcow2' $SAME '$T/dst'" "$T/dst" \
		"$T/src" "$T/dst"
	assert_contains "$T/case.err" "$FIX"
}
run_case "a backing image already in the destination" case_backing_in_dest

# A file at the name of the source overlay the move would create (job 1): a
# leftover, in the destination (where the source overlay goes by default),
# and beside the image with --overlay-dir naming the source folder.
case_src_overlay() {
	echo precious >"$T/dst/disk.qcow2.snapmove-1.src.qcow2"
	refused "$dom" "overlay file '$T/dst/disk.qcow2.snapmove-1.src.qcow2' already exists" \
		"$T/dst" "$T/src" "$T/dst"
	assert_eq "$(cat "$T/dst/disk.qcow2.snapmove-1.src.qcow2")" precious "the file at the overlay name"
	rm "$T/dst/disk.qcow2.snapmove-1.src.qcow2"

	echo precious >"$T/src/disk.qcow2.snapmove-1.qcow2"
	save_state case "$dom" vda "$T/src" "$T/dst"
	expect_refused_unchanged case "overlay file '$T/src/disk.qcow2.snapmove-1.qcow2' already exists" \
		sm move "$dom" --dest "$T/dst" --overlay-dir "$T/src"
	assert_eq "$(cat "$T/src/disk.qcow2.snapmove-1.qcow2")" precious "the file at the overlay name"
	! grep -q "choose another --dest" "$T/err" ||
		fail "the refusal suggests another --dest, which cannot help: $(cat "$T/err")"
	rm "$T/src/disk.qcow2.snapmove-1.qcow2"
}
run_case "a file at the source overlay name" case_src_overlay

cases_done
