/* test_usage_master.c - the master's usage aggregation (master/usage.c) on a real SQLite
 * store: cumulative readings (a repeat batch is not counted twice), per-agent sequence
 * dedup, totals kept across a restart (reopening the store), the final reading wins over a
 * stale one, app and tenant sums over finished and running tasks, rates, bad batches refused
 * whole, the Prometheus text (HELP/TYPE, _total, labels, escaping), group commit with
 * concurrent agents, and the async form answered by the journal writer. */
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
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/usage.h"

struct ctx {
	char dir[64];
	struct store *st;
	struct usage *u;
};

static void open_all(struct ctx *c)
{
	char err[256];

	assert_int_equal(store_sqlite_open(c->dir, &c->st, err, sizeof(err)), 0);
	assert_int_equal(usage_create(c->st, c->dir, 0, NULL, &c->u, err, sizeof(err)), 0);
}

static void close_all(struct ctx *c)
{
	usage_destroy(c->u);
	store_close(c->st);
	c->u = NULL;
	c->st = NULL;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	log_init("test_usage_master", LOG_LVL_ERROR);
	snprintf(c->dir, sizeof(c->dir), "/tmp/pacer-usage-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	open_all(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	close_all(c);
	remove_tree(c->dir);
	free(c);
	return 0;
}

/* A JSON batch as the route takes it: its text read by usage_wire_parse, then applied. */
static int apply_json(struct usage *u, json_t *batch, uint64_t *acked, char *err, size_t errlen)
{
	char *text = json_dumps(batch, JSON_COMPACT);
	struct usage_batch b;
	bool syntax;
	int rc;

	assert_non_null(text);
	rc = usage_wire_parse(text, strlen(text), &b, &syntax, err, errlen);
	free(text);
	if (rc)
		return rc;
	rc = usage_apply(u, &b, acked, err, errlen);
	usage_wire_free(&b);
	return rc;
}

/* Applies {"agent_id":agent,"seq":seq,"reports":[one report]}; returns the ack. */
static uint64_t send1(struct ctx *c, const char *agent, uint64_t seq, const char *task,
		      const char *app, json_int_t tx_bytes, json_int_t cpu_ns, bool final, double at)
{
	json_t *b = json_pack("{s:s,s:I,s:[{s:s,s:s,s:I,s:I,s:I,s:b,s:f}]}", "agent_id", agent,
			      "seq", (json_int_t)seq, "reports", "task_id", task, "app_id", app,
			      "tx_bytes", tx_bytes, "tx_packets", tx_bytes / 100, "cpu_ns", cpu_ns,
			      "final", final, "at", at);
	uint64_t acked = 0;
	char err[256] = "";

	assert_non_null(b);
	assert_int_equal(apply_json(c->u, b, &acked, err, sizeof(err)), 0);
	json_decref(b);
	return acked;
}

static json_t *task_rec(struct ctx *c, const char *task)
{
	json_t *q = usage_query(c->u, NULL, NULL, task);
	json_t *t = json_incref(json_array_get(json_object_get(q, "tasks"), 0));

	json_decref(q);
	return t;
}

static json_int_t counter(json_t *rec, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(rec, "counters"), name));
}

static json_int_t task_counter(struct ctx *c, const char *task, const char *name)
{
	json_t *t = task_rec(c, task);
	json_int_t v;

	assert_non_null(t);
	v = counter(t, name);
	json_decref(t);
	return v;
}

static void test_cumulative_and_seq_dedup(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(send1(c, "agent-a", 1, "t1", "/team-a/web", 1000, 10, false, 100.0), 1);
	assert_int_equal(send1(c, "agent-a", 2, "t1", "/team-a/web", 3000, 20, false, 101.0), 2);
	/* The same batch again (agent restarted before it saw the ack): acknowledged, not
	 * applied - and since readings are cumulative, totals are not doubled either way. */
	assert_int_equal(send1(c, "agent-a", 2, "t1", "/team-a/web", 3000, 20, false, 101.0), 2);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 3000);
	/* An old batch arriving late must not move the total backwards. */
	assert_int_equal(send1(c, "agent-a", 1, "t1", "/team-a/web", 1000, 10, false, 100.0), 1);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 3000);
	/* Another agent has its own numbering. */
	assert_int_equal(send1(c, "agent-b", 1, "t2", "/team-a/db", 500, 5, false, 101.0), 1);
	assert_int_equal(task_counter(c, "t2", "tx_bytes"), 500);
}

