/* report.c: renders the results the commands get back (report.h): text for
 * people, JSON for engines.  It decides nothing: what happened is in the
 * result the job engine or the rebalance filled.
 */
#include "report.h"
#include "events.h"
#include "util.h"

#include <stdint.h>

/* ---- chains ---- */

static const char *or_null(const char *s)
{
	return s ? s : "(null)";
}

/* " a (qcow2) <- b (raw)"; streamed: the first image is the overlay the
 * original image was streamed into. */
static void put_chain(FILE *f, const struct sm_result_chain *ch, bool streamed)
{
	for (size_t k = 0; k < ch->n; k++)
		fprintf(f, "%s %s (%s%s)", k ? " <-" : "", or_null(ch->images[k].path),
			or_null(ch->images[k].format),
			streamed && k == 0 ? ", the original image streamed into it" : "");
}

/* "  vda before: a (qcow2) <- b (raw)" */
static void put_chain_line(FILE *f, const char *target, const char *label,
			   const struct sm_result_chain *ch, bool streamed)
{
	fprintf(f, "  %s %s:", target, label);
	put_chain(f, ch, streamed);
	fprintf(f, "\n");
}

static struct json_object *chain_json(const struct sm_result_chain *ch)
{
	struct json_object *a = json_object_new_array();

	for (size_t k = 0; k < ch->n; k++) {
		struct json_object *img = json_object_new_object();

		json_object_object_add(img, "path", json_object_new_string(
					       ch->images[k].path ? ch->images[k].path : ""));
		json_object_object_add(img, "format", json_object_new_string(
					       ch->images[k].format ? ch->images[k].format : ""));
		json_object_array_add(a, img);
	}
	return a;
}

/* ---- a job ---- */

static void put_kept(FILE *f, const struct sm_job_result *r)
{
	for (size_t i = 0; i < r->nkept; i++)
		fprintf(f, "  kept %s (the job's %s, not deleted: see the warning above); delete "
			"it by hand if nothing needs it\n", r->kept[i].path, r->kept[i].role);
}

void sm_report_outcome(FILE *f, const struct sm_job_result *r)
{
	switch (r->verb) {
	case SM_JOB_VERB_MOVE:
		fprintf(f, "moved domain %s in %.1f s (job %lld)%s\n", r->domain, r->seconds, r->job,
			r->finished_offline ? "; finished offline: the domain went down during "
					      "the move" : "");
		if (r->trimmed)
			fprintf(f, "trimmed the guest's file systems (guest agent)\n");
		else if (r->trim)
			fprintf(f, "warning: the guest's file systems were not trimmed: %s; the "
				"move is done\n", r->trim_error ? r->trim_error : "unknown");
		put_kept(f, r);
		if (!r->now_read)
			break;
		for (size_t i = 0; i < r->ndisks; i++) {
			put_chain_line(f, r->disks[i].target, "before", &r->disks[i].before, false);
			if (r->disks[i].has_now)
				put_chain_line(f, r->disks[i].target, "now   ", &r->disks[i].now,
					       false);
		}
		break;
	case SM_JOB_VERB_RESUME:
		fprintf(f, "finished job %lld of domain %s\n", r->job, r->domain);
		for (size_t i = 0; i < r->ndisks; i++)
			put_chain_line(f, r->disks[i].target, "now", &r->disks[i].after, false);
		break;
	case SM_JOB_VERB_ABORT:
		fprintf(f, "aborted job %lld of domain %s\n", r->job, r->domain);
		for (size_t i = 0; i < r->ndisks; i++)
			put_chain_line(f, r->disks[i].target, "now", &r->disks[i].after,
				       r->disks[i].streamed);
		put_kept(f, r);
		break;
	}
}

void sm_report_job_done(const struct sm_job_result *r)
{
	sm_report_outcome(sm_human(), r);
}

