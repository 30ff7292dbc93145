/* test_srcfile.c: deleting a job's source files: the identity comparison, the
 * paths deletion accepts, sm_srcfile_unlink on real files (replaced, written,
 * behind a new symlink, locked); the files a job makes, identified by the fd
 * that made them and removed through the same check (a hard link or symlink
 * at the name, no identity journaled, still in a chain); and the decision of
 * what cleanup may delete:
 * users found by probing only ever block, and only journaled files are
 * candidates at all.
 */
#include "unit.h"

#include "chain/usage.h"
#include "cleanup.h"
#include "run.h"
#include "srcfile.h"
#include "util.h"

#include <signal.h>
#include <sys/wait.h>

static char *new_file(const char *dir, const char *name, const char *text)
{
	char *path = sm_path_join(dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static struct sm_srcfile identify(const char *path, const char *role)
{
	struct sm_srcfile f;

	assert_int_equal(sm_srcfile_identify(path, &f), 0);
	f.role = sm_xstrdup(role);
	f.target = sm_xstrdup("vda");
	f.format = sm_xstrdup("raw");
	return f;
}

static void test_mismatch(void **state)
{
	struct sm_file_id want = { .dev = 1, .ino = 2, .dir_dev = 1, .dir_ino = 3,
				   .size = 100, .mtime_sec = 5, .mtime_nsec = 6 };
	struct stat dir = { .st_dev = 1, .st_ino = 3, .st_mode = S_IFDIR | 0755 };
	struct stat st = { .st_dev = 1, .st_ino = 2, .st_mode = S_IFREG | 0600, .st_size = 100 };
	struct stat s;

	(void)state;
	st.st_mtim.tv_sec = 5;
	st.st_mtim.tv_nsec = 6;
	assert_null(sm_srcfile_mismatch(&want, &dir, &st, true));
	s = st;
	s.st_ino = 9;
	assert_contains(sm_srcfile_mismatch(&want, &dir, &s, false), "another file now has its name");
	s = st;
	s.st_dev = 9;
	assert_contains(sm_srcfile_mismatch(&want, &dir, &s, false), "another file");
	s = dir;
	s.st_ino = 9;
	assert_contains(sm_srcfile_mismatch(&want, &s, &st, false), "its folder is not the one");
	s = st;
	s.st_mode = S_IFLNK | 0777;
	assert_contains(sm_srcfile_mismatch(&want, &dir, &s, false), "no longer a regular file");
	/* Size and mtime count for a read-only image, not for the overlay. */
	s = st;
	s.st_size = 101;
	assert_contains(sm_srcfile_mismatch(&want, &dir, &s, true), "its size changed");
	assert_null(sm_srcfile_mismatch(&want, &dir, &s, false));
	s = st;
	s.st_mtim.tv_nsec = 7;
	assert_contains(sm_srcfile_mismatch(&want, &dir, &s, true), "written since");
	assert_null(sm_srcfile_mismatch(&want, &dir, &s, false));
}

static void test_path_ok(void **state)
{
	(void)state;
	assert_true(sm_srcfile_path_ok("/a/b.qcow2"));
	assert_true(sm_srcfile_path_ok("/b"));
	assert_false(sm_srcfile_path_ok(NULL));
	assert_false(sm_srcfile_path_ok(""));
	assert_false(sm_srcfile_path_ok("/"));
	assert_false(sm_srcfile_path_ok("a/b"));
	assert_false(sm_srcfile_path_ok("/a/../b"));
	assert_false(sm_srcfile_path_ok("/a/./b"));
	assert_false(sm_srcfile_path_ok("/a//b"));
	assert_false(sm_srcfile_path_ok("/a/b/"));
	assert_false(sm_srcfile_path_ok("/a/.."));
	assert_true(sm_srcfile_path_ok("/a/..b/.c"));
}

static void test_unlink_same_file(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img", "data");
	struct sm_srcfile f = identify(path, "image");

	(void)state;
	assert_int_equal(sm_srcfile_unlink(&f), 1);
	assert_int_equal(access(path, F_OK), -1);
	/* Gone already: nothing to do. */
	assert_int_equal(sm_srcfile_unlink(&f), 0);
	sm_srcfile_release(&f);
	free(path);
	unit_rmtree(dir);
}

static void test_unlink_new_file_at_path(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img", "data");
	struct sm_srcfile f = identify(path, "image");
	SM_AUTOFREE char *keep = sm_path_join(dir, "keep");

	(void)state;
	/* A second name keeps the old inode from being reused at once (were it
	 * reused, the mtime would differ: see test_mismatch). */
	assert_int_equal(link(path, keep), 0);
	assert_int_equal(unlink(path), 0);
	free(new_file(dir, "img", "data"));
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&f), -1);
	assert_contains(sm_error_message(), "another file now has its name");
	assert_int_equal(access(path, F_OK), 0);
	sm_srcfile_release(&f);
	free(path);
	unit_rmtree(dir);
}

