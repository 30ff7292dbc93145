# rebalance-lib.sh: helpers for the 'snapmove rebalance' tests (t007*),
# sourced after lib.sh: storages as small tmpfs mounts, their free space as
# statvfs says it, the plan a rebalance printed, and the journal's view of
# the moves.

# rb_storages NAME:SIZE...: a tmpfs of SIZE mounted on $T/NAME, mode 0755 so
# QEMU can use it.  Call it outside run_case (it adds to SM_MOUNTS).
rb_storages() {
	local m dir
	for m in "$@"; do
		dir=$T/${m%%:*}
		mkdir -m 755 "$dir"
		mount -t tmpfs -o "size=${m#*:}" tmpfs "$dir"
		chmod 755 "$dir"
		SM_MOUNTS+=("$dir")
	done
}

# free_bytes DIR: the bytes available to an unprivileged writer, as statvfs
# (f_bavail * f_frsize) says; what snapmove reads.
free_bytes() {
	local a s
	read -r a s < <(stat -f -c '%a %S' "$1")
	echo $((a * s))
}

# top_image DOM TARGET: the active image of a disk, live.
top_image() {
	live_chain "$1" "$2" | awk 'NR == 1 { print $1 }'
}

# rb_sql SQL: one query against this test's journal, '|' between columns.
rb_sql() {
	sqlite3 -batch "$DB" "$1"
}

# jobs_of DOM TARGET [STATE]: how many jobs the journal holds for a disk.
jobs_of() {
	local where="job.domain_name = '$1' AND disk.target = '$2'"
	[ -z "${3:-}" ] || where+=" AND job.state = '$3'"
	rb_sql "SELECT count(*) FROM job JOIN disk ON disk.job_id = job.id WHERE $where"
}

# rb_plan FILE: the plan a human rebalance printed in FILE, as JSON on stdout:
# {"moves": [{seq, domain, disk, from, to, bytes, offline}], "storages":
# [{name, size, free_before, free_after}], "nmoves", "bytes"}, sizes in bytes
# as printed (0.1 of a unit).
rb_plan() {
	python3 - "$1" <<'PY'
import json, re, sys
units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
def size(num, unit):
    return float(num) * units[unit]
moves, storages, total, nmoves = [], [], None, None
section = None
for line in open(sys.argv[1]):
    f = line.split()
    if not f:
        continue
    if f[:2] == ["#", "DOMAIN"]:
        section = "moves"
        continue
    if f[:2] == ["STORAGE", "SIZE"]:
        section = "storages"
        continue
    m = re.match(r"^(\d+) moves?, ([\d.]+) (\S+) in all$", line.strip())
    if m:
        nmoves, total = int(m.group(1)), size(m.group(2), m.group(3))
        section = None
        continue
    if section == "moves" and f[0].isdigit():
        moves.append({"seq": int(f[0]), "domain": f[1], "disk": f[2], "from": f[3],
                      "to": f[4], "bytes": size(f[5], f[6]), "offline": "(offline)" in f})
    elif section == "storages" and len(f) == 7:
        storages.append({"name": f[0], "size": size(f[1], f[2]),
                         "free_before": size(f[3], f[4]), "free_after": size(f[5], f[6])})
json.dump({"moves": moves, "storages": storages, "nmoves": nmoves, "bytes": total},
          sys.stdout)
PY
}

