/* test_store.c - the SQLite store backend (master/store_sqlite.c): round trip, overwrite,
 * delete, ordered scan with early stop, transactions, reopen, WAL mode, a corrupt row. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/store.h"

struct ctx {
	char dir[64];
	struct store *st;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char err[256];

	log_init("test_store", LOG_LVL_ERROR);
	snprintf(c->dir, sizeof(c->dir), "/tmp/pacer-store-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	if (store_sqlite_open(c->dir, &c->st, err, sizeof(err)) < 0)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	store_close(c->st);
	remove_tree(c->dir);
	free(c);
	return 0;
}

static void put_int(struct store *st, const char *kind, const char *key, int v)
{
	json_t *j = json_pack("{s:i}", "v", v);

	assert_int_equal(store_put(st, kind, key, j), 0);
	json_decref(j);
}

static int get_int(struct store *st, const char *kind, const char *key)
{
	json_t *j = NULL;
	int v;

	assert_int_equal(store_get(st, kind, key, &j), 0);
	v = (int)json_integer_value(json_object_get(j, "v"));
	json_decref(j);
	return v;
}

static void test_round_trip_overwrite_delete(void **state)
{
	struct ctx *c = *state;
	json_t *j = (json_t *)0x1;

	put_int(c->st, "apps", "/a", 1);
	assert_int_equal(get_int(c->st, "apps", "/a"), 1);
	put_int(c->st, "apps", "/a", 2);
	assert_int_equal(get_int(c->st, "apps", "/a"), 2);
	/* Same key in another kind is another object. */
	assert_int_equal(store_get(c->st, "tasks", "/a", &j), -ENOENT);
	assert_null(j);
	assert_int_equal(store_del(c->st, "apps", "/a"), 0);
	assert_int_equal(store_get(c->st, "apps", "/a", &j), -ENOENT);
	/* Deleting what is not there is fine. */
	assert_int_equal(store_del(c->st, "apps", "/a"), 0);
}

struct scan_log {
	char keys[8][16];
	int n, stop_after;
	struct store *st;
};

static int collect(const char *key, json_t *value, void *arg)
{
	struct scan_log *l = arg;

	assert_true(json_is_object(value));
	snprintf(l->keys[l->n++], 16, "%s", key);
	/* The store may be used from inside a scan callback. */
	assert_int_equal(get_int(l->st, "agents", key), (int)json_integer_value(json_object_get(value, "v")));
	return l->n == l->stop_after ? 42 : 0;
}

static void test_scan_order_and_early_stop(void **state)
{
	struct ctx *c = *state;
	struct scan_log l = { .st = c->st };

	put_int(c->st, "agents", "c", 3);
	put_int(c->st, "agents", "a", 1);
	put_int(c->st, "agents", "b", 2);
	put_int(c->st, "frameworks", "z", 9);
	assert_int_equal(store_scan(c->st, "agents", collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.keys[0], "a");
	assert_string_equal(l.keys[1], "b");
	assert_string_equal(l.keys[2], "c");

	memset(&l, 0, sizeof(l));
	l.st = c->st;
	l.stop_after = 2;
	assert_int_equal(store_scan(c->st, "agents", collect, &l), 42);
	assert_int_equal(l.n, 2);
}

static void test_transaction_and_reopen(void **state)
{
	struct ctx *c = *state;
	char err[256];

	assert_int_equal(store_begin(c->st), 0);
	assert_int_equal(store_begin(c->st), -EBUSY);    /* no nesting */
	for (int i = 0; i < 50; i++) {
		char key[16];

		snprintf(key, sizeof(key), "t%02d", i);
		put_int(c->st, "tasks", key, i);
	}
	assert_int_equal(store_commit(c->st), 0);
	assert_int_equal(store_commit(c->st), -EINVAL);  /* nothing open */
	put_int(c->st, "meta", "schema", 1);

	store_close(c->st);
	c->st = NULL;
	assert_int_equal(store_sqlite_open(c->dir, &c->st, err, sizeof(err)), 0);
	assert_int_equal(get_int(c->st, "tasks", "t00"), 0);
	assert_int_equal(get_int(c->st, "tasks", "t49"), 49);
	assert_int_equal(get_int(c->st, "meta", "schema"), 1);
}

struct outsider {
	struct store *st;
	volatile int done;
};

static void *outsider_put(void *arg)
{
	struct outsider *o = arg;

	put_int(o->st, "meta", "outsider", 7);
	__atomic_store_n(&o->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A transaction belongs to the thread that began it: another thread's write waits for the
 * commit instead of landing inside it (where it would only be durable at someone else's
 * commit, or be rolled back with it). */
static void test_transaction_keeps_other_threads_out(void **state)
{
	struct ctx *c = *state;
	struct outsider o = { .st = c->st };
	pthread_t th;
	double deadline;

	assert_int_equal(store_begin(c->st), 0);
	put_int(c->st, "tasks", "mine", 1);
	assert_int_equal(pthread_create(&th, NULL, outsider_put, &o), 0);
	/* The outsider must still be blocked well after it started. */
	deadline = now_mono() + 0.3;
	while (now_mono() < deadline)
		assert_int_equal(__atomic_load_n(&o.done, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(store_commit(c->st), 0);
	deadline = now_mono() + 10;
	while (!__atomic_load_n(&o.done, __ATOMIC_SEQ_CST) && now_mono() < deadline)
		;
	pthread_join(th, NULL);
	assert_int_equal(o.done, 1);
	assert_int_equal(get_int(c->st, "meta", "outsider"), 7);
	assert_int_equal(get_int(c->st, "tasks", "mine"), 1);
}

static void test_wal_mode_on_disk(void **state)
{
	struct ctx *c = *state;
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;

	put_int(c->st, "apps", "/x", 1);
	snprintf(path, sizeof(path), "%s/master.db", c->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	/* Another connection sees the committed row (it is on disk, not in a cache). */
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM objects WHERE kind='apps' AND key='/x'",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "{\"v\":1}");
	sqlite3_finalize(st);
	/* A corrupt row written behind the store's back. */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO objects VALUES ('apps','/bad','{not json')",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	json_t *j = NULL;
	assert_int_equal(store_get(c->st, "apps", "/bad", &j), -EIO);
	assert_null(j);
}

static int count_cb(const char *key, json_t *value, void *arg)
{
	(void)key;
	(void)value;
	(*(int *)arg)++;
	return 0;
}

static void test_corrupt_row_skipped_by_scan(void **state)
{
	struct ctx *c = *state;
	int n = 0;

	test_wal_mode_on_disk(state);   /* leaves "/x" good and "/bad" corrupt */
	assert_int_equal(store_scan(c->st, "apps", count_cb, &n), 0);
	assert_int_equal(n, 1);
}

static void test_open_fails_cleanly(void **state)
{
	struct store *st = (struct store *)0x1;
	char err[256] = "";

	(void)state;
	/* A file where the directory should be. */
	assert_true(store_sqlite_open("/dev/null/nope", &st, err, sizeof(err)) < 0);
	assert_null(st);
	assert_non_null(strstr(err, "/dev/null/nope"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_overwrite_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_order_and_early_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transaction_keeps_other_threads_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_mode_on_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_row_skipped_by_scan, setup, teardown),
		cmocka_unit_test(test_open_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
