/* test_blockjob.c: the bounds of a wait on a block job (sm_jobwatch), driven
 * with a made-up clock, so nothing sleeps.  The scenario of issue 12: libvirt
 * shows <mirror job='active-commit' ready='pivot'> after a libvirtd restart
 * and QEMU has no block job; the wait must give up, not poll forever.
 */
#include "unit.h"

#include "job/reconcile.h"
#include "snapshot/blockjob.h"

#include <stdlib.h>

#define T0 1000.0

/* Polled twice a second as sm_blockjob_wait_ready does. */
static double poll_until_verdict(struct sm_jobwatch *w, double from, bool exists,
				 unsigned long long cur, unsigned long long end,
				 enum sm_jobwatch_verdict *verdict)
{
	double t = from;

	for (int i = 0; i < 100000; i++, t += 0.5) {
		*verdict = sm_jobwatch_step(w, t, exists, cur, end);
		if (*verdict != SM_JOBWATCH_WAIT)
			return t;
	}
	return -1;
}

static void test_lost_job_gives_up(void **state)
{
	struct sm_jobwatch w;
	enum sm_jobwatch_verdict v;
	double at;

	(void)state;
	sm_jobwatch_init(&w, T0);
	at = poll_until_verdict(&w, T0, false, 0, 0, &v);
	assert_int_equal(v, SM_JOBWATCH_LOST);
	assert_true(at >= T0 + SM_BLOCKJOB_LOST_AFTER);
	assert_true(at < T0 + SM_BLOCKJOB_LOST_AFTER + 1);
}

static void test_job_seen_restarts_the_lost_clock(void **state)
{
	struct sm_jobwatch w;
	enum sm_jobwatch_verdict v;
	double at;

	(void)state;
	sm_jobwatch_init(&w, T0);
	/* Gone for a while (an event in flight), back, then gone for good. */
	assert_int_equal(sm_jobwatch_step(&w, T0 + 20, false, 0, 0), SM_JOBWATCH_WAIT);
	assert_int_equal(sm_jobwatch_step(&w, T0 + 25, true, 10, 100), SM_JOBWATCH_WAIT);
	assert_int_equal(sm_jobwatch_step(&w, T0 + 50, false, 0, 0), SM_JOBWATCH_WAIT);
	at = poll_until_verdict(&w, T0 + 50, false, 0, 0, &v);
	assert_int_equal(v, SM_JOBWATCH_LOST);
	assert_true(at >= T0 + 25 + SM_BLOCKJOB_LOST_AFTER);
}

static void test_stuck_job_gives_up(void **state)
{
	struct sm_jobwatch w;
	enum sm_jobwatch_verdict v;
	double at;

	(void)state;
	sm_jobwatch_init(&w, T0);
	at = poll_until_verdict(&w, T0, true, 4096, 1 << 20, &v);
	assert_int_equal(v, SM_JOBWATCH_STUCK);
	assert_true(at >= T0 + SM_BLOCKJOB_STUCK_AFTER);
	assert_true(at < T0 + SM_BLOCKJOB_STUCK_AFTER + 1);
	assert_int_equal(w.cur, 4096);
	assert_int_equal(w.end, 1 << 20);
}

