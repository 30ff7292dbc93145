#!/usr/bin/env bash
# After a move the source images stay, and 'snapmove status' says so with the
# cleanup command; 'snapmove cleanup JOB' deletes those nothing uses and
# reports the space freed, keeping (and naming the user of) any image a
# domain, running or only defined, or another image's backing pointer still
# uses; 'move --delete-source' does the same right after the move and never
# deletes a shared backing image the move left in place.  'snapmove forget'
# drops a done or aborted job and refuses an unfinished one.
. "$(dirname "$0")/lib.sh"

# Bytes as snapmove prints them (sm_format_bytes).
fmt_bytes() {
	awk -v n="$1" 'BEGIN {
		split("B KiB MiB GiB TiB", u, " "); v = n; i = 1
		while (v >= 1024 && i < 5) { v /= 1024; i++ }
		if (i == 1) printf "%d B\n", n; else printf "%.1f %s\n", v, u[i]
	}'
}

# Allocated bytes of files, as snapmove counts them (st_blocks * 512).
alloc_bytes() {
	local f total=0
	for f in "$@"; do
		total=$((total + $(stat -c %b "$f") * 512))
	done
	echo "$total"
}

# setup_case NAME: $C with src/ (top.qcow2 over base.raw, 8 MiB of data in
# base.raw) and dst/, and its own journal, so its first job is job 1.
setup_case() {
	C=$T/$1
	DB=$C/j.db
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/base.raw" raw 64M 0x11 0 8M
	new_overlay "$C/src/top.qcow2" base.raw raw 0x12 1M 1M
}

# check_moved DOM DIR: the domain runs on DIR/top.qcow2 over DIR/base.raw
# with every write; it is destroyed afterwards.
check_moved() {
	assert_eq "$(live_chain "$1" vda)" "$2/top.qcow2 qcow2
$2/base.raw raw" "live chain of $1"
	guest_write "$1" vda 0x31 2M 64k
	virsh -q destroy "$1" >/dev/null
	check_pattern "$2/top.qcow2" qcow2 0x11 0 1M
	check_pattern "$2/top.qcow2" qcow2 0x11 3M 5M
	check_pattern "$2/top.qcow2" qcow2 0x12 1M 1M
	check_pattern "$2/top.qcow2" qcow2 0x31 2M 64k
}

# The domains of the cases (created inside them: a case's subshell cannot
# add to SM_DOMAINS).
for n in status user image delete shared resumed forget forget-failed; do
	SM_DOMAINS+=("$(dom_name "$n")")
done
SM_DOMAINS+=("$(dom_name user-other)" "$(dom_name shared-other)")

case_status_cleanup() {
	setup_case status
	local dom want
	dom=$(dom_name status)
	make_domain "$dom" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$dom" --dest "$C/dst"
	assert_contains "$T/out" "the source images stay; 'snapmove cleanup 1' deletes those nothing uses"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "base.raw top.qcow2 " "source files after the move"
	want=$(fmt_bytes "$(alloc_bytes "$C/src/base.raw" "$C/src/top.qcow2")")
	expect_exit 0 sm status 1
	assert_contains "$T/out" "job 1: done, phase done"
	assert_contains "$T/out" "source: 2 images left ($want); 'snapmove cleanup 1' deletes those no domain or image uses"

	expect_exit 0 sm cleanup 1
	assert_contains "$T/out" "job 1: freed $want at the source"
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	assert_contains "$T/err" "deleted $C/src/base.raw ("
	assert_eq "$(ls -A "$C/src")" "" "source files after cleanup"
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" "base.raw top.qcow2 " "destination files after cleanup"
	expect_exit 0 sm status 1
	grep -q '^source:' "$T/out" && { cat "$T/out" >&2; fail "status still reports source images"; }
	assert_contains "$T/out" "deleted  src_image   $C/src/top.qcow2"
	assert_contains "$T/out" "deleted  src_image   $C/src/base.raw"
	# Again: nothing left to delete.
	expect_exit 0 sm cleanup 1
	assert_contains "$T/out" "job 1: freed 0 B at the source"
	check_moved "$dom" "$C/dst"
}
run_case "status shows the source left; cleanup deletes it and reports the space" \
	case_status_cleanup

