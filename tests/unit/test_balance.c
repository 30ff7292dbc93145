/* test_balance.c: the rebalance planner (sm_balance_plan) over hand-made
 * figures: which disks a drain or a free-space goal moves, in what order and
 * where, the free space before and after, and the goals it refuses.  Every
 * plan is replayed step by step to check the margins it promises.  And the
 * rebalance's rows read back from a journal (sm_journal_rebalance_load): as written,
 * or edited, then refused naming the rebalance and the row.
 */
#include "unit.h"

#include "balance/plan.h"
#include "balance/rebalance.h"
#include "util.h"

#include <sqlite3.h>

#define MiB (1ULL << 20)
#define MARGIN (10 * MiB)

#define ST(n, sz, fr) { .name = (n), .dir = "/st/" n, .size = (sz) * MiB, .free = (fr) * MiB }
#define UNIT(dom, dk, st, mib) \
	{ .domain = (dom), .disk = (dk), .running = true, .storage = (st), .bytes = (mib) * MiB }

static const struct sm_balance_goal drain_0 = { .drain = 0 };

static struct sm_balance_goal target(double pct)
{
	struct sm_balance_goal g = { .drain = -1, .target_free = pct };

	return g;
}

/* Replay p against the storages as the executor would run it, one move after
 * another: before each move the destination takes the bytes plus the margin
 * (the overlays are there too; the source needs nothing); after it the source has the bytes back.
 * The free space at the end is p's free_after, and the bytes add up. */
static void replay_at(const struct sm_storage *st, size_t nst, const struct sm_unit *units,
		      const struct sm_balance_plan *p, unsigned long long margin,
		      const char *file, int line)
{
	unsigned long long *free_now = calloc(nst, sizeof(*free_now));
	unsigned long long bytes = 0;

	assert_non_null(free_now);
	for (size_t t = 0; t < nst; t++) {
		if (p->free_before[t] != st[t].free) {
			print_error("free_before[%zu] is %llu, statvfs said %llu\n", t,
				    p->free_before[t], st[t].free);
			_fail(file, line);
		}
		free_now[t] = st[t].free;
	}
	for (size_t i = 0; i < p->nmoves; i++) {
		const struct sm_balance_move *m = &p->moves[i];

		if (m->from >= nst || m->to >= nst || m->from == m->to ||
		    (int)m->from != units[m->unit].storage || m->bytes != units[m->unit].bytes) {
			print_error("move %zu (unit %zu, %zu -> %zu, %llu bytes) does not match its "
				    "unit (storage %d, %llu bytes)\n", i, m->unit, m->from, m->to,
				    m->bytes, units[m->unit].storage, units[m->unit].bytes);
			_fail(file, line);
		}
		for (size_t k = 0; k < i; k++) {
			if (p->moves[k].unit == m->unit) {
				print_error("unit %zu moves twice (moves %zu and %zu)\n", m->unit, k, i);
				_fail(file, line);
			}
		}
		if (units[m->unit].why_not) {
			print_error("move %zu takes unit %zu, which cannot move: %s\n", i, m->unit,
				    units[m->unit].why_not);
			_fail(file, line);
		}
		if (free_now[m->to] < m->bytes + margin) {
			print_error("move %zu: destination %zu has %llu free for %llu bytes and the "
				    "margin\n", i, m->to, free_now[m->to], m->bytes);
			_fail(file, line);
		}
		free_now[m->to] -= m->bytes;
		free_now[m->from] += m->bytes;
		bytes += m->bytes;
	}
	for (size_t t = 0; t < nst; t++) {
		if (p->free_after[t] != free_now[t]) {
			print_error("free_after[%zu] is %llu, the replay gives %llu\n", t,
				    p->free_after[t], free_now[t]);
			_fail(file, line);
		}
	}
	if (p->bytes != bytes) {
		print_error("the plan says %llu bytes, its moves add up to %llu\n", p->bytes, bytes);
		_fail(file, line);
	}
	free(free_now);
}
#define replay(st, nst, units, p) replay_at((st), (nst), (units), (p), MARGIN, __FILE__, __LINE__)