static void test_progress_keeps_waiting(void **state)
{
	struct sm_jobwatch w;

	(void)state;
	sm_jobwatch_init(&w, T0);
	/* A slow job: a byte every 100 s is progress; so is end growing under
	 * the guest's writes while cur stays. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(sm_jobwatch_step(&w, T0 + 100.0 * i, true, (unsigned)i, 1000),
				 SM_JOBWATCH_WAIT);
	for (int i = 0; i < 100; i++)
		assert_int_equal(sm_jobwatch_step(&w, T0 + 10000 + 100.0 * i, true, 99,
						  2000 + (unsigned)i), SM_JOBWATCH_WAIT);
}

/* QEMU's query-block, as QEMU 7.2 answers it for a libvirt 9 (blockdev)
 * domain after the final commit's pivot: the device's top node over the
 * moved image, named by a json: filename. */
static const char query_block_blockdev[] =
	"{\"return\": [{\"io-status\": \"ok\", \"device\": \"\", \"locked\": false, "
	"\"removable\": false, \"inserted\": {\"node-name\": \"libvirt-3-format\", "
	"\"drv\": \"qcow2\", \"file\": \"json:{\\\"backing\\\": {\\\"driver\\\": "
	"\\\"raw\\\", \\\"file\\\": {\\\"driver\\\": \\\"file\\\", \\\"filename\\\": "
	"\\\"/d/base.raw\\\"}}, \\\"driver\\\": \\\"qcow2\\\", \\\"file\\\": "
	"{\\\"driver\\\": \\\"file\\\", \\\"filename\\\": \\\"/d/top.qcow2\\\"}}\"}, "
	"\"qdev\": \"/machine/peripheral/virtio-disk0/virtio-backend\", \"type\": \"unknown\"}, "
	"{\"device\": \"\", \"qdev\": \"/machine/peripheral/virtio-disk1/virtio-backend\", "
	"\"inserted\": {\"file\": \"/d/other.qcow2\"}}]}";

static void test_qemu_top_parse(void **state)
{
	char *top;

	(void)state;
	top = sm_blockjob_qemu_top_parse(query_block_blockdev, "virtio-disk0");
	assert_non_null(top);
	assert_string_equal(top, "/d/top.qcow2");
	free(top);
	top = sm_blockjob_qemu_top_parse(query_block_blockdev, "virtio-disk1");
	assert_non_null(top);
	assert_string_equal(top, "/d/other.qcow2");
	free(top);
	/* -drive (older libvirt): the device is drive-ALIAS. */
	top = sm_blockjob_qemu_top_parse("{\"return\": [{\"device\": \"drive-virtio-disk0\", "
					 "\"inserted\": {\"file\": \"/d/a.qcow2\"}}]}",
					 "virtio-disk0");
	assert_non_null(top);
	assert_string_equal(top, "/d/a.qcow2");
	free(top);
	assert_null(sm_blockjob_qemu_top_parse(query_block_blockdev, "virtio-disk2"));
	assert_null(sm_blockjob_qemu_top_parse(query_block_blockdev, NULL));
	assert_null(sm_blockjob_qemu_top_parse("{\"return\": [{\"qdev\": \"virtio-disk0\"}]}",
					       "virtio-disk0"));  /* no medium */
	assert_null(sm_blockjob_qemu_top_parse("{\"return\": [{\"qdev\": \"virtio-disk0\", "
					       "\"inserted\": {\"file\": \"json:{\"}}]}",
					       "virtio-disk0"));  /* a json: it cannot read */
	assert_null(sm_blockjob_qemu_top_parse("not json", "virtio-disk0"));
	assert_null(sm_blockjob_qemu_top_parse("{\"error\": {}}", "virtio-disk0"));
	assert_null(sm_blockjob_qemu_top_parse(NULL, "virtio-disk0"));
}

/* Once the journal says the final commit folded the destination overlay, a
 * disk still shown on it (libvirt missed the commit's pivot; a definition
 * not rewritten yet) stays collapsed: folding that stale overlay again would
 * undo newer writes.  Without that record it is the pivoted state. */
static void test_collapsed_stands_over_a_lagging_view(void **state)
{
	struct sm_jobctx c = { .job = 1, .domain_name = (char *)"dom" };
	struct sm_plan_image img = { .src = (char *)"/s/top.qcow2", .dst = (char *)"/d/top.qcow2" };
	struct sm_plan_disk p = { .target = (char *)"vda", .src_overlay = (char *)"/s/top.qcow2.snapmove-1.qcow2",
				  .dst_overlay = (char *)"/d/top.qcow2.snapmove-1.qcow2",
				  .images = &img, .nimages = 1 };
	struct sm_image chain[] = { { .path = p.dst_overlay }, { .path = img.dst } };
	struct sm_disk d = { .target = (char *)"vda", .chain = chain, .nchain = 2,
			     .mirror_job = (char *)"active-commit", .mirror_pivoting = true };
	struct sm_observed o;

	(void)state;
	assert_int_equal(sm_reconcile_disk(&c, &p, &d, SM_DISK_COLLAPSED, true, true, &o), 0);
	assert_int_equal(o.state, SM_DISK_COLLAPSED);
	assert_false(o.committing);
	assert_int_equal(sm_reconcile_disk(&c, &p, &d, SM_DISK_PIVOTED, true, true, &o), 0);
	assert_int_equal(o.state, SM_DISK_PIVOTED);
	assert_true(o.committing);
	d.mirror_job = NULL;
	assert_int_equal(sm_reconcile_disk(&c, &p, &d, SM_DISK_DONE, true, true, &o), 0);
	assert_int_equal(o.state, SM_DISK_DONE);
}

/* query-named-block-nodes: a format node names its file by a json:
 * filename, its storage node by the path; another image is not matched. */
static void test_qemu_nodes_parse(void **state)
{
	static const char reply[] =
		"{\"return\": [{\"node-name\": \"libvirt-5-format\", \"drv\": \"qcow2\", "
		"\"file\": \"json:{\\\"driver\\\": \\\"qcow2\\\", \\\"file\\\": {\\\"driver\\\": "
		"\\\"file\\\", \\\"filename\\\": \\\"/d/top.qcow2.snapmove-1.qcow2\\\"}}\"}, "
		"{\"node-name\": \"libvirt-5-storage\", \"drv\": \"file\", "
		"\"file\": \"/d/top.qcow2.snapmove-1.qcow2\"}, "
		"{\"node-name\": \"libvirt-1-storage\", \"drv\": \"file\", \"file\": \"/s/top.qcow2\"}, "
		"{\"drv\": \"file\", \"file\": \"/d/top.qcow2.snapmove-1.qcow2\"}]}";
	char *nodes;

	(void)state;
	nodes = sm_blockjob_qemu_nodes_parse(reply, "/d/top.qcow2.snapmove-1.qcow2");
	assert_non_null(nodes);
	assert_string_equal(nodes, "libvirt-5-format, libvirt-5-storage");
	free(nodes);
	nodes = sm_blockjob_qemu_nodes_parse(reply, "/s/top.qcow2");
	assert_non_null(nodes);
	assert_string_equal(nodes, "libvirt-1-storage");
	free(nodes);
	assert_null(sm_blockjob_qemu_nodes_parse(reply, "/d/top.qcow2"));
	assert_null(sm_blockjob_qemu_nodes_parse(reply, NULL));
	assert_null(sm_blockjob_qemu_nodes_parse("{\"return\": []}", "/d/top.qcow2"));
	assert_null(sm_blockjob_qemu_nodes_parse("[", "/d/top.qcow2"));
	assert_null(sm_blockjob_qemu_nodes_parse(NULL, "/d/top.qcow2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lost_job_gives_up),
		cmocka_unit_test(test_job_seen_restarts_the_lost_clock),
		cmocka_unit_test(test_stuck_job_gives_up),
		cmocka_unit_test(test_progress_keeps_waiting),
		cmocka_unit_test(test_qemu_top_parse),
		cmocka_unit_test(test_qemu_nodes_parse),
		cmocka_unit_test(test_collapsed_stands_over_a_lagging_view),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
