/* copy.c: the phase copy: the base images copied out of band (copy/) with
 * the journal glue (chunk rows, made files) and a pool of copy threads.
 */
#include "job/internal.h"
#include "job/destdev.h"
#include "chain/image.h"
#include "copy/checksum.h"
#include "events.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---- copy ---- */

struct copy_ctx {
	struct sm_jobctx *c;
	const char *target;
	const char *image;  /* source path */
	size_t depth;
	int slot;  /* progress line */
	struct sm_journal_chunk *held;  /* rows of hole chunks not journaled yet */
	size_t nheld, cap;
};

static bool copy_progress(void *opaque, const struct sm_copy_progress *p)
{
	struct copy_ctx *cc = opaque;

	sm_progress_slot(cc->c->pr, cc->slot, p->done, p->total, p->rate);
	sm_event_progress(cc->c->job, cc->target, "copy", cc->image, p->done, p->total, p->rate);
	return !sm_interrupted;
}

static void journal_row(const struct sm_copy_chunk *k, bool verified,
			struct sm_journal_chunk *out)
{
	*out = (struct sm_journal_chunk){
		.index = k->index,
		.offset = k->offset,
		.length = k->length,
		.data_bytes = k->data_bytes,
		.verified = verified,
	};
	sm_checksum_hex(k->checksum, out->checksum);
}

static int journal_chunk(struct sm_jobctx *c, const char *target, size_t depth,
			 const struct sm_copy_chunk *k, bool verified)
{
	struct sm_journal_chunk jc;

	journal_row(k, verified, &jc);
	return sm_journal_chunks_done(c->j, c->job, target, depth, &jc, 1);
}

/* Add k's row to the rows held back for the next journal write. */
static void hold_row(struct copy_ctx *cc, const struct sm_copy_chunk *k, bool verified)
{
	if (cc->nheld == cc->cap) {
		cc->cap = cc->cap ? cc->cap * 2 : 64;
		cc->held = sm_xrealloc(cc->held, cc->cap * sizeof(*cc->held));
	}
	journal_row(k, verified, &cc->held[cc->nheld++]);
}

/* Journal the chunks held back (holes) and k, if any (verified, or durable
 * with its check to come), in one transaction. */
static int flush_chunks(struct copy_ctx *cc, const struct sm_copy_chunk *k, bool verified)
{
	struct sm_jobctx *c = cc->c;

	if (k)
		hold_row(cc, k, verified);
	if (sm_journal_chunks_done(c->j, c->job, cc->target, cc->depth, cc->held, cc->nheld) < 0) {
		if (k)
			cc->nheld--;  /* k is not held back: it is journaled again or not at all */
		return -1;
	}
	cc->nheld = 0;
	return 0;
}

static int copy_chunk_done(void *opaque, const struct sm_copy_chunk *k)
{
	struct copy_ctx *cc = opaque;

	/* A chunk that is all hole costs nothing to walk again: hold its row
	 * back and write it with the next chunk that has data, so a sparse
	 * terabyte does not cost a journal commit (an fsync) per 64 MiB. */
	if (k->data_bytes == 0) {
		hold_row(cc, k, true);
		return 0;
	}
	if (flush_chunks(cc, k, true) < 0)
		return -1;
	if (k->index >= 1)
		sm_crash_point("copy:chunk");
	return 0;
}

/* The direct path: k is durable, its check runs while the next chunk is
 * copied; copy_chunk_done follows. */
static int copy_chunk_durable(void *opaque, const struct sm_copy_chunk *k)
{
	struct copy_ctx *cc = opaque;

	if (flush_chunks(cc, k, false) < 0)
		return -1;
	if (k->index >= 1)
		sm_crash_point("copy:durable");
	return 0;
}

/* The chunks a crash left durable but unverified, for the resumed copy to
 * check (*out NULL when none). */
static int unverified_chunks(struct sm_jobctx *c, const char *target, size_t depth,
			     struct sm_copy_chunk **out, size_t *n)
{
	struct sm_journal_chunk *rows = NULL;
	size_t nrows = 0;

	*out = NULL;
	*n = 0;
	if (sm_journal_chunk_list(c->j, c->job, target, depth, &rows, &nrows) < 0)
		return -1;
	for (size_t i = 0; i < nrows; i++) {
		struct sm_copy_chunk k = {
			.index = rows[i].index,
			.offset = rows[i].offset,
			.length = rows[i].length,
			.data_bytes = rows[i].data_bytes,
		};

		if (rows[i].verified)
			continue;
		if (sm_checksum_parse(rows[i].checksum, &k.checksum) < 0) {
			sm_error("journal '%s' holds a bad checksum for chunk %llu of disk '%s' "
				 "in job %lld; abort the job ('snapmove abort %lld')",
				 sm_journal_path(c->j), k.index, target, c->job, c->job);
			free(rows);
			free(*out);
			*out = NULL;
			return -1;
		}
		*out = sm_xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = k;
	}
	free(rows);
	return 0;
}

