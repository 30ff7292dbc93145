#!/usr/bin/env bash
# serial: the guest's writes (HMP calls, 20 to 200 ms each) must outrun a 2 MiB/s mirror for 3 s: another test's load slows them
# The guest rewrites an 8 MiB region as fast as HMP lets it (tens of MiB/s)
# for the whole move, while --bandwidth 2 holds the mirror back: the mirror
# cannot converge, --sync-writes=auto (the default) restarts it in
# write-blocking mode, the commit's limit is lifted, and the move finishes
# with every write correct.  With --sync-writes=on the mirror blocks writes
# from the start.
. "$(dirname "$0")/lib.sh"

# writer DOM LOG: rewrite blocks 0..7 MiB; after each acknowledged write,
# log "INDEX PATTERN OFFSET_MIB".  Stops when $T/stop exists.
writer() {
	local dom=$1 log=$2 i=0 alias
	alias=$(disk_alias "$dom" vda)
	while [ ! -e "$T/stop" ]; do
		local pat=$((0x40 + i % 64)) off=$((i % 8))
		virsh -q qemu-monitor-command "$dom" --hmp \
			"qemu-io -d $alias/virtio-backend \"write -P $pat ${off}M 1M\"" >/dev/null ||
			break
		echo "$i $pat $off" >>"$log"
		i=$((i + 1))
	done
}

# The last pattern written to each MiB is what the final image must hold.
check_writes() {  # IMAGE LOG
	local off pat
	for off in 0 1 2 3 4 5 6 7; do
		pat=$(awk -v o="$off" '$3 == o { p = $2 } END { print p }' "$2")
		[ -n "$pat" ] || fail "no write landed at ${off} MiB"
		check_pattern "$1" qcow2 "$pat" "${off}M" 1M
	done
}

run_case() {  # NAME SYNC_WRITES_OPTION
	local name=$1 opt=$2 dom d=$T/$1
	mkdir -m 755 "$d" "$d/src" "$d/dst"
	new_image "$d/src/disk.qcow2" qcow2 256M 0x11 100M 8M
	dom=$(dom_name "$name")
	make_domain "$dom" transient "vda:$d/src/disk.qcow2:qcow2"
	rm -f "$T/stop"
	writer "$dom" "$d/writes" &
	local w=$! n0 n1
	sleep 1
	n0=$(wc -l <"$d/writes")
	"$SNAPMOVE" --db "$d/j.db" move "$dom" --dest "$d/dst" --bandwidth 2 \
		--converge-timeout 3 $opt >"$d/out" 2>"$d/err" || {
		touch "$T/stop"; wait "$w"; cat "$d/err" >&2; fail "$name: the move failed"; }
	n1=$(wc -l <"$d/writes")
	sleep 1
	touch "$T/stop"
	wait "$w" || true
	# The writer ran through the whole move (how many writes it made depends
	# on the machine's speed: HMP calls take 20 ms to 200 ms; the auto case's
	# restart message proves the writes outran the mirror).
	[ "$n1" -gt "$n0" ] && [ $((n1 - n0)) -ge 10 ] ||
		fail "$name: only $((n1 - n0)) guest writes during the move"
	[ "$(wc -l <"$d/writes")" -gt "$n1" ] || fail "$name: the writer stopped during the move"
	assert_eq "$(live_chain "$dom" vda)" "$d/dst/disk.qcow2 qcow2" "$name: chain"
	"$SNAPMOVE" --db "$d/j.db" status 1 >"$d/status"
	assert_contains "$d/status" "vda: done (write-blocking mirror)"
	virsh -q destroy "$dom" >/dev/null
	check_writes "$d/dst/disk.qcow2" "$d/writes"
	check_pattern "$d/dst/disk.qcow2" qcow2 0x11 100M 8M
	note "$name: $((n1 - n0)) guest writes during the move, $(wc -l <"$d/writes") in all, all there"
}

run_case auto ""
assert_contains "$T/auto/err" "vda: the mirror did not converge within 3 s under the guest's writes; restarting it in write-blocking mode"
run_case on "--sync-writes=on"
grep -q "the mirror did not converge" "$T/on/err" && fail "--sync-writes=on still waited for the mirror to converge"
true
