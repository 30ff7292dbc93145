/* io.c: the copier's primitives, below every copy path: the size of a
 * file or device, the read and write that never give up halfway (EINTR,
 * short transfers), the write error (a full destination says what to do),
 * counting copied bytes (rate limit, progress, cancel), and the
 * destination's hole punch (zeros on a device), zero blocks not written,
 * and fdatasync.  It copies nothing by itself: the paths are buffered.c and
 * direct.c.
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The bytes fd holds: a regular file's size, or (devices) a block
 * device's (BLKGETSIZE64); *device says which.  A directory, a FIFO, or a
 * device without devices, is refused. */
int sm_copy_size(int fd, const char *path, bool devices, off_t *size, bool *device)
{
	struct stat sb;
	unsigned long long bytes = 0;

	*device = false;
	if (fstat(fd, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	if (S_ISREG(sb.st_mode)) {
		*size = sb.st_size;
		return 0;
	}
	if (!devices || !S_ISBLK(sb.st_mode)) {
		sm_error("'%s' is not a regular file; only image files can be copied", path);
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
		sm_error("cannot read the size of device '%s': %s", path, strerror(errno));
		return -1;
	}
	*size = (off_t)bytes;
	*device = true;
	return 0;
}

/* buf[0, len) is all zeros and need not be written: the source is a device
 * (its zeros are data to SEEK_DATA) and the destination reads as zeros. */
bool sm_copy_all_zero(const struct copier *c, const char *buf, size_t len)
{
	return c->skip_zeros && len > 0 && buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0;
}

void sm_copy_write_error(const struct copier *c)
{
	if (errno == ENOSPC || errno == EDQUOT)
		sm_error("the destination is full while copying '%s' to '%s'; free space "
			 "there, then %s", c->req->src, c->req->dst,
			 c->req->retry ? c->req->retry : "run the command again");
	else
		sm_error("cannot write '%s': %s", c->req->dst, strerror(errno));
}

int sm_copy_pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Read len bytes at off, or up to the end of the file.  direct: fd is
 * O_DIRECT, and a read that ends off a block boundary is the end of the file
 * (another would be unaligned). */
ssize_t sm_copy_pread_upto(int fd, char *buf, size_t len, off_t off, bool direct)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (direct && got % (size_t)SM_BLOCK)
			break;
	}
	return (ssize_t)got;
}

bool sm_copy_report(struct copier *c, bool force)
{
	double now = sm_monotonic();
	struct sm_copy_progress p;
	double elapsed = now - c->t0;

	if (!c->ops || !c->ops->progress || (!force && now - c->last_progress < 0.1))
		return true;
	c->last_progress = now;
	/* A chunk copied twice (after a mismatch) does not count twice. */
	p.done = c->done + (c->in_chunk < c->chunk_data ? c->in_chunk : c->chunk_data);
	p.total = c->res->data_bytes;
	p.rate = elapsed > 0 ? (double)c->res->copied_bytes / elapsed : 0;
	p.eta = p.rate > 0 ? (double)(p.total - p.done) / p.rate : -1;
	if (!c->ops->progress(c->ctx, &p)) {
		sm_error("the copy of '%s' was interrupted", c->req->src);
		return false;
	}
	return true;
}

/* n more bytes are copied: count them, keep to the rate, report; false when
 * the copy was cancelled. */
bool sm_copy_copied(struct copier *c, unsigned long long n)
{
	c->res->read_bytes += n;
	c->res->copied_bytes += n;
	c->in_chunk += n;
	sm_ratelimit_wait(&c->rl, n);
	return sm_copy_report(c, false);
}

/* Drop whatever the destination holds in [off, end): a hole again (on a
 * device, which has no holes: zeros, by the kernel's write-zeroes where the
 * device has it, else written). */
int sm_copy_punch(struct copier *c, off_t off, off_t end)
{
	if (end <= off)
		return 0;
	if (fallocate(c->out, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, end - off) == 0)
		return 0;
	if (errno != EOPNOTSUPP) {
		sm_copy_write_error(c);
		return -1;
	}
	/* No hole punching here: zeros read back the same. */
	memset(c->buf, 0, c->unit);
	while (off < end) {
		size_t n = (size_t)(end - off) < c->unit ? (size_t)(end - off) : c->unit;

		if (sm_copy_pwrite_all(c->out, c->buf, n, off) < 0) {
			sm_copy_write_error(c);
			return -1;
		}
		off += (off_t)n;
	}
	return 0;
}

/* A device destination that may hold old data (req->zero_holes): zeros
 * where the current chunk [off, end) has no source data (c->data). */
int sm_copy_zero_holes(struct copier *c, off_t off, off_t end)
{
	off_t pos = off;

	if (!c->req->zero_holes || !c->out_device)
		return 0;
	for (size_t i = 0; i < c->data.n; i++) {
		if (sm_copy_punch(c, pos, c->data.v[i].start) < 0)
			return -1;
		pos = c->data.v[i].end;
	}
	return sm_copy_punch(c, pos, end);
}

int sm_copy_sync_out(struct copier *c)
{
	if (fdatasync(c->out) < 0) {
		sm_copy_write_error(c);
		return -1;
	}
	return 0;
}
