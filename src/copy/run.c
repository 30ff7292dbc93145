/* run.c: the chunked copier.  For each chunk: walk the source's data
 * extents, copy them by the chosen path, fdatasync, checksum, verify against a
 * fresh read of the destination, and report the chunk; then the next.  The
 * journal is the caller's: this file only moves and checks bytes.
 *
 * This file holds the chunk loop, the choice of path (reflink, direct,
 * copy_file_range, read/write) and the entry points; one chunk's copy is in
 * chunk.c, the paths themselves in direct.c and buffered.c, the checks in
 * verify.c, the primitives under them in io.c, the extent walk in extents.c
 * (copier.h joins them).
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *sm_copy_method_name(enum sm_copy_method m)
{
	switch (m) {
	case SM_COPY_AUTO: return "auto";
	case SM_COPY_REFLINK: return "reflink";
	case SM_COPY_FILE_RANGE: return "copy_file_range";
	case SM_COPY_READWRITE: return "readwrite";
	case SM_COPY_DIRECT: return "direct";
	case SM_COPY_DIRECT_URING: return "direct-uring";
	case SM_COPY_METHOD_LAST: break;
	}
	return "unknown";
}

int sm_copy_method_from_name(const char *name)
{
	for (int m = 0; m < SM_COPY_METHOD_LAST; m++)
		if (sm_str_eq(sm_copy_method_name((enum sm_copy_method)m), name))
			return m;
	return -1;
}

static int do_chunk(struct copier *c, unsigned long long index, bool resumed)
{
	struct sm_copy_chunk chunk = { .index = index };
	off_t off = (off_t)(index * c->chunk_size);
	off_t end = off + (off_t)c->chunk_size > c->size ? c->size : off + (off_t)c->chunk_size;
	int ok;

	chunk.offset = (unsigned long long)off;
	chunk.length = (unsigned long long)(end - off);
	if (sm_copy_collect_ranges(&c->data, c->in, off, end) < 0) {
		sm_error("cannot walk the extents of '%s': %s", c->req->src, strerror(errno));
		return -1;
	}
	chunk.data_bytes = sm_copy_ranges_bytes(&c->data);
	/* A chunk a crash interrupted may hold part of its data: start it over.
	 * A device's chunk is written whole again (data, and zeros where
	 * zero_holes) or, read as zeros, holds only the source's own bytes. */
	if (resumed && !c->out_device && sm_copy_punch(c, off, end) < 0)
		return -1;
	c->in_chunk = 0;
	c->chunk_data = chunk.data_bytes;
	if (c->method == SM_COPY_REFLINK) {
		if (sm_copy_checksum_buffered(c, c->in, &chunk.checksum) < 0)
			return -1;
	} else if (sm_copy_chunk_data(c, &chunk.checksum) < 0) {
		return -1;
	}
	if (sm_copy_zero_holes(c, off, end) < 0)
		return -1;
	if (c->ops && c->ops->after_write)
		c->ops->after_write(c->ctx, c->out, &chunk, 0);
	c->done += chunk.data_bytes;
	c->in_chunk = 0;
	/* A hole of a fresh copy: nothing was written, nothing to sync or read
	 * back (a 1 TiB sparse image is mostly such chunks). */
	if (chunk.data_bytes == 0 && !resumed && !(c->ops && c->ops->after_write) &&
	    !(c->out_device && c->req->zero_holes)) {
		if (sm_copy_finish_pending(c) < 0 || sm_copy_chunk_done(c, &chunk) < 0)
			return -1;
		return sm_copy_report(c, false) ? 0 : -1;
	}
	if (sm_copy_sync_out(c) < 0 || sm_copy_finish_pending(c) < 0)
		return -1;
	if (!c->req->verify) {
		ok = 1;
	} else if (sm_copy_is_direct(c->method)) {
		/* Durable: journal it so, and check it while the next chunk
		 * is copied. */
		if (c->ops && c->ops->chunk_durable && c->ops->chunk_durable(c->ctx, &chunk) < 0)
			return -1;
		if (sm_copy_verifier_start(c->verifier, &chunk) < 0)
			return -1;
		return sm_copy_report(c, false) ? 0 : -1;
	} else {
		ok = sm_copy_verify_now(c, &chunk);
	}
	if (ok < 0 || (!ok && sm_copy_recopy_chunk(c, &chunk) < 0) ||
	    sm_copy_chunk_done(c, &chunk) < 0)
		return -1;
	return sm_copy_report(c, false) ? 0 : -1;
}

static int try_reflink(struct copier *c)
{
	if (ioctl(c->out, FICLONE, c->in) == 0)
		return 0;
	if (c->req->method == SM_COPY_REFLINK) {
		sm_error("cannot clone '%s' to '%s' (%s); reflinks need both on one file system "
			 "that supports them (XFS, Btrfs); leave the copy method on auto",
			 c->req->src, c->req->dst, strerror(errno));
		return -1;
	}
	return 1;
}

int sm_copy_run(const struct sm_copy_req *req, const struct sm_copy_ops *ops, void *ctx,
		struct sm_copy_result *res)
{
	struct sm_copy_req files = *req;
	int in, out, ret;

