#!/usr/bin/env bash
# The lvm provisioner (contrib/provisioners/lvm) run through 'snapmove
# provision', on a real volume group over a loop device: create a 64 MiB
# volume (tagged snapmove, snapmove-device-N), which is a block device of at
# least 64 MiB reached through udev's /dev/VG/LV link; extend it to 128 MiB;
# remove it (lvremove), each run journaled; and remove of a volume without
# snapmove's tags, whose journal row was edited to name it, is refused by the
# provisioner (the volume stays).
#
# A kernel without device-mapper cannot make a logical volume: lvcreate says
# "Required device-mapper target(s) not detected in your kernel".  The test
# then says SKIP with lvcreate's words and exits 77 (skipped, never passed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hooks-lib.sh"

command -v lvcreate >/dev/null || sm_skip "lvm2 is not installed (bash scripts/setup.sh installs it)"
command -v losetup >/dev/null || sm_skip "no losetup on this host"
[ -e /dev/loop-control ] || sm_skip "no loop device support in this kernel (/dev/loop-control)"

# LVM warns of each descriptor bash leaves open to it: not this test's news.
export LVM_SUPPRESS_FD_WARNINGS=1
P=$H/prov/lvm
mkdir -m 755 "$H/prov"
install -m 0755 "$TOP/contrib/provisioners/lvm" "$P"
VG=smt0209_$$

# A volume group of its own on a loop device over a sparse file.
truncate -s 512M "$T/pv.img"
pv=$(losetup --find --show "$T/pv.img")
defer "losetup -d '$pv'"
pvcreate -q -y "$pv" >/dev/null
defer "pvremove -q -y '$pv'"
vgcreate -q "$VG" "$pv" >/dev/null
defer "vgremove -q -y '$VG'"

# Can this kernel make a logical volume at all?
if ! lvcreate -q -y -n probe -L 4M "$VG" >"$T/probe.out" 2>&1; then
	if grep -q "device-mapper" "$T/probe.out"; then
		why=$(grep -m1 -o "Required device-mapper target(s) not detected" "$T/probe.out" ||
			grep -m1 "device-mapper" "$T/probe.out" | sed 's/^ *//')
		sm_skip "no device-mapper in this kernel (lvcreate: $why)"
	fi
	cat "$T/probe.out" >&2
	fail "lvcreate failed for another reason than device-mapper (above)"
fi
lvremove -q -y "$VG/probe" >/dev/null

jv() {  # SQL: one value of this test's journal
	sqlite3 "$DB" "$1"
}
tags() {  # LV: its tags
	lvs --noheadings -o lv_tags "$VG/$1" | tr -d ' '
}

N=t0209-vdb
expect_exit 0 sm provision create "$N" 64M --provisioner "$P" --set "LVM_VG=$VG"
dev=$(cat "$T/out")

case_created() {
	assert_eq "$dev" "/dev/$VG/$N" "the path create printed"
	[ -b "$dev" ] || fail "'$dev' is not a block device"
	[ "$(blockdev --getsize64 "$dev")" -ge 67108864 ] || fail "'$dev' is smaller than 64 MiB"
	assert_eq "$(tags "$N")" "snapmove,snapmove-device-1" "the volume's tags"
	assert_eq "$(jv "SELECT state || ' ' || path || ' ' || bytes FROM provisioned_device WHERE id = 1")" \
		"created $dev 67108864" "the journaled device"
	assert_eq "$(jv "SELECT settings FROM provisioned_device WHERE id = 1")" "SNAPMOVE_LVM_VG=$VG" \
		"the journaled settings"
	# Asked again by hand, the provisioner gives back the same volume.
	out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SNAPMOVE_LVM_VG="$VG" SNAPMOVE_DEVICE=1 \
		"$P" create "$N" 67108864)
	assert_eq "$out" "$dev" "a create asked again"
	# Another snapmove device's create of that name is refused.
	rc=0
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SNAPMOVE_LVM_VG="$VG" SNAPMOVE_DEVICE=2 \
		"$P" create "$N" 67108864 >/dev/null 2>"$T/err" || rc=$?
	assert_eq "$rc" 2 "another device's create of the same name"
	assert_contains "$T/err" "is not this snapmove device's volume"
}
run_case "create: a tagged 64 MiB logical volume, journaled" case_created

case_extend() {
	expect_exit 0 sm provision extend "$dev" 128M
	[ "$(blockdev --getsize64 "$dev")" -ge 134217728 ] || fail "'$dev' did not grow to 128 MiB"
	assert_eq "$(jv "SELECT bytes FROM provisioned_device WHERE id = 1")" 134217728 "the journaled size"
}
run_case "extend to 128 MiB" case_extend

case_foreign() {
	lvcreate -q -y -n foreign -L 8M "$VG" >/dev/null
	path=/dev/$VG/foreign
	real=$(readlink -f "$path")
	rdev=$(( 0x$(stat -c %t "$real") * 256 + 0x$(stat -c %T "$real") ))
	jv "INSERT INTO provisioned_device (provisioner, settings, name, path, rdev, bytes, size, state, created_at, updated_at) VALUES ('$P', 'SNAPMOVE_LVM_VG=$VG', 'foreign', '$path', $rdev, 8388608, 8388608, 'created', 0, 0)"
	expect_exit 1 sm provision remove "$path"
	assert_contains "$T/err" "is not a volume of '$VG' made for this snapmove device"
	lvs "$VG/foreign" >/dev/null 2>&1 || fail "the foreign volume was removed"
	jv "DELETE FROM provisioned_device WHERE name = 'foreign'"
	lvremove -q -y "$VG/foreign" >/dev/null
}
run_case "a volume without snapmove's tags is not removed" case_foreign

case_remove() {
	expect_exit 0 sm provision remove "$dev"
	lvs "$VG/$N" >/dev/null 2>&1 && fail "the volume is still there"
	assert_absent "$dev"
	assert_eq "$(jv "SELECT state FROM provisioned_device WHERE id = 1")" removed "the journaled state"
	assert_eq "$(jv "SELECT group_concat(op || ':' || exit_status, ' ') FROM provision_run WHERE device_id = 1 ORDER BY id")" \
		"create:0 extend:0 remove:0" "the journaled runs"
}
run_case "remove: lvremove, journaled" case_remove

case_pool() {
	expect_exit 0 sm provision create t0209-pool 8M --pool "$pool"
	assert_eq "$(cat "$T/out")" "/dev/$VG/t0209-pool" "the path create printed"
	assert_eq "$(jv "SELECT provisioner || ' ' || settings FROM provisioned_device WHERE name = 't0209-pool'")" \
		"$PDIR/lvm SNAPMOVE_LVM_VG=$VG" "the journaled provisioner"
	expect_exit 0 sm provision remove "/dev/$VG/t0209-pool"
}
# --pool runs the lvm provisioner installed where this snapmove looks
# (its help names the folder: /usr/lib/snapmove/provisioners for the package).
PDIR=$("$SNAPMOVE" help provision | sed -n 's/.*a name in \(\/[^ ]*\).*/\1/p')
if [ -x "$PDIR/lvm" ]; then
	pool=smt0209-$$
	virsh -q pool-create-as "$pool" logical --source-name "$VG" --target "/dev/$VG" >/dev/null
	defer "virsh -q pool-destroy '$pool'"
	run_case "--pool: a libvirt logical pool's volume group" case_pool
else
	note "--pool not run: no lvm provisioner installed in '$PDIR'"
fi

cases_done
