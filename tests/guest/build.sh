#!/usr/bin/env bash
# build.sh: the integration tests' guest OS, built from Debian 12 packages and
# cached; prints the folder holding it (vmlinuz, initrd.gz, versions).
#
# A Debian kernel and an initramfs with busybox and qemu-guest-agent, nothing
# else: /init loads the virtio modules, mounts the disks the kernel command
# line names (sm.mount=vda,vdb: ext4 at /mnt/vda, ...), starts qemu-ga on the
# agent's virtio-serial port, and waits.  /sbin/shutdown (what qemu-ga runs for
# guest-shutdown) syncs and powers off.  Used by the tests that need a guest
# that answers its agent: fstrim, guest-exec, a shutdown from inside.
#
# The packages are the candidates of this host's apt lists, fetched with
# apt-get download (apt checks their hashes against the signed lists) and
# unpacked with dpkg-deb -x: nothing is installed on the host.  The result is
# cached in /var/cache/snapmove-test-guest/KEY, KEY a hash of this script and
# the package versions; a later run with the same versions prints it at once.
# The cache folder is root's alone (0700, never a symbolic link): the tests
# copy the kernel and initrd out of it for QEMU.
#
# Exit status: 0 built or cached; 1 failed (the reason on stderr).
set -euo pipefail

CACHE=/var/cache/snapmove-test-guest
say() { echo "guest: $*" >&2; }
die() { echo "guest: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "building the test guest needs root (it writes $CACHE)"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
	die "apt-get and dpkg-deb are needed (the guest is made of Debian packages)"
command -v readelf >/dev/null || die "readelf is needed; run scripts/setup.sh (binutils)"
[ "$(dpkg --print-architecture)" = amd64 ] ||
	die "the test guest is amd64; this host is $(dpkg --print-architecture)"

# The kernel the metapackage points at, and the packages of the guest:
# busybox, qemu-ga and the libraries qemu-ga needs (checked below, by the
# ELF NEEDED entries, so a missing one fails the build); each at apt's
# candidate version (one apt-cache call: each takes most of a second).
resolve() {
	local kernel p v
	kernel=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*-amd64\).*/\1/p' | head -n 1)
	[ -n "$kernel" ] || return 1
	PKGS=("$kernel" busybox-static qemu-guest-agent libc6 libglib2.0-0 libpcre2-8-0
		libudev1 libnuma1 liburing2)
	declare -A version=()
	while read -r p v; do
		version[$p]=$v
	done < <(apt-cache show --no-all-versions "${PKGS[@]}" 2>/dev/null |
		awk '/^Package: /{p=$2} /^Version: /{print p, $2}')
	VERSIONS=()
	for p in "${PKGS[@]}"; do
		[ -n "${version[$p]:-}" ] || return 1
		VERSIONS+=("$p=${version[$p]}")
	done
}

if ! resolve; then
	say "apt knows no candidate for the guest's packages: apt-get update"
	apt-get update -q >&2 || die "apt-get update failed"
	resolve || die "apt has no candidate for one of: linux-image-amd64," \
		"busybox-static, qemu-guest-agent and its libraries; check /etc/apt/sources.list"
fi

# The cache folder: root's, 0700, a real folder.
if [ -L "$CACHE" ]; then
	die "$CACHE is a symbolic link; remove it (the cache must be root's own folder)"
elif [ -e "$CACHE" ]; then
	[ -d "$CACHE" ] || die "$CACHE is not a folder; remove it"
	[ "$(stat -c %u:%a "$CACHE")" = 0:700 ] ||
		die "$CACHE is owned by uid $(stat -c %u "$CACHE") with mode $(stat -c %a "$CACHE");" \
			"it must be root's with mode 700: remove it, the next run makes it again"
else
	mkdir -m 700 "$CACHE"
fi

