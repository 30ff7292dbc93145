#!/usr/bin/env bash
# copy.sh: the out-of-band copier against cp and qemu-img convert.
#
# One 8 GiB raw image holding 2 GiB of random data in 8 extents of 256 MiB
# with holes between (offsets not aligned to the copier's 64 MiB chunks) is
# copied to a new file on the same file system by each tool, ROUNDS rounds,
# the tools in a rotated order each round, the page cache dropped before each
# timed run.  Wall time includes making the copy durable: snapmove fdatasyncs
# itself, cp and qemu-img convert (cache=unsafe by default) are followed by
# sync.  snapmove runs its default path (direct I/O here), without verify,
# and its buffered read/write loop.  Each tool's output is checked once (cmp of the data extents, qemu-img
# compare of the whole file, size, allocation).  The goal: snapmove's
# median time <= 1.05 x cp's.
#
# The storage's limit runs in the same rounds as two more columns (see
# lib.sh): 'limit', fio reading the same 8 extents of the source and writing
# 2 GiB at the same offsets of a new sparse file at the same time (direct,
# final fsync), at the request size and depth a sweep at the start found
# best; 'limit-verify', the same with a second reader of the same extents
# (the I/O a verified copy needs at least).  Every time is also shown as a
# ratio to 'limit'; goals (issue 14): snapmove copy <= 1.15 x the limit
# verified, <= 1.05 x with --no-verify.  The cost of verification is shown
# on its own: snapmove minus snapmove-noverify, round by round.
. "$(dirname "$0")/lib.sh"

VSIZE_GIB=8
EXTENTS=8
EXTENT_MIB=256

export SRC=$W/src.raw SNAPMOVE DST
# Extent i starts at i GiB + i x (3 MiB + 4 KiB): chunks straddle extents.
extent_off() {
	echo $(($1 * (1 << 30) + $1 * ((3 << 20) + 4096)))
}
OUT=$W/out
mkdir -m 755 "$OUT"

# Tools by column name; the command reads $SRC and writes $DST.
declare -A CMD=(
	[snapmove]='"$SNAPMOVE" copy "$SRC" "$DST"'
	[snapmove-noverify]='"$SNAPMOVE" copy --no-verify "$SRC" "$DST"'
	[snapmove-rw]='"$SNAPMOVE" copy --copy-method readwrite "$SRC" "$DST"'
	[cp]='cp --sparse=always "$SRC" "$DST" && sync'
	[qemu-img]='qemu-img convert -f raw -O raw "$SRC" "$DST" && sync'
	[qemu-img-tnone]='qemu-img convert -t none -f raw -O raw "$SRC" "$DST" && sync'
)
TOOLS=(snapmove snapmove-noverify snapmove-rw cp qemu-img)
LIMITS=(limit limit-verify)
need_fio

echo "== copy: snapmove copy vs cp --sparse=always vs qemu-img convert"
print_machine
echo "making the source: ${VSIZE_GIB} GiB raw, $((EXTENTS * EXTENT_MIB)) MiB random in $EXTENTS extents"
random_file "$W/random" $((EXTENTS * EXTENT_MIB))
truncate -s "${VSIZE_GIB}G" "$SRC"
for ((i = 0; i < EXTENTS; i++)); do
	place "$SRC" "$W/random" $((i * EXTENT_MIB)) "$EXTENT_MIB" \
		$(extent_off "$i")
done
rm -f "$W/random"
sync

# qemu-img convert -t none (O_DIRECT on the output) when this file system has it.
truncate -s 1M "$W/probe.in"
if qemu-img convert -t none -f raw -O raw "$W/probe.in" "$W/probe.out" 2>/dev/null; then
	TOOLS+=(qemu-img-tnone)
else
	echo "qemu-img convert -t none does not work here; left out"
fi
rm -f "$W/probe.in" "$W/probe.out"

echo "source: $SRC, $(stat -c %s "$SRC") bytes, $(alloc_bytes "$SRC") allocated"

# fio: the extents by strided zones (extent i at i x the stride, 256 MiB
# each), 2 GiB in all; the destination a sparse file of the source's size.
FIO_SRC=$SRC
FIO_DST_SIZE=$(stat -c %s "$SRC")
FIO_LAYOUT="offset=0 zonemode=strided zonesize=${EXTENT_MIB}M zonerange=$(extent_off 1) io_size=$((EXTENTS * EXTENT_MIB))M"
fio_sweep
CMD[limit]="fio: read the $EXTENTS extents ($((EXTENTS * EXTENT_MIB)) MiB) + write them at the same offsets of a new sparse file, at once; direct, $FIO_ENGINE, bs $FIO_BS, iodepth $FIO_QD, final fsync"
CMD[limit-verify]="fio: the same with a second reader of the same extents (read twice, written once)"
COPIERS=("${TOOLS[@]}")
TOOLS+=("${LIMITS[@]}")

echo "tools:"
for t in "${TOOLS[@]}"; do
	printf "  %-18s %s\n" "$t" "${CMD[$t]}"
done

