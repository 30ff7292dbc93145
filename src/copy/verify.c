/* verify.c: checking durable chunks of the destination against the
 * source's checksum: now (buffered paths, resume), or in a thread while the
 * next chunk is copied (direct path); a chunk that does not match is copied
 * once more by the plain path, and a second mismatch stops the copy.  It does
 * not choose the copy path or walk the chunks (run.c does).
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- verification ---- */

/* Re-read a durable chunk of the destination into scratch and compare with
 * its checksum: 1 match, 0 not, -1 error.  The destination's own extents
 * count: garbage where the source has a hole must show.  Holes and zero
 * blocks checksum alike, so a good copy matches whatever the file system made
 * of its extents.  On the direct path the read goes to the storage
 * (O_DIRECT); on the others through the page cache, so it checks what the
 * copy path (our loop, the kernel's copy_file_range or clone) put in the
 * file, at the cost of memory bandwidth only ('snapmove verify' re-reads
 * from the storage). */
static int check_chunk(struct copier *c, const struct sm_copy_chunk *chunk, bool direct,
		       struct range_list *scratch, char *const *bufs, struct sm_uring *u)
{
	uint64_t got;
	int rc;

	rc = sm_copy_collect_ranges(scratch, c->out, (off_t)chunk->offset,
				    (off_t)(chunk->offset + chunk->length));
	if (rc < 0) {
		sm_error("cannot walk the extents of '%s': %s", c->req->dst, strerror(errno));
		return -1;
	}
	if (direct && u) {
		rc = sm_copy_uring_checksum(u, c->out_direct, c->req->dst, scratch, NULL, &got);
	} else if (direct) {
		rc = sm_copy_checksum_direct(c->out_direct, c->req->dst, scratch, bufs, c->dunit,
					     NULL, &got);
	} else {
		struct range_list keep = c->data;

		c->data = *scratch;
		rc = sm_copy_checksum_buffered(c, c->out, &got);
		*scratch = c->data;
		c->data = keep;
	}
	if (rc < 0)
		return -1;
	return got == chunk->checksum;
}

/* The direct path checks chunk N in a thread while chunk N+1 is copied: the
 * destination's re-read overlaps the next chunk's reads and writes.  The
 * chunk is journaled as durable (ops->chunk_durable) when it starts, and as
 * done when it matched; a crash in between leaves it for the resume to
 * check, not to copy again. */
struct verifier {
	struct copier *c;
	struct sm_copy_chunk chunk;
	struct range_list ranges;
	char *bufs[SM_DIRECT_DEPTH];
	struct sm_uring *uring;  /* direct-uring: the check's own ring */
	pthread_t thread;
	bool running;
	int result;         /* of check_chunk */
	char error[1024];   /* its error, from the thread's sm_error */
};

static void *verifier_main(void *arg)
{
	struct verifier *v = arg;

	v->result = check_chunk(v->c, &v->chunk, true, &v->ranges, v->bufs, v->uring);
	if (v->result < 0)
		snprintf(v->error, sizeof(v->error), "%s", sm_error_message());
	return NULL;
}

struct verifier *sm_copy_verifier_new(struct copier *c)
{
	struct verifier *v = sm_xcalloc(1, sizeof(*v));

	v->c = c;
	/* Through io_uring as the copy is, many re-reads in flight; its own
	 * ring, as it runs in its own thread. */
	if (c->method == SM_COPY_DIRECT_URING && sm_copy_uring_new(&v->uring, c->dunit) == 0)
		return v;
	for (int i = 0; i < SM_DIRECT_DEPTH; i++)
		if (posix_memalign((void **)&v->bufs[i], 4096, c->dunit) != 0)
			abort();
	return v;
}

/* Start the check of chunk in a thread; -1 with the error set when no
 * thread can be started (the chunk stays durable and unverified). */
int sm_copy_verifier_start(struct verifier *v, const struct sm_copy_chunk *chunk)
{
	int err;

	v->chunk = *chunk;
	err = pthread_create(&v->thread, NULL, verifier_main, v);
	if (err != 0) {
		sm_error("cannot start a thread to check '%s': %s", v->c->req->dst,
			 strerror(err));
		return -1;
	}
	v->running = true;
	return 0;
}

/* Wait for the check under way: its check_chunk result (the error set on
 * -1); 1 when none was running. */
static int verifier_wait(struct verifier *v)
{
	if (!v || !v->running)
		return 1;
	pthread_join(v->thread, NULL);
	v->running = false;
	if (v->result < 0)
		sm_error("%s", v->error);
	return v->result;
}

