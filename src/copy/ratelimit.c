/* ratelimit.c: time-slice rate limiting for the copier. */
#include "copy/ratelimit.h"
#include "util.h"

#include <time.h>

void sm_ratelimit_init(struct sm_ratelimit *rl, unsigned long long bytes_per_second)
{
	rl->bytes_per_slice = (unsigned long long)((double)bytes_per_second * SM_RATELIMIT_SLICE);
	if (bytes_per_second && !rl->bytes_per_slice)
		rl->bytes_per_slice = 1;
	rl->slice_start = 0;
	rl->dispatched = 0;
}

double sm_ratelimit_account(struct sm_ratelimit *rl, unsigned long long n, double now)
{
	double slices;

	if (!rl->bytes_per_slice)
		return 0;
	if (now - rl->slice_start >= SM_RATELIMIT_SLICE) {
		rl->slice_start = now;
		rl->dispatched = 0;
	}
	rl->dispatched += n;
	if (rl->dispatched < rl->bytes_per_slice)
		return 0;
	/* Over quota: wait until the slices this dispatch used up have passed. */
	slices = (double)rl->dispatched / (double)rl->bytes_per_slice;
	return rl->slice_start + slices * SM_RATELIMIT_SLICE - now;
}

void sm_ratelimit_wait(struct sm_ratelimit *rl, unsigned long long n)
{
	double delay = sm_ratelimit_account(rl, n, sm_monotonic());
	struct timespec ts;

	if (delay <= 0)
		return;
	ts.tv_sec = (time_t)delay;
	ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0)
		;
	/* The next dispatch starts a new slice. */
	rl->slice_start = sm_monotonic();
	rl->dispatched = 0;
}
