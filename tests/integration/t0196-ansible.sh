#!/usr/bin/env bash
# The Ansible module (contrib/ansible/library/snapmove.py), run by Debian's
# ansible-core against localhost (connection local) with this test's binary
# and journal:
# - state moved: check mode plans and changes nothing; the first run moves
#   the disk (changed, the job, the chains), the second reports changed false
#   and makes no job; a job that failed half-way fails the task with the
#   'snapmove resume' command and, once resumed, the task is unchanged;
# - refused (no such domain, a missing destination): failed, snapmove's own
#   error in the message, nothing changed;
# - state rebalanced: a drain moves the disk (changed), the second run finds
#   the goal met (changed false, no new rebalance).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rebalance-lib.sh"

export ANSIBLE_LIBRARY=$TOP/contrib/ansible/library
export ANSIBLE_HOME=$T/ansible ANSIBLE_LOCAL_TEMP=$T/ansible/tmp
export ANSIBLE_REMOTE_TEMP=$T/ansible/tmp ANSIBLE_CALLBACKS_ENABLED=tree
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0
# ansible-core alone, as scripts/setup.sh installs it: no collection (Debian's
# 'ansible' package, when present, is not used).
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_COLLECTIONS_PATH=$T/ansible/collections
mkdir -m 700 "$T/ansible"

# playbook NAME TASK-ARGS: write $T/NAME.yml, one task of the module on
# localhost with this test's binary and journal, registered as r.
playbook() {
	cat >"$T/$1.yml" <<YML
- hosts: all
  gather_facts: false
  tasks:
    - name: snapmove
      snapmove:
        binary: "$SNAPMOVE"
        db: "$DB"
$(sed 's/^/        /' <<<"$2")
YML
}

# play NAME [ANSIBLE-PLAYBOOK OPTIONS]: run $T/NAME.yml; the task's result
# (ansible-core's tree callback) in $T/NAME.json (a new one each run), the
# output in $T/NAME.out, its exit status returned.
play() {
	local name=$1 rc=0
	shift
	rm -rf "$T/$name.tree" "$T/$name.json"
	ANSIBLE_CALLBACK_TREE_DIR=$T/$name.tree ansible-playbook -i localhost, -c local \
		-e ansible_python_interpreter="$SM_PY" "$@" "$T/$name.yml" \
		>"$T/$name.out" 2>"$T/$name.err" || rc=$?
	cp "$T/$name.tree/localhost" "$T/$name.json" 2>/dev/null || true
	return $rc
}

# task NAME EXPR: EXPR over r, the task's result on localhost in $T/NAME.json.
task() {
	"$SM_PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$T/$1.json" "$2" ||
		{ cat "$T/$1.out" "$T/$1.err" >&2; fail "no task result in $T/$1.json"; }
}

assert_task() {  # NAME EXPR WANT
	local got
	got=$(task "$1" "$2")
	[ "$got" = "$3" ] || { cat "$T/$1.out" "$T/$1.json" >&2; fail "$1: $2 is '$got', expected '$3'"; }
}

jobs_count() {
	if [ -e "$DB" ]; then sqlite3 -batch "$DB" 'SELECT count(*) FROM job'; else echo 0; fi
}

mkdir -m 755 "$T/src" "$T/dst" "$T/src2" "$T/dst2"
new_image "$T/src/disk.qcow2" qcow2 64M 0x11 0 1M
dom=$(dom_name)
make_domain "$dom" transient "vda:$T/src/disk.qcow2:qcow2"
new_image "$T/src2/disk.qcow2" qcow2 64M 0x22 0 1M
dom2=$(dom_name b)
make_domain "$dom2" transient "vda:$T/src2/disk.qcow2:qcow2"
rb_storages s1:100M s2:100M
new_image "$T/s1/r.qcow2" qcow2 64M 0x33 0 2M
domr=$(dom_name r)
make_domain "$domr" transient "vda:$T/s1/r.qcow2:qcow2"

