/* test_ratelimit.c: the copier's time-slice rate limiter, driven with
 * explicit times (sm_ratelimit_account), so nothing sleeps.
 */
#include "unit.h"

#include "copy/ratelimit.h"

#include <math.h>

/* Times are well away from 0, as the monotonic clock's are. */
#define T0 1000.0

static void assert_close_at(double got, double want, const char *file, int line)
{
	if (fabs(got - want) > 1e-9) {
		print_error("%.12f is not %.12f\n", got, want);
		_fail(file, line);
	}
}
#define assert_close(got, want) assert_close_at((got), (want), __FILE__, __LINE__)

static void test_unlimited(void **state)
{
	struct sm_ratelimit rl;

	(void)state;
	sm_ratelimit_init(&rl, 0);
	assert_int_equal(rl.bytes_per_slice, 0);
	for (int i = 0; i < 100; i++)
		assert_close(sm_ratelimit_account(&rl, 1ULL << 40, T0 + i * 0.001), 0);
}

static void test_slice_quota(void **state)
{
	struct sm_ratelimit rl;

	(void)state;
	sm_ratelimit_init(&rl, 1000000);
	assert_int_equal(rl.bytes_per_slice, 100000);
	/* Within one 100 ms slice, up to just under its quota: no wait. */
	assert_close(sm_ratelimit_account(&rl, 40000, T0), 0);
	assert_close(sm_ratelimit_account(&rl, 50000, T0 + 0.05), 0);
	assert_close(sm_ratelimit_account(&rl, 9999, T0 + 0.09), 0);
	assert_int_equal(rl.dispatched, 99999);
}

static void test_over_quota(void **state)
{
	struct sm_ratelimit rl;

	(void)state;
	sm_ratelimit_init(&rl, 1000000);
	assert_close(sm_ratelimit_account(&rl, 40000, T0), 0);
	/* 120000 bytes used 1.2 slices: wait until T0 + 0.12. */
	assert_close(sm_ratelimit_account(&rl, 80000, T0 + 0.06), 0.06);

	/* Exactly the quota uses the slice up: wait for its end. */
	sm_ratelimit_init(&rl, 1000000);
	assert_close(sm_ratelimit_account(&rl, 100000, T0 + 0.03), 0.1);

	/* One big dispatch pays for every slice it uses. */
	sm_ratelimit_init(&rl, 1000000);
	assert_close(sm_ratelimit_account(&rl, 350000, T0), 0.35);
}

static void test_new_slice_resets(void **state)
{
	struct sm_ratelimit rl;

	(void)state;
	sm_ratelimit_init(&rl, 1000000);
	assert_close(sm_ratelimit_account(&rl, 120000, T0), 0.12);
	/* Having waited, a new slice starts at the caller's time, empty.  (The
	 * offsets near a slice's end are exact in binary: 0.125, 0.25.) */
	assert_close(sm_ratelimit_account(&rl, 1000, T0 + 0.125), 0);
	assert_close(rl.slice_start, T0 + 0.125);
	assert_int_equal(rl.dispatched, 1000);
	/* Within that slice the count goes on... */
	assert_close(sm_ratelimit_account(&rl, 99000, T0 + 0.2), 0.025);
	/* ...and a slice later it starts over again. */
	assert_close(sm_ratelimit_account(&rl, 99999, T0 + 0.25), 0);
	assert_close(rl.slice_start, T0 + 0.25);
	assert_int_equal(rl.dispatched, 99999);
}

/* Less than 10 bytes/s still moves a byte per slice, rather than nothing. */
static void test_tiny_bandwidth(void **state)
{
	struct sm_ratelimit rl;

	(void)state;
	for (unsigned long long bps = 1; bps < 10; bps++) {
		sm_ratelimit_init(&rl, bps);
		assert_int_equal(rl.bytes_per_slice, 1);
		/* A byte goes, then wait for the next slice; there, another. */
		assert_close(sm_ratelimit_account(&rl, 1, T0), SM_RATELIMIT_SLICE);
		assert_close(sm_ratelimit_account(&rl, 1, T0 + 0.125), SM_RATELIMIT_SLICE);
	}
	sm_ratelimit_init(&rl, 10);
	assert_int_equal(rl.bytes_per_slice, 1);
	sm_ratelimit_init(&rl, 8ULL << 20);
	assert_int_equal(rl.bytes_per_slice, 838860);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_slice_quota),
		cmocka_unit_test(test_over_quota),
		cmocka_unit_test(test_new_slice_resets),
		cmocka_unit_test(test_tiny_bandwidth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
