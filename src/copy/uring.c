/* uring.c: the copier's direct path through io_uring: many O_DIRECT
 * requests in flight at once, reads of the source and writes of the
 * destination overlapping, into and out of buffers registered with the
 * kernel (no copy of the data in memory: a request's buffer is read into,
 * checksummed in place, then written from).  Reads are checksummed in file
 * order whatever order they complete in; writes may end in any order.
 * The same pipeline without writes re-reads a durable chunk of the
 * destination for its check (verify.c).  Where the kernel refuses io_uring
 * (ENOSYS, EPERM: disabled, a seccomp filter), sm_copy_uring_new says so and
 * the caller takes direct.c's reader thread instead; the method's name
 * ("direct-uring" or "direct") says which ran.
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

struct sm_uring {
	struct io_uring ring;
	char *bufs[SM_URING_DEPTH];
	size_t unit;
	bool fixed;  /* bufs registered with the ring */
};

int sm_copy_uring_new(struct sm_uring **out, size_t unit)
{
	struct sm_uring *u;
	struct iovec iov[SM_URING_DEPTH];
	int rc;

	*out = NULL;
#ifdef SM_TEST_BUILD
	/* Integration tests: the kernel refusing io_uring, faked. */
	if (getenv("SNAPMOVE_TEST_NO_URING")) {
		errno = ENOSYS;
		return 1;
	}
#endif
	u = sm_xcalloc(1, sizeof(*u));
	rc = io_uring_queue_init(SM_URING_DEPTH, &u->ring, 0);
	if (rc < 0) {
		free(u);
		errno = -rc;
		return 1;
	}
	u->unit = unit;
	for (int i = 0; i < SM_URING_DEPTH; i++) {
		if (posix_memalign((void **)&u->bufs[i], 4096, unit) != 0)
			abort();
		iov[i] = (struct iovec){ .iov_base = u->bufs[i], .iov_len = unit };
	}
	/* Registered buffers spare the kernel pinning each request's pages;
	 * without them (a memlock limit) the same requests, unregistered. */
	u->fixed = io_uring_register_buffers(&u->ring, iov, SM_URING_DEPTH) == 0;
	*out = u;
	return 0;
}

void sm_copy_uring_free(struct sm_uring *u)
{
	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	for (int i = 0; i < SM_URING_DEPTH; i++)
		free(u->bufs[i]);
	free(u);
}

/* ---- the pipeline ---- */

enum slot_state { SLOT_FREE, SLOT_READING, SLOT_READ, SLOT_WRITING };

/* One request's buffer and where it stands. */
struct slot {
	enum slot_state state;
	unsigned long long seq;  /* pieces in file order */
	off_t off;
	size_t want;   /* bytes of data the piece holds */
	size_t ask;    /* want in whole blocks (O_DIRECT) */
	size_t got;    /* read so far */
	size_t whole;  /* of got, the whole blocks written O_DIRECT */
	size_t wrote;  /* of whole, written so far */
};

struct pipe {
	struct sm_uring *u;
	struct copier *c;  /* NULL: checksum only */
	int in_fd, out_fd;
	const char *in_path;
	const struct range_list *ranges;
	struct sm_checksum *sum;
	unsigned long long *read;
	struct slot slots[SM_URING_DEPTH];
	size_t ri;        /* the next piece: in range ri, at roff */
	off_t roff;
	unsigned long long issued, summed;
	unsigned inflight;
	bool failed;      /* stop issuing; drain what is in flight */
	bool unsubmitted; /* a submit failed: what it left is never sent */
};

static struct io_uring_sqe *get_sqe(struct pipe *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->u->ring);

	/* One request per slot and as many entries as slots: never full. */
	if (!sqe)
		abort();
	return sqe;
}

static void submit_read(struct pipe *p, struct slot *s)
{
	struct io_uring_sqe *sqe = get_sqe(p);
	int i = (int)(s - p->slots);
	char *buf = p->u->bufs[i] + s->got;
	unsigned len = (unsigned)(s->ask - s->got);

	if (p->u->fixed)
		io_uring_prep_read_fixed(sqe, p->in_fd, buf, len, (unsigned long long)(s->off + (off_t)s->got), i);
	else
		io_uring_prep_read(sqe, p->in_fd, buf, len, (unsigned long long)(s->off + (off_t)s->got));
	io_uring_sqe_set_data(sqe, s);
	s->state = SLOT_READING;
	p->inflight++;
}