case_move() {
	playbook move "domain: $dom
dest: $T/dst"
	# Check mode: the dry run's plan, nothing done.
	save_state check "$dom" vda "$T/src" "$T/dst"
	play move --check || fail "ansible-playbook --check exited $?"
	assert_task move 'r["changed"]' true
	assert_task move 'r["plan"]["dry_run"]' true
	assert_task move 'r["chains_after"]["vda"]' "[\"$T/dst/disk.qcow2\"]"
	assert_unchanged check
	assert_eq "$(jobs_count)" 0 "jobs after check mode"

	play move || { cat "$T/move.out" "$T/move.err" >&2; fail "ansible-playbook exited $?"; }
	assert_task move 'r["changed"]' true
	assert_task move 'r["msg"].startswith("moved vda of ")' true
	assert_task move 'r["rc"]' 0
	assert_task move 'r["status"]' "done"
	assert_task move 'r["job"]' 1
	assert_task move 'r["chains_before"]' "{\"vda\": [\"$T/src/disk.qcow2\"]}"
	assert_task move 'r["chains_after"]' "{\"vda\": [\"$T/dst/disk.qcow2\"]}"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2" "live chain after the play"
	expect_exit 0 sm status 1
	assert_contains "$T/out" "job 1: done, phase done"

	# Again, and in check mode: already there, no job.
	sm list >"$T/list.before"
	play move || fail "the second ansible-playbook exited $?"
	assert_task move 'r["changed"]' false
	assert_task move 'r["skipped_disks"]' '["vda"]'
	assert_task move '"job" in r' false
	assert_task move 'r["chains_after"]' "{\"vda\": [\"$T/dst/disk.qcow2\"]}"
	play move --check || fail "the third ansible-playbook exited $?"
	assert_task move 'r["changed"]' false
	sm list >"$T/list.after"
	diff -u "$T/list.before" "$T/list.after" >&2 || fail "the unchanged play made a job"
	assert_eq "$(jobs_count)" 1 "jobs after the unchanged plays"
	assert_eq "$(live_chain "$dom" vda)" "$T/dst/disk.qcow2 qcow2" "live chain"
}

case_failed_half_way() {
	make_write_hook "$dom2" vda copy:fail:0
	playbook half "domain: $dom2
dest: $T/dst2"
	if SNAPMOVE_TEST_HOOK=$T/hook play half; then
		fail "ansible-playbook succeeded with a move that failed"
	fi
	local job
	job=$(jobs_count)
	assert_task half 'r["changed"]' true
	assert_task half 'r["rc"]' 1
	assert_task half 'r["status"]' failed
	assert_task half 'r["job"]' "$job"
	assert_task half 'r["hint"]' "snapmove resume $job"
	assert_task half '"test hook fails copy" in r["msg"]' true
	assert_task half "\"run 'snapmove resume $job'\" in r[\"msg\"]" true
	expect_exit 0 sm resume "$job"
	play half || fail "ansible-playbook after the resume exited $?"
	assert_task half 'r["changed"]' false
	assert_eq "$(jobs_count)" "$job" "jobs after the play that followed the resume"
	assert_eq "$(live_chain "$dom2" vda)" "$T/dst2/disk.qcow2 qcow2" "live chain after resume"
}

case_refused() {
	save_state refused "$dom" vda "$T/src" "$T/dst"
	playbook nosuch "domain: nosuch-$$
dest: $T/dst"
	if play nosuch; then fail "ansible-playbook succeeded for a domain that does not exist"; fi
	assert_task nosuch 'r["changed"]' false
	assert_task nosuch 'r["rc"]' 3
	assert_task nosuch "\"no domain named 'nosuch-$$'\" in r[\"msg\"]" true
	assert_task nosuch "\"no domain named 'nosuch-$$'\" in r[\"error\"]" true
	# Refused by the move itself (chain found the disk): the result's error.
	playbook nodest "domain: $dom
dest: $T/missing"
	if play nodest; then fail "ansible-playbook succeeded with a missing destination"; fi
	assert_task nodest 'r["changed"]' false
	assert_task nodest 'r["rc"]' 3
	assert_task nodest 'r["status"]' refused
	assert_task nodest "\"'$T/missing'\" in r[\"error\"] and r[\"error\"] in r[\"msg\"]" true
	assert_unchanged refused
}

case_rebalance() {
	playbook drain "state: rebalanced
storages: [\"$T/s1\", \"$T/s2\"]
drain: \"$T/s1\"
include: [\"$domr\"]"
	play drain || { cat "$T/drain.out" "$T/drain.err" >&2; fail "ansible-playbook (drain) exited $?"; }
	assert_task drain 'r["changed"]' true
	assert_task drain 'r["rc"]' 0
	assert_task drain 'r["status"]' "done"
	assert_task drain '[(m["domain"], m["status"]) for m in r["moves"]]' "[[\"$domr\", \"done\"]]"
	assert_task drain 'len(r["plan"]["moves"])' 1
	local rb
	rb=$(task drain 'r["rebalance"]')
	assert_eq "$(top_image "$domr" vda)" "$T/s2/r.qcow2" "the drained domain's image"
	play drain || fail "the second ansible-playbook (drain) exited $?"
	assert_task drain 'r["changed"]' false
	assert_task drain 'r["plan"]["moves"]' '[]'
	assert_task drain '"rebalance" in r' false
	assert_eq "$(rb_sql 'SELECT count(*) FROM rebalance')" 1 "rebalances after the second play"
	assert_eq "$(rb_sql 'SELECT max(id) FROM rebalance')" "$rb" "the rebalance's number"
}

run_case "moved: check mode, changed, then unchanged" case_move
run_case "a move that failed half-way: failed, with the resume command" case_failed_half_way
run_case "refused: failed with snapmove's error, nothing changed" case_refused
run_case "rebalanced: drained, then the goal is met" case_rebalance
cases_done
