/* rebalance.c: plan a rebalance, show it (through the caller's sink,
 * src/report.c), journal it, and run its moves as child snapmove processes;
 * resume an interrupted one.
 */
#include "balance/rebalance.h"
#include "balance/plan.h"
#include "cleanup.h"
#include "events.h"
#include "hooks.h"
#include "job/job_run.h"
#include "run.h"
#include "config.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	enum sm_rmove_state state;
	long long job;
	double started;
};

static void rmoves_free(struct rmove *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].domain);
		free(m[i].disk);
		free(m[i].from);
		free(m[i].to_dir);
	}
	free(m);
}

/* ---- the journal ---- */

static int journal_plan(struct sm_journal *j, const struct sm_rebalance_opts *o,
			const struct sm_inventory *inv, const struct sm_balance_plan *p,
			long long *id)
{
	SM_AUTOFREE char *goal = o->drain ? sm_xasprintf("drain %s", o->drain)
					  : sm_xasprintf("target-free %.0f", o->target_free);
	struct sm_rebalance_row r = {
		.max_parallel = o->max_parallel,
		.bandwidth_mib = o->bandwidth_mib,
		.stop_on_error = o->stop_on_error,
		.moves = sm_xcalloc(p->nmoves + 1, sizeof(*r.moves)),
		.nmoves = p->nmoves,
	};
	int rc;

	for (size_t i = 0; i < p->nmoves; i++) {
		const struct sm_balance_move *m = &p->moves[i];
		const struct sm_unit *u = &inv->units[m->unit];

		r.moves[i] = (struct sm_rebalance_move_row){
			.seq = (long long)i + 1,
			.domain = sm_xstrdup(u->domain),
			.disk = sm_xstrdup(u->disk),
			.running = u->running,
			.from = sm_xstrdup(inv->storages[m->from].dir),
			.to_dir = sm_xstrdup(inv->storages[m->to].dir),
			.bytes = m->bytes,
		};
	}
	rc = sm_journal_rebalance_insert(j, goal, &r, id);
	sm_journal_rebalance_row_release(&r);
	return rc;
}



/* The moves of a loaded rebalance, their strings taken from r. */
static struct rmove *rmoves_from(struct sm_rebalance_row *r)
{
	struct rmove *m = sm_xcalloc(r->nmoves + 1, sizeof(*m));

	for (size_t i = 0; i < r->nmoves; i++) {
		struct sm_rebalance_move_row *row = &r->moves[i];

		m[i] = (struct rmove){
			.seq = row->seq,
			.domain = sm_steal(&row->domain),
			.disk = sm_steal(&row->disk),
			.running = row->running,
			.from = sm_steal(&row->from),
			.to_dir = sm_steal(&row->to_dir),
			.bytes = row->bytes,
			.state = row->state,
			.job = row->job,
		};
	}
	return m;
}

static void set_move(struct sm_journal *j, long long id, struct rmove *m,
		     enum sm_rmove_state state, const char *error)
{
	m->state = state;
	/* Ignored, as it was before the journal's rebalance rows moved to
	 * journal/rebalance.c (no change of behaviour in that move). */
	(void)sm_journal_rebalance_move_set(j, id, m->seq, state, m->job, error);
}

/* How job ended: 1 with *state (and *error, its error or NULL), 0 when it is
 * gone, -1 when its row cannot be read (*error says why). */
static int job_state(struct sm_journal *j, long long job, enum sm_job_state *state,
		     char **error)
{
	int rc = sm_journal_job_state(j, job, state, error);

	if (rc < 0) {
		*error = sm_xstrdup(sm_error_message());
		return -1;
	}
	return rc;
}

/* The newest job of a domain's disk above id floor (0: none), and how it
 * ended (job_state's result; 0 when there is none). */
static long long latest_job(struct sm_journal *j, const char *domain, const char *disk,
			    long long floor, int *found, enum sm_job_state *state, char **error)
{
	long long id = 0;

	*found = 0;
	if (sm_journal_latest_disk_job(j, domain, disk, floor, &id) < 0)
		return 0;
	if (id)
		*found = job_state(j, id, state, error);
	return id;
}

/* ---- running the moves ---- */

/* What a move may see of the rebalance's environment besides run.c's own
 * (PATH, LC_ALL, HOME): where events go and, in test builds, the test
 * hooks.  Nothing else: no LD_*, no BASH_ENV, no secrets. */
