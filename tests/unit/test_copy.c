/* test_copy.c: the out-of-band copier on small sparse files in a temp
 * directory: byte-exact copies that keep holes by every copy path, chunks
 * reported in order with checksums that match both files, resume after a
 * crash, verification and its one re-copy, the bandwidth limit, progress and
 * cancel, and the destinations it must refuse.  Reflinks are not exercised
 * (the test directory is on ext4): only their refusal and the fallback.  The
 * direct path besides: odd file sizes, its request size, the reader thread
 * stopped by a cancel, a read or a write error, and its checks that overlap
 * the next chunk (durable, then done; unverified chunks on resume).
 *
 * The tests that matter to both loops run once by the buffered read/write
 * loop and once by the direct path (TM below).  The direct path's promise of
 * leaving the page cache alone is checked with mincore(): where O_DIRECT
 * bypasses the cache (ext4, not tmpfs), a direct copy leaves no page of
 * either file there but the destination's last partial block.  Every copy
 * also checks that it left no descriptor open and no reader thread running.
 */
#include "unit.h"

#include "copy/checksum.h"
#include "copy/copy.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/vfs.h>

#define KiB (1024LL)
#define MiB (1024LL * 1024)
#define EXT4_MAGIC 0xEF53

#define MAX_CHUNKS 64
#define MAX_PATHS 64
/* The most one O_DIRECT request reads (the reader thread; io_uring's). */
#define DIRECT_UNIT ((off_t)SM_COPY_DIRECT_UNIT)
#define URING_UNIT ((off_t)SM_COPY_URING_UNIT)

/* io_uring_queue_init as the copier calls it (defined here, it comes before
 * liburing's): fails with -fake_uring_errno when that is set, as a kernel
 * without io_uring (ENOSYS) or one that forbids it (EPERM) does.  Every test
 * runs with it set to ENOSYS (the reader thread's direct path, as before
 * io_uring) but those run by SM_COPY_DIRECT_URING and the ones about
 * io_uring.  uring_ok: the kernel here lets this process use io_uring. */
static int fake_uring_errno;
static int uring_refusals;
static bool uring_ok;
static int (*real_uring_init)(unsigned, struct io_uring *, unsigned);

int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
	if (fake_uring_errno) {
		uring_refusals++;
		return -fake_uring_errno;
	}
	return real_uring_init(entries, ring, flags);
}

/* io_uring_submit as the copier calls it: faults put into the requests about
 * to be submitted.  short_reads: every read of more than a block asks for
 * half (whole blocks), so the kernel answers short and the copier must ask
 * for the rest; full_writes: every write goes to /dev/full (ENOSPC, as a
 * full destination answers). */
static int fault_short_reads, fault_full_fd = -1;
static int fault_shortened;
static int (*real_uring_submit)(struct io_uring *);

int io_uring_submit(struct io_uring *ring)
{
	for (unsigned i = ring->sq.sqe_head; i != ring->sq.sqe_tail; i++) {
		struct io_uring_sqe *sqe = &ring->sq.sqes[i & ring->sq.ring_mask];
		bool read = sqe->opcode == IORING_OP_READ || sqe->opcode == IORING_OP_READ_FIXED;
		bool write = sqe->opcode == IORING_OP_WRITE || sqe->opcode == IORING_OP_WRITE_FIXED;

		if (read && fault_short_reads && sqe->len > 4096) {
			sqe->len = sqe->len / 2 / 4096 * 4096;
			if (!sqe->len)
				sqe->len = 4096;
			fault_shortened++;
		}
		if (write && fault_full_fd >= 0)
			sqe->fd = fault_full_fd;
	}
	return real_uring_submit(ring);
}

enum direct_io {
	DIRECT_UNKNOWN,
	DIRECT_NONE,      /* O_DIRECT cannot be opened here */
	DIRECT_CACHED,    /* it can, but the files live in the page cache (tmpfs) */
	DIRECT_UNCACHED,  /* it can, and bypasses the page cache (ext4) */
};

/* A temp directory and the paths a test made in it; teardown frees both, so
 * a failed assertion leaks nothing.  method: the path a test run once per
 * path (TM) copies by. */
struct fixture {
	char *dir;
	char *paths[MAX_PATHS];
	size_t npaths;
	enum sm_copy_method method;
	enum direct_io direct;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->method = *state ? *(const enum sm_copy_method *)*state : SM_COPY_AUTO;
	f->dir = unit_mkdtemp();
	fake_uring_errno = f->method == SM_COPY_DIRECT_URING ? 0 : ENOSYS;
	uring_refusals = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unit_rmtree(f->dir);
	fake_uring_errno = ENOSYS;
	fault_short_reads = 0;
	if (fault_full_fd >= 0)
		close(fault_full_fd);
	fault_full_fd = -1;
	for (size_t i = 0; i < f->npaths; i++)
		free(f->paths[i]);
	free(f);
	return 0;
}

static char *path_in(struct fixture *f, const char *name)
{
	char *p = sm_path_join(f->dir, name);

	assert_true(f->npaths < MAX_PATHS);
	f->paths[f->npaths++] = p;
	return p;
}

/* "name.suffix" in buf. */
static const char *name_with(char *buf, size_t len, const char *name, const char *suffix)
{
	assert_true((size_t)snprintf(buf, len, "%s.%s", name, suffix) < len);
	return buf;
}

static bool on_ext4(struct fixture *f)
{
	struct statfs sf;

	assert_int_equal(statfs(f->dir, &sf), 0);
	return sf.f_type == EXT4_MAGIC;
}

/* A byte that depends on its offset, never zero, so data written at the wrong
 * place shows and no data block reads as a hole. */
static unsigned char pattern(off_t off, unsigned seed)
{
	unsigned long long x = (unsigned long long)off * 2654435761u + seed;

	return (unsigned char)(x ^ (x >> 13) ^ (x >> 29)) | 1;
}

struct extent {
	off_t off;
	off_t len;
};

/* Write the extents with the pattern into path (created or truncated) and set
 * its size; everything else is a hole. */
static void make_sparse(const char *path, off_t size, const struct extent *ext, size_t n,
			unsigned seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	unsigned char *buf = malloc(MiB);

	assert_true(fd >= 0);
	assert_non_null(buf);
	assert_int_equal(ftruncate(fd, size), 0);
	for (size_t i = 0; i < n; i++) {
		for (off_t off = ext[i].off; off < ext[i].off + ext[i].len;) {
			off_t end = ext[i].off + ext[i].len;
			size_t len = (size_t)(end - off < MiB ? end - off : MiB);

			for (size_t k = 0; k < len; k++)
				buf[k] = pattern(off + (off_t)k, seed);
			assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
			off += (off_t)len;
		}
	}
	assert_int_equal(fsync(fd), 0);
	close(fd);
	free(buf);
}

static void make_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

/* Overwrite [off, off + len) of an existing file with byte b (data, not a hole). */
static void fill_fd(int fd, off_t off, size_t len, int b)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	memset(buf, b, len);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	free(buf);
}

static void fill(const char *path, off_t off, size_t len, int b)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	fill_fd(fd, off, len, b);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* Fail unless a and b have the same size and bytes. */
static void assert_same_content(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	char *ba = malloc(MiB), *bb = malloc(MiB);
	off_t off = 0;

	assert_true(fa >= 0);
	assert_true(fb >= 0);
	assert_non_null(ba);
	assert_non_null(bb);
	for (;;) {
		ssize_t na = pread(fa, ba, MiB, off), nb = pread(fb, bb, MiB, off);

		assert_true(na >= 0);
		assert_int_equal(na, nb);
		if (na == 0)
			break;
		if (memcmp(ba, bb, (size_t)na) != 0) {
			print_error("'%s' and '%s' differ in the MiB at %lld\n", a, b, (long long)off);
			fail();
		}
		off += na;
	}
	close(fa);
	close(fb);
	free(ba);
	free(bb);
}

/* True when every byte of [off, off + len) of path is b. */
static bool reads_all(const char *path, off_t off, size_t len, int b)
{
	int fd = open(path, O_RDONLY);
	unsigned char *buf = malloc(len);
	bool all = true;

	assert_true(fd >= 0);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (unsigned char)b)
			all = false;
	close(fd);
	free(buf);
	return all;
}

static struct stat stat_of(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb;
}

static unsigned long long data_bytes(const char *path)
{
	unsigned long long n = ~0ULL;

	if (sm_copy_data_bytes(path, &n) != 0) {
		print_error("sm_copy_data_bytes('%s'): %s\n", path, sm_error_message());
		fail();
	}
	return n;
}

static unsigned long long data_bytes_range(const char *path, off_t off, off_t len)
{
	unsigned long long n = ~0ULL;

	if (sm_copy_data_bytes_range(path, (unsigned long long)off, (unsigned long long)len,
				     &n) != 0) {
		print_error("sm_copy_data_bytes_range('%s'): %s\n", path, sm_error_message());
		fail();
	}
	return n;
}

static uint64_t checksum_range(const char *path, unsigned long long off, unsigned long long len)
{
	uint64_t sum = 0;

	if (sm_copy_checksum_range(path, off, len, &sum) != 0) {
		print_error("sm_copy_checksum_range('%s'): %s\n", path, sm_error_message());
		fail();
	}
	return sum;
}

static uint64_t empty_checksum(void)
{
	struct sm_checksum c;
	uint64_t v;

	sm_checksum_init(&c);
	v = sm_checksum_final(&c);
	sm_checksum_release(&c);
	return v;
}

/* The checksum of path's [off, off + len) as checksum.h defines it, from a
 * plain buffered read of every byte here: holes read as zeros, which count
 * as holes do.  Not the copier's code, so a fault there cannot agree with it. */
static uint64_t reference_checksum(const char *path, off_t off, off_t len)
{
	int fd = open(path, O_RDONLY);
	char *buf = malloc(MiB);
	struct sm_checksum c;
	uint64_t v;

	assert_true(fd >= 0);
	assert_non_null(buf);
	sm_checksum_init(&c);
	for (off_t end = off + len; off < end;) {
		ssize_t n = pread(fd, buf, (size_t)(end - off < MiB ? end - off : MiB), off);

		assert_true(n >= 0);
		if (n == 0)
			break;
		sm_checksum_update(&c, (unsigned long long)off, buf, (size_t)n);
		off += n;
	}
	v = sm_checksum_final(&c);
	sm_checksum_release(&c);
	free(buf);
	close(fd);
	return v;
}

/* --- the page cache, descriptors and threads ---------------------------- */

/* Pages of fd's [off, off + len) in the page cache (off page-aligned);
 * mapping the file faults nothing in, mincore() only looks. */
