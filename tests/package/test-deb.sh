#!/usr/bin/env bash
# test-deb.sh: the Debian package, as an admin meets it (make package; make
# check runs it).  Builds it with 'make deb', installs it with apt-get, runs the
# installed snapmove (--version, list, a refused move that makes the journal),
# checks every file and folder it ships and their modes, reinstalls it, upgrades
# it to a newer version built from a copy of the tree, removes it (the journal
# stays, nothing else) and purges it (nothing stays).
#
# Needs root, apt and a running libvirtd (make setup).  It installs and purges
# the package 'snapmove' on this host, so it refuses to start when snapmove is
# installed or /var/lib/snapmove or /etc/snapmove exist (a journal and hooks of
# this host's that the purge would delete); a trap purges the package whatever
# happens, so no /usr/bin/snapmove is left behind (the other tests run the
# build's binary through SNAPMOVE anyway).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /var/tmp/snapmove-pkgtest.XXXXXX)
SM=/usr/bin/snapmove
JDIR=/var/lib/snapmove
HOOKS=/etc/snapmove/hooks.d
POINTS="before_move after_snapshot before_pivot after_pivot after_move after_abort on_failure"
APT=(apt-get -y -q -o DPkg::Lock::Timeout=1200)
export DEBIAN_FRONTEND=noninteractive
installed_by_us=false
made_hook=false
fails=0
t0=$(date +%s)

say() { echo "test-deb: [$(($(date +%s) - t0)) s] $*" >&2; }
fail() { say "FAIL: $*"; fails=$((fails + 1)); }
die() { say "FAIL: $*"; exit 1; }

# The package's state as dpkg-query shows it ("install ok installed",
# "deinstall ok config-files"), empty when dpkg knows of no snapmove.
pkg_status() { dpkg-query -W -f='${Status}' snapmove 2>/dev/null || true; }

finish() {
	local rc=$?
	# The test's own hook (a purge keeps a file it did not ship).
	$made_hook && rm -f "$HOOKS/after_move/50-admin"
	if $installed_by_us && [ -n "$(pkg_status)" ] &&
	   [ "$(pkg_status)" != "unknown ok not-installed" ]; then
		say "purging the package the test installed"
		"${APT[@]}" purge snapmove >"$T/trap-purge.log" 2>&1 ||
			{ say "cannot purge snapmove:"; cat "$T/trap-purge.log" >&2; rc=1; }
	fi
	rm -rf "$T"
	exit "$rc"
}
trap finish EXIT

[ "$(id -u)" -eq 0 ] || die "the package test installs a package: run it as root"
case "$(pkg_status)" in
"" | "unknown ok not-installed") ;;
*) die "package 'snapmove' is on this host ($(pkg_status)); the test would purge it and its journal: 'apt-get purge snapmove' first if it is a test's leftover" ;;
esac
for p in "$JDIR" /etc/snapmove "$SM"; do
	if [ -e "$p" ] || [ -L "$p" ]; then
		die "'$p' exists; the test installs and purges the package, which would replace or delete it: move it away first"
	fi
done
virsh -c qemu:///system version >/dev/null 2>&1 ||
	die "libvirtd does not answer on qemu:///system: run 'make setup' first"

# mode owner:group of a path, as stat shows them ("755 root:root").
mode_of() { stat -c '%a %U:%G' "$1"; }

expect_mode() {
	local path=$1 want=$2 kind=$3 got
	if [ -L "$path" ]; then
		fail "'$path' is a symbolic link"
		return
	fi
	case "$kind" in
	dir) [ -d "$path" ] || { fail "'$path' is not a folder"; return; } ;;
	file) [ -f "$path" ] || { fail "'$path' is not a regular file"; return; } ;;
	esac
	got=$(mode_of "$path")
	[ "$got" = "$want" ] || fail "'$path' is $got, not $want"
}