static void test_unlink_written(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img", "data");
	struct sm_srcfile img = identify(path, "image");
	struct sm_srcfile ov = identify(path, "src_overlay");
	FILE *fp;

	(void)state;
	fp = fopen(path, "a");
	assert_non_null(fp);
	fputs("more", fp);
	fclose(fp);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&img), -1);
	assert_contains(sm_error_message(), "its size changed");
	assert_int_equal(access(path, F_OK), 0);
	/* The job's own overlay is compared by device and inode only. */
	assert_int_equal(sm_srcfile_unlink(&ov), 1);
	sm_srcfile_release(&img);
	sm_srcfile_release(&ov);
	free(path);
	unit_rmtree(dir);
}

/* The folder swapped for a symlink (to the same folder or another): refused,
 * and nothing behind the symlink is deleted. */
static void test_unlink_symlinked_folder(void **state)
{
	char *dir = unit_mkdtemp();
	SM_AUTOFREE char *src = sm_path_join(dir, "src");
	SM_AUTOFREE char *aside = sm_path_join(dir, "aside");
	SM_AUTOFREE char *moved = sm_path_join(aside, "img");
	struct sm_srcfile f;
	char *path;

	(void)state;
	assert_int_equal(mkdir(src, 0755), 0);
	path = new_file(src, "img", "data");
	f = identify(path, "image");
	assert_int_equal(rename(src, aside), 0);
	assert_int_equal(symlink(aside, src), 0);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&f), -1);
	assert_contains(sm_error_message(), "reached through a symbolic link");
	assert_int_equal(access(moved, F_OK), 0);
	sm_srcfile_release(&f);
	free(path);
	unit_rmtree(dir);
}

static void test_unlink_locked(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img", "data");
	struct sm_srcfile f = identify(path, "image");
	int ready[2];
	pid_t pid;
	char c;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* QEMU's permission byte 100, as a QEMU holding the image would. */
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
				    .l_start = 100, .l_len = 1 };
		int fd = open(path, O_RDONLY);

		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0 || write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&f), -1);
	assert_contains(sm_error_message(), "holds QEMU's lock on it");
	assert_int_equal(access(path, F_OK), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(sm_srcfile_unlink(&f), 1);
	sm_srcfile_release(&f);
	free(path);
	unit_rmtree(dir);
}

/* A process that has the file open only a moment (another snapmove's
 * qemu-img reading the folder's headers: t0071 kept a source that way) is
 * waited for; the file goes once it lets go. */
static void test_unlink_open_briefly(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img", "data");
	struct sm_srcfile f = identify(path, "image");
	int ready[2];
	pid_t pid;
	char c;

	(void)state;
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const struct timespec t = { 0, 300 * 1000000L };
		int fd = open(path, O_RDONLY);

		if (fd < 0 || write(ready[1], "x", 1) != 1)
			_exit(1);
		nanosleep(&t, NULL);
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&f), 1);
	assert_int_equal(access(path, F_OK), -1);
	waitpid(pid, NULL, 0);
	sm_srcfile_release(&f);
	free(path);
	unit_rmtree(dir);
}

static void add_use(struct sm_usage *u, const char *path, const char *user)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	u->uses = sm_xrealloc(u->uses, (u->n + 1) * sizeof(*u->uses));
	u->uses[u->n++] = (struct sm_image_use){ .dev = sb.st_dev, .ino = sb.st_ino,
						 .path = sm_xstrdup(path),
						 .user = sm_xstrdup(user) };
}

static struct sm_cleanup_item item(const char *path)
{
	return (struct sm_cleanup_item){ .path = sm_xstrdup(path) };
}

