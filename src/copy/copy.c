/* copy.c: the chunked copier.  For each chunk: walk the source's data
 * extents, copy them by the chosen path, fdatasync, checksum, verify against a
 * fresh read of the destination, and report the chunk; then the next.  The
 * journal is the caller's: this file only moves and checks bytes.
 *
 * The direct path reads with O_DIRECT in a reader thread, a few requests
 * ahead, while this thread checksums each piece and writes it with O_DIRECT:
 * the source's reads and the destination's writes overlap, and no page is
 * copied through the page cache.  Only the last partial block of a file goes
 * through the page cache (O_DIRECT needs whole blocks).
 */
#include "copy/copy.h"
#include "copy/checksum.h"
#include "copy/ratelimit.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* 256 KiB per read/write: measured 25-40% faster than 8 MiB on this VM
 * (bench/README.md), the data staying in the CPU caches between read,
 * checksum and write. */
#define SM_COPY_BUF (256u << 10)
#define SM_BLOCK ((off_t)SM_CHECKSUM_BLOCK)
/* The direct path: bytes per request and requests read ahead.  16 MiB x 4
 * copied 1 GiB verified about 10% faster than 8 MiB x 4 here (8 of 10 paired
 * rounds; 16 x 8, 32 x 4, 32 x 2, 16 x 2 and 4 x 8 were slower), at 128 MiB
 * per copy with its check (4 requests for the copy, 4 for the check). */
#define SM_DIRECT_UNIT SM_COPY_DIRECT_UNIT
#define SM_DIRECT_DEPTH SM_COPY_DIRECT_DEPTH

const char *sm_copy_method_name(enum sm_copy_method m)
{
	switch (m) {
	case SM_COPY_AUTO: return "auto";
	case SM_COPY_REFLINK: return "reflink";
	case SM_COPY_FILE_RANGE: return "copy_file_range";
	case SM_COPY_READWRITE: return "readwrite";
	case SM_COPY_DIRECT: return "direct";
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

struct range {
	off_t start, end;
};

struct range_list {
	struct range *v;
	size_t n, cap;
};

struct copier {
	const struct sm_copy_req *req;
	const struct sm_copy_ops *ops;
	void *ctx;
	struct sm_copy_result *res;
	int in, out;
	int in_direct, out_direct;  /* the same files opened O_DIRECT; -1 when not */
	off_t size;
	unsigned long long chunk_size;
	unsigned long long done;      /* data bytes of durable chunks */
	unsigned long long in_chunk;  /* data bytes copied of the current chunk */
	unsigned long long chunk_data;  /* data bytes of the current chunk */
	char *buf;
	size_t unit;  /* bytes per read/write or copy_file_range call */
	char *dbufs[SM_DIRECT_DEPTH];
	size_t dunit;  /* bytes per O_DIRECT request */
	struct sm_ratelimit rl;
	double t0, last_progress;
	enum sm_copy_method method;
	struct range_list data;  /* the source's data in the current chunk */
	struct verifier *verifier;  /* the direct path's check of the last chunk */
};

/* Data extents of fd in [from, to), widened to whole 4 KiB blocks (so the
 * checksum sees whole blocks) and clipped to the file.  Returns -1 on error. */
static int collect_ranges(struct range_list *l, int fd, off_t from, off_t to)
{
	off_t pos = from;

	l->n = 0;
	while (pos < to) {
		off_t s = lseek(fd, pos, SEEK_DATA), e;

		if (s < 0) {
			if (errno == ENXIO)
				break;
			return -1;
		}
		if (s >= to)
			break;
		e = lseek(fd, s, SEEK_HOLE);
		if (e < 0)
			return -1;
		s -= s % SM_BLOCK;
		if (s < pos)
			s = pos;
		if (e % SM_BLOCK)
			e += SM_BLOCK - e % SM_BLOCK;
		if (e > to)
			e = to;
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 16;
			l->v = sm_xrealloc(l->v, l->cap * sizeof(*l->v));
		}
		l->v[l->n++] = (struct range){ s, e };
		pos = e;
	}
	return 0;
}

static unsigned long long ranges_bytes(const struct range_list *l)
{
	unsigned long long n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += (unsigned long long)(l->v[i].end - l->v[i].start);
	return n;
}

int sm_copy_data_bytes_range(const char *path, unsigned long long offset,
			     unsigned long long length, unsigned long long *out)
{
	struct range_list l = { 0 };
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	int rc;

	*out = 0;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	end = length == 0 || (off_t)(offset + length) > sb.st_size ? sb.st_size
								   : (off_t)(offset + length);
	rc = collect_ranges(&l, fd, (off_t)offset, end);
	if (rc == 0)
		*out = ranges_bytes(&l);
	else
		sm_error("cannot walk the extents of '%s': %s", path, strerror(errno));
	free(l.v);
	close(fd);
	return rc;
}

int sm_copy_data_bytes(const char *path, unsigned long long *out)
{
	return sm_copy_data_bytes_range(path, 0, 0, out);
}

static void write_error(const struct copier *c)
{
	if (errno == ENOSPC || errno == EDQUOT)
		sm_error("the destination is full while copying '%s' to '%s'; free space "
			 "there, then %s", c->req->src, c->req->dst,
			 c->req->retry ? c->req->retry : "run the command again");
	else
		sm_error("cannot write '%s': %s", c->req->dst, strerror(errno));
}

static bool report(struct copier *c, bool force)
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
static bool copied(struct copier *c, unsigned long long n)
{
	c->res->read_bytes += n;
	c->res->copied_bytes += n;
	c->in_chunk += n;
	sm_ratelimit_wait(&c->rl, n);
	return report(c, false);
}

/* A read that returned n <= 0 where data was expected. */
static void shrank_or_error(const char *path, ssize_t n)
{
	if (n < 0)
		sm_error("cannot read '%s': %s", path, strerror(errno));
	else
		sm_error("'%s' shrank while it was copied; an image must not change during a "
			 "move", path);
}

static int pwrite_all(int fd, const char *buf, size_t len, off_t off)
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
static ssize_t pread_upto(int fd, char *buf, size_t len, off_t off, bool direct)
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

static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
	return pread_upto(fd, buf, len, off, false);
}

