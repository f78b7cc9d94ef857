/* test_usage_spool.c - the agent's usage spool (agent/usage_spool.c): one entry per task
 * (newest cumulative reading), numbered batches, acknowledgement drops only what was sent,
 * the sequence survives a restart (reopen), a final reading is never replaced by a stale
 * one, the bound drops non-final entries first, and a corrupt file is survived. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

struct ctx {
	char dir[64];
	struct usage_spool s;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	log_init("test_usage_spool", LOG_LVL_ERROR);
	snprintf(c->dir, sizeof(c->dir), "/tmp/pacer-spool-XXXXXX");
	if (!mkdtemp(c->dir) || usage_spool_open(&c->s, c->dir, 0))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	usage_spool_close(&c->s);
	remove_tree(c->dir);
	free(c);
	return 0;
}

static void rec(struct ctx *c, const char *task, json_int_t tx, bool final)
{
	json_t *counters = json_pack("{s:I,s:I}", "tx_bytes", tx, "tx_packets", tx / 10);

	assert_int_equal(usage_spool_record(&c->s, task, "/team/app", counters, final, 1.0), 0);
	json_decref(counters);
}

static json_t *report_of(json_t *batch, const char *task)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(batch, "reports"), i, r)
		if (strcmp(json_string_value(json_object_get(r, "task_id")), task) == 0)
			return r;
	return NULL;
}

static json_int_t seq_of(json_t *batch)
{
	return json_integer_value(json_object_get(batch, "seq"));
}

static void test_coalesce_and_ack(void **state)
{
	struct ctx *c = *state;
	json_t *b1, *b2;

	assert_null(usage_spool_batch(&c->s, "agent-x"));     /* nothing pending */
	rec(c, "t1", 100, false);
	rec(c, "t1", 250, false);                             /* replaces the older reading */
	rec(c, "t2", 10, false);
	b1 = usage_spool_batch(&c->s, "agent-x");
	assert_non_null(b1);
	assert_int_equal(seq_of(b1), 1);
	assert_string_equal(json_string_value(json_object_get(b1, "agent_id")), "agent-x");
	assert_int_equal(json_array_size(json_object_get(b1, "reports")), 2);
	assert_int_equal(json_integer_value(json_object_get(report_of(b1, "t1"), "tx_bytes")), 250);
	assert_string_equal(json_string_value(json_object_get(report_of(b1, "t1"), "app_id")), "/team/app");
	/* A new reading of t2 after batch 1 was built: the ack of 1 keeps it. */
	rec(c, "t2", 20, false);
	assert_int_equal(usage_spool_ack(&c->s, (uint64_t)seq_of(b1)), 0);
	assert_int_equal(usage_spool_count(&c->s), 1);
	b2 = usage_spool_batch(&c->s, "agent-x");
	assert_int_equal(seq_of(b2), 2);
	assert_int_equal(json_array_size(json_object_get(b2, "reports")), 1);
	assert_int_equal(json_integer_value(json_object_get(report_of(b2, "t2"), "tx_bytes")), 20);
	/* Unacknowledged: the same batch goes out again, with the same number. */
	json_decref(b2);
	b2 = usage_spool_batch(&c->s, "agent-x");
	assert_int_equal(seq_of(b2), 2);
	json_decref(b1);
	json_decref(b2);
}

static void test_renumber_after_reset(void **state)
{
	struct ctx *c = *state;
	json_t *b;

	rec(c, "t1", 100, false);
	b = usage_spool_batch(&c->s, "agent-x");
	assert_int_equal(seq_of(b), 1);
	json_decref(b);
	/* The master says it applied up to 41 from this agent: our spool was reset. The same
	 * readings go out again under 42, and acknowledging 42 clears them. */
	assert_int_equal(usage_spool_renumber(&c->s, 41), 0);
	b = usage_spool_batch(&c->s, "agent-x");
	assert_int_equal(seq_of(b), 42);
	assert_int_equal(json_integer_value(json_object_get(report_of(b, "t1"), "tx_bytes")), 100);
	json_decref(b);
	assert_int_equal(usage_spool_ack(&c->s, 42), 0);
	assert_int_equal(usage_spool_count(&c->s), 0);
	/* Numbering on: the next reading gets 43. */
	rec(c, "t1", 150, false);
	b = usage_spool_batch(&c->s, "agent-x");
	assert_int_equal(seq_of(b), 43);
	json_decref(b);
}