static void submit_write(struct pipe *p, struct slot *s)
{
	struct io_uring_sqe *sqe = get_sqe(p);
	int i = (int)(s - p->slots);
	char *buf = p->u->bufs[i] + s->wrote;
	unsigned len = (unsigned)(s->whole - s->wrote);

	if (p->u->fixed)
		io_uring_prep_write_fixed(sqe, p->out_fd, buf, len, (unsigned long long)(s->off + (off_t)s->wrote), i);
	else
		io_uring_prep_write(sqe, p->out_fd, buf, len, (unsigned long long)(s->off + (off_t)s->wrote));
	io_uring_sqe_set_data(sqe, s);
	s->state = SLOT_WRITING;
	p->inflight++;
}

/* Fill the free slots with the next pieces' reads. */
static void issue_reads(struct pipe *p)
{
	const struct range_list *l = p->ranges;

	for (int i = 0; i < SM_URING_DEPTH && !p->failed && p->ri < l->n; i++) {
		struct slot *s = &p->slots[i];
		size_t want;

		if (s->state != SLOT_FREE)
			continue;
		if (p->roff < l->v[p->ri].start)
			p->roff = l->v[p->ri].start;
		want = (size_t)(l->v[p->ri].end - p->roff) < p->u->unit
			       ? (size_t)(l->v[p->ri].end - p->roff) : p->u->unit;
		*s = (struct slot){ .seq = p->issued++, .off = p->roff, .want = want,
				    .ask = (want + SM_BLOCK - 1) / SM_BLOCK * SM_BLOCK };
		p->roff += (off_t)want;
		if (p->roff >= l->v[p->ri].end)
			p->ri++;
		submit_read(p, s);
	}
}

static void fail_read(struct pipe *p, const struct slot *s, int err)
{
	if (p->failed)
		return;
	p->failed = true;
	if (err)
		sm_error("cannot read '%s' at offset %lld: %s", p->in_path,
			 (long long)(s->off + (off_t)s->got), strerror(err));
	else
		sm_error("'%s' shrank while it was copied (at offset %lld); an image must not "
			 "change during a move", p->in_path, (long long)(s->off + (off_t)s->got));
}

static void fail_write(struct pipe *p, int err)
{
	if (p->failed)
		return;
	p->failed = true;
	errno = err;
	sm_copy_write_error(p->c);
}

/* A read completed (res bytes or -errno). */
static void read_done(struct pipe *p, struct slot *s, int res)
{
	if (p->failed) {
		s->state = SLOT_FREE;
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		submit_read(p, s);
		return;
	}
	if (res < 0) {
		s->state = SLOT_FREE;
		fail_read(p, s, -res);
		return;
	}
	s->got += (size_t)res;
	/* Short but block-aligned: ask for the rest.  Off a block boundary,
	 * or nothing: the end of the file. */
	if (res > 0 && s->got < s->ask && s->got % (size_t)SM_BLOCK == 0) {
		submit_read(p, s);
		return;
	}
	if (s->got < s->want) {
		s->state = SLOT_FREE;
		fail_read(p, s, 0);
		return;
	}
	s->got = s->want;  /* the last piece read up to the file's end */
	s->state = SLOT_READ;
}

/* The piece is written whole: its partial last block (the file's end)
 * through the buffered descriptor, then counted. */
static void piece_written(struct pipe *p, struct slot *s)
{
	struct copier *c = p->c;
	int i = (int)(s - p->slots);

	s->state = SLOT_FREE;
	if (s->whole < s->got &&
	    sm_copy_pwrite_all(c->out, p->u->bufs[i] + s->whole, s->got - s->whole,
			       s->off + (off_t)s->whole) < 0) {
		fail_write(p, errno);
		return;
	}
	if (!p->failed && !sm_copy_copied(c, s->got))
		p->failed = true;
}