static size_t cached_pages(int fd, off_t off, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (len + page - 1) / page, cached = 0;
	unsigned char *vec;
	void *map;

	if (len == 0)
		return 0;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
	assert_true(map != MAP_FAILED);
	vec = malloc(n);
	assert_non_null(vec);
	assert_int_equal(mincore(map, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		cached += vec[i] & 1;
	free(vec);
	munmap(map, len);
	return cached;
}

static size_t cached_pages_of(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t n;

	assert_true(fd >= 0);
	n = cached_pages(fd, 0, (size_t)stat_of(path).st_size);
	close(fd);
	return n;
}

/* How many times the page cache was dropped on this host (echo 1 or 3 >
 * /proc/sys/vm/drop_caches, as bench/ does): a test that needs pages to stay
 * cached cannot tell whether a copy left none or they were dropped since. */
static unsigned long page_cache_drops(void)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char line[128];
	unsigned long n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "drop_pagecache %lu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* What O_DIRECT does in the test directory: write a block with it and look. */
static enum direct_io direct_io(struct fixture *f)
{
	char *probe;
	void *buf = NULL;
	int fd;

	if (f->direct != DIRECT_UNKNOWN)
		return f->direct;
	probe = path_in(f, "direct.probe");
	make_file(probe, "");
	fd = open(probe, O_RDWR | O_DIRECT);
	if (fd < 0) {
		assert_int_equal(errno, EINVAL);
		return f->direct = DIRECT_NONE;
	}
	assert_int_equal(posix_memalign(&buf, 4096, 4096), 0);
	memset(buf, 1, 4096);
	assert_int_equal(pwrite(fd, buf, 4096, 0), 4096);
	f->direct = cached_pages(fd, 0, 4096) ? DIRECT_CACHED : DIRECT_UNCACHED;
	free(buf);
	close(fd);
	return f->direct;
}

static bool cache_bypassed(struct fixture *f)
{
	return direct_io(f) == DIRECT_UNCACHED;
}

/* Make path durable and drop it from the page cache, so that what a copy
 * reads through the cache shows (where files are not the page cache). */
static void drop_cache(struct fixture *f, const char *path)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fdatasync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
	if (cache_bypassed(f))
		assert_int_equal(cached_pages_of(path), 0);
}

static void direct_or_skip(struct fixture *f)
{
	if (direct_io(f) == DIRECT_NONE)
		skip();
}

/* The direct path by io_uring, where the kernel allows it (not faked away). */
static void uring_or_skip(struct fixture *f)
{
	direct_or_skip(f);
	if (!uring_ok)
		skip();
	fake_uring_errno = 0;
}

/* The method a test run once per path copies by (skipped where it cannot). */
static enum sm_copy_method method_of(struct fixture *f)
{
	if (f->method == SM_COPY_DIRECT)
		direct_or_skip(f);
	if (f->method == SM_COPY_DIRECT_URING)
		uring_or_skip(f);
	return f->method;
}

/* Either engine of the direct path. */
static bool is_direct(enum sm_copy_method m)
{
	return m == SM_COPY_DIRECT || m == SM_COPY_DIRECT_URING;
}

/* The direct path's request size and requests ahead, by engine. */
static off_t unit_of(enum sm_copy_method m)
{
	return m == SM_COPY_DIRECT_URING ? URING_UNIT : DIRECT_UNIT;
}

static off_t depth_of(enum sm_copy_method m)
{
	return m == SM_COPY_DIRECT_URING ? SM_COPY_URING_DEPTH : SM_COPY_DIRECT_DEPTH;
}

/* 1 when the chunk [off, off + len) of src holds the file's last partial
 * block and that block is data (the direct path writes it through the page
 * cache, O_DIRECT needing whole blocks), else 0. */
static size_t tail_pages(const char *src, unsigned long long off, unsigned long long len)
{
	off_t size = stat_of(src).st_size, tail = size % 4096;

	if (tail == 0 || (off_t)(off + len) != size)
		return 0;
	return data_bytes_range(src, size - tail, tail) > 0;
}

/* Entries of a /proc/self directory (the descriptor that reads it counts,
 * the same every time). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* No descriptor left open and no thread left running since fds and threads
 * were counted: a reader thread that was never stopped would still be
 * listed (a joined one may linger a moment while it exits: 10 s at most,
 * for a loaded machine). */
static void assert_nothing_left(int fds, int threads)
{
	int now = count_entries("/proc/self/task");

	for (int i = 0; i < 1000 && now > threads; i++) {
		usleep(10000);
		now = count_entries("/proc/self/task");
	}
	assert_int_equal(now, threads);
	assert_int_equal(count_entries("/proc/self/fd"), fds);
}

/* Everything the callbacks saw, and what they should do. */
struct recorder {
	/* progress */
	int calls;
	bool cancel;
	bool went_back;        /* done decreased or passed total */
	bool done_not_chunks;  /* done fell below base + the chunks reported so far */
	bool bad_rate;
	unsigned long long done, total;
	unsigned long long base;  /* data bytes of the chunks resumed over */
	/* chunk_done */
	size_t nchunks;
	struct sm_copy_chunk chunks[MAX_CHUNKS];
	unsigned long long chunk_data;  /* sum of the chunks' data_bytes */
	unsigned long long next_index;
	bool out_of_order;
	long long fail_at;  /* chunk_done returns -1 for this index; -1 never */
	/* Every call in order: 'w' after_write (attempt 0), 'r' (attempt 1),
	 * 'd' chunk_durable, 'D' chunk_done; with the chunk index. */
	size_t nevents;
	struct {
		char kind;
		unsigned long long index;
	} events[4 * MAX_CHUNKS];
	const char *shrink;  /* truncated to shrink_to at the first report */
	off_t shrink_to;
	long long shrunk_at;  /* progress done when it was; -1 not yet */
	/* after_write */
	bool no_after_write;  /* copy without it, as snapmove does */
	int writes[MAX_CHUNKS][2];
	size_t cached[MAX_CHUNKS][2];  /* pages of the chunk in the page cache */
	unsigned long drops;  /* page_cache_drops() when the copy began */
	long long corrupt_index;  /* -1: none */
	off_t corrupt_off;        /* absolute file offset */
	unsigned corrupt_attempts;  /* bit n: corrupt on attempt n */
};

static void rec_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	r->fail_at = -1;
	r->corrupt_index = -1;
	r->shrunk_at = -1;
}

static void log_event(struct recorder *r, char kind, unsigned long long index)
{
	assert_true(r->nevents < SM_ARRAY_LEN(r->events));
	r->events[r->nevents].kind = kind;
	r->events[r->nevents++].index = index;
}

/* Where the first call kind for chunk index stands in r->events; -1 none. */
static long event_at(const struct recorder *r, char kind, unsigned long long index)
{
	for (size_t i = 0; i < r->nevents; i++)
		if (r->events[i].kind == kind && r->events[i].index == index)
			return (long)i;
	return -1;
}

static size_t events_of(const struct recorder *r, char kind, unsigned long long index)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nevents; i++)
		n += r->events[i].kind == kind && r->events[i].index == index;
	return n;
}

static bool on_progress(void *ctx, const struct sm_copy_progress *p)
{
	struct recorder *r = ctx;

	if (p->done < r->done || p->done > p->total)
		r->went_back = true;
	if (p->done < r->base + r->chunk_data)
		r->done_not_chunks = true;
	if (p->rate < 0 || (p->eta < 0 && p->eta != -1))
		r->bad_rate = true;
	r->calls++;
	r->done = p->done;
	r->total = p->total;
	if (r->shrink) {
		assert_int_equal(truncate(r->shrink, r->shrink_to), 0);
		r->shrink = NULL;
		r->shrunk_at = (long long)p->done;
	}
	return !r->cancel;
}

static int on_chunk(void *ctx, const struct sm_copy_chunk *c)
{
	struct recorder *r = ctx;

	if (c->index != r->next_index)
		r->out_of_order = true;
	r->next_index = c->index + 1;
	assert_true(r->nchunks < MAX_CHUNKS);
	r->chunks[r->nchunks++] = *c;
	r->chunk_data += c->data_bytes;
	log_event(r, 'D', c->index);
	return (long long)c->index == r->fail_at ? -1 : 0;
}

static int on_durable(void *ctx, const struct sm_copy_chunk *c)
{
	log_event(ctx, 'd', c->index);
	return 0;
}

static void on_write(void *ctx, int dst_fd, const struct sm_copy_chunk *c, int attempt)
{
	struct recorder *r = ctx;

	assert_true(c->index < MAX_CHUNKS);
	assert_true(attempt == 0 || attempt == 1);
	r->writes[c->index][attempt]++;
	log_event(r, attempt ? 'r' : 'w', c->index);
	r->cached[c->index][attempt] = cached_pages(dst_fd, (off_t)c->offset, (size_t)c->length);
	if ((long long)c->index == r->corrupt_index && (r->corrupt_attempts & (1u << attempt)))
		fill_fd(dst_fd, r->corrupt_off, 4 * KiB, 0xEE);
}

static const struct sm_copy_ops rec_ops = {
	.progress = on_progress,
	.chunk_done = on_chunk,
	.chunk_durable = on_durable,
	.after_write = on_write,
};

/* Without after_write the copier neither syncs nor checks a chunk of a fresh
 * copy that is all hole. */
static const struct sm_copy_ops rec_ops_no_write = {
	.progress = on_progress,
	.chunk_done = on_chunk,
	.chunk_durable = on_durable,
};

/* pthread_create as the copier calls it (this definition comes before the C
 * library's at link time): the real one, unless a test set fail_thread to
 * n > 0; then the n-th call from then on fails with EAGAIN, as when the
 * system is out of threads.  Atomic: the direct path's check starts its own
 * reader from its thread. */
static int fail_thread;
static int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	if (__atomic_load_n(&fail_thread, __ATOMIC_SEQ_CST) > 0 &&
	    __atomic_sub_fetch(&fail_thread, 1, __ATOMIC_SEQ_CST) == 0)
		return EAGAIN;
	return real_pthread_create(thread, attr, fn, arg);
}

/* sm_copy_run with the recorder; it must leave nothing behind, whatever it
 * returns. */
static int run_copy(const struct sm_copy_req *req, struct recorder *r,
		    struct sm_copy_result *res)
{
	int fds = count_entries("/proc/self/fd"), threads = count_entries("/proc/self/task");
	int rc;

	sm_error_clear();
	r->drops = page_cache_drops();
	rc = sm_copy_run(req, r->no_after_write ? &rec_ops_no_write : &rec_ops, r, res);
	assert_nothing_left(fds, threads);
	return rc;
}

static void copy_ok(const struct sm_copy_req *req, struct recorder *r,
		    struct sm_copy_result *res)
{
	if (run_copy(req, r, res) != 0) {
		print_error("copying '%s' to '%s' failed: %s\n", req->src, req->dst,
			    sm_error_message());
		fail();
	}
}

/* The method AUTO should pick here; SM_COPY_METHOD_LAST: do not check. */
static enum sm_copy_method auto_method(struct fixture *f)
{
	return on_ext4(f) ? SM_COPY_DIRECT : SM_COPY_METHOD_LAST;
}

/* Chunk c's write on attempt went by path m, as the page cache shows it
 * right after (before the sync and the verification): the direct path leaves
 * none of the chunk there but the file's last partial block (where O_DIRECT
 * bypasses the cache); the buffered loop leaves at least every page it wrote
 * (unless the page cache was dropped since the copy began). */
static void assert_written_by(struct fixture *f, const struct recorder *r, const char *src,
			      const struct sm_copy_chunk *c, int attempt, enum sm_copy_method m)
{
	size_t cached = r->cached[c->index][attempt];

	assert_int_equal(r->writes[c->index][attempt], 1);
	if (is_direct(m) && cache_bypassed(f))
		assert_true(cached <= tail_pages(src, c->offset, c->length));
	else if (m == SM_COPY_READWRITE && page_cache_drops() == r->drops)
		assert_true(cached >= (c->data_bytes + 4095) / 4096);
}

/* What a copy by m promises of each chunk r saw, written once: it went by
 * that path, and its checksum is both files' by sm_copy_checksum_range
 * ('snapmove verify') and by a plain read here.  A direct copy, and
 * sm_copy_checksum_range after it, read from the storage: neither file is in
 * the page cache but the destination's last partial block (src must have been
 * dropped from it before the copy). */
