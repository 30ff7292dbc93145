# lib.sh: shared helpers for the integration tests, sourced by each t*.sh.
#
# Every test runs against the real libvirtd (qemu:///system), real QEMU and
# real qemu-img.  It gets its own temp directory ($T, mode 0755 so QEMU can
# read it), its own journal ($DB) and its own domains, all removed on exit.
# Domains have no OS: they run, and their disks are open and writable; the
# test guest below (guest_domain) boots a Debian kernel with qemu-guest-agent.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SNAPMOVE=${SNAPMOVE:-$TOP/build/snapmove}
export LIBVIRT_DEFAULT_URI=qemu:///system
TNAME=$(basename "$0" .sh)
T=$(mktemp -d /var/tmp/snapmove-test.XXXXXX)
chmod 755 "$T"
DB=$T/journal.db
SM_DOMAINS=()
SM_MOUNTS=()
# Every event any snapmove of this test emits (with --json or not, rebalance
# children too) is appended here and checked against docs/events.schema.json
# when the test ends; so are the --json documents sm() saw (in $SM_DOCS).
# Outside $T: tests compare listings of $T.
SNAPMOVE_EVENTS_FILE=$(mktemp /var/tmp/snapmove-test-events.XXXXXX)
export SNAPMOVE_EVENTS_FILE
SM_DOCS=$(mktemp -d /var/tmp/snapmove-test-docs.XXXXXX)
SM_PY=/usr/bin/python3
[ -x "$SM_PY" ] || SM_PY=python3
SM_VALIDATE=$TOP/tests/integration/validate_events.py

# Check what sm_check_output collected; 1 when something is invalid.
sm_check_output() {
	local rc=0 name docs
	if [ -s "$SNAPMOVE_EVENTS_FILE" ]; then
		"$SM_PY" "$SM_VALIDATE" events "$SNAPMOVE_EVENTS_FILE" || rc=1
	fi
	for name in list status chain dry_run rebalance_dry_run; do
		docs=$(find "$SM_DOCS" -name "$name.*" | sort)
		[ -n "$docs" ] || continue
		# shellcheck disable=SC2086
		"$SM_PY" "$SM_VALIDATE" document "$name" $docs || rc=1
	done
	[ $rc = 0 ] || echo "FAIL ($TNAME): snapmove's JSON output does not match" \
		"docs/events.schema.json (above)" >&2
	return $rc
}

