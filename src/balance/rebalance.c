/* rebalance.c: plan a rebalance, print it, journal it, and run its moves as
 * child snapmove processes; resume an interrupted one.
 */
#include "balance/rebalance.h"
#include "balance/plan.h"
#include "cleanup.h"
#include "events.h"
#include "hooks.h"
#include "job_run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a move needs beyond its bytes: the copy in flight and the overlays
 * (snapmove's own check asks the destination for 64 MiB more). */
#define SM_BALANCE_MARGIN (80ULL << 20)

struct rmove {
	long long seq;
	long long job_floor;  /* jobs up to this id existed before it started */
	char *domain;
	char *disk;
	bool running;
	char *from;
	char *to_dir;
	unsigned long long bytes;
	char *state;
	long long job;
	pid_t pid;
	double started;
};

static void rmoves_free(struct rmove *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].domain);
		free(m[i].disk);
		free(m[i].from);
		free(m[i].to_dir);
		free(m[i].state);
	}
	free(m);
}

/* ---- the plan, for people and engines ---- */

static void print_plan(const struct sm_inventory *inv, const struct sm_balance_plan *p)
{
	FILE *f = sm_human();
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

static void print_plan_json(const struct sm_inventory *inv, const struct sm_balance_plan *p,
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

/* ---- the journal ---- */

static int journal_plan(struct sm_journal *j, const struct sm_rebalance_opts *o,
			const struct sm_inventory *inv, const struct sm_balance_plan *p,
			long long *id)
{
	SM_AUTOFREE char *goal = o->drain ? sm_xasprintf("drain %s", o->drain)
					  : sm_xasprintf("target-free %.0f", o->target_free);
	long long floor;

	if (sm_journal_begin(j) < 0)
		return -1;
	if (sm_journal_next_job_id(j, &floor) < 0 ||
	    sm_journal_sql(j, "INSERT INTO rebalance (goal, state, max_parallel, bandwidth_mib, "
			   "stop_on_error, job_floor, created_at) VALUES (?,?,?,?,?,?,?)", "ssiiiid",
			   goal, "running", (long long)o->max_parallel, (long long)o->bandwidth_mib,
			   (long long)o->stop_on_error, floor - 1, sm_now()) < 0)
		goto error;
	*id = sm_journal_last_id(j);
	for (size_t i = 0; i < p->nmoves; i++) {
		const struct sm_balance_move *m = &p->moves[i];
		const struct sm_unit *u = &inv->units[m->unit];

		if (sm_journal_sql(j, "INSERT INTO rebalance_move (rebalance_id, seq, domain, disk, "
				   "running, from_storage, to_dir, bytes, state) VALUES "
				   "(?,?,?,?,?,?,?,?,?)", "iississis", *id, (long long)i + 1,
				   u->domain, u->disk, (long long)u->running,
				   inv->storages[m->from].dir, inv->storages[m->to].dir,
				   (long long)m->bytes, "planned") < 0)
			goto error;
	}
	return sm_journal_commit(j);

error:
	sm_journal_rollback(j);
	return -1;
}

static int load_moves(struct sm_journal *j, long long id, struct rmove **out, size_t *n)
{
	struct sm_journal_rows rows;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (sm_journal_query(j, "SELECT seq, domain, disk, running, from_storage, to_dir, bytes, "
			     "state, coalesce(job_id, 0) FROM rebalance_move WHERE "
			     "rebalance_id = ? ORDER BY seq", "i", &rows, id) < 0)
		return -1;
	*out = sm_xcalloc(rows.nrows + 1, sizeof(**out));
	for (size_t r = 0; r < rows.nrows; r++) {
		struct rmove *m = &(*out)[r];
		char **v = rows.cells + r * rows.ncols;

		m->seq = atoll(v[0]);
		m->domain = sm_xstrdup(v[1]);
		m->disk = sm_xstrdup(v[2]);
		m->running = atoi(v[3]);
		m->from = sm_xstrdup(v[4]);
		m->to_dir = sm_xstrdup(v[5]);
		m->bytes = strtoull(v[6], NULL, 10);
		m->state = sm_xstrdup(v[7]);
		m->job = atoll(v[8]);
		m->pid = -1;
	}
	*n = rows.nrows;
	ret = 0;
	sm_journal_rows_release(&rows);
	return ret;
}

static void set_move(struct sm_journal *j, long long id, struct rmove *m, const char *state,
		     const char *error)
{
	free(m->state);
	m->state = sm_xstrdup(state);
	SM_JOURNAL_TX(j, sm_journal_sql(j, "UPDATE rebalance_move SET state = ?, job_id = ?, "
					"error = ? WHERE rebalance_id = ? AND seq = ?", "sisii",
					state, m->job ? m->job : 0, error, id, m->seq));
}

/* The newest job of a domain's disk above id floor, and its state. */
static long long latest_job(struct sm_journal *j, const char *domain, const char *disk,
			    long long floor, char **state, char **error)
{
	struct sm_journal_rows rows;
	long long id = 0;

	*state = *error = NULL;
	if (sm_journal_query(j, "SELECT job.id, job.state, coalesce(job.error, '') FROM job JOIN "
			     "disk ON disk.job_id = job.id WHERE job.domain_name = ? AND "
			     "disk.target = ? AND job.id > ? ORDER BY job.id DESC LIMIT 1", "ssi",
			     &rows, domain, disk, floor) < 0)
		return 0;
	if (rows.nrows == 1) {
		id = atoll(rows.cells[0]);
		*state = sm_xstrdup(rows.cells[1]);
		*error = sm_xstrdup(rows.cells[2]);
	}
	sm_journal_rows_release(&rows);
	return id;
}

static void job_state(struct sm_journal *j, long long job, char **state, char **error)
{
	struct sm_job_row row;

	*state = *error = NULL;
	if (sm_journal_job_get(j, job, &row) == 1) {
		*state = sm_steal(&row.state);
		*error = sm_steal(&row.error);
		sm_job_row_release(&row);
	}
}

/* ---- running the moves ---- */

static pid_t spawn_move(const struct sm_rebalance_opts *o, struct sm_journal *j, long long id,
			const struct rmove *m, unsigned long long share_mib)
{
	char bw[32], timeout[32];
	const char *argv[32];
	size_t n = 0;
	SM_AUTOFREE char *log = sm_xasprintf("%s.rebalance-%lld-%lld.log", sm_journal_path(j), id,
					    m->seq);
	SM_AUTOFREE char *job = sm_xasprintf("%lld", m->job);
	pid_t pid;

	argv[n++] = "snapmove";
	argv[n++] = "--db";
	argv[n++] = sm_journal_path(j);
	if (o->uri) {
		argv[n++] = "-c";
		argv[n++] = o->uri;
	}
	if (sm_events_enabled())
		argv[n++] = "--json";
	snprintf(timeout, sizeof(timeout), "%.0f", sm_hooks_timeout());
	argv[n++] = "--hooks-dir";
	argv[n++] = sm_hooks_dir();
	argv[n++] = "--hook-timeout";
	argv[n++] = timeout;
	if (m->job) {
		argv[n++] = "resume";
		argv[n++] = job;
	} else {
		argv[n++] = "move";
		argv[n++] = m->domain;
		argv[n++] = "--dest";
		argv[n++] = m->to_dir;
		argv[n++] = "--disk";
		argv[n++] = m->disk;
		argv[n++] = "--delete-source";
		if (!m->running)
			argv[n++] = "--offline";
		if (share_mib) {
			snprintf(bw, sizeof(bw), "%llu", share_mib);
			argv[n++] = "--bandwidth";
			argv[n++] = bw;
		}
	}
	argv[n] = NULL;
	/* Its log lies beside the journal, and holds what the move printed. */
	if (sm_journal_check_file(log) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);

		/* Its own process group: a Ctrl-C at the terminal stops the
		 * rebalance (which lets running moves finish), not the moves. */
		setpgid(0, 0);

		if (fd >= 0) {
			if (!sm_events_enabled())
				dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		sm_error("cannot start the move of disk '%s' of domain '%s': %s", m->disk,
			 m->domain, strerror(errno));
	return pid;
}

/* Move i may start once every earlier move out of its destination has ended
 * (the plan counted on the space those free). */
static bool can_start(const struct rmove *m, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (sm_str_eq(m[k].from, m[i].to_dir) && !sm_str_eq(m[k].state, "done") &&
		    !sm_str_eq(m[k].state, "failed"))
			return false;
	return true;
}

static int run_moves(struct sm_virt *v, struct sm_journal *j, const struct sm_rebalance_opts *o,
		     long long id, struct rmove *m, size_t n, struct sm_progress *pr)
{
	unsigned max = o->max_parallel ? o->max_parallel : 1;
	unsigned long long share = o->bandwidth_mib ? (o->bandwidth_mib + max - 1) / max : 0;
	size_t next = 0, done = 0, failed = 0;
	unsigned running = 0;
	bool stop = false;
	char b[32];

	for (size_t i = 0; i < n; i++)
		if (sm_str_eq(m[i].state, "done"))
			done++;
	for (;;) {
		while (!stop && !sm_interrupted && running < max && next < n) {
			if (sm_str_eq(m[next].state, "done")) {
				next++;
				continue;
			}
			if (!can_start(m, next))
				break;
			if (!m[next].job && sm_journal_next_job_id(j, &m[next].job_floor) == 0)
				m[next].job_floor--;
			m[next].pid = spawn_move(o, j, id, &m[next], share);
			if (m[next].pid < 0)
				return -1;
			m[next].started = sm_monotonic();
			set_move(j, id, &m[next], "running", NULL);
			sm_progress_say(pr, "[%lld/%zu] %s %s: %s -> %s (%s)%s", m[next].seq, n,
					m[next].domain, m[next].disk, m[next].from, m[next].to_dir,
					sm_format_bytes(m[next].bytes, b, sizeof(b)),
					m[next].job ? ", resuming its job" : "");
			running++;
			next++;
		}
		if (!running)
			break;
		{
			int status;
			pid_t pid = waitpid(-1, &status, 0);
			SM_AUTOFREE char *state = NULL;
			SM_AUTOFREE char *error = NULL;
			unsigned long long freed = 0;
			bool resumed;

			if (pid < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			for (size_t i = 0; i < n; i++) {
				if (m[i].pid != pid)
					continue;
				m[i].pid = 0;
				running--;
				resumed = m[i].job != 0;
				m[i].job = resumed ? m[i].job
						   : latest_job(j, m[i].domain, m[i].disk,
								m[i].job_floor, &state, &error);
				if (resumed)
					job_state(j, m[i].job, &state, &error);
				if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
				    sm_str_eq(state, "done")) {
					/* A resumed job was not told to delete its source. */
					if (resumed && sm_cleanup_run(v, j, m[i].job, pr, &freed) < 0)
						sm_progress_say(pr, "warning: job %lld is done but its "
								"source was not deleted: %s; run "
								"'snapmove cleanup %lld'", m[i].job,
								sm_error_message(), m[i].job);
					set_move(j, id, &m[i], "done", NULL);
					done++;
					sm_progress_say(pr, "[%lld/%zu] %s %s: done in %.1f s (job %lld)",
							m[i].seq, n, m[i].domain, m[i].disk,
							sm_monotonic() - m[i].started, m[i].job);
				} else {
					int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
					SM_AUTOFREE char *why =
						error && *error
						? sm_xasprintf("exit %d: %s; log: %s.rebalance-%lld-%lld.log",
							       code, error, sm_journal_path(j), id,
							       m[i].seq)
						: sm_xasprintf("exit %d; log: %s.rebalance-%lld-%lld.log",
							       code, sm_journal_path(j), id, m[i].seq);

					set_move(j, id, &m[i], "failed", why);
					failed++;
					sm_progress_say(pr, "[%lld/%zu] %s %s: FAILED (%s)", m[i].seq, n,
							m[i].domain, m[i].disk, why);
					if (o->stop_on_error)
						stop = true;
				}
			}
		}
	}
	sm_progress_say(pr, "rebalance %lld: %zu of %zu moves done, %zu failed%s", id, done, n,
			failed, sm_interrupted ? " (interrupted: 'snapmove rebalance --resume' "
			"goes on)" : "");
	return failed || done < n ? 1 : 0;
}

/* The options the rebalance was planned with (a resume keeps them), and the
 * highest job id from before its first move. */
static int load_options(struct sm_journal *j, long long id, const struct sm_rebalance_opts *o,
			struct sm_rebalance_opts *eff, long long *floor)
{
	struct sm_journal_rows rows;

	*eff = *o;
	if (sm_journal_query(j, "SELECT max_parallel, bandwidth_mib, stop_on_error, job_floor "
			     "FROM rebalance WHERE id = ?", "i", &rows, id) < 0)
		return -1;
	if (rows.nrows == 1) {
		eff->max_parallel = (unsigned)atoi(rows.cells[0]);
		eff->bandwidth_mib = strtoull(rows.cells[1], NULL, 10);
		eff->stop_on_error = atoi(rows.cells[2]);
		*floor = atoll(rows.cells[3]);
	}
	sm_journal_rows_release(&rows);
	return 0;
}

/* The last event of a rebalance: how it ended and each move's job.  The
 * moves' own "result" events came before it, one per job. */
static void emit_result(long long id, const struct rmove *m, size_t n, int rc)
{
	struct json_object *o, *moves;
	const char *status = rc == 0 ? "done" : sm_interrupted ? "interrupted" : "failed";
	int exit_code = rc == 0 ? 0 : sm_interrupted ? 5 : 1;

	if (!sm_events_wanted())
		return;
	o = json_object_new_object();
	moves = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *mo = json_object_new_object();

		json_object_object_add(mo, "seq", json_object_new_int64(m[i].seq));
		json_object_object_add(mo, "domain", json_object_new_string(m[i].domain));
		json_object_object_add(mo, "disk", json_object_new_string(m[i].disk));
		json_object_object_add(mo, "job", m[i].job ? json_object_new_int64(m[i].job) : NULL);
		json_object_object_add(mo, "status", json_object_new_string(m[i].state));
		json_object_array_add(moves, mo);
	}
	json_object_object_add(o, "rebalance", id ? json_object_new_int64(id) : NULL);
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "exit", json_object_new_int(exit_code));
	json_object_object_add(o, "moves", moves);
	sm_event_emit("rebalance_result", o);
}

static void finish(struct sm_journal *j, long long id, bool ok)
{
	SM_JOURNAL_TX(j, sm_journal_sql(j, "UPDATE rebalance SET state = ?, finished_at = ? "
					"WHERE id = ?", "sdi", ok ? "done" : "failed", sm_now(), id));
}

static long long unfinished_rebalance(struct sm_journal *j)
{
	struct sm_journal_rows rows;
	long long id = 0;

	if (sm_journal_query(j, "SELECT id FROM rebalance WHERE state != 'done' ORDER BY id DESC "
			     "LIMIT 1", "", &rows) < 0)
		return -1;
	if (rows.nrows == 1)
		id = atoll(rows.cells[0]);
	sm_journal_rows_release(&rows);
	return id;
}

enum sm_rebalance_result sm_rebalance(struct sm_virt *v, struct sm_journal *j,
				      const struct sm_rebalance_opts *o, struct sm_progress *pr)
{
	struct sm_inventory inv = { 0 };
	struct sm_balance_plan plan = { 0 };
	struct sm_balance_goal goal = { .drain = -1, .target_free = o->target_free };
	struct rmove *moves = NULL;
	struct sm_rebalance_opts eff;
	size_t nmoves = 0;
	long long id = 0, floor = 0;
	enum sm_rebalance_result ret = SM_REBALANCE_REFUSED;
	int rc;

	if (o->resume) {
		id = unfinished_rebalance(j);
		if (id <= 0) {
			if (id == 0)
				sm_error("there is no unfinished rebalance to resume; see the journal's "
					 "jobs with 'snapmove list'");
			return SM_REBALANCE_REFUSED;
		}
		sm_progress_say(pr, "resuming rebalance %lld", id);
	} else {
		if (sm_inventory_take(v, j, &o->inv, &inv) < 0)
			goto cleanup;
		if (o->drain && (goal.drain = sm_inventory_storage(&inv, o->drain)) < 0)
			goto cleanup;
		if (sm_balance_plan(inv.storages, inv.nstorages, inv.units, inv.nunits, &goal,
				    SM_BALANCE_MARGIN, &plan) < 0)
			goto cleanup;
		if (o->dry_run ? sm_events_enabled() : sm_events_wanted())
			print_plan_json(&inv, &plan, o->dry_run);
		if (!o->dry_run || !sm_events_enabled())
			print_plan(&inv, &plan);
		if (o->dry_run) {
			fprintf(sm_human(), "dry run: nothing was changed\n");
			ret = SM_REBALANCE_OK;
			goto cleanup;
		}
		if (plan.nmoves == 0) {
			emit_result(0, NULL, 0, 0);
			ret = SM_REBALANCE_OK;
			goto cleanup;
		}
		if (journal_plan(j, o, &inv, &plan, &id) < 0)
			goto cleanup;
	}
	ret = SM_REBALANCE_FAILED;
	if (load_options(j, id, o, &eff, &floor) < 0 || load_moves(j, id, &moves, &nmoves) < 0)
		goto cleanup;
	/* Moves a dead rebalance left running: their jobs say how they ended. */
	for (size_t i = 0; i < nmoves; i++) {
		SM_AUTOFREE char *state = NULL;
		SM_AUTOFREE char *error = NULL;

		if (!sm_str_eq(moves[i].state, "running") && !sm_str_eq(moves[i].state, "failed"))
			continue;
		/* Only a job started for this move counts: one created after the
		 * rebalance was planned. */
		moves[i].job = moves[i].job ? moves[i].job
					    : latest_job(j, moves[i].domain, moves[i].disk, floor,
							 &state, &error);
		if (moves[i].job && !state)
			job_state(j, moves[i].job, &state, &error);
		if (sm_str_eq(state, "done"))
			set_move(j, id, &moves[i], "done", NULL);
		else if (!state || sm_str_eq(state, "aborted"))
			moves[i].job = 0;  /* never started, or undone: start it afresh */
	}
	rc = run_moves(v, j, &eff, id, moves, nmoves, pr);
	if (rc < 0)
		goto cleanup;
	finish(j, id, rc == 0);
	ret = rc == 0 ? SM_REBALANCE_OK : SM_REBALANCE_FAILED;

cleanup:
	/* A rebalance that ran (it has a number) ends with its result, also
	 * when it could not go on (no fork, a journal error). */
	if (id > 0 && ret != SM_REBALANCE_REFUSED)
		emit_result(id, moves, nmoves, ret == SM_REBALANCE_OK ? 0 : 1);
	rmoves_free(moves, nmoves);
	sm_balance_plan_release(&plan);
	sm_inventory_release(&inv);
	return ret;
}
