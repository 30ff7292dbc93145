/* jobs.c: the journal's rows of jobs, their disks and images, phases and
 * steps, and the hooks they ran: written before and after each step, read
 * back checked (rows.c).  What a row means for a move is the job engine's.
 */
#include "journal.h"
#include "journal/internal.h"
#include "log.h"
#include "util.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "copy/copy.h"

#include <stdio.h>

#include <unistd.h>

/* The --sync-writes choices (enum sm_sync_writes of src/job/job_run.h, by name). */
static int sync_writes_from_name(const char *name)
{
	return sm_str_eq(name, "auto") || sm_str_eq(name, "on") || sm_str_eq(name, "off")
	       ? 0 : -1;
}

/* A line in the host's log for a job's step that the journal just recorded
 * (log.h), naming the job's domain as the journal has it. */
static void log_step(struct sm_journal *j, long long job_id, int prio, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void log_step(struct sm_journal *j, long long job_id, int prio, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	char *domain = NULL;
	va_list ap;

	if (sqlite3_prepare_v2(j->db, "SELECT domain_name FROM job WHERE id = ?", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_bind_int64(st, 1, job_id) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) == SQLITE_TEXT)
		domain = sm_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	va_start(ap, fmt);
	sm_log_jobv(prio, job_id, domain, fmt, ap);
	va_end(ap);
	free(domain);
}

int sm_journal_job_insert(struct sm_journal *j, const struct sm_job_row *job, long long *id)
{
	double now = sm_now();

	if (sm_journal_sql(j, "INSERT INTO job (domain_name, domain_uuid, persistent, dest_dir, "
		"bandwidth_mib, keep_overlay, quiesce, verify, dest_format, sync_writes, "
		"converge_timeout, delete_source, asked_copy_method, parallel, trim, dest_zeroed, "
		"state, phase, pid, created_at, updated_at, overlay_chunk) "
		"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
		"ssisiiiissdisiiissiddi",
		job->domain_name, job->domain_uuid, (long long)job->persistent, job->dest_dir,
		(long long)job->bandwidth_mib, (long long)job->keep_overlay,
		(long long)job->quiesce, (long long)job->verify, job->dest_format,
		job->sync_writes ? job->sync_writes : "auto",
		job->converge_timeout > 0 ? job->converge_timeout : 30.0,
		(long long)job->delete_source, job->copy_method ? job->copy_method : "auto",
		(long long)job->parallel, (long long)job->trim, (long long)job->dest_zeroed,
		sm_job_state_name(SM_JOB_RUNNING),
		sm_phase_name(SM_PHASE_PLANNED),
		(long long)getpid(), now, now, (long long)job->overlay_chunk) < 0)
		return -1;
	*id = sqlite3_last_insert_rowid(j->db);
	sm_log_job(LOG_INFO, *id, job->domain_name, "started: moving to '%s'", job->dest_dir);
	return 0;
}

int sm_journal_disk_insert(struct sm_journal *j, long long job_id, const struct sm_plan_disk *p)
{
	if (sm_journal_sql(j, "INSERT INTO disk (job_id, target, state, src_overlay, dst_overlay, "
		"virtual_size, kept, kept_format, kept_user, flat) VALUES (?,?,?,?,?,?,?,?,?,?)",
		"issssisssi", job_id, p->target, sm_disk_state_name(SM_DISK_PLANNED),
		p->src_overlay, p->dst_overlay, (long long)p->virtual_size, p->kept,
		p->kept_format, p->kept_user, (long long)p->flat) < 0)
		return -1;
	for (size_t i = 0; i < p->nimages; i++) {
		const struct sm_plan_image *img = &p->images[i];

		if (sm_journal_sql(j, "INSERT INTO image (job_id, target, depth, src_path, dst_path, "
			"format, dst_format, src_backing, dst_backing, dst_backing_format, "
			"virtual_size, allocated, state, dst_rdev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
			"isisssssssiisi", job_id, p->target, (long long)i, img->src, img->dst,
			img->format, img->dst_format, img->src_backing, img->dst_backing,
			img->dst_backing_format, (long long)img->virtual_size,
			(long long)img->allocated, sm_image_state_name(SM_IMAGE_PLANNED),
			(long long)img->dst_rdev) < 0)
			return -1;
		/* A device is not a file of the job: never made, never removed. */
		if (!img->dst_rdev &&
		    sm_journal_file_set(j, job_id, img->dst, "dst_image", "planned") < 0)
			return -1;
	}
	if (sm_journal_file_set(j, job_id, p->src_overlay, "src_overlay", "planned") < 0 ||
	    sm_journal_file_set(j, job_id, p->dst_overlay, "dst_overlay", "planned") < 0)
		return -1;
	return 0;
}

static int touch_job(struct sm_journal *j, long long job_id)
{
	return sm_journal_sql(j, "UPDATE job SET updated_at = ? WHERE id = ?", "di", sm_now(), job_id);
}

static int phase_start(struct sm_journal *j, long long job_id, enum sm_phase phase)
{
	if (sm_journal_sql(j, "UPDATE job SET phase = ?, updated_at = ? WHERE id = ?", "sdi",
		sm_phase_name(phase), sm_now(), job_id) < 0)
		return -1;
	return sm_journal_sql(j, "INSERT INTO step (job_id, phase, started_at) VALUES (?,?,?)", "isd",
		   job_id, sm_phase_name(phase), sm_now());
}

int sm_journal_phase_start(struct sm_journal *j, long long job_id, enum sm_phase phase)
{
	if (IN_TX(j, phase_start(j, job_id, phase)) < 0)
		return -1;
	log_step(j, job_id, LOG_INFO, "phase '%s' started", sm_phase_name(phase));
	return 0;
}

static int phase_finish(struct sm_journal *j, long long job_id, enum sm_phase phase,
			const char *error)
{
	if (touch_job(j, job_id) < 0)
		return -1;
	return sm_journal_sql(j, "UPDATE step SET finished_at = ?, error = ? WHERE id = (SELECT max(id) "
		   "FROM step WHERE job_id = ? AND phase = ? AND target IS NULL)", "dsis",
		   sm_now(), error, job_id, sm_phase_name(phase));
}

int sm_journal_phase_finish(struct sm_journal *j, long long job_id, enum sm_phase phase,
			    const char *error)
{
	if (IN_TX(j, phase_finish(j, job_id, phase, error)) < 0)
		return -1;
	if (error)
		log_step(j, job_id, LOG_ERR, "phase '%s' failed: %s", sm_phase_name(phase), error);
	return 0;
}

static int disk_set_state(struct sm_journal *j, long long job_id, const char *target,
			  enum sm_disk_state state, const char *error)
{
	if (touch_job(j, job_id) < 0)
		return -1;
	return sm_journal_sql(j, "UPDATE disk SET state = ?, error = ? WHERE job_id = ? AND target = ?",
		   "ssis", sm_disk_state_name(state), error, job_id, target);
}

int sm_journal_disk_set_state(struct sm_journal *j, long long job_id, const char *target,
			      enum sm_disk_state state, const char *error)
{
	return IN_TX(j, disk_set_state(j, job_id, target, state, error));
}

static int image_set_state(struct sm_journal *j, long long job_id, const char *target,
			   size_t depth, enum sm_image_state state, unsigned long long bytes)
{
	return sm_journal_sql(j, "UPDATE image SET state = ?, bytes_copied = ? WHERE job_id = ? AND "
		   "target = ? AND depth = ?", "siisi", sm_image_state_name(state),
		   (long long)bytes, job_id, target, (long long)depth);
}

int sm_journal_image_set_state(struct sm_journal *j, long long job_id, const char *target,
			       size_t depth, enum sm_image_state state,
			       unsigned long long bytes_copied)
{
	return IN_TX(j, image_set_state(j, job_id, target, depth, state, bytes_copied));
}

static int job_finish(struct sm_journal *j, long long job_id, enum sm_job_state state,
		      const char *error)
{
	double now = sm_now();

	if (state == SM_JOB_RUNNING)
		return sm_journal_sql(j, "UPDATE job SET state = ?, error = NULL, updated_at = ?, "
			   "finished_at = NULL, pid = ? WHERE id = ?", "sdii",
			   sm_job_state_name(state), now, (long long)getpid(), job_id);
	return sm_journal_sql(j, "UPDATE job SET state = ?, error = ?, updated_at = ?, finished_at = ? "
		   "WHERE id = ?", "ssddi", sm_job_state_name(state), error, now, now, job_id);
}

int sm_journal_disk_set_pivoting(struct sm_journal *j, long long job_id, const char *target,
				  bool on)
{
	return IN_TX(j, sm_journal_sql(j, "UPDATE disk SET pivoting = ? WHERE job_id = ? AND target = ?",
			    "iis", (long long)on, job_id, target));
}

int sm_journal_disk_set_sync_writes(struct sm_journal *j, long long job_id, const char *target,
				    bool on)
{
	return IN_TX(j, sm_journal_sql(j, "UPDATE disk SET sync_writes = ? WHERE job_id = ? AND target = ?",
			    "iis", (long long)on, job_id, target));
}

int sm_journal_disk_set_size(struct sm_journal *j, long long job_id, const char *target,
			     unsigned long long virtual_size)
{
	return IN_TX(j, sm_journal_sql(j, "UPDATE disk SET virtual_size = ? WHERE job_id = ? AND target = ?",
			    "iis", (long long)virtual_size, job_id, target));
}

static int disk_set_overlays(struct sm_journal *j, long long job_id, const char *target,
			     const char *src_overlay, const char *dst_overlay)
{
	return sm_journal_sql(j, "DELETE FROM file WHERE job_id = ? AND state = 'planned' AND path "
			      "IN (SELECT src_overlay FROM disk WHERE job_id = ? AND target = ? "
			      "UNION SELECT dst_overlay FROM disk WHERE job_id = ? AND target = ?)",
			      "iisis", job_id, job_id, target, job_id, target) < 0 ||
	       sm_journal_sql(j, "UPDATE disk SET src_overlay = ?, dst_overlay = ? WHERE job_id = ? "
			      "AND target = ?", "ssis", src_overlay, dst_overlay, job_id, target) < 0 ||
	       sm_journal_file_set(j, job_id, src_overlay, "src_overlay", "planned") < 0 ||
	       sm_journal_file_set(j, job_id, dst_overlay, "dst_overlay", "planned") < 0 ? -1 : 0;
}

int sm_journal_disk_set_overlays(struct sm_journal *j, long long job_id, const char *target,
				 const char *src_overlay, const char *dst_overlay)
{
	return IN_TX(j, disk_set_overlays(j, job_id, target, src_overlay, dst_overlay));
}

int sm_journal_job_finish(struct sm_journal *j, long long job_id, enum sm_job_state state,
			  const char *error)
{
	if (IN_TX(j, job_finish(j, job_id, state, error)) < 0)
		return -1;
	if (state == SM_JOB_RUNNING)
		return 0;  /* a resume, logged as it starts (job/existing.c) */
	if (error)
		log_step(j, job_id, LOG_ERR, "ended %s: %s", sm_job_state_name(state), error);
	else
		log_step(j, job_id, state == SM_JOB_DONE ? LOG_INFO : LOG_NOTICE, "ended %s",
			 sm_job_state_name(state));
	return 0;
}

int sm_journal_unfinished_jobs_for_domain(struct sm_journal *j, const char *name,
					  long long **ids, size_t *n)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT id FROM job WHERE domain_name = ? AND state NOT "
				   "IN ('done', 'aborted') ORDER BY id", "s", name);
	int rc;

	*ids = NULL;
	*n = 0;
	if (!st)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*ids = sm_xrealloc(*ids, (*n + 1) * sizeof(**ids));
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : journal_db_error(j, "cannot read jobs");
}