static int sync_fd(int fd, const char *path)
{
	if (fdatasync(fd) == 0)
		return 0;
	sm_error("cannot flush '%s': %s", path, strerror(errno));
	return -1;
}

/* The copy's header still names the source backing file: point it at the
 * destination copy, as the empty image created for the mirror does, and
 * record the first chunk's new checksum (the header lives there).  The copy
 * is reached through fd (fdpath), never its name. */
static int rebase_copy(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k,
		       unsigned long long chunk_size, int fd)
{
	const struct sm_plan_image *img = &p->images[k];
	struct sm_copy_chunk ck = { .index = 0, .offset = 0, .length = chunk_size };
	SM_AUTOFREE char *fdpath = sm_image_fd_path(fd);
	struct stat sb;

	if (sm_image_rebase_unsafe(fdpath, img->dst_format, img->dst_backing,
				   img->dst_backing_format) < 0 ||
	    sync_fd(fd, img->dst) < 0)
		return -1;
	if (fstat(fd, &sb) == 0 && (unsigned long long)sb.st_size < chunk_size)
		ck.length = (unsigned long long)sb.st_size;
	if (sm_copy_data_bytes_range(fdpath, 0, ck.length, &ck.data_bytes) < 0 ||
	    sm_copy_checksum_range(fdpath, 0, ck.length, &ck.checksum) < 0)
		return -1;
	return journal_chunk(c, p->target, k, &ck, true);
}

/* A --dest-format or --flatten conversion: qemu-img convert (through the
 * whole backing chain) into the image created for the mirror, then (with
 * verify) qemu-img compare of the contents.  It has no chunk journal: a
 * resumed conversion starts over. */
static void chain_add(struct sm_disk *d, const struct sm_image *img)
{
	d->chain = sm_xrealloc(d->chain, (d->nchain + 1) * sizeof(*d->chain));
	d->chain[d->nchain++] = (struct sm_image){ .path = sm_xstrdup(img->path),
						   .type = sm_xstrdup(img->type ? img->type : "file"),
						   .format = sm_xstrdup(img->format) };
}

int sm_job_source_chain(struct sm_jobctx *c, const struct sm_plan_disk *p,
			struct sm_domain_disks *out)
{
	const struct sm_image top = { .path = p->images[0].src, .format = p->images[0].format };
	struct sm_disk *d = sm_xcalloc(1, sizeof(*d));
	bool kept_seen = !p->kept, planned = true;
	char *why = NULL;

	out->disks = d;
	out->ndisks = 1;
	d->target = sm_xstrdup(p->target);
	d->device = sm_xstrdup("disk");
	if (c->running) {
		SM_AUTOFREE char *xml = sm_virt_domain_xml(c->dom, false);
		struct sm_domain_disks now;
		const struct sm_disk *live;
		size_t at = 0;

		if (!xml || sm_chain_parse(xml, &now) < 0)
			return -1;
		live = sm_domain_disks_find(&now, p->target);
		while (live && at < live->nchain && !sm_str_eq(live->chain[at].path, top.path))
			at++;
		if (!live || at == live->nchain || !live->chain_known) {
			sm_error("disk '%s' no longer runs on a chain holding '%s'; see 'snapmove "
				 "status %lld'", p->target, top.path, c->job);
			sm_domain_disks_release(&now);
			return -1;
		}
		for (size_t k = at; k < live->nchain; k++)
			chain_add(d, &live->chain[k]);
		sm_domain_disks_release(&now);
	} else {
		struct stat sb;

		/* The domain is down: what the image is, the node tells (a
		 * device moves alone, sm_disk_unmovable_reason). */
		chain_add(d, &top);
		if (stat(top.path, &sb) == 0 && S_ISBLK(sb.st_mode)) {
			free(d->chain[0].type);
			d->chain[0].type = sm_xstrdup("block");
		}
		why = sm_image_follow_chain(d);
	}
	if (!why)
		why = sm_image_check_chain(d, false, NULL);
	if (why) {
		sm_error("%s", why);
		free(why);
		return -1;
	}
	/* The images the job planned, then the one it kept (or nothing). */
	for (size_t k = 0; k < d->nchain; k++) {
		const struct sm_image *img = &d->chain[k];

		if (k < p->nimages && (!sm_str_eq(img->path, p->images[k].src) ||
				       !sm_str_eq(img->format, p->images[k].format)))
			planned = false;
		if (k >= p->nimages && sm_str_eq(img->path, p->kept) &&
		    sm_str_eq(img->format, p->kept_format))
			kept_seen = true;
	}
	if (!planned || d->nchain < p->nimages || !kept_seen ||
	    (!p->kept && d->nchain != p->nimages)) {
		sm_error("the chain of disk '%s' from '%s' down is no longer the one job %lld "
			 "planned; see 'snapmove status %lld' and check it with 'qemu-img info "
			 "--backing-chain'", p->target, top.path, c->job, c->job);
		return -1;
	}
	return 0;
}