sm_cleanup() {  # [EXIT STATUS]
	local rc=${1:-$?} d m
	if [ $rc = 0 ] || [ $rc = 77 ]; then
		sm_check_output || rc=1
	fi
	rm -rf "$SNAPMOVE_EVENTS_FILE" "$SM_DOCS"
	for d in "${SM_DOMAINS[@]}"; do
		virsh -q destroy "$d" >/dev/null 2>&1 || true
		virsh -q undefine "$d" --snapshots-metadata --checkpoints-metadata >/dev/null 2>&1 || true
	done
	for m in "${SM_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || true
	done
	# A failed test shows the logs of the moves a rebalance ran (CI keeps
	# nothing else of $T).
	if [ $rc != 0 ]; then
		for m in "$T"/*.rebalance-*.log; do
			[ -f "$m" ] || continue
			echo "--- $(basename "$m") (last 15 lines)" >&2
			tail -n 15 "$m" | sed 's/^/  | /' >&2
		done
	fi
	if [ $rc != 0 ] && [ $rc != 77 ] && [ -n "${SM_KEEP_FAILED:-}" ]; then
		echo "kept $T (SM_KEEP_FAILED)" >&2
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap sm_cleanup EXIT

fail() {
	echo "FAIL ($TNAME): $*" >&2
	exit 1
}

# This host cannot run the test: say why and stop; run.sh counts it as
# skipped (exit 77 with a "SKIP: " line), never as passed.
sm_skip() {  # REASON
	echo "SKIP: $*"
	exit 77
}

note() {
	echo "  - $*"
}

# Run snapmove with this test's journal.  The JSON document of a --json
# list, status, chain or dry run is kept for sm_check_output.
sm() {
	local a cmd="" json=false dry=false rc=0 doc
	for a in "$@"; do
		case "$a" in
		--json) json=true ;;
		--dry-run) dry=true ;;
		-*) ;;
		*) [ -n "$cmd" ] || cmd=$a ;;
		esac
	done
	case "$json/$cmd/$dry" in
	true/list/* | true/status/* | true/chain/*) doc=$cmd ;;
	true/move/true) doc=dry_run ;;
	true/rebalance/true) doc=rebalance_dry_run ;;
	*) "$SNAPMOVE" --db "$DB" "$@"; return ;;
	esac
	doc=$(mktemp "$SM_DOCS/$doc.XXXXXX")
	"$SNAPMOVE" --db "$DB" "$@" >"$doc" || rc=$?
	cat "$doc"
	# Refused or failed: no document to check.
	[ $rc = 0 ] || rm -f "$doc"
	return $rc
}

# Expect a command to exit with status $1; output goes to $T/out and $T/err.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" != "$want" ]; then
		cat "$T/out" "$T/err" >&2
		fail "'$*' exited $rc, expected $want"
	fi
}

assert_contains() {  # FILE TEXT
	grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "'$1' does not contain '$2'"; }
}

assert_eq() {  # GOT WANT WHAT
	[ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

assert_absent() {
	[ ! -e "$1" ] && [ ! -L "$1" ] || fail "'$1' exists and should not"
}

domain_type() {
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" = kvm ]; then
		echo kvm
	else
		echo qemu
	fi
}

# make_domain NAME persistent|transient DISK... where DISK is TARGET:PATH:FORMAT
# Creates and starts the domain.
make_domain() {
	local name=$1 kind=$2 spec target path fmt disks=""
	shift 2
	for spec in "$@"; do
		IFS=: read -r target path fmt <<<"$spec"
		disks+="<disk type='file' device='disk'><driver name='qemu' type='$fmt'/>"
		disks+="<source file='$path'/><target dev='$target' bus='virtio'/></disk>"
	done
	make_domain_xml "$name" "$kind" "$disks"
}

# A unique domain name for this test.
dom_name() {
	echo "smt-${TNAME#t}-$$-${1:-0}"
}

# qcow2 or raw image with data written by qemu-io: new_image PATH FMT SIZE [PATTERN OFF LEN]...
new_image() {
	local path=$1 fmt=$2 size=$3
	shift 3
	qemu-img create -q -f "$fmt" "$path" "$size"
	while [ $# -ge 3 ]; do
		qemu-io -f "$fmt" -c "write -P $1 $2 $3" "$path" >/dev/null
		shift 3
	done
}

# new_overlay PATH BACKING BACKING_FMT [PATTERN OFF LEN]...
new_overlay() {
	local path=$1 backing=$2 bfmt=$3
	shift 3
	qemu-img create -q -f qcow2 -F "$bfmt" -b "$backing" "$path"
	while [ $# -ge 3 ]; do
		qemu-io -f qcow2 -c "write -P $1 $2 $3" "$path" >/dev/null
		shift 3
	done
}

# The QOM alias QEMU knows a disk by (virtio-disk0), from the live XML.
disk_alias() {  # DOM TARGET
	virsh dumpxml "$1" | xmllint --xpath \
		"string(//devices/disk[target/@dev='$2']/alias/@name)" -
}

# Write a pattern through QEMU's block layer, as the guest would.
guest_write() {  # DOM TARGET PATTERN OFFSET LENGTH
	local alias
	alias=$(disk_alias "$1" "$2")
	virsh -q qemu-monitor-command "$1" --hmp \
		"qemu-io -d $alias/virtio-backend \"write -P $3 $4 $5\"" >/dev/null
}

# The live chain of a disk, one "path format" per line, active image first.
live_chain() {  # DOM TARGET [--inactive]
	local xml
	xml=$(virsh dumpxml "$1" ${3:-})
	local i=0 path fmt base="//devices/disk[target/@dev='$2']"
	path=$(xmllint --xpath "string($base/source/@file)" - <<<"$xml")
	fmt=$(xmllint --xpath "string($base/driver/@type)" - <<<"$xml")
	echo "$path $fmt"
	local bs="$base/backingStore"
	while :; do
		path=$(xmllint --xpath "string($bs/source/@file)" - <<<"$xml")
		[ -n "$path" ] || break
		fmt=$(xmllint --xpath "string($bs/format/@type)" - <<<"$xml")
		echo "$path $fmt"
		bs="$bs/backingStore"
		i=$((i + 1))
	done
}

# Check a pattern offline on an image and its chain (read-only, shared lock).
check_pattern() {  # IMAGE FORMAT PATTERN OFFSET LENGTH
	local out
	out=$(qemu-io -r -U -f "$2" -c "read -P $3 $4 $5" "$1" 2>&1) ||
		fail "qemu-io read on '$1' failed: $out"
	case "$out" in
	*"Pattern verification failed"* | *"failed"*)
		fail "'$1' does not hold pattern $3 at $4+$5: $out" ;;
	esac
}

# The backing pointer stored in an image header, as written.
backing_of() {  # IMAGE FORMAT
	qemu-img info -U -f "$2" --output=json "$1" |
		sed -n 's/.*"backing-filename": "\([^"]*\)".*/\1/p' | head -n1
}

