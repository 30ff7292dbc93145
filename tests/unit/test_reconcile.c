/* test_reconcile.c: the reconciliation decision of docs/design.md
 * (sm_reconcile_disk), one test per row of its table: what libvirt shows of
 * a disk (its active image, the image below, its block job) and what the
 * journal and files say -> the state resume and abort take, or a refusal.
 * And the phases: their names and order in src/job.c against the phase table
 * and the resume order written in docs/design.md, so neither drifts alone.
 *
 * The disk: chain A <- B moved from /src to /dst by job 7.
 */
#include "unit.h"

#include "states.h"
#include "job/reconcile.h"
#include "util.h"

#define SRC_A "/src/a.qcow2"
#define SRC_B "/src/b.qcow2"
#define DST_A "/dst/a.qcow2"
#define DST_B "/dst/b.qcow2"
#define SRC_OVL "/src/a.qcow2.snapmove-7.qcow2"
#define DST_OVL "/dst/a.qcow2.snapmove-7.qcow2"

static struct sm_plan_image images[] = {
	{ .src = (char *)SRC_A, .dst = (char *)DST_A, .format = (char *)"qcow2",
	  .dst_format = (char *)"qcow2" },
	{ .src = (char *)SRC_B, .dst = (char *)DST_B, .format = (char *)"qcow2",
	  .dst_format = (char *)"qcow2" },
};

static const struct sm_plan_disk plan = {
	.target = (char *)"vda",
	.src_overlay = (char *)SRC_OVL,
	.dst_overlay = (char *)DST_OVL,
	.images = images,
	.nimages = 2,
};

static const struct sm_jobctx job = { .job = 7, .domain_name = (char *)"guest" };

/* The disk as libvirt shows it: top over below (NULL: no image below), with
 * a block job (<mirror job='JOB'> onto mirror_path) or none. */
struct shown {
	struct sm_image chain[2];
	struct sm_disk d;
};

static const struct sm_disk *shown(struct shown *s, const char *top, const char *below,
				   const char *mirror_job, const char *mirror_path)
{
	memset(s, 0, sizeof(*s));
	s->chain[0].path = (char *)top;
	s->chain[1].path = (char *)below;
	s->d.target = (char *)"vda";
	s->d.chain = s->chain;
	s->d.nchain = below ? 2 : top ? 1 : 0;
	s->d.mirror_job = (char *)mirror_job;
	s->d.mirror_path = (char *)mirror_path;
	return &s->d;
}

/* sm_reconcile_disk that must succeed with state want and the two flags. */
static void taken(const struct sm_disk *d, enum sm_disk_state journal, bool all_dst,
		  bool all_copied, enum sm_disk_state want, bool mirroring, bool committing)
{
	struct sm_observed o;

	sm_error_clear();
	memset(&o, 0xa5, sizeof(o));
	if (sm_reconcile_disk(&job, &plan, d, journal, all_dst, all_copied, &o) != 0) {
		print_error("refused: %s\n", sm_error_message());
		fail();
	}
	assert_string_equal(sm_disk_state_name(o.state), sm_disk_state_name(want));
	assert_int_equal(o.mirroring, mirroring);
	assert_int_equal(o.committing, committing);
	assert_false(o.streamed);
}

/* sm_reconcile_disk that must refuse, its error containing each of the
 * NULL-terminated phrases. */
static void refused(const struct sm_disk *d, enum sm_disk_state journal, ...)
{
	struct sm_observed o;
	va_list ap;
	const char *want;

	sm_error_clear();
	assert_int_equal(sm_reconcile_disk(&job, &plan, d, journal, true, true, &o), -1);
	va_start(ap, journal);
	while ((want = va_arg(ap, const char *)))
		assert_contains(sm_error_message(), want);
	va_end(ap);
}

/* ---- no definition, no image, a foreign block job ---- */

/* The domain is gone (a transient one): nothing to look at, the journal
 * stands, and no block job can run. */
static void test_no_definition(void **state)
{
	(void)state;
	for (int s = 0; s < SM_DISK_STATE_LAST; s++)
		taken(NULL, (enum sm_disk_state)s, false, false, (enum sm_disk_state)s,
		      false, false);
}

static void test_no_image(void **state)
{
	struct shown s;

	(void)state;
	refused(shown(&s, NULL, NULL, NULL, NULL), SM_DISK_COPIED,
		"disk 'vda' of domain 'guest' has no image now", "job 7",
		"'snapmove status 7'", NULL);
}

