/* test_report.c: the text src/report.c prints for a filled result, line by
 * line as the commands have always printed it (the integration tests and
 * people's scripts read these lines): a move's, a resume's and an abort's
 * outcome with each disk's chains, the files kept, what --delete-source did,
 * a domain that is gone, a dry run, and a rebalance's plan table.
 */
#include "unit.h"

#include "job/outcome.h"
#include "report.h"
#include "util.h"

/* Run print on r into a string. */
static char *render(void (*print)(FILE *, const struct sm_job_result *),
		    const struct sm_job_result *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	print(f, r);
	fclose(f);
	return buf;
}

/* One disk vda: /src/a.qcow2 over /src/base.raw. */
static void one_disk(struct sm_job_result *r)
{
	static const char *const targets[] = { "vda" };

	sm_job_result_disks(r, targets, 1);
	sm_result_chain_add(&r->disks[0].before, "/src/a.qcow2", "qcow2");
	sm_result_chain_add(&r->disks[0].before, "/src/base.raw", "raw");
}

static void job_result(struct sm_job_result *r, enum sm_job_verb verb)
{
	memset(r, 0, sizeof(*r));
	r->verb = verb;
	r->outcome = SM_MOVE_OK;
	r->job = 7;
	r->domain = sm_xstrdup("web1");
	r->uuid = sm_xstrdup("c0ffee00-0000-4000-8000-000000000001");
	one_disk(r);
}

static void add_kept(struct sm_job_result *r, const char *path, const char *role)
{
	r->kept = sm_xrealloc(r->kept, (r->nkept + 1) * sizeof(*r->kept));
	r->kept[r->nkept].path = sm_xstrdup(path);
	r->kept[r->nkept].role = sm_xstrdup(role);
	r->nkept++;
}

static void test_move_done(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *out = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_MOVE);
	r.seconds = 12.34;
	r.now_read = true;
	r.disks[0].has_now = true;
	sm_result_chain_add(&r.disks[0].now, "/dst/a.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].now, "/dst/base.raw", "raw");
	add_kept(&r, "/src/a.qcow2.snapmove-7.qcow2", "src_overlay");
	out = render(sm_report_job, &r);
	assert_string_equal(out,
		"moved domain web1 in 12.3 s (job 7)\n"
		"  kept /src/a.qcow2.snapmove-7.qcow2 (the job's src_overlay, not deleted: see "
		"the warning above); delete it by hand if nothing needs it\n"
		"  vda before: /src/a.qcow2 (qcow2) <- /src/base.raw (raw)\n"
		"  vda now   : /dst/a.qcow2 (qcow2) <- /dst/base.raw (raw)\n"
		"the source images stay; 'snapmove cleanup 7' deletes those nothing uses\n");
	sm_job_result_release(&r);
}

/* A disk libvirt no longer shows has no "now" line; chains not read: none. */
static void test_move_done_chains_unread(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *a = NULL;
	SM_AUTOFREE char *b = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_MOVE);
	r.seconds = 0.04;
	r.now_read = true;
	a = render(sm_report_outcome, &r);
	assert_string_equal(a, "moved domain web1 in 0.0 s (job 7)\n"
			    "  vda before: /src/a.qcow2 (qcow2) <- /src/base.raw (raw)\n");
	r.now_read = false;
	b = render(sm_report_outcome, &r);
	assert_string_equal(b, "moved domain web1 in 0.0 s (job 7)\n");
	sm_job_result_release(&r);
}

/* Shown through on_done already: only what --delete-source did follows. */
static void test_move_delete_source(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *deleted = NULL;
	SM_AUTOFREE char *failed = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_MOVE);
	r.shown = true;
	r.delete_source = true;
	r.source_deleted = true;
	r.freed = 3ULL << 29;
	deleted = render(sm_report_job, &r);
	assert_string_equal(deleted, "deleted the source: 1.5 GiB freed\n");
	r.source_deleted = false;  /* its warning went with the progress lines */
	failed = render(sm_report_job, &r);
	assert_string_equal(failed, "");
	sm_job_result_release(&r);
}

static void test_resume_done(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *out = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_RESUME);
	sm_result_chain_add(&r.disks[0].after, "/dst/a.qcow2.snapmove-7.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].after, "/dst/a.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].after, "/dst/base.raw", "raw");
	r.delete_source = true;
	r.source_deleted = true;
	r.freed = 512;
	out = render(sm_report_job, &r);
	assert_string_equal(out,
		"finished job 7 of domain web1\n"
		"  vda now: /dst/a.qcow2.snapmove-7.qcow2 (qcow2) <- /dst/a.qcow2 (qcow2) <- "
		"/dst/base.raw (raw)\n"
		"deleted the source: 512 B freed\n");
	sm_job_result_release(&r);
}

static void test_abort_done(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *commit = NULL;
	SM_AUTOFREE char *stream = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_ABORT);
	sm_result_chain_add(&r.disks[0].after, "/src/a.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].after, "/src/base.raw", "raw");
	add_kept(&r, "/dst/a.qcow2", "dst_image");
	commit = render(sm_report_job, &r);
	assert_string_equal(commit,
		"aborted job 7 of domain web1\n"
		"  vda now: /src/a.qcow2 (qcow2) <- /src/base.raw (raw)\n"
		"  kept /dst/a.qcow2 (the job's dst_image, not deleted: see the warning above); "
		"delete it by hand if nothing needs it\n");
	free(r.disks[0].after.images[0].path);
	r.disks[0].after.images[0].path = sm_xstrdup("/src/a.qcow2.snapmove-7.qcow2");
	r.disks[0].streamed = true;
	r.via_stream = true;
	stream = render(sm_report_outcome, &r);
	assert_string_equal(stream,
		"aborted job 7 of domain web1\n"
		"  vda now: /src/a.qcow2.snapmove-7.qcow2 (qcow2, the original image streamed "
		"into it) <- /src/base.raw (raw)\n"
		"  kept /dst/a.qcow2 (the job's dst_image, not deleted: see the warning above); "
		"delete it by hand if nothing needs it\n");
	sm_job_result_release(&r);
}