static void assert_move_at(const struct sm_balance_plan *p, size_t i, size_t unit, size_t from,
			   size_t to, unsigned long long bytes, const char *file, int line)
{
	const struct sm_balance_move *m;

	if (i >= p->nmoves) {
		print_error("the plan has %zu moves, not a move %zu\n", p->nmoves, i);
		_fail(file, line);
	}
	m = &p->moves[i];
	if (m->unit != unit || m->from != from || m->to != to || m->bytes != bytes) {
		print_error("move %zu is unit %zu %zu -> %zu (%llu bytes), expected unit %zu "
			    "%zu -> %zu (%llu bytes)\n", i, m->unit, m->from, m->to, m->bytes, unit,
			    from, to, bytes);
		_fail(file, line);
	}
}
#define assert_move(p, i, unit, from, to, mib) \
	assert_move_at((p), (i), (unit), (from), (to), (mib) * MiB, __FILE__, __LINE__)

/* A refused plan leaves nothing to move and nothing to free. */
static void assert_refused(const struct sm_balance_plan *p)
{
	assert_int_equal(p->nmoves, 0);
	assert_null(p->moves);
	assert_null(p->free_before);
	assert_null(p->free_after);
	assert_int_equal(p->bytes, 0);
}

/* Drain: every disk of A, largest first, each to the storage with the most
 * free space at that step; disks on other storages stay. */
static void test_drain_largest_first_most_free(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 100), ST("B", 1000, 500), ST("C", 1000, 720) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 0, 50),
		UNIT("d2", "vda", 0, 200),
		UNIT("d3", "vdb", 0, 100),
		UNIT("d4", "vda", 1, 10),
		UNIT("d5", "vda", 2, 30),
	};
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 3, units, 5, &drain_0, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 3);
	/* 200 to C (720 > 500): C 520, A 300; 100 to C (520 > 500): C 420, A 400;
	 * 50 to B (500 > 420): B 450, A 450. */
	assert_move(&p, 0, 1, 0, 2, 200);
	assert_move(&p, 1, 2, 0, 2, 100);
	assert_move(&p, 2, 0, 0, 1, 50);
	assert_int_equal(p.bytes, 350 * MiB);
	assert_int_equal(p.free_before[0], 100 * MiB);
	assert_int_equal(p.free_before[1], 500 * MiB);
	assert_int_equal(p.free_before[2], 720 * MiB);
	assert_int_equal(p.free_after[0], 450 * MiB);
	assert_int_equal(p.free_after[1], 450 * MiB);
	assert_int_equal(p.free_after[2], 420 * MiB);
	replay(st, 3, units, &p);
	sm_balance_plan_release(&p);
	assert_null(p.moves);
	assert_int_equal(p.nmoves, 0);
}

/* The drained storage need not be the first one, and it never receives. */
static void test_drain_middle_storage(void **state)
{
	struct sm_storage st[] = { ST("A", 300, 250), ST("B", 400, 100), ST("C", 500, 260) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 1, 120),
		UNIT("d2", "vda", 1, 90),
		UNIT("d3", "vda", 1, 60),
		UNIT("d4", "vda", 0, 40),
	};
	struct sm_balance_goal g = { .drain = 1 };
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 3, units, 4, &g, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 3);
	/* 120 to C (260 > 250): C 140; 90 to A (250 > 140): A 160; 60 to A (160 > 140). */
	assert_move(&p, 0, 0, 1, 2, 120);
	assert_move(&p, 1, 1, 1, 0, 90);
	assert_move(&p, 2, 2, 1, 0, 60);
	assert_int_equal(p.free_after[0], 100 * MiB);
	assert_int_equal(p.free_after[1], 370 * MiB);
	assert_int_equal(p.free_after[2], 140 * MiB);
	replay(st, 3, units, &p);
	sm_balance_plan_release(&p);
}

/* A disk that fits nowhere with the margin refuses the whole drain, even when
 * the ones before it fit: nothing moves. */