static const char *where_text(enum sm_result_where w)
{
	switch (w) {
	case SM_WHERE_MOVED:
		return "moved; the destination chain";
	case SM_WHERE_DST_OVERLAY:
		return "the newest writes are in the destination overlay, over the destination "
		       "chain";
	case SM_WHERE_PIVOTING:
		return "a pivot was under way: the newest writes are in the destination overlay, "
		       "over the destination chain (only if that pivot never happened are they "
		       "in the source overlay instead)";
	case SM_WHERE_SRC_OVERLAY:
		return "the newest writes are in the source overlay, over the original chain";
	case SM_WHERE_ORIGINAL:
		return "the original chain, unchanged";
	}
	return "";
}

static void put_gone(FILE *f, const struct sm_job_result *r)
{
	fprintf(f, "domain '%s' (%s) no longer exists: a transient domain that was shut down "
		"or destroyed has no definition to rewrite.  Its data is here:\n", r->domain,
		r->uuid);
	for (size_t i = 0; i < r->ndisks; i++) {
		fprintf(f, "  %s: %s\n   ", r->disks[i].target, where_text(r->disks[i].where));
		put_chain(f, &r->disks[i].after, false);
		fprintf(f, "\n");
	}
	fprintf(f, "Start a domain named '%s' on those files, then run 'snapmove resume %lld' "
		"or 'snapmove abort %lld'.\n", r->domain, r->job, r->job);
}

static void put_dry_run(FILE *f, const struct sm_job_result *r)
{
	char b[32], n[32], a[32];
	unsigned long long bytes = 0;

	fprintf(f, "dry run: nothing was changed\n");
	fprintf(f, "domain %s (%s), %s\n", r->domain, r->uuid,
		r->persistent ? "persistent" : "transient");
	for (size_t i = 0; i < r->ndisks; i++) {
		put_chain_line(f, r->disks[i].target, "before", &r->disks[i].before, false);
		put_chain_line(f, r->disks[i].target, "after ", &r->disks[i].after, false);
		bytes += r->disks[i].bytes;
	}
	for (size_t i = 0; i < r->ndisks; i++)
		if (r->disks[i].kept)
			fprintf(f, "  %s keeps '%s' (and what is below it) where it is: it is also "
				"used by %s (--copy-shared copies it)\n", r->disks[i].target,
				r->disks[i].kept, r->disks[i].kept_user);
	fprintf(f, "bytes to copy: %s\n", sm_format_bytes(bytes, b, sizeof(b)));
	fprintf(f, "destination %s: needs %s, %s free\n", r->dest,
		sm_format_bytes(r->dest_needs, n, sizeof(n)),
		sm_format_bytes(r->dest_free, a, sizeof(a)));
	if (r->overlay_dir)
		fprintf(f, "the guest's writes during the move go to %s%s\n", r->overlay_dir,
			sm_str_eq(r->overlay_dir, r->dest) ? " (the destination)" : "");
	if (r->overlay_provisioner)
		fprintf(f, "the guest's writes during the move go to block devices that '%s' "
			"makes, grown as the guest writes\n", r->overlay_provisioner);
}

static void print_dry_run_json(const struct sm_job_result *r)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *disks = json_object_new_array();
	unsigned long long bytes = 0;

	json_object_object_add(doc, "dry_run", json_object_new_boolean(true));
	json_object_object_add(doc, "domain", json_object_new_string(r->domain));
	json_object_object_add(doc, "domain_uuid", json_object_new_string(r->uuid));
	json_object_object_add(doc, "persistent", json_object_new_boolean(r->persistent));
	json_object_object_add(doc, "dest", json_object_new_string(r->dest));
	for (size_t i = 0; i < r->ndisks; i++) {
		const struct sm_result_disk *rd = &r->disks[i];
		struct json_object *d = json_object_new_object();

		bytes += rd->bytes;
		json_object_object_add(d, "target", json_object_new_string(rd->target));
		json_object_object_add(d, "before", chain_json(&rd->before));
		json_object_object_add(d, "after", chain_json(&rd->after));
		json_object_object_add(d, "bytes", json_object_new_int64((int64_t)rd->bytes));
		if (rd->kept) {
			json_object_object_add(d, "kept", json_object_new_string(rd->kept));
			json_object_object_add(d, "kept_user", json_object_new_string(rd->kept_user));
		}
		json_object_array_add(disks, d);
	}
	json_object_object_add(doc, "disks", disks);
	json_object_object_add(doc, "bytes_to_copy", json_object_new_int64((int64_t)bytes));
	json_object_object_add(doc, "dest_needs", json_object_new_int64((int64_t)r->dest_needs));
	json_object_object_add(doc, "dest_free", json_object_new_int64((int64_t)r->dest_free));
	if (r->overlay_dir)
		json_object_object_add(doc, "overlay_dir", json_object_new_string(r->overlay_dir));
	if (r->overlay_provisioner)
		json_object_object_add(doc, "overlay_provisioner",
				       json_object_new_string(r->overlay_provisioner));
	sm_json_print(doc);
}