static void assert_chunks(struct fixture *f, const char *src, const char *dst,
			  const struct recorder *r, enum sm_copy_method m)
{
	for (size_t i = 0; i < r->nchunks; i++) {
		const struct sm_copy_chunk *c = &r->chunks[i];

		assert_written_by(f, r, src, c, 0, m);
		assert_int_equal(c->checksum, checksum_range(src, c->offset, c->length));
		assert_int_equal(c->checksum, checksum_range(dst, c->offset, c->length));
	}
	if (is_direct(m) && cache_bypassed(f)) {
		off_t size = stat_of(src).st_size;

		assert_int_equal(cached_pages_of(src), 0);
		assert_true(cached_pages_of(dst) <= tail_pages(src, 0, (unsigned long long)size));
	}
	for (size_t i = 0; i < r->nchunks; i++) {
		const struct sm_copy_chunk *c = &r->chunks[i];

		assert_int_equal(c->checksum, reference_checksum(src, (off_t)c->offset,
								 (off_t)c->length));
	}
}

/* Copy src to a fresh empty dst by method in chunks of chunk_size (0: the
 * default) and check everything a copy promises.  ran: the method that must
 * have run (SM_COPY_METHOD_LAST: any). */
static void copy_and_check(struct fixture *f, const char *src_name,
			   enum sm_copy_method method, unsigned long long chunk_size,
			   enum sm_copy_method ran, struct sm_copy_result *res)
{
	char name[256];
	char *src = path_in(f, src_name);
	char *dst = path_in(f, name_with(name, sizeof(name), src_name,
					 sm_copy_method_name(method)));
	struct sm_copy_req req = {
		.src = src,
		.dst = dst,
		.chunk_size = chunk_size,
		.verify = true,
		.method = method,
	};
	unsigned long long chunk = chunk_size ? chunk_size : SM_COPY_CHUNK;
	struct recorder r;
	struct stat ss, ds;
	unsigned long long want = data_bytes(src);

	rec_init(&r);
	make_file(dst, "");
	drop_cache(f, src);
	copy_ok(&req, &r, res);
	/* Verified at once, by the path expected. */
	assert_int_equal(res->recopied, 0);
	assert_true(res->method != SM_COPY_AUTO);
	if (ran != SM_COPY_METHOD_LAST)
		assert_string_equal(sm_copy_method_name(res->method), sm_copy_method_name(ran));
	ss = stat_of(src);
	ds = stat_of(dst);
	assert_int_equal(ds.st_size, ss.st_size);
	/* Before anything here reads the files through the page cache. */
	assert_chunks(f, src, dst, &r, res->method);
	assert_same_content(src, dst);
	/* Holes stay holes: no more data extents than the source, and no more
	 * allocation plus one chunk (capped at 1 MiB, so that with the default
	 * 64 MiB chunk the check still means something). */
	assert_true(data_bytes(dst) <= want);
	assert_true((long long)ds.st_blocks * 512 <=
		    (long long)ss.st_blocks * 512 + (long long)(chunk < MiB ? chunk : MiB));
	assert_int_equal(res->size, (unsigned long long)ss.st_size);
	assert_int_equal(res->data_bytes, want);
	assert_int_equal(res->copied_bytes, want);
	assert_true(res->read_bytes >= want);
	/* The loops that checksum what they copy read the source once. */
	if (res->method == SM_COPY_READWRITE || is_direct(res->method))
		assert_int_equal(res->read_bytes, want);
	assert_int_equal(res->chunks, ((unsigned long long)ss.st_size + chunk - 1) / chunk);
	assert_int_equal(res->chunks_skipped, 0);
	assert_true(res->seconds >= 0);
	/* Every chunk reported once, in order, adding up to the data. */
	assert_int_equal(r.nchunks, res->chunks);
	assert_false(r.out_of_order);
	assert_int_equal(r.chunk_data, want);
	for (size_t i = 0; i < r.nchunks; i++) {
		assert_int_equal(r.chunks[i].offset, i * chunk);
		assert_int_equal(r.chunks[i].length, ss.st_size - (off_t)(i * chunk) < (off_t)chunk
					     ? (unsigned long long)ss.st_size - i * chunk : chunk);
	}
	/* Progress ends with everything done. */
	assert_true(r.calls >= 1);
	assert_false(r.went_back);
	assert_false(r.done_not_chunks);
	assert_false(r.bad_rate);
	assert_int_equal(r.done, want);
	assert_int_equal(r.total, want);
}

static const struct extent sparse_ext[] = {
	{ 0, 1 * MiB },
	{ 20 * MiB, 3 * MiB },
	{ 30 * MiB + 64 * KiB, 4 * KiB },
};

/* 40 MiB long: the last 10 MiB are a hole after the last extent. */
static void make_sparse_40(struct fixture *f, const char *name)
{
	char *src = path_in(f, name);
	unsigned long long n;

	make_sparse(src, 40 * MiB, sparse_ext, SM_ARRAY_LEN(sparse_ext), 1);
	n = data_bytes(src);
	assert_true(n >= (unsigned long long)(4 * MiB + 4 * KiB));
	assert_true(n < (unsigned long long)(20 * MiB));
}

static void test_sparse_file(void **state)
{
	struct fixture *f = *state;
	struct sm_copy_result res;

	make_sparse_40(f, "sparse.img");
	copy_and_check(f, "sparse.img", SM_COPY_AUTO, 0, auto_method(f), &res);
	assert_int_equal(res.chunks, 1);
}

static void test_all_hole(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "hole.img");
	char *dst = path_in(f, "hole.img.auto");
	struct sm_copy_result res;

	make_sparse(src, 16 * MiB, NULL, 0, 0);
	assert_int_equal(data_bytes(src), 0);
	copy_and_check(f, "hole.img", SM_COPY_AUTO, 4 * MiB, auto_method(f), &res);
	assert_int_equal(stat_of(dst).st_size, 16 * MiB);
	assert_int_equal(data_bytes(dst), 0);
	assert_int_equal(res.chunks, 4);
	assert_int_equal(res.copied_bytes, 0);
}

static void test_dense_unaligned(void **state)
{
	struct fixture *f = *state;
	const off_t size = 100 * KiB + 123;
	const struct extent ext[] = { { 0, size } };
	char *src = path_in(f, "dense.img");
	struct sm_copy_result res;

	make_sparse(src, size, ext, 1, 7);
	assert_int_equal(data_bytes(src), (unsigned long long)size);
	copy_and_check(f, "dense.img", SM_COPY_AUTO, 0, auto_method(f), &res);
	/* And in 4 KiB chunks, the last one short, by both loops. */
	copy_and_check(f, "dense.img", SM_COPY_READWRITE, 4 * KiB, SM_COPY_READWRITE, &res);
	assert_int_equal(res.chunks, 26);
	direct_or_skip(f);
	copy_and_check(f, "dense.img", SM_COPY_DIRECT, 4 * KiB, SM_COPY_DIRECT, &res);
	assert_int_equal(res.chunks, 26);
}

static void test_empty_file(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "empty.img");
	struct sm_copy_result res;

	make_file(src, "");
	assert_int_equal(data_bytes(src), 0);
	copy_and_check(f, "empty.img", SM_COPY_AUTO, 0, auto_method(f), &res);
	assert_int_equal(res.chunks, 0);
}

/* Whatever the destination held is gone: it ends up exactly the source. */
static void test_overwrites_destination(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 6 * MiB, 512 * KiB } };
	const struct extent junk[] = { { 0, 4 * MiB }, { 9 * MiB, 1 * MiB } };
	char *src = path_in(f, "src.img");
	char *dst = path_in(f, "dst.img");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true };
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 8 * MiB, ext, SM_ARRAY_LEN(ext), 3);
	/* Longer than the source, with data where the source has holes. */
	make_sparse(dst, 12 * MiB, junk, SM_ARRAY_LEN(junk), 99);
	rec_init(&r);
	copy_ok(&req, &r, &res);
	assert_int_equal(stat_of(dst).st_size, 8 * MiB);
	assert_same_content(src, dst);
	assert_int_equal(res.data_bytes, data_bytes(src));
	/* The junk where the source has holes is holes again, not zeros written. */
	assert_true(data_bytes(dst) <= data_bytes(src));
}

/* Run by each loop; run_copy checks that the direct path's reader thread
 * was stopped (test_direct_unit stops one that is waiting for room). */
static void test_cancel(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 20 * MiB, 3 * MiB } };
	char *src = path_in(f, "cancel.img");
	char *dst = path_in(f, "cancel.img.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true,
		.method = method_of(f),
	};
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 24 * MiB, ext, SM_ARRAY_LEN(ext), 5);
	make_file(dst, "");
	rec_init(&r);
	r.cancel = true;
	assert_int_equal(run_copy(&req, &r, &res), -1);
	assert_contains(sm_error_message(), "interrupted");
	assert_contains(sm_error_message(), src);
	assert_int_equal(res.method, req.method);
	/* Asked once, stopped at once, before the copy was complete. */
	assert_int_equal(r.calls, 1);
	assert_true(r.done < data_bytes(src));
	assert_int_equal(r.total, data_bytes(src));
	assert_true(res.copied_bytes > 0);
	assert_true(res.copied_bytes < data_bytes(src));
	assert_int_equal(r.nchunks, 0);
}

static void test_symlink_destination_refused(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 64 * KiB } };
	char *src = path_in(f, "src.img");
	char *victim = path_in(f, "victim");
	char *dst = path_in(f, "link.img");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true };
	struct sm_copy_result res;
	char *content;
	struct stat sb;

	make_sparse(src, 1 * MiB, ext, 1, 11);
	make_file(victim, "precious data\n");
	assert_int_equal(symlink(victim, dst), 0);
	sm_error_clear();
	assert_int_equal(sm_copy_run(&req, NULL, NULL, &res), -1);
	assert_contains(sm_error_message(), dst);
	/* The link is still a link and its target untouched. */
	assert_int_equal(lstat(dst, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	content = unit_read_file(victim);
	assert_string_equal(content, "precious data\n");
	free(content);
}

static void test_missing_source(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "no-such-image.qcow2");
	char *dst = path_in(f, "dst.img");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true };
	struct sm_copy_result res;
	unsigned long long n = 1;
	uint64_t sum = 1;
	char *content;

	make_file(dst, "keep me\n");
	sm_error_clear();
	assert_int_equal(sm_copy_run(&req, NULL, NULL, &res), -1);
	assert_contains(sm_error_message(), src);
	assert_contains(sm_error_message(), strerror(ENOENT));
	content = unit_read_file(dst);
	assert_string_equal(content, "keep me\n");
	free(content);

	sm_error_clear();
	assert_int_equal(sm_copy_data_bytes(src, &n), -1);
	assert_contains(sm_error_message(), src);
	sm_error_clear();
	assert_int_equal(sm_copy_data_bytes_range(src, 0, MiB, &n), -1);
	assert_contains(sm_error_message(), src);
	sm_error_clear();
	assert_int_equal(sm_copy_checksum_range(src, 0, MiB, &sum), -1);
	assert_contains(sm_error_message(), src);
}

