#!/usr/bin/env bash
# A raw image is data, whatever its first sector says.  A guest (or whoever
# owns a raw template) can write a qcow2 header into it that names a host file
# as its backing file; snapmove reads that image as raw everywhere: move live
# and offline, --flatten, --dest-format, verify, chain.  The host file (root's,
# 0600, holding a marker) never reaches a destination.  In particular
# --flatten pins the whole chain for qemu-img convert: an image that does not
# record its backing file's format no longer lets qemu-img probe a raw
# template as qcow2 and read the host file into the new image.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/tpl" "$T/d1" "$T/d2" "$T/d3" "$T/d4" "$T/d5" "$T/off" "$T/d6" \
	"$T/d7"
MARK="SMSECRET-$$-MARKER"
for i in $(seq 1 4096); do echo "$MARK $i"; done >"$T/secret"
chmod 600 "$T/secret"
secret_sum=$(md5sum <"$T/secret")

# $T/fake.qcow2: a valid qcow2 image, every cluster unallocated, over the
# secret (raw): read as qcow2, its content is the secret.
qemu-img create -q -f qcow2 -F raw -b "$T/secret" "$T/fake.qcow2" 64M
truncate -s 256K "$T/fake.qcow2"
chmod 644 "$T/fake.qcow2"
qemu-img info -U -f qcow2 "$T/fake.qcow2" | grep -q "backing file: $T/secret" ||
	fail "the fake header does not name the secret"

# fake_header FILE: write the fake qcow2 header into the start of a raw file.
fake_header() {
	dd if="$T/fake.qcow2" of="$1" conv=notrunc status=none
}

# no_secret DIR...: no copy of the secret's content anywhere in DIR.
no_secret() {
	local d
	for d in "$@"; do
		! grep -rqaF "$MARK" "$d" || fail "the secret's content is in '$d'"
	done
	assert_eq "$(md5sum <"$T/secret")" "$secret_sum" "the secret"
}

# A qcow2 overlay that does not record its backing file's format (as images
# from before qemu 6 may): cut the backing format header extension out
# (renamed to an unknown extension, which qcow2 skips).
unrecorded_overlay() {  # IMAGE BACKING
	qemu-img create -q -f qcow2 -F raw -b "$2" "$1"
	python3 - "$1" <<'EOF'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    head = f.read(65536)
    at = head.find(struct.pack('>I', 0xE2792ACA))
    assert at > 0
    f.seek(at)
    f.write(struct.pack('>I', 0x5A5A5A5A))
EOF
	! qemu-img info -U -f qcow2 "$1" | grep -q "backing file format" ||
		fail "'$1' still records its backing file's format"
}

# 1. A raw template, probed raw by libvirt when the domain started, later
#    given a qcow2 header by its owner.
new_image "$T/tpl/base.raw" raw 64M 0x11 1M 1M
unrecorded_overlay "$T/src/a.qcow2" "$T/tpl/base.raw"
qemu-io -f qcow2 -c "write -P 0x12 2M 1M" "$T/src/a.qcow2" >/dev/null
cp --sparse=always "$T/src/a.qcow2" "$T/src/b.qcow2"
doma=$(dom_name a)
domb=$(dom_name b)
make_domain "$doma" transient "vda:$T/src/a.qcow2:qcow2"
make_domain "$domb" transient "vdb:$T/src/b.qcow2:qcow2"
assert_eq "$(live_chain "$doma" vda)" "$T/src/a.qcow2 qcow2
$T/tpl/base.raw raw" "libvirt's chain over the template"
fake_header "$T/tpl/base.raw"