/* The final "result" event: status, exit code, error, and each disk's
 * chain before and now. */
static void emit_result(const struct sm_job_result *r)
{
	bool ok = r->outcome == SM_MOVE_OK;
	struct json_object *o, *disks;

	if (!sm_events_wanted())
		return;
	o = json_object_new_object();
	json_object_object_add(o, "job", json_object_new_int64(r->job));
	json_object_object_add(o, "domain", json_object_new_string(r->domain));
	json_object_object_add(o, "status", json_object_new_string(
				       ok && r->verb == SM_JOB_VERB_ABORT ? "aborted"
				       : sm_move_status_name(r->outcome)));
	json_object_object_add(o, "exit", json_object_new_int(sm_move_exit_code(r->outcome)));
	if (!ok && r->error)
		json_object_object_add(o, "error", json_object_new_string(r->error));
	if (r->finished_offline)
		json_object_object_add(o, "finished_offline", json_object_new_boolean(true));
	if (r->trim && ok)
		json_object_object_add(o, "trimmed", json_object_new_boolean(r->trimmed));
	disks = json_object_new_array();
	for (size_t i = 0; i < r->ndisks; i++) {
		const struct sm_result_disk *d = &r->disks[i];
		struct json_object *disk = json_object_new_object();

		json_object_object_add(disk, "target", json_object_new_string(d->target));
		json_object_object_add(disk, "state",
				       json_object_new_string(sm_disk_state_name(d->state)));
		if (d->error)
			json_object_object_add(disk, "error", json_object_new_string(d->error));
		json_object_object_add(disk, "before", chain_json(&d->before));
		if (d->has_now)
			json_object_object_add(disk, "after", chain_json(&d->now));
		json_object_array_add(disks, disk);
	}
	json_object_object_add(o, "disks", disks);
	sm_event_emit("result", o);
}

void sm_report_job(FILE *f, const struct sm_job_result *r)
{
	char b[32];

	if (r->dry_run) {
		if (sm_events_enabled())
			print_dry_run_json(r);
		else
			put_dry_run(f, r);
		return;
	}
	if (!r->job)
		return;
	if (r->gone)
		put_gone(f, r);
	if (r->outcome == SM_MOVE_OK) {
		if (!r->shown)
			sm_report_outcome(f, r);
		if (r->delete_source && r->source_deleted)
			fprintf(f, "deleted the source: %s freed\n",
				sm_format_bytes(r->freed, b, sizeof(b)));
		else if (!r->delete_source && r->verb == SM_JOB_VERB_MOVE)
			fprintf(f, "the source images stay; 'snapmove cleanup %lld' deletes those "
				"nothing uses\n", r->job);
	}
	emit_result(r);
}

/* ---- a rebalance's plan ---- */

