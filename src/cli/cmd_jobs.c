/* cmd_jobs.c: 'snapmove list' and 'snapmove status JOB': read the journal and
 * show it.  Nothing here changes a job.
 */
#include "cleanup.h"
#include "cli/cli.h"
#include "events.h"
#include "journal.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

static char *format_time(double t, char *buf, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;

	if (t <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	localtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static struct json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static bool unfinished(const struct sm_job_row *r)
{
	return !sm_job_row_finished(r);
}

static struct json_object *job_json(struct sm_journal *j, const struct sm_job_row *r)
{
	struct json_object *o = json_object_new_object();
	struct sm_disk_row *disks = NULL;
	struct json_object *targets = json_object_new_array();
	size_t nd = 0;

	json_object_object_add(o, "job", json_object_new_int64(r->id));
	json_object_object_add(o, "domain", jstr(r->domain_name));
	json_object_object_add(o, "domain_uuid", jstr(r->domain_uuid));
	json_object_object_add(o, "persistent", json_object_new_boolean(r->persistent));
	json_object_object_add(o, "state", jstr(r->state));
	json_object_object_add(o, "phase", jstr(r->phase));
	json_object_object_add(o, "dest", jstr(r->dest_dir));
	json_object_object_add(o, "error", jstr(r->error));
	json_object_object_add(o, "created", json_object_new_double(r->created_at));
	json_object_object_add(o, "finished", r->finished_at > 0
				  ? json_object_new_double(r->finished_at) : NULL);
	if (sm_journal_disk_list(j, r->id, &disks, &nd) == 0)
		for (size_t i = 0; i < nd; i++)
			json_object_array_add(targets, json_object_new_string(disks[i].target));
	sm_disk_rows_free(disks, nd);
	json_object_object_add(o, "disks", targets);
	if (unfinished(r)) {
		struct json_object *next = json_object_new_object();
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "snapmove resume %lld", r->id);
		json_object_object_add(next, "resume", json_object_new_string(cmd));
		snprintf(cmd, sizeof(cmd), "snapmove abort %lld", r->id);
		json_object_object_add(next, "abort", json_object_new_string(cmd));
		json_object_object_add(o, "next", next);
	}
	return o;
}

/* Open the journal, never creating it: 0, -1 (printed), or 1 when the
 * default journal is missing and missing_ok (no job was ever run here). */
static int open_journal(const struct sm_cli *cli, struct sm_journal **j, bool missing_ok)
{
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path)
					    : sm_journal_default_path();
	bool missing;

	if (sm_journal_open_readonly(db, j, &missing) < 0) {
		if (missing && missing_ok && !cli->db_path)
			return 1;
		sm_cli_print_error();
		return -1;
	}
	return 0;
}

/* Every row of the job reads back (a malformed one is an error naming the
 * job), so nothing is printed of a job that cannot be shown whole. */
static int job_readable(struct sm_journal *j, long long id, bool all)
{
	struct sm_disk_row *d = NULL;
	struct sm_step_row *st = NULL;
	struct sm_file_row *f = NULL;
	size_t nd = 0, ns = 0, nf = 0;
	int rc = sm_journal_disk_list(j, id, &d, &nd) < 0 ||
		 (all && (sm_journal_step_list(j, id, &st, &ns) < 0 ||
			  sm_journal_file_list(j, id, &f, &nf) < 0)) ? -1 : 0;

	sm_disk_rows_free(d, nd);
	sm_step_rows_free(st, ns);
	sm_file_rows_free(f, nf);
	return rc;
}

static char *job_disks(struct sm_journal *j, long long id)
{
	struct sm_disk_row *disks = NULL;
	size_t n = 0, len = 1;
	char *s;

	if (sm_journal_disk_list(j, id, &disks, &n) < 0)
		return sm_xstrdup("?");
	for (size_t i = 0; i < n; i++)
		len += strlen(disks[i].target) + 1;
	s = sm_xcalloc(1, len);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, disks[i].target);
	}
	sm_disk_rows_free(disks, n);
	return s;
}