static void write_done(struct pipe *p, struct slot *s, int res)
{
	if (p->failed) {
		s->state = SLOT_FREE;
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		submit_write(p, s);
		return;
	}
	if (res < 0) {
		s->state = SLOT_FREE;
		fail_write(p, -res);
		return;
	}
	if (res == 0) {
		s->state = SLOT_FREE;
		fail_write(p, ENOSPC);
		return;
	}
	s->wrote += (size_t)res;
	if (s->wrote < s->whole) {
		if (s->wrote % (size_t)SM_BLOCK == 0) {
			submit_write(p, s);
			return;
		}
		/* Short and unaligned: the rest the buffered way. */
		s->whole = s->wrote;
	}
	piece_written(p, s);
}

/* Checksum the pieces read, in file order, and hand each to its write. */
static void consume(struct pipe *p)
{
	for (bool more = true; more && !p->failed;) {
		more = false;
		for (int i = 0; i < SM_URING_DEPTH; i++) {
			struct slot *s = &p->slots[i];

			if (s->state != SLOT_READ || s->seq != p->summed)
				continue;
			sm_checksum_update(p->sum, (unsigned long long)s->off, p->u->bufs[i], s->got);
			p->summed++;
			more = true;
			if (!p->c) {
				if (p->read)
					*p->read += s->got;
				s->state = SLOT_FREE;
				continue;
			}
			/* A device's zeros, where the destination reads as
			 * zeros: nothing to write, only to count. */
			if (sm_copy_all_zero(p->c, p->u->bufs[i], s->got)) {
				s->whole = s->got;
				piece_written(p, s);
				continue;
			}
			s->whole = s->got / (size_t)SM_BLOCK * (size_t)SM_BLOCK;
			if (s->whole)
				submit_write(p, s);
			else
				piece_written(p, s);
		}
	}
}

/* Run the pipeline to its end (or, after a failure, until nothing is in
 * flight: the kernel must be done with the buffers before anyone else
 * touches them). */
static int pipe_run(struct pipe *p)
{
	for (;;) {
		struct io_uring_cqe *cqe;
		struct slot *s;
		int rc, res;

		issue_reads(p);
		if (!p->unsubmitted && io_uring_sq_ready(&p->u->ring)) {
			unsigned ready = io_uring_sq_ready(&p->u->ring);

			do
				rc = io_uring_submit(&p->u->ring);
			while (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
			if (rc < 0) {
				/* None of these went to the kernel: only what is
				 * in flight already is waited for. */
				if (!p->failed)
					sm_error("cannot submit I/O for '%s': %s", p->in_path,
						 strerror(-rc));
				p->failed = p->unsubmitted = true;
				p->inflight -= ready;
			}
		}
		if (p->inflight == 0)
			break;
		do
			rc = io_uring_wait_cqe(&p->u->ring, &cqe);
		while (rc == -EINTR || rc == -EAGAIN);
		if (rc < 0)
			abort();  /* a ring we own that cannot be waited on */
		s = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&p->u->ring, cqe);
		p->inflight--;
		if (s->state == SLOT_READING)
			read_done(p, s, res);
		else
			write_done(p, s, res);
		if (p->failed) {
			/* Nothing new: let the rest end. */
			for (int i = 0; i < SM_URING_DEPTH; i++)
				if (p->slots[i].state == SLOT_READ)
					p->slots[i].state = SLOT_FREE;
			continue;
		}
		consume(p);
	}
	return p->failed ? -1 : 0;
}

int sm_copy_uring_copy(struct copier *c, struct sm_checksum *sum)
{
	struct pipe p = { .u = c->uring, .c = c, .in_fd = c->in_direct, .out_fd = c->out_direct,
			  .in_path = c->req->src, .ranges = &c->data, .sum = sum };

	if (c->data.n == 0)
		return 0;
	if (sm_copy_preallocate(c) < 0)
		return -1;
	return pipe_run(&p);
}

int sm_copy_uring_checksum(struct sm_uring *u, int fd, const char *path,
			   const struct range_list *ranges, unsigned long long *read, uint64_t *out)
{
	struct sm_checksum sum;
	struct pipe p = { .u = u, .in_fd = fd, .out_fd = -1, .in_path = path,
			  .ranges = ranges, .sum = &sum, .read = read };
	int ret;

	sm_checksum_init(&sum);
	ret = pipe_run(&p);
	if (ret == 0)
		*out = sm_checksum_final(&sum);
	sm_checksum_release(&sum);
	return ret;
}
