/* ratelimit.h: a fixed time-slice rate limiter, as QEMU's ratelimit.h: each
 * 100 ms slice may carry bandwidth/10 bytes; a caller that has used its quota
 * is told how long to wait for the next slice.
 */
#ifndef SM_RATELIMIT_H
#define SM_RATELIMIT_H

struct sm_ratelimit {
	unsigned long long bytes_per_slice;  /* 0: unlimited */
	double slice_start;
	unsigned long long dispatched;
};

#define SM_RATELIMIT_SLICE 0.1

void sm_ratelimit_init(struct sm_ratelimit *rl, unsigned long long bytes_per_second);
/* Account n bytes at time now; returns the seconds to sleep before the next
 * dispatch (0 when the slice still has quota). */
double sm_ratelimit_account(struct sm_ratelimit *rl, unsigned long long n, double now);
/* Account n bytes and sleep as needed (using the monotonic clock). */
void sm_ratelimit_wait(struct sm_ratelimit *rl, unsigned long long n);

#endif