	files.devices = false;  /* by name: image files only */
	req = &files;
	memset(res, 0, sizeof(*res));
	in = open(req->src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0) {
		sm_error("cannot read '%s': %s", req->src, strerror(errno));
		return -1;
	}
	out = open(req->dst, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		sm_error("cannot open '%s' for writing: %s", req->dst, strerror(errno));
		close(in);
		return -1;
	}
	ret = sm_copy_run_fds(req, in, out, ops, ctx, res);
	close(in);
	close(out);
	return ret;
}

/* The direct path's request size: unit, or less under a rate limit (a
 * request is never more than a time slice's quota). */
static size_t direct_unit(const struct copier *c, size_t unit)
{
	return c->rl.bytes_per_slice && c->rl.bytes_per_slice < unit ? c->unit : unit;
}

/* The direct path through io_uring: 0, or 1 when the kernel refuses it
 * (ENOSYS, EPERM) and the reader thread copies instead, or -1 when
 * direct-uring was asked for by name. */
static int open_uring(struct copier *c)
{
	c->dunit = direct_unit(c, SM_URING_UNIT);
	if (sm_copy_uring_new(&c->uring, c->dunit) == 0)
		return 0;
	c->dunit = direct_unit(c, SM_DIRECT_UNIT);
	if (c->req->method != SM_COPY_DIRECT_URING)
		return 1;
	sm_error("cannot use io_uring to copy '%s': %s; the kernel does not allow it here; "
		 "use '--copy-method direct' or leave the copy method on auto",
		 c->req->src, strerror(errno));
	return -1;
}

int sm_copy_run_fds(const struct sm_copy_req *req, int src_fd, int dst_fd,
		    const struct sm_copy_ops *ops, void *ctx, struct sm_copy_result *res)
{
	struct copier c = { .req = req, .ops = ops, .ctx = ctx, .res = res, .in = src_fd,
			    .out = dst_fd, .in_direct = -1, .out_direct = -1 };
	unsigned long long nchunks, first;
	off_t dsize;
	bool in_device;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	c.t0 = sm_monotonic();
	c.chunk_size = req->chunk_size ? req->chunk_size : SM_COPY_CHUNK;
	c.chunk_size -= c.chunk_size % SM_CHECKSUM_BLOCK;
	if (!c.chunk_size)
		c.chunk_size = SM_CHECKSUM_BLOCK;
	if (sm_copy_size(c.in, req->src, req->devices, &c.size, &in_device) < 0 ||
	    sm_copy_size(c.out, req->dst, req->devices, &dsize, &c.out_device) < 0)
		goto cleanup;
	if (c.out_device && dsize < c.size) {
		sm_error("device '%s' holds %lld bytes and '%s' is %lld; the copy needs a device "
			 "at least that big", req->dst, (long long)dsize, req->src, (long long)c.size);
		goto cleanup;
	}
	/* A device source has no holes to find: its zero blocks are not
	 * written where the destination reads as zeros (a file made all hole
	 * below, a device the caller says is zeroed). */
	c.skip_zeros = in_device && !(c.out_device && req->zero_holes);
	res->size = (unsigned long long)c.size;
	if (sm_copy_collect_ranges(&c.data, c.in, 0, c.size) < 0) {
		sm_error("cannot walk the extents of '%s': %s", req->src, strerror(errno));
		goto cleanup;
	}
	res->data_bytes = sm_copy_ranges_bytes(&c.data);
	nchunks = (res->size + c.chunk_size - 1) / c.chunk_size;
	first = req->resume_chunks < nchunks ? req->resume_chunks : nchunks;

	sm_ratelimit_init(&c.rl, req->bandwidth);
	c.unit = SM_COPY_BUF;
	if (c.rl.bytes_per_slice && c.rl.bytes_per_slice < c.unit)
		c.unit = c.rl.bytes_per_slice < 65536 ? 65536 : (size_t)c.rl.bytes_per_slice;
	/* Whole checksum blocks per read, so the checksum never splits one. */
	c.unit -= c.unit % SM_CHECKSUM_BLOCK;
	if (posix_memalign((void **)&c.buf, 4096, SM_COPY_BUF) != 0)
		abort();
	c.dunit = direct_unit(&c, SM_DIRECT_UNIT);

	/* Direct I/O (or io_uring) asked for by name: refused before the
	 * destination is touched. */
	if (sm_copy_is_direct(req->method) && sm_copy_open_direct(&c) < 0)
		goto cleanup;
	if (req->method == SM_COPY_DIRECT_URING && open_uring(&c) < 0)
		goto cleanup;
	if (c.out_device) {
		/* A device is never truncated: every chunk is written over. */
	} else if (first == 0) {
		/* Fresh: drop what the destination held, then size it, all holes. */
		if (ftruncate(c.out, 0) < 0 || ftruncate(c.out, c.size) < 0) {
			sm_copy_write_error(&c);
			goto cleanup;
		}
	} else if (ftruncate(c.out, c.size) < 0) {
		sm_copy_write_error(&c);
		goto cleanup;
	}

	c.method = req->method == SM_COPY_AUTO ? SM_COPY_REFLINK : req->method;
	if (c.method == SM_COPY_REFLINK) {
		int rc = first == 0 ? try_reflink(&c) : 1;

		if (rc < 0)
			goto cleanup;
		/* Without a clone, the direct read/write loop: it checksums
		 * what it reads, where copy_file_range needs a second read of
		 * the source for the checksum, and it leaves the page cache
		 * alone (bench/copy.sh puts them all side by side). */
		if (rc > 0)
			c.method = SM_COPY_DIRECT;
	}
	if (c.method == SM_COPY_DIRECT && c.in_direct < 0) {
		int rc = sm_copy_open_direct(&c);

		if (rc < 0)
			goto cleanup;
		if (rc > 0)
			c.method = SM_COPY_READWRITE;
	}
	/* io_uring where the kernel allows it, else the reader thread. */
	if (c.method == SM_COPY_DIRECT && (c.uring || open_uring(&c) == 0))
		c.method = SM_COPY_DIRECT_URING;
	if (c.method == SM_COPY_DIRECT)
		for (int i = 0; i < SM_DIRECT_DEPTH; i++)
			if (posix_memalign((void **)&c.dbufs[i], 4096, c.dunit) != 0)
				abort();
	if (sm_copy_is_direct(c.method) && req->verify)
		c.verifier = sm_copy_verifier_new(&c);
	posix_fadvise(c.in, 0, 0, POSIX_FADV_SEQUENTIAL);

	/* Chunks before first are durable: count them, do not copy them. */
	for (unsigned long long i = 0; i < first; i++) {
		off_t off = (off_t)(i * c.chunk_size);
		off_t end = off + (off_t)c.chunk_size > c.size ? c.size : off + (off_t)c.chunk_size;

		if (sm_copy_collect_ranges(&c.data, c.in, off, end) < 0) {
			sm_error("cannot walk the extents of '%s': %s", req->src, strerror(errno));
			goto cleanup;
		}
		c.done += sm_copy_ranges_bytes(&c.data);
	}
	res->chunks_skipped = first;
	if (req->verify && sm_copy_check_unverified(&c) < 0)
		goto cleanup;
	for (unsigned long long i = first; i < nchunks; i++)
		if (do_chunk(&c, i, i == first && first > 0) < 0)
			goto cleanup;
	/* The last chunk's check; even an empty file gets its size made
	 * durable. */
	if (sm_copy_finish_pending(&c) < 0 || sm_copy_sync_out(&c) < 0)
		goto cleanup;
	res->method = c.method;
	res->seconds = sm_monotonic() - c.t0;
	if (!sm_copy_report(&c, true))
		goto cleanup;
	ret = 0;

cleanup:
	res->method = c.method;
	sm_copy_verifier_free(c.verifier);
	sm_copy_uring_free(c.uring);
	free(c.buf);
	for (int i = 0; i < SM_DIRECT_DEPTH; i++)
		free(c.dbufs[i]);
	free(c.data.v);
	if (c.in_direct >= 0)
		close(c.in_direct);
	if (c.out_direct >= 0)
		close(c.out_direct);
	return ret;
}