/* Which of items a..c stay blocked with the uses of mask (bit i: use i). */
static unsigned blocked_with(const char *const *paths, unsigned mask)
{
	SM_AUTOFREE char *ua = sm_xasprintf("image '%s'", paths[0]);
	SM_AUTOFREE char *ub = sm_xasprintf("image '%s'", paths[1]);
	struct { const char *path, *user; } uses[] = {
		{ paths[0], ub },                        /* b (going away) backs on a */
		{ paths[1], "image '/elsewhere/x'" },    /* something else on b */
		{ paths[2], "domain 'web' disk vda" },   /* a domain on c */
		{ paths[2], ua },                        /* a (going away) on c */
		{ paths[0], "image '/probed/raw-with-a-fake-header'" },
	};
	struct sm_cleanup_item items[3] = { item(paths[0]), item(paths[1]), item(paths[2]) };
	struct sm_usage u = { 0 };
	unsigned out = 0;

	for (size_t i = 0; i < SM_ARRAY_LEN(uses); i++)
		if (mask & (1u << i))
			add_use(&u, uses[i].path, uses[i].user);
	sm_cleanup_block(items, 3, &u);
	for (size_t i = 0; i < 3; i++) {
		if (items[i].blocker)
			out |= 1u << i;
		free(items[i].path);
		free(items[i].blocker);
	}
	sm_usage_release(&u);
	return out;
}

static void test_block_decision(void **state)
{
	char *dir = unit_mkdtemp();
	char *a = new_file(dir, "a", "a"), *b = new_file(dir, "b", "b"), *c = new_file(dir, "c", "c");
	const char *const paths[] = { a, b, c };

	(void)state;
	/* Nothing uses them: all may go. */
	assert_int_equal(blocked_with(paths, 0), 0);
	/* b backs on a, and b goes too: a may go. */
	assert_int_equal(blocked_with(paths, 1u << 0), 0);
	/* Something else uses b: b stays, and so does a under it. */
	assert_int_equal(blocked_with(paths, 1u << 0 | 1u << 1), 1u << 0 | 1u << 1);
	/* A domain uses c. */
	assert_int_equal(blocked_with(paths, 1u << 2), 1u << 2);
	/* A probed file "uses" a: a stays. */
	assert_int_equal(blocked_with(paths, 1u << 4), 1u << 0);
	/* The invariant, over every set of uses: one more use never unblocks an
	 * image (what a probe finds can only keep files). */
	for (unsigned m = 0; m < 32; m++)
		for (unsigned extra = 0; extra < 5; extra++) {
			unsigned before = blocked_with(paths, m);
			unsigned after = blocked_with(paths, m | 1u << extra);

			if ((before & after) != before) {
				print_error("uses %#x block %#x; with use %u added: %#x\n", m, before,
					    extra, after);
				fail();
			}
		}
	free(a);
	free(b);
	free(c);
	unit_rmtree(dir);
}

static void test_backing_path(void **state)
{
	SM_AUTOFREE char *abs = sm_usage_backing_path("/d/x/top.qcow2", "/b/base.qcow2");
	SM_AUTOFREE char *file = sm_usage_backing_path("/d/x/top.qcow2", "file:/b/base.qcow2");
	SM_AUTOFREE char *rel = sm_usage_backing_path("/d/x/top.qcow2", "../y/base.qcow2");
	SM_AUTOFREE char *bare = sm_usage_backing_path("/d/x/top.qcow2", "base.qcow2");
	SM_AUTOFREE char *frel = sm_usage_backing_path("/d/x/top.qcow2", "file:base.qcow2");
	SM_AUTOFREE char *colon = sm_usage_backing_path("/d/x/top.qcow2", "a/b:c.qcow2");

	(void)state;
	assert_string_equal(abs, "/b/base.qcow2");
	assert_string_equal(file, "/b/base.qcow2");
	assert_string_equal(rel, "/d/x/../y/base.qcow2");
	assert_string_equal(bare, "/d/x/base.qcow2");
	assert_string_equal(frel, "/d/x/base.qcow2");
	assert_string_equal(colon, "/d/x/a/b:c.qcow2");
	assert_null(sm_usage_backing_path("/d/x/top.qcow2", "nbd:localhost:10809"));
	assert_null(sm_usage_backing_path("/d/x/top.qcow2", "json:{\"file.filename\":\"/a\"}"));
	assert_null(sm_usage_backing_path("/d/x/top.qcow2", "file:"));
	assert_null(sm_usage_backing_path("/d/x/top.qcow2", ""));
	assert_null(sm_usage_backing_path("/d/x/top.qcow2", NULL));
}

/* The directory scan: a raw file dressed as qcow2 is probed (no -f), and
 * what qemu-img says it names becomes a user, nothing else. */
static char *probe_json;
static int probe_calls;
static bool probe_had_format;