/* A job that did not end well prints nothing here: the CLI prints the
 * error and the next steps. */
static void test_failed_prints_nothing(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *out = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_MOVE);
	r.outcome = SM_MOVE_FAILED;
	r.error = sm_xstrdup("disk 'vda' failed");
	out = render(sm_report_job, &r);
	assert_string_equal(out, "");
	sm_job_result_release(&r);
}

static void test_gone(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *out = NULL;

	(void)state;
	job_result(&r, SM_JOB_VERB_RESUME);
	r.outcome = SM_MOVE_FAILED;
	r.gone = true;
	r.disks[0].where = SM_WHERE_SRC_OVERLAY;
	sm_result_chain_add(&r.disks[0].after, "/src/a.qcow2.snapmove-7.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].after, "/src/a.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].after, "/src/base.raw", "raw");
	out = render(sm_report_job, &r);
	assert_string_equal(out,
		"domain 'web1' (c0ffee00-0000-4000-8000-000000000001) no longer exists: a "
		"transient domain that was shut down or destroyed has no definition to "
		"rewrite.  Its data is here:\n"
		"  vda: the newest writes are in the source overlay, over the original chain\n"
		"    /src/a.qcow2.snapmove-7.qcow2 (qcow2) <- /src/a.qcow2 (qcow2) <- "
		"/src/base.raw (raw)\n"
		"Start a domain named 'web1' on those files, then run 'snapmove resume 7' or "
		"'snapmove abort 7'.\n");
	sm_job_result_release(&r);
}

static void test_dry_run(void **state)
{
	struct sm_job_result r;
	SM_AUTOFREE char *out = NULL;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.dry_run = true;
	r.outcome = SM_MOVE_OK;
	r.domain = sm_xstrdup("web1");
	r.uuid = sm_xstrdup("c0ffee00-0000-4000-8000-000000000001");
	r.persistent = true;
	r.dest = sm_xstrdup("/dst");
	r.dest_needs = 100ULL << 20;
	r.dest_free = 10ULL << 30;
	one_disk(&r);
	sm_result_chain_add(&r.disks[0].after, "/dst/a.qcow2", "qcow2");
	sm_result_chain_add(&r.disks[0].after, "/dst/base.raw", "raw");
	r.disks[0].bytes = 2048;
	r.disks[0].kept = sm_xstrdup("/tpl/t.qcow2");
	r.disks[0].kept_user = sm_xstrdup("domain 'other'");
	out = render(sm_report_job, &r);
	assert_string_equal(out,
		"dry run: nothing was changed\n"
		"domain web1 (c0ffee00-0000-4000-8000-000000000001), persistent\n"
		"  vda before: /src/a.qcow2 (qcow2) <- /src/base.raw (raw)\n"
		"  vda after : /dst/a.qcow2 (qcow2) <- /dst/base.raw (raw)\n"
		"  vda keeps '/tpl/t.qcow2' (and what is below it) where it is: it is also used "
		"by domain 'other' (--copy-shared copies it)\n"
		"bytes to copy: 2.0 KiB\n"
		"destination /dst: needs 100.0 MiB, 10.0 GiB free\n");
	sm_job_result_release(&r);
}

static void test_plan_table(void **state)
{
	struct sm_storage st[] = {
		{ .name = (char *)"/a", .size = 10ULL << 30 },
		{ .name = (char *)"/b", .size = 20ULL << 30 },
	};
	struct sm_unit units[] = {
		{ .domain = (char *)"web1", .disk = (char *)"vda", .running = true, .storage = 0 },
		{ .domain = (char *)"db1", .disk = (char *)"vdb", .storage = 0,
		  .why_not = (char *)"an unfinished job" },
	};
	struct sm_balance_move mv = { .unit = 0, .from = 0, .to = 1, .bytes = 1ULL << 30 };
	unsigned long long before[] = { 1ULL << 30, 15ULL << 30 };
	unsigned long long after[] = { 2ULL << 30, 14ULL << 30 };
	struct sm_inventory inv = { .storages = st, .nstorages = 2, .units = units, .nunits = 2 };
	struct sm_balance_plan p = { .moves = &mv, .nmoves = 1, .free_before = before,
				     .free_after = after, .bytes = 1ULL << 30 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	sm_report_plan_table(f, &inv, &p);
	fclose(f);
	assert_string_equal(buf,
		"#    DOMAIN                   DISK   FROM                     TO                  "
		"            BYTES\n"
		"1    web1                     vda    /a                       /b                  "
		"          1.0 GiB\n"
		"\n"
		"STORAGE                                  SIZE     FREE NOW   FREE AFTER\n"
		"/a                                   10.0 GiB      1.0 GiB      2.0 GiB\n"
		"/b                                   20.0 GiB     15.0 GiB     14.0 GiB\n"
		"1 move, 1.0 GiB in all\n"
		"not movable: db1 disk vdb on /a: an unfinished job\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_move_done),
		cmocka_unit_test(test_move_done_chains_unread),
		cmocka_unit_test(test_move_delete_source),
		cmocka_unit_test(test_resume_done),
		cmocka_unit_test(test_abort_done),
		cmocka_unit_test(test_failed_prints_nothing),
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_plan_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