static void test_drain_does_not_fit(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 100), ST("B", 1000, 150), ST("C", 1000, 120) };
	struct sm_unit units[] = {
		UNIT("small", "vda", 0, 20),
		UNIT("big", "vdb", 0, 145),  /* 145 + 10 > 150 */
	};
	struct sm_balance_plan p;

	(void)state;
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 3, units, 2, &drain_0, MARGIN, &p), -1);
	assert_refused(&p);
	assert_contains(sm_error_message(), "'A'");
	assert_contains(sm_error_message(), "vdb");
	assert_contains(sm_error_message(), "'big'");

	/* The margin is what does not fit: without it the same drain goes. */
	assert_int_equal(sm_balance_plan(st, 3, units, 2, &drain_0, 0, &p), 0);
	assert_int_equal(p.nmoves, 2);
	assert_move(&p, 0, 1, 0, 1, 145);
	assert_move(&p, 1, 0, 0, 2, 20);
	replay_at(st, 3, units, &p, 0, __FILE__, __LINE__);
	sm_balance_plan_release(&p);

	/* Exactly bytes + margin free is enough. */
	st[1].free = 155 * MiB;
	assert_int_equal(sm_balance_plan(st, 3, units, 2, &drain_0, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 2);
	assert_move(&p, 0, 1, 0, 1, 145);
	replay(st, 3, units, &p);
	sm_balance_plan_release(&p);
}

/* Each step sees the space the earlier ones took: B holds the first disk but
 * then has too little left for the second, so the whole drain is refused,
 * naming the disk that does not fit. */
static void test_drain_runs_out_midway(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 100), ST("B", 1000, 200) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 0, 120),
		UNIT("d2", "vda", 0, 100),  /* B has 80 left after d1 */
	};
	struct sm_balance_plan p;

	(void)state;
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 2, units, 2, &drain_0, MARGIN, &p), -1);
	assert_refused(&p);
	assert_contains(sm_error_message(), "'A'");
	assert_contains(sm_error_message(), "'d2'");
}

/* The refusal's figures: the disk's size and the most free space another
 * storage has at that step (two different numbers). */
static void test_drain_refusal_figures(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 100), ST("B", 1000, 150), ST("C", 1000, 120) };
	struct sm_unit units[] = { UNIT("big", "vdb", 0, 300) };
	struct sm_balance_plan p;

	(void)state;
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 3, units, 1, &drain_0, MARGIN, &p), -1);
	assert_contains(sm_error_message(), "needs 300.0 MiB");
	assert_contains(sm_error_message(), "10.0 MiB margin");
	assert_contains(sm_error_message(), "150.0 MiB");
}

/* The source needs no free byte: the move's overlays are on the destination
 * (its margin), so a storage filled to the last byte can be drained. */
static void test_drain_full_source(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 0), ST("B", 1000, 900) };
	struct sm_unit units[] = { UNIT("d1", "vda", 0, 50) };
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 2, units, 1, &drain_0, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 1);
	assert_int_equal(p.moves[0].to, 1);
	replay(st, 2, units, &p);
	sm_balance_plan_release(&p);
}

/* An unmovable disk on the drained storage refuses the drain by name and
 * reason; one on another storage is no obstacle. */
static void test_drain_unmovable(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 500), ST("B", 1000, 900) };
	struct sm_unit units[] = {
		UNIT("ok", "vda", 0, 10),
		UNIT("busy", "vdc", 0, 10),
		UNIT("elsewhere", "vda", 1, 10),
	};
	struct sm_balance_plan p;

	(void)state;
	units[1].why_not = "it has a block job running";
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 2, units, 3, &drain_0, MARGIN, &p), -1);
	assert_refused(&p);
	assert_contains(sm_error_message(), "'A'");
	assert_contains(sm_error_message(), "vdc");
	assert_contains(sm_error_message(), "'busy'");
	assert_contains(sm_error_message(), "it has a block job running");

	units[1].why_not = NULL;
	units[2].why_not = "its chain spans several file systems";
	assert_int_equal(sm_balance_plan(st, 2, units, 3, &drain_0, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 2);
	replay(st, 2, units, &p);
	sm_balance_plan_release(&p);
}

