/* test_phases.c: the phase table's two orders (src/job/runner.c): a move
 * mirrors before it copies, a resume copies before it mirrors, and both run
 * every phase of a live move once, snapshot first and finalize last.
 */
#include "unit.h"

#include "job/job_run.h"
#include "util.h"

static void check_order(enum sm_job_order order, const enum sm_phase *want, size_t nwant)
{
	enum sm_phase got[SM_PHASE_LAST + 1];
	size_t n = sm_job_phases(order, got, SM_ARRAY_LEN(got));

	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(sm_phase_name(got[i]), sm_phase_name(want[i]));
}

static void test_move_order(void **state)
{
	static const enum sm_phase want[] = {
		SM_PHASE_SNAPSHOT, SM_PHASE_DEST_CHAIN, SM_PHASE_MIRROR, SM_PHASE_COPY,
		SM_PHASE_SYNC, SM_PHASE_PIVOT, SM_PHASE_COLLAPSE, SM_PHASE_FINALIZE,
	};

	(void)state;
	check_order(SM_JOB_ORDER_MOVE, want, SM_ARRAY_LEN(want));
}

static void test_resume_order(void **state)
{
	static const enum sm_phase want[] = {
		SM_PHASE_SNAPSHOT, SM_PHASE_DEST_CHAIN, SM_PHASE_COPY, SM_PHASE_MIRROR,
		SM_PHASE_SYNC, SM_PHASE_PIVOT, SM_PHASE_COLLAPSE, SM_PHASE_FINALIZE,
	};

	(void)state;
	check_order(SM_JOB_ORDER_RESUME, want, SM_ARRAY_LEN(want));
}

static void test_max_respected(void **state)
{
	enum sm_phase got[3];

	(void)state;
	assert_int_equal(sm_job_phases(SM_JOB_ORDER_MOVE, got, 3), 3);
	assert_int_equal(got[2], SM_PHASE_MIRROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_move_order),
		cmocka_unit_test(test_resume_order),
		cmocka_unit_test(test_max_respected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
