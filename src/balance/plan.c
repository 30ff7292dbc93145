/* plan.c: the rebalance planner (see plan.h for the heuristic). */
#include "balance/plan.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim {
	const struct sm_storage *st;
	size_t nst;
	const struct sm_unit *units;
	size_t nunits;
	unsigned long long margin;
	unsigned long long *free;
	bool *moved;
	struct sm_balance_plan *out;
};

static void add_move(struct sim *s, size_t u, size_t to)
{
	struct sm_balance_plan *p = s->out;
	size_t from = (size_t)s->units[u].storage;

	p->moves = sm_xrealloc(p->moves, (p->nmoves + 1) * sizeof(*p->moves));
	p->moves[p->nmoves++] = (struct sm_balance_move){
		.unit = u, .from = from, .to = to, .bytes = s->units[u].bytes,
	};
	s->free[to] -= s->units[u].bytes;
	s->free[from] += s->units[u].bytes;
	s->moved[u] = true;
	p->bytes += s->units[u].bytes;
}

/* The storage with the most free space that takes unit u and keeps at least
 * floor[t] free afterwards (floor NULL: just the margin); -1 if none. */
static int best_target(const struct sim *s, size_t u, int exclude, const unsigned long long *floor)
{
	int best = -1;

	/* The source needs no room: the move's overlays are on the destination
	 * (the margin), so a full storage can be drained. */
	for (size_t t = 0; t < s->nst; t++) {
		unsigned long long need = s->units[u].bytes + s->margin + (floor ? floor[t] : 0);

		if ((int)t == exclude || (int)t == s->units[u].storage || s->free[t] < need)
			continue;
		if (best < 0 || s->free[t] > s->free[best])
			best = (int)t;
	}
	return best;
}

static int by_bytes_desc(const void *a, const void *b, void *ctx)
{
	const struct sm_unit *u = ctx;
	unsigned long long x = u[*(const size_t *)a].bytes, y = u[*(const size_t *)b].bytes;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int drain(struct sim *s, size_t d)
{
	size_t *order = sm_xcalloc(s->nunits + 1, sizeof(*order));
	size_t n = 0;
	char a[32], b[32];
	int ret = -1;

	for (size_t u = 0; u < s->nunits; u++) {
		if (s->units[u].storage != (int)d || s->units[u].excluded)
			continue;
		if (s->units[u].why_not) {
			sm_error("cannot drain '%s': disk %s of domain '%s' cannot be moved: %s; "
				 "to drain the rest, leave the domain out with --exclude %s",
				 s->st[d].name, s->units[u].disk, s->units[u].domain,
				 s->units[u].why_not, s->units[u].domain);
			goto cleanup;
		}
		order[n++] = u;
	}
	qsort_r(order, n, sizeof(*order), by_bytes_desc, (void *)s->units);
	for (size_t i = 0; i < n; i++) {
		int t = best_target(s, order[i], (int)d, NULL);

		if (t < 0) {
			unsigned long long most = 0;
			char c[32];

			for (size_t k = 0; k < s->nst; k++)
				if (k != d && s->free[k] > most)
					most = s->free[k];
			sm_error("cannot drain '%s': disk %s of domain '%s' needs %s plus a %s "
				 "margin and the most free space another storage has then is %s; add "
				 "a storage or free space first", s->st[d].name, s->units[order[i]].disk,
				 s->units[order[i]].domain,
				 sm_format_bytes(s->units[order[i]].bytes, a, sizeof(a)),
				 sm_format_bytes(s->margin, b, sizeof(b)),
				 sm_format_bytes(most, c, sizeof(c)));
			goto cleanup;
		}
		add_move(s, order[i], (size_t)t);
	}
	ret = 0;

cleanup:
	free(order);
	return ret;
}

/* The unit on storage from to move next for a shortfall: the smallest that
 * covers it alone, else the largest; each must fit somewhere. */
static int pick_unit(const struct sim *s, size_t from, unsigned long long shortfall,
		     const unsigned long long *floor, int *to)
{
	int cover = -1, largest = -1, cover_to = -1, largest_to = -1;

	for (size_t u = 0; u < s->nunits; u++) {
		int t;

		if (s->moved[u] || s->units[u].storage != (int)from || s->units[u].why_not ||
		    s->units[u].bytes == 0)
			continue;
		t = best_target(s, u, -1, floor);
		if (t < 0)
			continue;
		if (s->units[u].bytes >= shortfall &&
		    (cover < 0 || s->units[u].bytes < s->units[cover].bytes)) {
			cover = (int)u;
			cover_to = t;
		}
		if (largest < 0 || s->units[u].bytes > s->units[largest].bytes) {
			largest = (int)u;
			largest_to = t;
		}
	}
	*to = cover >= 0 ? cover_to : largest_to;
	return cover >= 0 ? cover : largest;
}

static int target_free(struct sim *s, double pct)
{
	unsigned long long *floor = sm_xcalloc(s->nst, sizeof(*floor));
	char a[32], b[32];
	int ret = -1;

	for (size_t t = 0; t < s->nst; t++)
		floor[t] = (unsigned long long)((double)s->st[t].size * pct / 100.0);
	for (;;) {
		size_t worst = s->nst;
		unsigned long long shortfall = 0;
		int u, to;

		for (size_t t = 0; t < s->nst; t++) {
			if (s->free[t] < floor[t] && floor[t] - s->free[t] > shortfall) {
				shortfall = floor[t] - s->free[t];
				worst = t;
			}
		}
		if (worst == s->nst)
			break;
		u = pick_unit(s, worst, shortfall, floor, &to);
		if (u < 0) {
			sm_error("cannot reach %.0f%% free on '%s': it is %s short and no disk on it "
				 "fits on another storage while that one keeps %.0f%% free (a %s "
				 "margin counted); lower --target-free, add a storage or free space",
				 pct, s->st[worst].name, sm_format_bytes(shortfall, a, sizeof(a)), pct,
				 sm_format_bytes(s->margin, b, sizeof(b)));
			goto cleanup;
		}
		add_move(s, (size_t)u, (size_t)to);
	}
	ret = 0;

cleanup:
	free(floor);
	return ret;
}

int sm_balance_plan(const struct sm_storage *st, size_t nst, const struct sm_unit *units,
		    size_t nunits, const struct sm_balance_goal *goal, unsigned long long margin,
		    struct sm_balance_plan *out)
{
	struct sim s = { .st = st, .nst = nst, .units = units, .nunits = nunits, .margin = margin,
			 .out = out };
	int rc;

	memset(out, 0, sizeof(*out));
	out->free_before = sm_xcalloc(nst, sizeof(*out->free_before));
	out->free_after = sm_xcalloc(nst, sizeof(*out->free_after));
	s.free = out->free_after;
	s.moved = sm_xcalloc(nunits + 1, sizeof(*s.moved));
	for (size_t t = 0; t < nst; t++)
		out->free_before[t] = out->free_after[t] = st[t].free;
	if (goal->drain >= 0)
		rc = drain(&s, (size_t)goal->drain);
	else
		rc = target_free(&s, goal->target_free);
	free(s.moved);
	if (rc < 0) {
		sm_balance_plan_release(out);
		return -1;
	}
	return 0;
}

void sm_balance_plan_release(struct sm_balance_plan *p)
{
	free(p->moves);
	free(p->free_before);
	free(p->free_after);
	memset(p, 0, sizeof(*p));
}
