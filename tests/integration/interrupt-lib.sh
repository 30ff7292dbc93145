# interrupt-lib.sh: one move interrupted by something other than a crash of
# snapmove (the domain shut off, libvirtd or QEMU gone, a signal, a full
# destination, a second snapmove), shared by t0022..t0029.  Sourced after
# lib.sh.
#
# Each case has its own directory $C (src/ and dst/), journal ($C/j.db, so its
# job is job 1) and domain $DOM on the chain src/top.qcow2 (qcow2) over
# src/base.raw (raw, 128 MiB, data in its two 64 MiB copy chunks).  Every write
# the final image must hold is listed in $C/patterns ("PATTERN OFFSET LENGTH"):
# the images' own data, and each guest write made through ic_write or a hook.

# ic_reserve NAME...: have the test's cleanup remove the domains of these
# cases.  Call it in the test's shell: run_case's subshell cannot add to
# SM_DOMAINS.
ic_reserve() {
	local n
	for n in "$@"; do
		SM_DOMAINS+=("$(dom_name "$n")")
	done
}

# ic_setup NAME [persistent|transient]: $C, $DOM and the running domain; the
# guest writes 0x14 at 2M before the move.
ic_setup() {
	C=$T/$1
	DOM=$(dom_name "$1")
	mkdir -p -m 755 "$C" "$C/src" "$C/dst"   # dst/ may be a mount made before
	new_image "$C/src/base.raw" raw 128M 0x11 0 1M 0x12 100M 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0x13 1M 1M
	cp --sparse=always "$C/src/base.raw" "$C/base.orig"
	printf '%s\n' "0x11 0 1M" "0x12 100M 1M" "0x13 1M 1M" >"$C/patterns"
	make_domain "$DOM" "${2:-persistent}" "vda:$C/src/top.qcow2:qcow2"
	ic_write 0x14 2M
}

# snapmove with the case's journal.
smc() {
	"$SNAPMOVE" --db "$C/j.db" "$@"
}

# ic_write PATTERN OFFSET [flush]: the guest writes 64k of PATTERN at OFFSET
# (and flushes, as a guest's fsync would), recorded in $C/patterns.
ic_write() {
	local alias
	guest_write "$DOM" vda "$1" "$2" 64k
	if [ "${3:-}" = flush ]; then
		alias=$(disk_alias "$DOM" vda)
		virsh -q qemu-monitor-command "$DOM" --hmp \
			"qemu-io -d $alias/virtio-backend flush" >/dev/null
	fi
	echo "$1 $2 64k" >>"$C/patterns"
}

# ic_hook PHASE=COMMANDS...: writes $C/hook, a program for SNAPMOVE_TEST_HOOK
# that runs COMMANDS (a shell string) when snapmove starts PHASE.  Every phase
# is logged in $C/hook.log.  In COMMANDS: 'write PATTERN OFFSET' is ic_write
# (flushed), 'reached NAME' touches $C/NAME, $DOM and $C are set, $PPID is
# the snapmove process and $job its job.
ic_hook() {
	local spec cases=""
	for spec in "$@"; do
		cases+="${spec%%=*}) ${spec#*=} ;;"$'\n'
	done
	cat >"$C/hook" <<HOOK
#!/bin/bash
set -euo pipefail
export LIBVIRT_DEFAULT_URI=qemu:///system
DOM='$DOM'
C='$C'
write() {
	local alias
	alias=\$(virsh dumpxml "\$DOM" |
		xmllint --xpath "string(//devices/disk[target/@dev='vda']/alias/@name)" -)
	virsh -q qemu-monitor-command "\$DOM" --hmp \
		"qemu-io -d \$alias/virtio-backend \"write -P \$1 \$2 64k\"" >/dev/null
	virsh -q qemu-monitor-command "\$DOM" --hmp \
		"qemu-io -d \$alias/virtio-backend flush" >/dev/null
	echo "\$1 \$2 64k" >>"\$C/patterns"
}
reached() {
	touch "\$C/\$1"
}
phase=\$1
job=\$2
echo "\$phase" >>"\$C/hook.log"
case "\$phase" in
$cases*) ;;
esac
HOOK
	chmod 755 "$C/hook"
}

# ic_move WANT [VAR=VALUE...]: 'snapmove move $DOM --dest $C/dst' (and the
# options in $IC_MOVE_ARGS, split at spaces) in the environment given
# (SNAPMOVE_TEST_CRASH_AT, SNAPMOVE_TEST_HOOK) must exit WANT (137: it killed
# itself at its crash point).  Output: $C/move.out and $C/move.err.  Through
# an inner bash, so its "Killed" notice goes nowhere.
ic_move() {
	local want=$1 rc=0
	local -a more
	read -ra more <<<"${IC_MOVE_ARGS:-}"
	shift
	env "$@" bash -c '"$@" >"$0.out" 2>"$0.err"' "$C/move" \
		"$SNAPMOVE" --db "$C/j.db" move "$DOM" --dest "$C/dst" "${more[@]}" 2>/dev/null || rc=$?
	[ "$rc" = "$want" ] ||
		{ cat "$C/move.out" "$C/move.err" >&2; fail "move exited $rc, expected $want"; }
	if [ "$want" = 137 ]; then
		local point
		point=$(printf '%s\n' "$@" | sed -n 's/^SNAPMOVE_TEST_CRASH_AT=//p')
		grep -q "test crash at '$point'" "$C/move.err" ||
			fail "the crash point '$point' was not reached"
	fi
}