case_used_by_domain() {
	setup_case user
	local dom other
	dom=$(dom_name user)
	other=$(dom_name user-other)
	make_domain "$dom" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$dom" --dest "$C/dst"
	# After the move, another domain (defined, shut off) is given an overlay
	# over the old base image.
	mkdir -m 755 "$C/other"
	new_overlay "$C/other/other.qcow2" "$C/src/base.raw" raw
	make_domain_xml "$other" defined "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$C/other/other.qcow2'/><target dev='vda' bus='virtio'/></disk>"
	local want
	want=$(fmt_bytes "$(alloc_bytes "$C/src/top.qcow2")")
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	assert_contains "$T/err" "kept $C/src/base.raw: used by domain '$other' disk vda"
	assert_contains "$T/out" "job 1: freed $want at the source"
	assert_eq "$(ls "$C/src")" base.raw "source files after cleanup"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "source: 1 image left"
	# The other domain starts on its chain.
	virsh -q start "$other" >/dev/null
	assert_eq "$(live_chain "$other" vda)" "$C/other/other.qcow2 qcow2
$C/src/base.raw raw" "chain of the other domain"
	virsh -q destroy "$other" >/dev/null
	# Once the other domain is gone, cleanup deletes the base too.
	virsh -q undefine "$other" >/dev/null
	rm -f "$C/other/other.qcow2"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/base.raw ("
	assert_eq "$(ls -A "$C/src")" "" "source files after the second cleanup"
	check_moved "$dom" "$C/dst"
}
run_case "cleanup keeps a base image another domain's overlay uses" case_used_by_domain

case_used_by_image() {
	setup_case image
	local dom
	dom=$(dom_name image)
	make_domain "$dom" transient "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$dom" --dest "$C/dst"
	# An image over top.qcow2 keeps top.qcow2, and so base.raw below it.
	new_overlay "$C/src/snap.qcow2" top.qcow2 qcow2
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "kept $C/src/top.qcow2: used by image '$C/src/snap.qcow2'"
	assert_contains "$T/err" "kept $C/src/base.raw: used by image '$C/src/top.qcow2'"
	assert_contains "$T/out" "job 1: freed 0 B at the source"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "base.raw snap.qcow2 top.qcow2 " "source files (snap)"
	qemu-img check -q -f qcow2 "$C/src/snap.qcow2" || fail "snap.qcow2's chain is broken"
	# An image over base.raw keeps base.raw only.
	rm "$C/src/snap.qcow2"
	new_overlay "$C/src/other.qcow2" base.raw raw
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/top.qcow2 ("
	assert_contains "$T/err" "kept $C/src/base.raw: used by image '$C/src/other.qcow2'"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "base.raw other.qcow2 " "source files (other)"
	check_pattern "$C/src/other.qcow2" qcow2 0x11 0 8M
	rm "$C/src/other.qcow2"
	expect_exit 0 sm cleanup 1
	assert_contains "$T/err" "deleted $C/src/base.raw ("
	assert_eq "$(ls -A "$C/src")" "" "source files at the end"
	check_moved "$dom" "$C/dst"
}
run_case "cleanup keeps images another image's backing pointer uses" case_used_by_image

case_delete_source() {
	setup_case delete
	local dom want
	dom=$(dom_name delete)
	make_domain "$dom" persistent "vda:$C/src/top.qcow2:qcow2"
	want=$(fmt_bytes "$(alloc_bytes "$C/src/base.raw" "$C/src/top.qcow2")")
	make_write_hook "$dom" vda copy:0x21:12M
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 0 sm move "$dom" --dest "$C/dst" --delete-source
	assert_contains "$T/out" "moved domain $dom"
	assert_contains "$T/out" "deleted the source: $want freed"
	assert_eq "$(ls -A "$C/src")" "" "source files after --delete-source"
	assert_eq "$(live_chain "$dom" vda --inactive | head -n1)" "$C/dst/top.qcow2 qcow2" \
		"persistent definition"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "job 1: done, phase done"
	assert_contains "$T/out" "deleted  src_image   $C/src/base.raw"
	grep -q '^source:' "$T/out" && { cat "$T/out" >&2; fail "status still reports source images"; }
	check_pattern "$C/dst/top.qcow2" qcow2 0x21 12M 64k
	check_moved "$dom" "$C/dst"
}
run_case "move --delete-source deletes the source right after the move" case_delete_source

case_delete_source_shared() {
	setup_case shared
	local dom other
	dom=$(dom_name shared)
	other=$(dom_name shared-other)
	# Another (shut off) domain uses base.raw already: the move leaves it in
	# place, and --delete-source must not delete it.
	mkdir -m 755 "$C/other"
	new_overlay "$C/other/other.qcow2" "$C/src/base.raw" raw
	make_domain_xml "$other" defined "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$C/other/other.qcow2'/><target dev='vda' bus='virtio'/></disk>"
	make_domain "$dom" persistent "vda:$C/src/top.qcow2:qcow2"
	expect_exit 0 sm move "$dom" --dest "$C/dst" --delete-source
	assert_contains "$T/out" "deleted the source: "
	assert_eq "$(ls "$C/src")" base.raw "source files"
	assert_eq "$(ls "$C/dst")" top.qcow2 "destination files"
	assert_eq "$(live_chain "$dom" vda)" "$C/dst/top.qcow2 qcow2
$C/src/base.raw raw" "live chain over the shared base"
	virsh -q destroy "$dom" >/dev/null
	virsh -q start "$dom" >/dev/null
	assert_eq "$(live_chain "$dom" vda)" "$C/dst/top.qcow2 qcow2
$C/src/base.raw raw" "chain after destroy + start"
	guest_write "$dom" vda 0x31 2M 64k
	virsh -q destroy "$dom" >/dev/null
	check_pattern "$C/dst/top.qcow2" qcow2 0x11 0 1M
	check_pattern "$C/dst/top.qcow2" qcow2 0x31 2M 64k
	check_pattern "$C/dst/top.qcow2" qcow2 0x12 1M 1M
	check_pattern "$C/other/other.qcow2" qcow2 0x11 0 8M
}
run_case "move --delete-source keeps a shared base the move left in place" \
	case_delete_source_shared

case_delete_source_resumed() {
	setup_case resumed
	local dom
	dom=$(dom_name resumed)
	make_domain "$dom" persistent "vda:$C/src/top.qcow2:qcow2"
	make_write_hook "$dom" vda sync:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$dom" --dest "$C/dst" --delete-source
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "base.raw top.qcow2 " \
		"source files after the failed move"
	assert_eq "$(ls "$C/dst" | tr '\n' ' ')" \
		"base.raw top.qcow2 top.qcow2.snapmove-1.qcow2 top.qcow2.snapmove-1.src.qcow2 " \
		"destination files after the failed move"
	# Finishing the move finishes what was asked: the source goes too.
	expect_exit 0 sm resume 1
	assert_contains "$T/out" "finished job 1 of domain $dom"
	assert_eq "$(ls -A "$C/src")" "" "source files after resuming a --delete-source move"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "job 1: done, phase done"
	check_moved "$dom" "$C/dst"
}
run_case "a failed move --delete-source, resumed: the source is deleted at the end" \
	case_delete_source_resumed

case_forget() {
	C=$T/forget
	DB=$C/j.db
	mkdir -m 755 "$C" "$C/src" "$C/dst"
	new_image "$C/src/a.qcow2" qcow2 64M 0x11 0 1M
	new_image "$C/src/b.qcow2" qcow2 64M 0x12 0 1M
	local dom domf
	dom=$(dom_name forget)
	domf=$(dom_name forget-failed)
	make_domain "$dom" transient "vda:$C/src/a.qcow2:qcow2"
	make_domain "$domf" transient "vda:$C/src/b.qcow2:qcow2"
	expect_exit 0 sm move "$dom" --dest "$C/dst"
	make_write_hook "$domf" vda sync:fail:0
	SNAPMOVE_TEST_HOOK=$T/hook expect_exit 1 sm move "$domf" --dest "$C/dst"
	expect_exit 0 sm list
	assert_contains "$T/out" "finish: snapmove resume 2   undo: snapmove abort 2"

	# An unfinished job cannot be forgotten, nor its source deleted.
	expect_exit 3 sm forget 2
	assert_contains "$T/err" "job 2 is failed; finish it with 'snapmove resume 2' or undo it with 'snapmove abort 2' before forgetting it"
	expect_exit 3 sm cleanup 2
	assert_contains "$T/err" "job 2 is failed: only the source of a finished move can be deleted; finish the move first with 'snapmove resume 2'"
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "a.qcow2 b.qcow2 " \
		"source files after the refused cleanup"
	[ -f "$C/dst/b.qcow2.snapmove-2.src.qcow2" ] || fail "job 2's overlay is not in dst/"

	ls "$C/src" "$C/dst" >"$C/files.before"
	expect_exit 0 sm forget 1
	assert_contains "$T/out" "forgot job 1"
	expect_exit 0 sm list
	grep -Eq "^1 " "$T/out" && { cat "$T/out" >&2; fail "list still shows job 1"; }
	assert_contains "$T/out" "$domf"
	expect_exit 3 sm status 1
	assert_contains "$T/err" "no job 1 in the journal"
	assert_eq "$(sqlite3 "$DB" 'select count(*) from disk where job_id = 1') $(sqlite3 "$DB" 'select count(*) from file where job_id = 1')" \
		"0 0" "journal rows of the forgotten job"
	# Forgetting a job changes no file.
	ls "$C/src" "$C/dst" | diff -u "$C/files.before" - >&2 || fail "forget changed files"

	# Undone, it can be forgotten.
	expect_exit 0 sm abort 2
	assert_eq "$(ls "$C/src" | tr '\n' ' ')" "a.qcow2 b.qcow2 " "source files after the abort"
	assert_eq "$(ls "$C/dst")" a.qcow2 "destination files after the abort"
	expect_exit 0 sm forget 2
	expect_exit 0 sm list
	assert_contains "$T/out" "no jobs"
	assert_eq "$(live_chain "$domf" vda)" "$C/src/b.qcow2 qcow2" "chain of the aborted domain"
	assert_eq "$(live_chain "$dom" vda)" "$C/dst/a.qcow2 qcow2" "chain of the moved domain"
	virsh -q destroy "$dom" >/dev/null
	virsh -q destroy "$domf" >/dev/null
	check_pattern "$C/dst/a.qcow2" qcow2 0x11 0 1M
	check_pattern "$C/src/b.qcow2" qcow2 0x12 0 1M
}
run_case "forget drops done and aborted jobs and refuses a failed one" case_forget

cases_done
