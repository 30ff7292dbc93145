/* test_util.c: the error record and the enum tables (util.c, util.h).
 */
#include "unit.h"

#include "util.h"

#include <string.h>

/* A message that wraps the last one: the cause is read before the record is
 * written (vsnprintf may not read the buffer it writes; a long cause came
 * out cut or repeated under glibc's overlapping copy). */
static void test_error_wraps_itself(void **state)
{
	char cause[1500];

	(void)state;
	memset(cause, 'x', sizeof(cause) - 1);
	cause[sizeof(cause) - 1] = '\0';
	sm_error("%s", cause);
	sm_error("cannot remove 'f': %s; it stays", sm_error_message());
	assert_int_equal(strlen(sm_error_message()), strlen("cannot remove 'f': ") + 1499 +
			 strlen("; it stays"));
	assert_true(strncmp(sm_error_message(), "cannot remove 'f': xxx", 22) == 0);
	assert_true(strcmp(sm_error_message() + strlen(sm_error_message()) - 10, "; it stays") == 0);

	/* Longer than the record: cut, still terminated. */
	sm_error("%s %s", sm_error_message(), sm_error_message());
	assert_int_equal(strlen(sm_error_message()), 2047);
	sm_error_clear();
	assert_string_equal(sm_error_message(), "unknown error");
}

/* An enum of the test's own through SM_ENUM_IMPL: both ways, and the edges. */
enum color { COLOR_RED, COLOR_GREEN, COLOR_BLUE, COLOR_LAST };
SM_ENUM_IMPL(color, enum color, COLOR_LAST, "red", "green", "blue")

static void test_enum_impl(void **state)
{
	static const char *const want[] = { "red", "green", "blue" };

	(void)state;
	for (int c = 0; c < COLOR_LAST; c++) {
		assert_string_equal(sm_color_name((enum color)c), want[c]);
		assert_int_equal(sm_color_from_name(want[c]), c);
		assert_int_equal(sm_color_from_name(sm_color_name((enum color)c)), c);
	}
	assert_int_equal(sm_color_from_name("purple"), -1);
	assert_int_equal(sm_color_from_name(""), -1);
	assert_int_equal(sm_color_from_name("Red"), -1);
	assert_int_equal(sm_color_from_name("red "), -1);
	assert_int_equal(sm_color_from_name("unknown"), -1);
	assert_int_equal(sm_color_from_name(NULL), -1);
	assert_string_equal(sm_color_name(COLOR_LAST), "unknown");
	assert_string_equal(sm_color_name((enum color)-1), "unknown");
	assert_string_equal(sm_color_name((enum color)1000), "unknown");
	/* The helpers alone: an empty table knows no name. */
	assert_int_equal(sm_enum_from_name(want, 0, "red"), -1);
	assert_string_equal(sm_enum_name(want, 0, 0), "unknown");
}

/* The first error survives a cleanup that records its own. */
static void test_error_preserve_restore(void **state)
{
	char *err;

	(void)state;
	sm_error("the first cause");
	err = sm_error_preserve();
	sm_error("a cleanup failed too");
	sm_error_restore(&err);
	assert_null(err);
	assert_string_equal(sm_error_message(), "the first cause");
	sm_error_restore(&err);  /* NULL: nothing */
	assert_string_equal(sm_error_message(), "the first cause");
	sm_error_clear();
	err = sm_error_preserve();
	assert_string_equal(err, "unknown error");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_wraps_itself),
		cmocka_unit_test(test_enum_impl),
		cmocka_unit_test(test_error_preserve_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
