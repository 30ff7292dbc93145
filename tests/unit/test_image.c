/* test_image.c: the qemu-img wrappers with a fake runner (argv recorded,
 * output canned): formats always explicit, JSON parsed, destination names
 * claimed safely; and the real runner on /bin/sh.
 */
#include "unit.h"

#include "chain/chain.h"
#include "chain/image.h"
#include "run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>

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
	assert_false(info.encrypted);
	sm_image_info_release(&info);

	/* A LUKS-encrypted qcow2 (qemu-img 7.2) says so. */
	assert_int_equal(sm_image_info_parse(
		"{\"virtual-size\": 67108864, \"filename\": \"enc.qcow2\", "
		"\"format\": \"qcow2\", \"actual-size\": 2297856, "
		"\"format-specific\": {\"type\": \"qcow2\", \"data\": {\"compat\": \"1.1\", "
		"\"encrypt\": {\"format\": \"luks\", \"cipher-alg\": \"aes-256\"}}}, "
		"\"encrypted\": true, \"dirty-flag\": false}", &info), 0);
	assert_true(info.encrypted);
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


/* qcow2's external data file is reported, so a chain holding one is refused. */
static void test_info_parse_data_file(void **state)
{
	struct sm_image_info info;

	(void)state;
	assert_int_equal(sm_image_info_parse(
		"{\"virtual-size\": 16777216, \"filename\": \"df.qcow2\", \"format\": \"qcow2\", "
		"\"format-specific\": {\"type\": \"qcow2\", \"data\": {\"compat\": \"1.1\", "
		"\"data-file\": \"/host/d.raw\", \"data-file-raw\": true}}, "
		"\"dirty-flag\": false}", &info), 0);
	assert_string_equal(info.data_file, "/host/d.raw");
	assert_null(info.backing);
	sm_image_info_release(&info);
	assert_null(info.data_file);
	/* Odd shapes are no data file, not a crash. */
	assert_int_equal(sm_image_info_parse("{\"virtual-size\": 1, \"format-specific\": "
					     "{\"data\": {\"data-file\": 7}}}", &info), 0);
	assert_null(info.data_file);
	sm_image_info_release(&info);
	assert_int_equal(sm_image_info_parse("{\"virtual-size\": 1, \"format-specific\": "
					     "\"x\"}", &info), 0);
	assert_null(info.data_file);
	sm_image_info_release(&info);
}

/* The json: filename of a chain names every file and format and ends in
 * "backing": null; a format without backing files gets no "backing" key. */
/* A block device is opened with host_device: named so by libvirt, or a
 * device node at the path (never a symbolic link to one). */
static void test_chain_spec_device(void **state)
{
	const char *dir = "/tmp";
	const struct sm_image named = { .path = (char *)"/dev/vg/data", .type = (char *)"block",
					.format = (char *)"raw" };
	const struct sm_image node = { .path = (char *)"/dev/loop0", .format = (char *)"qcow2" };
	char link[64];
	struct sm_image linked = { .path = link, .format = (char *)"raw" };
	struct stat sb;
	char *spec;

	(void)state;
	spec = sm_image_chain_spec(&named, 1);
	assert_non_null(strstr(spec, "\"file\":{\"driver\":\"host_device\",\"filename\":\"/dev/vg/data\"}"));
	free(spec);
	if (stat("/dev/loop0", &sb) < 0 || !S_ISBLK(sb.st_mode))
		skip();
	spec = sm_image_chain_spec(&node, 1);
	assert_non_null(strstr(spec, "\"driver\":\"host_device\""));
	free(spec);
	snprintf(link, sizeof(link), "%s/sm-unit-dev-%d", dir, (int)getpid());
	unlink(link);
	assert_int_equal(symlink("/dev/loop0", link), 0);
	spec = sm_image_chain_spec(&linked, 1);
	unlink(link);
	assert_null(strstr(spec, "host_device"));
	assert_non_null(strstr(spec, "\"driver\":\"file\""));
	free(spec);
}

