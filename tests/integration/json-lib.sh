# json-lib.sh: checking snapmove's --json output in the integration tests;
# sourced after lib.sh.  The schema is docs/events.schema.json, checked by
# validate_events.py with Debian's python3-jsonschema (Debian's python3 first:
# another python3 on PATH may not have it).

# SM_PY and SM_VALIDATE come from lib.sh.

# assert_events FILE...: every line of each FILE is one valid event (and
# there is at least one line).
assert_events() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || fail "'$f' holds no events"
	done
	"$SM_PY" "$SM_VALIDATE" events "$@" || fail "events in $* do not match the schema (above)"
}

# assert_document NAME FILE...: each FILE is one valid NAME document (list,
# status, chain, dry_run) and nothing else.
assert_document() {
	local name=$1
	shift
	"$SM_PY" "$SM_VALIDATE" document "$name" "$@" ||
		fail "$* is not a valid '$name' document (above)"
}

# jev FILE EXPR: evaluate the Python expression EXPR over the events of FILE
# (a list "events" of dicts, one per line; "ev(kind)" the events of one kind;
# "chain(c)" a chain [{path, format}] as live_chain prints it) and print the
# result, a list one item per line.
jev() {
	"$SM_PY" - "$1" "$2" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ev(kind):
    return [e for e in events if e["event"] == kind]
def chain(c):
    return "\n".join(i["path"] + " " + i["format"] for i in c)
r = eval(sys.argv[2])
for x in (r if isinstance(r, list) else [r]):
    print(x if isinstance(x, str) else json.dumps(x))
PY
}

# jdoc FILE EXPR: the same over one JSON document, named "doc".
jdoc() {
	"$SM_PY" - "$1" "$2" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
def chain(c):
    return "\n".join(i["path"] + " " + i["format"] for i in c)
r = eval(sys.argv[2])
for x in (r if isinstance(r, list) else [r]):
    print(x if isinstance(x, str) else json.dumps(x))
PY
}
