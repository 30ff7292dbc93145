#!/usr/bin/env bash
# 'snapmove cleanup' deletes a source image only while it is still the file
# the job journaled (device, inode, size, mtime): a new file created later at
# the old path is someone else's and stays, and so does a source image that
# something wrote after the move; cleanup says why for each.
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name new)" "$(dom_name written)")

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0x71 0 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0x72 1M 1M
	make_domain "$DOM" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$DOM" --dest "$C/dst"
}

case_new_file() {
	setup new
	# The image goes; later somebody puts their own file at its path.
	rm "$C/src/base.raw"
	echo "somebody's new file" >"$C/src/base.raw"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	# Another inode ("another file now has its name"), or the old inode
	# reused by the file system (its size, or else its mtime, differs): either
	# way it stays.
	assert_contains "$T/err" "kept $C/src/base.raw: "
	grep -qE "another file now has its name|its size changed since|it was written since" "$T/err" ||
		{ cat "$T/err" >&2; fail "cleanup does not say why it kept the new file"; }
	assert_eq "$(cat "$C/src/base.raw")" "somebody's new file" "the new file"
}
run_case "a new file at an old path survives cleanup, which says why" case_new_file

case_written() {
	setup written
	# Same file, written after the move: not what the job copied.
	qemu-io -f raw -c "write -P 0x7f 2M 64k" "$C/src/base.raw" >/dev/null
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "kept $C/src/base.raw: it was written since the job journaled it"
	[ -f "$C/src/base.raw" ] || fail "an image written after the move was deleted"
	check_pattern "$C/src/base.raw" raw 0x7f 2M 64k
}
run_case "a source image written after the move survives cleanup" case_written

cases_done