static void test_chain_spec(void **state)
{
	const struct sm_image chain[] = {
		{ .path = (char *)"/a/top,x\"y.qcow2", .format = (char *)"qcow2" },
		{ .path = (char *)"/b/mid:1.qcow2", .format = (char *)"qcow2" },
		{ .path = (char *)"/c/base.raw", .format = (char *)"raw" },
	};
	char *spec = sm_image_chain_spec(chain, 3);
	struct json_object *root, *node, *v;

	(void)state;
	assert_non_null(spec);
	assert_true(strncmp(spec, "json:{", 6) == 0);
	root = json_tokener_parse(spec + 5);
	assert_non_null(root);
	node = root;
	for (size_t i = 0; i < 3; i++) {
		assert_true(json_object_object_get_ex(node, "driver", &v));
		assert_string_equal(json_object_get_string(v), chain[i].format);
		assert_true(json_object_object_get_ex(node, "file", &v));
		assert_string_equal(json_object_get_string(
			json_object_object_get(v, "driver")), "file");
		assert_string_equal(json_object_get_string(
			json_object_object_get(v, "filename")), chain[i].path);
		if (i < 2) {
			assert_true(json_object_object_get_ex(node, "backing", &node));
			assert_non_null(node);
		}
	}
	/* raw at the bottom: no "backing" key at all. */
	assert_false(json_object_object_get_ex(node, "backing", &v));
	json_object_put(root);
	free(spec);

	/* qcow2 at the bottom: "backing": null, its header's name not followed. */
	spec = sm_image_chain_spec(chain, 2);
	assert_contains(spec, "\"backing\":null");
	root = json_tokener_parse(spec + 5);
	node = json_object_object_get(root, "backing");
	assert_true(json_object_object_get_ex(node, "backing", &v));
	assert_null(v);
	json_object_put(root);
	free(spec);

	/* A raw image with something below it is not a chain. */
	sm_error_clear();
	spec = sm_image_chain_spec(&chain[2], 1);
	assert_string_equal(spec, "json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
			    "\"filename\":\"/c/base.raw\"}}");
	free(spec);
	assert_null(sm_image_chain_spec((const struct sm_image[]){ chain[2], chain[0] }, 2));
	assert_contains(sm_error_message(), "has no backing file");
	assert_null(sm_image_chain_spec(chain, 0));
}

static const struct sm_image test_chain3[] = {
	{ .path = (char *)"/s/top.qcow2", .format = (char *)"qcow2" },
	{ .path = (char *)"/s/mid.qcow2", .format = (char *)"qcow2" },
	{ .path = (char *)"/t/base.raw", .format = (char *)"raw" },
};

