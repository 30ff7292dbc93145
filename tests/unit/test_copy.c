/* test_copy.c: the out-of-band copier on small sparse files in a temp
 * directory: byte-exact copies that keep holes by every copy path, chunks
 * reported in order with checksums that match both files, resume after a
 * crash, verification and its one re-copy, the bandwidth limit, progress and
 * cancel, and the destinations it must refuse.  Reflinks are not exercised
 * (the test directory is on ext4): only their refusal and the fallback.
 */
#include "unit.h"

#include "copy/checksum.h"
#include "copy/copy.h"
#include "util.h"

#include <errno.h>
#include <sys/vfs.h>

#define KiB (1024LL)
#define MiB (1024LL * 1024)
#define EXT4_MAGIC 0xEF53

#define MAX_CHUNKS 64
#define MAX_PATHS 16

/* A temp directory and the paths a test made in it; teardown frees both, so
 * a failed assertion leaks nothing. */
struct fixture {
	char *dir;
	char *paths[MAX_PATHS];
	size_t npaths;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->dir = unit_mkdtemp();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unit_rmtree(f->dir);
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
	/* after_write */
	int writes[MAX_CHUNKS][2];
	long long corrupt_index;  /* -1: none */
	off_t corrupt_off;        /* absolute file offset */
	unsigned corrupt_attempts;  /* bit n: corrupt on attempt n */
};

static void rec_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	r->fail_at = -1;
	r->corrupt_index = -1;
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
	return (long long)c->index == r->fail_at ? -1 : 0;
}

static void on_write(void *ctx, int dst_fd, const struct sm_copy_chunk *c, int attempt)
{
	struct recorder *r = ctx;

	assert_true(c->index < MAX_CHUNKS);
	assert_true(attempt == 0 || attempt == 1);
	r->writes[c->index][attempt]++;
	if ((long long)c->index == r->corrupt_index && (r->corrupt_attempts & (1u << attempt)))
		fill_fd(dst_fd, r->corrupt_off, 4 * KiB, 0xEE);
}

static const struct sm_copy_ops rec_ops = {
	.progress = on_progress,
	.chunk_done = on_chunk,
	.after_write = on_write,
};

static void copy_ok(const struct sm_copy_req *req, struct recorder *r,
		    struct sm_copy_result *res)
{
	sm_error_clear();
	if (sm_copy_run(req, &rec_ops, r, res) != 0) {
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
	copy_ok(&req, &r, res);
	ss = stat_of(src);
	ds = stat_of(dst);
	assert_int_equal(ds.st_size, ss.st_size);
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
	assert_int_equal(res->chunks, ((unsigned long long)ss.st_size + chunk - 1) / chunk);
	assert_int_equal(res->chunks_skipped, 0);
	assert_int_equal(res->recopied, 0);
	assert_true(res->seconds >= 0);
	assert_true(res->method != SM_COPY_AUTO);
	if (ran != SM_COPY_METHOD_LAST)
		assert_string_equal(sm_copy_method_name(res->method), sm_copy_method_name(ran));
	/* Every chunk reported once, in order, adding up to the data. */
	assert_int_equal(r.nchunks, res->chunks);
	assert_false(r.out_of_order);
	assert_int_equal(r.chunk_data, want);
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
	/* And in 4 KiB chunks, the last one short. */
	copy_and_check(f, "dense.img", SM_COPY_READWRITE, 4 * KiB, SM_COPY_READWRITE, &res);
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

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 20 * MiB, 3 * MiB } };
	char *src = path_in(f, "cancel.img");
	char *dst = path_in(f, "cancel.img.copy");
	struct sm_copy_req req = { .src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true };
	struct sm_copy_result res;
	struct recorder r;

	make_sparse(src, 24 * MiB, ext, SM_ARRAY_LEN(ext), 5);
	make_file(dst, "");
	rec_init(&r);
	r.cancel = true;
	sm_error_clear();
	assert_int_equal(sm_copy_run(&req, &rec_ops, &r, &res), -1);
	assert_contains(sm_error_message(), "interrupted");
	assert_contains(sm_error_message(), src);
	/* Asked once, stopped at once, before the copy was complete. */
	assert_int_equal(r.calls, 1);
	assert_true(r.done < data_bytes(src));
	assert_int_equal(r.total, data_bytes(src));
	assert_true(res.copied_bytes < data_bytes(src));
	assert_true(r.nchunks < 24);
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
						   "direct" };

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
		.method = SM_COPY_READWRITE,
	};
	struct sm_copy_result res;
	struct recorder r;
	unsigned long long sum = 0;

	make_sparse(src, CHUNKY_SIZE, chunky_ext, SM_ARRAY_LEN(chunky_ext), 21);
	make_file(dst, "");
	rec_init(&r);
	copy_ok(&req, &r, &res);
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
		/* The chunk's checksum is the checksum of both files' ranges. */
		assert_int_equal(c->checksum, checksum_range(dst, off, len));
		assert_int_equal(c->checksum, checksum_range(src, off, len));
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
	struct sm_copy_req req = { .src = src, .dst = dst, .chunk_size = 1 * MiB, .verify = true };
	struct sm_copy_result res;
	struct recorder r;
	unsigned long long done_before, remaining;
	uint64_t chunk3_sum;

	make_sparse(src, 7 * MiB, ext, SM_ARRAY_LEN(ext), 31);
	make_file(dst, "");
	rec_init(&r);
	r.fail_at = 3;
	assert_int_equal(sm_copy_run(&req, &rec_ops, &r, &res), -1);
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

	v->src = path_in(f, name);
	v->dst = path_in(f, name_with(dst_name, sizeof(dst_name), name, "copy"));
	make_sparse(v->src, 4 * MiB, verify_ext, SM_ARRAY_LEN(verify_ext), 37);
	make_file(v->dst, "");
	v->req = (struct sm_copy_req){
		.src = v->src, .dst = v->dst, .chunk_size = 1 * MiB, .verify = verify,
	};
	rec_init(&v->r);
	v->r.corrupt_index = 2;
	v->r.corrupt_off = 2 * MiB + 8 * KiB;
	v->r.corrupt_attempts = attempts;
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
}