/* Disks on no storage we were given (-1) are not planned, whatever the goal. */
static void test_units_on_no_storage(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 100), ST("B", 1000, 900) };
	struct sm_unit units[] = {
		UNIT("outside", "vda", -1, 500),
		UNIT("d1", "vda", 0, 40),
		UNIT("outside2", "vdb", -1, 5),
	};
	struct sm_balance_goal g = target(30);
	struct sm_balance_plan p;

	(void)state;
	units[2].why_not = "not ours";
	assert_int_equal(sm_balance_plan(st, 2, units, 3, &drain_0, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 1);
	assert_move(&p, 0, 1, 0, 1, 40);
	replay(st, 2, units, &p);
	sm_balance_plan_release(&p);

	/* A is 200 short of 300 and only its 40 can go: refused, -1 units unused. */
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 2, units, 3, &g, MARGIN, &p), -1);
	assert_refused(&p);
	assert_contains(sm_error_message(), "'A'");
}

/* Goals already met: nothing to move, free after = free before. */
static void test_goal_already_met(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 400), ST("B", 1000, 500), ST("C", 500, 200) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 1, 100),
		UNIT("d2", "vda", 2, 100),
	};
	struct sm_balance_goal g = target(40);
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 3, units, 2, &g, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 0);
	assert_int_equal(p.bytes, 0);
	for (size_t t = 0; t < 3; t++) {
		assert_int_equal(p.free_before[t], st[t].free);
		assert_int_equal(p.free_after[t], st[t].free);
	}
	sm_balance_plan_release(&p);

	/* Nothing on A: draining it moves nothing. */
	assert_int_equal(sm_balance_plan(st, 3, units, 2, &drain_0, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 0);
	for (size_t t = 0; t < 3; t++)
		assert_int_equal(p.free_after[t], st[t].free);
	sm_balance_plan_release(&p);
}

/* Target free: the smallest disk that covers the shortfall alone, to the
 * storage with the most free space. */
static void test_target_smallest_cover(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 100), ST("B", 1000, 800), ST("C", 1000, 600) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 0, 50),
		UNIT("d2", "vda", 0, 250),
		UNIT("d3", "vda", 0, 400),
		UNIT("d4", "vda", 0, 150),
		UNIT("d5", "vda", 1, 200),
	};
	struct sm_balance_goal g = target(30);
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 3, units, 5, &g, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 1);
	assert_move(&p, 0, 1, 0, 1, 250);
	assert_int_equal(p.free_after[0], 350 * MiB);
	assert_int_equal(p.free_after[1], 550 * MiB);
	assert_int_equal(p.free_after[2], 600 * MiB);
	assert_int_equal(p.bytes, 250 * MiB);
	replay(st, 3, units, &p);
	sm_balance_plan_release(&p);
}

/* No disk covers the shortfall: the largest, then again for what is left
 * (a smallest cover at the last step); destinations by most free space. */
static void test_target_largest_first(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 20), ST("B", 2000, 1500), ST("C", 2000, 1400) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 0, 100),
		UNIT("d2", "vda", 0, 120),
		UNIT("d3", "vda", 0, 90),
		UNIT("d4", "vda", 0, 30),
	};
	struct sm_balance_goal g = target(30);
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 3, units, 4, &g, MARGIN, &p), 0);
	/* short 280: 120 to B (1500) -> short 160: 100 to C (1400 > 1380) ->
	 * short 60: the smallest that covers it is 90, to B (1380 > 1300). */
	assert_int_equal(p.nmoves, 3);
	assert_move(&p, 0, 1, 0, 1, 120);
	assert_move(&p, 1, 0, 0, 2, 100);
	assert_move(&p, 2, 2, 0, 1, 90);
	assert_int_equal(p.bytes, 310 * MiB);
	assert_int_equal(p.free_after[0], 330 * MiB);
	assert_int_equal(p.free_after[1], 1290 * MiB);
	assert_int_equal(p.free_after[2], 1300 * MiB);
	replay(st, 3, units, &p);
	sm_balance_plan_release(&p);
}

/* A destination keeps its own share (plus the margin) after taking a disk:
 * a disk that would push every other storage under its share is not chosen. */