/* The destination must exist: the copier never creates files. */
static void test_missing_destination(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 64 * KiB } };
	char *src = path_in(f, "src.img");
	char *dst = path_in(f, "not-created.img");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true };
	struct sm_copy_result res;
	struct stat sb;

	make_sparse(src, 1 * MiB, ext, 1, 13);
	sm_error_clear();
	assert_int_equal(sm_copy_run(&req, NULL, NULL, &res), -1);
	assert_contains(sm_error_message(), dst);
	assert_int_equal(lstat(dst, &sb), -1);
	assert_int_equal(errno, ENOENT);
}

/* --- copy paths ------------------------------------------------------- */

static void test_method_names(void **state)
{
	static const char *const names[] = { "auto", "reflink", "copy_file_range", "readwrite",
						   "direct", "direct-uring" };

	(void)state;
	assert_int_equal(SM_ARRAY_LEN(names), SM_COPY_METHOD_LAST);
	for (int m = 0; m < SM_COPY_METHOD_LAST; m++) {
		assert_string_equal(sm_copy_method_name((enum sm_copy_method)m), names[m]);
		assert_int_equal(sm_copy_method_from_name(names[m]), m);
	}
	assert_string_equal(sm_copy_method_name(SM_COPY_METHOD_LAST), "unknown");
	assert_int_equal(sm_copy_method_from_name("unknown"), -1);
	assert_int_equal(sm_copy_method_from_name(""), -1);
	assert_int_equal(sm_copy_method_from_name("copy-file-range"), -1);
	assert_int_equal(sm_copy_method_from_name("read"), -1);
}

static void test_method_readwrite(void **state)
{
	struct fixture *f = *state;
	struct sm_copy_result res;

	make_sparse_40(f, "rw.img");
	copy_and_check(f, "rw.img", SM_COPY_READWRITE, 1 * MiB, SM_COPY_READWRITE, &res);
	/* Read once: the checksum is taken from the bytes copied. */
	assert_int_equal(res.read_bytes, res.data_bytes);
}

static void test_method_file_range(void **state)
{
	struct fixture *f = *state;
	struct sm_copy_result res;

	make_sparse_40(f, "cfr.img");
	copy_and_check(f, "cfr.img", SM_COPY_FILE_RANGE, 1 * MiB, SM_COPY_FILE_RANGE, &res);
}

static void test_method_direct(void **state)
{
	struct fixture *f = *state;
	struct sm_copy_result res;

	direct_or_skip(f);
	make_sparse_40(f, "direct.img");
	copy_and_check(f, "direct.img", SM_COPY_DIRECT, 1 * MiB, SM_COPY_DIRECT, &res);
	/* Read once: the checksum is taken from the bytes copied. */
	assert_int_equal(res.read_bytes, res.data_bytes);
}

/* Sizes the direct path must get right: under a block, off a block boundary,
 * exactly one direct request and one block, more requests than the reader
 * keeps ahead; the last partial block data after a hole, or a hole after data
 * that starts and ends off block boundaries.  copy_and_check holds each chunk
 * checksum against sm_copy_checksum_range and a plain read of both files. */
static void test_direct_odd_sizes(void **state)
{
	static const struct {
		off_t size;
		struct extent ext;
	} cases[] = {
		{ 1, { 0, 1 } },
		{ 100, { 0, 100 } },
		{ 4095, { 0, 4095 } },
		{ 4096, { 0, 4096 } },
		{ 4097, { 0, 4097 } },
		{ 100 * KiB + 123, { 0, 100 * KiB + 123 } },
		{ DIRECT_UNIT + 4 * KiB, { 0, DIRECT_UNIT + 4 * KiB } },
		{ 4 * DIRECT_UNIT + 4 * KiB + 5, { 0, 4 * DIRECT_UNIT + 4 * KiB + 5 } },
		{ 8 * MiB + 100, { 8 * MiB, 100 } },
		{ 8 * MiB + 100, { 1 * MiB + 5, DIRECT_UNIT } },
	};
	struct fixture *f = *state;
	struct sm_copy_result res;
	enum sm_copy_method m = method_of(f);

	for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
		char name[64];

		snprintf(name, sizeof(name), "odd%zu.img", i);
		make_sparse(path_in(f, name), cases[i].size, &cases[i].ext, 1, 59 + (unsigned)i);
		/* One chunk, large enough for more requests than are read ahead. */
		copy_and_check(f, name, m, 8 * (unsigned long long)DIRECT_UNIT, m, &res);
		assert_int_equal(res.chunks, 1);
	}
}

/* ext4 has no reflinks: AUTO tries a clone, then copies by direct I/O. */
static void test_method_auto_falls_back(void **state)
{
	struct fixture *f = *state;
	struct sm_copy_result res;

	if (!on_ext4(f))
		skip();
	make_sparse_40(f, "auto.img");
	copy_and_check(f, "auto.img", SM_COPY_AUTO, 0, SM_COPY_DIRECT, &res);
}

static void test_method_reflink_refused(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 64 * KiB } };
	char *src = path_in(f, "src.img");
	char *dst = path_in(f, "dst.img");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .verify = true, .method = SM_COPY_REFLINK,
	};
	struct sm_copy_result res;
	struct recorder r;

	if (!on_ext4(f))
		skip();
	make_sparse(src, 1 * MiB, ext, 1, 17);
	make_file(dst, "");
	rec_init(&r);
	sm_error_clear();
	assert_int_equal(sm_copy_run(&req, &rec_ops, &r, &res), -1);
	assert_contains(sm_error_message(), "reflink");
	assert_contains(sm_error_message(), src);
	assert_contains(sm_error_message(), dst);
	/* Nothing reported as done. */
	assert_int_equal(r.nchunks, 0);
}

/* Asked for by name, the direct path is refused where a file cannot be
 * opened O_DIRECT, naming the file; AUTO takes the buffered loop instead.
 * tmpfs has O_DIRECT since Linux 6.6: the file system without it here is
 * sysfs, so the source is a sysfs attribute (4096 bytes by stat, fewer when
 * read).  The destination's side is not covered: no writable file system
 * without O_DIRECT is mounted. */
static void test_method_direct_refused(void **state)
{
	static const char *const attrs[] = {
		"/sys/devices/system/cpu/online",
		"/sys/kernel/mm/transparent_hugepage/enabled",
	};
	struct fixture *f = *state;
	const char *src = NULL;
	char *dst = path_in(f, "dst.img");
	struct sm_copy_req req = { .dst = dst, .verify = true, .method = SM_COPY_DIRECT };
	struct sm_copy_result res;
	struct recorder r;

	for (size_t i = 0; i < SM_ARRAY_LEN(attrs) && !src; i++) {
		int fd = open(attrs[i], O_RDONLY | O_DIRECT);

		if (fd >= 0)
			close(fd);
		else if (errno == EINVAL && access(attrs[i], R_OK) == 0)
			src = attrs[i];
	}
	if (!src)
		skip();
	req.src = src;
	make_file(dst, "");
	rec_init(&r);
	assert_int_equal(run_copy(&req, &r, &res), -1);
	assert_contains(sm_error_message(), src);
	assert_contains(sm_error_message(), "O_DIRECT");
	assert_contains(sm_error_message(), "leave the copy method on auto");
	assert_int_equal(r.nchunks, 0);
	assert_int_equal(r.writes[0][0], 0);

	/* Whether the buffered loop then copies the attribute is not this
	 * test's business (it reads shorter than its size). */
	req.method = SM_COPY_AUTO;
	rec_init(&r);
	(void)run_copy(&req, &r, &res);
	assert_not_contains(sm_error_message(), "O_DIRECT");
	assert_int_equal(res.method, SM_COPY_READWRITE);
}

/* --- chunks ----------------------------------------------------------- */

/* 10 MiB and a 12345-byte tail, in 1 MiB chunks: extents inside a chunk,
 * across chunk boundaries, filling a chunk, and chunks that are all hole. */
static const struct extent chunky_ext[] = {
	{ 0, 4 * KiB },                        /* chunk 0 */
	{ 1 * MiB + 512 * KiB, 1 * MiB },      /* chunks 1 and 2, half each */
	{ 4 * MiB - 8 * KiB, 16 * KiB },       /* chunks 3 and 4, 8 KiB each */
	{ 6 * MiB, 1 * MiB },                  /* chunk 6, all of it */
	{ 9 * MiB + 100 * KiB, 200 * KiB + 5 },  /* chunk 9, up to a block's end */
	{ 10 * MiB, 12345 },                   /* chunk 10, the short tail */
};
static const unsigned long long chunky_data[] = {
	4 * KiB, 512 * KiB, 512 * KiB, 8 * KiB, 8 * KiB, 0, 1 * MiB, 0, 0, 204 * KiB, 12345,
};
#define CHUNKY_SIZE (10 * MiB + 12345)

static void test_chunks(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "chunky.img");
	char *dst = path_in(f, "chunky.copy");
	const size_t n = SM_ARRAY_LEN(chunky_data);
	const uint64_t empty = empty_checksum();
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true,
		.method = method_of(f),
	};
	struct sm_copy_result res;
	struct recorder r;
	unsigned long long sum = 0;

	make_sparse(src, CHUNKY_SIZE, chunky_ext, SM_ARRAY_LEN(chunky_ext), 21);
	drop_cache(f, src);
	make_file(dst, "");
	rec_init(&r);
	copy_ok(&req, &r, &res);
	assert_int_equal(res.recopied, 0);
	assert_int_equal(res.method, req.method);
	/* Each chunk by this path, its checksum both files'. */
	assert_chunks(f, src, dst, &r, req.method);
	assert_same_content(src, dst);
	assert_int_equal(res.chunks, n);
	assert_int_equal(r.nchunks, n);
	assert_false(r.out_of_order);
	for (size_t i = 0; i < n; i++) {
		const struct sm_copy_chunk *c = &r.chunks[i];
		unsigned long long off = i * (unsigned long long)MiB;
		unsigned long long len = i + 1 < n ? (unsigned long long)MiB : 12345;

		assert_int_equal(c->index, i);
		assert_int_equal(c->offset, off);
		assert_int_equal(c->length, len);
		assert_int_equal(c->data_bytes, chunky_data[i]);
		assert_int_equal(c->data_bytes, data_bytes_range(src, (off_t)off, (off_t)len));
		sum += c->data_bytes;
		if (c->data_bytes)
			assert_int_not_equal(c->checksum, empty);
		else
			assert_int_equal(c->checksum, empty);
		/* Written once, verified at once. */
		assert_int_equal(r.writes[i][0], 1);
		assert_int_equal(r.writes[i][1], 0);
	}
	/* Chunks 1 and 2 hold equal amounts of different data at different places. */
	assert_int_not_equal(r.chunks[1].checksum, r.chunks[2].checksum);
	assert_int_equal(sum, res.data_bytes);
	assert_int_equal(sum, data_bytes(src));
	assert_int_equal(res.copied_bytes, sum);
	/* Read once: the checksum is taken from the bytes copied. */
	assert_int_equal(res.read_bytes, sum);
}

/* The chunky copy as snapmove runs it, without after_write: the chunks that
 * are all hole are reported done at once (on the direct path between the
 * checks of the chunks around them), in order, never durable alone. */