static int probe_runner(const char *const *argv, struct sm_run_result *res)
{
	probe_calls++;
	for (size_t i = 0; argv[i]; i++)
		if (sm_str_eq(argv[i], "-f"))
			probe_had_format = true;
	res->status = 0;
	res->out = sm_xstrdup(probe_json);
	res->err = sm_xstrdup("");
	return 0;
}

static void test_scan_dir_probe_adds_users(void **state)
{
	char *dir = unit_mkdtemp();
	char *fake = new_file(dir, "guest.raw", "QFI\xfb and whatever the guest wrote");
	char *plain = new_file(dir, "plain.raw", "no magic here");
	char *host = new_file(dir, "host-file", "secret");
	struct sm_usage u = { 0 };

	(void)state;
	(void)plain;
	probe_json = sm_xasprintf("{\"filename\": \"%s\", \"backing-filename\": \"file:%s\"}",
				  fake, host);
	probe_calls = 0;
	probe_had_format = false;
	sm_run_set_runner(probe_runner);
	assert_int_equal(sm_usage_scan_dir(dir, &u), 0);
	sm_run_set_runner(NULL);
	assert_int_equal(probe_calls, 1);  /* the file without an image magic is skipped */
	assert_false(probe_had_format);
	{
		SM_AUTOFREE char *want = sm_xasprintf("image '%s'", fake);

		assert_string_equal(sm_usage_other_user(&u, host, NULL, NULL), want);
	}
	assert_null(sm_usage_other_user(&u, fake, NULL, NULL));
	sm_usage_release(&u);
	free(probe_json);
	free(fake);
	free(plain);
	free(host);
	unit_rmtree(dir);
}

/* A file the job makes: claimed O_EXCL, identified by its fd. */
static struct sm_srcfile made(const char *dir, const char *name, const char *role, char **path)
{
	struct sm_srcfile f;
	int fd;

	*path = sm_path_join(dir, name);
	fd = open(*path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(sm_srcfile_identify_fd(*path, fd, &f), 0);
	close(fd);
	f.role = sm_xstrdup(role);
	f.target = sm_xstrdup("vda");
	f.format = sm_xstrdup("qcow2");
	return f;
}

static void test_identify_fd(void **state)
{
	char *dir = unit_mkdtemp();
	SM_AUTOFREE char *real = sm_path_join(dir, "real");
	SM_AUTOFREE char *link = sm_path_join(dir, "link");
	SM_AUTOFREE char *want = sm_path_join(real, "ov");
	struct sm_srcfile f, g;
	struct stat st, ds;
	char *path, *lpath;

	(void)state;
	f = made(dir, "img", "dst_image", &path);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(stat(dir, &ds), 0);
	assert_string_equal(f.real_path, path);
	assert_true(f.id.dev == (unsigned long long)st.st_dev &&
		    f.id.ino == (unsigned long long)st.st_ino);
	assert_true(f.id.dir_dev == (unsigned long long)ds.st_dev &&
		    f.id.dir_ino == (unsigned long long)ds.st_ino);
	/* A folder named through a symlink is journaled resolved. */
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(symlink(real, link), 0);
	g = made(link, "ov", "src_overlay", &lpath);
	assert_string_equal(g.path, lpath);
	assert_string_equal(g.real_path, want);
	assert_int_equal(sm_srcfile_unlink(&g), 1);
	assert_int_equal(access(want, F_OK), -1);
	sm_srcfile_release(&f);
	sm_srcfile_release(&g);
	free(path);
	free(lpath);
	unit_rmtree(dir);
}

/* The name of a file the job made now leads to a root file (a hard link or a
 * symlink): kept, and the root file untouched; written (a guest's overlay):
 * still the job's, removed. */
static void test_unlink_job_file_replaced(void **state)
{
	char *dir = unit_mkdtemp();
	char *secret = new_file(dir, "secret", "precious");
	SM_AUTOFREE char *aside = sm_path_join(dir, "aside");
	struct sm_srcfile img, ov;
	char *ipath, *opath, *got;
	struct stat st;
	FILE *fp;

	(void)state;
	img = made(dir, "img", "dst_image", &ipath);
	ov = made(dir, "ov", "dst_overlay", &opath);
	assert_int_equal(rename(ipath, aside), 0);
	assert_int_equal(link(secret, ipath), 0);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&img), -1);
	assert_contains(sm_error_message(), "another file now has its name");
	assert_int_equal(lstat(secret, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(unlink(ipath), 0);
	assert_int_equal(symlink(secret, ipath), 0);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&img), -1);
	assert_contains(sm_error_message(), "another file now has its name");
	assert_int_equal(lstat(ipath, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	got = unit_read_file(secret);
	assert_string_equal(got, "precious");
	free(got);
	fp = fopen(opath, "a");
	assert_non_null(fp);
	fputs("guest writes", fp);
	fclose(fp);
	assert_int_equal(sm_srcfile_unlink(&ov), 1);
	sm_srcfile_release(&img);
	sm_srcfile_release(&ov);
	free(ipath);
	free(opath);
	free(secret);
	unit_rmtree(dir);
}

/* No identity journaled: only a regular file with one name, in its folder
 * reached without a symlink. */
static void test_unlink_no_id(void **state)
{
	char *dir = unit_mkdtemp();
	char *secret = new_file(dir, "secret", "precious");
	char *path = new_file(dir, "ov", "data");
	SM_AUTOFREE char *sub = sm_path_join(dir, "sub");
	SM_AUTOFREE char *subpath = sm_path_join(sub, "ov");
	SM_AUTOFREE char *victim = sm_path_join(dir, "victim");
	SM_AUTOFREE char *vfile = sm_path_join(victim, "ov");
	struct sm_srcfile f = { .path = path, .real_path = path, .role = (char *)"dst_overlay",
				.no_id = true };
	struct sm_srcfile g = { .path = subpath, .real_path = subpath,
				.role = (char *)"dst_overlay", .no_id = true };
	struct stat st;

	(void)state;
	assert_int_equal(unlink(path), 0);
	assert_int_equal(link(secret, path), 0);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&f), -1);
	assert_contains(sm_error_message(), "other names (hard links)");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(secret, path), 0);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&f), -1);
	assert_contains(sm_error_message(), "a symbolic link now has its name");
	assert_int_equal(lstat(secret, &st), 0);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(unlink(path), 0);
	free(new_file(dir, "ov", "data"));
	assert_int_equal(sm_srcfile_unlink(&f), 1);
	/* The folder swapped for a symlink to a folder of root's. */
	assert_int_equal(mkdir(victim, 0700), 0);
	free(new_file(victim, "ov", "precious"));
	assert_int_equal(symlink(victim, sub), 0);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink(&g), -1);
	assert_contains(sm_error_message(), "reached through a symbolic link");
	assert_int_equal(access(vfile, F_OK), 0);
	free(path);
	free(secret);
	unit_rmtree(dir);
}

