#!/usr/bin/env bash
# "Nothing uses it" sees an overlay in another folder that a domain defines,
# whatever form its backing name takes ('file:' prefix, relative '../'):
# '--delete-source' and 'cleanup' keep the source base it stands on, and the
# overlay still opens.  (An overlay that no domain defines in another folder
# cannot be known: docs/security.md says so, and cleanup's output too.)
. "$(dirname "$0")/lib.sh"

for n in move move-other cleanup cleanup-other rel rel-other; do
	SM_DOMAINS+=("$(dom_name "$n")")
done

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	OTHER=$(dom_name "$1-other")
	mkdir -m 755 "$C" "$C/src" "$C/dst" "$C/other"
	new_image "$C/src/base.qcow2" qcow2 64M 0x91 0 1M
	new_overlay "$C/src/top.qcow2" base.qcow2 qcow2 0x92 1M 1M
}

# other_domain BACKING_NAME: a defined (shut off) domain on an overlay in
# another folder whose header names the source base as BACKING_NAME.
other_domain() {
	qemu-img create -q -f qcow2 -F qcow2 -b "$1" "$C/other/ov.qcow2"
	make_domain_xml "$OTHER" defined "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$C/other/ov.qcow2'/><target dev='vda' bus='virtio'/></disk>"
}

check_other_opens() {
	[ -f "$C/src/base.qcow2" ] || fail "the base another folder's overlay uses was deleted"
	qemu-img info -U --backing-chain -f qcow2 "$C/other/ov.qcow2" >/dev/null ||
		fail "the other folder's overlay does not open any more"
	check_pattern "$C/other/ov.qcow2" qcow2 0x91 0 1M
}

case_move() {
	setup move
	other_domain "file:$C/src/base.qcow2"
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst" --delete-source
	check_other_opens
	assert_absent "$C/src/top.qcow2"
}
run_case "--delete-source keeps a base named 'file:...' by an overlay in another folder" case_move

case_cleanup() {
	setup cleanup
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst"
	# After the move, another domain starts to use the old base.
	other_domain "file:$C/src/base.qcow2"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	assert_contains "$T/err" "kept $C/src/base.qcow2: used by domain '$OTHER' disk vda"
	assert_contains "$T/err" "an image that no domain defines, in a folder other than the source's, is not seen"
	check_other_opens
}
run_case "cleanup keeps a base named 'file:...' by another domain's overlay" case_cleanup

case_relative() {
	setup rel
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst"
	other_domain "../src/base.qcow2"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "kept $C/src/base.qcow2: used by domain '$OTHER' disk vda"
	check_other_opens
}
run_case "cleanup keeps a base named '../' by another domain's overlay" case_relative

cases_done