static void test_rates_from_last_two(void **state)
{
	struct ctx *c = *state;
	json_t *t;

	send1(c, "agent-a", 1, "t1", "/team-a/web", 1000, 0, false, 100.0);
	send1(c, "agent-a", 2, "t1", "/team-a/web", 5000, 2000000000, false, 102.0);
	t = task_rec(c, "t1");
	assert_float_equal(json_number_value(json_object_get(json_object_get(t, "rates"), "tx_bytes")),
			   2000.0, 1e-9);
	assert_float_equal(json_number_value(json_object_get(json_object_get(t, "rates"), "cpu_ns")),
			   1e9, 1e-3);
	json_decref(t);
}

static void test_final_wins_over_stale(void **state)
{
	struct ctx *c = *state;
	json_t *t;

	send1(c, "agent-a", 1, "t1", "/team-a/web", 1000, 1, false, 100.0);
	send1(c, "agent-a", 2, "t1", "/team-a/web", 1500, 2, true, 101.0);
	/* A reading taken before the task ended, sent later: ignored. */
	send1(c, "agent-a", 3, "t1", "/team-a/web", 1200, 2, false, 100.5);
	t = task_rec(c, "t1");
	assert_true(json_is_true(json_object_get(t, "final")));
	assert_int_equal(counter(t, "tx_bytes"), 1500);
	json_decref(t);
}

static void test_restart_keeps_totals_and_seq(void **state)
{
	struct ctx *c = *state;

	send1(c, "agent-a", 7, "t1", "/team-a/web", 1000, 1, false, 100.0);
	send1(c, "agent-a", 8, "t1", "/team-a/web", 4000, 1, true, 101.0);
	close_all(c);
	open_all(c);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 4000);
	/* The agent resends batch 8 after the master restart: not applied again. */
	assert_int_equal(send1(c, "agent-a", 8, "t1", "/team-a/web", 9999, 1, true, 101.0), 8);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 4000);
}

static json_t *group(json_t *q, const char *list, const char *key, const char *value)
{
	json_t *g;
	size_t i;

	json_array_foreach(json_object_get(q, list), i, g)
		if (strcmp(json_string_value(json_object_get(g, key)) ?: "", value) == 0)
			return g;
	return NULL;
}

static void test_app_and_tenant_sums(void **state)
{
	struct ctx *c = *state;
	json_t *q, *g;

	send1(c, "agent-a", 1, "w1", "/team-a/web", 1000, 0, true, 100.0);   /* finished */
	send1(c, "agent-a", 2, "w2", "/team-a/web", 2000, 0, false, 100.0);
	send1(c, "agent-b", 1, "d1", "/team-a/db", 300, 0, false, 100.0);
	send1(c, "agent-b", 2, "x1", "/team-b/api", 70, 0, false, 100.0);

	q = usage_query(c->u, NULL, NULL, NULL);
	g = group(q, "apps", "app_id", "/team-a/web");
	assert_non_null(g);
	assert_int_equal(counter(g, "tx_bytes"), 3000);
	assert_int_equal(json_integer_value(json_object_get(g, "tasks")), 2);
	g = group(q, "tenants", "tenant", "team-a");
	assert_non_null(g);
	assert_int_equal(counter(g, "tx_bytes"), 3300);
	g = group(q, "tenants", "tenant", "team-b");
	assert_int_equal(counter(g, "tx_bytes"), 70);
	json_decref(q);

	/* Filters: tenant, app (with or without the leading slash), task. */
	q = usage_query(c->u, "team-b", NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(q, "tasks")), 1);
	assert_int_equal(json_array_size(json_object_get(q, "tenants")), 1);
	json_decref(q);
	q = usage_query(c->u, NULL, "team-a/web", NULL);
	assert_int_equal(json_array_size(json_object_get(q, "tasks")), 2);
	json_decref(q);
}