int sm_cmd_list(const struct sm_cli *cli, int argc, char **argv)
{
	struct sm_journal *j = NULL;
	struct sm_job_row *jobs = NULL;
	size_t n = 0;
	int ret = SM_EXIT_OK, rc;

	if (sm_cli_simple_args("list", argc, argv, 0, 0, "usage: snapmove list\n\nList the journal's "
			"jobs, unfinished ones first.\n", &ret) < 0)
		return ret;
	rc = open_journal(cli, &j, true);
	if (rc < 0)
		return SM_EXIT_REFUSED;
	if (rc == 0 && sm_journal_job_list(j, &jobs, &n) < 0) {
		sm_cli_print_error();
		sm_journal_free(j);
		return SM_EXIT_FAILED;
	}
	for (size_t i = 0; i < n; i++) {
		if (job_readable(j, jobs[i].id, false) < 0) {
			sm_cli_print_error();
			sm_job_rows_free(jobs, n);
			sm_journal_free(j);
			return SM_EXIT_FAILED;
		}
	}
	if (sm_events_enabled()) {
		struct json_object *doc = json_object_new_object();
		struct json_object *arr = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, job_json(j, &jobs[i]));
		json_object_object_add(doc, "jobs", arr);
		sm_json_print(doc);
		sm_job_rows_free(jobs, n);
		sm_journal_free(j);
		return ret;
	}
	if (n == 0)
		printf("no jobs\n");
	else
		printf("%-5s %-20s %-8s %-11s %-12s %-19s %s\n", "JOB", "DOMAIN", "STATE", "PHASE",
		       "DISKS", "STARTED", "DEST");
	for (size_t i = 0; i < n; i++) {
		SM_AUTOFREE char *disks = job_disks(j, jobs[i].id);
		char t[32];

		printf("%-5lld %-20s %-8s %-11s %-12s %-19s %s\n", jobs[i].id,
		       jobs[i].domain_name, jobs[i].state, jobs[i].phase, disks,
		       format_time(jobs[i].created_at, t, sizeof(t)), jobs[i].dest_dir);
		if (unfinished(&jobs[i]))
			printf("      finish: snapmove resume %lld   undo: snapmove abort %lld\n",
			       jobs[i].id, jobs[i].id);
	}
	sm_job_rows_free(jobs, n);
	sm_journal_free(j);
	return ret;
}

/* The job's device (made by its provisioner) that an image went onto, or
 * NULL: a device the caller named (--dest-dev). */
static const struct sm_device_row *provisioned(const struct sm_device_row *devs, size_t n,
					       unsigned long long rdev)
{
	for (size_t i = 0; i < n; i++)
		if (devs[i].rdev == rdev && devs[i].state != SM_DEVICE_FAILED)
			return &devs[i];
	return NULL;
}

/* An image's destination device, for status --json: null for a file. */
static struct json_object *dest_device_json(const struct sm_plan_image *img,
					    const struct sm_device_row *devs, size_t n)
{
	const struct sm_device_row *d;
	struct json_object *o;
	char num[32];

	if (!img->dst_rdev)
		return NULL;
	d = provisioned(devs, n, img->dst_rdev);
	o = json_object_new_object();
	snprintf(num, sizeof(num), "%u:%u", major((dev_t)img->dst_rdev),
		 minor((dev_t)img->dst_rdev));
	json_object_object_add(o, "path", jstr(img->dst));
	json_object_object_add(o, "rdev", json_object_new_string(num));
	json_object_object_add(o, "provisioned", json_object_new_boolean(d != NULL));
	json_object_object_add(o, "device", d ? json_object_new_int64(d->id) : NULL);
	json_object_object_add(o, "provisioner", d ? jstr(d->provisioner) : NULL);
	json_object_object_add(o, "device_state", d ? jstr(sm_device_state_name(d->state)) : NULL);
	return o;
}

