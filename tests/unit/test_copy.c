/* test_copy.c: the out-of-band copier on small sparse files in a temp
 * directory: byte-exact copies that keep holes, progress and cancel, and the
 * destinations it must refuse.
 */
#include "unit.h"

#include "copy/copy.h"
#include "util.h"

#include <errno.h>

#define KiB (1024LL)
#define MiB (1024LL * 1024)

struct fixture {
	char *dir;
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
	free(f);
	return 0;
}

static char *path_in(const struct fixture *f, const char *name)
{
	return sm_path_join(f->dir, name);
}

/* A byte that depends on its offset, so data written at the wrong place shows. */
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

struct progress {
	int calls;
	bool cancel;
	bool went_back;
	unsigned long long done;
	unsigned long long total;
};

static bool on_progress(void *ctx, unsigned long long done, unsigned long long total)
{
	struct progress *p = ctx;

	if (done < p->done || done > total)
		p->went_back = true;
	p->calls++;
	p->done = done;
	p->total = total;
	return !p->cancel;
}

/* Copy src to a fresh empty dst and check everything a copy promises. */
static void copy_and_check(const struct fixture *f, const char *src_name)
{
	char *src = path_in(f, src_name);
	char *dst = sm_xasprintf("%s.copy", src);
	struct progress prog = { 0 };
	struct sm_copy_stats stats;
	struct stat ss, ds;
	unsigned long long want = data_bytes(src);

	make_file(dst, "");
	if (sm_copy_file(src, dst, on_progress, &prog, &stats) != 0) {
		print_error("copying '%s' failed: %s\n", src, sm_error_message());
		fail();
	}
	ss = stat_of(src);
	ds = stat_of(dst);
	assert_int_equal(ds.st_size, ss.st_size);
	assert_same_content(src, dst);
	/* Holes stay holes: no more than the source's allocation, plus slack. */
	assert_true((long long)ds.st_blocks * 512 <= (long long)ss.st_blocks * 512 + 8 * MiB);
	assert_int_equal(stats.size, (unsigned long long)ss.st_size);
	assert_int_equal(stats.data_bytes, want);
	assert_true(stats.seconds >= 0);
	/* Progress ends with everything done. */
	assert_true(prog.calls >= 1);
	assert_false(prog.went_back);
	assert_int_equal(prog.done, want);
	assert_int_equal(prog.total, want);
	free(src);
	free(dst);
}

static void test_sparse_file(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = {
		{ 0, 1 * MiB },
		{ 20 * MiB, 3 * MiB },
		{ 30 * MiB + 64 * KiB, 4 * KiB },
	};
	char *src = path_in(f, "sparse.img");
	unsigned long long n;

	/* 40 MiB long: the last 10 MiB are a hole after the last extent. */
	make_sparse(src, 40 * MiB, ext, SM_ARRAY_LEN(ext), 1);
	n = data_bytes(src);
	assert_true(n >= (unsigned long long)(4 * MiB + 4 * KiB));
	assert_true(n < (unsigned long long)(20 * MiB));
	copy_and_check(f, "sparse.img");
	free(src);
}

static void test_all_hole(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "hole.img");
	char *dst = path_in(f, "hole.img.copy");

	make_sparse(src, 16 * MiB, NULL, 0, 0);
	assert_int_equal(data_bytes(src), 0);
	copy_and_check(f, "hole.img");
	assert_int_equal(stat_of(dst).st_size, 16 * MiB);
	assert_int_equal(data_bytes(dst), 0);
	free(src);
	free(dst);
}

static void test_dense_unaligned(void **state)
{
	struct fixture *f = *state;
	const off_t size = 100 * KiB + 123;
	const struct extent ext[] = { { 0, size } };
	char *src = path_in(f, "dense.img");

	make_sparse(src, size, ext, 1, 7);
	assert_int_equal(data_bytes(src), (unsigned long long)size);
	copy_and_check(f, "dense.img");
	free(src);
}

static void test_empty_file(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "empty.img");

	make_file(src, "");
	assert_int_equal(data_bytes(src), 0);
	copy_and_check(f, "empty.img");
	free(src);
}

