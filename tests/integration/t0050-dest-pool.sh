#!/usr/bin/env bash
# move --dest-pool: the disk lands in a dir pool's directory, and 'virsh
# vol-list' of the destination pool and of the pool over the source directory
# is right when snapmove ends (moved, aborted, source deleted by cleanup or
# --delete-source), without a manual pool-refresh.  Pools that are not dir, fs
# or netfs, an inactive pool and a missing one are refused (exit 3) naming why.
. "$(dirname "$0")/lib.sh"

POOL_PREFIX=smt-0050-$$

# make_pool NAME TYPE ARGS...: define (and, for a dir pool given "start",
# start) a pool, removed at exit.
make_pool() {
	local name=$1
	shift
	virsh -q pool-define-as "$name" "$@" >/dev/null
	defer "remove_pool '$name'"
}

# Stop and undefine a pool, waiting up to 30 s for a libvirtd that another
# test restarts.
remove_pool() {
	local i
	for i in $(seq 1 30); do
		virsh -q pool-destroy "$1" >/dev/null 2>&1 || true
		virsh -q pool-undefine "$1" >/dev/null 2>&1 && return 0
		if virsh -q version >/dev/null 2>&1 && ! virsh -q pool-info "$1" >/dev/null 2>&1; then
			return 0   # libvirtd answers and the pool is gone
		fi
		sleep 1
	done
}

start_pool() {
	virsh -q pool-start "$1" >/dev/null
}

# The volume names a pool lists, sorted, on one line.
pool_vols() {
	virsh -q vol-list --pool "$1" | awk 'NF { print $1 }' | sort | tr '\n' ' ' | sed 's/ $//'
}

SRC=$POOL_PREFIX-src
DST=$POOL_PREFIX-dst
mkdir -m 755 "$T/src" "$T/pool"
make_pool "$SRC" dir --target "$T/src"
start_pool "$SRC"
make_pool "$DST" dir --target "$T/pool"
start_pool "$DST"

new_image "$T/src/base.raw" raw 64M 0x11 0 1M
new_overlay "$T/src/top.qcow2" base.raw raw 0x12 1M 1M
new_image "$T/src/d2.qcow2" qcow2 64M 0x13 0 1M
new_image "$T/src/d3.qcow2" qcow2 64M 0x14 0 1M
new_image "$T/src/d4.qcow2" qcow2 64M 0x15 0 1M
new_image "$T/src/d5.qcow2" qcow2 64M 0x16 0 1M
virsh -q pool-refresh "$SRC" >/dev/null
dom=$(dom_name)
dom2=$(dom_name 2)
dom3=$(dom_name 3)
dom4=$(dom_name 4)
dom5=$(dom_name 5)
make_domain "$dom" persistent "vda:$T/src/top.qcow2:qcow2"
make_domain "$dom2" transient "vda:$T/src/d2.qcow2:qcow2"
make_domain "$dom3" transient "vda:$T/src/d3.qcow2:qcow2"
make_domain "$dom4" transient "vda:$T/src/d4.qcow2:qcow2"
make_domain "$dom5" persistent "vda:$T/src/d5.qcow2:qcow2"

# A hook that refreshes both pools during the copy (so they list this job's
# overlays and half-copied images) and saves their listings.
make_refresh_hook() {  # DOM [fail-at-PHASE]
	make_write_hook "$1" vda copy:0x21:2M
	mv "$T/hook" "$T/write-hook"
	cat >"$T/hook" <<HOOK
#!/bin/bash
export LIBVIRT_DEFAULT_URI=qemu:///system
case "\$1" in
copy)
	virsh -q pool-refresh '$SRC' >/dev/null
	virsh -q pool-refresh '$DST' >/dev/null
	virsh -q vol-list --pool '$SRC' | awk 'NF { print \$1 }' | sort >'$T/during.src'
	virsh -q vol-list --pool '$DST' | awk 'NF { print \$1 }' | sort >'$T/during.dst'
	exec '$T/write-hook' "\$@" ;;
${2:-none})
	echo "test hook fails \$1" >&2
	exit 1 ;;
esac
HOOK
	chmod 755 "$T/hook"
}