void sm_report_plan_table(FILE *f, const struct sm_inventory *inv,
			  const struct sm_balance_plan *p)
{
	char a[32], b[32], c[32];

	fprintf(f, "%-4s %-24s %-6s %-24s %-24s %12s\n", "#", "DOMAIN", "DISK", "FROM", "TO",
		"BYTES");
	for (size_t i = 0; i < p->nmoves; i++) {
		const struct sm_balance_move *m = &p->moves[i];
		const struct sm_unit *u = &inv->units[m->unit];

		fprintf(f, "%-4zu %-24s %-6s %-24s %-24s %12s%s\n", i + 1, u->domain, u->disk,
			inv->storages[m->from].name, inv->storages[m->to].name,
			sm_format_bytes(m->bytes, a, sizeof(a)), u->running ? "" : "  (offline)");
	}
	if (!p->nmoves)
		fprintf(f, "nothing to move: the goal is already met\n");
	fprintf(f, "\n%-32s %12s %12s %12s\n", "STORAGE", "SIZE", "FREE NOW", "FREE AFTER");
	for (size_t t = 0; t < inv->nstorages; t++)
		fprintf(f, "%-32s %12s %12s %12s\n", inv->storages[t].name,
			sm_format_bytes(inv->storages[t].size, a, sizeof(a)),
			sm_format_bytes(p->free_before[t], b, sizeof(b)),
			sm_format_bytes(p->free_after[t], c, sizeof(c)));
	fprintf(f, "%zu move%s, %s in all\n", p->nmoves, p->nmoves == 1 ? "" : "s",
		sm_format_bytes(p->bytes, a, sizeof(a)));
	fflush(f);
	for (size_t i = 0; i < inv->nunits; i++)
		if (inv->units[i].why_not)
			fprintf(f, "not movable: %s disk %s on %s: %s\n", inv->units[i].domain,
				inv->units[i].disk, inv->storages[inv->units[i].storage].name,
				inv->units[i].why_not);
}

static void plan_json(const struct sm_inventory *inv, const struct sm_balance_plan *p,
			    bool dry_run)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *moves = json_object_new_array();
	struct json_object *storages = json_object_new_array();
	struct json_object *blocked = json_object_new_array();

	for (size_t i = 0; i < p->nmoves; i++) {
		const struct sm_balance_move *m = &p->moves[i];
		const struct sm_unit *u = &inv->units[m->unit];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "seq", json_object_new_int64((int64_t)i + 1));
		json_object_object_add(o, "domain", json_object_new_string(u->domain));
		json_object_object_add(o, "disk", json_object_new_string(u->disk));
		json_object_object_add(o, "from", json_object_new_string(inv->storages[m->from].name));
		json_object_object_add(o, "to", json_object_new_string(inv->storages[m->to].name));
		json_object_object_add(o, "bytes", json_object_new_int64((int64_t)m->bytes));
		json_object_object_add(o, "live", json_object_new_boolean(u->running));
		json_object_array_add(moves, o);
	}
	for (size_t t = 0; t < inv->nstorages; t++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(inv->storages[t].name));
		json_object_object_add(o, "dir", json_object_new_string(inv->storages[t].dir));
		json_object_object_add(o, "size", json_object_new_int64((int64_t)inv->storages[t].size));
		json_object_object_add(o, "free_before", json_object_new_int64((int64_t)p->free_before[t]));
		json_object_object_add(o, "free_after", json_object_new_int64((int64_t)p->free_after[t]));
		json_object_array_add(storages, o);
	}
	for (size_t i = 0; i < inv->nunits; i++) {
		struct json_object *o;

		if (!inv->units[i].why_not)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "domain", json_object_new_string(inv->units[i].domain));
		json_object_object_add(o, "disk", json_object_new_string(inv->units[i].disk));
		json_object_object_add(o, "reason", json_object_new_string(inv->units[i].why_not));
		json_object_array_add(blocked, o);
	}
	json_object_object_add(doc, "dry_run", json_object_new_boolean(dry_run));
	json_object_object_add(doc, "moves", moves);
	json_object_object_add(doc, "storages", storages);
	json_object_object_add(doc, "not_movable", blocked);
	json_object_object_add(doc, "bytes", json_object_new_int64((int64_t)p->bytes));
	if (dry_run)
		sm_json_print(doc);
	else
		sm_event_emit("rebalance_plan", doc);
}

void sm_report_rebalance_plan(const struct sm_inventory *inv, const struct sm_balance_plan *p,
			      bool dry_run)
{
	if (dry_run ? sm_events_enabled() : sm_events_wanted())
		plan_json(inv, p, dry_run);
	if (!dry_run || !sm_events_enabled())
		sm_report_plan_table(sm_human(), inv, p);
	if (dry_run)
		fprintf(sm_human(), "dry run: nothing was changed\n");
}
