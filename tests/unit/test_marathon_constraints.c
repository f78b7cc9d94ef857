/* test_marathon_constraints.c - every constraint operator against per-value counts, the
 * way the scheduler uses them: compile, count placed tasks, ask about the next agent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "master/marathon/constraints.h"

struct cx {
	struct constraint_set cs;
	struct constraint_counts cc;
};

static void cx_init(struct cx *c, const char *text)
{
	json_t *arr = json_loads(text, 0, NULL);

	assert_non_null(arr);
	assert_int_equal(constraints_compile(arr, &c->cs), 0);
	assert_int_equal(constraint_counts_init(&c->cc, &c->cs), 0);
	json_decref(arr);
}

static void cx_free(struct cx *c)
{
	constraint_counts_free(&c->cc);
	constraints_free(&c->cs);
}

/* An agent: hostname plus {"rack": rack} (rack NULL: no attributes). */
static bool allows(struct cx *c, const char *host, const char *rack)
{
	json_t *attrs = rack ? json_pack("{s:s}", "rack", rack) : json_object();
	bool ok = constraints_allow(&c->cs, &c->cc, host, attrs, NULL);

	json_decref(attrs);
	return ok;
}

static void place(struct cx *c, const char *host, const char *rack)
{
	json_t *attrs = rack ? json_pack("{s:s}", "rack", rack) : json_object();

	assert_true(constraints_allow(&c->cs, &c->cc, host, attrs, NULL));
	constraint_counts_add(&c->cc, &c->cs, host, attrs);
	json_decref(attrs);
}

static void test_unique(void **state)
{
	struct cx c;

	(void)state;
	cx_init(&c, "[[\"hostname\",\"UNIQUE\"]]");
	assert_true(allows(&c, "h1", "a"));
	place(&c, "h1", "a");
	assert_false(allows(&c, "h1", "a"));
	assert_true(allows(&c, "h2", "a"));
	place(&c, "h2", "a");
	assert_false(allows(&c, "h2", "b"));
	cx_free(&c);

	cx_init(&c, "[[\"rack\",\"UNIQUE\"]]");
	place(&c, "h1", "a");
	assert_false(allows(&c, "h2", "a"));
	assert_true(allows(&c, "h2", "b"));
	assert_false(allows(&c, "h3", NULL));      /* no attribute: no placement */
	cx_free(&c);
}

static void test_cluster(void **state)
{
	struct cx c;

	(void)state;
	cx_init(&c, "[[\"rack\",\"CLUSTER\",\"b\"]]");
	assert_false(allows(&c, "h1", "a"));
	assert_true(allows(&c, "h2", "b"));
	assert_false(allows(&c, "h3", NULL));
	cx_free(&c);

	/* Without a value: wherever the first task went. */
	cx_init(&c, "[[\"rack\",\"CLUSTER\"]]");
	assert_true(allows(&c, "h1", "a"));
	assert_true(allows(&c, "h2", "c"));
	place(&c, "h2", "c");
	assert_false(allows(&c, "h1", "a"));
	assert_true(allows(&c, "h9", "c"));
	cx_free(&c);
}

static void test_group_by(void **state)
{
	struct cx c;

	(void)state;
	cx_init(&c, "[[\"rack\",\"GROUP_BY\"]]");
	place(&c, "h1", "a");
	assert_true(allows(&c, "h2", "b"));        /* a new value */
	assert_true(allows(&c, "h1", "a"));        /* a is the smallest group (the only one) */
	place(&c, "h2", "b");
	place(&c, "h1", "a");                      /* a:2 b:1 */
	assert_false(allows(&c, "h1", "a"));
	assert_true(allows(&c, "h2", "b"));
	assert_true(allows(&c, "h3", "c"));
	cx_free(&c);

	/* With a count: known values wait until that many values are in use. */
	cx_init(&c, "[[\"rack\",\"GROUP_BY\",\"3\"]]");
	place(&c, "h1", "a");
	assert_false(allows(&c, "h1", "a"));       /* 1 value of 3 */
	place(&c, "h2", "b");
	assert_false(allows(&c, "h2", "b"));
	place(&c, "h3", "c");
	assert_true(allows(&c, "h1", "a"));        /* 3 values, all at the minimum */
	place(&c, "h1", "a");
	assert_false(allows(&c, "h1", "a"));
	assert_true(allows(&c, "h3", "c"));
	assert_false(allows(&c, "h4", NULL));
	cx_free(&c);
}

/* GROUP_BY against a count of every value at each step: tasks counted on racks in an
 * arbitrary order (not only where GROUP_BY allows: recounts after failures do that too),
 * every rack asked after each. */
