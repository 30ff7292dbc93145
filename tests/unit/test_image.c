/* test_image.c: the qemu-img wrappers with a fake runner (argv recorded,
 * output canned): formats always explicit, JSON parsed, destination names
 * claimed safely; and the real runner on /bin/sh.
 */
#include "unit.h"

#include "chain/image.h"
#include "run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>

#define INFO_JSON                                                              \
	"{\"virtual-size\": 67108864, \"filename\": \"/a/disk.qcow2\", "      \
	"\"format\": \"qcow2\", \"actual-size\": 200704, "                      \
	"\"backing-filename\": \"base.raw\", "                                  \
	"\"full-backing-filename\": \"/a/base.raw\", "                          \
	"\"backing-filename-format\": \"raw\", \"dirty-flag\": false}\n"

/* What the fake runner saw and what it answers. */
static struct {
	int calls;
	char *argv[32];
	size_t argc;
	bool path_claimed;  /* for create: the image existed, empty, when it ran */
	int status;
	const char *out;
	const char *err;
} fake;

static void fake_reset(void)
{
	for (size_t i = 0; i < fake.argc; i++)
		free(fake.argv[i]);
	memset(&fake, 0, sizeof(fake));
}

static int fake_runner(const char *const *argv, struct sm_run_result *res)
{
	for (size_t i = 0; i < fake.argc; i++)
		free(fake.argv[i]);
	fake.argc = 0;
	for (size_t i = 0; argv[i]; i++) {
		assert_true(fake.argc < SM_ARRAY_LEN(fake.argv));
		fake.argv[fake.argc++] = sm_xstrdup(argv[i]);
	}
	fake.calls++;
	if (fake.argc > 2 && sm_str_eq(argv[1], "create")) {
		struct stat sb;

		/* Through /proc/PID/fd/N: followed to the file. */
		fake.path_claimed = stat(argv[fake.argc - 2], &sb) == 0 && S_ISREG(sb.st_mode) &&
				    sb.st_size == 0;
	}
	res->status = fake.status;
	res->out = sm_xstrdup(fake.out ? fake.out : "");
	res->err = sm_xstrdup(fake.err ? fake.err : "");
	return 0;
}

static int setup(void **state)
{
	char **dir = calloc(1, sizeof(*dir));

	if (!dir)
		return -1;
	*dir = unit_mkdtemp();
	*state = dir;
	fake_reset();
	sm_run_set_runner(fake_runner);
	return 0;
}

static int teardown(void **state)
{
	char **dir = *state;

	sm_run_set_runner(NULL);
	fake_reset();
	unit_rmtree(*dir);
	free(dir);
	return 0;
}

/* The test's own temp directory. */
static const char *test_dir(void **state)
{
	return *(char **)*state;
}

/* Fail unless the recorded argv is exactly want (NULL-terminated). */
static void assert_argv(const char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	if (n != fake.argc) {
		print_error("argv has %zu words, expected %zu\n", fake.argc, n);
		for (size_t i = 0; i < fake.argc; i++)
			print_error("  argv[%zu] = '%s'\n", i, fake.argv[i]);
		fail();
	}
	for (size_t i = 0; i < n; i++)
		assert_string_equal(fake.argv[i], want[i]);
}

/* The argv word after flag; fails when flag is absent or last. */
static const char *arg_after(const char *flag)
{
	for (size_t i = 0; i + 1 < fake.argc; i++)
		if (sm_str_eq(fake.argv[i], flag))
			return fake.argv[i + 1];
	print_error("argv has no '%s' followed by a value\n", flag);
	fail();
	return NULL;
}

static bool has_arg(const char *word)
{
	for (size_t i = 0; i < fake.argc; i++)
		if (sm_str_eq(fake.argv[i], word))
			return true;
	return false;
}

