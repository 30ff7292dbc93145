/* test_blockjob.c: the bounds of a wait on a block job (sm_jobwatch), driven
 * with a made-up clock, so nothing sleeps.  The scenario of issue 12: libvirt
 * shows <mirror job='active-commit' ready='pivot'> after a libvirtd restart
 * and QEMU has no block job; the wait must give up, not poll forever.
 */
#include "unit.h"

#include "snapshot/blockjob.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lost_job_gives_up),
		cmocka_unit_test(test_job_seen_restarts_the_lost_clock),
		cmocka_unit_test(test_stuck_job_gives_up),
		cmocka_unit_test(test_progress_keeps_waiting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