int sm_copy_checksum_range(const char *path, unsigned long long offset,
			   unsigned long long length, uint64_t *out)
{
	struct sm_copy_req req = { .src = path, .dst = path };
	struct sm_copy_result res = { 0 };
	struct copier c = { .req = &req, .res = &res, .unit = SM_COPY_BUF, .dunit = SM_DIRECT_UNIT,
			    .out = -1, .in_direct = -1, .out_direct = -1 };
	off_t end, size;
	bool device;
	int ret = -1;

	c.in = open(path, O_RDONLY | O_CLOEXEC);
	if (c.in < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	if (sm_copy_size(c.in, path, true, &size, &device) < 0)
		goto cleanup;
	/* From the storage where it can (O_DIRECT, from a block boundary),
	 * else the page cache. */
	if (offset % SM_CHECKSUM_BLOCK == 0)
		c.in_direct = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	end = (off_t)(offset + length) > size ? size : (off_t)(offset + length);
	c.buf = sm_xmalloc(c.unit);
	if (c.in_direct >= 0)
		for (int i = 0; i < SM_DIRECT_DEPTH; i++)
			if (posix_memalign((void **)&c.dbufs[i], 4096, c.dunit) != 0)
				abort();
	if (sm_copy_collect_ranges(&c.data, c.in, (off_t)offset, end) < 0) {
		sm_error("cannot walk the extents of '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	if (c.in_direct >= 0)
		ret = sm_copy_checksum_direct(c.in_direct, path, &c.data, c.dbufs, c.dunit, NULL,
					      out);
	else
		ret = sm_copy_checksum_buffered(&c, c.in, out);

cleanup:
	free(c.buf);
	for (int i = 0; i < SM_DIRECT_DEPTH; i++)
		free(c.dbufs[i]);
	free(c.data.v);
	if (c.in >= 0)
		close(c.in);
	if (c.in_direct >= 0)
		close(c.in_direct);
	return ret;
}