static void test_bad_report_skipped_rest_applied(void **state)
{
	struct ctx *c = *state;
	json_t *b = json_pack("{s:s,s:i,s:[{s:s,s:i},{s:s,s:s}]}", "agent_id", "agent-a", "seq", 1,
			      "reports", "task_id", "ok", "tx_bytes", 5, "task_id", "bad", "tx_bytes", "x");
	uint64_t acked = 0;
	char err[256] = "";
	json_t *q;

	/* One malformed report must not stall the node's usage: the good one is applied and
	 * the batch acknowledged, so the agent stops resending the bad entry. */
	assert_int_equal(apply_json(c->u, b, &acked, err, sizeof(err)), 0);
	assert_int_equal(acked, 1);
	json_decref(b);
	q = usage_query(c->u, NULL, NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(q, "tasks")), 1);
	json_decref(q);
	assert_int_equal(task_counter(c, "ok", "tx_bytes"), 5);
	assert_int_equal(usage_last_applied(c->u, "agent-a"), 1);

	/* A malformed batch (no usable sequence) is refused whole. */
	b = json_pack("{s:s,s:i,s:[]}", "agent_id", "agent-a", "seq", 0, "reports");
	assert_int_equal(apply_json(c->u, b, &acked, err, sizeof(err)), -EINVAL);
	json_decref(b);
}

static void test_counters_never_go_back(void **state)
{
	struct ctx *c = *state;
	json_t *b;
	uint64_t acked;
	char err[256] = "";

	assert_int_equal(send1(c, "agent-a", 1, "t1", "/t/a", 5000, 70, false, 1.0), 1);
	/* A later reading without tx_bytes (or lower: an agent that lost its maps). */
	b = json_pack("{s:s,s:i,s:[{s:s,s:s,s:i}]}", "agent_id", "agent-a", "seq", 2, "reports",
		      "task_id", "t1", "app_id", "/t/a", "cpu_ns", 90);
	assert_int_equal(apply_json(c->u, b, &acked, err, sizeof(err)), 0);
	json_decref(b);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 5000);
	assert_int_equal(task_counter(c, "t1", "cpu_ns"), 90);
	/* An agent whose numbering was reset sends seq 1 again: not applied, and it learns
	 * the master's last number to continue from. */
	assert_int_equal(send1(c, "agent-a", 1, "t1", "/t/a", 9000, 95, false, 3.0), 1);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 5000);
	assert_int_equal(usage_last_applied(c->u, "agent-a"), 2);
	assert_int_equal(usage_last_applied(c->u, "agent-new"), 0);
}

static void test_metrics_text(void **state)
{
	struct ctx *c = *state;
	char *text;

	send1(c, "agent-a", 1, "web.1", "/team-a/we\"b", 1234, 1500000000, false, 100.0);
	text = usage_metrics_text(c->u);
	assert_non_null(text);
	assert_non_null(strstr(text, "# TYPE pacer_task_transmit_bytes_total counter\n"));
	assert_non_null(strstr(text, "# HELP pacer_task_cpu_seconds_total "));
	assert_non_null(strstr(text, "pacer_task_transmit_bytes_total{tenant=\"team-a\",app=\"/team-a/we\\\"b\","
				     "task=\"web.1\",agent=\"agent-a\"} 1234\n"));
	assert_non_null(strstr(text, "pacer_task_cpu_seconds_total{tenant=\"team-a\",app=\"/team-a/we\\\"b\","
				     "task=\"web.1\",agent=\"agent-a\"} 1.500000000\n"));
	assert_non_null(strstr(text, "# TYPE pacer_task_memory_bytes gauge\n"));
	free(text);
}

struct sender { struct ctx *c; int id; };

static void *send_many(void *arg)
{
	struct sender *s = arg;
	char agent[32], task[32];

	snprintf(agent, sizeof(agent), "agent-%d", s->id);
	snprintf(task, sizeof(task), "task-%d", s->id);
	for (int seq = 1; seq <= 40; seq++)
		send1(s->c, agent, (uint64_t)seq, task, "/team-g/app", seq * 100, 0, seq == 40, seq);
	return NULL;
}

/* With the writer thread, batches from many agents at once share transactions; each
 * apply returns only once its batch is durable: after a restart everything is there. */