# A whole-file cmp reads 6 GiB of holes, 40 s a copy on this VM; instead: cmp
# over each data extent, qemu-img compare over the whole file (it reads holes
# as zeros without reading them, and reads any extent one side has and the
# other not), the same size, and no more allocated than the source.
check_copy() {  # TOOL
	local i off
	for ((i = 0; i < EXTENTS; i++)); do
		off=$(extent_off "$i")
		cmp -i "$off:$off" -n $((EXTENT_MIB << 20)) "$SRC" "$DST" ||
			die "$1: the copy differs from the source in extent $i"
	done
	qemu-img compare -q -f raw -F raw "$SRC" "$DST" ||
		die "$1: qemu-img compare: the copy differs from the source"
	[ "$(stat -c %s "$DST")" = "$(stat -c %s "$SRC")" ] ||
		die "$1: the copy has the wrong size"
	[ "$(alloc_bytes "$DST")" -le "$(alloc_bytes "$SRC")" ] ||
		die "$1: the copy has more allocated than the source (holes filled)"
}

RES=$W/results
CPU=$W/cpu
: >"$RES"
: >"$CPU"
declare -A CHECKED=()
for ((r = 1; r <= ROUNDS; r++)); do
	echo "-- round $r"
	for t in $(rotate "$r" "${TOOLS[@]}"); do
		DST=$OUT/$t.raw
		rm -f "$DST"
		case $t in
		limit*)
			fio_prepare "$DST"
			drop_caches
			mode=rw readers=1
			[ "$t" = limit-verify ] && mode=verify readers=2
			fio_run "$mode" "$FIO_BS" "$FIO_QD" "$DST"
			note_others
			record "$RES" "$r" "$t" "$FIO_SECS"
			echo "   $t: ${FIO_SECS} s (fio's time; read $FIO_RMBS MB/s, write $FIO_WMBS MB/s;" \
				"writer started ${FIO_LAG_MS} ms after the reader; overlap $(fio_overlap);" \
				"final fsync ${FIO_FSYNC_MS} ms; fio's wall ${FIO_WALL} s)," \
				"$(mib "$FIO_RBYTES") MiB read, $(mib "$FIO_WBYTES") MiB written," \
				"$(mib "$(alloc_bytes "$DST")") MiB allocated"
			want=$((EXTENTS * EXTENT_MIB << 20))
			[ "$FIO_WBYTES" = "$want" ] && [ "$(alloc_bytes "$DST")" -ge "$want" ] &&
				[ "$FIO_RBYTES" = "$((want * readers))" ] ||
				die "$t: fio did not read and write the source's $((EXTENTS * EXTENT_MIB)) MiB"
			rm -f "$DST"
			continue ;;
		esac
		drop_caches
		t0=$(now_ns)
		/usr/bin/time -f "%U %S" -o "$W/time" bash -c "${CMD[$t]}" >"$W/log" 2>&1 ||
			{ cat "$W/log" >&2; die "$t failed in round $r"; }
		t1=$(now_ns)
		note_others
		wall=$(secs "$t0" "$t1")
		record "$RES" "$r" "$t" "$wall"
		record "$CPU" "$r" "$t" "$(awk '{ printf "%.2f", $1 + $2 }' "$W/time")"
		extra=""
		case $t in snapmove*) extra=" ($(grep -o 'by [a-z_]*.*' "$W/log"))" ;; esac
		echo "   $t: ${wall} s, $(mib "$(alloc_bytes "$DST")") MiB allocated$extra"
		if [ -z "${CHECKED[$t]:-}" ]; then
			check_copy "$t"
			CHECKED[$t]=1
			echo "   $t: cmp of the extents, qemu-img compare: identical"
		fi
		rm -f "$DST"
	done
done

report "$RES" "wall time per copy, durable (limit: fio's time)" "s" cp,limit "${TOOLS[@]}"
report "$CPU" "CPU time of the tool, user + system" "s" cp "${COPIERS[@]}"

# Verification's cost, paired by round.
VC=$W/verify-cost
: >"$VC"
for ((r = 1; r <= ROUNDS; r++)); do
	awk -v r="$r" '$1 == r && $2 == "snapmove" { a = $3 } $1 == r && $2 == "snapmove-noverify" { b = $3 }
		$1 == r && $2 == "limit" { l = $3 }
		END { printf "%s verify-cost %.3f\n%s limit %s\n", r, a - b, r, l }' "$RES" >>"$VC"
done
report "$VC" "cost of verification: snapmove copy minus snapmove copy --no-verify, same round" "s" \
	limit verify-cost limit
echo
busy_summary
m_lim=$(median_of "$RES" limit)
verdict "snapmove copy (verify on) median / limit median" \
	"$(awk -v a="$(median_of "$RES" snapmove)" -v b="$m_lim" 'BEGIN { print a / b }')" "<=" 1.15
verdict "snapmove copy --no-verify median / limit median" \
	"$(awk -v a="$(median_of "$RES" snapmove-noverify)" -v b="$m_lim" 'BEGIN { print a / b }')" "<=" 1.05
m_sm=$(median_of "$RES" snapmove)
m_cp=$(median_of "$RES" cp)
verdict "snapmove copy (verify on) median / cp median" \
	"$(awk -v a="$m_sm" -v b="$m_cp" 'BEGIN { print a / b }')" "<=" 1.05
verdict "snapmove copy --no-verify median / cp median" \
	"$(awk -v a="$(median_of "$RES" snapmove-noverify)" -v b="$m_cp" 'BEGIN { print a / b }')" "<=" 1.05
