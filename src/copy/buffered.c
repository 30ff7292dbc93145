/* buffered.c: the copier's loops through the page cache: read/write with
 * the checksum computed on the way, copy_file_range in the kernel, and the
 * buffered checksum of a range (the reflink path's, and the check of the
 * paths that are not direct).  The read and write primitives under them
 * are io.c's; which loop runs is chunk.c's and run.c's choice.
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A read that returned n <= 0 where data was expected. */
static void shrank_or_error(const char *path, ssize_t n)
{
	if (n < 0)
		sm_error("cannot read '%s': %s", path, strerror(errno));
	else
		sm_error("'%s' shrank while it was copied; an image must not change during a "
			 "move", path);
}

static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
	return sm_copy_pread_upto(fd, buf, len, off, false);
}

/* Checksum the current ranges of fd through the page cache; counts source
 * reads. */
int sm_copy_checksum_buffered(struct copier *c, int fd, uint64_t *out)
{
	struct sm_checksum sum;
	int ret = -1;

	sm_checksum_init(&sum);
	for (size_t i = 0; i < c->data.n; i++) {
		for (off_t off = c->data.v[i].start; off < c->data.v[i].end;) {
			size_t want = (size_t)(c->data.v[i].end - off) < c->unit
					      ? (size_t)(c->data.v[i].end - off) : c->unit;
			ssize_t n = pread_full(fd, c->buf, want, off);

			if (n <= 0) {
				shrank_or_error(fd == c->in ? c->req->src : c->req->dst, n);
				goto cleanup;
			}
			sm_checksum_update(&sum, (unsigned long long)off, c->buf, (size_t)n);
			if (fd == c->in)
				c->res->read_bytes += (unsigned long long)n;
			off += n;
		}
	}
	*out = sm_checksum_final(&sum);
	ret = 0;

cleanup:
	sm_checksum_release(&sum);
	return ret;
}

/* Copy [off, end) with read/write, checksumming what is read. */
int sm_copy_readwrite(struct copier *c, off_t off, off_t end, struct sm_checksum *sum)
{
	while (off < end) {
		size_t want = (size_t)(end - off) < c->unit ? (size_t)(end - off) : c->unit;
		ssize_t n = pread_full(c->in, c->buf, want, off);

		if (n <= 0) {
			shrank_or_error(c->req->src, n);
			return -1;
		}
		sm_checksum_update(sum, (unsigned long long)off, c->buf, (size_t)n);
		if (!sm_copy_all_zero(c, c->buf, (size_t)n) &&
		    sm_copy_pwrite_all(c->out, c->buf, (size_t)n, off) < 0) {
			sm_copy_write_error(c);
			return -1;
		}
		off += n;
		if (!sm_copy_copied(c, (unsigned long long)n))
			return -1;
	}
	return 0;
}

/* Copy [off, end) in the kernel.  Returns 1 when copy_file_range cannot be
 * used on these files (nothing copied), so the caller falls back. */
int sm_copy_range(struct copier *c, off_t off, off_t end)
{
	while (off < end) {
		size_t want = (size_t)(end - off) < c->unit ? (size_t)(end - off) : c->unit;
		loff_t in_off = off, out_off = off;
		ssize_t n = copy_file_range(c->in, &in_off, c->out, &out_off, want, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (c->res->copied_bytes == 0 &&
			    (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			     errno == EOPNOTSUPP || errno == EBADF))
				return 1;
			sm_copy_write_error(c);
			return -1;
		}
		if (n == 0) {
			shrank_or_error(c->req->src, 0);
			return -1;
		}
		off += n;
		if (!sm_copy_copied(c, (unsigned long long)n))
			return -1;
	}
	return 0;
}