int sm_journal_job_delete(struct sm_journal *j, long long job_id)
{
	return IN_TX(j, sm_journal_sql(j, "DELETE FROM job WHERE id = ?", "i", job_id));
}

int sm_journal_hook_run(struct sm_journal *j, long long job_id, const char *point,
			const char *hook, int exit_status, bool timed_out, double started,
			double seconds, const char *err)
{
	return IN_TX(j, sm_journal_sql(j, "INSERT INTO hook_run (job_id, point, hook, exit_status, "
			    "timed_out, started_at, seconds, stderr) VALUES (?,?,?,?,?,?,?,?)",
			    "issiidds", job_id, point, hook, (long long)exit_status,
			    (long long)timed_out, started, seconds, err));
}

int sm_journal_next_job_id(struct sm_journal *j, long long *id)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE "
				   "name = 'job'), 0) + 1", "");
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : journal_db_error(j, "cannot read the job sequence");
}

int sm_journal_unfinished_job_for_disk(struct sm_journal *j, const char *domain_uuid,
				       const char *target, long long *job_id)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT job.id FROM job JOIN disk ON disk.job_id = "
				   "job.id WHERE job.domain_uuid = ? AND disk.target = ? AND "
				   "job.state NOT IN ('done', 'aborted') ORDER BY job.id DESC LIMIT 1", "ss",
				   domain_uuid, target);
	int rc;

	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*job_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_db_error(j, "cannot read jobs");
	return rc == SQLITE_ROW;
}

