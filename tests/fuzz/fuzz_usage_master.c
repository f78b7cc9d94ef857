/* fuzz_usage_master.c - libFuzzer target for the master's usage batches (POST
 * /internal/v1/usage, master/api_usage.c): each body that is JSON (jansson) is read by
 * usage_wire_parse and handed to usage_apply on a real SQLite store and usage journal, then
 * served as /v1/usage (usage_query) and /metrics (usage_metrics_text). Invariants: a refused batch changes nothing; an applied
 * one is acknowledged with its own number, and sending it again changes nothing; no
 * task's cumulative counter ever goes down; the JSON and the Prometheus text can always be
 * produced; a master restarted on the store and journal (usage_create replays it) serves
 * the same task records and group totals, and so does one restarted on the checkpoint (its
 * rates kept to a millionth per second).
 * Input: request bodies separated by 0xff bytes (never in valid UTF-8 JSON).
 * The store lives in /dev/shm; every input starts from an empty one. */
/* fuzz-links: master/usage.c master/usage_serve.c master/usage_wire.c master/usage_journal.c master/store_sqlite.c */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/usage.h"
#include "tests/fuzz/fuzz_common.h"

static char dir[64];

static void cleanup(void)
{
	if (dir[0])
		remove_tree(dir);
}

static void setup(void)
{
	log_init("fuzz", LOG_LVL_ERROR + 1);
	snprintf(dir, sizeof(dir), "/dev/shm/pacer-fuzz-usage-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(cleanup);
}

static void wipe_store(void)
{
	static const char *const files[] = { "master.db", "master.db-wal", "master.db-shm",
					     "usage.journal", "usage.journal.old" };
	char path[128];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
}

/* Next section of the input up to a 0xff byte (or the end). */
static const uint8_t *section(const uint8_t **data, size_t *size, size_t *len)
{
	const uint8_t *start = *data, *end = memchr(start, 0xff, *size);

	*len = end ? (size_t)(end - start) : *size;
	*data += *len + (end ? 1 : 0);
	*size -= *len + (end ? 1 : 0);
	return start;
}

/* /v1/usage and /metrics both answer; returns the full query (new reference). */
static json_t *serve(struct usage *u)
{
	json_t *q = usage_query(u, NULL, NULL, NULL);
	char *text = usage_metrics_text(u), *dump;

	CHECK(q && text);
	CHECK(strncmp(text, "# HELP ", 7) == 0);
	free(text);
	dump = json_dumps(q, JSON_COMPACT);
	CHECK(dump);
	free(dump);
	return q;
}

static json_t *task_in(json_t *q, const char *task_id)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(q, "tasks"), i, t)
		if (strcmp(json_string_value(json_object_get(t, "task_id")), task_id) == 0)
			return t;
	return NULL;
}

/* Every task of before is still there, no cumulative counter lower. */
static void check_no_decrease(json_t *before, json_t *after)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(before, "tasks"), i, t) {
		json_t *now = task_in(after, json_string_value(json_object_get(t, "task_id")));

		CHECK(now);
		for (size_t f = 0; f < usage_nfields; f++) {
			const char *n = usage_fields[f].name;

			if (!usage_fields[f].counter)
				continue;
			CHECK(json_integer_value(json_object_get(json_object_get(now, "counters"), n)) >=
			      json_integer_value(json_object_get(json_object_get(t, "counters"), n)));
		}
	}
}

