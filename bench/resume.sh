#!/usr/bin/env bash
# resume.sh: a move killed with SIGKILL about half-way through the copy of its
# base image, then 'snapmove resume': how many bytes were copied in all, over
# the image's data bytes.  The copier journals each 64 MiB chunk once it is
# durable and verified, so a resume re-copies at most the one chunk in flight:
# the ratio should be at most 1 + 64 MiB / data.
. "$(dirname "$0")/lib.sh"

DATA_MIB=${BENCH_RESUME_MIB:-1024}
take_snapmove
print_machine
echo "inputs: a ${DATA_MIB} MiB-data raw base (random, 4 extents) under a qcow2 top, $ROUNDS rounds"
echo "each round: move, SIGKILL once half the base's data is journaled, resume"
echo

mkdir -m 755 "$W/seed"
random_file "$W/random" "$DATA_MIB"
qemu-img create -q -f raw "$W/seed/base.raw" 8G
quarter=$((DATA_MIB / 4))
for i in 0 1 2 3; do
	place "$W/seed/base.raw" "$W/random" $((i * quarter)) "$quarter" $((i * 2 * 1024 * 1024 * 1024))
done
qemu-img create -q -f qcow2 -F raw -b base.raw "$W/seed/top.qcow2"
data=$("$SNAPMOVE" copy --no-verify "$W/seed/base.raw" "$W/probe.raw" | sed -n 's/.*: \([0-9.]* [KMG]iB\) of data.*/\1/p')
rm -f "$W/probe.raw"
results=$W/results
: >"$results"

for r in $(seq 1 "$ROUNDS"); do
	d=$W/r$r
	mkdir -m 755 "$d" "$d/src" "$d/dst"
	cp --sparse=always "$W/seed/base.raw" "$W/seed/top.qcow2" "$d/src/"
	dom=smbench-resume-$$-$r
	start_domain "$dom" "$d/src/top.qcow2" qcow2
	drop_caches
	"$SNAPMOVE" --db "$d/j.db" move "$dom" --dest "$d/dst" >"$d/move.out" 2>"$d/move.err" &
	pid=$!
	half=0
	for _ in $(seq 1 6000); do
		if [ -f "$d/j.db" ]; then
			half=$(sqlite3 "$d/j.db" "SELECT coalesce(sum(data_bytes), 0) FROM chunk WHERE depth = 1" 2>/dev/null || echo 0)
			[ "${half:-0}" -ge $((DATA_MIB * 1024 * 1024 / 2)) ] && break
		fi
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	done_before=$(sqlite3 "$d/j.db" "SELECT coalesce(sum(data_bytes), 0) FROM chunk WHERE depth = 1")
	chunks_before=$(sqlite3 "$d/j.db" "SELECT count(*) FROM chunk WHERE depth = 1")
	t0=$(now_ns)
	"$SNAPMOVE" --db "$d/j.db" resume 1 >"$d/resume.out" 2>"$d/resume.err" ||
		{ cat "$d/resume.err" >&2; die "resume failed in round $r"; }
	t1=$(now_ns)
	# "copied DST: resumed after chunk N, X of Y copied now"
	line=$(grep "copied $d/dst/base.raw: resumed after chunk" "$d/resume.err" || true)
	[ -n "$line" ] || { cat "$d/resume.err" >&2; die "the resume did not continue the base copy"; }
	now_bytes=$(sqlite3 "$d/j.db" "SELECT coalesce(sum(data_bytes), 0) FROM chunk WHERE depth = 1 AND idx >= $chunks_before")
	total_bytes=$(sqlite3 "$d/j.db" "SELECT coalesce(sum(data_bytes), 0) FROM chunk WHERE depth = 1")
	# The killed run may also have written part of the chunk in flight:
	# at most one chunk, counted here in full (the worst case).
	inflight=$(sqlite3 "$d/j.db" "SELECT coalesce(max(data_bytes), 0) FROM chunk WHERE depth = 1 AND idx = $chunks_before")
	stop_domain "$dom"
	qemu-img compare -q -f qcow2 -F qcow2 "$d/src/top.qcow2" "$d/dst/top.qcow2" ||
		die "round $r: the moved chain differs from the source"
	ratio=$(awk -v a="$done_before" -v b="$inflight" -v c="$now_bytes" -v t="$total_bytes" \
		'BEGIN { printf "%.3f", (a + b + c) / t }')
	record "$results" "$r" chunks_before_kill "$chunks_before"
	record "$results" "$r" copied_MiB "$(mib $((done_before + inflight + now_bytes)))"
	record "$results" "$r" data_MiB "$(mib "$total_bytes")"
	record "$results" "$r" ratio "$ratio"
	record "$results" "$r" resume_s "$(secs "$t0" "$t1")"
	rm -rf "$d"
done

echo "base image data: $data"
report "$results" "bytes copied in all (killed run, worst case, + resume) over the image's data" "" \
	data_MiB chunks_before_kill copied_MiB data_MiB ratio resume_s
limit=$(awk -v d="$DATA_MIB" 'BEGIN { printf "%.3f", 1 + 64 / d }')
verdict "ratio <= 1 + one chunk / data ($limit)" "$(median_of "$results" ratio)" "<=" "$limit"