static void test_target_keeps_destination_share(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 20), ST("B", 1000, 600), ST("C", 1000, 400) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 0, 300),  /* 300 + 10 + 300 > 600: fits nowhere */
		UNIT("d2", "vda", 0, 260),  /* B only: 260 + 10 + 300 <= 600 */
		UNIT("d3", "vda", 0, 50),   /* after d2, C only: 50 + 10 + 300 > 340 */
	};
	struct sm_balance_goal g = target(30);
	struct sm_balance_plan p;

	(void)state;
	assert_int_equal(sm_balance_plan(st, 3, units, 3, &g, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 2);
	assert_move(&p, 0, 1, 0, 1, 260);
	assert_move(&p, 1, 2, 0, 2, 50);
	for (size_t t = 0; t < 3; t++)
		assert_true(p.free_after[t] >= 300 * MiB);
	replay(st, 3, units, &p);
	for (size_t i = 0; i < p.nmoves; i++)
		assert_true(p.free_after[p.moves[i].to] >= 300 * MiB);
	sm_balance_plan_release(&p);

	/* Without d3 the goal cannot be met without pushing B or C under 30%. */
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 3, units, 2, &g, MARGIN, &p), -1);
	assert_refused(&p);
	assert_contains(sm_error_message(), "'A'");
	assert_contains(sm_error_message(), "30%");
}

/* The shortest storage is served first, unmovable and empty disks are never
 * picked, and each short storage reaches its share. */
static void test_target_two_short_storages(void **state)
{
	struct sm_storage st[] = { ST("A", 1000, 200), ST("B", 500, 20), ST("C", 2000, 1800) };
	struct sm_unit units[] = {
		UNIT("a1", "vda", 0, 150),
		UNIT("a2", "vda", 0, 60),
		UNIT("b1", "vda", 1, 400),  /* unmovable, and it would cover */
		UNIT("b2", "vda", 1, 140),
		UNIT("b3", "vda", 1, 0),
		UNIT("b4", "vda", 1, 100),
	};
	struct sm_balance_goal g = target(25);
	struct sm_balance_plan p;

	(void)state;
	units[2].why_not = "it has a block job running";
	assert_int_equal(sm_balance_plan(st, 3, units, 6, &g, MARGIN, &p), 0);
	/* Shortfalls: A 50, B 105 -> B first: 140 covers it alone. Then A: 60. */
	assert_int_equal(p.nmoves, 2);
	assert_move(&p, 0, 3, 1, 2, 140);
	assert_move(&p, 1, 1, 0, 2, 60);
	assert_int_equal(p.free_after[0], 260 * MiB);
	assert_int_equal(p.free_after[1], 160 * MiB);
	assert_int_equal(p.free_after[2], 1600 * MiB);
	for (size_t t = 0; t < 3; t++)
		assert_true(p.free_after[t] >= (unsigned long long)(st[t].size * 0.25));
	replay(st, 3, units, &p);
	sm_balance_plan_release(&p);
}

/* A goal no disk can reach (every storage short) is refused by name. */
static void test_target_impossible(void **state)
{
	struct sm_storage st[] = { ST("A", 300, 100), ST("B", 400, 150), ST("C", 500, 200) };
	struct sm_unit units[] = {
		UNIT("d1", "vda", 0, 150),
		UNIT("d2", "vda", 1, 200),
		UNIT("d3", "vda", 2, 250),
	};
	struct sm_balance_goal g = target(99);
	struct sm_balance_plan p;

	(void)state;
	sm_error_clear();
	assert_int_equal(sm_balance_plan(st, 3, units, 3, &g, MARGIN, &p), -1);
	assert_refused(&p);
	/* The largest shortfall is C's (495 - 200). */
	assert_contains(sm_error_message(), "99%");
	assert_contains(sm_error_message(), "'C'");
	assert_contains(sm_error_message(), "short");
}

/* A larger, mixed case: every step of the drain keeps the margins, and the
 * drained storage ends with all its movable bytes back. */
