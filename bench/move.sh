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
# Also timed, in the same rounds: snapmove-noverify (snapmove move
# --no-verify), so verification's cost shows on its own, and the storage's
# limit (see lib.sh): 'limit', fio reading the fresh copy's bytes (1 GiB, the
# image file's size rounded down to 16 MiB) and writing as many to a new
# sparse file in the destination directory at the same time, direct, final
# fsync, at the request size and depth a sweep at the start found best;
# 'limit-verify', the same with a second reader (read twice, write once: the
# I/O of a verified copy).  Wall times are shown as ratios to blockcopy and
# to the limit.  Goals (issue 14), over at least 5 paired rounds (the
# default here): snapmove (verified) <= 0.9 x blockcopy's median wall time,
# and QEMU's CPU time during the move < 0.1 x blockcopy's.
DEFAULT_ROUNDS=5
. "$(dirname "$0")/lib.sh"

VSIZE_GIB=4
EXTENTS=4
EXTENT_MIB=256
MOVERS=(snapmove snapmove-noverify blockcopy)
TOOLS=("${MOVERS[@]}" limit limit-verify)
GOLDEN=$W/golden.qcow2
need_fio

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

# fio: the image file's bytes from 0, rounded down to 16 MiB (its data; the
# rest is qcow2 metadata), read from the fresh copy and written to a new
# sparse file of that size in the destination directory.
FIO_DST_SIZE=$(($(stat -c %s "$GOLDEN") / (16 << 20) * (16 << 20)))
FIO_LAYOUT="offset=0 size=$FIO_DST_SIZE"
FIO_SRC=$GOLDEN
fio_sweep

echo "tools:"
echo "  snapmove           \$SNAPMOVE --db \$W/journal.db move DOM --dest \$RUN/dst"
echo "  snapmove-noverify  \$SNAPMOVE --db \$W/journal.db move DOM --dest \$RUN/dst --no-verify"
echo "  blockcopy          virsh blockcopy DOM vda --dest \$RUN/dst/disk.qcow2 --format qcow2 --wait --pivot --verbose"
echo "  limit              fio: read $(mib "$FIO_DST_SIZE") MiB of \$RUN/src/disk.qcow2 + write them to a new sparse file in \$RUN/dst, at once; direct, $FIO_ENGINE, bs $FIO_BS, iodepth $FIO_QD, final fsync"
echo "  limit-verify       fio: the same with a second reader of the same bytes (read twice, written once)"

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
		case $t in
		limit*)
			FIO_SRC=$RUN/src/disk.qcow2
			fio_prepare "$RUN/dst/disk.qcow2"
			drop_caches
			mode=rw readers=1
			[ "$t" = limit-verify ] && mode=verify readers=2
			fio_run "$mode" "$FIO_BS" "$FIO_QD" "$RUN/dst/disk.qcow2"
			note_others
			record "$WALL" "$r" "$t" "$FIO_SECS"
			[ "$FIO_WBYTES" = "$FIO_DST_SIZE" ] && [ "$FIO_RBYTES" = "$((FIO_DST_SIZE * readers))" ] ||
				die "$t: fio did not read and write $(mib "$FIO_DST_SIZE") MiB"
			echo "   $t: ${FIO_SECS} s (fio's time; read $FIO_RMBS MB/s, write $FIO_WMBS MB/s;" \
				"writer started ${FIO_LAG_MS} ms after the reader; overlap $(fio_overlap);" \
				"final fsync ${FIO_FSYNC_MS} ms; fio's wall ${FIO_WALL} s)," \
				"$(mib "$FIO_RBYTES") MiB read, $(mib "$FIO_WBYTES") MiB written"
			rm -rf "$RUN"
			continue ;;
		esac
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
		snapmove-noverify)
			/usr/bin/time -f "%U %S" -o "$W/time" \
				"$SNAPMOVE" --db "$W/journal.db" move "$dom" --dest "$RUN/dst" --no-verify \
				>"$W/log" 2>&1 || { cat "$W/log" >&2; die "snapmove move --no-verify failed in round $r"; } ;;
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

report "$WALL" "wall time of the move (limit: fio's time)" "s" blockcopy,limit "${TOOLS[@]}"
report "$QCPU" "CPU time of the domain's QEMU process during the move" "s" blockcopy "${MOVERS[@]}"
report "$BCPU" "the same, less its vCPU threads: main loop, I/O workers, block jobs" "s" blockcopy "${MOVERS[@]}"
report "$TCPU" "CPU time of the command (snapmove / virsh)" "s" blockcopy "${MOVERS[@]}"
report "$SUM" "QEMU + command CPU time" "s" blockcopy "${MOVERS[@]}"

# Verification's cost in the move, paired by round.
VC=$W/verify-cost
: >"$VC"
for ((r = 1; r <= ROUNDS; r++)); do
	awk -v r="$r" '$1 == r && $2 == "snapmove" { a = $3 } $1 == r && $2 == "snapmove-noverify" { b = $3 }
		$1 == r && $2 == "limit" { l = $3 }
		END { printf "%s verify-cost %.3f\n%s limit %s\n", r, a - b, r, l }' "$WALL" >>"$VC"
done
report "$VC" "cost of verification: snapmove move minus snapmove move --no-verify, same round" "s" \
	limit verify-cost limit
echo
busy_summary
verdict "snapmove (verified) wall median / blockcopy wall median" \
	"$(awk -v a="$(median_of "$WALL" snapmove)" -v b="$(median_of "$WALL" blockcopy)" \
		'BEGIN { print a / b }')" "<=" 0.9
verdict "snapmove QEMU CPU median / blockcopy QEMU CPU median" \
	"$(awk -v a="$(median_of "$QCPU" snapmove)" -v b="$(median_of "$QCPU" blockcopy)" \
		'BEGIN { print (b > 0 ? a / b : 0) }')" "<" 0.1