/* ---- the direct path's reader thread ---- */

struct piece {
	off_t off;
	ssize_t got;  /* bytes read; -1 on error */
	int err;      /* errno, or 0 for a short read (the file shrank) */
};

/* Reads the pieces of a range list, in order, into bufs, at most
 * SM_DIRECT_DEPTH ahead of the consumer. */
struct reader {
	int fd;
	const struct range_list *ranges;
	char *const *bufs;
	size_t unit;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct piece pieces[SM_DIRECT_DEPTH];
	unsigned long long filled, taken;
	bool stop, ended;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	const struct range_list *l = r->ranges;

	for (size_t i = 0; i < l->n; i++) {
		for (off_t off = l->v[i].start; off < l->v[i].end;) {
			size_t want = (size_t)(l->v[i].end - off) < r->unit
					      ? (size_t)(l->v[i].end - off) : r->unit;
			size_t ask = (want + SM_BLOCK - 1) / SM_BLOCK * SM_BLOCK;
			struct piece p = { .off = off };
			unsigned slot;
			bool stop;

			pthread_mutex_lock(&r->mu);
			while (r->filled - r->taken == SM_DIRECT_DEPTH && !r->stop)
				pthread_cond_wait(&r->cv, &r->mu);
			slot = (unsigned)(r->filled % SM_DIRECT_DEPTH);
			stop = r->stop;
			pthread_mutex_unlock(&r->mu);
			if (stop)
				goto out;
			/* The last piece of a file asks for whole blocks and
			 * gets up to its end. */
			p.got = pread_upto(r->fd, r->bufs[slot], ask, off, true);
			p.err = p.got < 0 ? errno : 0;
			if (p.got > (ssize_t)want)
				p.got = (ssize_t)want;
			else if (p.got >= 0 && p.got < (ssize_t)want)
				p.got = -1;  /* shrank under us */
			pthread_mutex_lock(&r->mu);
			r->pieces[slot] = p;
			r->filled++;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mu);
			if (p.got < 0)
				goto out;
			off += (off_t)want;
		}
	}
out:
	pthread_mutex_lock(&r->mu);
	r->ended = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void reader_start(struct reader *r, int fd, const struct range_list *ranges,
			 char *const *bufs, size_t unit)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->ranges = ranges;
	r->bufs = bufs;
	r->unit = unit;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (pthread_create(&r->thread, NULL, reader_main, r) != 0)
		abort();
}