#define JOB_COLUMNS "id, domain_name, domain_uuid, persistent, dest_dir, bandwidth_mib, " \
	"keep_overlay, quiesce, state, phase, error, created_at, updated_at, " \
	"coalesce(finished_at, 0) AS finished_at, verify, dest_format, sync_writes, " \
	"converge_timeout, delete_source, asked_copy_method, parallel, trim, overlay_chunk, " \
	"dest_zeroed"

static void job_from_row(struct row *rw, struct sm_job_row *r)
{
	sqlite3_stmt *st = rw->st;

	r->id = sqlite3_column_int64(st, 0);  /* INTEGER PRIMARY KEY: always one */
	rw->job = r->id;
	rw->what = "";
	r->domain_name = journal_row_text(rw, 1, false);
	r->domain_uuid = journal_row_text(rw, 2, false);
	r->persistent = journal_row_bool(rw, 3);
	r->dest_dir = journal_row_text(rw, 4, false);
	r->bandwidth_mib = (unsigned long long)journal_row_int(rw, 5, 0, 1LL << 30);
	r->keep_overlay = journal_row_bool(rw, 6);
	r->quiesce = journal_row_bool(rw, 7);
	r->state = journal_row_enum(rw, 8, "state", sm_job_state_from_name);
	r->phase = journal_row_enum(rw, 9, "phase", sm_phase_from_name);
	r->error = journal_row_text(rw, 10, true);
	r->created_at = journal_row_real(rw, 11, 0, ROW_TIME_MAX);
	r->updated_at = journal_row_real(rw, 12, 0, ROW_TIME_MAX);
	r->finished_at = journal_row_real(rw, 13, 0, ROW_TIME_MAX);
	r->verify = journal_row_bool(rw, 14);
	r->dest_format = journal_row_text(rw, 15, true);
	r->sync_writes = journal_row_enum(rw, 16, "sync_writes", sync_writes_from_name);
	r->converge_timeout = journal_row_real(rw, 17, 0, 1e9);
	r->delete_source = journal_row_bool(rw, 18);
	r->copy_method = journal_row_enum(rw, 19, "copy method", sm_copy_method_from_name);
	r->parallel = (unsigned)journal_row_int(rw, 20, 0, 64);
	r->trim = journal_row_bool(rw, 21);
	r->overlay_chunk = (unsigned long long)journal_row_int(rw, 22, 0, 1LL << 50);
	r->dest_zeroed = journal_row_bool(rw, 23);
}