KEY=$( { cat "$0"; printf '%s\n' "${VERSIONS[@]}"; } | sha256sum | cut -c1-16)
OUT=$CACHE/$KEY
if [ -f "$OUT/complete" ]; then
	echo "$OUT"
	exit 0
fi

# One build at a time (the tests run in parallel); the winner's result serves all.
exec 9>"$CACHE/lock"
flock 9
if [ -f "$OUT/complete" ]; then
	echo "$OUT"
	exit 0
fi

started=$(date +%s%N)
S=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$S"' EXIT
say "building the test guest in $OUT from ${VERSIONS[*]}"
mkdir "$S/debs" "$S/x" "$S/root" "$S/out"

fetch() {
	(cd "$S/debs" && apt-get download -q -o APT::Sandbox::User=root "${VERSIONS[@]}") >&2
}
if ! fetch; then
	# Lists older than the mirror: the candidates are gone from it.
	say "apt-get download failed; apt-get update, then the build starts again"
	apt-get update -q >&2 || die "apt-get update failed"
	[ -z "${SM_GUEST_UPDATED:-}" ] || die "apt-get download of ${VERSIONS[*]} failed (above)"
	rm -rf "$S"
	exec 9>&-
	SM_GUEST_UPDATED=1 exec "$0" "$@"
fi
for d in "$S"/debs/*.deb; do
	dpkg-deb -x "$d" "$S/x"
done

R=$S/root
X=$S/x
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,lib/modules,proc,sys,dev,run,tmp,mnt,etc,var}
ln -s ../run "$R/var/run"

# busybox and its applets (the static binary runs here too).
cp "$X/bin/busybox" "$R/bin/busybox"
for a in $("$X/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -s busybox "$R/bin/$a"
done

# qemu-ga and, by their ELF NEEDED entries, every library it loads.
cp "$X/usr/sbin/qemu-ga" "$R/usr/sbin/qemu-ga"
libpath() {  # SONAME: the file in the unpacked packages
	local d
	for d in "$X/lib/x86_64-linux-gnu" "$X/usr/lib/x86_64-linux-gnu"; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}
todo=("$R/usr/sbin/qemu-ga")
while [ ${#todo[@]} -gt 0 ]; do
	f=${todo[0]}
	todo=("${todo[@]:1}")
	for so in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		[ -e "$R/lib/x86_64-linux-gnu/$so" ] && continue
		src=$(libpath "$so") || die "qemu-ga needs $so, which none of the packages" \
			"${PKGS[*]} holds; add its package to build.sh"
		cp -L "$src" "$R/lib/x86_64-linux-gnu/$so"
		todo+=("$R/lib/x86_64-linux-gnu/$so")
	done
done
interp=$(readelf -l "$R/usr/sbin/qemu-ga" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
[ "$interp" = /lib64/ld-linux-x86-64.so.2 ] || die "qemu-ga asks for the loader '$interp'"
cp -L "$X/lib64/ld-linux-x86-64.so.2" "$R/lib64/ld-linux-x86-64.so.2" 2>/dev/null ||
	cp -L "$X/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$R/lib64/ld-linux-x86-64.so.2"

# The kernel and the modules the guest loads, dependencies first (their
# .modinfo 'depends='); built in (=y) ones are not in the package and need
# nothing.  ext4 asks for crc32c through the crypto API: crc32c_generic.
KVER=${PKGS[0]#linux-image-}
[ -f "$X/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER in ${PKGS[0]}"
cp "$X/boot/vmlinuz-$KVER" "$S/out/vmlinuz"
MODS=$X/lib/modules/$KVER
declare -A loaded=()
order=()
module() {  # NAME
	local name=${1//-/_} f dep deps
	[ -z "${loaded[$name]:-}" ] || return 0
	loaded[$name]=1
	f=$(find "$MODS" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" \) | head -n 1)
	[ -n "$f" ] || die "module '$name' is not in ${PKGS[0]} (built in? see its config-$KVER)"
	case "$f" in
	*.ko.xz) xz -dc "$f" >"$S/mod.ko" ;;
	*.ko.zst) zstd -qdc "$f" >"$S/mod.ko" ;;
	*.ko.gz) gzip -dc "$f" >"$S/mod.ko" ;;
	*) cp "$f" "$S/mod.ko" ;;
	esac
	deps=$(tr '\0' '\n' <"$S/mod.ko" | sed -n 's/^depends=//p' | head -n 1)
	mv "$S/mod.ko" "$R/lib/modules/$name.ko"
	for dep in ${deps//,/ }; do
		module "$dep"
	done
	order+=("$name")
}
for m in virtio_pci virtio_blk virtio_console crc32c_generic ext4; do
	module "$m"
done
printf '%s\n' "${order[@]}" >"$R/lib/modules/load"

cat >"$R/init" <<'INIT'
#!/bin/sh
# The snapmove test guest's init (tests/guest/build.sh).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load); do
	insmod "/lib/modules/$m.ko" || echo "guest: insmod $m failed"
done
mounts=
for w in $(cat /proc/cmdline); do
	case "$w" in sm.mount=*) mounts=$(echo "${w#sm.mount=}" | tr , ' ') ;; esac
done
for d in $mounts; do
	i=0
	while [ ! -b "/dev/$d" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	mkdir -p "/mnt/$d"
	mount -t ext4 "/dev/$d" "/mnt/$d" || echo "guest: mount /dev/$d failed"
done
# No udev: the agent's port gets its name from sysfs.
i=0
while [ ! -e /sys/class/virtio-ports/vport0p1 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do
	[ -r "$p/name" ] || continue
	n=$(cat "$p/name")
	[ -n "$n" ] && ln -sf "../${p##*/}" "/dev/virtio-ports/$n"