/* A block job snapmove did not start is refused whatever image the disk is
 * on: a pull, a (non-active) commit, a copy onto any file but the
 * destination overlay. */
static void test_foreign_block_job(void **state)
{
	static const char *const tops[] = { SRC_A, SRC_OVL, DST_OVL, DST_A };
	struct shown s;

	(void)state;
	for (size_t i = 0; i < SM_ARRAY_LEN(tops); i++) {
		refused(shown(&s, tops[i], NULL, "pull", NULL), SM_DISK_COPIED,
			"disk 'vda' has a block job snapmove did not start (pull)",
			"'virsh blockjob guest vda --abort'", NULL);
		refused(shown(&s, tops[i], NULL, "commit", SRC_B), SM_DISK_COPIED,
			"did not start (commit)", NULL);
		refused(shown(&s, tops[i], NULL, "copy", "/elsewhere/a.qcow2"), SM_DISK_COPIED,
			"did not start (copy)", NULL);
	}
}

/* ---- the original image ---- */

/* Row "the original image": planned, whatever the journal said (an abort
 * whose commit back pivoted before its record; a snapshot never taken). */
static void test_original_image(void **state)
{
	struct shown s;

	(void)state;
	for (int j = 0; j < SM_DISK_STATE_LAST; j++)
		taken(shown(&s, SRC_A, SRC_B, NULL, NULL), (enum sm_disk_state)j, true, true,
		      SM_DISK_PLANNED, false, false);
}

/* Not in the old table: a mirror onto the destination overlay libvirt shows
 * from the original image is dropped (snapmove mirrors only from the source
 * overlay). */
static void test_original_image_mirror(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_A, SRC_B, "copy", DST_OVL), SM_DISK_MIRRORING, true, false,
	      SM_DISK_PLANNED, false, false);
}

/* Not in the old table: an active commit of the original image is refused
 * as someone else's block job ('virsh blockcommit --active' of A): no step
 * of snapmove starts one there (abort's commit back runs on the source
 * overlay, the final commit on the destination overlay).  Before, it was
 * taken as snapmove's own, and abort pivoted it (seen live: the domain ended
 * on B) or, --via stream, cancelled it and streamed B into A. */
static void test_original_image_active_commit(void **state)
{
	struct shown s;

	(void)state;
	refused(shown(&s, SRC_A, SRC_B, "active-commit", SRC_B), SM_DISK_PLANNED,
		"block job snapmove did not start", "active commit of its original image",
		"virsh blockjob", "--abort", NULL);
}

/* ---- the source overlay ---- */

/* Row "the source overlay": the state comes from the files, not the journal. */
static void test_source_overlay_snapshotted(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, SRC_A, NULL, NULL), SM_DISK_PLANNED, false, false,
	      SM_DISK_SNAPSHOTTED, false, false);
}

static void test_source_overlay_dest_created(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, SRC_A, NULL, NULL), SM_DISK_SNAPSHOTTED, true, false,
	      SM_DISK_DEST_CREATED, false, false);
}

static void test_source_overlay_copied(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, SRC_A, NULL, NULL), SM_DISK_DEST_CREATED, true, true,
	      SM_DISK_COPIED, false, false);
}

/* The mirror onto the destination overlay runs: at least mirroring; copied
 * stays copied (a resume's copy runs before its mirror). */
static void test_source_overlay_mirroring(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, SRC_A, "copy", DST_OVL), SM_DISK_DEST_CREATED, true, false,
	      SM_DISK_MIRRORING, true, false);
	taken(shown(&s, SRC_OVL, SRC_A, "copy", DST_OVL), SM_DISK_MIRRORING, true, true,
	      SM_DISK_COPIED, true, false);
	/* Not in the old table: a destination image missing under a running
	 * mirror still gives mirroring, never below it. */
	taken(shown(&s, SRC_OVL, SRC_A, "copy", DST_OVL), SM_DISK_MIRRORING, false, false,
	      SM_DISK_MIRRORING, true, false);
}

/* An active commit on the source overlay: abort's commit back. */
static void test_source_overlay_committing(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, SRC_A, "active-commit", SRC_A), SM_DISK_COPIED, true, true,
	      SM_DISK_COPIED, false, true);
	taken(shown(&s, SRC_OVL, SRC_A, "active-commit", SRC_A), SM_DISK_SNAPSHOTTED, false,
	      false, SM_DISK_SNAPSHOTTED, false, true);
}

