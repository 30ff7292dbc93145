#!/usr/bin/env bash
# 'snapmove move' refuses a bad command line (exit 2), a journal it cannot
# open, a libvirt URI it cannot connect to, an unknown domain and a domain
# that is not running (exit 3), each with a message that names the problem and
# the fix, and changes nothing.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
save_state run "$dom" vda "$T/src" "$T/dst"

# expect_usage TEXT ARGS...: a command-line error: exit 2, the problem and a
# pointer to the help on stderr, nothing on stdout, nothing changed.
expect_usage() {
	local text=$1
	shift
	expect_exit 2 sm "$@"
	assert_contains "$T/err" "$text"
	assert_contains "$T/err" "see 'snapmove move --help'"
	[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "'$*' printed on stdout"; }
	assert_unchanged run
}

note "usage errors"
expect_usage "move needs either --dest DIR" move "$dom"
expect_usage "move needs either --dest DIR" move "$dom" --disk vda
expect_usage "move needs a DOMAIN" move --dest "$T/dst"
expect_usage "move needs a DOMAIN" move
expect_usage "--bandwidth takes a whole number of MiB/s, not 'abc'" \
	move "$dom" --dest "$T/dst" --bandwidth abc
expect_usage "--bandwidth takes a whole number of MiB/s, not '-5'" \
	move "$dom" --dest "$T/dst" --bandwidth -5
expect_usage "--bandwidth takes a whole number of MiB/s, not '10M'" \
	move "$dom" --dest "$T/dst" --bandwidth 10M
expect_usage "bad option" move "$dom" --dest "$T/dst" --no-such-option
expect_usage "unrecognized option '--no-such-option'" move "$dom" --dest "$T/dst" --no-such-option
expect_usage "unexpected argument 'extra'" move "$dom" extra --dest "$T/dst"
# An option that needs a value, given none.
expect_usage "bad option" move "$dom" --dest

note "a journal that cannot be opened"
# --db below a regular file.
echo "not a directory" >"$T/plainfile"
expect_exit 3 "$SNAPMOVE" --db "$T/plainfile/journal.db" move "$dom" --dest "$T/dst"
assert_contains "$T/err" "snapmove: error: cannot open the journal '$T/plainfile/journal.db'"
assert_contains "$T/err" "pass --db with a writable path"
assert_eq "$(cat "$T/plainfile")" "not a directory" "the regular file below --db"
assert_unchanged run
# Two levels below a regular file: snapmove would have to create a directory.
expect_exit 3 "$SNAPMOVE" --db "$T/plainfile/sub/journal.db" move "$dom" --dest "$T/dst"
assert_contains "$T/err" "cannot open the journal '$T/plainfile/sub/journal.db'"
assert_contains "$T/err" "pass --db with a writable path"
assert_unchanged run
# --db naming a directory.
mkdir -m 755 "$T/dbdir" "$T/dbdir/journal.db"
expect_exit 3 "$SNAPMOVE" --db "$T/dbdir/journal.db" move "$dom" --dest "$T/dst"
assert_contains "$T/err" "cannot open the journal '$T/dbdir/journal.db'"
assert_contains "$T/err" "pass --db"
assert_eq "$(ls -A "$T/dbdir")" journal.db "files beside the --db directory"
assert_eq "$(ls -A "$T/dbdir/journal.db")" "" "files in the --db directory"
assert_unchanged run

note "a libvirt URI that cannot be connected to"
expect_exit 3 sm -c qemu:///nonsense move "$dom" --dest "$T/dst"
assert_contains "$T/err" "snapmove: error: cannot connect to 'qemu:///nonsense'"
assert_contains "$T/err" "pass -c URI"
assert_unchanged run

note "unknown domain"
expect_refused "no domain named 'smt-no-such-domain-$$' on 'qemu:///system'; see 'virsh -c qemu:///system list --all'" \
	sm move "smt-no-such-domain-$$" --dest "$T/dst"
assert_unchanged run
# An unknown UUID is looked up the same way.
expect_refused "no domain named '00000000-0000-4000-8000-00000000dead'" \
	sm move 00000000-0000-4000-8000-00000000dead --dest "$T/dst"
assert_unchanged run

note "domain not running"
mkdir -m 755 "$T/offsrc"
new_image "$T/offsrc/off.qcow2" qcow2 64M 0x22 0 1M
off=$(dom_name off)
make_domain_xml "$off" defined "<disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/><source file='$T/offsrc/off.qcow2'/>
  <target dev='vda' bus='virtio'/></disk>"
save_state off "$off" vda "$T/offsrc" "$T/dst"
expect_refused "domain '$off' is not running" sm move "$off" --dest "$T/dst"
assert_contains "$T/err" "move it offline with --offline"
assert_contains "$T/err" "start it ('virsh start $off') to move it live"
assert_unchanged off
assert_eq "$(virsh domstate "$off")" "shut off" "state of the shut-off domain"
# Named with --disk it is refused the same way.
expect_refused "domain '$off' is not running" sm move "$off" --dest "$T/dst" --disk vda
assert_unchanged off
# --offline moves it: the definition points at the copy, which holds the data.
mkdir -m 755 "$T/offdst"
"$SNAPMOVE" --db "$T/off.db" move "$off" --dest "$T/offdst" --offline >/dev/null 2>"$T/off.err" ||
	{ cat "$T/off.err" >&2; fail "the offline move failed"; }
assert_eq "$(virsh dumpxml --inactive "$off" |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" -)" \
	"$T/offdst/off.qcow2" "definition after an offline move"
check_pattern "$T/offdst/off.qcow2" qcow2 0x22 0 1M
assert_eq "$(virsh domstate "$off")" "shut off" "state after an offline move"

# The running domain was never touched by any of the above.
assert_unchanged run
expect_exit 0 sm list
assert_eq "$(cat "$T/out")" "no jobs" "journal after all refusals"