static void test_info(void **state)
{
	struct sm_image_info info;

	(void)state;
	fake.out = INFO_JSON;
	assert_int_equal(sm_image_info("/a/disk.qcow2", "qcow2", &info), 0);
	assert_int_equal(fake.calls, 1);
	assert_int_equal(info.virtual_size, 67108864);
	assert_int_equal(info.actual_size, 200704);
	assert_string_equal(info.backing, "base.raw");
	assert_string_equal(info.backing_format, "raw");
	/* The format is told, never probed; a running image is read with -U. */
	assert_string_equal(fake.argv[0], "qemu-img");
	assert_string_equal(fake.argv[1], "info");
	assert_string_equal(arg_after("-f"), "qcow2");
	assert_true(has_arg("-U"));
	assert_true(has_arg("--output=json"));
	assert_string_equal(fake.argv[fake.argc - 1], "/a/disk.qcow2");
	assert_argv((const char *const[]){ "qemu-img", "info", "-U", "--output=json", "-f",
					   "qcow2", "/a/disk.qcow2", NULL });
	sm_image_info_release(&info);
	assert_null(info.backing);
	assert_null(info.backing_format);
	sm_image_info_release(&info);
	sm_image_info_release(NULL);
}

static void test_info_raw_without_backing(void **state)
{
	struct sm_image_info info;

	(void)state;
	fake.out = "{\"virtual-size\": 10737418240, \"filename\": \"/b/data.raw\", "
		   "\"format\": \"raw\", \"actual-size\": 1048576, \"dirty-flag\": false}";
	assert_int_equal(sm_image_info("/b/data.raw", "raw", &info), 0);
	assert_int_equal(info.virtual_size, 10737418240ULL);
	assert_int_equal(info.actual_size, 1048576);
	assert_null(info.backing);
	assert_null(info.backing_format);
	assert_string_equal(arg_after("-f"), "raw");
	assert_string_equal(fake.argv[fake.argc - 1], "/b/data.raw");
	sm_image_info_release(&info);
}

static void test_info_qemu_img_fails(void **state)
{
	struct sm_image_info info;

	(void)state;
	fake.status = 1;
	fake.err = "qemu-img: Could not open '/a/gone.qcow2': No such file or directory\n";
	sm_error_clear();
	assert_int_equal(sm_image_info("/a/gone.qcow2", "qcow2", &info), -1);
	assert_contains(sm_error_message(), "qemu-img info");
	assert_contains(sm_error_message(), "Could not open '/a/gone.qcow2'");
	assert_contains(sm_error_message(), "exit 1");
	assert_null(info.backing);

	/* Exit 0 but nothing usable printed. */
	fake.status = 0;
	fake.err = NULL;
	fake.out = "qemu-img: warning: something\n";
	assert_int_equal(sm_image_info("/a/disk.qcow2", "qcow2", &info), -1);
	assert_contains(sm_error_message(), "JSON");
	assert_null(info.backing);
}

static void assert_parse_rejects(const char *json, const char *what)
{
	struct sm_image_info info;

	sm_error_clear();
	assert_int_equal(sm_image_info_parse(json, &info), -1);
	assert_null(info.backing);
	assert_null(info.backing_format);
	assert_contains(sm_error_message(), what);
}