/* Every call that reads through a chain gets it pinned, never a bare path. */
static void test_convert_compare_commit_check_pinned(void **state)
{
	SM_AUTOFREE char *spec = sm_image_chain_spec(test_chain3, 3);
	SM_AUTOFREE char *alone = NULL;
	SM_AUTOFREE char *ovl = NULL;
	const struct sm_image one = { .path = (char *)"/d/top.qcow2", .format = (char *)"raw" };
	const struct sm_image two[] = {
		{ .path = (char *)"/d/ovl.qcow2", .format = (char *)"qcow2" },
		{ .path = (char *)"/d/top.qcow2", .format = (char *)"qcow2" },
	};

	(void)state;
	assert_int_equal(sm_image_convert(test_chain3, 3, "/d/top.qcow2", "raw", false), 0);
	assert_argv((const char *const[]){ "qemu-img", "convert", "-n", "-f", "qcow2", "-O",
					   "raw", spec, "/d/top.qcow2", NULL });
	/* --dest-zeroed: the caller says the target reads as zeros. */
	assert_int_equal(sm_image_convert(test_chain3, 3, "/dev/x", "raw", true), 0);
	assert_argv((const char *const[]){ "qemu-img", "convert", "-n", "-f", "qcow2", "-O",
					   "raw", "--target-is-zero", spec, "/dev/x", NULL });

	alone = sm_image_chain_spec(&one, 1);
	assert_int_equal(sm_image_compare(test_chain3, 3, "/d/top.qcow2", "raw"), 0);
	assert_argv((const char *const[]){ "qemu-img", "compare", "-U", "-f", "qcow2", "-F",
					   "raw", spec, alone, NULL });

	ovl = sm_image_chain_spec(two, 2);
	assert_int_equal(sm_image_commit("/d/ovl.qcow2", "/d/top.qcow2", "qcow2"), 0);
	assert_argv((const char *const[]){ "qemu-img", "commit", "-q", "-f", "qcow2", ovl, NULL });
	assert_contains(ovl, "\"backing\":null");

	/* The rebase of a stream back reads the chain the overlay is on pinned,
	 * and the new backing's chain too (the overlay over top over mid over
	 * base, onto mid); then the header gets mid's plain name. */
	{
		const struct sm_image four[] = {
			{ .path = (char *)"/s/ov.qcow2", .format = (char *)"qcow2" },
			test_chain3[0], test_chain3[1], test_chain3[2],
		};
		SM_AUTOFREE char *all = sm_image_chain_spec(four, 4);
		SM_AUTOFREE char *lower = sm_image_chain_spec(&test_chain3[1], 2);
		int before;

		fake.status = 1;  /* the first run fails: its argv stays */
		assert_int_equal(sm_image_rebase_safe(four, 4, 2), -1);
		assert_argv((const char *const[]){ "qemu-img", "rebase", "-f", "qcow2", "-F",
						   "qcow2", "-b", lower, all, NULL });
		assert_contains(lower, "\"filename\":\"/t/base.raw\"");
		assert_not_contains(lower, "top.qcow2");
		fake.status = 0;
		before = fake.calls;
		assert_int_equal(sm_image_rebase_safe(four, 4, 2), 0);
		assert_int_equal(fake.calls, before + 2);
		assert_argv((const char *const[]){ "qemu-img", "rebase", "-u", "-f", "qcow2", "-F",
						   "qcow2", "-b", "/s/mid.qcow2", "/s/ov.qcow2",
						   NULL });
	}
	assert_int_equal(sm_image_rebase_safe(two, 2, 2), 0);
	assert_argv((const char *const[]){ "qemu-img", "rebase", "-f", "qcow2", "-b", "", ovl,
					   NULL });

	free(alone);
	alone = sm_image_chain_spec(&two[1], 1);
	assert_int_equal(sm_image_check("/d/top.qcow2", "qcow2"), 0);
	assert_argv((const char *const[]){ "qemu-img", "check", "-U", "-q", "-f", "qcow2", alone,
					   NULL });
	assert_contains(alone, "\"backing\":null");
}

