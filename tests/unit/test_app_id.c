/* test_app_id.c - Marathon id rules: normalisation of relative paths, "." and "..",
 * segment validation, task id prefixes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "master/marathon/app_id.h"

static void expect_norm(const char *in, const char *base, const char *want)
{
	char out[APP_ID_MAX + 1], err[512] = "";

	if (app_id_normalize(in, base, out, sizeof(out), err, sizeof(err)) != 0)
		fail_msg("'%s' was rejected: %s", in, err);
	assert_string_equal(out, want);
}

static void expect_bad(const char *in, const char *base, const char *msg_part)
{
	char out[APP_ID_MAX + 1], err[512] = "";

	assert_int_equal(app_id_normalize(in, base, out, sizeof(out), err, sizeof(err)), -EINVAL);
	if (!strstr(err, msg_part))
		fail_msg("error for '%s' was '%s', expected it to mention '%s'", in, err, msg_part);
}

static void test_absolute_and_relative(void **state)
{
	(void)state;
	expect_norm("/web", NULL, "/web");
	expect_norm("web", NULL, "/web");
	expect_norm("team-a/web", NULL, "/team-a/web");
	expect_norm("web", "/team-a", "/team-a/web");
	expect_norm("/web", "/team-a", "/web");
	expect_norm("/team-a/web/", NULL, "/team-a/web");
	expect_norm("//team-a///web", NULL, "/team-a/web");
}

static void test_dots(void **state)
{
	(void)state;
	expect_norm("/a/./b", NULL, "/a/b");
	expect_norm("/a/b/../c", NULL, "/a/c");
	expect_norm("../c", "/a/b", "/a/c");
	expect_norm("/../../a", NULL, "/a");   /* ".." at the root stays at the root */
	expect_norm("./x", "/g", "/g/x");
	expect_bad("/a/..", NULL, "at least one path element");
	expect_bad("/", NULL, "at least one path element");
	expect_bad("", NULL, "at least one path element");
}

static void test_segments(void **state)
{
	(void)state;
	assert_true(app_id_segment_valid("a"));
	assert_true(app_id_segment_valid("web-1"));
	assert_true(app_id_segment_valid("a.b.c"));
	assert_true(app_id_segment_valid("0"));
	assert_false(app_id_segment_valid("Web"));
	assert_false(app_id_segment_valid("-web"));
	assert_false(app_id_segment_valid("web-"));
	assert_false(app_id_segment_valid("a..b"));
	assert_false(app_id_segment_valid(".a"));
	assert_false(app_id_segment_valid("a_b"));
	assert_false(app_id_segment_valid("a b"));
	assert_false(app_id_segment_valid(""));
	expect_bad("/team/Web", NULL, "'Web' must fully match regular expression");
	expect_bad("/a_b", NULL, "must fully match");
}

static void test_length(void **state)
{
	char long_id[200];

	(void)state;
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	expect_bad(long_id, NULL, "too long");
	long_id[APP_ID_MAX - 1] = '\0';   /* plus the leading slash: exactly the limit */
	{
		char out[APP_ID_MAX + 1], err[256];

		assert_int_equal(app_id_normalize(long_id, NULL, out, sizeof(out), err, sizeof(err)), 0);
		assert_int_equal(strlen(out), APP_ID_MAX);
	}
}

static void test_task_prefix(void **state)
{
	char out[160];

	(void)state;
	app_id_task_prefix("/team-a/web", out, sizeof(out));
	assert_string_equal(out, "team-a_web");
	app_id_task_prefix("/web", out, sizeof(out));
	assert_string_equal(out, "web");
	assert_int_equal(app_id_from_task_id("team-a_web.3f0c-11", out, sizeof(out)), 0);
	assert_string_equal(out, "/team-a/web");
	assert_int_equal(app_id_from_task_id("a.b_c.uuid", out, sizeof(out)), 0);
	assert_string_equal(out, "/a.b/c");
	assert_int_equal(app_id_from_task_id("nodot", out, sizeof(out)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_absolute_and_relative),
		cmocka_unit_test(test_dots),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_task_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