static void test_info_parse(void **state)
{
	struct sm_image_info info;

	(void)state;
	assert_parse_rejects("", "cannot parse");
	assert_parse_rejects("garbage", "cannot parse");
	assert_parse_rejects("{\"virtual-size\": ", "cannot parse");
	assert_parse_rejects("[{\"virtual-size\": 1}]", "cannot parse");
	assert_parse_rejects("67108864", "cannot parse");
	assert_parse_rejects("{}", "virtual-size");
	assert_parse_rejects("{\"filename\": \"/a/x.qcow2\", \"format\": \"qcow2\", "
			     "\"actual-size\": 4096, \"backing-filename\": \"b\"}", "virtual-size");
	assert_parse_rejects("{\"virtual-size\": \"lots\"}", "virtual-size");
	assert_parse_rejects("{\"virtual-size\": -1}", "virtual-size");
	/* A null backing file name is no backing file, not a crash. */
	assert_int_equal(sm_image_info_parse("{\"virtual-size\": 1, \"backing-filename\": null, "
					     "\"backing-filename-format\": null}", &info), 0);
	assert_null(info.backing);
	assert_null(info.backing_format);
	sm_image_info_release(&info);

	/* The minimum, and a real qemu-img 7 document with nested objects. */
	assert_int_equal(sm_image_info_parse("{\"virtual-size\": 1024}", &info), 0);
	assert_int_equal(info.virtual_size, 1024);
	assert_int_equal(info.actual_size, 0);
	assert_null(info.backing);
	sm_image_info_release(&info);

	assert_int_equal(sm_image_info_parse(
		"{\n"
		"    \"children\": [{\"name\": \"file\", \"info\": {\"children\": [], "
		"\"virtual-size\": 197120, \"filename\": \"/i/top.qcow2\", \"format\": \"file\", "
		"\"actual-size\": 200704, \"format-specific\": {\"type\": \"file\", \"data\": {}}, "
		"\"dirty-flag\": false}}],\n"
		"    \"backing-filename-format\": \"qcow2\",\n"
		"    \"virtual-size\": 1099511627776,\n"
		"    \"filename\": \"/i/top.qcow2\",\n"
		"    \"cluster-size\": 65536,\n"
		"    \"format\": \"qcow2\",\n"
		"    \"actual-size\": 200704,\n"
		"    \"format-specific\": {\"type\": \"qcow2\", \"data\": {\"compat\": \"1.1\", "
		"\"compression-type\": \"zlib\", \"lazy-refcounts\": false, "
		"\"refcount-bits\": 16, \"corrupt\": false, \"extended-l2\": false}},\n"
		"    \"full-backing-filename\": \"/i/../base/mid.qcow2\",\n"
		"    \"backing-filename\": \"../base/mid.qcow2\",\n"
		"    \"dirty-flag\": false\n"
		"}\n", &info), 0);
	assert_int_equal(info.virtual_size, 1ULL << 40);
	assert_int_equal(info.actual_size, 200704);
	assert_string_equal(info.backing, "../base/mid.qcow2");
	assert_string_equal(info.backing_format, "qcow2");
	sm_image_info_release(&info);
}

static void test_rebase_unsafe(void **state)
{
	(void)state;
	assert_int_equal(sm_image_rebase_unsafe("/d/top.qcow2", "qcow2", "base.raw", "raw"), 0);
	assert_int_equal(fake.calls, 1);
	assert_string_equal(fake.argv[1], "rebase");
	assert_true(has_arg("-u"));
	assert_string_equal(arg_after("-f"), "qcow2");
	assert_string_equal(arg_after("-F"), "raw");
	assert_string_equal(arg_after("-b"), "base.raw");
	assert_string_equal(fake.argv[fake.argc - 1], "/d/top.qcow2");
	assert_argv((const char *const[]){ "qemu-img", "rebase", "-u", "-f", "qcow2", "-F", "raw",
					   "-b", "base.raw", "/d/top.qcow2", NULL });

	fake.status = 1;
	fake.err = "qemu-img: Could not change the backing file to 'x'\n";
	sm_error_clear();
	assert_int_equal(sm_image_rebase_unsafe("/d/top.qcow2", "qcow2", "x", "qcow2"), -1);
	assert_contains(sm_error_message(), "qemu-img rebase");
	assert_contains(sm_error_message(), "Could not change the backing file");
	assert_string_equal(arg_after("-F"), "qcow2");
}

/* qemu-img is handed /proc/PID/fd/N of the file claimed, never its name (a
 * name another user could swap), and -u: the backing file is not opened
 * (it is looked up relative to the image's real folder later). */