static void test_hole_chunks_skipped(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "holes.img");
	char *dst = path_in(f, "holes.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true,
		.method = method_of(f),
	};
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, CHUNKY_SIZE, chunky_ext, SM_ARRAY_LEN(chunky_ext), 73);
	make_file(dst, "");
	rec_init(&r);
	r.no_after_write = true;
	copy_ok(&req, &r, &res);
	assert_same_content(src, dst);
	assert_int_equal(res.method, req.method);
	assert_int_equal(r.nchunks, SM_ARRAY_LEN(chunky_data));
	assert_false(r.out_of_order);
	for (size_t i = 0; i < r.nchunks; i++) {
		const struct sm_copy_chunk *c = &r.chunks[i];
		bool checked_later = is_direct(req.method) && chunky_data[i] > 0;

		assert_int_equal(c->data_bytes, chunky_data[i]);
		assert_int_equal(c->checksum, reference_checksum(src, (off_t)c->offset,
								 (off_t)c->length));
		assert_int_equal(events_of(&r, 'd', i), checked_later);
	}
	assert_int_equal(res.copied_bytes, res.data_bytes);
}

/* chunk_size is rounded down to whole 4 KiB blocks, and is at least one. */
static void test_chunk_size_rounded(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 64 * KiB } };
	char *src = path_in(f, "small.img");
	char *dst = path_in(f, "small.copy");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true };
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 3 * MiB, ext, 1, 23);
	make_file(dst, "");
	req.chunk_size = 1 * MiB + 100;
	rec_init(&r);
	copy_ok(&req, &r, &res);
	assert_int_equal(res.chunks, 3);
	assert_int_equal(r.chunks[1].offset, 1 * MiB);
	assert_int_equal(r.chunks[2].length, 1 * MiB);

	make_sparse(src, 64 * KiB, ext, 1, 23);
	req.chunk_size = 100;
	rec_init(&r);
	copy_ok(&req, &r, &res);
	assert_int_equal(res.chunks, 16);
	assert_int_equal(r.chunks[15].offset, 60 * KiB);
	assert_int_equal(r.chunks[15].length, 4 * KiB);
	assert_same_content(src, dst);
}

/* Holes and zeros checksum the same; any byte that differs shows. */
static void test_checksum_canonical(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 2 * MiB, 2 * MiB } };
	char *holed = path_in(f, "holed.img");
	char *zeroed = path_in(f, "zeroed.img");
	uint64_t h, z;

	make_sparse(holed, 4 * MiB, ext, SM_ARRAY_LEN(ext), 29);
	make_sparse(zeroed, 4 * MiB, ext, SM_ARRAY_LEN(ext), 29);
	fill(zeroed, 1 * MiB, 1 * MiB, 0);
	/* The premise: one has a real hole, the other data there. */
	assert_int_equal(data_bytes(holed), 3 * MiB);
	assert_int_equal(data_bytes(zeroed), 4 * MiB);
	assert_same_content(holed, zeroed);

	h = checksum_range(holed, 0, 4 * MiB);
	z = checksum_range(zeroed, 0, 4 * MiB);
	assert_int_equal(h, z);
	assert_int_not_equal(h, empty_checksum());
	assert_int_equal(checksum_range(holed, 1 * MiB, 1 * MiB), empty_checksum());
	assert_int_equal(checksum_range(zeroed, 1 * MiB, 1 * MiB), empty_checksum());
	/* A range past the end is clipped to the file. */
	assert_int_equal(checksum_range(holed, 0, 64 * MiB), h);

	/* One byte in the zeros... */
	fill(zeroed, 1 * MiB + 777, 1, 0x01);
	assert_int_not_equal(checksum_range(zeroed, 0, 4 * MiB), h);
	assert_int_not_equal(checksum_range(zeroed, 1 * MiB, 1 * MiB), empty_checksum());
	/* ...or one byte of data. */
	fill(zeroed, 1 * MiB + 777, 1, 0);
	assert_int_equal(checksum_range(zeroed, 0, 4 * MiB), h);
	fill(zeroed, 3 * MiB + 5, 1, pattern(3 * MiB + 5, 29) ^ 0x80);
	assert_int_not_equal(checksum_range(zeroed, 0, 4 * MiB), h);
}

/* sm_copy_checksum_range over lengths off block boundaries, ending in the
 * middle of the file, at its end or past it, from its start or a block in:
 * the checksum of those bytes, however it reads them (O_DIRECT reads whole
 * blocks, and whole requests of DIRECT_UNIT). */
static void test_checksum_range_lengths(void **state)
{
	static const off_t offsets[] = { 0, 4 * KiB, 12 * KiB };
	static const off_t lengths[] = {
		1, 100, 4095, 4096, 4097, 8191, 40000, DIRECT_UNIT, DIRECT_UNIT + 5, 2 * DIRECT_UNIT,
	};
	struct fixture *f = *state;
	const off_t size = DIRECT_UNIT + 64 * KiB + 123;
	const struct extent ext[] = { { 0, size } };
	char *src = path_in(f, "lengths.img");

	make_sparse(src, size, ext, 1, 71);
	for (size_t i = 0; i < SM_ARRAY_LEN(offsets); i++) {
		for (size_t k = 0; k < SM_ARRAY_LEN(lengths); k++) {
			unsigned long long off = (unsigned long long)offsets[i];
			unsigned long long len = (unsigned long long)lengths[k];
			uint64_t want = reference_checksum(src, offsets[i], lengths[k]);

			if (checksum_range(src, off, len) != want) {
				print_error("the checksum of [%llu, +%llu) is not its bytes'\n", off, len);
				fail();
			}
		}
	}
}

/* --- resume ----------------------------------------------------------- */

/* A copy stopped after chunk 3 was written but before it was journaled, with
 * chunk 3 then scribbled over, resumes from chunk 3 and reads nothing before. */
static void test_resume(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = {
		{ 0, 2 * MiB + 512 * KiB },
		{ 3 * MiB + 256 * KiB, 256 * KiB },  /* chunk 3: hole, data, hole, data, hole */
		{ 3 * MiB + 768 * KiB, 128 * KiB },
		{ 5 * MiB, 1 * MiB },
	};
	char *src = path_in(f, "resume.img");
	char *dst = path_in(f, "resume.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true,
		.method = method_of(f),
	};
	/* AUTO does not clone a resumed copy: it goes on by direct I/O. */
	enum sm_copy_method ran = req.method == SM_COPY_AUTO ? auto_method(f) : req.method;
	struct sm_copy_result res;
	struct recorder r;
	unsigned long long done_before, remaining;
	uint64_t chunk3_sum;

	make_sparse(src, 7 * MiB, ext, SM_ARRAY_LEN(ext), 31);
	drop_cache(f, src);
	make_file(dst, "");
	rec_init(&r);
	r.fail_at = 3;
	assert_int_equal(run_copy(&req, &r, &res), -1);
	assert_int_equal(r.nchunks, 4);
	assert_false(r.out_of_order);
	done_before = r.chunks[0].data_bytes + r.chunks[1].data_bytes + r.chunks[2].data_bytes;
	assert_int_equal(done_before, data_bytes_range(src, 0, 3 * MiB));
	chunk3_sum = r.chunks[3].checksum;

	/* What a crash may leave of an unjournaled chunk: anything. */
	fill(dst, 3 * MiB, 1 * MiB, 0xA5);
	remaining = data_bytes_range(src, 3 * MiB, 0);
	assert_int_equal(remaining, 384 * KiB + 1 * MiB);

	rec_init(&r);
	r.base = done_before;
	r.next_index = 3;
	req.resume_chunks = 3;
	copy_ok(&req, &r, &res);
	if (ran != SM_COPY_METHOD_LAST) {
		assert_int_equal(res.method, ran);
		assert_chunks(f, src, dst, &r, ran);
	}
	assert_same_content(src, dst);
	/* The source's holes in chunk 3 are not the garbage. */
	assert_true(reads_all(dst, 3 * MiB, 256 * KiB, 0));
	assert_true(reads_all(dst, 3 * MiB + 512 * KiB, 256 * KiB, 0));
	assert_true(reads_all(dst, 3 * MiB + 896 * KiB, 128 * KiB, 0));
	assert_int_equal(res.chunks_skipped, 3);
	assert_int_equal(res.chunks, 4);
	assert_int_equal(res.data_bytes, data_bytes(src));
	/* Only chunks 3.. were copied, and nothing before them read. */
	assert_true(res.copied_bytes <= remaining);
	assert_true(res.copied_bytes >= data_bytes_range(src, 3 * MiB, 1 * MiB));
	assert_true(res.read_bytes <= remaining);
	assert_int_equal(res.read_bytes, res.copied_bytes);
	/* Reported from chunk 3 on, with the same checksum as before. */
	assert_int_equal(r.nchunks, 4);
	assert_false(r.out_of_order);
	assert_int_equal(r.chunks[0].index, 3);
	assert_int_equal(r.chunks[0].checksum, chunk3_sum);
	assert_int_equal(r.chunks[0].checksum, checksum_range(dst, 3 * MiB, 1 * MiB));
	/* Progress counts the resumed chunks as done. */
	assert_false(r.went_back);
	assert_false(r.done_not_chunks);
	assert_int_equal(r.done, data_bytes(src));
	assert_int_equal(r.total, data_bytes(src));
}

/* --- verification ----------------------------------------------------- */

static const struct extent verify_ext[] = {
	{ 0, 512 * KiB },
	{ 2 * MiB, 1 * MiB },
	{ 3 * MiB + 512 * KiB, 256 * KiB },
};

struct verify_case {
	struct fixture *f;
	char *src, *dst;
	struct sm_copy_req req;
	struct recorder r;
	struct sm_copy_result res;
};

/* Chunk 2 (all data) is corrupted after it is written, on the attempts given. */
static void verify_setup(struct fixture *f, struct verify_case *v, const char *name,
			 unsigned attempts, bool verify)
{
	char dst_name[256];

	v->f = f;
	v->src = path_in(f, name);
	v->dst = path_in(f, name_with(dst_name, sizeof(dst_name), name, "copy"));
	make_sparse(v->src, 4 * MiB, verify_ext, SM_ARRAY_LEN(verify_ext), 37);
	make_file(v->dst, "");
	v->req = (struct sm_copy_req){
		.src = v->src, .dst = v->dst, .chunk_size = 1 * MiB, .verify = verify,
		.method = method_of(f),
	};
	rec_init(&v->r);
	v->r.corrupt_index = 2;
	v->r.corrupt_off = 2 * MiB + 8 * KiB;
	v->r.corrupt_attempts = attempts;
}

/* Chunk index (of the 4 MiB source, all reported) went by m on attempt. */
static void assert_verify_chunk_by(const struct verify_case *v, unsigned long long index,
				   int attempt, enum sm_copy_method m)
{
	const struct sm_copy_chunk c = {
		.index = index, .offset = index * MiB, .length = 1 * MiB,
		.data_bytes = data_bytes_range(v->src, (off_t)(index * MiB), 1 * MiB),
	};

	assert_written_by(v->f, &v->r, v->src, &c, attempt, m);
}

/* After a mismatch the chunk is copied again by the buffered loop (whatever
 * went wrong, not by the same path), and so is the rest of the copy: the
 * copier does not go back to the direct path, and the result names the
 * buffered loop.  The direct path checks a chunk while it copies the next,
 * so that one went by the direct path still. */
static void assert_recopied_by_readwrite(const struct verify_case *v, unsigned long long index)
{
	unsigned long long ahead = is_direct(v->req.method) ? 1 : 0;

	for (unsigned long long i = 0; i < 4; i++)
		assert_verify_chunk_by(v, i, 0, i <= index + ahead ? v->req.method
								  : SM_COPY_READWRITE);
	assert_verify_chunk_by(v, index, 1, SM_COPY_READWRITE);
	assert_int_equal(v->res.method, SM_COPY_READWRITE);
	/* The chunk was read and copied twice, the others once. */
	assert_int_equal(v->res.copied_bytes,
			 v->res.data_bytes + data_bytes_range(v->src, (off_t)(index * MiB), 1 * MiB));
	assert_int_equal(v->res.read_bytes, v->res.copied_bytes);
}

