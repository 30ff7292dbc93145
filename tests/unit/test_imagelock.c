/* test_imagelock.c: QEMU's image locks seen from outside: a file nobody locks,
 * a lock on QEMU's bytes taken by another process, a real qemu-io holding an
 * image, and the names of the processes that have a file open.
 */
#include "unit.h"

#include "chain/imagelock.h"
#include "util.h"

#include <signal.h>
#include <sys/wait.h>

static char *new_file(const char *dir, const char *name)
{
	char *path = sm_path_join(dir, name);
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	return path;
}

static void test_unlocked(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img");
	bool locked = true;

	(void)state;
	assert_int_equal(sm_imagelock_probe(path, &locked), 0);
	assert_false(locked);
	free(path);
	unit_rmtree(dir);
}

/* A child takes an OFD read lock on byte 'at', says so, and waits to be killed. */
static pid_t lock_in_child(const char *path, off_t at)
{
	int ready[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
				    .l_start = at, .l_len = 1 };
		int fd = open(path, O_RDONLY);

		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_locked_by_another(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img");
	SM_AUTOFREE char *who = NULL;
	SM_AUTOFREE char *want = NULL;
	bool locked = false;
	pid_t pid;

	(void)state;
	/* A lock outside QEMU's bytes is not QEMU's. */
	pid = lock_in_child(path, 0);
	assert_int_equal(sm_imagelock_probe(path, &locked), 0);
	assert_false(locked);
	stop_child(pid);

	/* The shared-permission bytes (200 and up) count as well as 100. */
	for (off_t at = 100; at <= 201; at += 101) {
		pid = lock_in_child(path, at);
		assert_int_equal(sm_imagelock_probe(path, &locked), 0);
		assert_true(locked);
		who = sm_imagelock_holders(path);
		want = sm_xasprintf("(pid %d)", (int)pid);
		assert_non_null(who);
		assert_contains(who, want);
		free(sm_steal(&who));
		free(sm_steal(&want));
		stop_child(pid);
	}
	assert_int_equal(sm_imagelock_probe(path, &locked), 0);
	assert_false(locked);
	assert_null(sm_imagelock_holders(path));
	free(path);
	unit_rmtree(dir);
}

/* The real thing: qemu-io has the image open as QEMU would. */
static void test_qemu_io_holds(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img.raw");
	SM_AUTOFREE char *who = NULL;
	bool locked = false;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		dup2(devnull, STDOUT_FILENO);
		execlp("qemu-io", "qemu-io", "-f", "raw", "-c", "sleep 20000", path,
		       (char *)NULL);
		_exit(127);
	}
	/* Until qemu-io has opened it: 30 s at most (a loaded machine). */
	for (int i = 0; i < 1200 && !locked; i++) {
		assert_int_equal(sm_imagelock_probe(path, &locked), 0);
		if (!locked)
			usleep(25000);
	}
	assert_true(locked);
	who = sm_imagelock_holders(path);
	assert_non_null(who);
	assert_contains(who, "qemu-io");
	stop_child(pid);
	assert_int_equal(sm_imagelock_probe(path, &locked), 0);
	assert_false(locked);
	free(path);
	unit_rmtree(dir);
}

/* qemu-io holding an image, read-write or read-only (-r), until killed. */
static pid_t qemu_io_in_child(const char *path, bool readonly, bool *locked)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		dup2(devnull, STDOUT_FILENO);
		if (readonly)
			execlp("qemu-io", "qemu-io", "-r", "-f", "raw", "-c", "sleep 20000", path,
			       (char *)NULL);
		else
			execlp("qemu-io", "qemu-io", "-f", "raw", "-c", "sleep 20000", path,
			       (char *)NULL);
		_exit(127);
	}
	*locked = false;
	/* Until qemu-io has opened it: 30 s at most (a loaded machine). */
	for (int i = 0; i < 1200 && !*locked; i++) {
		assert_int_equal(sm_imagelock_probe(path, locked), 0);
		if (!*locked)
			usleep(25000);
	}
	return pid;
}

/* The write permission's byte tells a writer from a reader. */
static void test_qemu_io_writes(void **state)
{
	char *dir = unit_mkdtemp();
	char *path = new_file(dir, "img.raw");
	bool locked, writing = true;
	pid_t pid;

	(void)state;
	assert_int_equal(sm_imagelock_probe_write(path, &writing), 0);
	assert_false(writing);
	pid = qemu_io_in_child(path, false, &locked);
	assert_true(locked);
	assert_int_equal(sm_imagelock_probe_write(path, &writing), 0);
	assert_true(writing);
	stop_child(pid);

	pid = qemu_io_in_child(path, true, &locked);
	assert_true(locked);
	assert_int_equal(sm_imagelock_probe_write(path, &writing), 0);
	assert_false(writing);
	stop_child(pid);
	assert_int_equal(sm_imagelock_probe_write(path, &writing), 0);
	assert_false(writing);
	assert_int_equal(sm_imagelock_probe_write("/nonexistent/img", &writing), -1);
	free(path);
	unit_rmtree(dir);
}

static void test_refuses_non_images(void **state)
{
	char *dir = unit_mkdtemp();
	SM_AUTOFREE char *link = sm_path_join(dir, "link");
	SM_AUTOFREE char *missing = sm_path_join(dir, "missing");
	bool locked = true;

	(void)state;
	assert_int_equal(sm_imagelock_probe(missing, &locked), -1);
	assert_contains(sm_error_message(), "missing");
	assert_int_equal(sm_imagelock_probe(dir, &locked), -1);
	assert_contains(sm_error_message(), "not a regular file");
	/* Never through a link: the caller names the file itself. */
	assert_int_equal(symlink("/etc/passwd", link), 0);
	assert_int_equal(sm_imagelock_probe(link, &locked), -1);
	assert_false(locked);
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlocked),
		cmocka_unit_test(test_locked_by_another),
		cmocka_unit_test(test_qemu_io_holds),
		cmocka_unit_test(test_qemu_io_writes),
		cmocka_unit_test(test_refuses_non_images),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