/* Whatever the destination held is gone: it ends up exactly the source. */
static void test_overwrites_destination(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 6 * MiB, 512 * KiB } };
	const struct extent junk[] = { { 0, 4 * MiB }, { 9 * MiB, 1 * MiB } };
	char *src = path_in(f, "src.img");
	char *dst = path_in(f, "dst.img");
	struct sm_copy_stats stats;

	make_sparse(src, 8 * MiB, ext, SM_ARRAY_LEN(ext), 3);
	/* Longer than the source, with data where the source has holes. */
	make_sparse(dst, 12 * MiB, junk, SM_ARRAY_LEN(junk), 99);
	assert_int_equal(sm_copy_file(src, dst, NULL, NULL, &stats), 0);
	assert_int_equal(stat_of(dst).st_size, 8 * MiB);
	assert_same_content(src, dst);
	assert_int_equal(stats.data_bytes, data_bytes(src));
	free(src);
	free(dst);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 1 * MiB }, { 20 * MiB, 3 * MiB } };
	char *src = path_in(f, "cancel.img");
	char *dst = path_in(f, "cancel.img.copy");
	struct progress prog = { .cancel = true };
	struct sm_copy_stats stats;

	make_sparse(src, 24 * MiB, ext, SM_ARRAY_LEN(ext), 5);
	make_file(dst, "");
	sm_error_clear();
	assert_int_equal(sm_copy_file(src, dst, on_progress, &prog, &stats), -1);
	assert_contains(sm_error_message(), "interrupted");
	assert_contains(sm_error_message(), src);
	/* Asked once, stopped at once, before the copy was complete. */
	assert_int_equal(prog.calls, 1);
	assert_true(prog.done < data_bytes(src));
	assert_int_equal(prog.total, data_bytes(src));
	assert_int_equal(stats.data_bytes, 0);
	free(src);
	free(dst);
}

static void test_symlink_destination_refused(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 64 * KiB } };
	char *src = path_in(f, "src.img");
	char *victim = path_in(f, "victim");
	char *dst = path_in(f, "link.img");
	struct sm_copy_stats stats;
	char *content;
	struct stat sb;

	make_sparse(src, 1 * MiB, ext, 1, 11);
	make_file(victim, "precious data\n");
	assert_int_equal(symlink(victim, dst), 0);
	sm_error_clear();
	assert_int_equal(sm_copy_file(src, dst, NULL, NULL, &stats), -1);
	assert_contains(sm_error_message(), dst);
	/* The link is still a link and its target untouched. */
	assert_int_equal(lstat(dst, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	content = unit_read_file(victim);
	assert_string_equal(content, "precious data\n");
	free(content);
	free(src);
	free(victim);
	free(dst);
}

static void test_missing_source(void **state)
{
	struct fixture *f = *state;
	char *src = path_in(f, "no-such-image.qcow2");
	char *dst = path_in(f, "dst.img");
	struct sm_copy_stats stats;
	unsigned long long n = 1;
	char *content;

	make_file(dst, "keep me\n");
	sm_error_clear();
	assert_int_equal(sm_copy_file(src, dst, NULL, NULL, &stats), -1);
	assert_contains(sm_error_message(), src);
	assert_contains(sm_error_message(), strerror(ENOENT));
	content = unit_read_file(dst);
	assert_string_equal(content, "keep me\n");
	free(content);

	sm_error_clear();
	assert_int_equal(sm_copy_data_bytes(src, &n), -1);
	assert_contains(sm_error_message(), src);
	free(src);
	free(dst);
}

/* The destination must exist: the copier never creates files. */
static void test_missing_destination(void **state)
{
	struct fixture *f = *state;
	const struct extent ext[] = { { 0, 64 * KiB } };
	char *src = path_in(f, "src.img");
	char *dst = path_in(f, "not-created.img");
	struct sm_copy_stats stats;
	struct stat sb;

	make_sparse(src, 1 * MiB, ext, 1, 13);
	sm_error_clear();
	assert_int_equal(sm_copy_file(src, dst, NULL, NULL, &stats), -1);
	assert_contains(sm_error_message(), dst);
	assert_int_equal(lstat(dst, &sb), -1);
	assert_int_equal(errno, ENOENT);
	free(src);
	free(dst);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
