# hooks-lib.sh: hooks in a folder only root can write, for the hook tests.
#
# src/hooks.c runs a hook only when every folder from / down to it is root's
# own and writable by root alone; $T is under /var/tmp (mode 1777), so hooks
# live under $H instead: a folder of /var/lib, removed when the test ends.

H=$(mktemp -d /var/lib/snapmove-test-hooks.XXXXXX)
chmod 755 "$H"
defer "rm -rf '$H'"

# new_hook DIR POINT NAME BODY: a root-owned 0755 hook (a bash script).
new_hook() {
	mkdir -p "$1/$2"
	chmod 755 "$1" "$1/$2"
	printf '#!/bin/bash\n%s\n' "$4" >"$1/$2/$3"
	chown root:root "$1/$2/$3"
	chmod 755 "$1/$2/$3"
}