case_move_into_pool() {
	make_refresh_hook "$dom"
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest-pool "$DST"
	assert_contains "$T/out" "moved domain $dom"
	# The pools really saw the job's temporary files during the copy...
	# (both overlays are in the destination pool: the source overlay too)
	assert_contains "$T/during.dst" "top.qcow2.snapmove-1.src.qcow2"
	assert_contains "$T/during.dst" "top.qcow2.snapmove-1.qcow2"
	! grep -F "snapmove-" "$T/during.src" >&2 || fail "the source pool listed an overlay"
	assert_contains "$T/during.dst" "base.raw"
	# ...and list what is there now, without a pool-refresh by anyone else.
	assert_eq "$(pool_vols "$DST")" "base.raw top.qcow2" "destination pool's volumes"
	assert_eq "$(pool_vols "$SRC")" "base.raw d2.qcow2 d3.qcow2 d4.qcow2 d5.qcow2 top.qcow2" \
		"source pool's volumes after the move"
	assert_eq "$(ls "$T/pool" | tr '\n' ' ')" "base.raw top.qcow2 " "files in the pool's directory"
	assert_eq "$(live_chain "$dom" vda)" "$T/pool/top.qcow2 qcow2
$T/pool/base.raw raw" "live chain"
	assert_eq "$(live_chain "$dom" vda --inactive | head -n1)" "$T/pool/top.qcow2 qcow2" \
		"persistent definition"
	assert_eq "$(virsh vol-path --pool "$DST" top.qcow2)" "$T/pool/top.qcow2" "vol-path"
	sm status 1 >"$T/status"
	assert_contains "$T/status" "job 1: done, phase done"
	assert_contains "$T/status" "  dest:     $T/pool"
	assert_contains "$T/status" "source: 2 images left"

	# cleanup deletes the source and the source pool forgets the volumes.
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $T/src/top.qcow2"
	assert_contains "$T/err" "deleted $T/src/base.raw"
	assert_eq "$(pool_vols "$SRC")" "d2.qcow2 d3.qcow2 d4.qcow2 d5.qcow2" "source pool after cleanup"
	assert_eq "$(pool_vols "$DST")" "base.raw top.qcow2" "destination pool after cleanup"

	virsh -q destroy "$dom" >/dev/null
	check_pattern "$T/pool/top.qcow2" qcow2 0x11 0 1M
	check_pattern "$T/pool/top.qcow2" qcow2 0x12 1M 1M
	check_pattern "$T/pool/top.qcow2" qcow2 0x21 2M 64k
}
run_case "move a chain into a dir pool; both pools listed right; cleanup" case_move_into_pool

case_delete_source() {
	expect_exit 0 sm move "$dom2" --dest-pool "$DST" --delete-source
	assert_contains "$T/out" "deleted the source: "
	assert_absent "$T/src/d2.qcow2"
	assert_eq "$(live_chain "$dom2" vda)" "$T/pool/d2.qcow2 qcow2" "live chain of $dom2"
	assert_eq "$(pool_vols "$DST")" "base.raw d2.qcow2 top.qcow2" "destination pool's volumes"
	assert_eq "$(pool_vols "$SRC")" "d3.qcow2 d4.qcow2 d5.qcow2" "source pool after --delete-source"
	virsh -q destroy "$dom2" >/dev/null
	check_pattern "$T/pool/d2.qcow2" qcow2 0x13 0 1M
}
run_case "move --delete-source into a pool: the source pool drops the image" case_delete_source

case_abort() {
	# A move that fails at the sync, after the copy put files in the pool,
	# then abort: both pools list what is left.
	make_refresh_hook "$dom3" sync
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom3" --dest-pool "$DST"
	assert_contains "$T/during.dst" "d3.qcow2.snapmove-"
	assert_contains "$T/during.dst" ".src.qcow2"
	expect_exit 0 sm abort "$dom3"
	assert_absent "$T/pool/d3.qcow2"
	assert_eq "$(live_chain "$dom3" vda)" "$T/src/d3.qcow2 qcow2" "live chain after abort"
	assert_eq "$(pool_vols "$DST")" "base.raw d2.qcow2 top.qcow2" "destination pool after abort"
	assert_eq "$(pool_vols "$SRC")" "d3.qcow2 d4.qcow2 d5.qcow2" "source pool after abort"
	virsh -q destroy "$dom3" >/dev/null
	check_pattern "$T/src/d3.qcow2" qcow2 0x14 0 1M
	check_pattern "$T/src/d3.qcow2" qcow2 0x21 2M 64k
}
run_case "an aborted move into a pool: the pools list neither overlay nor copy" case_abort