int sm_journal_job_get(struct sm_journal *j, long long id, struct sm_job_row *out)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT " JOB_COLUMNS " FROM job WHERE id = ?", "i", id);
	struct row rw = { .st = st, .job = id, .what = "" };
	int rc;

	memset(out, 0, sizeof(*out));
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		job_from_row(&rw, out);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return journal_db_error(j, "cannot read jobs");
	if (rw.why[0]) {
		sm_job_row_release(out);
		journal_row_malformed(j, &rw);
		return -2;
	}
	return rc == SQLITE_ROW;
}

static void fill_job(struct row *rw, void *p)
{
	job_from_row(rw, p);
}

static void release_jobs(void *p, size_t n)
{
	sm_job_rows_free(p, n);
}

int sm_journal_job_list(struct sm_journal *j, struct sm_job_row **out, size_t *n)
{
	return journal_collect(j, journal_prepare(j, "SELECT " JOB_COLUMNS " FROM job ORDER BY "
				  "(state IN ('done', 'aborted')), id DESC", ""), 0,
		       sizeof(**out), fill_job, release_jobs, (void **)out, n);
}

static void fill_disk(struct row *rw, void *p)
{
	struct sm_disk_row *r = p;

	rw->what = "disk: ";
	r->target = journal_row_text(rw, 0, false);
	r->state = journal_row_enum(rw, 1, "disk state", sm_disk_state_from_name);
	r->src_overlay = journal_row_text(rw, 2, false);
	r->dst_overlay = journal_row_text(rw, 3, false);
	r->error = journal_row_text(rw, 4, true);
	r->plan.target = sm_xstrdup_or_null(r->target);
	r->plan.src_overlay = sm_xstrdup_or_null(r->src_overlay);
	r->plan.dst_overlay = sm_xstrdup_or_null(r->dst_overlay);
	r->plan.virtual_size = (unsigned long long)journal_row_int(rw, 5, 0, ROW_SIZE_MAX);
	r->sync_writes = journal_row_bool(rw, 6);
	r->plan.kept = journal_row_text(rw, 7, true);
	r->plan.kept_format = journal_row_text(rw, 8, true);
	r->plan.kept_user = journal_row_text(rw, 9, true);
	r->plan.flat = journal_row_bool(rw, 10);
	r->pivoting = journal_row_bool(rw, 11);
}