static int convert_image(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k, int fd)
{
	const struct sm_plan_image *img = &p->images[k];
	SM_AUTOFREE char *fdpath = sm_image_fd_path(fd);
	struct sm_domain_disks src = { 0 };
	const struct sm_disk *d;
	int ret = -1;

	if (sm_journal_image_set_method(c->j, c->job, p->target, k, "convert", 0) < 0 ||
	    sm_job_source_chain(c, p, &src) < 0)
		goto cleanup;
	d = &src.disks[0];
	/* A device by its /dev name (fd just proved it is the journaled one):
	 * qemu-img opens a node as a device, a /proc link as a file. */
	if (sm_image_convert(d->chain, d->nchain, img->dst_rdev ? img->dst : fdpath,
			     img->dst_format, img->dst_rdev && c->dest_zeroed) < 0 ||
	    sync_fd(fd, img->dst) < 0)
		goto cleanup;
	if (c->verify && sm_image_compare(d->chain, d->nchain, img->dst_rdev ? img->dst : fdpath,
					  img->dst_format) < 0)
		goto cleanup;
	ret = 0;

cleanup:
	sm_domain_disks_release(&src);
	return ret;
}

/* The copy onto a device fd (checked) that the copier cannot make (a
 * qcow2, a conversion, a chain): qemu-img convert, the holes written as
 * zeros unless the device reads as zeros (--dest-zeroed). */
static int copy_onto_device(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k, int fd)
{
	if (sm_journal_image_set_state(c->j, c->job, p->target, k, SM_IMAGE_COPYING, 0) < 0)
		return -1;
	return convert_image(c, p, k, fd);
}

/* Image k of p is a raw image copied byte for byte by the copier though a
 * block device is at one end (the source the disk runs on, or a --dest-dev
 * destination): one raw image, nothing below it, nothing to convert.  A
 * qcow2 on a device stays with qemu-img convert: the device has no end of
 * the image to find (the copier would read all of it where qemu-img reads
 * the allocated clusters), and a qcow2 file need not fit the device that
 * 'qemu-img measure' sized.  *device is false when no device is involved
 * (the file paths decide then). */
static int raw_device_copy(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k,
			   bool *device)
{
	const struct sm_plan_image *img = &p->images[k];
	struct sm_domain_disks src = { 0 };
	struct stat sb;
	bool src_device = stat(img->src, &sb) == 0 && S_ISBLK(sb.st_mode);
	bool raw = sm_str_eq(img->format, "raw") && sm_str_eq(img->dst_format, "raw") &&
		   p->nimages == 1 && !p->kept && !img->src_backing;

	*device = false;
	if (!raw || (!src_device && !img->dst_rdev))
		return 0;
	/* The chain the job planned, still (as convert_image checks it). */
	if (sm_job_source_chain(c, p, &src) < 0)
		return -1;
	*device = src.ndisks == 1 && src.disks[0].nchain == 1;
	sm_domain_disks_release(&src);
	return 0;
}

/* The device open as fd is the disk the job copied onto: the same device
 * number (sm_destdev_open) is not enough, as a loop device detached and
 * attached to another file keeps its 7:N; its disk sequence number, journaled
 * when the copy first opened it, is new then.  Journaled here on a first
 * open; 0 (no diskseq in this kernel) is not checked. */
static int same_disk(struct sm_jobctx *c, const struct sm_plan_disk *p, size_t k, int fd)
{
	const struct sm_plan_image *img = &p->images[k];
	unsigned long long seq = sm_destdev_diskseq(fd);

	if (!seq)
		return 0;
	if (!img->dst_diskseq)
		return sm_journal_image_set_diskseq(c->j, c->job, p->target, k, seq);
	if (seq == img->dst_diskseq)
		return 0;
	sm_error("destination device '%s' (%u:%u) is another disk than the one job %lld copied "
		 "onto (disk sequence number %llu, journaled %llu: detached and attached again, or "
		 "replaced); nothing was written to it; abort the job ('snapmove abort %lld') and "
		 "move again", img->dst, major((dev_t)img->dst_rdev), minor((dev_t)img->dst_rdev),
		 c->job, seq, img->dst_diskseq, c->job);
	return -1;
}