case_resume() {
	# A move into a pool that fails at the sync, then resume: the pools are
	# right when the resume ends.
	make_refresh_hook "$dom5" sync
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom5" --dest-pool "$DST"
	assert_contains "$T/during.dst" "d5.qcow2.snapmove-"
	assert_contains "$T/during.dst" ".src.qcow2"
	expect_exit 0 sm resume "$dom5"
	assert_eq "$(live_chain "$dom5" vda)" "$T/pool/d5.qcow2 qcow2" "live chain after resume"
	assert_eq "$(live_chain "$dom5" vda --inactive)" "$T/pool/d5.qcow2 qcow2" \
		"definition after resume"
	assert_eq "$(pool_vols "$DST")" "base.raw d2.qcow2 d5.qcow2 top.qcow2" \
		"destination pool after resume"
	assert_eq "$(pool_vols "$SRC")" "d3.qcow2 d4.qcow2 d5.qcow2" "source pool after resume"
	virsh -q destroy "$dom5" >/dev/null
	check_pattern "$T/pool/d5.qcow2" qcow2 0x16 0 1M
	check_pattern "$T/pool/d5.qcow2" qcow2 0x21 2M 64k
}
run_case "a failed move into a pool, resumed: the pools are right at the end" case_resume

# ---- refused pools: exit 3, nothing changed ----

LV=$POOL_PREFIX-lv
DISKP=$POOL_PREFIX-disk
OFF=$POOL_PREFIX-off
mkdir -m 755 "$T/off"
make_pool "$LV" logical --source-name "smt0050vg$$" --target "/dev/smt0050vg$$"
make_pool "$DISKP" disk --source-dev "/dev/smt0050-nodev-$$" --target /dev
make_pool "$OFF" dir --target "$T/off"

case_refused() {
	save_state refused "$dom4" vda "$T/src" "$T/pool" "$T/off"
	# A logical pool takes the disks onto its volumes (the lvm provisioner),
	# with --dest for the overlays (t0216).
	expect_refused_unchanged refused \
		"storage pool '$LV' is a logical pool: its volumes take the disks' images, and the overlays need a folder; add --dest DIR" \
		sm move "$dom4" --dest-pool "$LV"
	expect_refused_unchanged refused \
		"storage pool '$DISKP' is of type 'disk'; snapmove moves into dir, fs and netfs pools" \
		sm move "$dom4" --dest-pool "$DISKP"
	expect_refused_unchanged refused \
		"storage pool '$OFF' is not active; start it with 'virsh pool-start $OFF'" \
		sm move "$dom4" --dest-pool "$OFF"
	expect_refused_unchanged refused "is already in the destination" \
		sm move "$dom4" --dest-pool "$SRC"
	expect_refused_unchanged refused \
		"no storage pool named '$POOL_PREFIX-none'; see 'virsh pool-list --all'" \
		sm move "$dom4" --dest-pool "$POOL_PREFIX-none"
	# --dest and --dest-pool together: only with a logical pool.
	expect_refused_unchanged refused \
		"storage pool '$DST' is a folder: give --dest-pool or --dest, not both" \
		sm move "$dom4" --dest "$T/pool" --dest-pool "$DST"
	assert_eq "$(virsh domstate "$dom4")" running "$dom4 state"
	assert_eq "$(pool_vols "$SRC")" "d3.qcow2 d4.qcow2 d5.qcow2" "source pool after the refusals"
	assert_eq "$(virsh pool-info "$OFF" | sed -n 's/^State: *//p')" inactive \
		"the inactive pool stays inactive"
}
run_case "logical, disk, inactive, missing and source pools are refused" case_refused

cases_done