static void test_drain_replay_many(void **state)
{
	struct sm_storage st[] = {
		ST("A", 300, 60), ST("B", 400, 180), ST("C", 500, 260), ST("D", 200, 150),
	};
	struct sm_unit units[16];
	unsigned long long on_a = 0;
	struct sm_balance_goal g = { .drain = 0 };
	struct sm_balance_plan p;
	char names[16][8];

	(void)state;
	for (size_t i = 0; i < 16; i++) {
		snprintf(names[i], sizeof(names[i]), "d%zu", i);
		units[i] = (struct sm_unit){
			.domain = names[i], .disk = "vda", .running = i % 3 != 0,
			.storage = (int)(i % 4), .bytes = ((i * 7) % 11 + 3) * MiB * 2,
		};
		if (units[i].storage == 0)
			on_a += units[i].bytes;
	}
	assert_int_equal(sm_balance_plan(st, 4, units, 16, &g, MARGIN, &p), 0);
	assert_int_equal(p.nmoves, 4);
	for (size_t i = 0; i < p.nmoves; i++) {
		assert_int_equal(p.moves[i].from, 0);
		assert_int_not_equal(p.moves[i].to, 0);
		if (i)
			assert_true(p.moves[i - 1].bytes >= p.moves[i].bytes);
	}
	assert_int_equal(p.bytes, on_a);
	assert_int_equal(p.free_after[0], p.free_before[0] + on_a);
	replay(st, 4, units, &p);
	sm_balance_plan_release(&p);
}