/* The next piece read, and its buffer; NULL when all were read. */
static const struct piece *reader_next(struct reader *r, char **buf)
{
	const struct piece *p = NULL;

	pthread_mutex_lock(&r->mu);
	while (r->taken == r->filled && !r->ended)
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->taken < r->filled) {
		p = &r->pieces[r->taken % SM_DIRECT_DEPTH];
		*buf = r->bufs[r->taken % SM_DIRECT_DEPTH];
	}
	pthread_mutex_unlock(&r->mu);
	return p;
}

/* The consumer is done with the piece reader_next gave. */
static void reader_release(struct reader *r)
{
	pthread_mutex_lock(&r->mu);
	r->taken++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Stop the reader (wherever it is) and wait for it. */
static void reader_finish(struct reader *r)
{
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
}

static void read_error(const char *path, const struct piece *p)
{
	if (p->err)
		sm_error("cannot read '%s' at offset %lld: %s", path, (long long)p->off,
			 strerror(p->err));
	else
		sm_error("'%s' shrank while it was copied (at offset %lld); an image must not "
			 "change during a move", path, (long long)p->off);
}

/* Write a piece the direct way; a partial block at the end of the file (or
 * after a short write) goes through the buffered descriptor. */
static int pwrite_direct(struct copier *c, const char *buf, size_t len, off_t off)
{
	size_t whole = len / (size_t)SM_BLOCK * (size_t)SM_BLOCK;

	while (whole > 0) {
		ssize_t n = pwrite(c->out_direct, buf, whole, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		off += n;
		len -= (size_t)n;
		if ((size_t)n % (size_t)SM_BLOCK)
			break;  /* short and unaligned: the rest the buffered way */
		whole -= (size_t)n;
	}
	return len ? pwrite_all(c->out, buf, len, off) : 0;
}

/* Checksum the ranges of fd (opened O_DIRECT) with a reader thread; *read
 * (when not NULL) counts the bytes read. */
static int checksum_direct(int fd, const char *path, const struct range_list *ranges,
			   char *const *bufs, size_t unit, unsigned long long *read,
			   uint64_t *out)
{
	struct sm_checksum sum;
	struct reader r;
	const struct piece *p;
	char *buf;
	int ret = 0;

	sm_checksum_init(&sum);
	/* No data, no thread (a sparse terabyte is mostly such chunks). */
	if (ranges->n == 0) {
		*out = sm_checksum_final(&sum);
		sm_checksum_release(&sum);
		return 0;
	}
	reader_start(&r, fd, ranges, bufs, unit);
	while ((p = reader_next(&r, &buf))) {
		if (p->got < 0) {
			read_error(path, p);
			ret = -1;
			break;
		}
		sm_checksum_update(&sum, (unsigned long long)p->off, buf, (size_t)p->got);
		if (read)
			*read += (unsigned long long)p->got;
		reader_release(&r);
	}
	reader_finish(&r);
	if (ret == 0)
		*out = sm_checksum_final(&sum);
	sm_checksum_release(&sum);
	return ret;
}

/* Copy the current ranges the direct way, checksumming what is read. */
static int copy_direct(struct copier *c, struct sm_checksum *sum)
{
	struct reader r;
	const struct piece *p;
	char *buf;
	int ret = 0;

	if (c->data.n == 0)
		return 0;
	/* With a check running beside the copy, allocate the chunk's data
	 * ranges first: the writes are then overwrites, which ext4 lets run
	 * beside the check's reads instead of taking the inode's lock for each
	 * (measured: 10-15% faster with verify; 25% slower without, so only
	 * then). */
	for (size_t i = 0; c->verifier && i < c->data.n; i++)
		if (fallocate(c->out, FALLOC_FL_KEEP_SIZE, c->data.v[i].start,
			      c->data.v[i].end - c->data.v[i].start) < 0 &&
		    errno != EOPNOTSUPP) {
			write_error(c);
			return -1;
		}
	reader_start(&r, c->in_direct, &c->data, c->dbufs, c->dunit);
	while ((p = reader_next(&r, &buf))) {
		size_t got = (size_t)p->got;

		if (p->got < 0) {
			read_error(c->req->src, p);
			ret = -1;
			break;
		}
		sm_checksum_update(sum, (unsigned long long)p->off, buf, got);
		if (pwrite_direct(c, buf, got, p->off) < 0) {
			write_error(c);
			ret = -1;
			break;
		}
		reader_release(&r);
		if (!copied(c, got)) {
			ret = -1;
			break;
		}
	}
	reader_finish(&r);
	return ret;
}

/* Checksum the current ranges of fd through the page cache; counts source
 * reads. */
static int checksum_buffered(struct copier *c, int fd, uint64_t *out)
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
static int copy_readwrite(struct copier *c, off_t off, off_t end, struct sm_checksum *sum)
{
	while (off < end) {
		size_t want = (size_t)(end - off) < c->unit ? (size_t)(end - off) : c->unit;
		ssize_t n = pread_full(c->in, c->buf, want, off);

		if (n <= 0) {
			shrank_or_error(c->req->src, n);
			return -1;
		}
		sm_checksum_update(sum, (unsigned long long)off, c->buf, (size_t)n);
		if (pwrite_all(c->out, c->buf, (size_t)n, off) < 0) {
			write_error(c);
			return -1;
		}
		off += n;
		if (!copied(c, (unsigned long long)n))
			return -1;
	}
	return 0;
}

/* Copy [off, end) in the kernel.  Returns 1 when copy_file_range cannot be
 * used on these files (nothing copied), so the caller falls back. */
static int copy_range(struct copier *c, off_t off, off_t end)
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
			write_error(c);
			return -1;
		}
		if (n == 0) {
			shrank_or_error(c->req->src, 0);
			return -1;
		}
		off += n;
		if (!copied(c, (unsigned long long)n))
			return -1;
	}
	return 0;
}