static void test_verify_fails_twice(void **state)
{
	struct verify_case v;

	verify_setup(*state, &v, "bad.img", (1u << 0) | (1u << 1), true);
	sm_error_clear();
	assert_int_equal(sm_copy_run(&v.req, &rec_ops, &v.r, &v.res), -1);
	assert_contains(sm_error_message(), "verification");
	assert_contains(sm_error_message(), "chunk 2");
	assert_contains(sm_error_message(), v.dst);
	/* Tried twice, never reported: the journal would not call it done. */
	assert_int_equal(v.r.writes[2][0], 1);
	assert_int_equal(v.r.writes[2][1], 1);
	assert_int_equal(v.r.nchunks, 2);
	assert_int_equal(v.r.chunks[1].index, 1);
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
		.method = SM_COPY_READWRITE,
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
	assert_same_content(src, dst);
	assert_false(r.went_back);
	assert_int_equal(r.done, 4 * MiB);
}

/* A bandwidth limit changes how much is read at a time, not the chunks'
 * checksums: they must still match 'snapmove verify' (sm_copy_checksum_range). */
static void test_bandwidth_keeps_checksums(void **state)
{
	static const enum sm_copy_method methods[] = { SM_COPY_READWRITE, SM_COPY_FILE_RANGE };
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
		make_file(dst, "");
		req.method = methods[i];
		rec_init(&r);
		copy_ok(&req, &r, &res);
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
		.bandwidth = 16 * MiB, .method = SM_COPY_READWRITE,
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

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_sparse_file),
		T(test_all_hole),
		T(test_dense_unaligned),
		T(test_empty_file),
		T(test_overwrites_destination),
		T(test_cancel),
		T(test_symlink_destination_refused),
		T(test_missing_source),
		T(test_missing_destination),
		cmocka_unit_test(test_method_names),
		T(test_method_readwrite),
		T(test_method_file_range),
		T(test_method_auto_falls_back),
		T(test_method_reflink_refused),
		T(test_chunks),
		T(test_chunk_size_rounded),
		T(test_checksum_canonical),
		T(test_resume),
		T(test_verify_recopies_once),
		T(test_verify_fails_twice),
		T(test_no_verify_misses_corruption),
		T(test_verify_sees_garbage_in_a_hole),
		T(test_bandwidth),
		T(test_bandwidth_keeps_checksums),
		T(test_progress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
