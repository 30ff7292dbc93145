# hmpw-lib.sh: 1 MiB guest writes from a hook through HMP's qemu-io, logged
# only once QEMU wrote them.  HMP's qemu-io does not go through the disk's
# error policy: a write that finds an overlay device full fails with no
# pause and virsh exits 0; only the domain's QEMU log says so.  Such a
# write is written again, as QEMU retries a guest's write once the domain
# paused on ENOSPC is resumed, and kept in OUT.failed (hmpw_failed says how
# many).  Shared by t0219 and the hooks of overlay-device tests.

# hmpw_file DOM OUT FILE: FILE defines w PATTERN OFFSET_MIB for a hook to
# source; each write done is a line "PATTERN OFFSET_MIB" in OUT.
hmpw_file() {
	local log=/var/log/libvirt/qemu/$1.log
	cat >"$3" <<W
alias=\$(virsh -c qemu:///system dumpxml '$1' |
	xmllint --xpath "string(//devices/disk[target/@dev='vda']/alias/@name)" -)
w() {
	local n k ok fails
	for n in \$(seq 1 50); do
		ok=\$(grep -c "^wrote 1048576/1048576 bytes at offset \$((\$2 * 1048576))\$" '$log') || true
		fails=\$(grep -c '^write failed' '$log') || true
		virsh -c qemu:///system -q qemu-monitor-command '$1' --hmp \\
			"qemu-io -d \$alias/virtio-backend \\"write -P \$1 \$2M 1M\\"" >/dev/null
		for k in \$(seq 1 100); do
			if [ "\$(grep -c "^wrote 1048576/1048576 bytes at offset \$((\$2 * 1048576))\$" '$log')" -gt "\$ok" ]; then
				echo "\$1 \$2" >>'$2'
				return
			fi
			if [ "\$(grep -c '^write failed' '$log')" -gt "\$fails" ]; then
				echo "\$1 \$2: \$(grep '^write failed' '$log' | tail -n1)" >>'$2.failed'
				break
			fi
			[ "\$k" -lt 100 ] || { echo "qemu-io's write of \$1 at \$2 MiB: nothing in '$log'" >&2; exit 1; }
			sleep 0.05
		done
		sleep 0.2
	done
	echo "the write of \$1 at \$2 MiB failed 50 times" >&2
	exit 1
}
W
	: >"$2"
	rm -f "$2.failed"
}

# hmpw_failed OUT: how many writes failed (ENOSPC) and were written again.
hmpw_failed() {
	if [ -e "$1.failed" ]; then wc -l <"$1.failed"; else echo 0; fi
}