static const char *const child_vars[] = {
	"SNAPMOVE_EVENTS_FILE",
#ifdef SM_TEST_BUILD
	"SNAPMOVE_TEST_HOOK",
	"SNAPMOVE_TEST_CRASH_AT",
#endif
	NULL,
};

/* How every move starts, made once before the first: snapmove's own
 * program, opened when the rebalance began (a binary swapped on disk since
 * does not run), and the moves' environment. */
struct launcher {
	int exe;
	char **env;
	const char *uri;  /* the rebalance's connection: the moves' too */
};

static int launcher_init(struct launcher *l, struct sm_virt *v)
{
	l->env = NULL;
	l->uri = sm_virt_uri(v);
	l->exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (l->exe < 0) {
		sm_error("cannot open snapmove's own program (/proc/self/exe) to run the moves: "
			 "%s; mount /proc", strerror(errno));
		return -1;
	}
	l->env = sm_run_env_new(child_vars);
	return 0;
}

static void launcher_release(struct launcher *l)
{
	if (l->exe >= 0)
		close(l->exe);
	l->exe = -1;
	sm_run_env_free(l->env);
	l->env = NULL;
}

/* Start move m as a child 'snapmove move' (or 'resume JOB'), its output into
 * a log beside the journal. */
static int spawn_move(const struct launcher *l, struct sm_journal *j, long long id,
		      const struct rmove *m, unsigned long long share_mib,
		      struct sm_run_child *child)
{
	char bw[32], timeout[32];
	const char *argv[32];
	size_t n = 0;
	SM_AUTOFREE char *log = sm_xasprintf("%s.rebalance-%lld-%lld.log", sm_journal_path(j), id,
					    m->seq);
	SM_AUTOFREE char *job = sm_xasprintf("%lld", m->job);
	struct sm_spawn sp = { .argv = argv, .env = (const char *const *)l->env,
			       .exec_fd = l->exe, .exec_fd_binary = true };
	int fd, rc;

	argv[n++] = "snapmove";
	argv[n++] = "--db";
	argv[n++] = sm_journal_path(j);
	argv[n++] = "-c";
	argv[n++] = l->uri;
	if (sm_events_enabled())
		argv[n++] = "--json";
	snprintf(timeout, sizeof(timeout), "%.0f", sm_hooks_timeout());
	argv[n++] = "--hooks-dir";
	argv[n++] = sm_hooks_dir();
	argv[n++] = "--hook-timeout";
	argv[n++] = timeout;
	/* The moves read the configuration the rebalance read. */
	if (sm_config_current() && sm_config_current()->path) {
		argv[n++] = "--config";
		argv[n++] = sm_config_current()->path;
	}
	if (m->job) {
		argv[n++] = "resume";
		argv[n++] = job;
	} else {
		argv[n++] = "move";
		argv[n++] = "--dest";
		argv[n++] = m->to_dir;
		argv[n++] = "--disk";
		argv[n++] = m->disk;
		argv[n++] = "--delete-source";
		if (!m->running)
			argv[n++] = "--offline";
		/* Always: 0 (unlimited) too, over the [move] bandwidth of the
		 * configuration, which is not the rebalance's. */
		snprintf(bw, sizeof(bw), "%llu", share_mib);
		argv[n++] = "--bandwidth";
		argv[n++] = bw;
		argv[n++] = "--";  /* a domain name is never an option */
		argv[n++] = m->domain;
	}
	argv[n] = NULL;
	/* Its log lies beside the journal, and holds what the move printed
	 * (its stdout too, unless that carries --json's events). */
	if (sm_journal_check_file(log) < 0)
		return -1;
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		sm_error("cannot open the log '%s' of the move of disk '%s' of domain '%s': %s",
			 log, m->disk, m->domain, strerror(errno));
		return -1;
	}
	/* In a process group of its own (run.c): a Ctrl-C at the terminal
	 * stops the rebalance (which lets running moves finish), not them. */
	rc = sm_run_start(&sp, sm_events_enabled() ? STDOUT_FILENO : fd, fd, child);
	close(fd);
	if (rc < 0) {
		SM_AUTOFREE char *why = sm_xstrdup(sm_error_message());

		sm_error("cannot start the move of disk '%s' of domain '%s': %s", m->disk,
			 m->domain, why);
	}
	return rc;
}

/* Move i may start once every earlier move out of its destination has ended
 * (the plan counted on the space those free). */
