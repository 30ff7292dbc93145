/* direct.c: the copier's direct path.  A reader thread reads the data
 * ranges with O_DIRECT, a few requests ahead, while the caller checksums each
 * piece and writes it with O_DIRECT: the source's reads and the
 * destination's writes overlap, and no page is copied through the page
 * cache.  Only the last partial block of a file goes through the page cache
 * (O_DIRECT needs whole blocks).  The files are reopened O_DIRECT through
 * /proc/self/fd, never by name.
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
			p.got = sm_copy_pread_upto(r->fd, r->bufs[slot], ask, off, true);
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

/* Start the reader on ranges of fd; -1 with the error set (path names the
 * file) when no thread can be started. */
static int reader_start(struct reader *r, int fd, const char *path,
			const struct range_list *ranges, char *const *bufs, size_t unit)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->ranges = ranges;
	r->bufs = bufs;
	r->unit = unit;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	err = pthread_create(&r->thread, NULL, reader_main, r);
	if (err != 0) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		sm_error("cannot start a thread to read '%s': %s", path, strerror(err));
		return -1;
	}
	return 0;
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
	return len ? sm_copy_pwrite_all(c->out, buf, len, off) : 0;
}

/* Checksum the ranges of fd (opened O_DIRECT) with a reader thread; *read
 * (when not NULL) counts the bytes read. */
int sm_copy_checksum_direct(int fd, const char *path, const struct range_list *ranges,
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
	if (reader_start(&r, fd, path, ranges, bufs, unit) < 0) {
		sm_checksum_release(&sum);
		return -1;
	}
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

/* With a check running beside the copy, allocate the chunk's data ranges
 * first: the writes are then overwrites, which ext4 lets run beside the
 * check's reads instead of taking the inode's lock for each (measured:
 * 10-15% faster with verify; 25% slower without, so only then). */
int sm_copy_preallocate(struct copier *c)
{
	/* A device source's zeros are not written: not allocated either. */
	if (c->skip_zeros)
		return 0;
	for (size_t i = 0; c->verifier && i < c->data.n; i++)
		if (fallocate(c->out, FALLOC_FL_KEEP_SIZE, c->data.v[i].start,
			      c->data.v[i].end - c->data.v[i].start) < 0 &&
		    errno != EOPNOTSUPP) {
			sm_copy_write_error(c);
			return -1;
		}
	return 0;
}

/* Copy the current ranges the direct way, checksumming what is read. */
int sm_copy_direct(struct copier *c, struct sm_checksum *sum)
{
	struct reader r;
	const struct piece *p;
	char *buf;
	int ret = 0;

	if (c->data.n == 0)
		return 0;
	if (sm_copy_preallocate(c) < 0)
		return -1;
	if (reader_start(&r, c->in_direct, c->req->src, &c->data, c->dbufs, c->dunit) < 0)
		return -1;
	while ((p = reader_next(&r, &buf))) {
		size_t got = (size_t)p->got;

		if (p->got < 0) {
			read_error(c->req->src, p);
			ret = -1;
			break;
		}
		sm_checksum_update(sum, (unsigned long long)p->off, buf, got);
		if (!sm_copy_all_zero(c, buf, got) && pwrite_direct(c, buf, got, p->off) < 0) {
			sm_copy_write_error(c);
			ret = -1;
			break;
		}
		reader_release(&r);
		if (!sm_copy_copied(c, got)) {
			ret = -1;
			break;
		}
	}
	reader_finish(&r);
	return ret;
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
int sm_copy_open_direct(struct copier *c)
{
	c->in_direct = reopen_direct(c->in, O_RDONLY);
	if (c->in_direct >= 0)
		c->out_direct = reopen_direct(c->out, O_RDWR);
	if (c->in_direct >= 0 && c->out_direct >= 0)
		return 0;
	if (sm_copy_is_direct(c->req->method)) {
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
