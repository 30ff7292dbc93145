/* progress.c: the terminal progress line and the plain log lines. */
#include "progress.h"
#include "util.h"

#include <stdarg.h>
#include <unistd.h>

void sm_progress_init(struct sm_progress *p, FILE *f, bool quiet)
{
	p->f = f;
	p->tty = isatty(fileno(f));
	p->quiet = quiet;
	p->line_open = false;
	p->last = 0;
	p->started = sm_monotonic();
	p->started_bytes = 0;
}

void sm_progress_end(struct sm_progress *p)
{
	if (p->line_open) {
		fputs("\r\033[K", p->f);
		p->line_open = false;
	}
}

void sm_progress_say(struct sm_progress *p, const char *fmt, ...)
{
	va_list ap;

	if (p->quiet)
		return;
	sm_progress_end(p);
	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
	fputc('\n', p->f);
	fflush(p->f);
}

void sm_progress_reset_rate(struct sm_progress *p, unsigned long long done)
{
	p->started = sm_monotonic();
	p->started_bytes = done;
}

void sm_progress_update(struct sm_progress *p, const char *label, unsigned long long done,
			unsigned long long total)
{
	double now = sm_monotonic();
	double elapsed = now - p->started;
	double rate = elapsed > 0 && done >= p->started_bytes
			      ? (double)(done - p->started_bytes) / elapsed : 0;
	char d[32], t[32], r[32];
	int pct = total ? (int)(done * 100 / total) : 100;

	if (p->quiet || !p->tty || (now - p->last < 0.1 && done < total))
		return;
	p->last = now;
	fprintf(p->f, "\r\033[K  %s: %s of %s (%d%%), %s/s", label,
		sm_format_bytes(done, d, sizeof(d)), sm_format_bytes(total, t, sizeof(t)), pct,
		sm_format_bytes((unsigned long long)rate, r, sizeof(r)));
	if (rate > 0 && total > done) {
		double eta = (double)(total - done) / rate;

		if (eta >= 60)
			fprintf(p->f, ", %d min %02d s left", (int)eta / 60, (int)eta % 60);
		else
			fprintf(p->f, ", %d s left", (int)eta + 1);
	}
	fflush(p->f);
	p->line_open = true;
}
