/* progress.c: the terminal progress lines and the plain log lines. */
#include "progress.h"
#include "events.h"
#include "util.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

void sm_progress_init(struct sm_progress *p, FILE *f, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	p->tty = isatty(fileno(f));
	p->quiet = quiet || sm_human_is_quiet();  /* --quiet */
	for (int i = 0; i < SM_PROGRESS_SLOTS; i++)
		p->slots[i].rate = -1;
	pthread_mutex_init(&p->lock, NULL);
}

void sm_progress_release(struct sm_progress *p)
{
	pthread_mutex_destroy(&p->lock);
}

static void clear_lines(struct sm_progress *p)
{
	for (int i = 0; i < p->lines_drawn; i++)
		fputs(i ? "\033[1A\r\033[K" : "\r\033[K", p->f);
	p->lines_drawn = 0;
}

void sm_progress_end(struct sm_progress *p)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < SM_PROGRESS_SLOTS; i++)
		p->slots[i].active = false;
	clear_lines(p);
	fflush(p->f);
	pthread_mutex_unlock(&p->lock);
}

void sm_progress_say(struct sm_progress *p, const char *fmt, ...)
{
	va_list ap;

	if (p->quiet)
		return;
	pthread_mutex_lock(&p->lock);
	clear_lines(p);
	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
	fputc('\n', p->f);
	fflush(p->f);
	pthread_mutex_unlock(&p->lock);
}

static void print_line(FILE *f, const char *label, unsigned long long done,
		       unsigned long long total, double rate)
{
	char d[32], t[32], r[32];
	int pct = total ? (int)(done * 100 / total) : 100;

	fprintf(f, "  %s: %s of %s (%d%%), %s/s", label, sm_format_bytes(done, d, sizeof(d)),
		sm_format_bytes(total, t, sizeof(t)), pct,
		sm_format_bytes((unsigned long long)rate, r, sizeof(r)));
	if (rate > 0 && total > done) {
		double eta = (double)(total - done) / rate;

		if (eta >= 60)
			fprintf(f, ", %d min %02d s left", (int)eta / 60, (int)eta % 60);
		else
			fprintf(f, ", %d s left", (int)eta + 1);
	}
}

static double slot_rate(const struct sm_progress_slot *s, double now)
{
	double elapsed = now - s->started;

	if (s->rate >= 0)
		return s->rate;
	return elapsed > 0 && s->done >= s->started_done
		       ? (double)(s->done - s->started_done) / elapsed : 0;
}

static void redraw(struct sm_progress *p, double now)
{
	unsigned long long done = 0, total = 0;
	double rate = 0;
	int active = 0;

	clear_lines(p);
	for (int i = 0; i < SM_PROGRESS_SLOTS; i++) {
		struct sm_progress_slot *s = &p->slots[i];

		if (!s->active)
			continue;
		if (p->lines_drawn)
			fputc('\n', p->f);
		print_line(p->f, s->label, s->done, s->total, slot_rate(s, now));
		p->lines_drawn++;
		done += s->done;
		total += s->total;
		rate += slot_rate(s, now);
		active++;
	}
	if (active > 1) {
		fputc('\n', p->f);
		print_line(p->f, "total", done, total, rate);
		p->lines_drawn++;
	}
	fflush(p->f);
}

void sm_progress_start(struct sm_progress *p, int slot, const char *label)
{
	struct sm_progress_slot *s = &p->slots[slot % SM_PROGRESS_SLOTS];

	pthread_mutex_lock(&p->lock);
	s->active = true;
	snprintf(s->label, sizeof(s->label), "%s", label);
	s->done = s->total = 0;
	s->started = sm_monotonic();
	s->started_done = 0;
	s->rate = -1;
	pthread_mutex_unlock(&p->lock);
}

void sm_progress_slot(struct sm_progress *p, int slot, unsigned long long done,
		      unsigned long long total, double rate)
{
	struct sm_progress_slot *s = &p->slots[slot % SM_PROGRESS_SLOTS];
	double now = sm_monotonic();

	pthread_mutex_lock(&p->lock);
	s->rate = rate;
	s->done = done;
	s->total = total;
	if (!p->quiet && p->tty && (now - p->last >= 0.1 || done >= total)) {
		p->last = now;
		redraw(p, now);
	}
	pthread_mutex_unlock(&p->lock);
}

void sm_progress_stop(struct sm_progress *p, int slot)
{
	pthread_mutex_lock(&p->lock);
	p->slots[slot % SM_PROGRESS_SLOTS].active = false;
	pthread_mutex_unlock(&p->lock);
}

void sm_progress_reset_rate(struct sm_progress *p, unsigned long long done)
{
	pthread_mutex_lock(&p->lock);
	p->slots[0].started = sm_monotonic();
	p->slots[0].started_done = done;
	pthread_mutex_unlock(&p->lock);
}

void sm_progress_update(struct sm_progress *p, const char *label, unsigned long long done,
			unsigned long long total)
{
	pthread_mutex_lock(&p->lock);
	if (!p->slots[0].active || strcmp(p->slots[0].label, label) != 0) {
		p->slots[0].active = true;
		snprintf(p->slots[0].label, sizeof(p->slots[0].label), "%s", label);
		if (!p->slots[0].started)
			p->slots[0].started = sm_monotonic();
	}
	pthread_mutex_unlock(&p->lock);
	sm_progress_slot(p, 0, done, total, -1);
}