/* Not in the old table: the journal ahead of libvirt (ready, pivoted: a pivot
 * that did not happen, or that libvirt did not see, which check_pivot_seen
 * in reconcile.c then looks at) gives way to the files; ready is never taken
 * (the sync phase waits again). */
static void test_source_overlay_journal_ahead(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, SRC_A, "copy", DST_OVL), SM_DISK_READY, true, true,
	      SM_DISK_COPIED, true, false);
	taken(shown(&s, SRC_OVL, SRC_A, NULL, NULL), SM_DISK_PIVOTED, true, true,
	      SM_DISK_COPIED, false, false);
	taken(shown(&s, SRC_OVL, SRC_A, NULL, NULL), SM_DISK_DONE, true, false,
	      SM_DISK_DEST_CREATED, false, false);
}

/* Not in the old table: the overlay alone (a persistent definition without
 * its <backingStore>, the domain shut off) is taken as over the original. */
static void test_source_overlay_alone(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, SRC_OVL, NULL, NULL, NULL), SM_DISK_COPIED, true, true,
	      SM_DISK_COPIED, false, false);
}

/* Not in the old table: the overlay over the image below the original one
 * is what an 'abort --via stream' leaves once its stream ended (crash point
 * abort:disk, or a later disk failing): streamed, so that abort can be run
 * again and resume and abort --via commit refuse it (t0191).  Before, it was
 * refused as a chain edited by hand, and the job could be neither aborted
 * nor resumed.  With a mirror or a commit running it is not abort's. */
static void test_source_overlay_streamed(void **state)
{
	struct shown s;
	struct sm_observed o;

	(void)state;
	sm_error_clear();
	assert_int_equal(sm_reconcile_disk(&job, &plan, shown(&s, SRC_OVL, SRC_B, NULL, NULL),
					   SM_DISK_MIRRORING, true, true, &o), 0);
	assert_true(o.streamed);
	assert_int_equal(o.state, SM_DISK_SNAPSHOTTED);
	assert_false(o.mirroring);
	assert_false(o.committing);
	refused(shown(&s, SRC_OVL, SRC_B, "copy", DST_OVL), SM_DISK_SNAPSHOTTED,
		"but over '" SRC_B "'", "not over its original image", NULL);
	refused(shown(&s, SRC_OVL, SRC_B, "active-commit", SRC_B), SM_DISK_SNAPSHOTTED,
		"but over '" SRC_B "'", "not over its original image", NULL);
}

/* Not in the old table: the overlay over another image (a chain edited by
 * hand) is refused. */
static void test_source_overlay_over_other(void **state)
{
	struct shown s;

	(void)state;
	refused(shown(&s, SRC_OVL, "/elsewhere/x.qcow2", NULL, NULL), SM_DISK_SNAPSHOTTED,
		"disk 'vda' runs on the overlay '" SRC_OVL "' but over '/elsewhere/x.qcow2'",
		"not over its original image '" SRC_A "'", "job 7 stops here",
		"'snapmove chain guest vda'", NULL);
}

/* ---- the destination overlay ---- */

/* Row "the destination overlay": pivoted, the final commit picked up. */
static void test_destination_overlay(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, DST_OVL, DST_A, NULL, NULL), SM_DISK_READY, true, true,
	      SM_DISK_PIVOTED, false, false);
	taken(shown(&s, DST_OVL, DST_A, "active-commit", DST_A), SM_DISK_PIVOTED, true, true,
	      SM_DISK_PIVOTED, false, true);
	/* The journal behind (a crash before the pivot's record). */
	taken(shown(&s, DST_OVL, DST_A, NULL, NULL), SM_DISK_SNAPSHOTTED, true, false,
	      SM_DISK_PIVOTED, false, false);
}

/* Not in the old table: the journal says collapsed (the commit folded the
 * overlay, libvirt lost its pivot or the definition lags): collapsed stands,
 * and the commit libvirt still shows is not snapmove's to act on. */
static void test_destination_overlay_collapsed(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, DST_OVL, DST_A, "active-commit", DST_A), SM_DISK_COLLAPSED, true, true,
	      SM_DISK_COLLAPSED, false, false);
	taken(shown(&s, DST_OVL, DST_A, NULL, NULL), SM_DISK_COLLAPSED, true, true,
	      SM_DISK_COLLAPSED, false, false);
}