/* The destination device's node still names the journaled device: QEMU
 * opens it by that name from the pivot on. */
static int device_still_named(const struct sm_plan_image *img)
{
	struct stat sb;

	if (stat(img->dst, &sb) == 0 && S_ISBLK(sb.st_mode) &&
	    (unsigned long long)sb.st_rdev == img->dst_rdev)
		return 0;
	sm_error("destination device '%s' is no longer the device %u:%u the job copied onto; "
		 "see what happened to it before resuming", img->dst, major((dev_t)img->dst_rdev),
		 minor((dev_t)img->dst_rdev));
	return -1;
}

/* sm_copy_run_fds from img->src onto the destination file fd. */
static int copy_into(const struct sm_copy_req *req, int fd, const struct sm_copy_ops *ops,
		     struct copy_ctx *cc, struct sm_copy_result *res)
{
	int in = open(req->src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int rc;

	if (in < 0) {
		sm_error("cannot read '%s': %s", req->src, strerror(errno));
		return -1;
	}
	rc = sm_copy_run_fds(req, in, fd, ops, cc, res);
	close(in);
	return rc;
}

static int copy_image(struct sm_jobctx *c, size_t i, size_t k)
{
	const struct sm_plan_disk *p = &c->plans[i];
	const struct sm_plan_image *img = &p->images[k];
	SM_AUTOFREE char *label = sm_xasprintf("copy %s %s", p->target,
					       sm_path_basename(img->src));
	struct copy_ctx cc = { .c = c, .target = p->target, .image = img->src, .depth = k,
			       .slot = (int)i };
	SM_AUTOFREE char *retry = sm_xasprintf("resume the job ('snapmove resume %lld')", c->job);
	struct sm_copy_ops ops = { .progress = copy_progress, .chunk_done = copy_chunk_done,
				   .chunk_durable = copy_chunk_durable };
	SM_AUTOFREE struct sm_copy_chunk *unverified = NULL;
	struct sm_copy_req req = {
		.src = img->src,
		.dst = img->dst,
		.chunk_size = SM_COPY_CHUNK,
		.bandwidth = c->bandwidth_mib << 20,
		.verify = c->verify,
		.method = c->copy_method,
		.retry = retry,
	};
	struct sm_copy_result res = { 0 };
	enum sm_image_state state;
	unsigned long long chunks = 0;
	char b[32], r[32];
	double t0 = sm_monotonic();
	int rc, fd;

	if (sm_journal_image_progress(c->j, c->job, p->target, k, &state, &chunks) < 0)
		return -1;
	if (state == SM_IMAGE_COPIED)
		return 0;
	if (state == SM_IMAGE_COPYING) {
		req.resume_chunks = chunks;
		if (chunks && unverified_chunks(c, p->target, k, &unverified,
						&req.nunverified) < 0)
			return -1;
		req.unverified = unverified;
	}
	if (raw_device_copy(c, p, k, &req.devices) < 0)
		return -1;
	/* A device that may hold old data gets zeros where the source has
	 * none; one the caller says reads as zeros (journaled) gets none. */
	req.zero_holes = img->dst_rdev && !c->dest_zeroed;
	/* A device is opened for this copy only (never held: QEMU writes it
	 * from the pivot on); its journaled number checked on the fd that
	 * every write goes through. */
	fd = img->dst_rdev ? sm_destdev_open(img->dst, img->dst_rdev)
			   : sm_job_dest_fd(c, img->dst, img->src);
	if (fd < 0)
		return -1;
	if (img->dst_rdev && same_disk(c, p, k, fd) < 0) {
		close(fd);
		return -1;
	}
	if (img->dst_rdev && !req.devices) {
		rc = copy_onto_device(c, p, k, fd);
		close(fd);
		if (rc < 0)
			return -1;
		sm_progress_say(c->pr, "  converted %s onto %s (%s) in %.1f s", img->src, img->dst,
				img->dst_format, sm_monotonic() - t0);
		return sm_journal_image_set_state(c->j, c->job, p->target, k, SM_IMAGE_COPIED,
						  img->allocated);
	}
	if (sm_journal_image_set_state(c->j, c->job, p->target, k, SM_IMAGE_COPYING, 0) < 0) {
		if (img->dst_rdev)
			close(fd);
		return -1;
	}
	sm_progress_start(c->pr, cc.slot, label);
	if (!req.devices && (p->flat || !sm_str_eq(img->format, img->dst_format))) {
		if (convert_image(c, p, k, fd) < 0)
			return -1;
		res.data_bytes = res.copied_bytes = img->allocated;
		res.method = SM_COPY_METHOD_LAST;
	} else {
		rc = copy_into(&req, fd, &ops, &cc, &res);
		if (rc == 0)
			rc = flush_chunks(&cc, NULL, true);
		free(cc.held);
		if (img->dst_rdev)
			close(fd);  /* a device is the journal's, not held */
		if (rc < 0 ||
		    sm_journal_image_set_method(c->j, c->job, p->target, k,
						sm_copy_method_name(res.method), req.chunk_size) < 0)
			return -1;
		if (img->dst_backing && rebase_copy(c, p, k, req.chunk_size, fd) < 0)
			return -1;
	}
	if (img->dst_rdev ? device_still_named(img) < 0 : sm_job_still_named(c, img->dst, fd) < 0)
		return -1;
	sm_progress_stop(c->pr, cc.slot);
	if (sm_journal_image_set_state(c->j, c->job, p->target, k, SM_IMAGE_COPIED,
				       res.data_bytes) < 0)
		return -1;
	if (res.method == SM_COPY_METHOD_LAST)
		sm_progress_say(c->pr, "  converted %s to %s: %s in %.1f s", img->dst,
				img->dst_format, sm_format_bytes(res.data_bytes, b, sizeof(b)),
				sm_monotonic() - t0);
	else if (res.chunks_skipped)
		sm_progress_say(c->pr, "  copied %s: resumed after chunk %llu, %s of %s copied "
				"now in %.1f s (%s%s)", img->dst, res.chunks_skipped,
				sm_format_bytes(res.copied_bytes, b, sizeof(b)),
				sm_format_bytes(res.data_bytes, r, sizeof(r)), sm_monotonic() - t0,
				sm_copy_method_name(res.method), c->verify ? ", verified" : "");
	else
		sm_progress_say(c->pr, "  copied %s: %s in %.1f s (%s%s)", img->dst,
				sm_format_bytes(res.data_bytes, b, sizeof(b)), sm_monotonic() - t0,
				sm_copy_method_name(res.method), c->verify ? ", verified" : "");
	return 0;
}

int sm_job_copy_disk(struct sm_jobctx *c, size_t i)
{
	for (size_t k = 0; k < c->plans[i].nimages; k++)
		if (copy_image(c, i, k) < 0)
			return -1;
	return 0;
}

/* Copies of several disks run in up to c->parallel threads, each taking the
 * next disk; a disk whose copy fails stops alone. */
struct copy_pool {
	struct sm_jobctx *c;
	pthread_mutex_t lock;
	size_t next;
};

static void *copy_worker(void *opaque)
{
	struct copy_pool *pool = opaque;
	struct sm_jobctx *c = pool->c;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&pool->lock);
		while (pool->next < c->nplans &&
		       !sm_job_todo(c, pool->next, SM_DISK_DEST_CREATED, SM_DISK_COPIED))
			pool->next++;
		i = pool->next++;
		pthread_mutex_unlock(&pool->lock);
		if (i >= c->nplans)
			return NULL;
		if (sm_job_copy_disk(c, i) < 0 || sm_job_disk_state(c, i, SM_DISK_COPIED) < 0)
			sm_job_disk_fail(c, i);
	}
}

int sm_job_phase_copy(struct sm_jobctx *c)
{
	struct copy_pool pool = { .c = c };
	unsigned n = c->parallel ? c->parallel : 1;
	pthread_t *threads;
	unsigned started = 0;

	if (n > c->nplans)
		n = (unsigned)c->nplans;
	if (c->nplans > 1)
		sm_progress_say(c->pr, "  copying %zu disks, %u at once", c->nplans, n);
	if (n <= 1) {
		copy_worker(&pool);
		return 0;
	}
	pthread_mutex_init(&pool.lock, NULL);
	threads = sm_xcalloc(n, sizeof(*threads));
	for (unsigned t = 0; t < n; t++)
		if (pthread_create(&threads[t], NULL, copy_worker, &pool) == 0)
			started++;
	if (!started)
		copy_worker(&pool);
	for (unsigned t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
	free(threads);
	pthread_mutex_destroy(&pool.lock);
	return 0;
}
