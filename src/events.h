/* events.h: machine-readable output (--json): one JSON object per line on
 * stdout, for engines that drive snapmove.  docs/events.md documents every
 * event; docs/events.schema.json is the schema the tests check each line
 * against.  When --json is off every call here does nothing.
 *
 * With SNAPMOVE_EVENTS_FILE set, the same lines are appended to that file too.
 *
 * Human text goes to sm_human(): stdout normally, stderr under --json, so
 * stdout stays parseable.
 */
#ifndef SM_EVENTS_H
#define SM_EVENTS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

void sm_events_enable(bool on);
/* Whether stdout carries JSON (--json). */
bool sm_events_enabled(void);
/* Open $SNAPMOVE_EVENTS_FILE, when set, to append every event to as well,
 * with or without --json: a machine log beside the human display. */
int sm_events_open_file(void);
/* Whether events are produced at all: --json or the events file. */
bool sm_events_wanted(void);
/* Whether a "result" event went out (a command emits one at most). */
bool sm_event_result_sent(void);
/* Where human-readable results go: stdout, or stderr under --json; nowhere
 * under --quiet (sm_human_quiet), which leaves only the errors. */
FILE *sm_human(void);
void sm_human_quiet(bool on);
bool sm_human_is_quiet(void);

/* Emit obj (taking ownership) as one line, adding "time". */
void sm_event_emit(const char *type, struct json_object *obj);
void sm_event_phase(long long job, const char *phase, const char *status, const char *error);
/* At most ten a second per disk and kind, plus the last one. */
void sm_event_progress(long long job, const char *disk, const char *kind, const char *image,
		       unsigned long long done, unsigned long long total, double rate);
void sm_event_warning(long long job, const char *disk, const char *message);
void sm_event_hook(long long job, const char *point, const char *hook, int exit_status,
		   bool timed_out, double seconds);
/* A provisioner ran for job's device (its number in the journal): action
 * create, extend or remove; arg the name (create) or the device's path. */
void sm_event_provision(long long job, const char *action, long long device, const char *arg,
			int exit_status, bool timed_out, double seconds);

/* Print a whole JSON document (list, status, chain, dry run) on stdout. */
void sm_json_print(struct json_object *doc);

#endif
