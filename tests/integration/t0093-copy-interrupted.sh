#!/usr/bin/env bash
# SIGINT or SIGTERM during 'snapmove copy': exit 5 and the partial DST it
# created removed; a DST that was replaced meanwhile is not its to remove.
. "$(dirname "$0")/lib.sh"

# A large sparse file with 16 MiB of data, copied at 1 MiB/s.
truncate -s 4G "$T/big.raw"
dd if=/dev/urandom of="$T/big.raw" bs=1M count=16 seek=1000 conv=notrunc status=none
for sig in INT TERM; do
	"$SNAPMOVE" copy "$T/big.raw" "$T/big.copy" --bandwidth 1 >"$T/out" 2>"$T/err" &
	pid=$!
	for _ in $(seq 50); do
		[ -e "$T/big.copy" ] && break
		sleep 0.1
	done
	sleep 1
	kill -"$sig" $pid
	rc=0
	wait $pid || rc=$?
	assert_eq "$rc" 5 "exit status after SIG$sig"
	assert_contains "$T/err" "interrupted"
	assert_absent "$T/big.copy"
done
note "SIGINT and SIGTERM: exit 5, no DST left"

# DST swapped under the copy (renamed away, another file in its place): the
# other file stays.
"$SNAPMOVE" copy "$T/big.raw" "$T/big.copy" --bandwidth 1 >"$T/out" 2>"$T/err" &
pid=$!
for _ in $(seq 50); do
	[ -e "$T/big.copy" ] && break
	sleep 0.1
done
mv "$T/big.copy" "$T/big.moved"
echo planted >"$T/big.copy"
kill -INT $pid
rc=0
wait $pid || rc=$?
assert_eq "$rc" 5 "exit status"
assert_eq "$(cat "$T/big.copy")" planted "the file put in DST's place"
note "a DST replaced meanwhile is left alone"
