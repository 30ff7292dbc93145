#!/usr/bin/env bash
# 'cleanup' deletes only in the folders the job journaled, reached without a
# symlink: a source folder swapped for a symlink after the move (to a folder
# of files with the same names, or to the real folder moved aside) makes it
# keep the files and say why; nothing outside is ever deleted.  A source
# folder that libvirt named through a symlink at move time is fine: the job
# journaled the real folder.
. "$(dirname "$0")/lib.sh"

for n in victim aside linked; do
	SM_DOMAINS+=("$(dom_name "$n")")
done

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0xa1 0 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0xa2 1M 1M
}

case_victim() {
	setup victim
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst"
	# The source folder becomes a symlink to a folder of other files with
	# the same names.
	mkdir -m 700 "$C/victim"
	echo precious >"$C/victim/top.qcow2"
	echo precious >"$C/victim/base.raw"
	mv "$C/src" "$C/src.old"
	ln -s "$C/victim" "$C/src"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "kept $C/src/top.qcow2: its folder '$C/src' is now reached through a symbolic link"
	assert_contains "$T/err" "kept $C/src/base.raw: its folder '$C/src' is now reached through a symbolic link"
	assert_eq "$(cat "$C/victim/top.qcow2" "$C/victim/base.raw" | tr '\n' ' ')" \
		"precious precious " "the files behind the symlink"
	assert_eq "$(ls "$C/src.old" | tr '\n' ' ')" "base.raw top.qcow2 " "the moved-aside source"
}
run_case "a source folder swapped for a symlink to other files: nothing deleted" case_victim

case_aside() {
	setup aside
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst"
	# The same files, but the path now goes through a symlink.
	mv "$C/src" "$C/src.real"
	ln -s "$C/src.real" "$C/src"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "kept $C/src/top.qcow2: its folder '$C/src' is now reached through a symbolic link"
	assert_eq "$(ls "$C/src.real" | tr '\n' ' ')" "base.raw top.qcow2 " "the source behind the symlink"
}
run_case "a source folder reached through a new symlink: nothing deleted" case_aside

case_linked() {
	setup linked
	# libvirt names the disk through a symlinked folder from the start.
	ln -s "$C/src" "$C/link"
	make_domain "$DOM" persistent "vda:$C/link/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/link/top.qcow2 ("
	assert_contains "$T/err" "deleted $C/link/base.raw ("
	assert_eq "$(ls -A "$C/src")" "" "the real source folder after cleanup"
	[ -L "$C/link" ] || fail "the symlink itself was removed"
}
run_case "a source folder named through a symlink at move time is cleaned" case_linked

cases_done