static int keep_it(void *arg, const struct stat *st)
{
	int *asked = arg;

	(*asked)++;
	assert_true(S_ISREG(st->st_mode));
	sm_error("it is still in the chain of disk 'vda'");
	return -1;
}

/* The caller's check (the domain's live chain) is asked about the file
 * found, after the identity, and keeps it; not asked about another file. */
static void test_unlink_in_use(void **state)
{
	char *dir = unit_mkdtemp();
	SM_AUTOFREE char *aside = sm_path_join(dir, "aside");
	struct sm_srcfile f;
	char *path;
	int asked = 0;

	(void)state;
	f = made(dir, "ov", "dst_overlay", &path);
	sm_error_clear();
	assert_int_equal(sm_srcfile_unlink_checked(&f, keep_it, &asked), -1);
	assert_int_equal(asked, 1);
	assert_contains(sm_error_message(), "still in the chain");
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(rename(path, aside), 0);
	free(new_file(dir, "ov", "other"));
	assert_int_equal(sm_srcfile_unlink_checked(&f, keep_it, &asked), -1);
	assert_int_equal(asked, 1);
	assert_contains(sm_error_message(), "another file now has its name");
	sm_srcfile_release(&f);
	free(path);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_path_ok),
		cmocka_unit_test(test_unlink_same_file),
		cmocka_unit_test(test_unlink_new_file_at_path),
		cmocka_unit_test(test_unlink_written),
		cmocka_unit_test(test_unlink_symlinked_folder),
		cmocka_unit_test(test_unlink_locked),
		cmocka_unit_test(test_unlink_open_briefly),
		cmocka_unit_test(test_identify_fd),
		cmocka_unit_test(test_unlink_job_file_replaced),
		cmocka_unit_test(test_unlink_no_id),
		cmocka_unit_test(test_unlink_in_use),
		cmocka_unit_test(test_block_decision),
		cmocka_unit_test(test_backing_path),
		cmocka_unit_test(test_scan_dir_probe_adds_users),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