static void fill_image(struct row *rw, void *p)
{
	struct sm_plan_image *img = p;

	rw->what = "image: ";
	img->src = journal_row_text(rw, 0, false);
	img->dst = journal_row_text(rw, 1, false);
	img->format = journal_row_text(rw, 2, false);
	img->src_backing = journal_row_text(rw, 3, true);
	img->dst_backing = journal_row_text(rw, 4, true);
	img->dst_backing_format = journal_row_text(rw, 5, true);
	img->virtual_size = (unsigned long long)journal_row_int(rw, 6, 0, ROW_SIZE_MAX);
	img->allocated = (unsigned long long)journal_row_int(rw, 7, 0, ROW_SIZE_MAX);
	img->dst_format = journal_row_text(rw, 8, false);
	(void)journal_row_int(rw, 9, 0, ROW_SIZE_MAX);  /* depth, checked by the caller */
	img->dst_rdev = (unsigned long long)journal_row_int(rw, 10, 0, ROW_SIZE_MAX);
	img->dst_diskseq = (unsigned long long)journal_row_int(rw, 11, 0, ROW_SIZE_MAX);
}

static void release_disks(void *p, size_t n)
{
	sm_disk_rows_free(p, n);
}

static void release_images(void *p, size_t n)
{
	struct sm_plan_disk d = { .images = p, .nimages = n };

	sm_plan_disk_release(&d);
}