static void test_group_commit(void **state)
{
	struct ctx *c = *state;
	struct sender s[8];
	pthread_t th[8];
	json_t *q;
	char *text;

	assert_int_equal(usage_start_writer(c->u), 0);
	for (int i = 0; i < 8; i++) {
		s[i] = (struct sender){ c, i };
		assert_int_equal(pthread_create(&th[i], NULL, send_many, &s[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	text = usage_metrics_text(c->u);
	print_message("%s", strstr(text, "pacer_usage_store_commits_total "));
	free(text);
	close_all(c);               /* stops the writer */
	open_all(c);
	q = usage_query(c->u, "team-g", NULL, NULL);
	assert_int_equal(json_array_size(json_object_get(q, "tasks")), 8);
	assert_int_equal(counter(json_array_get(json_object_get(q, "tenants"), 0), "tx_bytes"), 8 * 4000);
	json_decref(q);
	/* The seqs were persisted too: a resent last batch is not applied again. */
	assert_int_equal(send1(c, "agent-3", 40, "task-3", "/team-g/app", 999999, 0, true, 50), 40);
	assert_int_equal(task_counter(c, "task-3", "tx_bytes"), 4000);
}

/* The async form: the answer comes from the writer thread once the batch is durable (a
 * repeat of a durable batch may be answered at once), with the sequence to acknowledge and
 * the agent's last applied one. */
struct answer {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
	int rc;
	uint64_t acked, last;
	pthread_t thread;
};

static void record_answer(void *arg, int rc, uint64_t acked, uint64_t last, const char *err)
{
	struct answer *a = arg;

	(void)err;
	pthread_mutex_lock(&a->mu);
	a->rc = rc;
	a->acked = acked;
	a->last = last;
	a->thread = pthread_self();
	a->done = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

static void apply_async_json(struct ctx *c, const char *text, struct answer *a)
{
	struct usage_batch b;
	char err[256];
	bool syntax;

	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->done = false;
	assert_int_equal(usage_wire_parse(text, strlen(text), &b, &syntax, err, sizeof(err)), 0);
	usage_apply_async(c->u, &b, record_answer, a);
	usage_wire_free(&b);
}

static void wait_answer(struct answer *a)
{
	double deadline = now_mono() + 10;

	pthread_mutex_lock(&a->mu);
	while (!a->done && now_mono() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&a->cond, &a->mu, &ts);
	}
	pthread_mutex_unlock(&a->mu);
	assert_true(a->done);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
}

static void test_async_answered_by_the_writer(void **state)
{
	struct ctx *c = *state;
	struct answer a1, a2, again;

	assert_int_equal(usage_start_writer(c->u), 0);
	apply_async_json(c, "{\"agent_id\":\"a\",\"seq\":7,\"reports\":[{\"task_id\":\"t1\","
			 "\"app_id\":\"/x/app\",\"tx_bytes\":5}]}", &a1);
	apply_async_json(c, "{\"agent_id\":\"b\",\"seq\":3,\"reports\":[]}", &a2);
	wait_answer(&a1);
	wait_answer(&a2);
	assert_int_equal(a1.rc, 0);
	assert_int_equal(a1.acked, 7);
	assert_int_equal(a1.last, 7);
	assert_int_equal(a2.rc, 0);
	assert_int_equal(a2.acked, 3);
	assert_false(pthread_equal(a1.thread, pthread_self()));   /* the writer answered */
	/* A repeat of an older batch: acknowledged, the agent's last applied seq reported. */
	apply_async_json(c, "{\"agent_id\":\"a\",\"seq\":5,\"reports\":[]}", &again);
	wait_answer(&again);
	assert_int_equal(again.rc, 0);
	assert_int_equal(again.acked, 5);
	assert_int_equal(again.last, 7);
	assert_int_equal(task_counter(c, "t1", "tx_bytes"), 5);
}

static void test_tenant_of(void **state)
{
	char t[64];

	(void)state;
	usage_tenant_of("/team-a/web", t, sizeof(t));
	assert_string_equal(t, "team-a");
	usage_tenant_of("solo", t, sizeof(t));
	assert_string_equal(t, "solo");
	usage_tenant_of(NULL, t, sizeof(t));
	assert_string_equal(t, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cumulative_and_seq_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rates_from_last_two, setup, teardown),
		cmocka_unit_test_setup_teardown(test_final_wins_over_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_totals_and_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_app_and_tenant_sums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_report_skipped_rest_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_never_go_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_answered_by_the_writer, setup, teardown),
		cmocka_unit_test(test_tenant_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
