/* progress.h: what a person at a terminal sees while a move runs.
 *
 * On a terminal: one line redrawn at most ten times a second (phase, bytes of
 * total, rate).  Elsewhere (a log, a pipe): one line per phase and per finished
 * image, never a stream of redraws.  Everything goes to the FILE given, stderr
 * for the CLI, so stdout stays for results.
 */
#ifndef SM_PROGRESS_H
#define SM_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

struct sm_progress {
	FILE *f;
	bool tty;
	bool quiet;
	bool line_open;  /* a redrawable line is on screen */
	double last;
	double started;
	unsigned long long started_bytes;
};

void sm_progress_init(struct sm_progress *p, FILE *f, bool quiet);
/* A line that stays: phase changes, finished steps. */
void sm_progress_say(struct sm_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Restart the rate measurement (a new copy or wait begins). */
void sm_progress_reset_rate(struct sm_progress *p, unsigned long long done);
/* A redrawn status line: label, done of total, rate; terminals only. */
void sm_progress_update(struct sm_progress *p, const char *label, unsigned long long done,
			unsigned long long total);
/* Close a redrawn line so the next output starts clean. */
void sm_progress_end(struct sm_progress *p);

#endif