/* Not in the old table: done on the destination overlay (--keep-overlay). */
static void test_destination_overlay_done(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, DST_OVL, DST_A, NULL, NULL), SM_DISK_DONE, true, true,
	      SM_DISK_DONE, false, false);
}

/* Not in the old table: a mirror onto the destination overlay shown while
 * the disk already runs on it is dropped. */
static void test_destination_overlay_mirror(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, DST_OVL, DST_A, "copy", DST_OVL), SM_DISK_MIRRORING, true, true,
	      SM_DISK_PIVOTED, false, false);
}

/* ---- the moved image ---- */

/* Row "the destination copy of the old active image": collapsed, done if the
 * journal says so. */
static void test_moved_image(void **state)
{
	struct shown s;

	(void)state;
	for (int j = 0; j < SM_DISK_STATE_LAST; j++)
		taken(shown(&s, DST_A, DST_B, NULL, NULL), (enum sm_disk_state)j, true, true,
		      j == SM_DISK_DONE ? SM_DISK_DONE : SM_DISK_COLLAPSED, false, false);
}

/* Not in the old table: a block job shown there (an active commit, a mirror
 * onto the destination overlay) is dropped, not refused; a live move's
 * check_chain (job_run.c) refuses an active commit there before finalize. */
static void test_moved_image_block_job(void **state)
{
	struct shown s;

	(void)state;
	taken(shown(&s, DST_A, DST_B, "active-commit", DST_B), SM_DISK_PIVOTED, true, true,
	      SM_DISK_COLLAPSED, false, false);
	taken(shown(&s, DST_A, DST_B, "copy", DST_OVL), SM_DISK_COLLAPSED, true, true,
	      SM_DISK_COLLAPSED, false, false);
}

/* ---- anything else ---- */

static void test_anything_else(void **state)
{
	static const char *const tops[] = {
		SRC_B,                      /* the original chain, one down */
		DST_B,                      /* the destination chain, one down */
		"/other/a.qcow2",           /* another file */
		"/src/a.qcow2.snapmove-8.qcow2",  /* another job's overlay */
	};
	struct shown s;

	(void)state;
	for (size_t i = 0; i < SM_ARRAY_LEN(tops); i++)
		refused(shown(&s, tops[i], NULL, NULL, NULL), SM_DISK_COPIED,
			"disk 'vda' runs on '", tops[i],
			"which is neither its original image, its overlay nor its destination",
			"job 7 stops here", "'snapmove status 7'", NULL);
}

/* Not in the old table: an image that is no file (a block device or network
 * source replaced it: libvirt gives no path). */
static void test_not_a_file(void **state)
{
	struct shown s;
	const struct sm_disk *d = shown(&s, SRC_A, NULL, NULL, NULL);

	(void)state;
	s.chain[0].path = NULL;
	refused(d, SM_DISK_COPIED, "which is neither its original image", NULL);
}

/* ---- the phases against docs/design.md ---- */

static char *design_md(void)
{
	return unit_read_file(SM_FIXTURES "/../../../docs/design.md");
}

/* The first cells of the table under the header line that starts with head
 * (backticks dropped), NULL-terminated; the caller frees the array and its
 * strings. */
static char **table_column(const char *doc, const char *head)
{
	const char *at = strstr(doc, head);
	char **cells = calloc(64, sizeof(*cells));
	size_t n = 0;

	assert_non_null(cells);
	if (!at) {
		print_error("docs/design.md has no table headed '%s'\n", head);
		fail();
	}
	at = strchr(at, '\n') + 1;          /* the header */
	at = strchr(at, '\n') + 1;          /* |---|---| */
	while (*at == '|' && n < 63) {
		const char *end = strchr(at + 1, '|');
		char *cell = calloc(1, (size_t)(end - at));
		size_t len = 0;

		assert_non_null(cell);
		for (const char *p = at + 1; p < end; p++)
			if (*p != '`' && *p != ' ')
				cell[len++] = *p;
		cells[n++] = cell;
		at = strchr(at, '\n');
		if (!at)
			break;
		at++;
	}
	return cells;
}

static void free_column(char **cells)
{
	for (size_t i = 0; cells[i]; i++)
		free(cells[i]);
	free(cells);
}

/* The table "phase | before | action | after | disk state after" lists the
 * phases of a move in the order of enum sm_phase, under their journal names,
 * and its last column the disk states in the order of enum sm_disk_state. */
