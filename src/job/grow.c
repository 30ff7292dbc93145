/* grow.c: the overlays on provisioned devices grow before the guest fills
 * them, as oVirt's vdsm grows a qcow2 volume on LVM (its drive monitor).
 *
 * A thread runs for as long as the job works on the running domain (move,
 * resume, a live abort), whatever phase waits meanwhile: the mirror, the
 * copy of the base images, the wait for readiness, the final commit.  For
 * each disk whose active image is one of the job's overlay devices it
 * keeps a block threshold (virDomainSetBlockThreshold) half a chunk below
 * the device's end (it grows by two chunks while a mirror writes both
 * sides); the event (VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD) wakes
 * it, and it also polls the allocation QEMU reports (virDomainGetBlockInfo:
 * the highest offset written on the device) every half second, in case an
 * event is lost.  When the allocation passes the watermark it extends,
 * through the device's provisioner (journaled runs), first the destination
 * overlay's device while the source overlay is active (the mirror writes
 * there what the guest writes here), then the active one, by a chunk (more
 * if the guest ran ahead), and sets the next threshold.  A domain QEMU
 * paused on ENOSPC anyway (a burst faster than a provisioner run) is
 * extended and resumed, and that is said.
 *
 * It uses its own journal connection (the job's serves the main thread)
 * and never touches a device the job is removing (sm_job_grow_forget).
 * It does not create, format or remove devices: ovdev.c does.
 */
#include "job/internal.h"
#include "events.h"
#include "provision.h"
#include "util.h"

#include <pthread.h>
#include <string.h>

/* How often the allocation is read when no event comes, in ms. */
#define SM_GROW_POLL_MS 500
/* A provisioner that failed is asked again after this many seconds. */
#define SM_GROW_RETRY_S 5.0

struct grow_dev {
	long long id;                /* 0: none, or forgotten */
	char *path;
	unsigned long long bytes;    /* its size as journaled */
};

struct grow_disk {
	char *target;
	struct grow_dev src, dst;
	const struct grow_dev *armed_on;  /* the device the threshold was set on */
	unsigned long long armed_at;      /* ...at that size */
	double retry_at;                  /* after a failed extend */
};

struct sm_job_grow {
	pthread_t thread;
	pthread_mutex_t lock;             /* the devices; held while one is extended */
	bool stop;
	struct sm_virt *v;
	virDomainPtr dom;
	struct sm_journal *j;
	struct sm_progress *pr;
	long long job;
	unsigned long long chunk;
	unsigned long seen;               /* threshold events handled */
	struct grow_disk *disks;
	size_t n;
};

/* Extend dev to bytes through its provisioner; 0, or -1 with a warning. */
static int extend(struct sm_job_grow *g, struct grow_disk *d, struct grow_dev *dev,
		  unsigned long long bytes, unsigned long long written)
{
	struct sm_device_row row;
	char a[32], b[32];

	if (sm_journal_device_get(g->j, dev->id, &row) == 1) {
		/* Grown already (sm_job_grow_match, or an earlier process). */
		if (row.bytes > dev->bytes)
			dev->bytes = row.bytes;
		sm_device_row_release(&row);
		if (dev->bytes >= bytes)
			return 0;
	}
	if (sm_provision_extend(g->j, g->job, dev->id, bytes, 0, &row) != SM_PROVISION_DONE) {
		SM_AUTOFREE char *why = sm_xasprintf("cannot grow overlay device '%s' to %s: %s; "
						     "asked again in %.0f s", dev->path,
						     sm_format_bytes(bytes, a, sizeof(a)),
						     sm_error_message(), SM_GROW_RETRY_S);

		sm_progress_say(g->pr, "  warning: disk '%s': %s", d->target, why);
		sm_event_warning(g->job, d->target, why);
		d->retry_at = sm_monotonic() + SM_GROW_RETRY_S;
		return -1;
	}
	dev->bytes = row.bytes;
	sm_device_row_release(&row);
	sm_progress_say(g->pr, "  disk '%s': overlay device '%s' grown to %s (written up to %s)",
			d->target, dev->path, sm_format_bytes(dev->bytes, a, sizeof(a)),
			sm_format_bytes(written, b, sizeof(b)));
	return 0;
}

/* The device disk d runs on now, by the live chain's top, and its replica:
 * the device a mirror of the disk writes into (a move's mirror onto the
 * destination overlay, an abort's mirror back onto the source overlay), or
 * before the move's mirror starts the destination overlay's device, which
 * the mirror will fill with what the source overlay holds.  A commit's
 * target is no device of the job: no replica. */
static struct grow_dev *active_dev(struct grow_disk *d, const struct sm_domain_disks *now,
				   struct grow_dev **replica)
{
	const struct sm_disk *disk = sm_domain_disks_find(now, d->target);
	struct grow_dev *act = NULL;