static void test_group_by_matches_a_full_count(void **state)
{
	static const char *const racks[] = { "r0", "r1", "r2", "r3", "r4", "r5" };
	long counts[6] = { 0 };
	unsigned x = 12345;
	struct cx c;

	(void)state;
	cx_init(&c, "[[\"rack\",\"GROUP_BY\",\"3\"]]");
	for (int step = 0; step < 3000; step++) {
		long min = -1, groups = 0;
		json_t *attrs;
		int r;

		x = x * 1103515245u + 12345u;
		r = (int)((x >> 16) % (step < 1500 ? 4 : 6));  /* two racks join late */
		attrs = json_pack("{s:s}", "rack", racks[r]);

		constraint_counts_add(&c.cc, &c.cs, "h", attrs);
		json_decref(attrs);
		counts[r]++;
		for (int k = 0; k < 6; k++) {
			if (counts[k] > 0 && (min < 0 || counts[k] < min))
				min = counts[k];
			groups += counts[k] > 0;
		}
		for (int k = 0; k < 6; k++)
			assert_int_equal(allows(&c, "h", racks[k]),
					 counts[k] == 0 || (groups >= 3 && counts[k] == min));
	}
	cx_free(&c);
}

static void test_like_unlike(void **state)
{
	struct cx c;

	(void)state;
	cx_init(&c, "[[\"rack\",\"LIKE\",\"[ab]\"]]");
	assert_true(allows(&c, "h", "a"));
	assert_true(allows(&c, "h", "b"));
	assert_false(allows(&c, "h", "c"));
	assert_false(allows(&c, "h", "ab"));       /* a full match, not a search */
	assert_false(allows(&c, "h", NULL));
	cx_free(&c);

	cx_init(&c, "[[\"hostname\",\"LIKE\",\"web-[0-9]+\"]]");
	assert_true(allows(&c, "web-12", NULL));
	assert_false(allows(&c, "web-12.example", NULL));
	cx_free(&c);

	cx_init(&c, "[[\"rack\",\"UNLIKE\",\"a|b\"]]");
	assert_false(allows(&c, "h", "a"));
	assert_false(allows(&c, "h", "b"));
	assert_true(allows(&c, "h", "c"));
	assert_true(allows(&c, "h", "ab"));
	assert_true(allows(&c, "h", NULL));        /* missing attribute passes UNLIKE */
	cx_free(&c);
}

static void test_max_per(void **state)
{
	struct cx c;

	(void)state;
	cx_init(&c, "[[\"rack\",\"MAX_PER\",\"2\"]]");
	place(&c, "h1", "a");
	place(&c, "h2", "a");
	assert_false(allows(&c, "h3", "a"));
	assert_true(allows(&c, "h3", "b"));
	cx_free(&c);
}

/* Several constraints: all must hold, and the first refusing one is named. */
static void test_all_must_hold(void **state)
{
	struct cx c;
	json_t *attrs = json_pack("{s:s}", "rack", "a");
	size_t failed = 99;

	(void)state;
	cx_init(&c, "[[\"rack\",\"LIKE\",\"a|b\"],[\"hostname\",\"UNIQUE\"]]");
	place(&c, "h1", "a");
	assert_false(constraints_allow(&c.cs, &c.cc, "h1", attrs, &failed));
	assert_int_equal(failed, 1);
	json_decref(attrs);
	attrs = json_pack("{s:s}", "rack", "c");
	assert_false(constraints_allow(&c.cs, &c.cc, "h2", attrs, &failed));
	assert_int_equal(failed, 0);
	json_decref(attrs);
	cx_free(&c);
}

/* Attribute values that are numbers compare as their text. */
static void test_numeric_attribute(void **state)
{
	struct cx c;
	json_t *attrs = json_pack("{s:i}", "zone", 3);
	json_t *arr = json_loads("[[\"zone\",\"CLUSTER\",\"3\"]]", 0, NULL);

	(void)state;
	assert_int_equal(constraints_compile(arr, &c.cs), 0);
	assert_int_equal(constraint_counts_init(&c.cc, &c.cs), 0);
	assert_true(constraints_allow(&c.cs, &c.cc, "h", attrs, NULL));
	json_decref(attrs);
	json_decref(arr);
	cx_free(&c);
}

static void test_compile_rejects_bad_input(void **state)
{
	struct constraint_set cs;
	json_t *bad = json_loads("[[\"rack\",\"LIKE\",\"(\"]]", 0, NULL);
	json_t *empty = json_array();

	(void)state;
	assert_int_equal(constraints_compile(bad, &cs), -EINVAL);
	assert_int_equal(constraints_compile(empty, &cs), 0);
	assert_int_equal(cs.n, 0);
	json_decref(bad);
	json_decref(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unique),
		cmocka_unit_test(test_cluster),
		cmocka_unit_test(test_group_by),
		cmocka_unit_test(test_group_by_matches_a_full_count),
		cmocka_unit_test(test_like_unlike),
		cmocka_unit_test(test_max_per),
		cmocka_unit_test(test_all_must_hold),
		cmocka_unit_test(test_numeric_attribute),
		cmocka_unit_test(test_compile_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