static void assert_resolves(const char *image, const char *backing, const char *want)
{
	char *got = sm_image_backing_resolve(image, backing);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_backing_resolve(void **state)
{
	(void)state;
	assert_resolves("/a/b/top.qcow2", "base.raw", "/a/b/base.raw");
	assert_resolves("/a/b/top.qcow2", "../t/base.raw", "/a/b/../t/base.raw");
	assert_resolves("/a/b/top.qcow2", "/abs/base.raw", "/abs/base.raw");
	assert_resolves("/a/b/top.qcow2", "/abs/with:colon.raw", "/abs/with:colon.raw");
	assert_resolves("/a/b/top.qcow2", "dir/with:colon.raw", "/a/b/dir/with:colon.raw");
	assert_resolves("/a/b/top.qcow2", "nbd:localhost:10809", NULL);
	assert_resolves("/a/b/top.qcow2", "file:/etc/shadow", NULL);
	assert_resolves("/a/b/top.qcow2", "json:{\"driver\":\"raw\"}", NULL);
	assert_resolves("/a/b/top.qcow2", "", NULL);
}

/* ---- sm_image_check_chain against real images ---- */

static bool have_qemu_img(void)
{
	sm_run_set_runner(NULL);
	return sm_run((const char *const[]){ "qemu-img", "--version", NULL }, NULL) == 0;
}

static void qimg(const char *const *argv)
{
	assert_int_equal(sm_run(argv, NULL), 0);
}

static struct sm_disk *disk_of(const char *const *paths, const char *const *formats, size_t n)
{
	struct sm_disk *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->target = sm_xstrdup("vda");
	d->device = sm_xstrdup("disk");
	d->chain_known = true;
	d->chain = sm_xcalloc(n, sizeof(*d->chain));
	d->nchain = n;
	for (size_t i = 0; i < n; i++)
		d->chain[i] = (struct sm_image){ .path = sm_xstrdup(paths[i]),
						 .type = sm_xstrdup("file"),
						 .format = sm_xstrdup(formats[i]) };
	return d;
}

static void disk_free(struct sm_disk *d)
{
	struct sm_domain_disks dd = { .disks = d, .ndisks = 1 };

	sm_domain_disks_release(&dd);
}

static void expect_chain(struct sm_disk *d, bool from_headers, const char *want)
{
	char *why = sm_image_check_chain(d, from_headers, NULL);

	if (!want) {
		if (why)
			print_error("refused: %s\n", why);
		assert_null(why);
	} else {
		assert_non_null(why);
		assert_contains(why, want);
		free(why);
	}
	disk_free(d);
}

static void test_check_chain(void **state)
{
	const char *dir = test_dir(state);
	SM_AUTOFREE char *base = sm_path_join(dir, "base.raw");
	SM_AUTOFREE char *other = sm_path_join(dir, "other.raw");
	SM_AUTOFREE char *top = sm_path_join(dir, "top.qcow2");
	SM_AUTOFREE char *link = sm_path_join(dir, "link.raw");
	SM_AUTOFREE char *df = sm_path_join(dir, "df.qcow2");
	SM_AUTOFREE char *dfraw = sm_path_join(dir, "df.raw");
	SM_AUTOFREE char *opt = sm_xasprintf("data_file=%s", dfraw);
	SM_AUTOFREE char *sub = sm_path_join(dir, "sub");
	SM_AUTOFREE char *viatop = sm_path_join(dir, "sub/via.qcow2");
	SM_AUTOFREE char *viabase = sm_path_join(dir, "sub/../base.raw");
	SM_AUTOFREE char *fifo = sm_path_join(dir, "fifo");

	if (!have_qemu_img())
		skip();
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "raw", base, "1M", NULL });
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "raw", other, "1M", NULL });
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
				    "base.raw", top, NULL });
	/* As libvirt reports it, and as the headers name it. */
	expect_chain(disk_of((const char *[]){ top, base }, (const char *[]){ "qcow2", "raw" }, 2),
		     false, NULL);
	expect_chain(disk_of((const char *[]){ top, base }, (const char *[]){ "qcow2", "raw" }, 2),
		     true, NULL);
	/* The bottom's header names a file libvirt does not report. */
	expect_chain(disk_of((const char *[]){ top }, (const char *[]){ "qcow2" }, 1), false,
		     "names a backing file 'base.raw' that libvirt does not report");
	/* The header names another file, or records another format. */
	expect_chain(disk_of((const char *[]){ top, other }, (const char *[]){ "qcow2", "raw" }, 2),
		     false, "names 'base.raw' as its backing file but libvirt reports");
	expect_chain(disk_of((const char *[]){ top, base }, (const char *[]){ "qcow2", "qcow2" }, 2),
		     false, "records its backing file 'base.raw' as raw but libvirt opened it as qcow2");
	/* A raw image is data: a qcow2 header in it names nothing. */
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
				    "/etc/shadow", other, "1M", NULL });
	expect_chain(disk_of((const char *[]){ other }, (const char *[]){ "raw" }, 1), false, NULL);
	/* A symbolic link, a FIFO. */
	assert_int_equal(symlink("base.raw", link), 0);
	expect_chain(disk_of((const char *[]){ link }, (const char *[]){ "raw" }, 1), false,
		     "is a symbolic link");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	expect_chain(disk_of((const char *[]){ fifo }, (const char *[]){ "raw" }, 1), false,
		     "is not a regular file");
	/* An external data file. */
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-o", opt, df, "1M",
				    NULL });
	expect_chain(disk_of((const char *[]){ df }, (const char *[]){ "qcow2" }, 1), false,
		     "keeps its data in the external data file");
	/* Offline: a name through a symbolic link is refused, "../" to the real
	 * file is not. */
	assert_int_equal(mkdir(sub, 0755), 0);
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw",
				    "-b", "../link.raw", viatop, "1M", NULL });
	SM_AUTOFREE char *vialink = sm_path_join(dir, "sub/../link.raw");
	expect_chain(disk_of((const char *[]){ viatop, vialink }, (const char *[]){ "qcow2", "raw" },
			     2), true, "is a symbolic link");
	SM_AUTOFREE char *dirlink = sm_path_join(dir, "dirlink");
	SM_AUTOFREE char *viadir = sm_path_join(dir, "sub/../dirlink/base.raw");
	assert_int_equal(symlink(".", dirlink), 0);
	qimg((const char *const[]){ "qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", "raw",
				    "-b", "../dirlink/base.raw", viatop, NULL });
	expect_chain(disk_of((const char *[]){ viatop, viadir }, (const char *[]){ "qcow2", "raw" },
			     2), true, "through a symbolic link");
	/* Live, libvirt has opened that very file: a directory link is fine. */
	expect_chain(disk_of((const char *[]){ viatop, viadir }, (const char *[]){ "qcow2", "raw" },
			     2), false, NULL);
	qimg((const char *const[]){ "qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", "raw",
				    "-b", "../base.raw", viatop, NULL });
	expect_chain(disk_of((const char *[]){ viatop, viabase }, (const char *[]){ "qcow2", "raw" },
			     2), true, NULL);
	/* Offline: an image of another user naming a file that user may not read. */
	if (geteuid() == 0) {
		assert_int_equal(chmod(base, 0600), 0);
		assert_int_equal(chown(viatop, 65534, 65534), 0);
		expect_chain(disk_of((const char *[]){ viatop, viabase },
				     (const char *[]){ "qcow2", "raw" }, 2), true,
			     "belongs to uid 65534, who may not read its backing file");
		/* Live, libvirt has opened it already: not this check's business. */
		expect_chain(disk_of((const char *[]){ viatop, viabase },
				     (const char *[]){ "qcow2", "raw" }, 2), false, NULL);
		assert_int_equal(chmod(base, 0644), 0);
		expect_chain(disk_of((const char *[]){ viatop, viabase },
				     (const char *[]){ "qcow2", "raw" }, 2), true, NULL);
	}
}