# How many block jobs run on a disk (0 or 1); see block_jobs below.
block_job_count() {  # DOM TARGET
	block_jobs "$1" "$2"
}

wait_domain_running() {
	local i
	for i in $(seq 1 50); do
		[ "$(virsh domstate "$1" 2>/dev/null)" = running ] && return 0
		sleep 0.1
	done
	fail "domain '$1' is not running"
}

# make_write_hook DOM TARGET PHASE:PATTERN:OFFSET... writes $T/hook, a program
# for SNAPMOVE_TEST_HOOK that writes 64k of PATTERN at OFFSET through the
# guest's disk when snapmove starts PHASE, and logs each phase it acted on in
# $T/hook.log.  A PATTERN of "fail" makes that phase fail instead.
make_write_hook() {
	local dom=$1 target=$2 spec phase pat off cases=""
	shift 2
	for spec in "$@"; do
		IFS=: read -r phase pat off <<<"$spec"
		if [ "$pat" = fail ]; then
			cases+="$phase) echo \"test hook fails $phase\" >&2; exit 1 ;;"$'\n'
		else
			cases+="$phase) write $pat $off ;;"$'\n'
		fi
	done
	cat >"$T/hook" <<HOOK
#!/bin/bash
set -euo pipefail
write() {
	local alias
	alias=\$(virsh -c qemu:///system dumpxml '$dom' |
		xmllint --xpath "string(//devices/disk[target/@dev='$target']/alias/@name)" -)
	virsh -c qemu:///system -q qemu-monitor-command '$dom' --hmp \
		"qemu-io -d \$alias/virtio-backend \"write -P \$1 \$2 64k\"" >/dev/null
	echo "\$phase" >>'$T/hook.log'
}
phase=\$1
case "\$phase" in
$cases*) ;;
esac
HOOK
	chmod 755 "$T/hook"
}

# make_domain_xml NAME persistent|transient|defined DEVICES_XML: a domain like
# make_domain's, with any <disk> (or other device) elements.  "defined" defines
# a persistent domain and leaves it shut off.
make_domain_xml() {
	local name=$1 kind=$2 devices=$3
	cat >"$T/$name.xml" <<XML
<domain type='$(domain_type)'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>$devices<video><model type='none'/></video>
  <memballoon model='none'/></devices>
</domain>
XML
	SM_DOMAINS+=("$name")
	case "$kind" in
	persistent | defined)
		virsh -q define "$T/$name.xml" >/dev/null
		[ "$kind" = defined ] || virsh -q start "$name" >/dev/null ;;
	*)
		virsh -q create "$T/$name.xml" >/dev/null ;;
	esac
}

