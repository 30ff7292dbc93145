/* progress.h: what a person at a terminal sees while a move runs.
 *
 * On a terminal: one line per running copy or block job (and a total when
 * several run), redrawn at most ten times a second: label, bytes of total,
 * rate, time left.  Elsewhere (a log, a pipe): one line per phase and per
 * finished image, never a stream of redraws.  Everything goes to the FILE
 * given, stderr for the CLI, so stdout stays for results.  Thread-safe: the
 * parallel copies of several disks report into their own slots.
 */
#ifndef SM_PROGRESS_H
#define SM_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#define SM_PROGRESS_SLOTS 16

struct sm_progress_slot {
	bool active;
	char label[96];
	unsigned long long done;
	unsigned long long total;
	double started;
	unsigned long long started_done;
	double rate;  /* as the reporter measured it; < 0: computed here */
};

struct sm_progress {
	FILE *f;
	bool tty;
	bool quiet;
	int lines_drawn;  /* lines of the last redraw still on screen */
	double last;
	pthread_mutex_t lock;
	struct sm_progress_slot slots[SM_PROGRESS_SLOTS];
};

void sm_progress_init(struct sm_progress *p, FILE *f, bool quiet);
void sm_progress_release(struct sm_progress *p);
/* A line that stays: phase changes, finished steps. */
void sm_progress_say(struct sm_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Start measuring slot's rate afresh (a new copy or wait begins there). */
void sm_progress_start(struct sm_progress *p, int slot, const char *label);
/* Report slot's bytes (rate < 0: measured here); redraws (terminals only)
 * at most ten times a second. */
void sm_progress_slot(struct sm_progress *p, int slot, unsigned long long done,
		      unsigned long long total, double rate);
/* Slot 0, for a single running operation. */
void sm_progress_reset_rate(struct sm_progress *p, unsigned long long done);
void sm_progress_update(struct sm_progress *p, const char *label, unsigned long long done,
			unsigned long long total);
/* A slot's work is over: its line goes at the next redraw. */
void sm_progress_stop(struct sm_progress *p, int slot);
/* Clear the redrawn lines so the next output starts clean. */
void sm_progress_end(struct sm_progress *p);

#endif
