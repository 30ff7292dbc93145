#!/usr/bin/env bash
# A qcow2 image with an external data file (qemu-img create -o data_file=...)
# keeps the disk's data in another file that its header names and libvirt 9
# does not report.  snapmove moves no data file: a move, live or offline, of a
# disk whose chain holds such an image (at the top or below) is refused with
# exit 3, naming the image and its data file and how to go on, and nothing
# changes; --flatten never reads the data file into a new image.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/off"
MARK="SMDATAFILE-$$-MARKER"

# data_file_image IMAGE DATAFILE: a qcow2 image keeping its data in DATAFILE
# (raw, so the marker written through the image is in DATAFILE), which QEMU's
# user may write (libvirt 9 does not label data files).
data_file_image() {
	qemu-img create -q -f qcow2 -o "data_file=$2,data_file_raw=on" "$1" 64M
	printf '%s\n' "$MARK" >"$T/mark"
	qemu-io -f qcow2 -c "write -s $T/mark 0 512" "$1" >/dev/null 2>&1 ||
		qemu-io -f qcow2 -c "write -P 0x5a 0 1M" "$1" >/dev/null
	chmod 666 "$2"
}

data_file_image "$T/src/df.qcow2" "$T/src/df.data"
dom=$(dom_name live)
make_domain "$dom" transient "vda:$T/src/df.qcow2:qcow2"
assert_eq "$(live_chain "$dom" vda)" "$T/src/df.qcow2 qcow2" "libvirt's chain of the data-file disk"

# The data file below an overlay.
data_file_image "$T/src/base.qcow2" "$T/src/base.data"
new_overlay "$T/src/top.qcow2" base.qcow2 qcow2 0x22 1M 1M
domb=$(dom_name below)
make_domain "$domb" transient "vda:$T/src/top.qcow2:qcow2"

# Offline: a defined, shut-off domain.
data_file_image "$T/off/df.qcow2" "$T/off/df.data"
domo=$(dom_name off)
make_domain "$domo" defined "vda:$T/off/df.qcow2:qcow2"

WHY="keeps its data in the external data file"
FIX="make it a self-contained image ('qemu-img convert"

case_live() {
	local opt
	for opt in "" --flatten "--dest-format raw" --copy-shared; do
		save_state live "$dom" vda "$T/src" "$T/dst"
		# shellcheck disable=SC2086
		expect_refused_unchanged live \
			"disk 'vda' image '$T/src/df.qcow2' $WHY '$T/src/df.data'" \
			sm move "$dom" --dest "$T/dst" $opt
		assert_contains "$T/case.err" "$FIX"
		assert_contains "$T/case.err" "virsh blockcopy"
	done
}
run_case "live: a data-file image is refused, with or without --flatten" case_live

case_chain() {
	expect_exit 0 sm chain "$dom" vda
	assert_contains "$T/out" "vda (disk): not movable: disk 'vda' image '$T/src/df.qcow2' $WHY '$T/src/df.data'"
	expect_exit 0 sm --json chain "$domb"
	python3 -c 'import json, sys; assert not json.load(sys.stdin)["disks"][0]["movable"]' \
		<"$T/out" || fail "'chain --json' calls the data-file disk movable"
	assert_contains "$T/out" "$WHY"
}
run_case "'snapmove chain' says why a data-file disk cannot move" case_chain

case_below() {
	save_state below "$domb" vda "$T/src" "$T/dst"
	expect_refused_unchanged below \
		"disk 'vda' image '$T/src/base.qcow2' $WHY '$T/src/base.data'" \
		sm move "$domb" --dest "$T/dst" --flatten
	save_state below "$domb" vda "$T/src" "$T/dst"
	expect_refused_unchanged below "image '$T/src/base.qcow2' $WHY" \
		sm move "$domb" --dest "$T/dst"
}
run_case "live: a data-file image below an overlay is refused" case_below

case_offline() {
	save_state off "$domo" vda "$T/off" "$T/dst"
	expect_refused_unchanged off "disk 'vda' image '$T/off/df.qcow2' $WHY '$T/off/df.data'" \
		sm move "$domo" --offline --dest "$T/dst"
	save_state off "$domo" vda "$T/off" "$T/dst"
	expect_refused_unchanged off "$WHY" sm move "$domo" --offline --dest "$T/dst" --flatten
}
run_case "offline: a data-file image is refused" case_offline

# Nothing of the data files ever reached the destination.
case_no_copy() {
	assert_eq "$(ls -A "$T/dst")" "" "destination files"
	! grep -rqF "$MARK" "$T/dst" || fail "a data file's content is in the destination"
}
run_case "no data file copied" case_no_copy

cases_done