static void test_create_with_backing(void **state)
{
	char *path = sm_path_join(test_dir(state), "top.qcow2");
	struct stat sb, like = { .st_uid = getuid(), .st_gid = getgid(),
				 .st_mode = S_IFREG | S_ISUID | 0640 };
	char *fdpath;
	int fd;

	fd = sm_image_create_fd(path, "qcow2", 67108864, "base.raw", "raw", &like);
	assert_true(fd >= 0);
	fdpath = sm_image_fd_path(fd);
	assert_int_equal(fake.calls, 1);
	/* The name was claimed before qemu-img ran. */
	assert_true(fake.path_claimed);
	assert_string_equal(fake.argv[1], "create");
	assert_string_equal(arg_after("-f"), "qcow2");
	assert_string_equal(arg_after("-F"), "raw");
	assert_string_equal(arg_after("-b"), "base.raw");
	assert_string_equal(fake.argv[fake.argc - 2], fdpath);
	assert_string_equal(fake.argv[fake.argc - 1], "67108864");
	assert_argv((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
					   "-b", "base.raw", "-u", fdpath, "67108864", NULL });
	assert_false(has_arg(path));
	/* The file, with like's owner and permission bits (no setuid), is fd's. */
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0640);
	assert_int_equal(sb.st_uid, getuid());
	{
		struct stat fsb;

		assert_int_equal(fstat(fd, &fsb), 0);
		assert_int_equal(fsb.st_ino, sb.st_ino);
		assert_true(fcntl(fd, F_GETFL) & O_RDWR);
	}
	close(fd);
	free(fdpath);
	free(path);
}

