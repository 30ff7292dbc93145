#!/usr/bin/env bash
# SIGKILL at every crash point of a move, then 'snapmove abort': the domain
# is back on its original chain with every guest write; after the final commit
# abort is refused and resume finishes instead.  See crash-lib.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/crash-lib.sh"

for point in snapshot:start snapshot:made snapshot:unjournaled snapshot:done dest_chain:start \
	dest_chain:done mirror:start mirror:unjournaled mirror:done copy:start copy:durable copy:chunk \
	copy:done sync:start sync:done pivot:start pivot:unjournaled pivot:done \
	collapse:start collapse:unjournaled collapse:done finalize:start finalize:done; do
	crash_case "$point" abort
done
