/* test_hashmap.c - lib/hashmap.c: put/get/remove through many doublings, duplicate keys
 * refused, removal by node and by key (every entry still found after the probe runs are
 * shifted back), iteration, an empty table answering lookups. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/hashmap.h"

struct item {
	char key[24];
	int value;
	struct hm_node node;
};

static struct item *get(struct hashmap *h, const char *key)
{
	struct hm_node *n = hashmap_get(h, key);

	return n ? hm_entry(n, struct item, node) : NULL;
}

static void test_grow_get_remove(void **state)
{
	enum { N = 20000 };
	struct item *items = calloc(N, sizeof(*items));
	struct hashmap h;

	(void)state;
	assert_non_null(items);
	assert_int_equal(hashmap_init(&h), 0);
	for (int i = 0; i < N; i++) {
		snprintf(items[i].key, sizeof(items[i].key), "task-%d", i);
		items[i].value = i;
		assert_int_equal(hashmap_put(&h, &items[i].node, items[i].key), 0);
	}
	assert_int_equal(hashmap_count(&h), N);
	assert_true(h.mask + 1 >= N);           /* it grew */
	for (int i = 0; i < N; i++) {
		char k[24];

		snprintf(k, sizeof(k), "task-%d", i);
		assert_non_null(get(&h, k));
		assert_int_equal(get(&h, k)->value, i);
	}
	assert_null(get(&h, "task-20000"));
	assert_null(get(&h, ""));
	/* Remove the even ones, half by key, half by node. */
	for (int i = 0; i < N; i += 2) {
		if (i % 4 == 0)
			assert_ptr_equal(hashmap_remove(&h, items[i].key), &items[i].node);
		else
			hashmap_remove_node(&h, &items[i].node);
	}
	assert_int_equal(hashmap_count(&h), N / 2);
	for (int i = 0; i < N; i++)
		assert_true((get(&h, items[i].key) != NULL) == (i % 2 == 1));
	assert_null(hashmap_remove(&h, "task-0"));
	hashmap_destroy(&h);
	free(items);
}

/* Removal in a full-ish small table, in every order a run can be broken: after each
 * removal every remaining key is found and the removed one is not. */
static void test_remove_keeps_runs_reachable(void **state)
{
	enum { N = 200 };
	struct item items[N];
	struct hashmap h;

	(void)state;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(hashmap_init(&h), 0);
		for (int i = 0; i < N; i++) {
			snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
			assert_int_equal(hashmap_put(&h, &items[i].node, items[i].key), 0);
		}
		for (int n = 0; n < N; n++) {
			/* round 0: in order; 1: reversed; 2: a stride that jumps around */
			int i = round == 0 ? n : round == 1 ? N - 1 - n : (n * 37) % N;

			if (n % 2)
				hashmap_remove_node(&h, &items[i].node);
			else
				assert_ptr_equal(hashmap_remove(&h, items[i].key), &items[i].node);
			assert_null(get(&h, items[i].key));
			for (int k = n + 1; k < N; k++) {
				int j = round == 0 ? k : round == 1 ? N - 1 - k : (k * 37) % N;

				assert_ptr_equal(get(&h, items[j].key), &items[j]);
			}
		}
		assert_int_equal(hashmap_count(&h), 0);
		hashmap_destroy(&h);
	}
}

static void test_iteration_visits_each_once(void **state)
{
	enum { N = 1000 };
	struct item *items = calloc(N, sizeof(*items));
	struct hashmap h;
	struct hm_node *n;
	size_t pos = 0, seen = 0;

	(void)state;
	assert_non_null(items);
	assert_int_equal(hashmap_init(&h), 0);
	assert_null(hashmap_next(&h, &pos));
	for (int i = 0; i < N; i++) {
		snprintf(items[i].key, sizeof(items[i].key), "it-%d", i);
		assert_int_equal(hashmap_put(&h, &items[i].node, items[i].key), 0);
	}
	pos = 0;
	while ((n = hashmap_next(&h, &pos))) {
		struct item *it = hm_entry(n, struct item, node);

		assert_int_equal(it->value, 0);
		it->value = 1;
		seen++;
	}
	assert_int_equal(seen, N);
	hashmap_destroy(&h);
	free(items);
}

static void test_hash_spreads_similar_keys(void **state)
{
	/* Keys that differ in one character, or only in length, hash apart. */
	uint64_t a = hm_hash("app.00000000-0000-0000-0000-000000000001");
	uint64_t b = hm_hash("app.00000000-0000-0000-0000-000000000002");

	(void)state;
	assert_true(a != b);
	assert_true(hm_hash("") != hm_hash("\x01"));
	assert_true(hm_hash("abcdefgh") != hm_hash("abcdefgh\x01"));
}

static void test_duplicate_refused(void **state)
{
	struct item a = { .key = "x", .value = 1 }, b = { .key = "x", .value = 2 };
	struct hashmap h;

	(void)state;
	assert_int_equal(hashmap_init(&h), 0);
	assert_int_equal(hashmap_put(&h, &a.node, a.key), 0);
	assert_int_equal(hashmap_put(&h, &b.node, b.key), -EEXIST);
	assert_int_equal(get(&h, "x")->value, 1);
	assert_int_equal(hashmap_count(&h), 1);
	hashmap_destroy(&h);
}

static void test_zeroed_table_is_empty(void **state)
{
	struct hashmap h = { 0 };
	struct item a = { .key = "k" };

	(void)state;
	assert_null(hashmap_get(&h, "k"));
	assert_null(hashmap_remove(&h, "k"));
	assert_int_equal(hashmap_put(&h, &a.node, a.key), 0);     /* initialises itself */
	assert_ptr_equal(hashmap_get(&h, "k"), &a.node);
	hashmap_destroy(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow_get_remove),
		cmocka_unit_test(test_remove_keeps_runs_reachable),
		cmocka_unit_test(test_iteration_visits_each_once),
		cmocka_unit_test(test_hash_spreads_similar_keys),
		cmocka_unit_test(test_duplicate_refused),
		cmocka_unit_test(test_zeroed_table_is_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