case_flatten_template() {
	expect_exit 0 sm move "$doma" --dest "$T/d1" --flatten
	assert_eq "$(live_chain "$doma" vda)" "$T/d1/a.qcow2 qcow2" "flattened chain"
	no_secret "$T/d1"
	# The flattened image holds the template's bytes as the raw data they are.
	virsh -q destroy "$doma" >/dev/null
	check_pattern "$T/d1/a.qcow2" qcow2 0x11 1M 1M
	check_pattern "$T/d1/a.qcow2" qcow2 0x12 2M 1M
	qemu-img convert -f qcow2 -O raw "$T/d1/a.qcow2" "$T/flat.raw"
	cmp -n 262144 "$T/fake.qcow2" "$T/flat.raw" ||
		fail "the flattened image does not start with the template's first bytes"
	rm "$T/flat.raw"
	expect_exit 0 sm verify 1
	no_secret "$T/d1"
}
run_case "--flatten reads a raw template as raw, whatever its header" case_flatten_template

case_move_template() {
	expect_exit 0 sm move "$domb" --dest "$T/d2"
	assert_eq "$(live_chain "$domb" vdb)" "$T/d2/b.qcow2 qcow2
$T/tpl/base.raw raw" "chain over the template"
	# The moved image now records the format libvirt opened the template with.
	qemu-img info -U -f qcow2 "$T/d2/b.qcow2" | grep -q "backing file format: raw" ||
		fail "the moved image does not record its backing file's format"
	expect_exit 0 sm verify 2
	no_secret "$T/d2"
}
run_case "a move keeps the template raw" case_move_template

# 2. A raw disk whose guest wrote a qcow2 header into its first sectors.
new_image "$T/src/r.raw" raw 64M 0x21 1M 1M
domr=$(dom_name raw)
make_domain "$domr" persistent "vdc:$T/src/r.raw:raw"
alias=$(disk_alias "$domr" vdc)
virsh -q qemu-monitor-command "$domr" --hmp \
	"qemu-io -d $alias/virtio-backend \"write -s $T/fake.qcow2 0 256k\"" >/dev/null
virsh -q qemu-monitor-command "$domr" --hmp "qemu-io -d $alias/virtio-backend \"flush\"" \
	>/dev/null
qemu-img info -U "$T/src/r.raw" 2>/dev/null | grep -q "backing file: $T/secret" ||
	fail "the guest's header is not in the raw image"

case_guest_header() {
	expect_exit 0 sm chain "$domr" vdc
	assert_contains "$T/out" "$T/src/r.raw  file  raw"
	expect_exit 0 sm move "$domr" --dest "$T/d3" --dest-format qcow2
	assert_eq "$(live_chain "$domr" vdc)" "$T/d3/r.raw qcow2" "converted chain"
	expect_exit 0 sm verify 3
	no_secret "$T/d3"
	expect_exit 0 sm move "$domr" --dest "$T/d4" --flatten
	no_secret "$T/d4"
	expect_exit 0 sm move "$domr" --dest "$T/d5" --dest-format raw
	assert_eq "$(live_chain "$domr" vdc)" "$T/d5/r.raw raw" "converted back"
	no_secret "$T/d5"
	guest_write "$domr" vdc 0x22 2M 64k
	virsh -q destroy "$domr" >/dev/null
	# The guest's bytes, header included, are data on the destination.
	cmp -n 262144 "$T/fake.qcow2" "$T/d5/r.raw" ||
		fail "the raw image lost its first bytes"
	check_pattern "$T/d5/r.raw" raw 0x21 1M 1M
	check_pattern "$T/d5/r.raw" raw 0x22 2M 64k
	# Offline: the definition says raw, so the header names nothing.
	expect_exit 0 sm move "$domr" --offline --dest "$T/d6"
	assert_eq "$(live_chain "$domr" vdc --inactive)" "$T/d6/r.raw raw" "definition"
	assert_eq "$(ls "$T/d6")" r.raw "files moved offline"
	expect_exit 0 sm move "$domr" --offline --dest "$T/d7" --dest-format qcow2
	no_secret "$T/d6" "$T/d7"
	cmp "$T/d5/r.raw" "$T/d6/r.raw" || fail "the offline copy differs"
}
run_case "a guest's qcow2 header in a raw disk is data, live and offline" case_guest_header

cases_done