static void test_survives_restart(void **state)
{
	struct ctx *c = *state;
	json_t *b;

	rec(c, "t1", 100, false);
	b = usage_spool_batch(&c->s, "a");
	assert_int_equal(seq_of(b), 1);
	json_decref(b);
	rec(c, "t1", 300, true);
	usage_spool_commit(&c->s);                  /* seq 2 on disk, unacknowledged */
	usage_spool_close(&c->s);                   /* kill -9 */
	assert_int_equal(usage_spool_open(&c->s, c->dir, 0), 0);
	assert_true(usage_spool_has_final(&c->s, "t1"));
	b = usage_spool_batch(&c->s, "a");
	assert_int_equal(seq_of(b), 2);
	assert_int_equal(json_integer_value(json_object_get(report_of(b, "t1"), "tx_bytes")), 300);
	assert_true(json_is_true(json_object_get(report_of(b, "t1"), "final")));
	assert_int_equal(usage_spool_ack(&c->s, 2), 0);
	json_decref(b);
	/* Numbers keep growing after an ack and a restart, even with nothing pending. */
	usage_spool_close(&c->s);
	assert_int_equal(usage_spool_open(&c->s, c->dir, 0), 0);
	assert_int_equal(usage_spool_count(&c->s), 0);
	rec(c, "t9", 1, false);
	b = usage_spool_batch(&c->s, "a");
	assert_int_equal(seq_of(b), 3);
	json_decref(b);
}

static void test_final_not_replaced(void **state)
{
	struct ctx *c = *state;
	json_t *b;

	rec(c, "t1", 500, true);
	rec(c, "t1", 400, false);                   /* a reading taken before the end */
	b = usage_spool_batch(&c->s, "a");
	assert_int_equal(json_integer_value(json_object_get(report_of(b, "t1"), "tx_bytes")), 500);
	assert_true(json_is_true(json_object_get(report_of(b, "t1"), "final")));
	json_decref(b);
}

static void test_bound_drops_non_final_first(void **state)
{
	struct ctx *c = *state;

	usage_spool_close(&c->s);
	assert_int_equal(usage_spool_open(&c->s, c->dir, 3), 0);
	rec(c, "f1", 1, true);
	usage_spool_commit(&c->s);
	rec(c, "r1", 1, false);
	usage_spool_commit(&c->s);
	rec(c, "r2", 1, false);
	usage_spool_commit(&c->s);
	rec(c, "r3", 1, false);                     /* over the bound: r1 (oldest non-final) goes */
	assert_int_equal(usage_spool_count(&c->s), 3);
	assert_true(usage_spool_has_final(&c->s, "f1"));
	assert_int_equal(c->s.dropped, 1);
	json_t *b = usage_spool_batch(&c->s, "a");
	assert_null(report_of(b, "r1"));
	assert_non_null(report_of(b, "r3"));
	json_decref(b);
}

static void test_corrupt_file(void **state)
{
	struct ctx *c = *state;
	char path[256];

	usage_spool_close(&c->s);
	snprintf(path, sizeof(path), "%s/meta/usage.json", c->dir);
	assert_int_equal(write_file_atomic(path, "{not json", 9), 0);
	assert_int_equal(usage_spool_open(&c->s, c->dir, 0), 0);
	assert_int_equal(usage_spool_count(&c->s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_coalesce_and_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renumber_after_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_final_not_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_drops_non_final_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
