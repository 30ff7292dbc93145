#!/usr/bin/env bash
# move.sh: a live move end to end, snapmove move against virsh blockcopy.
#
# A 4 GiB-virtual qcow2 image holding 1 GiB of random data in 4 extents is
# made once.  Each run gets a fresh copy of it (untimed) on the same file
# system, a transient domain with no OS running on that copy, and moves the
# disk to another directory of the same file system:
#   snapmove   snapmove move DOM --dest DIR  (snapshot, shallow mirror of the
#              overlay, base copied outside QEMU, pivot, commit)
#   blockcopy  virsh blockcopy DOM vda --dest DIR/disk.qcow2 --format qcow2
#              --wait --pivot --verbose  (a full mirror through QEMU, as
#              Proxmox and Nova move disks)
# Timed: the command alone, the page cache dropped just before it.  Measured:
# wall time, the CPU seconds (utime + stime, all threads) the domain's QEMU
# process used during the command, and the CPU seconds of the command itself
# (snapmove does its copying in its own process; virsh only waits).  After
# each run the domain must be on the destination file, and with the domain
# destroyed, qemu-img compare must find it identical to the source image.
# Goals: snapmove's median wall time <= 1.0 x blockcopy's, and QEMU's CPU
# time well below.
. "$(dirname "$0")/lib.sh"

VSIZE_GIB=4
EXTENTS=4
EXTENT_MIB=256
TOOLS=(snapmove blockcopy)
GOLDEN=$W/golden.qcow2

echo "== move: snapmove move vs virsh blockcopy --pivot on a running domain"
print_machine
echo "domain: transient, $(domain_type), 64 MiB, no OS, one virtio disk"
echo "making the image: qcow2, ${VSIZE_GIB} GiB virtual, $((EXTENTS * EXTENT_MIB)) MiB random in $EXTENTS extents"
random_file "$W/random" $((EXTENTS * EXTENT_MIB))
truncate -s "${VSIZE_GIB}G" "$W/golden.raw"
for ((i = 0; i < EXTENTS; i++)); do
	place "$W/golden.raw" "$W/random" $((i * EXTENT_MIB)) "$EXTENT_MIB" \
		$((i * (1 << 30) + i * (5 << 20)))
done
rm -f "$W/random"
qemu-img convert -f raw -O qcow2 "$W/golden.raw" "$GOLDEN"
rm -f "$W/golden.raw"
sync
echo "image: $(stat -c %s "$GOLDEN") bytes file, $(mib "$(alloc_bytes "$GOLDEN")") MiB allocated"
echo "tools:"
echo "  snapmove   \$SNAPMOVE --db \$W/journal.db move DOM --dest \$RUN/dst"
echo "  blockcopy  virsh blockcopy DOM vda --dest \$RUN/dst/disk.qcow2 --format qcow2 --wait --pivot --verbose"

# QEMU's CPU use while idle, the noise floor of the QEMU CPU figures.
qemu-img create -q -f qcow2 "$W/idle.qcow2" 1G
start_domain "smbench-idle-$$-0" "$W/idle.qcow2" qcow2
pid=$(qemu_pid "smbench-idle-$$-0")
wait_domain_idle "$pid"
c0=$(cpu_secs "$pid")
sleep 5
c1=$(cpu_secs "$pid")
stop_domain "smbench-idle-$$-0"
echo "idle QEMU (after the firmware settles): $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", (b - a) / 5 }') CPU s per s"