	*replica = NULL;
	if (!disk || disk->nchain == 0)
		return NULL;
	if (d->src.id && sm_str_eq(disk->chain[0].path, d->src.path))
		act = &d->src;
	else if (d->dst.id && sm_str_eq(disk->chain[0].path, d->dst.path))
		act = &d->dst;
	if (!act)
		return NULL;
	if (disk->mirror_job) {
		if (d->src.id && act != &d->src && sm_str_eq(disk->mirror_path, d->src.path))
			*replica = &d->src;
		else if (d->dst.id && act != &d->dst && sm_str_eq(disk->mirror_path, d->dst.path))
			*replica = &d->dst;
	} else if (act == &d->src && d->dst.id) {
		*replica = &d->dst;
	}
	return act;
}

/* Whether the domain is paused because a write found no space. */
static bool paused_nospace(virDomainPtr dom)
{
	virDomainDiskErrorPtr errs = NULL;
	int state, reason, n;
	bool nospace = false;

	if (virDomainGetState(dom, &state, &reason, 0) < 0 || state != VIR_DOMAIN_PAUSED ||
	    reason != VIR_DOMAIN_PAUSED_IOERROR)
		return false;
	n = virDomainGetDiskErrors(dom, NULL, 0, 0);
	if (n <= 0) {
		virResetLastError();
		return false;  /* not known to be ENOSPC: left to the admin */
	}
	errs = sm_xcalloc((size_t)n, sizeof(*errs));
	n = virDomainGetDiskErrors(dom, errs, (unsigned)n, 0);
	for (int i = 0; i < n; i++) {
		nospace |= errs[i].error == VIR_DOMAIN_DISK_ERROR_NO_SPACE;
		free(errs[i].disk);
	}
	free(errs);
	return nospace;
}

/* One look at disk d: grow what it runs on when the guest came near the
 * end (or filled it: nospace), and keep the threshold armed.  true when a
 * device grew. */
static bool look(struct sm_job_grow *g, struct grow_disk *d, const struct sm_domain_disks *now,
		 bool rearm, bool nospace)
{
	struct grow_dev *replica;
	struct grow_dev *act = active_dev(d, now, &replica);
	const struct sm_disk *disk = sm_domain_disks_find(now, d->target);
	virDomainBlockInfo info;
	unsigned long long step = g->chunk, half, want;
	bool grew = false;

	if (!act)
		return false;
	/* While a mirror writes both sides, every guest write costs two
	 * devices their room and each extend two provisioner runs: grow by
	 * two chunks, as vdsm doubles its chunk while it replicates a volume.
	 * The watermark stays half a chunk below the end (a device starts at
	 * one chunk: a whole chunk would put the threshold at 0, which QEMU
	 * takes as none). */
	if (replica && disk && disk->mirror_job)
		step = 2 * g->chunk;
	half = g->chunk / 2;
	if (virDomainGetBlockInfo(g->dom, d->target, &info, 0) < 0) {
		virResetLastError();
		return false;
	}
	if (sm_monotonic() < d->retry_at)
		want = 0;
	else if (info.allocation + half > act->bytes || nospace)
		for (want = act->bytes + step; info.allocation + half > want;)
			want += step;
	else
		want = act->bytes;  /* the replica no smaller than what it copies */
	/* The mirror writes into its target what the guest writes into the
	 * active overlay: the replica first, as vdsm. */
	if (want && replica && replica->bytes < want &&
	    extend(g, d, replica, want, info.allocation) < 0)
		return false;
	if (want > act->bytes) {
		if (extend(g, d, act, want, info.allocation) < 0)
			return false;
		grew = true;
	}
	if (rearm || grew || d->armed_on != act || d->armed_at != act->bytes) {
		/* QEMU disarms a threshold when it fires: set it again each time. */
		if (virDomainSetBlockThreshold(g->dom, d->target, act->bytes - half, 0) < 0) {
			virResetLastError();  /* the poll still grows it */
			d->armed_on = NULL;
		} else {
			d->armed_on = act;
			d->armed_at = act->bytes;
		}
	}
	return grew;
}

static void tick(struct sm_job_grow *g, bool rearm)
{
	struct sm_domain_disks now = { 0 };
	char *xml = virDomainGetXMLDesc(g->dom, 0);
	bool nospace, grew = false;

	if (!xml || sm_chain_parse(xml, &now) < 0) {
		virResetLastError();
		free(xml);
		return;
	}
	free(xml);
	nospace = paused_nospace(g->dom);
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->n && !g->stop; i++)
		grew |= look(g, &g->disks[i], &now, rearm, nospace);
	pthread_mutex_unlock(&g->lock);
	sm_domain_disks_release(&now);
	if (nospace && grew) {
		SM_AUTOFREE char *why = NULL;

		if (virDomainResume(g->dom) < 0) {
			why = sm_xasprintf("domain '%s' paused on a full overlay device; it was "
					   "grown, but resuming it failed: %s; 'virsh resume %s'",
					   virDomainGetName(g->dom), sm_virt_last_error(),
					   virDomainGetName(g->dom));
			virResetLastError();
		} else {
			why = sm_xasprintf("domain '%s' paused on a full overlay device (the guest "
					   "wrote faster than it grew); it was grown and resumed",
					   virDomainGetName(g->dom));
		}
		sm_progress_say(g->pr, "  warning: %s", why);
		sm_event_warning(g->job, NULL, why);
	}
}

