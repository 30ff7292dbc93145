#!/usr/bin/env bash
# Copies carry the source's owner, group and permission bits: a root-only
# 0600 image is never copied out 0644, the destination overlay is made as
# the source overlay is, and the moved domain still runs on them (libvirt's
# DAC driver gives the images QEMU opens to its user and back).
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/base.raw" raw 64M 0x61 0 2M
new_overlay "$T/src/top.qcow2" base.raw raw 0x62 4M 1M
chmod 0600 "$T/src/base.raw" "$T/src/top.qcow2"
chown root:root "$T/src/base.raw" "$T/src/top.qcow2"
dom=$(dom_name modes)
make_domain "$dom" transient "vda:$T/src/top.qcow2:qcow2"
owner() { stat -c '%a %U:%G' "$1"; }
note "before: base $(owner "$T/src/base.raw"), top $(owner "$T/src/top.qcow2")"

# The copies as the sources are when they are made: watched from the copy
# phase's start (base.raw made, the overlays live).
cat >"$T/hook" <<HOOK
#!/bin/bash
if [ "\$1" = copy ]; then
	for f in '$T/src/base.raw' '$T/dst/base.raw' '$T/dst/top.qcow2.snapmove-'*.qcow2; do
		echo "\$(basename "\$(dirname "\$f")")/\$(basename "\$f") \$(stat -c '%a %U:%G' "\$f")"
	done >'$T/modes'
fi
HOOK
chmod 755 "$T/hook"
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$T/dst"
while read -r f m; do note "during the copy: $f $m"; done <"$T/modes"
src_base=$(awk '$1 == "src/base.raw" { print $2, $3 }' "$T/modes")
dst_base=$(awk '$1 == "dst/base.raw" { print $2, $3 }' "$T/modes")
src_ov=$(awk '$1 ~ /^dst\/top.qcow2.snapmove-[0-9]+\.src\.qcow2$/ { print $2, $3 }' "$T/modes")
dst_ov=$(awk '$1 ~ /^dst\/top.qcow2.snapmove-[0-9]+\.qcow2$/ { print $2, $3 }' "$T/modes")
[ -n "$src_ov" ] && [ -n "$dst_ov" ] || { cat "$T/modes" >&2; fail "the overlays were not seen during the copy"; }
assert_eq "${dst_base%% *}" 600 "mode of the base copy"
assert_eq "$dst_base" "$src_base" "owner and mode of the base copy"
assert_eq "$dst_ov" "$src_ov" "owner and mode of the destination overlay"
assert_eq "$(live_chain "$dom" vda)" "$T/dst/top.qcow2 qcow2"$'\n'"$T/dst/base.raw raw" \
	"chain after the move"
check_pattern "$T/dst/top.qcow2" qcow2 0x61 0 2M
note "after the move: base $(owner "$T/dst/base.raw"), top $(owner "$T/dst/top.qcow2")"
virsh -q destroy "$dom" >/dev/null
note "after destroy: base $(owner "$T/dst/base.raw"), top $(owner "$T/dst/top.qcow2")," \
	"source base $(owner "$T/src/base.raw")"
[ "$(stat -c %a "$T/dst/base.raw")" = 600 ] || fail "the base copy is $(owner "$T/dst/base.raw")"
