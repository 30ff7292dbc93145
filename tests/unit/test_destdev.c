/* test_destdev.c: a block device as a destination (src/job/destdev.c): what a
 * --dest-dev argument may name, and a journaled device replaced by a file
 * (or by another device) is never opened for writing.  Real device checks
 * (mounted, used by a domain, too small) are t0213's.
 */
#include "unit.h"

#include "job/destdev.h"
#include "util.h"

#include <sys/sysmacros.h>

static void test_resolve_refuses(void **state)
{
	char *dir = unit_mkdtemp();
	SM_AUTOFREE char *file = sm_path_join(dir, "disk.img");
	SM_AUTOFREE char *link = sm_path_join(dir, "link");
	char *path = NULL;
	unsigned long long rdev = 0;
	FILE *f;

	(void)state;
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(sm_destdev_resolve("dev/loop0", &path, &rdev), -1);
	assert_non_null(strstr(sm_error_message(), "not an absolute path"));
	assert_int_equal(sm_destdev_resolve(file, &path, &rdev), -1);
	assert_non_null(strstr(sm_error_message(), "is not a block device"));
	/* A link in a folder others may write (mkdtemp: 0700, so widen it). */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(symlink("/dev/null", link), 0);
	assert_int_equal(sm_destdev_resolve(link, &path, &rdev), -1);
	assert_non_null(strstr(sm_error_message(), "is a symbolic link that root does not own"));
	assert_null(path);
	unit_rmtree(dir);
}

/* The journaled device replaced by a regular file, or by another device
 * number: refused before anything is written. */
static void test_open_checks_rdev(void **state)
{
	char *dir = unit_mkdtemp();
	SM_AUTOFREE char *file = sm_path_join(dir, "was-a-device");
	FILE *f;

	(void)state;
	f = fopen(file, "w");
	assert_non_null(f);
	fputs("data", f);
	fclose(f);
	assert_int_equal(sm_destdev_open(file, makedev(7, 0)), -1);
	assert_non_null(strstr(sm_error_message(), "is no longer the device 7:0 the job checked"));
	unit_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_refuses),
		cmocka_unit_test(test_open_checks_rdev),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