/* Copy the current ranges; *sum gets the source checksum (inline for
 * read/write and direct, by a second read otherwise). */
static int copy_chunk_data(struct copier *c, uint64_t *sum)
{
	struct sm_checksum inline_sum;
	int ret = -1;

	sm_checksum_init(&inline_sum);
	if (c->method == SM_COPY_DIRECT) {
		if (copy_direct(c, &inline_sum) == 0) {
			*sum = sm_checksum_final(&inline_sum);
			ret = 0;
		}
		goto cleanup;
	}
	for (size_t i = 0; i < c->data.n; i++) {
		off_t s = c->data.v[i].start, e = c->data.v[i].end;

		if (c->method == SM_COPY_FILE_RANGE) {
			int rc = copy_range(c, s, e);

			if (rc < 0)
				goto cleanup;
			if (rc == 0)
				continue;
			c->method = SM_COPY_READWRITE;
		}
		if (c->method == SM_COPY_READWRITE && copy_readwrite(c, s, e, &inline_sum) < 0)
			goto cleanup;
	}
	if (c->method == SM_COPY_READWRITE) {
		*sum = sm_checksum_final(&inline_sum);
		ret = 0;
	} else {
		ret = checksum_buffered(c, c->in, sum);
	}

cleanup:
	sm_checksum_release(&inline_sum);
	return ret;
}

/* Drop whatever the destination holds in [off, end): a hole again. */
static int punch(struct copier *c, off_t off, off_t end)
{
	if (end <= off)
		return 0;
	if (fallocate(c->out, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, end - off) == 0)
		return 0;
	if (errno != EOPNOTSUPP) {
		write_error(c);
		return -1;
	}
	/* No hole punching here: zeros read back the same. */
	memset(c->buf, 0, c->unit);
	while (off < end) {
		size_t n = (size_t)(end - off) < c->unit ? (size_t)(end - off) : c->unit;

		if (pwrite_all(c->out, c->buf, n, off) < 0) {
			write_error(c);
			return -1;
		}
		off += (off_t)n;
	}
	return 0;
}

static int sync_out(struct copier *c)
{
	if (fdatasync(c->out) < 0) {
		write_error(c);
		return -1;
	}
	return 0;
}

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
		       struct range_list *scratch, char *const *bufs)
{
	uint64_t got;
	int rc;

	rc = collect_ranges(scratch, c->out, (off_t)chunk->offset,
			    (off_t)(chunk->offset + chunk->length));
	if (rc < 0) {
		sm_error("cannot walk the extents of '%s': %s", c->req->dst, strerror(errno));
		return -1;
	}
	if (direct) {
		rc = checksum_direct(c->out_direct, c->req->dst, scratch, bufs, c->dunit, NULL,
				     &got);
	} else {
		struct range_list keep = c->data;

		c->data = *scratch;
		rc = checksum_buffered(c, c->out, &got);
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
	pthread_t thread;
	bool running;
	int result;         /* of check_chunk */
	char error[1024];   /* its error, from the thread's sm_error */
};

static void *verifier_main(void *arg)
{
	struct verifier *v = arg;

	v->result = check_chunk(v->c, &v->chunk, true, &v->ranges, v->bufs);
	if (v->result < 0)
		snprintf(v->error, sizeof(v->error), "%s", sm_error_message());
	return NULL;
}

static struct verifier *verifier_new(struct copier *c)
{
	struct verifier *v = sm_xcalloc(1, sizeof(*v));