# defer COMMAND: run COMMAND (a shell string) at exit, after this test's
# domains are destroyed and before $T is removed; later ones run first.  For
# what outlives a domain: loop devices, qemu-nbd servers.
SM_DEFERRED=()
defer() {
	SM_DEFERRED+=("$1")
	trap sm_cleanup_deferred EXIT
}

sm_cleanup_deferred() {
	local rc=$? d i
	# Undefined too, before a deferred 'losetup -d': a definition naming a
	# detached /dev/loopN would make another test, given that number next,
	# see its new device "in use by domain" (snapmove asks every domain).
	for d in "${SM_DOMAINS[@]}"; do
		virsh -q destroy "$d" >/dev/null 2>&1 || true
		virsh -q undefine "$d" --snapshots-metadata --checkpoints-metadata >/dev/null 2>&1 || true
	done
	for ((i = ${#SM_DEFERRED[@]} - 1; i >= 0; i--)); do
		eval "${SM_DEFERRED[i]}" >/dev/null 2>&1 || true
	done
	sm_cleanup "$rc"
}

# world_state DOM TARGET DIR...: what a refused command must leave as it was:
# the domain's state, live chain, persistent chain and block jobs on TARGET,
# the XML of all its disks (DOM "-" for none), the listing of each DIR, and the
# journal's jobs.
world_state() {
	local dom=$1 target=$2 d
	shift 2
	if [ "$dom" != - ]; then
		echo "state: $(virsh domstate "$dom" 2>&1)"
		echo "live chain:"
		live_chain "$dom" "$target"
		if [ "$(virsh dominfo "$dom" | sed -n 's/^Persistent: *//p')" = yes ]; then
			echo "persistent chain:"
			live_chain "$dom" "$target" --inactive
		fi
		echo "block jobs: $(block_jobs "$dom" "$target")"
		echo "disks:"
		virsh dumpxml "$dom" | xmllint --xpath '//devices/disk' -
		echo
	fi
	for d in "$@"; do
		echo "files in $d:"
		ls -A "$d"
	done
	echo "journal:"
	journal_jobs
}

# journal_jobs: 'snapmove list' of this test's journal; "no jobs", as for an
# empty one, while there is none ('list' refuses a missing --db, and a
# refused move may create the journal: neither changes the jobs).
journal_jobs() {
	if [ -e "$DB" ]; then
		sm list
	else
		echo "no jobs"
	fi
}

# The journal is shared with snapmove processes that may be writing (a
# child move still running after its rebalance was killed): queries wait for
# their locks as snapmove does (10 s) instead of failing with "database is
# locked".
sqlite3() {
	command sqlite3 -cmd '.timeout 10000' "$@"
}

# journal_init: this test's journal, empty, for tests that query it with
# sqlite3 before their first move (only move and rebalance create it).
journal_init() {
	[ -e "$DB" ] || : >"$DB"
	sm list >/dev/null
}

# save_state NAME DOM TARGET DIR... and assert_unchanged NAME: record the
# world_state, and fail when it is not the same any more.
save_state() {
	local name=$1
	shift
	printf '%s\n' "$@" >"$T/state.$name.args"
	world_state "$@" >"$T/state.$name"
}

assert_unchanged() {  # NAME
	local args
	mapfile -t args <"$T/state.$1.args"
	world_state "${args[@]}" >"$T/state.$1.now"
	diff -u "$T/state.$1" "$T/state.$1.now" >&2 ||
		fail "$1: the refused command changed something (diff above)"
}

# expect_refused TEXT COMMAND...: COMMAND exits 3, prints nothing on stdout,
# and says on stderr TEXT and that nothing was changed.
expect_refused() {
	local text=$1
	shift
	expect_exit 3 "$@"
	assert_contains "$T/err" "snapmove: error: "
	assert_contains "$T/err" "$text"
	assert_contains "$T/err" "snapmove: nothing was changed"
	[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "'$*' printed on stdout while refusing"; }
}

# run_case TITLE FUNCTION: run one case of a test in a subshell, so that a
# failing case is reported and the next ones still run (like git's
# test_expect_success).  Create domains and mounts outside cases: a subshell
# cannot add to SM_DOMAINS or SM_MOUNTS.  End the test with cases_done.
SM_FAILED_CASES=()
run_case() {
	local rc
	note "$1"
	set +e
	(
		set -e
		"$2"
	)
	rc=$?
	set -e
	[ "$rc" = 0 ] || SM_FAILED_CASES+=("$1")
}

cases_done() {
	local c
	[ ${#SM_FAILED_CASES[@]} -eq 0 ] && return 0
	for c in "${SM_FAILED_CASES[@]}"; do
		echo "FAIL ($TNAME): case '$c'" >&2
	done
	fail "${#SM_FAILED_CASES[@]} case(s) failed"
}

# expect_refused_unchanged NAME TEXT COMMAND...: expect_refused TEXT COMMAND,
# then assert_unchanged NAME (a save_state) even when the exit status or the
# message was wrong, so a report shows both.  Stderr stays in $T/case.err.
expect_refused_unchanged() {
	local name=$1 rc
	shift
	set +e
	(
		set -e
		expect_refused "$@"
	)
	rc=$?
	set -e
	cp "$T/err" "$T/case.err"
	assert_unchanged "$name"
	[ "$rc" = 0 ] || fail "'${*:2}' was not refused as expected (above)"
}

# block_jobs DOM TARGET: 1 when libvirt reports a block job on the disk, 0 when
# it reports none.  virsh 9 prints the "Block Copy: [ 25 %]" line on stderr.
block_jobs() {
	local out
	out=$(virsh blockjob "$1" "$2" --info 2>&1) || { echo "error: $out"; return 0; }
	case "$out" in
	*"No current block job"*) echo 0 ;;
	*Block*) echo 1 ;;
	*) echo "unknown: $out" ;;
	esac
}

# ---- the test guest (tests/guest/build.sh) ----
# A Debian kernel and an initramfs running qemu-guest-agent, for what needs a
# guest OS: an agent that answers (fstrim, guest-exec), a shutdown from
# inside.  Built from Debian packages on first use and cached; a build that
# fails fails the test.

# guest_files: the guest's kernel and initrd in $T/guest (copied from root's
# cache, which QEMU's user cannot enter).
guest_files() {
	local dir
	[ ! -e "$T/guest/initrd.gz" ] || return 0
	[ "$(uname -m)" = x86_64 ] || sm_skip "the test guest is amd64; this host is $(uname -m)"
	dir=$(bash "$TOP/tests/guest/build.sh" 2>"$T/guest-build.log") || {
		cat "$T/guest-build.log" >&2
		fail "building the test guest failed (above; tests/guest/build.sh)"
	}
	mkdir -m 755 "$T/guest"
	cp "$dir/vmlinuz" "$dir/initrd.gz" "$dir/versions" "$T/guest/"
}

# guest_type: the domain type the test guest boots under: domain_type's, but
# TCG on a host whose KVM is PVM (kvm_pvm, a nested hypervisor without
# hardware virtualization): it runs a domain with no OS, but emulates a stock
# kernel's boot instruction by instruction (minutes, where TCG takes ~20 s).
# SM_GUEST_TYPE=kvm|qemu overrides.
guest_type() {
	if [ -n "${SM_GUEST_TYPE:-}" ]; then
		echo "$SM_GUEST_TYPE"
	elif [ -d /sys/module/kvm_pvm ]; then
		echo qemu
	else
		domain_type
	fi
}

# guest_domain NAME persistent|transient MOUNTS DISK...: define and start a
# domain that boots the test guest (256 MiB, one vCPU), with an agent channel,
# its serial console in $T/NAME.console, and each DISK
# (TARGET:PATH:FORMAT[:DISCARD], DISCARD 'unmap' unless 'ignore' is given).
# MOUNTS: the targets whose ext4 file system the guest mounts at /mnt/TARGET
# ("vda,vdb"; "-" for none).  The caller waits for the agent
# (guest_wait_agent).
guest_domain() {
	local name=$1 kind=$2 mounts=$3 spec target path fmt discard disks="" cmdline
	shift 3
	guest_files
	for spec in "$@"; do
		IFS=: read -r target path fmt discard <<<"$spec"
		disks+="<disk type='file' device='disk'>"
		disks+="<driver name='qemu' type='$fmt' discard='${discard:-unmap}'/>"
		disks+="<source file='$path'/><target dev='$target' bus='virtio'/></disk>"
	done
	cmdline="console=ttyS0 panic=-1 quiet"
	[ "$mounts" = - ] || cmdline+=" sm.mount=$mounts"
	: >"$T/$name.console"
	cat >"$T/$name.xml" <<XML
<domain type='$(guest_type)'>
  <name>$name</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$T/guest/vmlinuz</kernel><initrd>$T/guest/initrd.gz</initrd>
    <cmdline>$cmdline</cmdline></os>
  <features><acpi/></features>
  <on_reboot>destroy</on_reboot>
  <devices>$disks
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  <serial type='file'><source path='$T/$name.console'/><target port='0'/></serial>
  <video><model type='none'/></video><memballoon model='none'/></devices>
</domain>
XML
	SM_DOMAINS+=("$name")
	case "$kind" in
	persistent)
		virsh -q define "$T/$name.xml" >/dev/null
		virsh -q start "$name" >/dev/null ;;
	*)
		virsh -q create "$T/$name.xml" >/dev/null ;;
	esac
}