static void *watch(void *arg)
{
	struct sm_job_grow *g = arg;

	tick(g, true);
	while (!__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE)) {
		unsigned long seq;

		/* At once when an event came during the last look. */
		sm_virt_threshold_wait(g->v, g->seen, SM_GROW_POLL_MS);
		if (__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE))
			break;
		seq = sm_virt_threshold_seq(g->v);
		tick(g, seq != g->seen);
		g->seen = seq;
	}
	return NULL;
}

static void grow_free(struct sm_job_grow *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->disks[i].target);
		free(g->disks[i].src.path);
		free(g->disks[i].dst.path);
	}
	free(g->disks);
	if (g->j)
		sm_journal_free(g->j);
	if (g->dom)
		virDomainFree(g->dom);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* The journaled size of device id (0 when it cannot be read). */
static unsigned long long journaled_bytes(struct sm_journal *j, long long id)
{
	struct sm_device_row d;
	unsigned long long bytes = 0;

	if (sm_journal_device_get(j, id, &d) == 1) {
		bytes = d.bytes;
		sm_device_row_release(&d);
	}
	return bytes;
}

int sm_job_grow_start(struct sm_jobctx *c)
{
	struct sm_job_grow *g;

	if (!c->overlay_chunk || !c->dom || !c->running || c->grow)
		return 0;
	g = sm_xcalloc(1, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	if (sm_journal_open(sm_journal_path(c->j), &g->j) < 0) {
		grow_free(g);
		return -1;
	}
	g->v = c->v;
	g->dom = c->dom;
	virDomainRef(g->dom);
	g->pr = c->pr;
	g->job = c->job;
	g->chunk = c->overlay_chunk;
	g->disks = sm_xcalloc(c->nplans, sizeof(*g->disks));
	g->n = c->nplans;
	for (size_t i = 0; i < c->nplans; i++) {
		struct grow_disk *d = &g->disks[i];

		d->target = sm_xstrdup(c->plans[i].target);
		if (c->disks[i].src_dev)
			d->src = (struct grow_dev){ c->disks[i].src_dev,
						    sm_xstrdup(c->plans[i].src_overlay),
						    journaled_bytes(c->j, c->disks[i].src_dev) };
		if (c->disks[i].dst_dev)
			d->dst = (struct grow_dev){ c->disks[i].dst_dev,
						    sm_xstrdup(c->plans[i].dst_overlay),
						    journaled_bytes(c->j, c->disks[i].dst_dev) };
	}
	g->seen = sm_virt_threshold_seq(c->v);
	if (pthread_create(&g->thread, NULL, watch, g) != 0) {
		sm_error("cannot start the thread that grows the overlay devices");
		grow_free(g);
		return -1;
	}
	c->grow = g;
	return 0;
}

void sm_job_grow_stop(struct sm_jobctx *c)
{
	struct sm_job_grow *g = c->grow;

	if (!g)
		return;
	__atomic_store_n(&g->stop, true, __ATOMIC_RELEASE);
	sm_virt_threshold_kick(g->v);
	pthread_join(g->thread, NULL);
	grow_free(g);
	c->grow = NULL;
}

int sm_job_grow_match(struct sm_jobctx *c, long long id, long long like)
{
	struct sm_job_grow *g = c->grow;
	struct sm_device_row want, have, out;
	int ret = -1;

	if (g)
		pthread_mutex_lock(&g->lock);
	if (sm_journal_device_get(c->j, like, &want) != 1)
		goto unlock;
	if (sm_journal_device_get(c->j, id, &have) != 1) {
		sm_device_row_release(&want);
		goto unlock;
	}
	ret = 0;
	if (have.bytes < want.bytes) {
		ret = sm_provision_extend(c->j, c->job, id, want.bytes, 0, &out) ==
		      SM_PROVISION_DONE ? 0 : -1;
		if (ret == 0) {
			char b[32];

			sm_progress_say(c->pr, "  overlay device '%s' grown to %s, as '%s'", out.path,
					sm_format_bytes(out.bytes, b, sizeof(b)), want.path);
			sm_device_row_release(&out);
		}
	}
	sm_device_row_release(&want);
	sm_device_row_release(&have);
unlock:
	if (g)
		pthread_mutex_unlock(&g->lock);
	return ret;
}

void sm_job_grow_forget(struct sm_jobctx *c, long long id)
{
	struct sm_job_grow *g = c->grow;

	if (!g || !id)
		return;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->n; i++) {
		struct grow_disk *d = &g->disks[i];

		if (d->src.id == id)
			d->src.id = 0;
		if (d->dst.id == id)
			d->dst.id = 0;
		if (d->armed_on && !d->armed_on->id)
			d->armed_on = NULL;
	}
	pthread_mutex_unlock(&g->lock);
}