/* The image rows of one disk: depths 0, 1, ... without a gap, at least one. */
static int disk_images(struct sm_journal *j, long long job_id, struct sm_plan_disk *plan)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT src_path, dst_path, format, src_backing, "
				   "dst_backing, dst_backing_format, virtual_size, allocated, "
				   "coalesce(dst_format, format) AS dst_format, depth, dst_rdev, dst_diskseq "
				   "FROM image "
				   "WHERE job_id = ? AND target = ? ORDER BY depth",
				   "is", job_id, plan->target);
	struct row rw = { .job = job_id };

	if (!st)
		return -1;
	if (journal_collect(j, st, job_id, sizeof(*plan->images), fill_image, release_images,
		    (void **)&plan->images, &plan->nimages) < 0)
		return -1;
	if (plan->nimages == 0)
		snprintf(rw.why, sizeof(rw.why), "disk '%.64s' has no image rows", plan->target);
	st = journal_prepare(j, "SELECT count(*) FROM image WHERE job_id = ? AND target = ? AND "
		     "depth >= 0 AND depth < ? AND typeof(depth) = 'integer'", "isi", job_id,
		     plan->target, (long long)plan->nimages);
	if (!st)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW ||
	    (size_t)sqlite3_column_int64(st, 0) != plan->nimages)
		if (!rw.why[0])
			snprintf(rw.why, sizeof(rw.why), "the depths of the images of disk "
				 "'%.64s' are not 0 to %zu", plan->target, plan->nimages - 1);
	sqlite3_finalize(st);
	return rw.why[0] ? journal_row_malformed(j, &rw) : 0;
}

int sm_journal_disk_list(struct sm_journal *j, long long job_id, struct sm_disk_row **out,
			 size_t *n)
{
	if (journal_collect(j, journal_prepare(j, "SELECT target, state, src_overlay, dst_overlay, error, "
			       "virtual_size, sync_writes, kept, kept_format, kept_user, flat, "
			       "pivoting FROM disk WHERE job_id = ? ORDER BY target", "i", job_id),
		    job_id, sizeof(**out), fill_disk, release_disks, (void **)out, n) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		if (disk_images(j, job_id, &(*out)[i].plan) < 0) {
			sm_disk_rows_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
	}
	return 0;
}

static void fill_step(struct row *rw, void *p)
{
	struct sm_step_row *r = p;

	rw->what = "step: ";
	r->phase = journal_row_text(rw, 0, false);
	r->target = journal_row_text(rw, 1, true);
	r->started_at = journal_row_real(rw, 2, 0, ROW_TIME_MAX);
	r->finished_at = journal_row_real(rw, 3, 0, ROW_TIME_MAX);
	r->error = journal_row_text(rw, 4, true);
}

static void release_steps(void *p, size_t n)
{
	sm_step_rows_free(p, n);
}

int sm_journal_step_list(struct sm_journal *j, long long job_id, struct sm_step_row **out,
			 size_t *n)
{
	return journal_collect(j, journal_prepare(j, "SELECT phase, target, started_at, coalesce(finished_at, "
				  "0) AS finished_at, error FROM step WHERE job_id = ? ORDER BY id",
				  "i", job_id),
		       job_id, sizeof(**out), fill_step, release_steps, (void **)out, n);
}

int sm_journal_job_check(struct sm_journal *j, long long job_id)
{
	struct sm_job_row job;
	struct sm_disk_row *d = NULL;
	struct sm_step_row *st = NULL;
	struct sm_file_row *f = NULL;
	size_t nd = 0, ns = 0, nf = 0;
	int rc;

	j->malformed = false;
	rc = sm_journal_job_get(j, job_id, &job);
	if (rc == 0)
		sm_error("no job %lld in the journal; see 'snapmove list'", job_id);
	if (rc <= 0)
		return rc == -2 ? -2 : -1;
	sm_job_row_release(&job);
	rc = sm_journal_disk_list(j, job_id, &d, &nd) < 0 ||
	     sm_journal_step_list(j, job_id, &st, &ns) < 0 ||
	     sm_journal_file_list(j, job_id, &f, &nf) < 0 ? -1 : 0;
	sm_disk_rows_free(d, nd);
	sm_step_rows_free(st, ns);
	sm_file_rows_free(f, nf);
	return rc < 0 && j->malformed ? -2 : rc;
}

void sm_job_row_release(struct sm_job_row *r)
{
	if (!r)
		return;
	free(r->domain_name);
	free(r->domain_uuid);
	free(r->dest_dir);
	free(r->copy_method);
	free(r->state);
	free(r->phase);
	free(r->error);
	free(r->dest_format);
	free(r->sync_writes);
	memset(r, 0, sizeof(*r));
}

void sm_job_rows_free(struct sm_job_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sm_job_row_release(&rows[i]);
	free(rows);
}

void sm_disk_rows_free(struct sm_disk_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].target);
		free(rows[i].state);
		free(rows[i].src_overlay);
		free(rows[i].dst_overlay);
		free(rows[i].error);
		sm_plan_disk_release(&rows[i].plan);
	}
	free(rows);
}

