#!/usr/bin/env bash
# setup.sh: make this host ready to build, test and demo snapmove.
#
# Installs the Debian packages snapmove needs when any is missing, hands /dev/kvm
# to group kvm (as udev would), and starts virtlogd and libvirtd when they are not
# running. Idempotent: a second run changes nothing. Needs root for the installs and
# the daemons; prints what it does on stderr.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config
	libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
	qemu-system-x86 qemu-utils
	libxml2-dev libxml2-utils libsqlite3-dev sqlite3 xfsprogs libjson-c-dev libxxhash-dev libcmocka-dev libinih-dev
	liburing-dev
	python3-jsonschema ansible-core
	clang-14 libclang-rt-14-dev
	strace
	dpkg-dev debhelper
	lvm2
	# the test guest (tests/guest/build.sh: readelf; t0201: mkfs.ext4, e2fsck, debugfs)
	binutils e2fsprogs
)

say() { echo "setup: $*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		say "missing packages: ${missing[*]}; run this script as root to install them"
		exit 1
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

[ "$(id -u)" -eq 0 ] || exit 0

# Without udev /dev/kvm stays root-only and QEMU (running as libvirt-qemu) cannot
# use it; libvirt then re-probes QEMU on every start (about 40 s each).
if [ -e /dev/kvm ]; then
	getent group kvm >/dev/null || groupadd -r kvm
	chgrp kvm /dev/kvm
	chmod 660 /dev/kvm
fi

if ! pgrep -x virtlogd >/dev/null; then
	say "starting virtlogd"
	virtlogd -d
fi
if ! pgrep -x libvirtd >/dev/null; then
	say "starting libvirtd"
	libvirtd -d
fi
for _ in $(seq 1 50); do
	virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
	sleep 0.2
done
say "libvirtd does not answer on qemu:///system; see /var/log/libvirt/libvirtd.log"
exit 1
