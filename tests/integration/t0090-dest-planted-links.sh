#!/usr/bin/env bash
# A destination folder another user owns and anyone can write (0777, not
# sticky): what they plant there never leads root to write a file of its
# own.  A symlink at a destination name before the move: refused.  A hard
# link to a root-only file put in place of a destination image between
# phases (after snapmove created it, before the copy): the copy still goes
# into the file snapmove created, the move stops on the swap, and the
# root-only file is unchanged (content and mode).
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
chown nobody:nogroup "$T/dst"
chmod 0777 "$T/dst"
head -c 1M /dev/urandom >"$T/victim"
chmod 0600 "$T/victim"
victim_state() { echo "$(sha256sum <"$T/victim") $(stat -c '%a %U:%G %h' "$T/victim")"; }
before=$(victim_state)

new_image "$T/src/base.raw" raw 64M 0x51 0 2M 0x52 40M 1M
new_overlay "$T/src/top.qcow2" base.raw raw 0x53 4M 1M
dom=$(dom_name planted)
make_domain "$dom" transient "vda:$T/src/top.qcow2:qcow2"

# A symlink planted at the base image's destination name.
ln -s "$T/victim" "$T/dst/base.raw"
expect_exit 3 sm move "$dom" --dest "$T/dst"
assert_contains "$T/err" "base.raw"
[ -L "$T/dst/base.raw" ] || fail "the planted link was replaced"
assert_eq "$(victim_state)" "$before" "the root-only file after a planted symlink"
rm "$T/dst/base.raw"
note "a planted symlink: refused"

# A hard link swapped in before the copy phase (root plants it here; a
# user can where fs.protected_hardlinks is off, or with a file of their own).
cat >"$T/hook" <<HOOK
#!/bin/bash
if [ "\$1" = copy ]; then
	mv '$T/dst/base.raw' '$T/dst/base.raw.moved'
	ln '$T/victim' '$T/dst/base.raw'
fi
HOOK
chmod 755 "$T/hook"
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom" --dest "$T/dst"
assert_eq "$(victim_state | sed 's/ 2$/ 1/')" "$before" "the root-only file after a hard-link swap"
assert_contains "$T/err" "destination file '$T/dst/base.raw' was renamed or replaced"
# The copy went into the file snapmove made, under its new name.
cmp -s "$T/src/base.raw" "$T/dst/base.raw.moved" || fail "the copy is not in the file created"
# A resume refuses the linked file too.
expect_exit 1 sm resume "$dom"
assert_contains "$T/err" "is no longer the file job"
assert_eq "$(victim_state | sed 's/ 2$/ 1/')" "$before" "the root-only file after resume"
expect_exit 0 sm abort "$dom"
# abort keeps the planted link (not the file the job made) and says so
# (t0150 holds the rest).
assert_eq "$(victim_state | sed 's/ 2$/ 1/')" "$before" "the root-only file after abort"
[ "$(stat -c %h "$T/victim")" = 2 ] || fail "abort removed the planted link"
assert_contains "$T/err" "kept $T/dst/base.raw: another file now has its name"
assert_eq "$(live_chain "$dom" vda)" "$T/src/top.qcow2 qcow2"$'\n'"$T/src/base.raw raw" "chain after abort"
note "a hard link swapped in: the move stops, the file is untouched"