void sm_copy_verifier_free(struct verifier *v)
{
	if (!v)
		return;
	/* A check still running when the copy failed: its result does not
	 * matter, and its error must not replace the copy's. */
	if (v->running)
		pthread_join(v->thread, NULL);
	sm_copy_uring_free(v->uring);
	for (int i = 0; i < SM_DIRECT_DEPTH; i++)
		free(v->bufs[i]);
	free(v->ranges.v);
	free(v);
}

/* Check a durable chunk now, in this thread. */
int sm_copy_verify_now(struct copier *c, const struct sm_copy_chunk *chunk)
{
	struct range_list scratch = { 0 };
	bool direct = sm_copy_is_direct(c->method);
	int rc = check_chunk(c, chunk, direct, &scratch, c->dbufs, c->uring);

	free(scratch.v);
	return rc;
}

/* The chunk [chunk->offset, +length) once more, by the plain path, after a
 * mismatch; then checked at once.  The second mismatch stops the copy.  The
 * rest of the copy stays on the plain (buffered) path: a copy that came out
 * wrong once does not trust its faster path again. */
int sm_copy_recopy_chunk(struct copier *c, struct sm_copy_chunk *chunk)
{
	off_t off = (off_t)chunk->offset, end = off + (off_t)chunk->length;
	uint64_t sum;
	int ok;

	/* A device the caller says reads as zeros gets none written: a
	 * mismatch there is the claim being false, and zeroing the chunk to
	 * hide it would write the zeros the caller said were not needed. */
	if (c->out_device && !c->req->zero_holes) {
		sm_error("verification failed: '%s' and '%s' differ at chunk %llu (offset %llu); "
			 "the device was said to read as zeros (--dest-zeroed) and does not: "
			 "zero it first, or move without --dest-zeroed", c->req->src, c->req->dst,
			 chunk->index, chunk->offset);
		return -1;
	}
	c->res->recopied++;
	c->method = SM_COPY_READWRITE;
	if (sm_copy_punch(c, off, end) < 0)
		return -1;
	if (sm_copy_collect_ranges(&c->data, c->in, off, end) < 0) {
		sm_error("cannot walk the extents of '%s': %s", c->req->src, strerror(errno));
		return -1;
	}
	/* Its bytes count as done already: progress does not count them twice. */
	c->in_chunk = 0;
	c->chunk_data = 0;
	if (sm_copy_chunk_data(c, &sum) < 0)
		return -1;
	/* The source's checksum stands; a source that changed is an error. */
	if (sum != chunk->checksum) {
		sm_error("'%s' changed while it was copied (chunk %llu, offset %llu); it must "
			 "not be written during a move", c->req->src, chunk->index, chunk->offset);
		return -1;
	}
	if (c->ops && c->ops->after_write)
		c->ops->after_write(c->ctx, c->out, chunk, 1);
	if (sm_copy_sync_out(c) < 0)
		return -1;
	ok = sm_copy_verify_now(c, chunk);
	if (ok < 0)
		return -1;
	if (!ok) {
		sm_error("verification of '%s' failed at chunk %llu (offset %llu): the copy "
			 "differs from '%s' after a second try; check the destination "
			 "storage", c->req->dst, chunk->index, chunk->offset, c->req->src);
		return -1;
	}
	return 0;
}

/* The check of the chunk before this one is over: journal it done, or copy
 * it once more after a mismatch. */
int sm_copy_finish_pending(struct copier *c)
{
	struct sm_copy_chunk chunk;
	int ok;

	if (!c->verifier || !c->verifier->running)
		return 0;
	chunk = c->verifier->chunk;
	ok = verifier_wait(c->verifier);
	if (ok < 0)
		return -1;
	if (!ok && sm_copy_recopy_chunk(c, &chunk) < 0)
		return -1;
	return sm_copy_chunk_done(c, &chunk);
}

/* Check the chunks a crash left durable but unchecked (resume): 0 when they
 * are done (re-copied where they did not match). */
int sm_copy_check_unverified(struct copier *c)
{
	for (size_t i = 0; i < c->req->nunverified; i++) {
		struct sm_copy_chunk chunk = c->req->unverified[i];
		int ok = sm_copy_verify_now(c, &chunk);

		if (ok < 0 || (!ok && sm_copy_recopy_chunk(c, &chunk) < 0) ||
		    sm_copy_chunk_done(c, &chunk) < 0)
			return -1;
		c->res->reverified++;
	}
	return 0;
}