# rb_check_plan PLAN_JSON TOLERANCE_BYTES DIR...: the plan's figures against
# statvfs now: each storage's free space before is what statvfs says (within
# TOLERANCE), and its free space after is before, plus the bytes moved out,
# minus the bytes moved in (within the printed rounding); the moves add up.
rb_check_plan() {
	local plan=$1 tol=$2 d frees=""
	shift 2
	for d in "$@"; do
		frees+="$d=$(free_bytes "$d") "
	done
	python3 - "$plan" "$tol" $frees <<'PY' || fail "the plan does not match statvfs (above)"
import json, sys
plan = json.load(open(sys.argv[1]))
tol = float(sys.argv[2])
statvfs = dict(a.split("=") for a in sys.argv[3:])
round_err = 0.051 * (1 << 20)   # printed to 0.1 MiB
bad = []
st = {s["name"]: s for s in plan["storages"]}
if sorted(st) != sorted(statvfs):
    bad.append("storages %s, expected %s" % (sorted(st), sorted(statvfs)))
for name, free in statvfs.items():
    s = st.get(name)
    if not s:
        continue
    if abs(s["free_before"] - int(free)) > tol + round_err:
        bad.append("%s: free before %d, statvfs says %s" % (name, s["free_before"], free))
    delta = sum(m["bytes"] for m in plan["moves"] if m["from"] == name) - \
        sum(m["bytes"] for m in plan["moves"] if m["to"] == name)
    n = 2 + sum(1 for m in plan["moves"] if name in (m["from"], m["to"]))
    if abs(s["free_after"] - (s["free_before"] + delta)) > n * round_err:
        bad.append("%s: free after %d, expected %d + %d" % (name, s["free_after"],
                   s["free_before"], delta))
if plan["nmoves"] != len(plan["moves"]):
    bad.append("%s moves announced, %d in the table" % (plan["nmoves"], len(plan["moves"])))
if abs(plan["bytes"] - sum(m["bytes"] for m in plan["moves"])) > (2 + len(plan["moves"])) * round_err:
    bad.append("%s bytes announced, the moves add up to %d" %
               (plan["bytes"], sum(m["bytes"] for m in plan["moves"])))
for b in bad:
    print("plan: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# pyjson FILE EXPR: evaluate EXPR with "doc" the JSON document in FILE; print it.
pyjson() {
	python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
r = eval(sys.argv[2])
print(json.dumps(r) if isinstance(r, (dict, list, bool)) or r is None else r)' "$1" "$2"
}

# ev_mark: how many lines the test's events file holds now.  ev_since MARK
# FILE: the lines written to it after MARK (the events of the commands run
# since, moves of a rebalance without --json included), into FILE.
ev_mark() {
	wc -l <"$SNAPMOVE_EVENTS_FILE"
}

ev_since() {
	tail -n +"$(($1 + 1))" "$SNAPMOVE_EVENTS_FILE" >"$2"
}

# rb_result EVENTS STATUS EXIT MOVES [REBALANCE]: the events of one run of a
# rebalance (a file) end with its one rebalance_result event, saying STATUS
# and EXIT, for rebalance REBALANCE (default the journal's newest; "null"
# for a plan with no move, whose moves must be empty), with MOVES
# ("SEQ:STATUS ..." in seq order) and each move's domain, disk and job as
# the journal's rebalance_move has them.  A move "done" names a done job of
# its domain, a "planned" one no job, a "failed" one a failed job or none
# (refused before it had one); every job with a result event in EVENTS is
# one of these moves', ended as the move says.
rb_result() {
	local ev=$1 status=$2 exit=$3 moves=$4 id=${5:-}
	[ -n "$id" ] || id=$(rb_sql 'SELECT max(id) FROM rebalance')
	if [ "$id" = null ]; then
		: >"$T/rb-result.moves"
	else
		rb_sql "SELECT seq, domain, disk, coalesce(job_id, 0), state FROM rebalance_move
			WHERE rebalance_id = $id ORDER BY seq" >"$T/rb-result.moves"
	fi
	rb_sql "SELECT id, domain_name, state FROM job" >"$T/rb-result.jobs"
	"$SM_PY" - "$ev" "$status" "$exit" "$moves" "$id" "$T/rb-result.moves" \
		"$T/rb-result.jobs" <<'PY' || fail "the rebalance_result event of $ev (above)"
import json, sys
path, status, exit_, want, rid, moves_f, jobs_f = sys.argv[1:]
events = [json.loads(l) for l in open(path) if l.strip()]
journal = [l.rstrip("\n").split("|") for l in open(moves_f) if l.strip()]
jobs = {int(l.split("|")[0]): l.rstrip("\n").split("|")[1:] for l in open(jobs_f) if l.strip()}
bad = []
rr = [e for e in events if e["event"] == "rebalance_result"]
if len(rr) != 1:
    bad.append("%d rebalance_result events, expected 1" % len(rr))
elif events[-1] is not rr[0]:
    bad.append("the rebalance_result is not the last event: %s" % json.dumps(events[-1]))
if rr:
    r = rr[-1]
    got = {"status": r["status"], "exit": r["exit"], "rebalance": r["rebalance"]}
    exp = {"status": status, "exit": int(exit_), "rebalance": None if rid == "null" else int(rid)}
    if got != exp:
        bad.append("%s, expected %s" % (got, exp))
    ms = r["moves"]
    if " ".join("%d:%s" % (m["seq"], m["status"]) for m in ms) != want:
        bad.append("moves %s, expected %s" % (" ".join("%d:%s" % (m["seq"], m["status"])
                                                       for m in ms), want))
    rows = [[str(m["seq"]), m["domain"], m["disk"], str(m["job"] or 0), m["status"]] for m in ms]
    if rows != journal:
        bad.append("moves %s, the journal has %s" % (rows, journal))
    for m in ms:
        job = jobs.get(m["job"]) if m["job"] is not None else None
        if m["job"] is not None and (job is None or job[0] != m["domain"]):
            bad.append("move %d: job %s is not a job of %s: %s" % (m["seq"], m["job"],
                                                                   m["domain"], job))
        elif m["status"] == "done" and (job is None or job[1] != "done"):
            bad.append("move %d is done, its job %s is %s" % (m["seq"], m["job"], job))
        elif m["status"] == "planned" and m["job"] is not None:
            bad.append("move %d is planned, with job %s" % (m["seq"], m["job"]))
        elif m["status"] == "failed" and job is not None and job[1] != "failed":
            bad.append("move %d failed, its job %s is %s" % (m["seq"], m["job"], job))
    by_job = {m["job"]: m for m in ms if m["job"] is not None}
    for e in events:
        if e["event"] != "result" or e["job"] is None:
            continue
        m = by_job.get(e["job"])
        if m is None:
            bad.append("job %s has a result event and is no move's" % e["job"])
        elif (e["status"] == "done") != (m["status"] == "done"):
            bad.append("job %s ended %s, its move says %s" % (e["job"], e["status"], m["status"]))
for b in bad:
    print("rebalance_result: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# rb_no_result EVENTS: no rebalance_result event in EVENTS (a dry run, a
# refusal, a killed rebalance).
rb_no_result() {
	[ "$(jev "$1" 'len(ev("rebalance_result"))')" = 0 ] ||
		{ cat "$1" >&2; fail "a rebalance_result event in $1"; }
}

# rb_four_domains: storages s1 (300M), s2 (400M) and s3 (500M) as $S1..$S3,
# and four transient domains on s1 in DOMS: p1..p4, with 24, 20, 16 and 12 MiB
# of pattern 0x11..0x44 at 0 (sizes differ so the drain order, largest first,
# is known) and a guest write of 0xee at 100M.
rb_four_domains() {
	local x dom
	rb_storages s1:300M s2:400M s3:500M
	S1=$T/s1 S2=$T/s2 S3=$T/s3
	DOMS=()
	for x in 1:24 2:20 3:16 4:12; do
		dom=$(dom_name "p${x%%:*}")
		DOMS+=("$dom")
		new_image "$S1/p${x%%:*}.qcow2" qcow2 128M "0x${x%%:*}${x%%:*}" 0 "${x#*:}M"
		make_domain "$dom" transient "vda:$S1/p${x%%:*}.qcow2:qcow2"
		guest_write "$dom" vda 0xee 100M 64k
	done
}

# rb_case_data: each of rb_four_domains' domains runs on a one-image chain
# holding its data (the domains are destroyed to read it).
rb_case_data() {
	local i=1 dom top fmt
	for dom in "${DOMS[@]}"; do
		live_chain "$dom" vda >"$T/chain.$i"
		virsh -q destroy "$dom" >/dev/null
		read -r top fmt <"$T/chain.$i"
		assert_eq "$(wc -l <"$T/chain.$i")" 1 "images in $dom's chain"
		check_pattern "$top" "$fmt" "0x$i$i" 0 "$(((7 - i) * 4))M"
		check_pattern "$top" "$fmt" 0xee 100M 64k
		i=$((i + 1))
	done
}