void sm_step_rows_free(struct sm_step_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].phase);
		free(rows[i].target);
		free(rows[i].error);
	}
	free(rows);
}

int sm_journal_job_state(struct sm_journal *j, long long job_id, enum sm_job_state *state,
			 char **error)
{
	struct sm_job_row row;
	int rc = sm_journal_job_get(j, job_id, &row);

	*error = NULL;
	if (rc != 1)
		return rc;
	*state = sm_job_row_state(&row);
	*error = sm_steal(&row.error);
	sm_job_row_release(&row);
	return 1;
}

int sm_journal_latest_disk_job(struct sm_journal *j, const char *domain, const char *target,
			       long long floor, long long *job_id)
{
	sqlite3_stmt *st = journal_prepare(j, "SELECT job.id FROM job JOIN disk ON disk.job_id = "
					   "job.id WHERE job.domain_name = ? AND disk.target = ? "
					   "AND job.id > ? ORDER BY job.id DESC LIMIT 1", "ssi",
					   domain, target, floor);
	int rc;

	*job_id = 0;
	if (!st)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)  /* an INTEGER PRIMARY KEY: always a whole number */
		*job_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : journal_db_error(j, "cannot read jobs");
}

/* The rows were checked as they were read: their names are known. */
enum sm_job_state sm_job_row_state(const struct sm_job_row *r)
{
	int v = sm_job_state_from_name(r->state);

	return v < 0 ? SM_JOB_FAILED : (enum sm_job_state)v;
}

enum sm_phase sm_job_row_phase(const struct sm_job_row *r)
{
	int v = sm_phase_from_name(r->phase);

	return v < 0 ? SM_PHASE_PLANNED : (enum sm_phase)v;
}

enum sm_disk_state sm_disk_row_state(const struct sm_disk_row *r)
{
	int v = sm_disk_state_from_name(r->state);

	return v < 0 ? SM_DISK_PLANNED : (enum sm_disk_state)v;
}

bool sm_job_row_finished(const struct sm_job_row *r)
{
	switch (sm_job_row_state(r)) {
	case SM_JOB_DONE:
	case SM_JOB_ABORTED:
		return true;
	case SM_JOB_RUNNING:
	case SM_JOB_FAILED:
	case SM_JOB_STATE_LAST:
		break;
	}
	return false;
}