	v->c = c;
	for (int i = 0; i < SM_DIRECT_DEPTH; i++)
		if (posix_memalign((void **)&v->bufs[i], 4096, c->dunit) != 0)
			abort();
	return v;
}

static void verifier_start(struct verifier *v, const struct sm_copy_chunk *chunk)
{
	v->chunk = *chunk;
	v->running = true;
	if (pthread_create(&v->thread, NULL, verifier_main, v) != 0)
		abort();
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

static void verifier_free(struct verifier *v)
{
	if (!v)
		return;
	/* A check still running when the copy failed: its result does not
	 * matter, and its error must not replace the copy's. */
	if (v->running)
		pthread_join(v->thread, NULL);
	for (int i = 0; i < SM_DIRECT_DEPTH; i++)
		free(v->bufs[i]);
	free(v->ranges.v);
	free(v);
}

/* Check a durable chunk now, in this thread. */
static int verify_now(struct copier *c, const struct sm_copy_chunk *chunk)
{
	struct range_list scratch = { 0 };
	bool direct = c->method == SM_COPY_DIRECT;
	int rc = check_chunk(c, chunk, direct, &scratch, c->dbufs);

	free(scratch.v);
	return rc;
}

static int chunk_done(struct copier *c, const struct sm_copy_chunk *chunk)
{
	c->res->chunks++;
	if (c->ops && c->ops->chunk_done && c->ops->chunk_done(c->ctx, chunk) < 0)
		return -1;
	return 0;
}

/* The chunk [chunk->offset, +length) once more, by the plain path, after a
 * mismatch; then checked at once.  The second mismatch stops the copy.  The
 * rest of the copy stays on the plain (buffered) path: a copy that came out
 * wrong once does not trust its faster path again. */
static int recopy_chunk(struct copier *c, struct sm_copy_chunk *chunk)
{
	off_t off = (off_t)chunk->offset, end = off + (off_t)chunk->length;
	uint64_t sum;
	int ok;

	c->res->recopied++;
	c->method = SM_COPY_READWRITE;
	if (punch(c, off, end) < 0)
		return -1;
	if (collect_ranges(&c->data, c->in, off, end) < 0) {
		sm_error("cannot walk the extents of '%s': %s", c->req->src, strerror(errno));
		return -1;
	}
	/* Its bytes count as done already: progress does not count them twice. */
	c->in_chunk = 0;
	c->chunk_data = 0;
	if (copy_chunk_data(c, &sum) < 0)
		return -1;
	/* The source's checksum stands; a source that changed is an error. */
	if (sum != chunk->checksum) {
		sm_error("'%s' changed while it was copied (chunk %llu, offset %llu); it must "
			 "not be written during a move", c->req->src, chunk->index, chunk->offset);
		return -1;
	}
	if (c->ops && c->ops->after_write)
		c->ops->after_write(c->ctx, c->out, chunk, 1);
	if (sync_out(c) < 0)
		return -1;
	ok = verify_now(c, chunk);
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
static int finish_pending(struct copier *c)
{
	struct sm_copy_chunk chunk;
	int ok;

	if (!c->verifier || !c->verifier->running)
		return 0;
	chunk = c->verifier->chunk;
	ok = verifier_wait(c->verifier);
	if (ok < 0)
		return -1;
	if (!ok && recopy_chunk(c, &chunk) < 0)
		return -1;
	return chunk_done(c, &chunk);
}

static int do_chunk(struct copier *c, unsigned long long index, bool resumed)
{
	struct sm_copy_chunk chunk = { .index = index };
	off_t off = (off_t)(index * c->chunk_size);
	off_t end = off + (off_t)c->chunk_size > c->size ? c->size : off + (off_t)c->chunk_size;
	int ok;

	chunk.offset = (unsigned long long)off;
	chunk.length = (unsigned long long)(end - off);
	if (collect_ranges(&c->data, c->in, off, end) < 0) {
		sm_error("cannot walk the extents of '%s': %s", c->req->src, strerror(errno));
		return -1;
	}
	chunk.data_bytes = ranges_bytes(&c->data);
	/* A chunk a crash interrupted may hold part of its data: start it over. */
	if (resumed && punch(c, off, end) < 0)
		return -1;
	c->in_chunk = 0;
	c->chunk_data = chunk.data_bytes;
	if (c->method == SM_COPY_REFLINK) {
		if (checksum_buffered(c, c->in, &chunk.checksum) < 0)
			return -1;
	} else if (copy_chunk_data(c, &chunk.checksum) < 0) {
		return -1;
	}
	if (c->ops && c->ops->after_write)
		c->ops->after_write(c->ctx, c->out, &chunk, 0);
	c->done += chunk.data_bytes;
	c->in_chunk = 0;
	/* A hole of a fresh copy: nothing was written, nothing to sync or read
	 * back (a 1 TiB sparse image is mostly such chunks). */
	if (chunk.data_bytes == 0 && !resumed && !(c->ops && c->ops->after_write)) {
		if (finish_pending(c) < 0 || chunk_done(c, &chunk) < 0)
			return -1;
		return report(c, false) ? 0 : -1;
	}
	if (sync_out(c) < 0 || finish_pending(c) < 0)
		return -1;
	if (!c->req->verify) {
		ok = 1;
	} else if (c->method == SM_COPY_DIRECT) {
		/* Durable: journal it so, and check it while the next chunk
		 * is copied. */
		if (c->ops && c->ops->chunk_durable && c->ops->chunk_durable(c->ctx, &chunk) < 0)
			return -1;
		verifier_start(c->verifier, &chunk);
		return report(c, false) ? 0 : -1;
	} else {
		ok = verify_now(c, &chunk);
	}
	if (ok < 0 || (!ok && recopy_chunk(c, &chunk) < 0) || chunk_done(c, &chunk) < 0)
		return -1;
	return report(c, false) ? 0 : -1;
}

/* Check the chunks a crash left durable but unchecked (resume): 0 when they
 * are done (re-copied where they did not match). */
static int check_unverified(struct copier *c)
{
	for (size_t i = 0; i < c->req->nunverified; i++) {
		struct sm_copy_chunk chunk = c->req->unverified[i];
		int ok = verify_now(c, &chunk);

		if (ok < 0 || (!ok && recopy_chunk(c, &chunk) < 0) || chunk_done(c, &chunk) < 0)
			return -1;
		c->res->reverified++;
	}
	return 0;
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

/* Open fd's file again, by the fd (never by its name, which another user may
 * have swapped), with O_DIRECT. */
static int reopen_direct(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags | O_DIRECT | O_CLOEXEC);
}

/* Open both files O_DIRECT for the direct path: 0, or 1 when a file system
 * here cannot (tmpfs), or -1 when the direct path was asked for by name. */
static int open_direct(struct copier *c)
{
	c->in_direct = reopen_direct(c->in, O_RDONLY);
	if (c->in_direct >= 0)
		c->out_direct = reopen_direct(c->out, O_RDWR);
	if (c->in_direct >= 0 && c->out_direct >= 0)
		return 0;
	if (c->req->method == SM_COPY_DIRECT) {
		sm_error("cannot open '%s' with O_DIRECT: %s; its file system does not support "
			 "direct I/O; leave the copy method on auto",
			 c->in_direct < 0 ? c->req->src : c->req->dst, strerror(errno));
		return -1;
	}
	if (c->in_direct >= 0)
		close(c->in_direct);
	c->in_direct = -1;
	return 1;
}

int sm_copy_run(const struct sm_copy_req *req, const struct sm_copy_ops *ops, void *ctx,
		struct sm_copy_result *res)
{
	int in, out, ret;

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

/* fd is a regular file (a directory, a device, a FIFO are not images). */
static int regular(int fd, const char *path, struct stat *sb)
{
	if (fstat(fd, sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb->st_mode)) {
		sm_error("'%s' is not a regular file; only image files can be copied", path);
		return -1;
	}
	return 0;
}

int sm_copy_run_fds(const struct sm_copy_req *req, int src_fd, int dst_fd,
		    const struct sm_copy_ops *ops, void *ctx, struct sm_copy_result *res)
{
	struct copier c = { .req = req, .ops = ops, .ctx = ctx, .res = res, .in = src_fd,
			    .out = dst_fd, .in_direct = -1, .out_direct = -1 };
	struct stat sb, dsb;
	unsigned long long nchunks, first;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	c.t0 = sm_monotonic();
	c.chunk_size = req->chunk_size ? req->chunk_size : SM_COPY_CHUNK;
	c.chunk_size -= c.chunk_size % SM_CHECKSUM_BLOCK;
	if (!c.chunk_size)
		c.chunk_size = SM_CHECKSUM_BLOCK;
	if (regular(c.in, req->src, &sb) < 0 || regular(c.out, req->dst, &dsb) < 0)
		goto cleanup;
	c.size = sb.st_size;
	res->size = (unsigned long long)sb.st_size;
	if (collect_ranges(&c.data, c.in, 0, c.size) < 0) {
		sm_error("cannot walk the extents of '%s': %s", req->src, strerror(errno));
		goto cleanup;
	}
	res->data_bytes = ranges_bytes(&c.data);
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
	c.dunit = SM_DIRECT_UNIT;
	if (c.rl.bytes_per_slice && c.rl.bytes_per_slice < c.dunit)
		c.dunit = c.unit;

	/* Direct I/O asked for by name: refused before the destination is
	 * touched. */
	if (req->method == SM_COPY_DIRECT && open_direct(&c) < 0)
		goto cleanup;
	if (first == 0) {
		/* Fresh: drop what the destination held, then size it, all holes. */
		if (ftruncate(c.out, 0) < 0 || ftruncate(c.out, c.size) < 0) {
			write_error(&c);
			goto cleanup;
		}
	} else if (ftruncate(c.out, c.size) < 0) {
		write_error(&c);
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
		int rc = open_direct(&c);

		if (rc < 0)
			goto cleanup;
		if (rc > 0)
			c.method = SM_COPY_READWRITE;
	}
	if (c.method == SM_COPY_DIRECT) {
		for (int i = 0; i < SM_DIRECT_DEPTH; i++)
			if (posix_memalign((void **)&c.dbufs[i], 4096, c.dunit) != 0)
				abort();
		if (req->verify)
			c.verifier = verifier_new(&c);
	}
	posix_fadvise(c.in, 0, 0, POSIX_FADV_SEQUENTIAL);

	/* Chunks before first are durable: count them, do not copy them. */
	for (unsigned long long i = 0; i < first; i++) {
		off_t off = (off_t)(i * c.chunk_size);
		off_t end = off + (off_t)c.chunk_size > c.size ? c.size : off + (off_t)c.chunk_size;

		if (collect_ranges(&c.data, c.in, off, end) < 0) {
			sm_error("cannot walk the extents of '%s': %s", req->src, strerror(errno));
			goto cleanup;
		}
		c.done += ranges_bytes(&c.data);
	}
	res->chunks_skipped = first;
	if (req->verify && check_unverified(&c) < 0)
		goto cleanup;
	for (unsigned long long i = first; i < nchunks; i++)
		if (do_chunk(&c, i, i == first && first > 0) < 0)
			goto cleanup;
	/* The last chunk's check; even an empty file gets its size made
	 * durable. */
	if (finish_pending(&c) < 0 || sync_out(&c) < 0)
		goto cleanup;
	res->method = c.method;
	res->seconds = sm_monotonic() - c.t0;
	if (!report(&c, true))
		goto cleanup;
	ret = 0;

cleanup:
	res->method = c.method;
	verifier_free(c.verifier);
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
	struct stat sb;
	off_t end;
	int ret = -1;

	c.in = open(path, O_RDONLY | O_CLOEXEC);
	if (c.in < 0 || fstat(c.in, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	/* From the storage where it can (O_DIRECT, from a block boundary),
	 * else the page cache. */
	if (offset % SM_CHECKSUM_BLOCK == 0)
		c.in_direct = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	end = (off_t)(offset + length) > sb.st_size ? sb.st_size : (off_t)(offset + length);
	c.buf = sm_xmalloc(c.unit);
	if (c.in_direct >= 0)
		for (int i = 0; i < SM_DIRECT_DEPTH; i++)
			if (posix_memalign((void **)&c.dbufs[i], 4096, c.dunit) != 0)
				abort();
	if (collect_ranges(&c.data, c.in, (off_t)offset, end) < 0) {
		sm_error("cannot walk the extents of '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	if (c.in_direct >= 0)
		ret = checksum_direct(c.in_direct, path, &c.data, c.dbufs, c.dunit, NULL, out);
	else
		ret = checksum_buffered(&c, c.in, out);

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
