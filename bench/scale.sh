#!/usr/bin/env bash
# scale.sh: does a move's time follow the allocated bytes or the virtual size?
#
# The same 512 MiB of random data, in 4 extents of 128 MiB at 0, 1/4, 1/2 and
# 3/4 of the disk, in a 2 GiB-virtual and in a 1 TiB-virtual disk, as qcow2
# and as sparse raw.  Each run gets a fresh copy of its image (untimed), a
# transient domain with no OS running on it, and 'snapmove move' to another
# directory of the same file system, timed, the page cache dropped just
# before.  The domain must then be on the destination, and with it destroyed,
# qemu-img compare must find the moved image identical to the source.
# Expected: the 1 TiB / 2 GiB ratio close to 1 for each format.
. "$(dirname "$0")/lib.sh"

EXTENTS=4
EXTENT_MIB=128
VARIANTS=(qcow2-2G qcow2-1T raw-2G raw-1T)

echo "== scale: snapmove move of 512 MiB of data in a 2 GiB vs a 1 TiB disk"
print_machine
echo "domain: transient, $(domain_type), 64 MiB, no OS, one virtio disk"
random_file "$W/random" $((EXTENTS * EXTENT_MIB))
mkdir -m 755 "$W/golden"
for size in 2G 1T; do
	raw=$W/golden/raw-$size
	truncate -s "$size" "$raw"
	bytes=$(stat -c %s "$raw")
	for ((i = 0; i < EXTENTS; i++)); do
		place "$raw" "$W/random" $((i * EXTENT_MIB)) "$EXTENT_MIB" $((i * bytes / EXTENTS))
	done
	qemu-img convert -f raw -O qcow2 "$raw" "$W/golden/qcow2-$size"
done
rm -f "$W/random"
sync
echo "images:"
for v in "${VARIANTS[@]}"; do
	printf '  %-9s %16s bytes file, %4s MiB allocated\n' "$v" \
		"$(stat -c %s "$W/golden/$v")" "$(mib "$(alloc_bytes "$W/golden/$v")")"
done
echo "timed: \$SNAPMOVE --db \$W/journal.db move DOM --dest \$RUN/dst"

WALL=$W/wall
QCPU=$W/qemu-cpu
TCPU=$W/tool-cpu
: >"$WALL"
: >"$QCPU"
: >"$TCPU"
for ((r = 1; r <= ROUNDS; r++)); do
	echo "-- round $r"
	for v in $(rotate "$r" "${VARIANTS[@]}"); do
		fmt=${v%%-*}
		RUN=$W/run
		rm -rf "$RUN"
		mkdir -m 755 "$RUN" "$RUN/src" "$RUN/dst"
		cp --sparse=always "$W/golden/$v" "$RUN/src/disk.$fmt"
		dom=smbench-scale-$$-$r-$v
		start_domain "$dom" "$RUN/src/disk.$fmt" "$fmt"
		pid=$(qemu_pid "$dom")
		wait_domain_idle "$pid"
		drop_caches
		c0=$(cpu_secs "$pid")
		t0=$(now_ns)
		/usr/bin/time -f "%U %S" -o "$W/time" \
			"$SNAPMOVE" --db "$W/journal.db" move "$dom" --dest "$RUN/dst" \
			>"$W/log" 2>&1 || { cat "$W/log" >&2; die "snapmove move of $v failed in round $r"; }
		t1=$(now_ns)
		note_others
		c1=$(cpu_secs "$pid")
		wall=$(secs "$t0" "$t1")
		qcpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
		tcpu=$(awk '{ printf "%.2f", $1 + $2 }' "$W/time")
		record "$WALL" "$r" "$v" "$wall"
		record "$QCPU" "$r" "$v" "$qcpu"
		record "$TCPU" "$r" "$v" "$tcpu"
		now=$(disk_source "$dom")
		[ "$now" = "$RUN/dst/disk.$fmt" ] || die "$v: the domain is on '$now' after the move"
		stop_domain "$dom"
		qemu-img compare -q -f "$fmt" -F "$fmt" "$W/golden/$v" "$RUN/dst/disk.$fmt" ||
			die "$v: the moved image differs from the source (round $r)"
		echo "   $v: ${wall} s, snapmove ${tcpu} CPU s, QEMU ${qcpu} CPU s;" \
			"$(mib "$(alloc_bytes "$RUN/dst/disk.$fmt")") MiB at the destination; identical"
		rm -rf "$RUN"
	done
done

report "$WALL" "qcow2: wall time of the move" "s" qcow2-2G qcow2-2G qcow2-1T
report "$WALL" "raw: wall time of the move" "s" raw-2G raw-2G raw-1T
report "$TCPU" "CPU time of snapmove" "s" "" "${VARIANTS[@]}"
report "$QCPU" "CPU time of the domain's QEMU process during the move" "s" "" "${VARIANTS[@]}"
echo
busy_summary
for f in qcow2 raw; do
	verdict "$f: 1 TiB median / 2 GiB median (close to 1)" \
		"$(awk -v a="$(median_of "$WALL" "$f-1T")" -v b="$(median_of "$WALL" "$f-2G")" \
			'BEGIN { print a / b }')" "<=" 1.2
done
