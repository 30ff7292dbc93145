#!/usr/bin/env bash
# 'snapmove copy' copies regular files only: a directory, a device and a FIFO
# as SRC are refused (exit 3, no hang, no DST left); a copy carries SRC's
# owner and mode, so a root-only 0600 source is never copied out readable.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/dir"
mkfifo "$T/fifo"
for src in "$T/dir:a directory" "/dev/zero:a device" "$T/fifo:a FIFO"; do
	what=${src#*:}
	src=${src%%:*}
	expect_exit 3 timeout 20 "$SNAPMOVE" copy "$src" "$T/dst"
	assert_contains "$T/err" "'$src' is $what, not a regular file"
	assert_absent "$T/dst"
done
note "a directory, /dev/zero and a FIFO refused"

# Owner and mode: 0600 root stays 0600 root; 0640 of another user stays so.
new_image "$T/secret.raw" raw 16M 0x41 0 1M
chmod 0600 "$T/secret.raw"
expect_exit 0 "$SNAPMOVE" copy "$T/secret.raw" "$T/secret.copy"
assert_eq "$(stat -c '%a %U:%G' "$T/secret.copy")" "600 root:root" "mode of the copy"
cmp -s "$T/secret.raw" "$T/secret.copy" || fail "the copy differs"
chown nobody:nogroup "$T/secret.raw"
chmod 4640 "$T/secret.raw"
expect_exit 0 "$SNAPMOVE" copy "$T/secret.raw" "$T/secret.copy2"
assert_eq "$(stat -c '%a %U:%G' "$T/secret.copy2")" "640 nobody:nogroup" \
	"mode of the copy of another user's file (no setuid bit)"
note "copies carry the source's owner and mode"