static void test_verify_recopies_once(void **state)
{
	struct verify_case v;

	verify_setup(*state, &v, "recopy.img", 1u << 0, true);
	copy_ok(&v.req, &v.r, &v.res);
	assert_int_equal(v.res.recopied, 1);
	assert_same_content(v.src, v.dst);
	/* Chunk 2 written twice, the others once. */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(v.r.writes[i][0], 1);
		assert_int_equal(v.r.writes[i][1], i == 2);
	}
	/* Reported once, with the source's checksum. */
	assert_int_equal(v.r.nchunks, 4);
	assert_int_equal(v.r.chunks[2].index, 2);
	assert_int_equal(v.r.chunks[2].checksum, checksum_range(v.src, 2 * MiB, 1 * MiB));
	assert_int_equal(v.r.chunks[2].checksum, checksum_range(v.dst, 2 * MiB, 1 * MiB));
	assert_recopied_by_readwrite(&v, 2);
}

static void test_verify_fails_twice(void **state)
{
	struct verify_case v;

	verify_setup(*state, &v, "bad.img", (1u << 0) | (1u << 1), true);
	assert_int_equal(run_copy(&v.req, &v.r, &v.res), -1);
	assert_contains(sm_error_message(), "verification");
	assert_contains(sm_error_message(), "chunk 2");
	assert_contains(sm_error_message(), v.dst);
	/* Tried twice, never reported: the journal would not call it done. */
	assert_int_equal(v.r.writes[2][0], 1);
	assert_int_equal(v.r.writes[2][1], 1);
	assert_int_equal(v.r.nchunks, 2);
	assert_int_equal(v.r.chunks[1].index, 1);
	/* First by the path asked for, then by the buffered loop. */
	assert_verify_chunk_by(&v, 2, 0, v.req.method);
	assert_verify_chunk_by(&v, 2, 1, SM_COPY_READWRITE);
}

/* --no-verify skips the check: a corruption goes unnoticed.  This documents
 * the cost of the option, it is not a wish. */
static void test_no_verify_misses_corruption(void **state)
{
	struct verify_case v;

	verify_setup(*state, &v, "noverify.img", 1u << 0, false);
	copy_ok(&v.req, &v.r, &v.res);
	assert_int_equal(v.res.recopied, 0);
	assert_int_equal(v.r.writes[2][1], 0);
	assert_int_equal(v.r.nchunks, 4);
	for (unsigned long long i = 0; i < 4; i++)
		assert_verify_chunk_by(&v, i, 0, v.req.method);
	assert_int_equal(v.res.method, v.req.method);
	/* The garbage is still there, and the chunk reported with the source's sum. */
	assert_int_not_equal(checksum_range(v.dst, 2 * MiB, 1 * MiB), v.r.chunks[2].checksum);
	assert_int_equal(checksum_range(v.src, 2 * MiB, 1 * MiB), v.r.chunks[2].checksum);
	assert_true(reads_all(v.dst, v.r.corrupt_off, 4 * KiB, 0xEE));
}

/* Garbage in the destination where the source has a hole is a difference
 * too: the chunk's checksum counts holes as zeros. */
static void test_verify_sees_garbage_in_a_hole(void **state)
{
	struct verify_case v;

	verify_setup(*state, &v, "holegarbage.img", 1u << 0, true);
	v.r.corrupt_index = 3;  /* [3 MiB, 3.5 MiB) is a hole in the source */
	v.r.corrupt_off = 3 * MiB + 64 * KiB;
	copy_ok(&v.req, &v.r, &v.res);
	/* Whatever the copier did, what it reports as verified must be true. */
	assert_int_equal(v.r.chunks[3].checksum, checksum_range(v.dst, 3 * MiB, 1 * MiB));
	assert_same_content(v.src, v.dst);
	assert_int_equal(v.res.recopied, 1);
	assert_recopied_by_readwrite(&v, 3);
}

/* With verify, the direct path journals each chunk durable (chunk_durable)
 * before it checks it, and done (chunk_done) once the check matched, which
 * is after it copied the next chunk: the check overlaps that copy.  The
 * buffered loop checks at once and reports only done.  Without verify there
 * is nothing to wait for: done at once, never durable alone. */
static void test_durable_then_done(void **state)
{
	struct verify_case v;

	verify_setup(*state, &v, "durable.img", 0, true);
	for (int verify = 1; verify >= 0; verify--) {
		bool overlap = verify && is_direct(v.req.method);

		make_file(v.dst, "");
		rec_init(&v.r);
		v.req.verify = verify;
		copy_ok(&v.req, &v.r, &v.res);
		assert_same_content(v.src, v.dst);
		assert_int_equal(v.r.nchunks, 4);
		assert_false(v.r.out_of_order);
		for (unsigned long long i = 0; i < 4; i++) {
			long w = event_at(&v.r, 'w', i), d = event_at(&v.r, 'd', i);
			long done = event_at(&v.r, 'D', i), next = event_at(&v.r, 'w', i + 1);

			assert_int_equal(events_of(&v.r, 'w', i), 1);
			assert_int_equal(events_of(&v.r, 'D', i), 1);
			assert_int_equal(events_of(&v.r, 'd', i), overlap);
			assert_true(w >= 0 && done > w);
			if (overlap)
				assert_true(d > w && done > d && (i == 3 || done > next));
			else if (i < 3)
				assert_true(done < next);
		}
	}
}

/* A crash after chunks were journaled durable, before their check ended:
 * the resume checks them first (re-reading the destination, not the source)
 * and reports them done; one that no longer matches is copied again, by the
 * buffered loop.  A checksum the source does not have is an error: it
 * changed since it was copied. */
static void test_resume_unverified(void **state)
{
	struct verify_case v;
	struct sm_copy_chunk pending[2];
	unsigned long long chunk2, chunk3;

	verify_setup(*state, &v, "unverified.img", 0, true);
	copy_ok(&v.req, &v.r, &v.res);
	pending[0] = v.r.chunks[1];
	pending[1] = v.r.chunks[2];
	chunk2 = pending[1].data_bytes;
	chunk3 = v.r.chunks[3].data_bytes;
	/* What the crash left: chunk 2 garbled on the storage, chunk 3 (not
	 * begun as far as the journal knows) anything. */
	fill(v.dst, 2 * MiB + 8 * KiB, 4 * KiB, 0xEE);
	fill(v.dst, 3 * MiB, 64 * KiB, 0xA5);

	rec_init(&v.r);
	v.r.next_index = 1;
	v.req.resume_chunks = 3;
	v.req.unverified = pending;
	v.req.nunverified = 2;
	copy_ok(&v.req, &v.r, &v.res);
	assert_same_content(v.src, v.dst);
	assert_int_equal(v.res.chunks_skipped, 3);
	assert_int_equal(v.res.reverified, 2);
	assert_int_equal(v.res.recopied, 1);
	/* Chunks 1 and 2 checked and reported with their checksums, then 3. */
	assert_int_equal(v.r.nchunks, 3);
	assert_false(v.r.out_of_order);
	assert_int_equal(v.r.chunks[0].checksum, pending[0].checksum);
	assert_int_equal(v.r.chunks[1].checksum, pending[1].checksum);
	/* Chunk 1 neither copied nor its source read; chunk 2 copied once more,
	 * by the buffered loop, and so the rest. */
	assert_int_equal(v.r.writes[1][0] + v.r.writes[1][1], 0);
	assert_int_equal(v.r.writes[2][0], 0);
	assert_verify_chunk_by(&v, 2, 1, SM_COPY_READWRITE);
	assert_verify_chunk_by(&v, 3, 0, SM_COPY_READWRITE);
	assert_int_equal(v.res.method, SM_COPY_READWRITE);
	assert_int_equal(v.res.copied_bytes, chunk2 + chunk3);
	assert_int_equal(v.res.read_bytes, chunk2 + chunk3);

	pending[0].checksum ^= 1;
	v.req.nunverified = 1;
	rec_init(&v.r);
	assert_int_equal(run_copy(&v.req, &v.r, &v.res), -1);
	assert_contains(sm_error_message(), v.src);
	assert_contains(sm_error_message(), "changed");
	assert_contains(sm_error_message(), "chunk 1");
	assert_int_equal(v.r.nchunks, 0);
}

/* --- bandwidth and progress -------------------------------------------- */

static void test_bandwidth(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 2 * MiB }, { 4 * MiB, 2 * MiB } };
	char *src = path_in(f, "slow.img");
	char *dst = path_in(f, "slow.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .verify = true, .bandwidth = 8 * MiB,
		.method = method_of(f),
	};
	struct sm_copy_result res;
	struct recorder r;
	double t0;

	make_sparse(src, 8 * MiB, ext, SM_ARRAY_LEN(ext), 41);
	make_file(dst, "");
	assert_int_equal(data_bytes(src), 4 * MiB);
	rec_init(&r);
	t0 = sm_monotonic();
	copy_ok(&req, &r, &res);
	/* 4 MiB at 8 MiB/s: half a second, give or take a slice.  No upper bound. */
	assert_true(sm_monotonic() - t0 >= 0.4);
	assert_true(res.seconds >= 0.4);
	assert_int_equal(res.method, req.method);
	assert_same_content(src, dst);
	assert_false(r.went_back);
	assert_int_equal(r.done, 4 * MiB);
}

/* A bandwidth limit changes how much is read at a time (the direct path's
 * requests shrink to the limiter's slice), not the chunks' checksums: they
 * must still match 'snapmove verify' (sm_copy_checksum_range). */
static void test_bandwidth_keeps_checksums(void **state)
{
	static const enum sm_copy_method methods[] = {
		SM_COPY_READWRITE, SM_COPY_FILE_RANGE, SM_COPY_DIRECT, SM_COPY_DIRECT_URING,
	};
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB } };
	char *src = path_in(f, "limited.img");
	char *dst = path_in(f, "limited.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true,
		.bandwidth = 8 * MiB,
	};
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 2 * MiB, ext, 1, 43);
	for (size_t i = 0; i < SM_ARRAY_LEN(methods); i++) {
		if (is_direct(methods[i]) && direct_io(f) == DIRECT_NONE)
			continue;
		if (methods[i] == SM_COPY_DIRECT_URING && !uring_ok)
			continue;
		fake_uring_errno = methods[i] == SM_COPY_DIRECT_URING ? 0 : ENOSYS;
		make_file(dst, "");
		drop_cache(f, src);
		req.method = methods[i];
		rec_init(&r);
		copy_ok(&req, &r, &res);
		assert_int_equal(res.method, methods[i]);
		assert_chunks(f, src, dst, &r, methods[i]);
		assert_same_content(src, dst);
		assert_int_equal(r.nchunks, 2);
		if (r.chunks[0].checksum != checksum_range(src, 0, 1 * MiB)) {
			print_error("%s at 8 MiB/s: chunk 0 checksum %016llx, the file's %016llx\n",
				    sm_copy_method_name(methods[i]),
				    (unsigned long long)r.chunks[0].checksum,
				    (unsigned long long)checksum_range(src, 0, 1 * MiB));
			fail();
		}
		assert_int_equal(r.chunks[0].checksum, checksum_range(dst, 0, 1 * MiB));
	}
}

