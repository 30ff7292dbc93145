# crash-lib.sh: one crash-and-recover case, shared by the crash matrix tests.
#
# crash_case POINT ACTION [DOMAIN_KIND]: a persistent (or transient) domain with
# a two-image chain (top.qcow2 over base.raw, base data in two 64 MiB chunks)
# starts a move that SIGKILLs itself at POINT (SNAPMOVE_TEST_CRASH_AT), the
# guest writes while nothing drives the job, then ACTION (resume or abort)
# must end with: the domain running on the expected chain (destination after
# resume, original after abort), no file of the job left, the persistent
# definition matching the live chain, no block job, and every guest write
# (before, during, after the crash, after recovery) readable.
# An abort after the destination overlay was folded is refused (exit 3) and a
# resume then finishes the move.
# CRASH_OVERLAY_DIR=NAME moves with --overlay-dir $c/NAME (made when missing;
# one other than src and dst must be empty at the end); a function
# crash_killed DIR DOM POINT, when defined, checks the world right after the
# crash.

crash_case() {
	local point=$1 action=$2 kind=${3:-persistent}
	local c=$T/$point-$action${CRASH_OVERLAY_DIR:+-$CRASH_OVERLAY_DIR} dom rc expect
	c=${c//:/-}
	mkdir -m 755 "$c" "$c/src" "$c/dst"
	new_image "$c/src/base.raw" raw 128M 0x11 0 1M 0x12 100M 1M
	new_overlay "$c/src/top.qcow2" base.raw raw 0x13 1M 1M
	cp --sparse=always "$c/src/base.raw" "$c/base.orig"
	dom=$(dom_name "${point//:/-}-$action${CRASH_OVERLAY_DIR:+-$CRASH_OVERLAY_DIR}")
	make_domain "$dom" "$kind" "vda:$c/src/top.qcow2:qcow2"
	guest_write "$dom" vda 0x14 2M 64k
	make_write_hook "$dom" vda copy:0x21:3M sync:0x22:4M collapse:0x23:5M
	local -a ovl=()
	if [ -n "${CRASH_OVERLAY_DIR:-}" ]; then
		mkdir -p -m 755 "$c/$CRASH_OVERLAY_DIR"
		ovl=(--overlay-dir "$c/$CRASH_OVERLAY_DIR")
	fi
	rc=0
	# Through an inner bash, so its "Killed" notice goes nowhere.
	SNAPMOVE_TEST_HOOK=$T/hook SNAPMOVE_TEST_CRASH_AT=$point bash -c \
		'"$@" >"$0.out" 2>"$0.err"; rc=$?; exit $rc' "$c/move" \
		"$SNAPMOVE" --db "$c/j.db" move "$dom" --dest "$c/dst" "${ovl[@]}" 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || { cat "$c/move.err" >&2; fail "$point: move exited $rc, not killed (137)"; }
	grep -q "test crash at '$point'" "$c/move.err" || fail "$point: the crash point was not reached"
	if declare -F crash_killed >/dev/null; then
		crash_killed "$c" "$dom" "$point"
	fi
	guest_write "$dom" vda 0x31 6M 64k   # while nothing drives the job

	expect=$action
	rc=0
	"$SNAPMOVE" --db "$c/j.db" "$action" 1 >"$c/act.out" 2>"$c/act.err" || rc=$?
	if [ "$action" = abort ] && [ "$rc" = 3 ]; then
		grep -q "already moved disk 'vda' and folded its overlay" "$c/act.err" ||
			{ cat "$c/act.err" >&2; fail "$point: abort refused for another reason"; }
		case "$point" in collapse:unjournaled|collapse:done|finalize:*) ;;
		*) fail "$point: abort refused before the overlay was folded" ;;
		esac
		expect=resume
		rc=0
		"$SNAPMOVE" --db "$c/j.db" resume 1 >"$c/act.out" 2>"$c/act.err" || rc=$?
	fi
	[ "$rc" = 0 ] || { cat "$c/act.out" "$c/act.err" >&2; fail "$point: $expect exited $rc"; }
	guest_write "$dom" vda 0x41 7M 64k

	local top base
	if [ "$expect" = resume ]; then
		top=$c/dst/top.qcow2 base=$c/dst/base.raw
		assert_eq "$(ls "$c/dst" | tr '\n' ' ')" "base.raw top.qcow2 " "$point: destination files"
	else
		top=$c/src/top.qcow2 base=$c/src/base.raw
		assert_eq "$(ls -A "$c/dst")" "" "$point: destination files after abort"
	fi
	assert_eq "$(ls "$c/src" | tr '\n' ' ')" "base.raw top.qcow2 " "$point: source files"
	case "${CRASH_OVERLAY_DIR:-}" in
	"" | src | dst) ;;
	*) assert_eq "$(ls -A "$c/$CRASH_OVERLAY_DIR")" "" "$point: files in the overlay folder" ;;
	esac
	assert_eq "$(live_chain "$dom" vda)" "$top qcow2
$base raw" "$point: live chain after $expect"
	assert_eq "$(block_job_count "$dom" vda)" 0 "$point: block jobs after $expect"
	if [ "$kind" = persistent ]; then
		assert_eq "$(virsh dumpxml --inactive "$dom" |
			xmllint --xpath "string(//devices/disk[target/@dev='vda']/source/@file)" -)" \
			"$top" "$point: persistent definition after $expect"
	fi
	"$SNAPMOVE" --db "$c/j.db" status 1 >"$c/status.out"
	grep -q "^job 1: $([ "$expect" = resume ] && echo done || echo aborted)" "$c/status.out" ||
		{ cat "$c/status.out" >&2; fail "$point: job state after $expect"; }
	virsh -q destroy "$dom" >/dev/null
	for spec in "0x11 0 1M" "0x12 100M 1M" "0x13 1M 1M" "0x14 2M 64k" "0x31 6M 64k" \
		"0x41 7M 64k"; do
		# shellcheck disable=SC2086
		check_pattern "$top" qcow2 $spec
	done
	# Writes from the hook happened only if the move got that far.
	for w in "copy 0x21 3M" "sync 0x22 4M" "collapse 0x23 5M"; do
		set -- $w
		if grep -qx "$1" "$T/hook.log" 2>/dev/null; then
			check_pattern "$top" qcow2 "$2" "$3" 64k
		fi
	done
	rm -f "$T/hook.log"
	if [ "$expect" = abort ]; then
		# The base image is never written by a move or its undoing.
		cmp -s "$base" "$c/base.orig" || fail "$point: the original base.raw changed"
	fi
	rm -rf "$c"
	note "$point x $action${CRASH_OVERLAY_DIR:+ (overlay in $CRASH_OVERLAY_DIR/)}: ok ($expect)"
}