static bool can_start(const struct rmove *m, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (sm_str_eq(m[k].from, m[i].to_dir) && m[k].state != SM_RMOVE_DONE &&
		    m[k].state != SM_RMOVE_FAILED)
			return false;
	return true;
}

static int run_moves(struct sm_virt *v, struct sm_journal *j, const struct sm_rebalance_opts *o,
		     const struct launcher *l, long long id, struct rmove *m, size_t n,
		     struct sm_progress *pr)
{
	unsigned max = o->max_parallel ? o->max_parallel : 1;
	unsigned long long share = o->bandwidth_mib ? (o->bandwidth_mib + max - 1) / max : 0;
	/* The move processes, by move: each waited for by its own pid (or
	 * pidfd), never by waitpid(-1). */
	struct sm_run_child *kids = sm_xcalloc(n + 1, sizeof(*kids));
	size_t next = 0, done = 0, failed = 0;
	unsigned running = 0;
	bool stop = false;
	int ret = -1;
	char b[32];

	for (size_t i = 0; i < n; i++)
		if (m[i].state == SM_RMOVE_DONE)
			done++;
	for (;;) {
		enum sm_job_state state = SM_JOB_FAILED;
		SM_AUTOFREE char *error = NULL;
		unsigned long long freed = 0;
		bool resumed;
		int found = 0;
		int status;
		long i;

		while (!stop && !sm_interrupted && running < max && next < n) {
			if (m[next].state == SM_RMOVE_DONE) {
				next++;
				continue;
			}
			if (!can_start(m, next))
				break;
			if (!m[next].job && sm_journal_next_job_id(j, &m[next].job_floor) == 0)
				m[next].job_floor--;
			if (spawn_move(l, j, id, &m[next], share, &kids[next]) < 0)
				goto cleanup;
			m[next].started = sm_monotonic();
			set_move(j, id, &m[next], SM_RMOVE_RUNNING, NULL);
			sm_progress_say(pr, "[%lld/%zu] %s %s: %s -> %s (%s)%s", m[next].seq, n,
					m[next].domain, m[next].disk, m[next].from, m[next].to_dir,
					sm_format_bytes(m[next].bytes, b, sizeof(b)),
					m[next].job ? ", resuming its job" : "");
			running++;
			next++;
		}
		if (!running)
			break;
		i = sm_run_wait_any(kids, n, &status);
		if (i < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		running--;
		resumed = m[i].job != 0;
		m[i].job = resumed ? m[i].job
				   : latest_job(j, m[i].domain, m[i].disk, m[i].job_floor, &found,
						&state, &error);
		if (resumed)
			found = job_state(j, m[i].job, &state, &error);
		if (status == 0 && found == 1 && state == SM_JOB_DONE) {
			/* A resumed job was not told to delete its source. */
			if (resumed && sm_cleanup_run(v, j, m[i].job, pr, &freed) < 0)
				sm_progress_say(pr, "warning: job %lld is done but its source was not "
						"deleted: %s; run 'snapmove cleanup %lld'", m[i].job,
						sm_error_message(), m[i].job);
			set_move(j, id, &m[i], SM_RMOVE_DONE, NULL);
			done++;
			sm_progress_say(pr, "[%lld/%zu] %s %s: done in %.1f s (job %lld)", m[i].seq,
					n, m[i].domain, m[i].disk, sm_monotonic() - m[i].started,
					m[i].job);
		} else {
			SM_AUTOFREE char *why =
				error && *error
				? sm_xasprintf("exit %d: %s; log: %s.rebalance-%lld-%lld.log", status,
					       error, sm_journal_path(j), id, m[i].seq)
				: sm_xasprintf("exit %d; log: %s.rebalance-%lld-%lld.log", status,
					       sm_journal_path(j), id, m[i].seq);

			set_move(j, id, &m[i], SM_RMOVE_FAILED, why);
			failed++;
			sm_progress_say(pr, "[%lld/%zu] %s %s: FAILED (%s)", m[i].seq, n,
					m[i].domain, m[i].disk, why);
			if (o->stop_on_error)
				stop = true;
		}
	}
	sm_progress_say(pr, "rebalance %lld: %zu of %zu moves done, %zu failed%s", id, done, n,
			failed, sm_interrupted ? " (interrupted: 'snapmove rebalance --resume' "
			"goes on)" : "");
	ret = failed || done < n ? 1 : 0;

cleanup:
	/* Moves still running when a move could not start go on alone: each
	 * is an ordinary job (its own process group, journal and lock). */
	for (size_t k = 0; k < n; k++)
		if (kids[k].pidfd >= 0 && kids[k].pid > 0)
			close(kids[k].pidfd);
	free(kids);
	return ret;
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
		json_object_object_add(mo, "status", json_object_new_string(sm_rmove_state_name(m[i].state)));
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
	/* Ignored as before (see set_move). */
	(void)sm_journal_rebalance_finish(j, id, ok ? SM_REBALANCE_STATE_DONE
						    : SM_REBALANCE_STATE_FAILED);
}

enum sm_rebalance_result sm_rebalance(struct sm_virt *v, struct sm_journal *j,
				      const struct sm_rebalance_opts *o, struct sm_progress *pr)
{
	struct sm_inventory inv = { 0 };
	struct sm_balance_plan plan = { 0 };
	struct sm_balance_goal goal = { .drain = -1, .target_free = o->target_free };
	struct sm_rebalance_row row = { 0 };
	struct launcher l = { .exe = -1 };
	struct rmove *moves = NULL;
	struct sm_rebalance_opts eff;
	size_t nmoves = 0;
	long long id = 0;
	enum sm_rebalance_result ret = SM_REBALANCE_REFUSED;
	int rc;

	/* The program the moves run: this one, opened before anything else. */
	if (!o->dry_run && launcher_init(&l, v) < 0)
		return SM_REBALANCE_REFUSED;
	if (o->resume) {
		rc = sm_journal_rebalance_unfinished(j, &id);
		if (rc <= 0) {
			if (rc == 0)
				sm_error("there is no unfinished rebalance to resume; see the journal's "
					 "jobs with 'snapmove list'");
			id = 0;
			goto cleanup;
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
		if (o->show_plan)
			o->show_plan(&inv, &plan, o->dry_run);
		if (o->dry_run) {
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
		ret = SM_REBALANCE_FAILED;  /* it has a number: it ran */
	}
	/* A resumed rebalance whose rows do not read back is refused: nothing
	 * has been done yet. */
	if (sm_journal_rebalance_load(j, id, &row) < 0)
		goto cleanup;
	ret = SM_REBALANCE_FAILED;
	eff = *o;
	eff.max_parallel = row.max_parallel;
	eff.bandwidth_mib = row.bandwidth_mib;
	eff.stop_on_error = row.stop_on_error;
	moves = rmoves_from(&row);
	nmoves = row.nmoves;
	/* Moves a dead rebalance left running: their jobs say how they ended. */
	for (size_t i = 0; i < nmoves; i++) {
		enum sm_job_state state = SM_JOB_FAILED;
		SM_AUTOFREE char *error = NULL;
		int found = 0;

		if (moves[i].state != SM_RMOVE_RUNNING && moves[i].state != SM_RMOVE_FAILED)
			continue;
		/* Only a job started for this move counts: one created after the
		 * rebalance was planned. */
		if (moves[i].job)
			found = job_state(j, moves[i].job, &state, &error);
		else
			moves[i].job = latest_job(j, moves[i].domain, moves[i].disk, row.job_floor,
						  &found, &state, &error);
		if (found == 1 && state == SM_JOB_DONE)
			set_move(j, id, &moves[i], SM_RMOVE_DONE, NULL);
		else if (found == 0 || (found == 1 && state == SM_JOB_ABORTED))
			moves[i].job = 0;  /* never started, or undone: start it afresh */
		/* (a job whose row is malformed is resumed: it says so in its log) */
	}
	rc = run_moves(v, j, &eff, &l, id, moves, nmoves, pr);
	if (rc < 0)
		goto cleanup;
	finish(j, id, rc == 0);
	ret = rc == 0 ? SM_REBALANCE_OK : SM_REBALANCE_FAILED;

cleanup:
	/* A rebalance that ran (it has a number) ends with its result, also
	 * when it could not go on (no fork, a journal error). */
	if (id > 0 && ret != SM_REBALANCE_REFUSED)
		emit_result(id, moves, nmoves, ret == SM_REBALANCE_OK ? 0 : 1);
	launcher_release(&l);
	rmoves_free(moves, nmoves);
	sm_journal_rebalance_row_release(&row);
	sm_balance_plan_release(&plan);
	sm_inventory_release(&inv);
	return ret;
}