static void feed(struct usage *u, const uint8_t *body, size_t len)
{
	json_t *batch = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *before, *after, *again;
	struct usage_batch b;
	uint64_t acked = 0;
	char err[256] = "";
	bool syntax;
	int rc;

	if (!batch)
		return;             /* 400 Invalid JSON before the usage module */
	before = serve(u);
	rc = usage_wire_parse((const char *)body, len, &b, &syntax, err, sizeof(err));
	CHECK(rc == 0 || (rc == -EINVAL && (!syntax || strstr(err, "nested") || memchr(body, 0, len))));
	if (rc == 0) {
		rc = usage_apply(u, &b, &acked, err, sizeof(err));
		usage_wire_free(&b);
	}
	CHECK(rc == 0 || rc == -EINVAL);
	after = serve(u);
	if (rc == -EINVAL) {
		CHECK(err[0]);
		CHECK(json_equal(before, after));
	} else {
		CHECK(acked == (uint64_t)json_integer_value(json_object_get(batch, "seq")));
		check_no_decrease(before, after);
		CHECK(usage_wire_parse((const char *)body, len, &b, &syntax, err, sizeof(err)) == 0);
		rc = usage_apply(u, &b, &acked, err, sizeof(err));
		usage_wire_free(&b);
		CHECK(rc == 0);
		again = serve(u);
		CHECK(json_equal(after, again));
		json_decref(again);
	}
	json_decref(before);
	json_decref(after);
	json_decref(batch);
}

/* The tasks of a query by id (the order of a reloaded master differs). */
static json_t *tasks_by_id(json_t *q)
{
	json_t *m = json_object(), *t;
	size_t i;

	json_array_foreach(json_object_get(q, "tasks"), i, t)
		CHECK(json_object_set_new(m, json_string_value(json_object_get(t, "task_id")),
					  json_deep_copy(t)) == 0);
	return m;
}

/* The groups of a query by key, without their rates (float sums differ in the last bits
 * when the order of the additions does). */
static json_t *groups_by_key(json_t *q, const char *list, const char *keyname)
{
	json_t *m = json_object(), *g;
	size_t i;

	json_array_foreach(json_object_get(q, list), i, g) {
		json_t *c = json_deep_copy(g);

		json_object_del(c, "rates");
		CHECK(json_object_set_new(m, json_string_value(json_object_get(g, keyname)), c) == 0);
	}
	return m;
}

/* Same rates (the store keeps them to a millionth per second). */
static void check_rates(json_t *a, json_t *b)
{
	const char *k;
	json_t *v;

	CHECK(json_object_size(a) == json_object_size(b));
	json_object_foreach(a, k, v) {
		double x = json_number_value(v), y = json_number_value(json_object_get(b, k));

		CHECK(json_object_get(b, k) && fabs(x - y) <= 1e-6 + 1e-12 * fabs(x));
	}
}

static void check_same(json_t *x, json_t *y, bool exact_rates)
{
	json_t *a = tasks_by_id(x), *b = tasks_by_id(y), *t;
	const char *id;

	if (!exact_rates) {
		json_object_foreach(a, id, t) {
			json_t *other = json_object_get(b, id);

			CHECK(other);
			check_rates(json_object_get(t, "rates"), json_object_get(other, "rates"));
			json_object_del(t, "rates");
			json_object_del(other, "rates");
		}
	}
	CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	a = groups_by_key(x, "apps", "app_id");
	b = groups_by_key(y, "apps", "app_id");
	CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	a = groups_by_key(x, "tenants", "tenant");
	b = groups_by_key(y, "tenants", "tenant");
	CHECK(json_equal(a, b));
	json_decref(a);
	json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	struct store *st;
	struct usage *u;
	json_t *last, *reloaded;
	char err[256];

	if (!once) {
		setup();
		once = true;
	}
	wipe_store();
	CHECK(store_sqlite_open(dir, &st, err, sizeof(err)) == 0);
	CHECK(usage_create(st, dir, 0, NULL, &u, err, sizeof(err)) == 0);
	while (size) {
		size_t len;
		const uint8_t *body = section(&data, &size, &len);

		feed(u, body, len);
	}
	last = serve(u);
	usage_destroy(u);
	CHECK(usage_create(st, dir, 0, NULL, &u, err, sizeof(err)) == 0);
	reloaded = serve(u);
	check_same(last, reloaded, true);
	json_decref(reloaded);
	/* Once more: now from the store's checkpoint (the journal was folded in). */
	usage_destroy(u);
	CHECK(usage_create(st, dir, 0, NULL, &u, err, sizeof(err)) == 0);
	reloaded = serve(u);
	check_same(last, reloaded, false);
	json_decref(last);
	json_decref(reloaded);
	usage_destroy(u);
	store_close(st);
	return 0;
}