# ic_qemu_pid: the pid of $DOM's QEMU process.
ic_qemu_pid() {
	cat "/run/libvirt/qemu/$DOM.pid"
}

# ic_files DIR: the names in DIR on one line.
ic_files() {
	ls -A "$1" | tr '\n' ' ' | sed 's/ $//'
}

# ic_def_source: the disk source of $DOM's persistent definition.
ic_def_source() {
	virsh dumpxml --inactive "$DOM" |
		xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" -
}

# ic_check RESULT [STATE]: the job of the case ended; RESULT is
#   done     moved: the domain on dst/top.qcow2 over dst/base.raw
#   aborted  undone: back on src/top.qcow2 over src/base.raw, dst/ empty
#   stream   undone via stream: on the source overlay (in dst/, where the move
#            made it) over src/base.raw (the original top image streamed into
#            it), nothing else in dst/
# and STATE the domain's state now: running, or "shut off" after an offline
# finish (then the domain must start from the files its definition names).
# Checks the files of src/ and dst/, the persistent definition, the job's
# state, the live chain and block jobs, then a last write, the chain after a
# cold start from the persistent definition, and every write of $C/patterns
# on the final image.
ic_check() {
	local result=$1 state=${2:-running} top base src dst job
	case "$result" in
	done)
		top=$C/dst/top.qcow2 base=$C/dst/base.raw job=done
		src="base.raw top.qcow2" dst="base.raw top.qcow2" ;;
	aborted)
		top=$C/src/top.qcow2 base=$C/src/base.raw job=aborted
		src="base.raw top.qcow2" dst="" ;;
	stream)
		top=$C/dst/top.qcow2.snapmove-1.src.qcow2 base=$C/src/base.raw job=aborted
		src="base.raw top.qcow2" dst="top.qcow2.snapmove-1.src.qcow2" ;;
	*)
		fail "ic_check: unknown result '$result'" ;;
	esac
	assert_eq "$(virsh domstate "$DOM")" "$state" "domain state after the job ($result)"
	assert_eq "$(ic_files "$C/src")" "$src" "files in src/ ($result)"
	assert_eq "$(ic_files "$C/dst")" "$dst" "files in dst/ ($result)"
	smc status 1 >"$C/status.out"
	grep -q "^job 1: $job," "$C/status.out" ||
		{ cat "$C/status.out" >&2; fail "job 1 is not $job"; }
	local persistent
	persistent=$(virsh dominfo "$DOM" | sed -n 's/^Persistent: *//p')
	if [ "$persistent" = yes ]; then
		assert_eq "$(ic_def_source)" "$top" "persistent definition ($result)"
		! virsh dumpxml --inactive "$DOM" | grep -F "$C/$([ "$result" = done ] &&
			echo src || echo dst)/" | grep -vF "'$top'" >&2 ||
			fail "the persistent definition still names a file of the other side ($result)"
		assert_eq "$(virsh dumpxml --inactive "$DOM" |
			xmllint --xpath "string(//devices/disk[target/@dev='vda']/driver/@type)" -)" \
			qcow2 "format in the persistent definition ($result)"
	fi
	if [ "$state" != running ]; then
		virsh -q start "$DOM" >/dev/null || fail "the domain does not start after the $result"
		wait_domain_running "$DOM"
	fi
	assert_eq "$(live_chain "$DOM" vda)" "$top qcow2
$base raw" "live chain ($result)"
	assert_eq "$(block_job_count "$DOM" vda)" 0 "block jobs ($result)"
	[ "$persistent" != yes ] ||
		assert_eq "$(ic_def_source)" "$top" "persistent definition, domain running ($result)"
	ic_write 0x41 7M
	virsh -q destroy "$DOM" >/dev/null
	if [ "$persistent" = yes ] && [ "$state" = running ]; then
		# A cold start from the definition gives the same chain.
		virsh -q start "$DOM" >/dev/null || fail "the domain does not start again ($result)"
		wait_domain_running "$DOM"
		assert_eq "$(live_chain "$DOM" vda)" "$top qcow2
$base raw" "live chain after a restart from the definition ($result)"
		virsh -q destroy "$DOM" >/dev/null
	fi
	local pat off len
	while read -r pat off len; do
		check_pattern "$top" qcow2 "$pat" "$off" "$len"
	done <"$C/patterns"
	if [ "$result" != done ]; then
		# Neither a move nor its undoing writes the original base image.
		cmp -s "$base" "$C/base.orig" || fail "the original base.raw changed ($result)"
	fi
}
