#!/usr/bin/env bash
# "The domain is shut off" is proven, not assumed, before anything acts on
# its images offline.  libvirtd can lose a running domain (killed right after
# a pivot, libvirt 9 cannot load the status XML it left) and then calls it
# shut off while its QEMU keeps running the guest.  resume, abort and
# move --offline refuse (exit 3, nothing changed) while a QEMU runs a guest
# of the domain's name or any process holds QEMU's lock on one of the job's
# images, and say which process (pid) holds what and what to do; once it is
# gone, resume finishes.  See interrupt-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/interrupt-lib.sh"

ic_reserve holder orphan offline-move pivoting leftover

# Every file of the case with its checksum, and the job's state: what a
# refused command must leave as it was.  (The disk's state line is left out:
# resume and abort correct the journal's record of it from what libvirt and
# the files show before they decide anything.)
snapshot_world() {
	echo "state: $(virsh domstate "$DOM")"
	echo "definition: $(ic_def_source)"
	(cd "$C" && find src dst -type f | sort | xargs -r md5sum)
	if [ -e "$C/j.db" ]; then
		smc status 1 | sed -e 's/ ([0-9.]* s)//g' | grep -v '^  vda: '
	fi
}

# Background holders, killed when their case ends (each case runs in a
# subshell, which has its own EXIT trap).
HOLDERS=()
stop_holders() {
	local p
	for p in "${HOLDERS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}

# qemu-io holding an image open (read-write, QEMU's locks) for a minute.
# A qemu-io that exits at once found the image locked still (a destroyed
# domain's QEMU lets go of its locks a moment after 'virsh destroy'
# returns): it is started again.
hold_image() {  # IMAGE
	local i
	HOLDER=
	# Up to 30 s: under load (the sanitized suite, 3 tests at once on 2
	# CPUs) qemu-io took more than the 5 s this waited before.
	for i in $(seq 1 300); do
		if [ -z "${HOLDER:-}" ] || ! kill -0 "$HOLDER" 2>/dev/null; then
			qemu-io -f qcow2 -c 'sleep 60000' "$1" >/dev/null 2>&1 &
			HOLDERS+=($!)
			HOLDER=$!
		fi
		sleep 0.1
		kill -0 "$HOLDER" 2>/dev/null || continue
		qemu-img info -f qcow2 "$1" >/dev/null 2>&1 && continue
		# locked: by this qemu-io if it is still there a moment later
		sleep 0.5
		kill -0 "$HOLDER" 2>/dev/null && return 0
	done
	fail "qemu-io does not hold '$1' after 30 s"
}

# The move killed right after its pivot, the guest's newest write in the
# destination overlay, the domain destroyed: a qemu-io (standing for the
# domain's orphan QEMU, or any other writer) holds the destination overlay.
case_holder() {
	trap stop_holders EXIT
	local ovl pid
	ic_setup holder
	ovl=$C/dst/top.qcow2.snapmove-1.qcow2
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:done
	ic_write 0x31 6M flush   # into the destination overlay
	virsh -q destroy "$DOM" >/dev/null
	hold_image "$ovl"
	pid=$HOLDER
	snapshot_world >"$C/world.before"
	for action in resume abort "abort --via stream"; do
		# shellcheck disable=SC2086
		expect_refused "image '$ovl' of disk 'vda' is open in qemu-io (pid $pid)" \
			smc $action 1
		assert_contains "$T/err" "although domain '$DOM' is shut off"
		assert_contains "$T/err" "restart libvirtd"
		assert_contains "$T/err" "then run 'snapmove ${action%% *} 1'"
		snapshot_world >"$C/world.after"
		diff -u "$C/world.before" "$C/world.after" >&2 ||
			fail "'$action' refused but changed something (diff above)"
	done
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	expect_exit 0 smc resume 1
	ic_check done "shut off"
}
run_case "a process holds the destination overlay: resume and abort refuse, name it" \
	case_holder

# libvirt calls the domain shut off but a QEMU named after it runs (here one
# started by hand, holding no image: only its command line gives it away).
case_orphan() {
	trap stop_holders EXIT
	local pid
	ic_setup orphan
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=sync:start
	ic_write 0x31 6M flush   # into the source overlay
	virsh -q destroy "$DOM" >/dev/null
	qemu-system-x86_64 -name "guest=$DOM,debug-threads=on" -machine none -S -nodefaults \
		-display none -daemonize -pidfile "$C/orphan.pid"
	pid=$(cat "$C/orphan.pid")
	HOLDERS+=("$pid")
	snapshot_world >"$C/world.before"
	for action in resume abort; do
		expect_refused "domain '$DOM' is shut off for libvirt but a QEMU still runs it (pid $pid)" \
			smc "$action" 1
		assert_contains "$T/err" "restart libvirtd so it finds the running domain again, then run 'snapmove $action 1'"
		assert_contains "$T/err" "'kill $pid' only if you accept losing the guest's state"
		snapshot_world >"$C/world.after"
		diff -u "$C/world.before" "$C/world.after" >&2 ||
			fail "'$action' refused but changed something (diff above)"
	done
	kill "$pid"
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	expect_exit 0 smc abort 1
	ic_check aborted "shut off"
}
run_case "a QEMU runs a guest of the domain's name: resume and abort refuse, name it" \
	case_orphan

# move --offline of a shut-off domain whose image a process holds: refused,
# no job, no file; without the holder it moves.
case_offline_move() {
	trap stop_holders EXIT
	local pid
	C=$T/offline-move
	DOM=$(dom_name offline-move)
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 128M 0x11 0 1M
	new_overlay "$C/src/top.qcow2" base.raw raw 0x13 1M 1M
	make_domain "$DOM" defined "vda:$C/src/top.qcow2:qcow2"
	hold_image "$C/src/top.qcow2"
	pid=$HOLDER
	DB=$C/j.db
	journal_init
	save_state offline "$DOM" vda "$C/src" "$C/dst"
	expect_refused_unchanged offline \
		"image '$C/src/top.qcow2' of disk 'vda' is open in qemu-io (pid $pid)" \
		smc move "$DOM" --dest "$C/dst" --offline
	assert_contains "$T/case.err" "then run 'snapmove move $DOM --offline'"
	qemu-system-x86_64 -name "guest=$DOM" -machine none -S -nodefaults -display none \
		-daemonize -pidfile "$C/orphan.pid"
	HOLDERS+=("$(cat "$C/orphan.pid")")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	expect_refused_unchanged offline \
		"domain '$DOM' is shut off for libvirt but a QEMU still runs it (pid $(cat "$C/orphan.pid"))" \
		smc move "$DOM" --dest "$C/dst" --offline
	kill "$(cat "$C/orphan.pid")"
	sleep 0.5
	expect_exit 0 smc move "$DOM" --dest "$C/dst" --offline
	assert_eq "$(ic_def_source)" "$C/dst/top.qcow2" "definition after the offline move"
	check_pattern "$C/dst/top.qcow2" qcow2 0x11 0 1M
	check_pattern "$C/dst/top.qcow2" qcow2 0x13 1M 1M
}
run_case "move --offline refuses while a process holds the image or a QEMU runs the guest" \
	case_offline_move

# The pivot was under way (journaled 'pivoting') when libvirtd lost the
# domain, its QEMU was stopped, and the definition still names the source
# overlay: if QEMU did pivot, the destination overlay holds writes the source
# one lacks, which an offline resume would overwrite (copying the source
# overlay over it) and an abort delete.  Both refuse while the overlays
# differ; with the destination overlay removed, as advised, resume finishes.
case_pivoting() {
	local ovl
	ic_setup pivoting
	ic_hook "copy=write 0x21 3M" "sync=write 0x22 4M"
	ic_move 137 SNAPMOVE_TEST_HOOK="$C/hook" SNAPMOVE_TEST_CRASH_AT=pivot:start
	virsh -q destroy "$DOM" >/dev/null
	ovl=$C/dst/top.qcow2.snapmove-1.qcow2
	sqlite3 "$C/j.db" "UPDATE disk SET pivoting = 1"
	# As if the guest had written after QEMU pivoted onto it.
	qemu-io -f qcow2 -c "write -P 0x66 8M 64k" "$ovl" >/dev/null
	snapshot_world >"$C/world.before"
	for action in resume abort; do
		expect_refused "a pivot of disk 'vda' onto '$ovl' was under way when job 1 stopped" \
			smc "$action" 1
		assert_contains "$T/err" "still names the source overlay '$C/dst/top.qcow2.snapmove-1.src.qcow2'"
		assert_contains "$T/err" "then run 'snapmove $action 1'"
		snapshot_world >"$C/world.after"
		diff -u "$C/world.before" "$C/world.after" >&2 ||
			fail "'$action' refused but changed something (diff above)"
	done
	rm "$ovl"
	expect_exit 0 smc resume 1
	ic_check done "shut off"
}
run_case "a pivot under way, the overlays differ: offline resume and abort refuse" case_pivoting

# libvirtd killed during the snapshot had created the overlay (named after
# the job) without the domain ever running on it: nothing has it open, so
# resume takes it as the job's own and takes the snapshot again.
case_leftover() {
	ic_setup leftover
	ic_move 137 SNAPMOVE_TEST_CRASH_AT=snapshot:start
	qemu-img create -q -f qcow2 -F qcow2 -b "$C/src/top.qcow2" \
		"$C/dst/top.qcow2.snapmove-1.src.qcow2"
	ic_write 0x31 6M flush
	expect_exit 0 smc resume 1
	assert_contains "$T/err" "was made by an interrupted snapshot and nothing uses it"
	ic_check done
}
run_case "an overlay left by a snapshot libvirtd died in: resume takes it again" case_leftover

cases_done