static void test_progress(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 1536 * KiB, 2 * MiB }, { 5 * MiB, 1 * MiB } };
	char *src = path_in(f, "progress.img");
	char *dst = path_in(f, "progress.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true,
		.bandwidth = 16 * MiB, .method = method_of(f),
	};
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 6 * MiB, ext, SM_ARRAY_LEN(ext), 47);
	make_file(dst, "");
	rec_init(&r);
	copy_ok(&req, &r, &res);
	/* At least the first pass and the end; done only grows, counts whole
	 * durable chunks, and ends at the total. */
	assert_true(r.calls >= 2);
	assert_false(r.went_back);
	assert_false(r.done_not_chunks);
	assert_false(r.bad_rate);
	assert_int_equal(r.total, data_bytes(src));
	assert_int_equal(r.done, r.total);
	assert_int_equal(r.total, 4 * MiB);
}

/* --- the direct path's reader thread ------------------------------------ */

/* A direct request reads up to DIRECT_UNIT; under a bandwidth limit, no more
 * than the limiter lets through in a slice.  Seen as what a copy cancelled at
 * its first report (after its first request) has copied.  Without a limit the
 * reader is then some requests ahead, waiting for room: it must still stop. */
static void test_direct_unit(void **state)
{
	static const unsigned long long limits[] = { 0, 8 * MiB, 1 * MiB };
	struct fixture *f = *state;
	enum sm_copy_method m = method_of(f);
	const off_t unit = unit_of(m);
	const struct extent ext[] = { { 0, 6 * unit } };
	char *src = path_in(f, "unit.img");
	char *dst = path_in(f, "unit.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .verify = true, .method = m,
	};
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 6 * unit, ext, 1, 53);
	for (size_t i = 0; i < SM_ARRAY_LEN(limits); i++) {
		make_file(dst, "");
		req.bandwidth = limits[i];
		rec_init(&r);
		r.cancel = true;
		assert_int_equal(run_copy(&req, &r, &res), -1);
		assert_contains(sm_error_message(), "interrupted");
		assert_int_equal(r.calls, 1);
		assert_int_equal(r.nchunks, 0);
		if (limits[i] == 0) {
			assert_int_equal(res.copied_bytes, unit);
		} else {
			assert_true(res.copied_bytes >= 64 * KiB);
			assert_true(res.copied_bytes <= limits[i] / 10);
			assert_int_equal(res.copied_bytes % 4096, 0);
		}
		/* What was copied is the source's, at its place. */
		assert_int_equal(reference_checksum(dst, 0, (off_t)res.copied_bytes),
				 reference_checksum(src, 0, (off_t)res.copied_bytes));
	}
}

/* The source shrinks under the copy, at the first report.  The order is
 * fixed by the copier, not by timing: the first report comes with the first
 * request written (the copier reports at once when it never has; the test
 * checks it did), and the direct reader never reads more than
 * SM_COPY_DIRECT_DEPTH requests ahead of the one written, so by then it has
 * read at most 1 + SM_COPY_DIRECT_DEPTH (io_uring: SM_COPY_URING_DEPTH in
 * flight at most, the written one among them; its own request size).  The file is two requests longer, so
 * the last request is always read after the shrink.  (A file of 5 requests,
 * as it was, could be read whole before the shrink: 2 runs in 10 copied it
 * all and succeeded.)  The read error stops the copy with the source named,
 * the reader thread with it. */
static void test_source_shrinks(void **state)
{
	struct fixture *f = *state;
	enum sm_copy_method m = method_of(f);
	const off_t unit = unit_of(m), size = (depth_of(m) + 2) * unit;
	const struct extent ext[] = { { 0, size } };
	char *src = path_in(f, "shrinks.img");
	char *dst = path_in(f, "shrinks.copy");
	/* One chunk for the whole file: none is done before the shrink. */
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true, .method = m,
				   .chunk_size = (unsigned long long)(size + unit) };
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, size, ext, 1, 61);
	make_file(dst, "");
	rec_init(&r);
	r.shrink = src;
	r.shrink_to = size - 2 * unit + 2 * MiB + 5;
	assert_int_equal(run_copy(&req, &r, &res), -1);
	assert_contains(sm_error_message(), src);
	assert_contains(sm_error_message(), "shrank");
	assert_int_equal(res.method, req.method);
	assert_int_equal(r.nchunks, 0);
	/* Shrunk when the first request (or the first read/write) was done. */
	assert_in_range(r.shrunk_at, 1, unit);
	assert_true(res.copied_bytes < (unsigned long long)size);
}

/* A write fails in the middle of a chunk (the file size limit, as a full
 * disk would): the copy stops with the destination named, and the direct
 * reader, some requests ahead, stops with it.  A resumed copy, because a
 * fresh one sizes the destination first, which the limit would refuse. */
static void test_write_error(void **state)
{
	struct fixture *f = *state;
	const off_t chunk = 5 * DIRECT_UNIT, limit = chunk + DIRECT_UNIT;
	const struct extent ext[] = { { chunk, chunk } };
	char *src = path_in(f, "efbig.img");
	char *dst = path_in(f, "efbig.copy");
	struct sm_copy_req req = {
		.src = src, .dst = dst, .chunk_size = (unsigned long long)chunk, .verify = true,
		.method = method_of(f), .resume_chunks = 1,
	};
	struct sm_copy_result res;
	struct recorder r;
	struct rlimit old, lim;
	void (*old_handler)(int);
	int fds = count_entries("/proc/self/fd"), threads = count_entries("/proc/self/task");
	int rc;

	make_sparse(src, 2 * chunk, ext, 1, 67);
	make_sparse(dst, 2 * chunk, NULL, 0, 0);
	rec_init(&r);
	r.next_index = 1;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)limit;
	/* Set and restored around the copy alone: a failed assertion must not
	 * leave the limit on the tests after. */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	sm_error_clear();
	if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
		rc = sm_copy_run(&req, &rec_ops, &r, &res);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	} else {
		rc = -2;
	}
	signal(SIGXFSZ, old_handler);
	assert_nothing_left(fds, threads);
	assert_int_equal(rc, -1);
	assert_contains(sm_error_message(), dst);
	assert_contains(sm_error_message(), strerror(EFBIG));
	assert_int_equal(res.method, req.method);
	assert_int_equal(r.nchunks, 0);
	/* Up to the limit, and no further (io_uring: the requests before the
	 * failed one may end after it, uncounted). */
	if (req.method == SM_COPY_DIRECT_URING) {
		assert_true(res.copied_bytes <= (unsigned long long)(limit - chunk));
		assert_int_equal(res.copied_bytes % (unsigned long long)URING_UNIT, 0);
	} else {
		assert_int_equal(res.copied_bytes, (unsigned long long)(limit - chunk));
	}
}

/* sm_copy_run_fds copies between open files, never by name: the
 * destination renamed away and another file put at its name (as another
 * user can in a folder they write), the copy still lands in the file that
 * was opened and the other file stays as it was.  The fds stay open. */
static void test_fds_name_swapped(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 3 * MiB }, { 5 * MiB, 64 * KiB + 5 } };
	char *src = path_in(f, "fds.img");
	char *dst = path_in(f, "fds.copy");
	char *moved = path_in(f, "fds.moved");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true, .method = method_of(f),
				   .chunk_size = 2 * MiB };
	struct sm_copy_result res;
	int fds, threads, in, out, rc;
	char *content;

	make_sparse(src, 6 * MiB, ext, 2, 71);
	make_file(dst, "");
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = open(dst, O_RDWR | O_CLOEXEC);
	assert_true(in >= 0 && out >= 0);
	assert_int_equal(rename(dst, moved), 0);
	make_file(dst, "planted\n");
	fds = count_entries("/proc/self/fd");
	threads = count_entries("/proc/self/task");
	sm_error_clear();
	rc = sm_copy_run_fds(&req, in, out, NULL, NULL, &res);
	assert_nothing_left(fds, threads);
	if (rc != 0)
		print_error("%s\n", sm_error_message());
	assert_int_equal(rc, 0);
	assert_int_equal(res.method, req.method);
	assert_same_content(src, moved);
	content = unit_read_file(dst);
	assert_string_equal(content, "planted\n");
	free(content);
	/* Still the caller's. */
	assert_true(fcntl(in, F_GETFD) >= 0 && fcntl(out, F_GETFD) >= 0);
	close(in);
	close(out);
}

/* No thread can be started (the system is out of them): the direct copy
 * fails with the error said, whichever thread it was (1: the first chunk's
 * reader; 2: the check of the first chunk, durable by then; 3: the second
 * chunk's reader or the check's reader, whichever asks first), and leaves
 * no thread and no descriptor behind; no chunk is reported done.  The
 * checksum of a range ('snapmove verify') fails the same way.  It used to
 * abort() the whole process. */
static void test_thread_refused(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 2 * MiB } };
	char *src = path_in(f, "threads.img");
	char *dst = path_in(f, "threads.copy");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true,
				   .method = SM_COPY_DIRECT, .chunk_size = MiB };
	struct sm_copy_result res;
	struct recorder r;
	uint64_t sum;

	direct_or_skip(f);
	make_sparse(src, 2 * MiB, ext, 1, 83);
	make_file(dst, "");
	for (int n = 1; n <= 3; n++) {
		rec_init(&r);
		fail_thread = n;
		assert_int_equal(run_copy(&req, &r, &res), -1);
		assert_int_equal(fail_thread, 0);
		assert_contains(sm_error_message(), "cannot start a thread to ");
		assert_contains(sm_error_message(), "Resource temporarily unavailable");
		assert_int_equal(r.nchunks, 0);
		if (n == 1) {
			assert_contains(sm_error_message(), src);
			assert_int_equal(res.copied_bytes, 0);
		} else if (n == 2) {
			assert_contains(sm_error_message(), "to check '");
			assert_contains(sm_error_message(), dst);
			assert_true(event_at(&r, 'd', 0) >= 0);
		}
	}
	/* With threads again, the same copy runs. */
	rec_init(&r);
	copy_ok(&req, &r, &res);
	assert_same_content(src, dst);

	sm_error_clear();
	fail_thread = 1;
	assert_int_equal(sm_copy_checksum_range(src, 0, MiB, &sum), -1);
	fail_thread = 0;
	assert_contains(sm_error_message(), "cannot start a thread to read");
	assert_contains(sm_error_message(), src);
}

/* Only regular files are copied: a directory, a character device, a FIFO
 * as the source (or the destination) are refused at once, nothing written,
 * no read that could block. */
