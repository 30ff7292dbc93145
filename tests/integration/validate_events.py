#!/usr/bin/python3
"""validate_events.py: check snapmove's --json output against docs/events.schema.json.

  validate_events.py events FILE...         every line of each FILE is one JSON
                                             object that is a valid event
  validate_events.py document NAME FILE...  each FILE holds one JSON document
                                             valid as definitions/NAME_document
                                             (NAME: list, status, chain, dry_run, rebalance_dry_run)

Exit 0 when all is valid, 1 when anything is not (each problem on stderr with
its file and line), 2 on a usage error.  Uses python3-jsonschema (Debian).
"""
import json
import os
import sys

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.environ.get("SNAPMOVE_SCHEMA",
                        os.path.join(HERE, "..", "..", "docs", "events.schema.json"))


def load_schema():
    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def validator(schema, ref=None):
    if ref is None:
        return jsonschema.Draft7Validator(schema)
    if ref not in schema["definitions"]:
        raise SystemExit("validate_events.py: no definition '%s' in %s" % (ref, SCHEMA))
    sub = {"$ref": "#/definitions/" + ref, "definitions": schema["definitions"]}
    return jsonschema.Draft7Validator(sub)


def describe(err):
    """The deepest, most specific messages of a validation error."""
    where = "/".join(str(p) for p in err.absolute_path) or "(top)"
    msgs = ["%s: %s" % (where, err.message)]
    # oneOf over the event kinds: report why the branch of the right kind failed.
    for sub in sorted(err.context or [], key=lambda e: len(list(e.relative_schema_path))):
        if sub.validator == "const" and list(sub.relative_path) == ["event"]:
            continue
        msgs.append("  %s: %s" % ("/".join(str(p) for p in sub.absolute_path) or "(top)",
                                  sub.message))
    return "\n".join(msgs[:8])


def check_events(v, path, by_kind):
    bad = 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        print("%s: the last line does not end with a newline" % path, file=sys.stderr)
        bad += 1
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            print("%s:%d: not JSON (%s): %.200s" % (path, n, e, line), file=sys.stderr)
            bad += 1
            continue
        errors = list(v.iter_errors(obj))
        if errors:
            bad += 1
            print("%s:%d: invalid event: %.300s" % (path, n, line), file=sys.stderr)
            # The schema's oneOf says only "none matched": the definition of the
            # event's own kind says why.
            kind = obj.get("event") if isinstance(obj, dict) else None
            if isinstance(kind, str) and kind in by_kind:
                errors = list(by_kind[kind].iter_errors(obj)) or errors
            for e in errors:
                print("  " + describe(e).replace("\n", "\n  "), file=sys.stderr)
    return bad


def check_document(v, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        obj = json.loads(text)
    except ValueError as e:
        print("%s: not one JSON document (%s)" % (path, e), file=sys.stderr)
        return 1
    errors = list(v.iter_errors(obj))
    for e in errors:
        print("%s: %s" % (path, describe(e)), file=sys.stderr)
    return 1 if errors else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "events":
        schema = load_schema()
        v = validator(schema)
        by_kind = {k: validator(schema, k + "_event")
                   for k in ("phase", "progress", "warning", "hook", "result", "rebalance_plan",
                             "rebalance_result")}
        bad = sum(check_events(v, p, by_kind) for p in argv[1:])
    elif len(argv) >= 3 and argv[0] == "document":
        v = validator(load_schema(), argv[1] + "_document")
        bad = sum(check_document(v, p) for p in argv[2:])
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