static void print_status_json(struct sm_journal *j, const struct sm_job_row *job)
{
	struct sm_device_row *devs = NULL;
	size_t ndevs = 0;
	struct json_object *doc = job_json(j, job);
	struct json_object *disks = json_object_new_array();
	struct json_object *phases = json_object_new_array();
	struct json_object *files = json_object_new_array();
	struct sm_disk_row *d = NULL;
	struct sm_step_row *st = NULL;
	struct sm_file_row *f = NULL;
	size_t nd = 0, ns = 0, nf = 0;

	sm_ignore_value(sm_journal_device_list_job(j, job->id, &devs, &ndevs));  /* none shown */
	if (sm_journal_disk_list(j, job->id, &d, &nd) == 0) {
		for (size_t i = 0; i < nd; i++) {
			struct json_object *o = json_object_new_object();
			struct json_object *imgs = json_object_new_array();

			json_object_object_add(o, "target", jstr(d[i].target));
			json_object_object_add(o, "state", jstr(d[i].state));
			json_object_object_add(o, "error", jstr(d[i].error));
			json_object_object_add(o, "sync_writes", json_object_new_boolean(d[i].sync_writes));
			json_object_object_add(o, "kept", jstr(d[i].plan.kept));
			for (size_t k = 0; k < d[i].plan.nimages; k++) {
				struct json_object *im = json_object_new_object();

				json_object_object_add(im, "source", jstr(d[i].plan.images[k].src));
				json_object_object_add(im, "destination", jstr(d[i].plan.images[k].dst));
				json_object_object_add(im, "format", jstr(d[i].plan.images[k].format));
				json_object_object_add(im, "dest_format",
						       jstr(d[i].plan.images[k].dst_format));
				json_object_object_add(im, "dest_device",
						       dest_device_json(&d[i].plan.images[k], devs,
									ndevs));
				json_object_array_add(imgs, im);
			}
			json_object_object_add(o, "images", imgs);
			json_object_array_add(disks, o);
		}
	}
	if (sm_journal_step_list(j, job->id, &st, &ns) == 0) {
		for (size_t i = 0; i < ns; i++) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "phase", jstr(st[i].phase));
			json_object_object_add(o, "started", json_object_new_double(st[i].started_at));
			json_object_object_add(o, "seconds", st[i].finished_at > 0
					       ? json_object_new_double(st[i].finished_at -
									st[i].started_at) : NULL);
			json_object_object_add(o, "error", jstr(st[i].error));
			json_object_array_add(phases, o);
		}
	}
	if (sm_journal_file_list(j, job->id, &f, &nf) == 0) {
		for (size_t i = 0; i < nf; i++) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "path", jstr(f[i].path));
			json_object_object_add(o, "role", jstr(f[i].role));
			json_object_object_add(o, "state", jstr(f[i].state));
			json_object_array_add(files, o);
		}
	}
	json_object_object_add(doc, "disk_states", disks);
	json_object_object_add(doc, "phases", phases);
	json_object_object_add(doc, "files", files);
	sm_disk_rows_free(d, nd);
	sm_step_rows_free(st, ns);
	sm_file_rows_free(f, nf);
	sm_device_rows_free(devs, ndevs);
	sm_json_print(doc);
}