static void test_phase_table(void **state)
{
	char *doc = design_md();
	char **phases = table_column(doc, "| phase | before (journal) |");
	const char *row = strstr(doc, "| phase | before (journal) |");
	size_t n = 0;

	(void)state;
	for (; phases[n]; n++)
		assert_string_equal(phases[n], sm_phase_name((enum sm_phase)n));
	assert_int_equal(n, SM_PHASE_FINALIZE + 1);
	/* After finalize the job's phase is done, then nothing. */
	assert_int_equal(SM_PHASE_DONE, SM_PHASE_FINALIZE + 1);
	assert_int_equal(SM_PHASE_LAST, SM_PHASE_DONE + 1);
	assert_int_equal(SM_DISK_STATE_LAST, SM_PHASE_FINALIZE + 1);
	assert_string_equal(sm_phase_name(SM_PHASE_DONE), "done");
	for (int p = 0; p < SM_PHASE_LAST; p++)
		assert_int_equal(sm_phase_from_name(sm_phase_name((enum sm_phase)p)), p);

	/* Each row's last cell is the disk state after that phase. */
	row = strchr(strchr(row, '\n') + 1, '\n') + 1;
	for (int s = 0; s <= SM_PHASE_FINALIZE; s++) {
		const char *eol = strchr(row, '\n');
		const char *end = eol - 1, *start;
		char cell[64];
		size_t len = 0;

		assert_true(*end == '|');
		for (start = end - 1; *start != '|'; start--)
			;
		for (const char *p = start + 1; p < end && len + 1 < sizeof(cell); p++)
			if (*p != '`' && *p != ' ')
				cell[len++] = *p;
		cell[len] = '\0';
		/* The two enums run in step: phase s leaves disk state s. */
		assert_string_equal(cell, sm_disk_state_name((enum sm_disk_state)s));
		row = eol + 1;
	}
	free_column(phases);
	free(doc);
}

/* "resume runs the phases `a, b, ...`": every phase of a move, once, in the
 * order of enum sm_phase but for the mirror after the copy. */
static void test_resume_order(void **state)
{
	static const char key[] = "`resume` runs the phases `";
	char *doc = design_md();
	const char *at = strstr(doc, key);
	const enum sm_phase want[] = {
		SM_PHASE_SNAPSHOT, SM_PHASE_DEST_CHAIN, SM_PHASE_COPY, SM_PHASE_MIRROR,
		SM_PHASE_SYNC, SM_PHASE_PIVOT, SM_PHASE_COLLAPSE, SM_PHASE_FINALIZE,
	};
	size_t n = 0;

	(void)state;
	assert_non_null(at);
	at += strlen(key);
	while (*at != '`') {
		char name[32];
		size_t len = strcspn(at, ",`");

		assert_true(len < sizeof(name));
		memcpy(name, at, len);
		name[len] = '\0';
		assert_true(n < SM_ARRAY_LEN(want));
		assert_int_equal(sm_phase_from_name(name), want[n]);
		n++;
		at += len;
		if (*at == ',')
			at++;
		while (*at == ' ' || *at == '\n')
			at++;
	}
	assert_int_equal(n, SM_ARRAY_LEN(want));
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_definition),
		cmocka_unit_test(test_no_image),
		cmocka_unit_test(test_foreign_block_job),
		cmocka_unit_test(test_original_image),
		cmocka_unit_test(test_original_image_mirror),
		cmocka_unit_test(test_original_image_active_commit),
		cmocka_unit_test(test_source_overlay_snapshotted),
		cmocka_unit_test(test_source_overlay_dest_created),
		cmocka_unit_test(test_source_overlay_copied),
		cmocka_unit_test(test_source_overlay_mirroring),
		cmocka_unit_test(test_source_overlay_committing),
		cmocka_unit_test(test_source_overlay_journal_ahead),
		cmocka_unit_test(test_source_overlay_alone),
		cmocka_unit_test(test_source_overlay_streamed),
		cmocka_unit_test(test_source_overlay_over_other),
		cmocka_unit_test(test_destination_overlay),
		cmocka_unit_test(test_destination_overlay_collapsed),
		cmocka_unit_test(test_destination_overlay_done),
		cmocka_unit_test(test_destination_overlay_mirror),
		cmocka_unit_test(test_moved_image),
		cmocka_unit_test(test_moved_image_block_job),
		cmocka_unit_test(test_anything_else),
		cmocka_unit_test(test_not_a_file),
		cmocka_unit_test(test_phase_table),
		cmocka_unit_test(test_resume_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