static void test_create_without_backing(void **state)
{
	char *path = sm_path_join(test_dir(state), "base.raw");
	struct stat sb;

	assert_int_equal(sm_image_create(path, "raw", 10737418240ULL, NULL, NULL), 0);
	assert_true(fake.path_claimed);
	assert_int_equal(fake.argc, 7);
	assert_string_equal(fake.argv[4], "raw");
	assert_true(strncmp(fake.argv[5], "/proc/", 6) == 0);
	assert_string_equal(fake.argv[6], "10737418240");
	assert_false(has_arg("-F"));
	assert_false(has_arg("-b"));
	/* Without like: root's (the caller's) alone. */
	assert_int_equal(lstat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	free(path);
}

static void test_create_refuses_existing(void **state)
{
	char *path = sm_path_join(test_dir(state), "exists.qcow2");
	char *content;

	{
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		fputs("someone's data\n", fp);
		fclose(fp);
	}
	sm_error_clear();
	errno = 0;
	assert_int_equal(sm_image_create(path, "qcow2", 1048576, NULL, NULL), -1);
	assert_int_equal(errno, EEXIST);
	assert_contains(sm_error_message(), "already exists");
	assert_contains(sm_error_message(), path);
	/* qemu-img never ran and the file is as it was. */
	assert_int_equal(fake.calls, 0);
	content = unit_read_file(path);
	assert_string_equal(content, "someone's data\n");
	free(content);
	free(path);
}

static void test_create_refuses_symlink(void **state)
{
	const char *dir = test_dir(state);
	char *victim = sm_path_join(dir, "victim.img");
	char *missing = sm_path_join(dir, "missing.img");
	char *link1 = sm_path_join(dir, "link1.qcow2");
	char *link2 = sm_path_join(dir, "link2.qcow2");
	char *content;
	struct stat sb;

	{
		FILE *fp = fopen(victim, "w");

		assert_non_null(fp);
		fputs("precious\n", fp);
		fclose(fp);
	}
	assert_int_equal(symlink(victim, link1), 0);
	assert_int_equal(symlink(missing, link2), 0);

	/* A link to an existing file: the file is not touched. */
	sm_error_clear();
	assert_int_equal(sm_image_create(link1, "qcow2", 1048576, "base.raw", "raw"), -1);
	assert_contains(sm_error_message(), link1);
	content = unit_read_file(victim);
	assert_string_equal(content, "precious\n");
	free(content);
	assert_int_equal(lstat(link1, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));

	/* A dangling link: its target is not created through it. */
	sm_error_clear();
	assert_int_equal(sm_image_create(link2, "qcow2", 1048576, NULL, NULL), -1);
	assert_contains(sm_error_message(), link2);
	assert_int_equal(lstat(missing, &sb), -1);
	assert_int_equal(lstat(link2, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	assert_int_equal(fake.calls, 0);
	free(victim);
	free(missing);
	free(link1);
	free(link2);
}

static void test_create_failure_removes_file(void **state)
{
	char *path = sm_path_join(test_dir(state), "fails.qcow2");
	struct stat sb;

	fake.status = 1;
	fake.err = "qemu-img: fails.qcow2: Backing file specified without backing format\n";
	sm_error_clear();
	assert_int_equal(sm_image_create(path, "qcow2", 1048576, "base.img", "raw"), -1);
	assert_int_equal(fake.calls, 1);
	assert_true(fake.path_claimed);
	assert_contains(sm_error_message(), "Backing file specified without backing format");
	assert_contains(sm_error_message(), "qemu-img create");
	assert_contains(sm_error_message(), "exit 1");
	/* The claimed name is released again. */
	assert_int_equal(lstat(path, &sb), -1);
	assert_int_equal(errno, ENOENT);
	/* ... so a retry can claim it. */
	fake.status = 0;
	fake.err = NULL;
	assert_int_equal(sm_image_create(path, "qcow2", 1048576, "base.img", "raw"), 0);
	assert_int_equal(lstat(path, &sb), 0);
	free(path);
}

/* ---- the real runner ---- */

static void test_real_runner_failure(void **state)
{
	struct sm_run_result res;
	size_t n;

	(void)state;
	sm_run_set_runner(NULL);
	sm_error_clear();
	assert_int_equal(sm_run((const char *const[]){ "/bin/sh", "-c",
						       "echo out; echo err >&2; exit 3", NULL },
				&res), -1);
	assert_int_equal(res.status, 3);
	assert_string_equal(res.out, "out\n");
	/* The captured stderr is left as the program wrote it; only the error
	 * message is trimmed. */
	assert_string_equal(res.err, "err\n");
	n = strlen(sm_error_message());
	assert_true(n > 0 && sm_error_message()[n - 1] != '\n');
	assert_contains(sm_error_message(), "/bin/sh");
	assert_contains(sm_error_message(), "exit 3");
	assert_contains(sm_error_message(), "err");
	sm_run_result_release(&res);
	assert_null(res.out);
	assert_null(res.err);
	sm_run_result_release(&res);

	/* Without a result to fill in, it still reports (and leaks nothing). */
	assert_int_equal(sm_run((const char *const[]){ "/bin/sh", "-c", "echo oops >&2; exit 4",
						       NULL }, NULL), -1);
	assert_contains(sm_error_message(), "exit 4");
	assert_contains(sm_error_message(), "oops");
}

static void test_real_runner_success(void **state)
{
	struct sm_run_result res;

	(void)state;
	sm_run_set_runner(NULL);
	assert_int_equal(sm_run((const char *const[]){ "/bin/sh", "-c",
						       "printf 'a\\nb\\n'; echo warn >&2", NULL },
				&res), 0);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.out, "a\nb\n");
	assert_string_equal(res.err, "warn\n");
	sm_run_result_release(&res);

	/* No output at all is an empty string, not NULL. */
	assert_int_equal(sm_run((const char *const[]){ "/bin/sh", "-c", "exit 0", NULL }, &res), 0);
	assert_string_equal(res.out, "");
	assert_string_equal(res.err, "");
	sm_run_result_release(&res);
	assert_int_equal(sm_run((const char *const[]){ "/bin/true", NULL }, NULL), 0);
}

static void test_real_runner_environment(void **state)
{
	struct sm_run_result res;
	int pipefd[2], saved_stdin;
	int rc;

	(void)state;
	sm_run_set_runner(NULL);
	/* Our stdin has data the child must not see: it gets /dev/null. */
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(write(pipefd[1], "stdin-leak\n", 11), 11);
	close(pipefd[1]);
	saved_stdin = dup(STDIN_FILENO);
	assert_true(saved_stdin >= 0);
	assert_int_equal(dup2(pipefd[0], STDIN_FILENO), STDIN_FILENO);
	close(pipefd[0]);
	/* LC_ALL=C whatever ours is, and the argv is not a shell line. */
	setenv("LC_ALL", "de_DE.UTF-8", 1);
	rc = sm_run((const char *const[]){ "/bin/sh", "-c",
					   "echo \"$LC_ALL\"; cat; echo \"$0|$1\"",
					   "a b;c", "$HOME", NULL }, &res);
	unsetenv("LC_ALL");
	dup2(saved_stdin, STDIN_FILENO);
	close(saved_stdin);
	assert_int_equal(rc, 0);
	assert_string_equal(res.out, "C\na b;c|$HOME\n");
	sm_run_result_release(&res);
}

static void test_real_runner_big_output(void **state)
{
	struct sm_run_result res;
	size_t n;

	(void)state;
	sm_run_set_runner(NULL);
	/* Far more than a pipe holds, on both streams at once. */
	assert_int_equal(sm_run((const char *const[]){ "/bin/sh", "-c",
						       "i=0; while [ $i -lt 3000 ]; do "
						       "echo 0123456789012345678901234567890123456789;"
						       " echo abcdefghijabcdefghijabcdefghij >&2;"
						       " i=$((i+1)); done", NULL }, &res), 0);
	assert_int_equal(strlen(res.out), 3000 * 41);
	assert_int_equal(strlen(res.err), 3000 * 31);
	n = 0;
	for (const char *p = res.out; (p = strchr(p, '\n')); p++)
		n++;
	assert_int_equal(n, 3000);
	sm_run_result_release(&res);
}

static void test_real_runner_signal_and_missing(void **state)
{
	struct sm_run_result res;

	(void)state;
	sm_run_set_runner(NULL);
	assert_int_equal(sm_run((const char *const[]){ "/bin/sh", "-c", "kill -9 $$", NULL },
				&res), -1);
	assert_int_equal(res.status, 128 + 9);
	sm_run_result_release(&res);

	sm_error_clear();
	assert_int_equal(sm_run((const char *const[]){ "/nonexistent/qemu-img", "info", NULL },
				&res), -1);
	assert_int_equal(res.status, 127);
	assert_contains(res.err, "cannot run '/nonexistent/qemu-img'");
	assert_contains(sm_error_message(), "/nonexistent/qemu-img info");
	sm_run_result_release(&res);
}

/* The wrappers against the installed qemu-img, when there is one. */
static void test_real_qemu_img(void **state)
{
	const char *dir = test_dir(state);
	char *base = sm_path_join(dir, "base.raw");
	char *top = sm_path_join(dir, "top.qcow2");
	char *other = sm_path_join(dir, "other.raw");
	struct sm_image_info info;

	sm_run_set_runner(NULL);
	if (sm_run((const char *const[]){ "qemu-img", "--version", NULL }, NULL) < 0) {
		free(base);
		free(top);
		free(other);
		skip();
	}
	assert_int_equal(sm_image_create(base, "raw", 4 << 20, NULL, NULL), 0);
	assert_int_equal(sm_image_create(top, "qcow2", 4 << 20, "base.raw", "raw"), 0);
	assert_int_equal(sm_image_info(top, "qcow2", &info), 0);
	assert_int_equal(info.virtual_size, 4 << 20);
	assert_true(info.actual_size > 0);
	assert_string_equal(info.backing, "base.raw");
	assert_string_equal(info.backing_format, "raw");
	sm_image_info_release(&info);

	assert_int_equal(sm_image_create(other, "raw", 4 << 20, NULL, NULL), 0);
	assert_int_equal(sm_image_rebase_unsafe(top, "qcow2", "other.raw", "raw"), 0);
	assert_int_equal(sm_image_info(top, "qcow2", &info), 0);
	assert_string_equal(info.backing, "other.raw");
	sm_image_info_release(&info);

	/* Told the wrong format, qemu-img fails instead of guessing. */
	sm_error_clear();
	assert_int_equal(sm_image_info(base, "qcow2", &info), -1);
	assert_contains(sm_error_message(), "qemu-img info");
	free(base);
	free(top);
	free(other);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_info),
		T(test_info_raw_without_backing),
		T(test_info_qemu_img_fails),
		T(test_info_parse),
		T(test_rebase_unsafe),
		T(test_create_with_backing),
		T(test_create_without_backing),
		T(test_create_refuses_existing),
		T(test_create_refuses_symlink),
		T(test_create_failure_removes_file),
		T(test_real_runner_failure),
		T(test_real_runner_success),
		T(test_real_runner_environment),
		T(test_real_runner_big_output),
		T(test_real_runner_signal_and_missing),
		T(test_real_qemu_img),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