static void print_status(struct sm_journal *j, const struct sm_job_row *job)
{
	if (sm_events_enabled()) {
		print_status_json(j, job);
		return;
	}
	struct sm_disk_row *disks = NULL;
	struct sm_step_row *steps = NULL;
	struct sm_file_row *files = NULL;
	struct sm_device_row *devs = NULL;
	size_t nd = 0, ns = 0, nf = 0, ndevs = 0;
	char t1[32], t2[32];

	sm_ignore_value(sm_journal_device_list_job(j, job->id, &devs, &ndevs));  /* none shown */
	printf("job %lld: %s, phase %s\n", job->id, job->state, job->phase);
	printf("  domain:   %s (%s, %s)\n", job->domain_name, job->domain_uuid,
	       job->persistent ? "persistent" : "transient");
	printf("  dest:     %s\n", job->dest_dir);
	if (job->parallel)
		printf("  copy:     method %s, up to %u disks at once\n",
		       job->copy_method ? job->copy_method : "auto", job->parallel);
	else
		printf("  copy:     method %s, disks at once: one per device of the destination\n",
		       job->copy_method ? job->copy_method : "auto");
	printf("  started:  %s\n", format_time(job->created_at, t1, sizeof(t1)));
	printf("  finished: %s", format_time(job->finished_at, t2, sizeof(t2)));
	if (job->finished_at > 0)
		printf(" (%.1f s)", job->finished_at - job->created_at);
	printf("\n");
	if (job->error)
		printf("  error:    %s\n", job->error);
	if (sm_journal_disk_list(j, job->id, &disks, &nd) == 0) {
		printf("disks:\n");
		for (size_t i = 0; i < nd; i++) {
			printf("  %s: %s%s%s%s\n", disks[i].target, disks[i].state,
			       disks[i].sync_writes ? " (write-blocking mirror)" : "",
			       disks[i].error ? ": " : "", disks[i].error ? disks[i].error : "");
			for (size_t k = 0; k < disks[i].plan.nimages; k++) {
				const struct sm_plan_image *img = &disks[i].plan.images[k];
				const struct sm_device_row *dv = provisioned(devs, ndevs, img->dst_rdev);

				printf("    %s -> %s (%s)\n", img->src, img->dst, img->format);
				if (img->dst_rdev && dv)
					printf("      block device %u:%u, provisioned by '%s' (device "
					       "%lld, %s)\n", major((dev_t)img->dst_rdev),
					       minor((dev_t)img->dst_rdev), dv->provisioner, dv->id,
					       sm_device_state_name(dv->state));
				else if (img->dst_rdev)
					printf("      block device %u:%u, given with --dest-dev (not "
					       "provisioned)\n", major((dev_t)img->dst_rdev),
					       minor((dev_t)img->dst_rdev));
			}
		}
	}
	if (sm_job_row_state(job) == SM_JOB_DONE) {
		unsigned long long left = 0;
		size_t nleft = 0;
		char b[32];

		struct sm_srcfile *src = NULL;
		size_t nsrc = 0;

		if (sm_srcfile_list(j, job->id, SM_SRCFILE_IMAGE, &src, &nsrc) == 0) {
			for (size_t k = 0; k < nsrc; k++) {
				struct stat sb;

				if (lstat(src[k].path, &sb) == 0) {
					left += (unsigned long long)sb.st_blocks * 512ULL;
					nleft++;
				}
			}
			sm_srcfiles_free(src, nsrc);
		}
		if (nleft)
			printf("source: %zu image%s left (%s); 'snapmove cleanup %lld' deletes "
			       "those no domain or image uses\n", nleft, nleft == 1 ? "" : "s",
			       sm_format_bytes(left, b, sizeof(b)), job->id);
	}
	if (sm_journal_step_list(j, job->id, &steps, &ns) == 0) {
		printf("phases:\n");
		for (size_t i = 0; i < ns; i++) {
			if (steps[i].finished_at > 0)
				printf("  %-11s %7.2f s%s%s\n", steps[i].phase,
				       steps[i].finished_at - steps[i].started_at,
				       steps[i].error ? "  failed: " : "",
				       steps[i].error ? steps[i].error : "");
			else
				printf("  %-11s (not finished)\n", steps[i].phase);
		}
	}
	if (sm_journal_file_list(j, job->id, &files, &nf) == 0) {
		printf("files:\n");
		for (size_t i = 0; i < nf; i++)
			printf("  %-8s %-11s %s\n", files[i].state, files[i].role, files[i].path);
	}
	for (size_t i = 0; i < ndevs; i++) {
		if (i == 0)
			printf("devices (made by its provisioner):\n");
		printf("  %-5lld %-9s %-24s %s\n", devs[i].id, sm_device_state_name(devs[i].state),
		       devs[i].name, devs[i].path ? devs[i].path : "-");
	}
	sm_disk_rows_free(disks, nd);
	sm_step_rows_free(steps, ns);
	sm_file_rows_free(files, nf);
	sm_device_rows_free(devs, ndevs);
}

int sm_cmd_status(const struct sm_cli *cli, int argc, char **argv)
{
	struct sm_journal *j = NULL;
	struct sm_job_row job;
	long long id;
	int ret = SM_EXIT_OK, rc;

	if (sm_cli_simple_args("status", argc, argv, 1, 1, "usage: snapmove status JOB\n\nShow a "
			"job (a number, or a domain with one unfinished job): state, phase,\ndisks, phase timings and the files it made.\n",
			&ret) < 0)
		return ret;
	if (open_journal(cli, &j, false) < 0)
		return SM_EXIT_REFUSED;
	if (sm_cli_resolve_job(j, argv[optind], &id) < 0) {
		sm_cli_print_error();
		sm_journal_free(j);
		return SM_EXIT_REFUSED;
	}
	rc = sm_journal_job_get(j, id, &job);
	if (rc < 0) {
		sm_cli_print_error();
		ret = SM_EXIT_FAILED;
	} else if (rc == 0) {
		sm_error("no job %lld in the journal; see 'snapmove list'", id);
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
	} else if (job_readable(j, id, true) < 0) {
		sm_cli_print_error();
		sm_job_row_release(&job);
		ret = SM_EXIT_FAILED;
	} else {
		print_status(j, &job);
		sm_job_row_release(&job);
	}
	sm_journal_free(j);
	return ret;
}
