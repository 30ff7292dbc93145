#!/usr/bin/env bash
# 'snapmove move' refuses a destination it cannot use (exit 3, nothing
# changed): missing, not a directory, read-only, closed to QEMU, a file or a
# symlink already at a destination name, not enough free space.
. "$(dirname "$0")/lib.sh"

mkdir -m 755 "$T/src" "$T/dst" "$T/elsewhere" "$T/ro" "$T/small" "$T/margin"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" persistent "vda:$T/src/disk.qcow2:qcow2"

# A read-only file system: root ignores mode bits, not a read-only mount.
mount -t tmpfs -o ro,size=1M tmpfs "$T/ro"
SM_MOUNTS+=("$T/ro")
# Small file systems: 8 MiB holds the data but not the margin; 65 MiB holds
# the data with room to spare, but not the data plus the 64 MiB margin.
for m in small:8M margin:65M; do
	mount -t tmpfs -o "size=${m#*:}" tmpfs "$T/${m%%:*}"
	SM_MOUNTS+=("$T/${m%%:*}")
	chmod 755 "$T/${m%%:*}"
done

# refused TEXT DEST [ARGS...]: moving to DEST is refused saying TEXT, and
# nothing changed in the source, DEST (when a directory) or the journal.  Its
# stderr stays in $T/case.err.
refused() {
	local text=$1 dest=$2 dirs=("$T/src")
	shift 2
	[ -d "$dest" ] && dirs+=("$dest")
	save_state case "$dom" vda "${dirs[@]}"
	expect_refused_unchanged case "$text" sm move "$dom" --dest "$dest" "$@"
	expect_exit 0 sm list
	assert_eq "$(cat "$T/out")" "no jobs" "journal"
}

case_missing() {
	refused "destination '$T/nope' does not exist; create it first (mkdir -p $T/nope) or choose another --dest" \
		"$T/nope"
	assert_absent "$T/nope"
	refused "destination '$T/nope' does not exist" "$T/nope" --dry-run
	assert_absent "$T/nope"
}
run_case "destination missing" case_missing

case_not_dir() {
	echo precious >"$T/plain"
	refused "destination '$T/plain' is not a directory; --dest takes the directory the images move to" \
		"$T/plain"
	assert_eq "$(cat "$T/plain")" precious "the regular file given as --dest"
}
run_case "destination is a regular file" case_not_dir

case_below_file() {
	echo precious >"$T/plain2"
	refused "'$T/plain2/sub'" "$T/plain2/sub"
	assert_contains "$T/case.err" "Not a directory"
	assert_contains "$T/case.err" "choose a --dest that is an existing directory"
	assert_eq "$(cat "$T/plain2")" precious "the regular file above --dest"
}
run_case "destination below a regular file" case_below_file

case_read_only() {
	refused "destination '$T/ro' is on a read-only file system" "$T/ro"
	assert_contains "$T/case.err" "remount it read-write or choose another --dest"
}
run_case "destination on a read-only mount" case_read_only

case_closed() {
	mkdir -m 700 "$T/closed"
	refused "destination '$T/closed' cannot be entered by other users (mode 0700)" "$T/closed"
	assert_contains "$T/case.err" "'chmod o+x $T/closed' or choose another --dest"
}
run_case "destination QEMU cannot enter" case_closed

case_file_exists() {
	echo precious >"$T/dst/disk.qcow2"
	refused "destination file '$T/dst/disk.qcow2' already exists; remove it or choose another --dest" \
		"$T/dst"
	assert_eq "$(cat "$T/dst/disk.qcow2")" precious "the file at the destination name"
	rm "$T/dst/disk.qcow2"
}
run_case "destination file exists" case_file_exists

case_symlink() {
	local sum mtime
	new_image "$T/elsewhere/target.qcow2" qcow2 64M 0x66 0 64k
	sum=$(md5sum <"$T/elsewhere/target.qcow2")
	mtime=$(stat -c %Y.%y "$T/elsewhere/target.qcow2")
	ln -s "$T/elsewhere/target.qcow2" "$T/dst/disk.qcow2"
	refused "destination file '$T/dst/disk.qcow2' already exists; remove it or choose another --dest" \
		"$T/dst"
	assert_eq "$(readlink "$T/dst/disk.qcow2")" "$T/elsewhere/target.qcow2" "the symlink"
	assert_eq "$(md5sum <"$T/elsewhere/target.qcow2")" "$sum" "the symlink's target"
	assert_eq "$(stat -c %Y.%y "$T/elsewhere/target.qcow2")" "$mtime" "the target's mtime"
	assert_eq "$(ls -A "$T/elsewhere")" target.qcow2 "files beside the target"
	rm "$T/dst/disk.qcow2"

	# A dangling symlink: its target must not be created.
	ln -s "$T/elsewhere/absent.qcow2" "$T/dst/disk.qcow2"
	refused "destination file '$T/dst/disk.qcow2' already exists" "$T/dst"
	assert_absent "$T/elsewhere/absent.qcow2"
	rm "$T/dst/disk.qcow2"
}
run_case "symlink at the destination name" case_symlink

case_overlay_exists() {
	# The destination overlay of job 1, the job this move would open.
	echo precious >"$T/dst/disk.qcow2.snapmove-1.qcow2"
	refused "destination file '$T/dst/disk.qcow2.snapmove-1.qcow2' already exists" "$T/dst"
	assert_eq "$(cat "$T/dst/disk.qcow2.snapmove-1.qcow2")" precious "the file at the overlay name"
	rm "$T/dst/disk.qcow2.snapmove-1.qcow2"
}
run_case "destination overlay exists" case_overlay_exists

case_space() {
	refused "not enough free space in '$T/small': the move needs" "$T/small"
	assert_contains "$T/case.err" "(the chains' allocated bytes plus a 64 MiB margin)"
	assert_contains "$T/case.err" "free space there or choose another --dest"
	refused "not enough free space in '$T/small'" "$T/small" --dry-run
	# The data fits in 65 MiB; the margin does not.
	refused "not enough free space in '$T/margin'" "$T/margin"
}
run_case "not enough free space" case_space

# After all the refusals the same move is accepted: the refusals were about
# the input, not about this domain.
case_good() {
	expect_exit 0 sm move "$dom" --dest "$T/dst" --dry-run
	assert_contains "$T/out" "vda after : $T/dst/disk.qcow2 (qcow2)"
}
run_case "a good destination is accepted" case_good

cases_done
