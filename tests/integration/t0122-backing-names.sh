#!/usr/bin/env bash
# The files a move acts on never come from an unchecked header.  Live, the
# chain is libvirt's and every header must agree with it; offline, it is what
# the headers name with pinned formats, and a name is followed only when it is
# the file's real path (no symbolic link in it) and, for an image that is not
# root's, names a file that image's owner may read.  Anything else is refused
# (exit 3, nothing changed) and no byte of the named file is copied.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/user" "$T/planted" "$T/real" "$T/tpl" "$T/dst" "$T/ok" \
	"$T/ok2" "$T/vm" "$T/lv" "$T/ldst"
MARK="SMSECRET-$$-MARKER"
for i in $(seq 1 4096); do echo "$MARK $i"; done >"$T/secret"
truncate -s 64M "$T/secret"
chmod 600 "$T/secret"
secret_sum=$(md5sum <"$T/secret")

no_secret() {
	! grep -rqaF "$MARK" "$T/dst" "$T/ok" "$T/ok2" "$T/ldst" || fail "the secret's content was copied"
	assert_eq "$(md5sum <"$T/secret")" "$secret_sum" "the secret"
}

# 1. A user's image, offline, whose header names root's secret.
qemu-img create -q -f qcow2 -F raw -b "$T/secret" "$T/user/a.qcow2"
chown 65534:65534 "$T/user" "$T/user/a.qcow2"
domu=$(dom_name user)
make_domain "$domu" defined "vda:$T/user/a.qcow2:qcow2"

case_user_image() {
	save_state u "$domu" vda "$T/user" "$T/dst"
	expect_refused_unchanged u "disk 'vda' image '$T/user/a.qcow2' belongs to uid 65534, who may not read its backing file '$T/secret'" \
		sm move "$domu" --offline --dest "$T/dst" --delete-source
	assert_contains "$T/case.err" "qemu-img rebase -u"
	save_state u "$domu" vda "$T/user" "$T/dst"
	expect_refused_unchanged u "may not read its backing file" \
		sm move "$domu" --offline --dest "$T/dst" --flatten
	no_secret
}
run_case "offline: a user's image naming root's file is refused" case_user_image

# 2. A backing name that is a symbolic link planted next to the image.
ln -s "$T/secret" "$T/planted/base.raw"
qemu-img create -q -f qcow2 -u -F raw -b base.raw "$T/planted/a.qcow2" 64M
domp=$(dom_name planted)
make_domain "$domp" defined "vda:$T/planted/a.qcow2:qcow2"

case_planted_link() {
	save_state p "$domp" vda "$T/planted" "$T/dst"
	expect_refused_unchanged p "disk 'vda' image '$T/planted/base.raw' is a symbolic link" \
		sm move "$domp" --offline --dest "$T/dst" --delete-source
	no_secret
	[ -L "$T/planted/base.raw" ] || fail "the planted link is gone"
}
run_case "offline: a backing file that is a symbolic link is refused" case_planted_link

# 3. A backing name through a symbolic link to a directory ("../lnk/...").
new_image "$T/real/base.raw" raw 64M 0x31 0 1M
ln -s real "$T/lnk"
qemu-img create -q -f qcow2 -F raw -b ../lnk/base.raw "$T/src/a.qcow2"
doml=$(dom_name lnk)
make_domain "$doml" defined "vda:$T/src/a.qcow2:qcow2"

case_dir_link() {
	save_state l "$doml" vda "$T/src" "$T/dst"
	expect_refused_unchanged l "disk 'vda' image '$T/src/a.qcow2' names its backing file '../lnk/base.raw' through a symbolic link (the file is '$T/real/base.raw')" \
		sm move "$doml" --offline --dest "$T/dst"
	assert_contains "$T/case.err" "qemu-img rebase -u -b $T/real/base.raw -F raw $T/src/a.qcow2"
}
run_case "offline: a backing name through a directory link is refused" case_dir_link

# 4. "../" to a real file, and an absolute name: followed, and moved.
new_image "$T/tpl/base.raw" raw 64M 0x41 0 1M
new_overlay "$T/vm/mid.qcow2" "$T/tpl/base.raw" raw 0x42 1M 1M
new_overlay "$T/vm/top.qcow2" ../vm/mid.qcow2 qcow2 0x43 2M 1M
domo=$(dom_name ok)
make_domain "$domo" defined "vda:$T/vm/top.qcow2:qcow2"

case_plain_names() {
	expect_exit 0 sm move "$domo" --offline --dest "$T/ok" --copy-shared
	assert_eq "$(ls "$T/ok" | tr '\n' ' ')" "base.raw mid.qcow2 top.qcow2 " "moved files"
	for spec in "0x41 0 1M" "0x42 1M 1M" "0x43 2M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$T/ok/top.qcow2" qcow2 $spec
	done
	# Flattened offline: qemu-img convert reads the chain found again, pinned.
	expect_exit 0 sm move "$domo" --offline --dest "$T/ok2" --flatten
	assert_eq "$(ls "$T/ok2")" top.qcow2 "flattened offline"
	assert_eq "$(backing_of "$T/ok2/top.qcow2" qcow2)" "" "backing of the flattened image"
	for spec in "0x41 0 1M" "0x42 1M 1M" "0x43 2M 1M"; do
		# shellcheck disable=SC2086
		check_pattern "$T/ok2/top.qcow2" qcow2 $spec
	done
}
run_case "offline: '../' and absolute names of real files are followed" case_plain_names

# 5. Live: a chain member that is a symbolic link.
new_image "$T/lv/real.raw" raw 64M 0x51 0 1M
ln -s real.raw "$T/lv/base.raw"
qemu-img create -q -f qcow2 -F raw -b base.raw "$T/lv/a.qcow2"
domv=$(dom_name live-link)
make_domain "$domv" transient "vda:$T/lv/a.qcow2:qcow2"
assert_eq "$(live_chain "$domv" vda)" "$T/lv/a.qcow2 qcow2
$T/lv/base.raw raw" "libvirt's chain through the link"

case_live_link() {
	save_state v "$domv" vda "$T/lv" "$T/ldst"
	expect_refused_unchanged v "disk 'vda' image '$T/lv/base.raw' is a symbolic link" \
		sm move "$domv" --dest "$T/ldst"
}
run_case "live: a chain member that is a symbolic link is refused" case_live_link

# 6. Live: a header that no longer names what libvirt opened.
new_image "$T/lv/b1.raw" raw 64M 0x61 0 1M
new_image "$T/lv/b2.raw" raw 64M 0x62 0 1M
qemu-img create -q -f qcow2 -F raw -b b1.raw "$T/lv/m.qcow2"
domm=$(dom_name mismatch)
make_domain "$domm" transient "vda:$T/lv/m.qcow2:qcow2"
python3 - "$T/lv/m.qcow2" <<'EOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    head = f.read(65536)
    at = head.find(b'b1.raw')
    assert at > 0
    f.seek(at)
    f.write(b'b2.raw')
EOF

case_live_mismatch() {
	save_state m "$domm" vda "$T/lv" "$T/ldst"
	expect_refused_unchanged m "disk 'vda' image '$T/lv/m.qcow2' names 'b2.raw' as its backing file but libvirt reports '$T/lv/b1.raw' below it" \
		sm move "$domm" --dest "$T/ldst"
	save_state m "$domm" vda "$T/lv" "$T/ldst"
	expect_refused_unchanged m "names 'b2.raw' as its backing file" \
		sm move "$domm" --dest "$T/ldst" --flatten
}
run_case "live: a header that disagrees with libvirt is refused" case_live_mismatch

cases_done
