/* unit.h: helpers shared by the cmocka unit tests: fixtures, temp directories
 * and string assertions.  Test code only; nothing in src/ includes it.
 */
#ifndef SM_UNIT_H
#define SM_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fail unless haystack contains needle; both are printed on failure. */
#define assert_contains(haystack, needle) \
	unit_assert_contains((haystack), (needle), true, __FILE__, __LINE__)
#define assert_not_contains(haystack, needle) \
	unit_assert_contains((haystack), (needle), false, __FILE__, __LINE__)

static inline void unit_assert_contains(const char *haystack, const char *needle, bool want,
					const char *file, int line)
{
	const char *h = haystack ? haystack : "(null)";
	const char *n = needle ? needle : "(null)";

	if (!haystack || !needle) {
		print_error("assert_contains('%s', '%s') with a NULL argument\n", h, n);
		_fail(file, line);
	}
	if ((strstr(h, n) != NULL) != want) {
		print_error("'%s' %s '%s'\n", h, want ? "does not contain" : "contains", n);
		_fail(file, line);
	}
}

/* The whole of a file as a NUL-terminated string; fails the test when unreadable. */
static inline char *unit_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		print_error("cannot open '%s'\n", path);
		fail();
	}
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* A fixture from tests/unit/fixtures. */
static inline char *unit_fixture(const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", SM_FIXTURES, name);
	return unit_read_file(path);
}

/* A fresh private directory under TMPDIR (or /tmp); the caller frees the name. */
static inline char *unit_mkdtemp(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	assert_true(asprintf(&dir, "%s/snapmove-unit.XXXXXX", tmp) > 0);
	if (!mkdtemp(dir)) {
		print_error("mkdtemp under '%s' failed\n", tmp);
		free(dir);
		fail();
	}
	return dir;
}

static inline int unit_rm_one(const char *path, const struct stat *sb, int flag,
			      struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf dir (does not follow symlinks) and free its name. */
static inline void unit_rmtree(char *dir)
{
	if (!dir)
		return;
	nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

#endif