static void test_fds_not_regular(void **state)
{
	struct fixture *f = *state;
	char *dir = path_in(f, "a-dir");
	char *fifo = path_in(f, "a-fifo");
	char *file = path_in(f, "a-file");
	char *dst = path_in(f, "not-regular.copy");
	const char *srcs[] = { dir, "/dev/zero", fifo };
	struct sm_copy_req req = { .dst = dst, .verify = true };
	struct sm_copy_result res;
	int out, in;

	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	make_file(dst, "");
	make_file(file, "data");
	out = open(dst, O_RDWR | O_CLOEXEC);
	assert_true(out >= 0);
	for (size_t i = 0; i < SM_ARRAY_LEN(srcs); i++) {
		in = open(srcs[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		assert_true(in >= 0);
		req.src = srcs[i];
		sm_error_clear();
		assert_int_equal(sm_copy_run_fds(&req, in, out, NULL, NULL, &res), -1);
		assert_contains(sm_error_message(), srcs[i]);
		assert_contains(sm_error_message(), "not a regular file");
		assert_int_equal(stat_of(dst).st_size, 0);
		close(in);
		/* The same by name. */
		sm_error_clear();
		assert_int_equal(sm_copy_run(&req, NULL, NULL, &res), -1);
		assert_contains(sm_error_message(), "not a regular file");
	}
	close(out);
	/* A destination that is not a regular file either. */
	in = open(file, O_RDONLY | O_CLOEXEC);
	out = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	req.src = file;
	req.dst = dir;
	sm_error_clear();
	assert_int_equal(sm_copy_run_fds(&req, in, out, NULL, NULL, &res), -1);
	assert_contains(sm_error_message(), dir);
	close(in);
	close(out);
}

/* --- the direct path through io_uring ------------------------------------ */

/* Where the kernel allows io_uring, AUTO copies by it on ext4, and says so;
 * the source read once, its checksum taken from the bytes copied. */
static void test_auto_takes_uring(void **state)
{
	struct fixture *f = *state;
	struct sm_copy_result res;

	if (!on_ext4(f))
		skip();
	uring_or_skip(f);
	make_sparse_40(f, "auto-uring.img");
	copy_and_check(f, "auto-uring.img", SM_COPY_AUTO, 0, SM_COPY_DIRECT_URING, &res);
	assert_int_equal(res.read_bytes, res.data_bytes);
	assert_int_equal(uring_refusals, 0);
}

/* The kernel refuses io_uring (ENOSYS: not built in; EPERM:
 * kernel.io_uring_disabled, a seccomp filter): AUTO and direct copy by the
 * reader thread, and the result says "direct"; direct-uring asked for by
 * name is refused, naming the source, the reason and the way on, before the
 * destination is touched. */
static void test_uring_refused(void **state)
{
	static const int errs[] = { ENOSYS, EPERM };
	struct fixture *f = *state;
	char *src = path_in(f, "refused.img");
	char *dst = path_in(f, "refused.kept");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true,
				   .method = SM_COPY_DIRECT_URING };
	struct sm_copy_result res;
	struct recorder r;
	char *content;

	direct_or_skip(f);
	make_sparse(src, 40 * MiB, sparse_ext, SM_ARRAY_LEN(sparse_ext), 1);
	for (size_t i = 0; i < SM_ARRAY_LEN(errs); i++) {
		fake_uring_errno = errs[i];
		uring_refusals = 0;
		copy_and_check(f, "refused.img", SM_COPY_AUTO, 0, auto_method(f), &res);
		copy_and_check(f, "refused.img", SM_COPY_DIRECT, 0, SM_COPY_DIRECT, &res);
		assert_true(uring_refusals >= 2);

		make_file(dst, "kept\n");
		rec_init(&r);
		assert_int_equal(run_copy(&req, &r, &res), -1);
		assert_contains(sm_error_message(), "cannot use io_uring");
		assert_contains(sm_error_message(), src);
		assert_contains(sm_error_message(), strerror(errs[i]));
		assert_contains(sm_error_message(), "'--copy-method direct'");
		assert_int_equal(r.nchunks, 0);
		assert_int_equal(r.calls, 0);
		content = unit_read_file(dst);
		assert_string_equal(content, "kept\n");
		free(content);
	}
}

/* The kernel answers reads short (every read of more than a block is asked
 * for half): the copy asks for the rest of each, and the copy and its check
 * come out whole, every chunk's checksum right; the file's odd end too. */
static void test_uring_short_reads(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 4 * KiB, 3 * URING_UNIT + 12 * KiB + 100 } };
	struct sm_copy_result res;

	uring_or_skip(f);
	make_sparse(path_in(f, "short.img"), 3 * URING_UNIT + 16 * KiB + 100, ext, 1, 89);
	fault_short_reads = 1;
	fault_shortened = 0;
	copy_and_check(f, "short.img", SM_COPY_DIRECT_URING, 2 * (unsigned long long)URING_UNIT,
		       SM_COPY_DIRECT_URING, &res);
	fault_short_reads = 0;
	/* Each of the 5 pieces (and each check's) was asked for in parts. */
	assert_true(fault_shortened >= 10);
}

/* Signals come every 200 us during the copy (a handler without SA_RESTART,
 * as SIGINT's and SIGTERM's): every wait they interrupt (EINTR) is waited
 * again, and the copy ends whole. */
static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void test_signals_interrupt_waits(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 24 * MiB }, { 40 * MiB, 9 * MiB + 5 } };
	char *src = path_in(f, "signals.img");
	char *dst = path_in(f, "signals.copy");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true, .method = method_of(f),
				   .chunk_size = 8 * MiB };
	struct sm_copy_result res;
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct itimerval every = { { 0, 200 }, { 0, 200 } }, stop = { { 0, 0 }, { 0, 0 } };
	int rc;

	make_sparse(src, 49 * MiB + 5, ext, SM_ARRAY_LEN(ext), 97);
	make_file(dst, "");
	alarms = 0;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &every, NULL), 0);
	sm_error_clear();
	rc = sm_copy_run(&req, NULL, NULL, &res);
	/* Off before any assertion can leave the test. */
	setitimer(ITIMER_REAL, &stop, NULL);
	sigaction(SIGALRM, &old, NULL);
	if (rc != 0)
		print_error("%s\n", sm_error_message());
	assert_int_equal(rc, 0);
	assert_int_equal(res.method, req.method);
	assert_same_content(src, dst);
	assert_true(alarms >= 5);
}

/* The destination is full (every write answered ENOSPC, as a full file
 * system answers): the copy stops saying so and what to do next, nothing is
 * reported done, no request is left in flight (run_copy: no descriptor, no
 * thread left). */
static void test_uring_full_destination(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 12 * MiB } };
	char *src = path_in(f, "full.img");
	char *dst = path_in(f, "full.copy");
	struct sm_copy_req req = { .src = src, .dst = dst, .verify = true,
				   .method = SM_COPY_DIRECT_URING, .chunk_size = 8 * MiB,
				   .retry = "resume the job ('snapmove resume 7')" };
	struct sm_copy_result res;
	struct recorder r;

	uring_or_skip(f);
	make_sparse(src, 16 * MiB, ext, 1, 101);
	make_file(dst, "");
	fault_full_fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fault_full_fd >= 0);
	rec_init(&r);
	assert_int_equal(run_copy(&req, &r, &res), -1);
	close(fault_full_fd);
	fault_full_fd = -1;
	assert_contains(sm_error_message(), "the destination is full");
	assert_contains(sm_error_message(), dst);
	assert_contains(sm_error_message(), "snapmove resume 7");
	assert_int_equal(res.method, SM_COPY_DIRECT_URING);
	assert_int_equal(r.nchunks, 0);
	assert_int_equal(res.copied_bytes, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
/* fn run by one copy path: "fn/readwrite" copies by SM_COPY_READWRITE. */
static enum sm_copy_method by_auto = SM_COPY_AUTO, by_readwrite = SM_COPY_READWRITE,
			   by_direct = SM_COPY_DIRECT, by_uring = SM_COPY_DIRECT_URING;
#define TM(fn, m) { #fn "/" #m, fn, setup, teardown, &by_##m }

static void *idle(void *arg)
{
	return arg;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sparse_file),
		T(test_all_hole),
		T(test_dense_unaligned),
		T(test_empty_file),
		T(test_overwrites_destination),
		TM(test_cancel, readwrite),
		TM(test_cancel, direct),
		TM(test_cancel, uring),
		T(test_symlink_destination_refused),
		T(test_missing_source),
		T(test_missing_destination),
		cmocka_unit_test(test_method_names),
		T(test_method_readwrite),
		T(test_method_file_range),
		T(test_method_direct),
		TM(test_direct_odd_sizes, direct),
		TM(test_direct_odd_sizes, uring),
		T(test_method_auto_falls_back),
		T(test_method_reflink_refused),
		T(test_method_direct_refused),
		TM(test_chunks, readwrite),
		TM(test_chunks, direct),
		TM(test_chunks, uring),
		TM(test_hole_chunks_skipped, readwrite),
		TM(test_hole_chunks_skipped, direct),
		TM(test_hole_chunks_skipped, uring),
		T(test_chunk_size_rounded),
		T(test_checksum_canonical),
		T(test_checksum_range_lengths),
		TM(test_resume, auto),
		TM(test_resume, readwrite),
		TM(test_resume, direct),
		TM(test_resume, uring),
		TM(test_verify_recopies_once, readwrite),
		TM(test_verify_recopies_once, direct),
		TM(test_verify_recopies_once, uring),
		TM(test_verify_fails_twice, readwrite),
		TM(test_verify_fails_twice, direct),
		TM(test_verify_fails_twice, uring),
		TM(test_no_verify_misses_corruption, readwrite),
		TM(test_no_verify_misses_corruption, direct),
		TM(test_no_verify_misses_corruption, uring),
		TM(test_verify_sees_garbage_in_a_hole, readwrite),
		TM(test_verify_sees_garbage_in_a_hole, direct),
		TM(test_verify_sees_garbage_in_a_hole, uring),
		TM(test_durable_then_done, readwrite),
		TM(test_durable_then_done, direct),
		TM(test_durable_then_done, uring),
		TM(test_resume_unverified, readwrite),
		TM(test_resume_unverified, direct),
		TM(test_resume_unverified, uring),
		TM(test_bandwidth, readwrite),
		TM(test_bandwidth, direct),
		TM(test_bandwidth, uring),
		T(test_bandwidth_keeps_checksums),
		TM(test_progress, readwrite),
		TM(test_progress, direct),
		TM(test_progress, uring),
		TM(test_direct_unit, direct),
		TM(test_direct_unit, uring),
		TM(test_source_shrinks, readwrite),
		TM(test_source_shrinks, direct),
		TM(test_source_shrinks, uring),
		TM(test_write_error, readwrite),
		TM(test_write_error, direct),
		TM(test_write_error, uring),
		TM(test_fds_name_swapped, readwrite),
		TM(test_fds_name_swapped, direct),
		TM(test_fds_name_swapped, uring),
		T(test_fds_not_regular),
		T(test_thread_refused),
		T(test_auto_takes_uring),
		T(test_uring_refused),
		T(test_uring_short_reads),
		TM(test_signals_interrupt_waits, direct),
		TM(test_signals_interrupt_waits, uring),
		T(test_uring_full_destination),
	};
	pthread_t t;

	real_pthread_create = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
				       void *))dlsym(RTLD_NEXT, "pthread_create");
	real_uring_init = (int (*)(unsigned, struct io_uring *, unsigned))dlsym(
		RTLD_NEXT, "io_uring_queue_init");
	real_uring_submit = (int (*)(struct io_uring *))dlsym(RTLD_NEXT, "io_uring_submit");
	if (!real_pthread_create || !real_uring_init || !real_uring_submit)
		return 1;
	{
		struct io_uring ring;

		uring_ok = real_uring_init(4, &ring, 0) == 0;
		if (uring_ok)
			io_uring_queue_exit(&ring);
	}
	fake_uring_errno = ENOSYS;
	if (getenv("UNIT_FILTER"))
		cmocka_set_test_filter(getenv("UNIT_FILTER"));
	/* A first thread, so that a runtime that starts one of its own with it
	 * (ThreadSanitizer) has done so before the tests count threads. */
	if (pthread_create(&t, NULL, idle, NULL) == 0)
		pthread_join(t, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
