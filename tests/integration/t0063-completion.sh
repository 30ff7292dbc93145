#!/usr/bin/env bash
# Bash completion (completion/snapmove.bash): commands, options per command,
# option values, domain names, the chosen domain's disks, job numbers by state.
. "$(dirname "$0")/lib.sh"
# shellcheck source=../../completion/snapmove.bash
. "$TOP/completion/snapmove.bash"

mkdir -m 755 "$T/src" "$T/dst" "$T/dst2"
new_image "$T/src/a.qcow2" qcow2 64M 0x11 0 1M
new_image "$T/src/b.raw" raw 16M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/a.qcow2:qcow2" "vdb:$T/src/b.raw:raw"
# Job 1 done, job 2 failed (unfinished).
expect_exit 0 sm move "$dom" --dest "$T/dst" --disk vdb
make_write_hook "$dom" vda copy:fail:0
SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom" --dest "$T/dst2" --disk vda

# comp LINE: what completes at the end of LINE, sorted, one space apart.
comp() {
	local COMP_LINE=$1 COMP_POINT=${#1} COMP_CWORD COMPREPLY=()
	local -a COMP_WORDS
	read -ra COMP_WORDS <<<"$1"
	[[ $1 == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_snapmove "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

expect_comp() {  # LINE WANT
	assert_eq "$(comp "$1")" "$2" "completion of '$1'"
}

SM="$SNAPMOVE --db $DB"

# Commands and options.
expect_comp "snapmove mo" move
expect_comp "snapmove " "abort chain cleanup config copy forget help list move provision rebalance recover resume status verify"
expect_comp "snapmove --js" --json
expect_comp "snapmove --hook" "--hook-timeout --hooks-dir"
expect_comp "snapmove --json st" status
expect_comp "snapmove help st" status
expect_comp "snapmove move $dom --di" --disk
expect_comp "snapmove move $dom --dest-" "--dest-dev --dest-format --dest-pool --dest-provisioner --dest-zeroed"
expect_comp "snapmove move $dom --dest-provisioner " "loop lvm"
expect_comp "snapmove move $dom --set " "LOOP_DIR= LVM_VG="
expect_comp "snapmove move $dom --dest-dev " "vda= vdb="
expect_comp "snapmove move $dom --no" --no-verify
expect_comp "snapmove abort 2 --" "--help --json --via"
expect_comp "snapmove copy a --ch" --chunk-size
expect_comp "snapmove list --" "--help --json"
expect_comp "snapmove verify --" --help
expect_comp "snapmove move $dom --off" --offline
expect_comp "snapmove move $dom --tr" --trim
expect_comp "snapmove move $dom --ov" "--overlay-dir --overlay-provisioner --overlay-set --overlay-size"
expect_comp "snapmove move $dom --overlay-provisioner l" "loop lvm"
expect_comp "snapmove move $dom --overlay-set L" "LOOP_DIR= LVM_VG="
expect_comp "snapmove recover --" "--help --resume"
expect_comp "snapmove --qu" --quiet
expect_comp "snapmove --conf" --config
expect_comp "snapmove re" "rebalance recover resume"
expect_comp "snapmove provision " "create extend list remove"
expect_comp "snapmove provision create a 1M --pro" --provisioner
expect_comp "snapmove provision create a 1M --provisioner l" "loop lvm"
expect_comp "snapmove provision create a 1M --set L" "LOOP_DIR= LVM_VG="
expect_comp "snapmove rebalance --st" "--stop-on-error --storage"
expect_comp "snapmove rebalance --storage $T/src --storage $T/dst --drain " "$T/dst $T/src"

# Option values.
expect_comp "snapmove move $dom --dest-format " "qcow2 raw"
expect_comp "snapmove move $dom --copy-method re" "readwrite reflink"
expect_comp "snapmove move $dom --sync-writes o" "off on"
expect_comp "snapmove abort 2 --via " "commit stream"
expect_comp "snapmove move $dom --dest $T/ds" "$T/dst $T/dst2"
expect_comp "snapmove --hooks-dir $T/sr" "$T/src"
expect_comp "snapmove move $dom --overlay-dir $T/ds" "$T/dst $T/dst2"
expect_comp "snapmove rebalance --storage $T/ds" "$T/dst $T/dst2"
touch "$T/other-journal.db"
expect_comp "snapmove --db $T/other-j" "$T/other-journal.db"
# bash replaces what follows the last ':' only.
expect_comp "snapmove -c qemu:///s" "///session ///system"

# Domains and their disks.
[[ " $(comp "snapmove move smt-${TNAME#t}-$$") " == *" $dom "* ]] ||
	fail "'snapmove move smt-...' does not offer '$dom': $(comp "snapmove move smt-${TNAME#t}-$$")"
expect_comp "snapmove move $dom" "$dom"
expect_comp "snapmove chain ${dom%?}" "$dom"
expect_comp "snapmove move $dom --disk " "vda vdb"
expect_comp "snapmove move $dom --disk v" "vda vdb"
expect_comp "snapmove move $dom --dest $T/dst --disk vdb --disk " vda
expect_comp "snapmove -c qemu:///system move $dom --disk " "vda vdb"
expect_comp "snapmove --json move --dry-run $dom --disk vda --disk " vdb
expect_comp "snapmove chain $dom " "vda vdb"
expect_comp "snapmove chain $dom vda " ""
expect_comp "snapmove move nosuchdomain-$$ --disk " ""
expect_comp "snapmove rebalance --storage $T/src --include $dom" "$dom"
expect_comp "snapmove rebalance --exclude $dom" "$dom"

# Job numbers, from this journal (--db), by what each command takes.
expect_comp "$SM resume " 2
expect_comp "$SM abort " 2
expect_comp "$SM status " "1 2"
expect_comp "$SM verify " 1
expect_comp "$SM cleanup " 1
expect_comp "$SM forget " 1
expect_comp "$SNAPMOVE --db=$DB status " "1 2"
expect_comp "$SM status 1 " ""

# Every command and option the help texts name is known to the completion
# and to the man page (man/snapmove.1 spells '-' as '\-').
cmds=$("$SNAPMOVE" --help | awk '/^commands:/ { on = 1; next } /^$/ { on = 0 } on { print $1 }')
for c in $cmds; do
	[[ " $_snapmove_commands " == *" $c "* ]] || fail "completion does not know command '$c'"
	grep -q "^\.SS $c\b" "$TOP/man/snapmove.1" || fail "man page has no section for '$c'"
	# options: at the start of a line, after '[', '(' or '|', or after
	# "snapmove COMMAND" (not in "'move --x'")
	for o in $("$SNAPMOVE" help "$c" | grep -oE -- '(^ *|[[(|] *|snapmove [a-z]+ )--[a-z][a-z-]*' |
		sed 's/.*--/--/' | sort -u); do
		[[ " $(_snapmove_cmd_opts "$c") " == *" $o "* ]] ||
			fail "completion does not offer '$o' for '$c'"
		grep -qF -- "${o//-/\\-}" "$TOP/man/snapmove.1" || fail "man page does not name '$o' ($c)"
	done
done
for o in $("$SNAPMOVE" --help | grep -oE -- '^ +(-[a-z], )?--[a-z][a-z-]*' | sed 's/.*--/--/' |
	sort -u); do
	[[ " $_snapmove_global_opts " == *" $o "* ]] || fail "completion does not offer global '$o'"
	grep -qF -- "${o//-/\\-}" "$TOP/man/snapmove.1" || fail "man page does not name '$o'"
done
