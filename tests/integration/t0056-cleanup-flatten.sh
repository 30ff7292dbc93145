#!/usr/bin/env bash
# cleanup after a --flatten move: the moved disk is one image with no backing
# file, so the whole source chain (top.qcow2, mid.qcow2, base.raw) is the
# job's source and nothing uses it any more: 'snapmove status' counts all of
# it and 'snapmove cleanup' deletes all of it; a base that another domain
# still uses is kept and named.
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name alone)" "$(dom_name shared)" "$(dom_name shared-other)")

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0x51 0 1M
	new_overlay "$C/src/mid.qcow2" base.raw raw 0x52 1M 1M
	new_overlay "$C/src/top.qcow2" mid.qcow2 qcow2 0x53 2M 1M
}

check_flat() {
	assert_eq "$(live_chain "$DOM" vda)" "$C/dst/top.qcow2 qcow2" "flattened chain"
	assert_eq "$(backing_of "$C/dst/top.qcow2" qcow2)" "" "backing of the flattened image"
	virsh -q destroy "$DOM" >/dev/null
	for spec in "0x51 0 1M" "0x52 1M 1M" "0x53 2M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$C/dst/top.qcow2" qcow2 $spec
	done
}

case_alone() {
	setup alone
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst" --flatten
	assert_eq "$(ls "$C/dst")" top.qcow2 "destination files"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "source: 3 images left"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	assert_contains "$T/err" "deleted $C/src/mid.qcow2 ("
	assert_contains "$T/err" "deleted $C/src/base.raw ("
	assert_eq "$(ls -A "$C/src" | tr '\n' ' ')" "" "source files after cleanup"
	check_flat
}
run_case "cleanup after --flatten deletes the whole source chain" case_alone

case_shared() {
	local other
	setup shared
	other=$(dom_name shared-other)
	mkdir -m 755 "$C/other"
	new_overlay "$C/other/other.qcow2" "$C/src/base.raw" raw
	make_domain_xml "$other" defined "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$C/other/other.qcow2'/><target dev='vda' bus='virtio'/></disk>"
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst" --flatten
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	assert_contains "$T/err" "deleted $C/src/mid.qcow2 ("
	assert_contains "$T/err" "kept $C/src/base.raw: used by domain '$other' disk vda"
	assert_eq "$(ls -A "$C/src" | tr '\n' ' ')" "base.raw " "source files after cleanup"
	check_flat
	check_pattern "$C/other/other.qcow2" qcow2 0x51 0 1M
}
run_case "cleanup after --flatten keeps a base another domain uses" case_shared

cases_done