/* sm_image_follow_chain pins each backing format and never follows a
 * protocol name. */
static void test_follow_chain(void **state)
{
	const char *dir = test_dir(state);
	SM_AUTOFREE char *base = sm_path_join(dir, "base.raw");
	SM_AUTOFREE char *top = sm_path_join(dir, "top.qcow2");
	struct sm_disk *d;
	char *why;

	if (!have_qemu_img())
		skip();
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
				    "-b", "/etc/shadow", base, "1M", NULL });
	qimg((const char *const[]){ "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "raw",
				    "-b", "base.raw", top, "1M", NULL });
	d = disk_of((const char *[]){ top }, (const char *[]){ "qcow2" }, 1);
	d->chain_known = false;
	assert_null(sm_image_follow_chain(d));
	/* base.raw holds a qcow2 header; read as the raw image it is recorded as,
	 * its "backing file" is not followed. */
	assert_int_equal(d->nchain, 2);
	assert_true(d->chain_known);
	assert_string_equal(d->chain[1].format, "raw");
	disk_free(d);

	qimg((const char *const[]){ "qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-F", "raw",
				    "-b", "nbd:localhost:10809", top, NULL });
	d = disk_of((const char *[]){ top }, (const char *[]){ "qcow2" }, 1);
	why = sm_image_follow_chain(d);
	assert_non_null(why);
	assert_contains(why, "through a protocol");
	free(why);
	disk_free(d);
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
		T(test_info_parse_data_file),
		T(test_chain_spec),
		T(test_chain_spec_device),
		T(test_convert_compare_commit_check_pinned),
		T(test_backing_resolve),
		T(test_check_chain),
		T(test_follow_chain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
