#!/usr/bin/env bash
# The host's defaults (/etc/snapmove/snapmove.conf, or --config PATH; ini,
# read with libinih): 'snapmove config' prints each value in force and where
# it comes from; a move and a rebalance take them, the command line wins.
# A file that is not trustworthy (another user's, writable by others, in a
# folder others can write, a link) or has a bad line is refused, naming the
# line and the fix, and nothing runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

# Every folder from / down must be root's alone: not under /var/tmp.
C=$(mktemp -d /var/lib/snapmove-test-config.XXXXXX)
chmod 755 "$C"
defer "rm -rf '$C'"
mkdir -m 755 "$T/src" "$T/dst" "$T/dst2" "$T/scratch"
rb_storages s1:96M s2:96M
cat >"$C/ok.conf" <<CONF
; the host's defaults
[move]
bandwidth = 300
verify = no
sync-writes = on
overlay-dir = $T/scratch

[hooks]
timeout = 7

[rebalance]
storage = $T/s1
storage = $T/s2
max-parallel = 2
CONF
chmod 644 "$C/ok.conf"

new_image "$T/src/a.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/a.qcow2:qcow2"
new_image "$T/s1/r.qcow2" qcow2 64M 0x21 0 1M
rdom=$(dom_name r)
make_domain "$rdom" transient "vda:$T/s1/r.qcow2:qcow2"

case_print() {
	expect_exit 0 sm config
	assert_contains "$T/out" "move.bandwidth           = 0"
	assert_contains "$T/out" "move.overlay-dir         = (the destination)"
	assert_contains "$T/out" "(default)"
	expect_exit 0 sm --config "$C/ok.conf" config --hook-timeout 9
	assert_contains "$T/out" "# $C/ok.conf"
	assert_contains "$T/out" "move.bandwidth           = 300                          ($C/ok.conf:3)"
	assert_contains "$T/out" "move.verify              = no                           ($C/ok.conf:4)"
	assert_contains "$T/out" "move.sync-writes         = on                           ($C/ok.conf:5)"
	assert_contains "$T/out" "hooks.timeout            = 9                            (command line)"
	assert_contains "$T/out" "move.overlay-dir         = $T/scratch ($C/ok.conf:6)"
	assert_contains "$T/out" "rebalance.storage        = $T/s2 ($C/ok.conf:13)"
	assert_contains "$T/out" "rebalance.max-parallel   = 2                            ($C/ok.conf:14)"
}
run_case "config prints the values in force and their sources" case_print

case_move() {
	expect_exit 0 sm move "$dom" --dest "$T/dst" --config "$C/ok.conf"
	assert_eq "$(sqlite3 "$DB" 'SELECT bandwidth_mib, verify, sync_writes FROM job WHERE id = 1')" \
		"300|0|on" "the first move's options (from the file)"
	expect_exit 0 sm --config "$C/ok.conf" move "$dom" --dest "$T/dst2" --bandwidth 0 \
		--verify --sync-writes auto --overlay-dir "$T/dst2"
	assert_eq "$(sqlite3 "$DB" 'SELECT bandwidth_mib, verify, sync_writes FROM job WHERE id = 2')" \
		"0|1|auto" "the second move's options (the command line wins)"
	assert_eq "$(sqlite3 "$DB" 'SELECT src_overlay FROM disk ORDER BY job_id')" \
		"$T/scratch/a.qcow2.snapmove-1.qcow2
$T/dst2/a.qcow2.snapmove-2.src.qcow2" "the source overlays (the file's folder, then the command line's)"
	assert_eq "$(ls -A "$T/scratch")" "" "the overlay folder after the move"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst2/a.qcow2 qcow2" "chain after the moves"
}
run_case "a move takes the defaults; the command line wins" case_move

case_rebalance() {
	# No --storage: the file's two.
	expect_exit 0 sm --json --config "$C/ok.conf" rebalance --drain "$T/s1" --dry-run
	assert_contains "$T/out" "\"domain\":\"$rdom\""
	assert_contains "$T/out" "\"to\":\"$T/s2\""
}
run_case "a rebalance takes the file's storages" case_rebalance

# refused FILE TEXT: every command refuses FILE (exit 3), says TEXT, and
# nothing runs: no journal is made.
refused() {
	local db=$T/never.db
	expect_exit 3 "$SNAPMOVE" --db "$db" --config "$1" move "$dom" --dest "$T/dst"
	assert_contains "$T/err" "snapmove: error: "
	assert_contains "$T/err" "$2"
	assert_contains "$T/err" "snapmove: nothing was changed"
	expect_exit 3 "$SNAPMOVE" --config "$1" config
	assert_contains "$T/err" "$2"
	[ ! -e "$db" ] || fail "a refused configuration let a journal be made"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst2/a.qcow2 qcow2" "chain after a refusal"
}

case_bad_lines() {
	printf '[move]\nbandwith = 3\n' >"$C/typo.conf"
	refused "$C/typo.conf" "configuration '$C/typo.conf' line 2: no setting 'bandwith' in [move]; see 'man snapmove' (CONFIGURATION) for the settings"
	printf '[move]\nverify = maybe\n' >"$C/value.conf"
	refused "$C/value.conf" "configuration '$C/value.conf' line 2: 'verify' in [move] takes yes or no, not 'maybe'; fix the line or remove it"
	printf '[hooks]\ntimeout = 0\n' >"$C/zero.conf"
	refused "$C/zero.conf" "'timeout' in [hooks] takes seconds (1 to 86400), not '0'"
	printf '[move]\nno equals sign here\n' >"$C/syntax.conf"
	refused "$C/syntax.conf" "configuration '$C/syntax.conf' line 2 is not 'name = value' nor a [section]"
	refused "$C/missing.conf" "there is no configuration file '$C/missing.conf'; check the --config path"
}
run_case "bad lines are refused with their line" case_bad_lines

case_untrusted() {
	# Its hooks folder would run as root: others must not be able to write it.
	cp "$C/ok.conf" "$C/group.conf"
	chmod 664 "$C/group.conf"
	refused "$C/group.conf" "'$C/group.conf' is writable by group or others"
	cp "$C/ok.conf" "$C/nobody.conf"
	chown nobody "$C/nobody.conf"
	refused "$C/nobody.conf" "'$C/nobody.conf' is not owned by root"
	ln -s "$C/ok.conf" "$C/link.conf"
	refused "$C/link.conf" "'$C/link.conf' is not a regular file"
	mkdir -m 777 "$C/open"
	cp "$C/ok.conf" "$C/open/ok.conf"
	refused "$C/open/ok.conf" "'$C/open' is writable by group or others"
	# Under /var/tmp (1777), as $T is.
	cp "$C/ok.conf" "$T/ok.conf"
	refused "$T/ok.conf" "'/var/tmp' is writable by group or others"
}
run_case "a file others could change is refused" case_untrusted

cases_done
