#!/usr/bin/env bash
# demo.sh: move a throwaway running VM's disk live, with guest writes going on,
# and show that every byte arrived.  Run by 'make demo' after setup and build.
#
# It creates a temp directory with src/ and dst/, a 2 GiB qcow2 disk holding
# 512 MiB of data, and a transient domain with no OS (KVM when usable, else
# TCG); a background loop writes through QEMU's block layer during the move.
# Everything it creates is removed at the end, whatever happens.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
SNAPMOVE=${SNAPMOVE:-$TOP/build/snapmove}
export LIBVIRT_DEFAULT_URI=qemu:///system
D=$(mktemp -d /var/tmp/snapmove-demo.XXXXXX)
chmod 755 "$D"
DOM=snapmove-demo-$$
WRITER=

cleanup() {
	[ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null || true
	virsh -q destroy "$DOM" >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

type=qemu
[ "$(stat -c %G /dev/kvm 2>/dev/null)" = kvm ] && type=kvm

step "a throwaway VM ($type) with a 2 GiB qcow2 disk holding 512 MiB of data"
mkdir -m 755 "$D/src" "$D/dst"
qemu-img create -q -f qcow2 "$D/src/demo.qcow2" 2G
qemu-io -f qcow2 -c 'write -P 0x5a 0 256M' -c 'write -P 0xa5 1G 256M' "$D/src/demo.qcow2" >/dev/null
cat >"$D/demo.xml" <<XML
<domain type='$type'>
  <name>$DOM</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$D/src/demo.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
XML
virsh -q create "$D/demo.xml" >/dev/null
"$SNAPMOVE" --db "$D/journal.db" chain "$DOM"

# The guest keeps writing: block i gets pattern 0x10+i at 1536M + i MiB.
writer() {
	local i=0
	while [ $i -lt 64 ]; do
		virsh -q qemu-monitor-command "$DOM" --hmp \
			"qemu-io -d virtio-disk0/virtio-backend \"write -P $((0x10 + i)) $((1536 + i))M 64k\"" \
			>/dev/null 2>&1 || break
		echo $i >"$D/written"
		i=$((i + 1))
		sleep 0.05
	done
}
writer &
WRITER=$!

step "snapmove move $DOM --dest $D/dst   (the guest writes all the while)"
"$SNAPMOVE" --db "$D/journal.db" move "$DOM" --dest "$D/dst"
wait "$WRITER" || true
WRITER=
last=$(cat "$D/written")
virsh -q qemu-monitor-command "$DOM" --hmp \
	'qemu-io -d virtio-disk0/virtio-backend "write -P 0xee 1900M 64k"' >/dev/null

step "after the move"
"$SNAPMOVE" --db "$D/journal.db" chain "$DOM"
"$SNAPMOVE" --db "$D/journal.db" status 1 | sed -n '/^phases:/,/^files:/p' | sed '$d'

step "verifying the data on the destination chain (VM stopped)"
virsh -q destroy "$DOM" >/dev/null
img=$D/dst/demo.qcow2
check() {
	if qemu-io -r -f qcow2 -c "read -P $1 $2 $3" "$img" 2>&1 | grep -q "failed"; then
		echo "MISMATCH: pattern $1 at $2 (+$3)"
		exit 1
	fi
}
check 0x5a 0 256M
check 0xa5 1G 256M
for i in $(seq 0 "$last"); do
	check $((0x10 + i)) $((1536 + i))M 64k
done
check 0xee 1900M 64k
echo "ok: the original 512 MiB, $((last + 1)) writes made during the move and one after it are all on $img"
[ -z "$(ls "$D/dst" | grep -v '^demo.qcow2$')" ] && echo "ok: no overlay or temporary file left on the destination"
[ -z "$(ls "$D/src" | grep -v '^demo.qcow2$')" ] && echo "ok: the source overlay is gone; the source image stays until you delete it"
step "done; removing the demo VM and its files"
