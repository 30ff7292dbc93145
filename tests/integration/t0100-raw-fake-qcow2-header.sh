#!/usr/bin/env bash
# A guest owns every byte of a raw disk, its first sector too: one that looks
# like a qcow2 header naming a host file (a root-only file in another folder)
# must not make '--delete-source' (nor 'cleanup') delete that file, whether
# the raw disk is moved with --flatten or converted with --dest-format qcow2.
# Only the files the job journaled as its chain are deleted: the raw disk.
. "$(dirname "$0")/lib.sh"

SM_DOMAINS+=("$(dom_name flatten)" "$(dom_name convert)")

# fake_header IMAGE NAME: a qcow2-looking first sector whose backing file is NAME.
fake_header() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
path, name = sys.argv[1], sys.argv[2].encode()
hdr = b"QFI\xfb" + struct.pack(">IQI", 3, 256, len(name)) + struct.pack(">IQ", 16, 64 << 20)
sector = (hdr + bytes(256 - len(hdr)) + name).ljust(512, b"\0")
with open(path, "r+b") as f:
    f.write(sector)
PY
}

setup() {  # NAME
	C=$T/$1
	DB=$C/j.db
	DOM=$(dom_name "$1")
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	mkdir -m 700 "$C/host"
	echo "root's own file" >"$C/host/secret"
	chmod 600 "$C/host/secret"
	new_image "$C/src/disk.raw" raw 64M 0x61 1M 1M
	# What the guest wrote into its first sector (in an earlier boot).
	fake_header "$C/src/disk.raw" "$C/host/secret"
	[ "$(head -c 4 "$C/src/disk.raw" | od -An -c | tr -d ' ')" = 'QFI373' ] ||
		fail "the guest's fake header is not in the raw image"
	make_domain "$DOM" persistent "vda:$C/src/disk.raw:raw"
}

check_survived() {
	[ -f "$C/host/secret" ] || fail "the host file the fake header names was deleted"
	assert_eq "$(cat "$C/host/secret")" "root's own file" "the host file's contents"
	assert_eq "$(stat -c %a "$C/host/secret")" 600 "the host file's mode"
}

case_flatten() {
	setup flatten
	expect_exit 0 sm move "$DOM" --dest "$C/dst" --flatten --delete-source
	check_survived
	assert_absent "$C/src/disk.raw"
	assert_contains "$T/err" "deleted $C/src/disk.raw ("
	check_pattern "$C/dst/disk.raw" raw 0x61 1M 1M
}
run_case "--flatten --delete-source keeps the host file a raw disk's fake header names" case_flatten

case_convert() {
	setup convert
	expect_exit 0 sm move "$DOM" --dest "$C/dst" --dest-format qcow2
	expect_exit 0 sm cleanup 1
	check_survived
	assert_absent "$C/src/disk.raw"
}
run_case "--dest-format qcow2 then cleanup keeps the host file a fake header names" case_convert

cases_done