done
qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 &
echo "guest: up in $(cut -d' ' -f1 /proc/uptime) s"
while :; do sleep 3600; done
INIT
chmod 755 "$R/init"

# qemu-ga's guest-shutdown runs "/sbin/shutdown -h -P +0 MESSAGE" (-r to
# reboot) and waits for it: as a real system's does, it returns at once and
# the system goes down after it.
cat >"$R/sbin/shutdown" <<'SHUTDOWN'
#!/bin/sh
echo "guest: shutdown $*" >/dev/console
reboot=
for a in "$@"; do [ "$a" = -r ] && reboot=1; done
(
	sleep 0.2
	sync
	for m in $(sed -n 's|^[^ ]* \(/mnt/[^ ]*\) .*|\1|p' /proc/mounts); do
		mount -o remount,ro "$m"
	done
	sync
	if [ -n "$reboot" ]; then reboot -f; else poweroff -f; fi
) </dev/null >/dev/null 2>&1 &
exit 0
SHUTDOWN
chmod 755 "$R/sbin/shutdown"

# Fixed times and owners, names in order (inode numbers still vary).
find "$R" -exec touch -h -d @0 {} +
(cd "$R" && find . | LC_ALL=C sort | "$X/bin/busybox" cpio -o -H newc -R 0:0 2>/dev/null) |
	gzip -9n >"$S/out/initrd.gz"
printf '%s\n' "${VERSIONS[@]}" >"$S/out/versions"
chmod 644 "$S/out"/*
ms=$((($(date +%s%N) - started) / 1000000))
say "built in $ms ms: vmlinuz $(stat -c %s "$S/out/vmlinuz") bytes," \
	"initrd.gz $(stat -c %s "$S/out/initrd.gz") bytes"
echo "$ms" >"$S/out/build-ms"
touch "$S/out/complete"
# Older builds go: a new version replaced them.
for old in "$CACHE"/*/; do
	old=${old%/}
	[ "$old" = "$OUT" ] || [ "${old##*/}" = "${S##*/}" ] || rm -rf "$old"
done
rm -rf "$OUT"
mv "$S/out" "$OUT"
echo "$OUT"