# guest_wait_agent DOM TIMEOUT: wait until the guest's agent answers a
# guest-ping; fail (showing the guest's console) after TIMEOUT seconds.
guest_wait_agent() {
	local dom=$1 timeout=$2 end
	end=$(($(date +%s) + timeout))
	while [ "$(date +%s)" -lt "$end" ]; do
		virsh -q qemu-agent-command "$dom" --timeout 1 '{"execute":"guest-ping"}' \
			>/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "--- console of $dom:" >&2
	cat "$T/$dom.console" >&2
	fail "the guest agent of '$dom' did not answer in $timeout s"
}

# guest_exec DOM COMMAND [TIMEOUT]: run COMMAND with /bin/sh -c in the guest
# through its agent (guest-exec, guest-exec-status); print its output, and
# return its exit status.  Fails the test when the agent does not run it or
# it is not done in TIMEOUT seconds (default 120).
guest_exec() {
	local dom=$1 cmd=$2 timeout=${3:-120} req out pid end
	req=$("$SM_PY" -c 'import json, sys; print(json.dumps({"execute": "guest-exec",
"arguments": {"path": "/bin/sh", "arg": ["-c", sys.argv[1]], "capture-output": True}}))' "$cmd")
	out=$(virsh -q qemu-agent-command "$dom" "$req") || fail "guest-exec of '$cmd' in '$dom' failed"
	pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$pid" ] || fail "guest-exec of '$cmd' in '$dom' answered '$out'"
	end=$(($(date +%s) + timeout))
	while :; do
		out=$(virsh -q qemu-agent-command "$dom" \
			"{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}") ||
			fail "guest-exec-status of '$cmd' in '$dom' failed"
		case "$out" in *'"exited":true'*) break ;; esac
		[ "$(date +%s)" -lt "$end" ] || fail "'$cmd' in '$dom' still runs after $timeout s"
		sleep 0.1
	done
	"$SM_PY" -c 'import base64, json, sys
r = json.loads(sys.argv[1])["return"]
sys.stdout.write(base64.b64decode(r.get("out-data", "")).decode(errors="replace"))
sys.stderr.write(base64.b64decode(r.get("err-data", "")).decode(errors="replace"))
sys.exit(r.get("exitcode", 128 + r.get("signal", 0)))' "$out"
}

# allocated PATH: the bytes a file holds on its storage (holes not counted).
allocated() {
	echo $(($(stat -c '%b * %B' "$1")))
}