WALL=$W/wall
QCPU=$W/qemu-cpu
BCPU=$W/qemu-nonvcpu-cpu
TCPU=$W/tool-cpu
SUM=$W/sum-cpu
: >"$WALL"
: >"$QCPU"
: >"$BCPU"
: >"$TCPU"
: >"$SUM"
for ((r = 1; r <= ROUNDS; r++)); do
	echo "-- round $r"
	for t in $(rotate "$r" "${TOOLS[@]}"); do
		RUN=$W/run
		rm -rf "$RUN"
		mkdir -m 755 "$RUN" "$RUN/src" "$RUN/dst"
		cp --sparse=always "$GOLDEN" "$RUN/src/disk.qcow2"
		dom=smbench-move-$$-$r-$t
		start_domain "$dom" "$RUN/src/disk.qcow2" qcow2
		pid=$(qemu_pid "$dom")
		wait_domain_idle "$pid"
		drop_caches
		c0=$(cpu_secs "$pid")
		v0=$(vcpu_secs "$pid")
		t0=$(now_ns)
		case $t in
		snapmove)
			/usr/bin/time -f "%U %S" -o "$W/time" \
				"$SNAPMOVE" --db "$W/journal.db" move "$dom" --dest "$RUN/dst" \
				>"$W/log" 2>&1 || { cat "$W/log" >&2; die "snapmove move failed in round $r"; } ;;
		blockcopy)
			/usr/bin/time -f "%U %S" -o "$W/time" \
				virsh blockcopy "$dom" vda --dest "$RUN/dst/disk.qcow2" --format qcow2 \
				--wait --pivot --verbose \
				>"$W/log" 2>&1 || { cat "$W/log" >&2; die "virsh blockcopy failed in round $r"; } ;;
		esac
		t1=$(now_ns)
		note_others
		c1=$(cpu_secs "$pid")
		v1=$(vcpu_secs "$pid")
		wall=$(secs "$t0" "$t1")
		qcpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
		bcpu=$(awk -v a="$c0" -v b="$c1" -v x="$v0" -v y="$v1" 'BEGIN { printf "%.2f", (b - a) - (y - x) }')
		tcpu=$(awk '{ printf "%.2f", $1 + $2 }' "$W/time")
		record "$WALL" "$r" "$t" "$wall"
		record "$QCPU" "$r" "$t" "$qcpu"
		record "$BCPU" "$r" "$t" "$bcpu"
		record "$TCPU" "$r" "$t" "$tcpu"
		record "$SUM" "$r" "$t" "$(awk -v a="$qcpu" -v b="$tcpu" 'BEGIN { printf "%.2f", a + b }')"
		# Verify: on the destination file, and byte-identical to the source.
		now=$(disk_source "$dom")
		[ "$now" = "$RUN/dst/disk.qcow2" ] || die "$t: the domain is on '$now' after the move"
		stop_domain "$dom"
		qemu-img compare -q -f qcow2 -F qcow2 "$GOLDEN" "$RUN/dst/disk.qcow2" ||
			die "$t: the moved image differs from the source (round $r)"
		echo "   $t: ${wall} s, QEMU ${qcpu} CPU s (${bcpu} outside vCPUs), $t ${tcpu} CPU s;" \
			"$(mib "$(alloc_bytes "$RUN/dst/disk.qcow2")") MiB at the destination;" \
			"files there: $(ls "$RUN/dst" | tr '\n' ' '); identical"
		rm -rf "$RUN"
	done
done

report "$WALL" "wall time of the move" "s" blockcopy "${TOOLS[@]}"
report "$QCPU" "CPU time of the domain's QEMU process during the move" "s" blockcopy "${TOOLS[@]}"
report "$BCPU" "the same, less its vCPU threads: main loop, I/O workers, block jobs" "s" blockcopy "${TOOLS[@]}"
report "$TCPU" "CPU time of the command (snapmove / virsh)" "s" blockcopy "${TOOLS[@]}"
report "$SUM" "QEMU + command CPU time" "s" blockcopy "${TOOLS[@]}"
echo
busy_summary
verdict "snapmove wall median / blockcopy wall median" \
	"$(awk -v a="$(median_of "$WALL" snapmove)" -v b="$(median_of "$WALL" blockcopy)" \
		'BEGIN { print a / b }')" "<=" 1.0
verdict "snapmove QEMU CPU median / blockcopy QEMU CPU median (well below 1)" \
	"$(awk -v a="$(median_of "$QCPU" snapmove)" -v b="$(median_of "$QCPU" blockcopy)" \
		'BEGIN { print (b > 0 ? a / b : 0) }')" "<=" 0.5