SM_VERSION=$(sed -n 's/^#define SM_VERSION "\(.*\)"/\1/p' "$TOP/src/cli/main.c")
VERSION=$(dpkg-parsechangelog -l "$TOP/debian/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
[ -n "$SM_VERSION" ] || die "no SM_VERSION in src/cli/main.c"

# Everything an installed package must show (after the install, the
# reinstall and the upgrade): version, program, manual, completion, folders.
check_installed() {
	local want=$1 out rc=0
	[ "$(pkg_status)" = "install ok installed" ] || fail "snapmove is '$(pkg_status)', not installed"
	[ "$(dpkg-query -W -f='${Version}' snapmove)" = "$want" ] ||
		fail "installed version is $(dpkg-query -W -f='${Version}' snapmove), not $want"
	expect_mode "$SM" "755 root:root" file
	out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$SM" --version) ||
		fail "'snapmove --version' exited $?"
	[ "$out" = "snapmove $SM_VERSION" ] || fail "'snapmove --version' says '$out', not 'snapmove $SM_VERSION'"
	out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$SM" list 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "'snapmove list' exited $rc: $out"
	[ "$out" = "no jobs" ] || fail "'snapmove list' says '$out', not 'no jobs'"

	# (A host whose dpkg excludes /usr/share/man, as container images do, gets
	# no manual page: the package's contents are checked after make deb.)
	if ! grep -qs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/*; then
		expect_mode /usr/share/man/man1/snapmove.1.gz "644 root:root" file
		# grep reads it all: 'grep -q' would stop at the header, and zcat,
		# still writing a page larger than the pipe's buffer, would die of
		# SIGPIPE and fail the pipeline (pipefail).
		zcat /usr/share/man/man1/snapmove.1.gz | grep -c '^\.TH SNAPMOVE' >/dev/null ||
			fail "the manual page has no .TH SNAPMOVE header"
		if command -v man >/dev/null; then
			[ "$(man -w snapmove 2>/dev/null)" = /usr/share/man/man1/snapmove.1.gz ] ||
				fail "'man -w snapmove' finds '$(man -w snapmove 2>&1)', not the packaged page"
		fi
	fi
	expect_mode /usr/share/bash-completion/completions/snapmove "644 root:root" file
	out=$(bash -c '. /usr/share/bash-completion/completions/snapmove && complete -p snapmove' 2>&1) ||
		fail "the completion does not load: $out"
	case "$out" in *" snapmove") ;; *) fail "the completion registers '$out' for snapmove" ;; esac

	expect_mode /etc/snapmove "755 root:root" dir
	expect_mode "$HOOKS" "755 root:root" dir
	for p in $POINTS; do
		expect_mode "$HOOKS/$p" "755 root:root" dir
	done
	expect_mode "$JDIR" "700 root:root" dir
	# recover at boot: the unit (checked by systemd-analyze where there is
	# one) and the init script, which answers 'status' with recover's list.
	expect_mode /lib/systemd/system/snapmove-recover.service "644 root:root" file
	if command -v systemd-analyze >/dev/null; then
		systemd-analyze verify /lib/systemd/system/snapmove-recover.service ||
			fail "systemd-analyze verify snapmove-recover.service failed"
	fi
	expect_mode /etc/init.d/snapmove-recover "755 root:root" file
	out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /etc/init.d/snapmove-recover status 2>&1) ||
		fail "'/etc/init.d/snapmove-recover status' failed: $out"
	case "$out" in *"no unfinished jobs"*) ;; *) fail "the init script's status says: $out" ;; esac
	dpkg --verify snapmove || fail "dpkg --verify snapmove: the files differ from the package"
}

# 1. make deb
say "make deb"
make -C "$TOP" deb >"$T/build.log" 2>&1 || { tail -n 40 "$T/build.log" >&2; die "make deb failed"; }
DEB=$TOP/build/deb/snapmove_${VERSION}_${ARCH}.deb
[ -f "$DEB" ] || die "make deb made no '$DEB'"
dpkg-deb -f "$DEB" Depends | grep -q qemu-utils || fail "the package does not depend on qemu-utils"
dpkg-deb -c "$DEB" | awk '{ print $1, $2, $6 }' >"$T/contents"
for want in "-rwxr-xr-x root/root ./usr/bin/snapmove" \
	    "-rw-r--r-- root/root ./usr/share/man/man1/snapmove.1.gz" \
	    "-rw-r--r-- root/root ./usr/share/bash-completion/completions/snapmove" \
	    "-rw-r--r-- root/root ./usr/share/doc/snapmove/copyright" \
	    "-rwxr-xr-x root/root ./usr/lib/snapmove/provisioners/loop" \
	    "-rwxr-xr-x root/root ./usr/lib/snapmove/provisioners/lvm" \
	    "drwxr-xr-x root/root ./etc/snapmove/hooks.d/"; do
	grep -qxF -- "$want" "$T/contents" || fail "the package holds no '$want'"
done
# The journal folder is made by postinst, not shipped (a remove keeps it).
! grep -q 'var/lib/snapmove' "$T/contents" || fail "the package ships /var/lib/snapmove"
ls -l "$DEB" >&2

# 2. install
say "apt-get install $DEB"
installed_by_us=true
"${APT[@]}" install "$DEB" >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; die "apt-get install failed"; }
check_installed "$VERSION"
# The packaged program, folder and hooks folder together: a move refused
# (no such domain, exit 3) opens, so creates, the journal in the packaged
# folder, which snapmove accepts as its own (root's, 0700); the hooks folder
# passes snapmove's checks (every folder from / root's and not writable by
# others): no hook complaint.
dom=snapmove-pkgtest-nodomain-$$
rc=0
out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$SM" move "$dom" --dest "$T" 2>&1) || rc=$?
[ "$rc" -eq 3 ] || fail "a move of no domain exited $rc, not 3: $out"
case "$out" in *"no domain named '$dom'"*) ;; *) fail "a move of no domain says: $out" ;; esac
expect_mode "$JDIR/journal.db" "600 root:root" file
[ "$(env -i PATH=/usr/bin:/bin HOME=/root "$SM" list 2>&1)" = "no jobs" ] ||
	fail "'snapmove list' of the new journal does not say 'no jobs'"
# An admin's hook, to be kept by the reinstall and the upgrade.
made_hook=true
printf '#!/bin/sh\nexit 0\n' >"$HOOKS/after_move/50-admin"
chmod 0755 "$HOOKS/after_move/50-admin"
sum=$(md5sum <"$JDIR/journal.db")

# 3. reinstall the same version
say "apt-get install --reinstall $DEB"
"${APT[@]}" install --reinstall "$DEB" >"$T/reinstall.log" 2>&1 ||
	{ cat "$T/reinstall.log" >&2; die "apt-get install --reinstall failed"; }
check_installed "$VERSION"
[ "$(md5sum <"$JDIR/journal.db")" = "$sum" ] || fail "the reinstall changed the journal"
[ -x "$HOOKS/after_move/50-admin" ] || fail "the reinstall removed the admin's hook"

# 4. upgrade: the same tree with a newer version in its changelog, built by
# its own make deb.
NEW=$VERSION+pkgtest1
mkdir "$T/tree"
(cd "$TOP" && tar -c --exclude=./build --exclude='./build-*' --exclude=./.git .) | tar -x -C "$T/tree"
{
	printf 'snapmove (%s) unstable; urgency=medium\n\n  * Upgrade test.\n\n' "$NEW"
	printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$TOP/debian/changelog" -S Maintainer)" "$(date -R)"
	cat "$TOP/debian/changelog"
} >"$T/tree/debian/changelog"
say "make deb (version $NEW)"
make -C "$T/tree" deb >"$T/build-new.log" 2>&1 || { tail -n 40 "$T/build-new.log" >&2; die "make deb of $NEW failed"; }
NEWDEB=$T/tree/build/deb/snapmove_${NEW}_${ARCH}.deb
[ -f "$NEWDEB" ] || die "make deb made no '$NEWDEB'"
say "apt-get install $NEWDEB (upgrade)"
"${APT[@]}" install "$NEWDEB" >"$T/upgrade.log" 2>&1 || { cat "$T/upgrade.log" >&2; die "the upgrade failed"; }
grep -q "Unpacking snapmove ($NEW) over ($VERSION)" "$T/upgrade.log" ||
	fail "apt-get did not upgrade $VERSION to $NEW: $(grep -i snapmove "$T/upgrade.log")"
check_installed "$NEW"
[ "$(md5sum <"$JDIR/journal.db")" = "$sum" ] || fail "the upgrade changed the journal"
[ -x "$HOOKS/after_move/50-admin" ] || fail "the upgrade removed the admin's hook"
rm "$HOOKS/after_move/50-admin"

# 5. remove: every file the package installed goes, the journal stays.
dpkg -L snapmove >"$T/files"
# Conffiles (the init script) stay until the purge, as Debian's rule is.
dpkg-query -W -f='${Conffiles}\n' snapmove | awk 'NF { print $1 }' >"$T/conffiles"
grep -qx /etc/init.d/snapmove-recover "$T/conffiles" ||
	fail "the init script is not a conffile: $(tr '\n' ' ' <"$T/conffiles")"
say "apt-get remove snapmove"
"${APT[@]}" remove snapmove >"$T/remove.log" 2>&1 || { cat "$T/remove.log" >&2; die "apt-get remove failed"; }
grep -q 'not empty so not removed' "$T/remove.log" && fail "remove left folders: $(grep 'not empty' "$T/remove.log")"
[ "$(pkg_status)" = "deinstall ok config-files" ] || fail "after remove snapmove is '$(pkg_status)'"
while read -r f; do
	if [ ! -e "$f" ] || [ "$f" = /. ]; then
		continue
	fi
	# Folders other packages share (/usr/bin, /etc, ...) stay.
	[ -d "$f" ] && dpkg -S "$f" >/dev/null 2>&1 && continue
	grep -qxF -- "$f" "$T/conffiles" && continue
	fail "remove left '$f'"
done <"$T/files"
[ ! -e /etc/snapmove ] || fail "remove left /etc/snapmove"
expect_mode "$JDIR" "700 root:root" dir
[ "$({ md5sum <"$JDIR/journal.db"; } 2>/dev/null)" = "$sum" ] || fail "remove did not keep the journal as it was"
# (and nothing but the journal: its -wal and -shm may stay beside it)
extra=$(find "$JDIR" -mindepth 1 ! -name journal.db ! -name journal.db-wal ! -name journal.db-shm 2>&1 || true)
[ -z "$extra" ] || fail "remove left more than the journal in $JDIR: $extra"

# 6. purge: nothing stays.
say "apt-get purge snapmove"
"${APT[@]}" purge snapmove >"$T/purge.log" 2>&1 || { cat "$T/purge.log" >&2; die "apt-get purge failed"; }
case "$(pkg_status)" in
"" | "unknown ok not-installed") ;;
*) fail "after purge snapmove is '$(pkg_status)'" ;;
esac
for p in "$JDIR" /etc/snapmove "$SM" /etc/init.d/snapmove-recover \
	/lib/systemd/system/snapmove-recover.service; do
	[ ! -e "$p" ] || fail "purge left '$p'"
done

say "$(basename "$DEB"): $(stat -c %s "$DEB") bytes; $((  $(date +%s) - t0 )) s"
[ "$fails" -eq 0 ] || die "$fails check(s) failed"
say "ok"