/* Run sql on the journal at path (another connection, as a hand would). */
static void edit(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* One text value of the journal, behind snapmove's back (NULL for none). */
static char *peek(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *ret = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		ret = sm_xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

static void assert_peek(const char *path, const char *sql, const char *want)
{
	SM_AUTOFREE char *got = peek(path, sql);

	assert_string_equal(got, want);
}

/* The rebalance's rows as its typed journal functions write them: the same
 * strings the rebalance wrote with its own SQL, read back by load. */
static void test_rebalance_rows_written(void **state)
{
	struct sm_rebalance_move_row moves[2] = {
		{ .seq = 1, .domain = "vm1", .disk = "vda", .running = true, .from = "/a",
		  .to_dir = "/b", .bytes = 4096, .state = SM_RMOVE_DONE, .job = 9 },
		{ .seq = 2, .domain = "vm2", .disk = "vdb", .from = "/a", .to_dir = "/c",
		  .bytes = 8192 },
	};
	struct sm_rebalance_row in = { .max_parallel = 3, .bandwidth_mib = 40,
				       .stop_on_error = true, .job_floor = 99,
				       .moves = moves, .nmoves = 2 };
	char *dir = unit_mkdtemp();
	char *path = sm_path_join(dir, "journal.db");
	struct sm_journal *j = NULL;
	struct sm_rebalance_row r;
	long long id = 0, unfinished;

	(void)state;
	assert_int_equal(sm_journal_open(path, &j), 0);
	assert_int_equal(sm_journal_rebalance_insert(j, "drain /a", &in, &id), 0);
	assert_int_equal(id, 1);
	assert_peek(path, "SELECT goal || '|' || state || '|' || max_parallel || '|' || "
		    "bandwidth_mib || '|' || stop_on_error || '|' || job_floor FROM rebalance",
		    "drain /a|running|3|40|1|0");
	/* Every move planned, no job, whatever the row said. */
	assert_peek(path, "SELECT group_concat(seq || ' ' || domain || ' ' || disk || ' ' || "
		    "running || ' ' || from_storage || ' ' || to_dir || ' ' || bytes || ' ' || "
		    "state || ' ' || coalesce(job_id, 'none'), ',') FROM rebalance_move",
		    "1 vm1 vda 1 /a /b 4096 planned none,2 vm2 vdb 0 /a /c 8192 planned none");
	assert_int_equal(sm_journal_rebalance_move_set(j, id, 2, SM_RMOVE_RUNNING, 7, NULL), 0);
	assert_int_equal(sm_journal_rebalance_move_set(j, id, 1, SM_RMOVE_FAILED, 0, "exit 1"), 0);
	assert_peek(path, "SELECT group_concat(seq || ' ' || state || ' ' || job_id || ' ' || "
		    "coalesce(error, '-'), ',') FROM rebalance_move",
		    "1 failed 0 exit 1,2 running 7 -");
	assert_int_equal(sm_journal_rebalance_load(j, id, &r), 0);
	assert_int_equal(r.max_parallel, 3);
	assert_int_equal(r.nmoves, 2);
	assert_int_equal(r.moves[0].state, SM_RMOVE_FAILED);
	assert_int_equal(r.moves[0].job, 0);
	assert_int_equal(r.moves[1].state, SM_RMOVE_RUNNING);
	assert_int_equal(r.moves[1].job, 7);
	sm_journal_rebalance_row_release(&r);
	assert_int_equal(sm_journal_rebalance_unfinished(j, &unfinished), 1);
	assert_int_equal(sm_journal_rebalance_finish(j, id, SM_REBALANCE_STATE_FAILED), 0);
	assert_peek(path, "SELECT state || ' ' || (finished_at > 0) FROM rebalance", "failed 1");
	assert_int_equal(sm_journal_rebalance_unfinished(j, &unfinished), 1);
	assert_int_equal(sm_journal_rebalance_finish(j, id, SM_REBALANCE_STATE_DONE), 0);
	assert_peek(path, "SELECT state FROM rebalance", "done");
	assert_int_equal(sm_journal_rebalance_unfinished(j, &unfinished), 0);
	sm_journal_free(j);
	free(path);
	unit_rmtree(dir);
}

static void test_rebalance_rows(void **state)
{
	static const struct {
		const char *sql;
		const char *why;
	} bad[] = {
		{ "UPDATE rebalance_move SET bytes = -1 WHERE seq = 2", "(move 2: bytes is out of range (-1))" },
		{ "UPDATE rebalance_move SET bytes = 'big' WHERE seq = 2", "(move 2: bytes is not a whole number)" },
		{ "UPDATE rebalance_move SET seq = 'x' WHERE seq = 2", "(move: seq is not a whole number)" },
		{ "UPDATE rebalance_move SET state = 'gone' WHERE seq = 1", "(move 1: unknown state 'gone')" },
		{ "UPDATE rebalance_move SET running = 3 WHERE seq = 1", "(move 1: running is out of range (3))" },
		{ "UPDATE rebalance_move SET to_dir = 'x/y' WHERE seq = 1", "(move 1: to_dir is not an absolute path)" },
		{ "UPDATE rebalance_move SET job_id = -1 WHERE seq = 1", "(move 1: job_id is out of range (-1))" },
		{ "UPDATE rebalance_move SET disk = x'00' WHERE seq = 1", "(move 1: disk is not text)" },
		{ "UPDATE rebalance SET max_parallel = 17", "(max_parallel is out of range (17))" },
		{ "UPDATE rebalance SET bandwidth_mib = 2.5", "(bandwidth_mib is not a whole number)" },
		{ "UPDATE rebalance SET job_floor = -1", "(job_floor is out of range (-1))" },
		{ "UPDATE rebalance SET state = 'odd'", "(unknown state 'odd')" },
	};
	char *dir = unit_mkdtemp();
	char *path = sm_path_join(dir, "journal.db");
	struct sm_journal *j = NULL;
	struct sm_rebalance_row r;
	long long id;

	(void)state;
	assert_int_equal(sm_journal_open(path, &j), 0);
	assert_int_equal(sm_journal_rebalance_unfinished(j, &id), 0);
	edit(path, "INSERT INTO rebalance (goal, state, max_parallel, bandwidth_mib, stop_on_error, "
		   "job_floor, created_at) VALUES ('drain /a', 'running', 2, 40, 1, 6, 1.7e9);"
		   "INSERT INTO rebalance_move VALUES (1, 1, 'vm1', 'vda', 1, '/a', '/b', 4096, "
		   "'done', 7, NULL), (1, 2, 'vm2', 'vdb', 0, '/a', '/c', 8192, 'planned', NULL, "
		   "NULL)");
	assert_int_equal(sm_journal_rebalance_unfinished(j, &id), 1);
	assert_int_equal(id, 1);
	assert_int_equal(sm_journal_rebalance_load(j, 1, &r), 0);
	assert_int_equal(r.max_parallel, 2);
	assert_int_equal(r.bandwidth_mib, 40);
	assert_true(r.stop_on_error);
	assert_int_equal(r.job_floor, 6);
	assert_int_equal(r.nmoves, 2);
	assert_string_equal(r.moves[0].domain, "vm1");
	assert_int_equal(r.moves[0].state, SM_RMOVE_DONE);
	assert_int_equal(r.moves[0].job, 7);
	assert_string_equal(r.moves[1].to_dir, "/c");
	assert_false(r.moves[1].running);
	assert_int_equal(r.moves[1].bytes, 8192);
	assert_int_equal(r.moves[1].state, SM_RMOVE_PLANNED);
	assert_int_equal(r.moves[1].job, 0);
	sm_journal_rebalance_row_release(&r);
	/* A move without a job, as set_move writes it: job_id 0. */
	edit(path, "UPDATE rebalance_move SET job_id = 0 WHERE seq = 2");
	assert_int_equal(sm_journal_rebalance_load(j, 1, &r), 0);
	assert_int_equal(r.moves[1].job, 0);
	sm_journal_rebalance_row_release(&r);
	assert_int_equal(sm_journal_rebalance_load(j, 2, &r), -1);
	assert_contains(sm_error_message(), "no rebalance 2");
	for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
		SM_AUTOFREE char *sql = sm_xasprintf("BEGIN; %s; COMMIT", bad[i].sql);
		int rc;

		edit(path, "CREATE TABLE IF NOT EXISTS keep AS SELECT * FROM rebalance_move");
		edit(path, "CREATE TABLE IF NOT EXISTS keep_r AS SELECT * FROM rebalance");
		edit(path, sql);
		rc = sm_journal_rebalance_load(j, 1, &r);
		if (rc != -2)
			print_error("%s: load returned %d\n", bad[i].sql, rc);
		assert_int_equal(rc, -2);
		assert_null(r.moves);
		assert_contains(sm_error_message(), "journal row of rebalance 1 is malformed ");
		assert_contains(sm_error_message(), bad[i].why);
		assert_contains(sm_error_message(), "the journal may have been edited");
		edit(path, "DELETE FROM rebalance_move; INSERT INTO rebalance_move SELECT * FROM keep;"
			   "DELETE FROM rebalance; INSERT INTO rebalance SELECT * FROM keep_r");
		assert_int_equal(sm_journal_rebalance_load(j, 1, &r), 0);
		sm_journal_rebalance_row_release(&r);
	}
	edit(path, "UPDATE rebalance SET state = 'odd'");
	assert_int_equal(sm_journal_rebalance_unfinished(j, &id), -2);
	assert_contains(sm_error_message(), "journal row of rebalance 1 is malformed (unknown state 'odd')");
	edit(path, "UPDATE rebalance SET state = 'done'");
	assert_int_equal(sm_journal_rebalance_unfinished(j, &id), 0);
	sm_journal_free(j);
	free(path);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drain_largest_first_most_free),
		cmocka_unit_test(test_drain_middle_storage),
		cmocka_unit_test(test_drain_does_not_fit),
		cmocka_unit_test(test_drain_runs_out_midway),
		cmocka_unit_test(test_drain_refusal_figures),
		cmocka_unit_test(test_drain_full_source),
		cmocka_unit_test(test_drain_unmovable),
		cmocka_unit_test(test_units_on_no_storage),
		cmocka_unit_test(test_goal_already_met),
		cmocka_unit_test(test_target_smallest_cover),
		cmocka_unit_test(test_target_largest_first),
		cmocka_unit_test(test_target_keeps_destination_share),
		cmocka_unit_test(test_target_two_short_storages),
		cmocka_unit_test(test_target_impossible),
		cmocka_unit_test(test_drain_replay_many),
		cmocka_unit_test(test_rebalance_rows),
		cmocka_unit_test(test_rebalance_rows_written),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
