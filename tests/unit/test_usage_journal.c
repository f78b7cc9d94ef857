/* test_usage_journal.c - the usage journal and checkpoints (master/usage_journal.c,
 * master/usage.c) through crashes: a torn last record is dropped (that batch was never
 * acknowledged, the agent resends it), garbage mid-file ends the replay there, a crash
 * between a checkpoint's commit and the old journal's deletion replays it without counting
 * anything twice, a crash after the rotation but before the commit loses nothing, a failed
 * journal write is not acknowledged and leaves no half record behind; and
 * retention folds old finished tasks into their app's and tenant's totals, durably. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/usage.h"
#include "master/usage_journal.h"

struct ctx {
	char dir[64];
	struct store *st;
	struct usage *u;
	double retention;
};

static void open_all(struct ctx *c)
{
	char err[256];

	assert_int_equal(store_sqlite_open(c->dir, &c->st, err, sizeof(err)), 0);
	assert_int_equal(usage_create(c->st, c->dir, c->retention, NULL, &c->u, err, sizeof(err)), 0);
}

/* A crash: nothing is checkpointed on the way out (usage_destroy only writes what is
 * pending to the journal, which the unit path already did per batch). */
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

	log_init("test_usage_journal", LOG_LVL_ERROR);
	snprintf(c->dir, sizeof(c->dir), "/tmp/pacer-ujournal-XXXXXX");
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

static void path_of(struct ctx *c, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", c->dir, name);
}

static uint64_t send1(struct ctx *c, const char *agent, uint64_t seq, const char *task,
		      const char *app, long long tx, bool final, double at)
{
	char body[512], err[256];
	struct usage_batch b;
	uint64_t acked = 0;
	bool syntax;

	snprintf(body, sizeof(body), "{\"agent_id\":\"%s\",\"seq\":%llu,\"reports\":[{\"task_id\":\"%s\","
		 "\"app_id\":\"%s\",\"tx_bytes\":%lld,\"final\":%s,\"at\":%.3f}]}", agent,
		 (unsigned long long)seq, task, app, tx, final ? "true" : "false", at);
	assert_int_equal(usage_wire_parse(body, strlen(body), &b, &syntax, err, sizeof(err)), 0);
	assert_int_equal(usage_apply(c->u, &b, &acked, err, sizeof(err)), 0);
	usage_wire_free(&b);
	return acked;
}

static json_t *find(json_t *q, const char *list, const char *key, const char *value)
{
	json_t *g;
	size_t i;

	json_array_foreach(json_object_get(q, list), i, g)
		if (strcmp(json_string_value(json_object_get(g, key)) ?: "", value) == 0)
			return g;
	return NULL;
}

static long long tx_of(json_t *g)
{
	assert_non_null(g);
	return json_integer_value(json_object_get(json_object_get(g, "counters"), "tx_bytes"));
}

static long long task_tx(struct ctx *c, const char *task)
{
	json_t *q = usage_query(c->u, NULL, NULL, task);
	long long v = tx_of(find(q, "tasks", "task_id", task));

	json_decref(q);
	return v;
}

static long long app_tx(struct ctx *c, const char *app, long long *tasks)
{
	json_t *q = usage_query(c->u, NULL, NULL, NULL), *g = find(q, "apps", "app_id", app);
	long long v = tx_of(g);

	if (tasks)
		*tasks = json_integer_value(json_object_get(g, "tasks"));
	json_decref(q);
	return v;
}

static off_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void copy(const char *from, const char *to)
{
	size_t len;
	char *data = read_file(from, &len);

	assert_non_null(data);
	assert_int_equal(write_file_atomic(to, data, len), 0);
	free(data);
}

static void test_torn_tail_dropped(void **state)
{
	struct ctx *c = *state;
	char path[128];
	off_t size;

	send1(c, "a1", 1, "t1", "/ten/app", 100, false, 1000.0);
	send1(c, "a1", 2, "t1", "/ten/app", 200, false, 1001.0);
	send1(c, "a1", 3, "t1", "/ten/app", 300, false, 1002.0);
	close_all(c);
	/* The master died in the middle of writing batch 3: its record is cut short. */
	path_of(c, "usage.journal", path, sizeof(path));
	size = file_size(path);
	assert_true(size > 0);
	assert_int_equal(truncate(path, size - 7), 0);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 200);
	assert_int_equal(usage_last_applied(c->u, "a1"), 2);
	/* Batch 3 was never acknowledged: the agent sends it again and it counts. */
	assert_int_equal(send1(c, "a1", 3, "t1", "/ten/app", 300, false, 1002.0), 3);
	assert_int_equal(task_tx(c, "t1"), 300);
	/* The replayed journal went into the store at the start: a second restart agrees. */
	close_all(c);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 300);
	assert_int_equal(usage_last_applied(c->u, "a1"), 3);
}

static void test_garbage_ends_replay(void **state)
{
	struct ctx *c = *state;
	char path[128];
	int fd;

	send1(c, "a1", 1, "t1", "/ten/app", 100, false, 1000.0);
	close_all(c);
	path_of(c, "usage.journal", path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "PUJ1 this is no record at all", 29), 29);
	close(fd);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 100);
	/* The journal starts over clean: later batches are not hidden behind the garbage. */
	send1(c, "a1", 2, "t1", "/ten/app", 150, false, 1001.0);
	close_all(c);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 150);
}

static void test_crash_between_checkpoint_and_truncation(void **state)
{
	struct ctx *c = *state;
	char path[128], saved[128], old[128];
	long long tasks;

	send1(c, "a1", 1, "t1", "/ten/app", 100, false, 1000.0);
	send1(c, "a2", 1, "t2", "/ten/app", 10, false, 1000.0);
	send1(c, "a1", 2, "t1", "/ten/app", 250, false, 1001.0);
	path_of(c, "usage.journal", path, sizeof(path));
	path_of(c, "usage.journal.saved", saved, sizeof(saved));
	path_of(c, "usage.journal.old", old, sizeof(old));
	copy(path, saved);
	assert_int_equal(usage_checkpoint(c->u), 0);
	assert_int_equal(file_size(path), 0);
	assert_int_equal(file_size(old), -1);
	send1(c, "a1", 3, "t1", "/ten/app", 400, false, 1002.0);
	send1(c, "a2", 2, "t2", "/ten/app", 30, true, 1002.0);
	close_all(c);
	/* As if the master died after the checkpoint committed, before the old journal was
	 * deleted: it is replayed on top of a store that already holds it. */
	assert_int_equal(rename(saved, old), 0);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 400);
	assert_int_equal(task_tx(c, "t2"), 30);
	assert_int_equal(app_tx(c, "/ten/app", &tasks), 430);
	assert_int_equal(tasks, 2);
	assert_int_equal(usage_last_applied(c->u, "a1"), 3);
	assert_int_equal(file_size(old), -1);
	/* Rates came out of the replay as they were (no reading applied twice). */
	json_t *q = usage_query(c->u, NULL, NULL, "t1");
	json_t *t = find(q, "tasks", "task_id", "t1");

	assert_float_equal(json_number_value(json_object_get(json_object_get(t, "rates"), "tx_bytes")),
			   150.0, 1e-9);
	json_decref(q);
}

static void test_crash_after_rotation_before_commit(void **state)
{
	struct ctx *c = *state;
	char path[128], old[128];

	send1(c, "a1", 1, "t1", "/ten/app", 100, false, 1000.0);
	send1(c, "a1", 2, "t1", "/ten/app", 200, false, 1001.0);
	close_all(c);
	/* The journal was renamed for a checkpoint that never committed; a new one was begun. */
	path_of(c, "usage.journal", path, sizeof(path));
	path_of(c, "usage.journal.old", old, sizeof(old));
	assert_int_equal(rename(path, old), 0);
	open_all(c);
	send1(c, "a1", 3, "t1", "/ten/app", 300, false, 1002.0);
	assert_int_equal(task_tx(c, "t1"), 300);
	close_all(c);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 300);
	assert_int_equal(usage_last_applied(c->u, "a1"), 3);
}

static int try_send(struct ctx *c, const char *agent, uint64_t seq, const char *task, long long tx)
{
	char body[256], err[256];
	struct usage_batch b;
	uint64_t acked = 0;
	bool syntax;
	int rc;

	snprintf(body, sizeof(body), "{\"agent_id\":\"%s\",\"seq\":%llu,\"reports\":[{\"task_id\":\"%s\","
		 "\"app_id\":\"/ten/app\",\"tx_bytes\":%lld,\"at\":%llu}]}", agent,
		 (unsigned long long)seq, task, tx, 1000 + (unsigned long long)seq);
	assert_int_equal(usage_wire_parse(body, strlen(body), &b, &syntax, err, sizeof(err)), 0);
	rc = usage_apply(c->u, &b, &acked, err, sizeof(err));
	usage_wire_free(&b);
	return rc;
}

/* A full disk (simulated with RLIMIT_FSIZE): the batch is not acknowledged (503, the agent
 * resends); the file is cut back, so once there is room again the resend is acknowledged
 * and everything after it is replayed, not hidden behind half a record. */
static void test_journal_write_failure_not_acked(void **state)
{
	struct ctx *c = *state;
	struct rlimit old, lim;
	char path[128];
	off_t size;

	assert_int_equal(try_send(c, "a1", 1, "t1", 100), 0);
	path_of(c, "usage.journal", path, sizeof(path));
	size = file_size(path);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size + 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(try_send(c, "a1", 2, "t1", 200), -EIO);
	assert_int_equal(try_send(c, "a1", 2, "t1", 200), -EIO);     /* the resend: still no room */
	assert_int_equal(file_size(path), size);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(try_send(c, "a1", 2, "t1", 200), 0);        /* acknowledged now */
	assert_int_equal(try_send(c, "a1", 3, "t1", 300), 0);
	close_all(c);
	open_all(c);
	assert_int_equal(task_tx(c, "t1"), 300);
	assert_int_equal(usage_last_applied(c->u, "a1"), 3);
}

struct sender { struct ctx *c; int id; };

static void *send_many(void *arg)
{
	struct sender *s = arg;
	char agent[32], task[32];

	snprintf(agent, sizeof(agent), "agent-%d", s->id);
	snprintf(task, sizeof(task), "task-%d", s->id);
	for (int seq = 1; seq <= 200; seq++) {
		assert_int_equal(send1(s->c, agent, (uint64_t)seq, task, "/ten/app", seq * 10, false,
				       1000.0 + seq), (uint64_t)seq);
		usleep(1000);
	}
	return NULL;
}

/* The threads as the master runs them: batches from several agents while the writer
 * rotates the journal and the checkpoint thread commits snapshots; then a crash. */
static void test_checkpoints_under_load(void **state)
{
	struct ctx *c = *state;
	struct sender s[4];
	pthread_t th[4];
	long long tasks;
	char *text, *p;

	usage_set_checkpoint_interval(c->u, 0.02);
	assert_int_equal(usage_start_writer(c->u), 0);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct sender){ c, i };
		assert_int_equal(pthread_create(&th[i], NULL, send_many, &s[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	text = usage_metrics_text(c->u);
	p = strstr(text, "\npacer_usage_checkpoints_total ");
	assert_non_null(p);
	assert_true(atoi(p + strlen("\npacer_usage_checkpoints_total ")) >= 2);
	free(text);
	close_all(c);
	open_all(c);
	assert_int_equal(app_tx(c, "/ten/app", &tasks), 4 * 2000);
	assert_int_equal(tasks, 4);
	for (int i = 0; i < 4; i++) {
		char agent[32];

		snprintf(agent, sizeof(agent), "agent-%d", i);
		assert_int_equal(usage_last_applied(c->u, agent), 200);
	}
}

static void test_retention_folds_finished_tasks(void **state)
{
	struct ctx *c = *state;
	double now = now_wall();
	long long tasks;
	json_t *q;
	char *text;

	close_all(c);
	c->retention = 3600;
	open_all(c);
	send1(c, "a1", 1, "old", "/ten/web", 1000, true, now - 7200);     /* ended 2 h ago */
	send1(c, "a1", 2, "new", "/ten/web", 20, true, now - 60);         /* ended a minute ago */
	send1(c, "a1", 3, "run", "/ten/web", 300, false, now - 7200);     /* still running */
	send1(c, "a1", 4, "db", "/ten/db", 4, false, now);
	assert_int_equal(usage_checkpoint(c->u), 0);
	q = usage_query(c->u, NULL, NULL, NULL);
	assert_null(find(q, "tasks", "task_id", "old"));
	assert_non_null(find(q, "tasks", "task_id", "new"));
	assert_non_null(find(q, "tasks", "task_id", "run"));
	assert_int_equal(tx_of(find(q, "tenants", "tenant", "ten")), 1324);
	json_decref(q);
	assert_int_equal(app_tx(c, "/ten/web", &tasks), 1320);
	assert_int_equal(tasks, 3);
	text = usage_metrics_text(c->u);
	assert_non_null(strstr(text, "pacer_usage_retired_tasks_total 1\n"));
	assert_null(strstr(text, "task=\"old\""));
	free(text);
	/* The retired totals are durable. */
	close_all(c);
	open_all(c);
	assert_int_equal(app_tx(c, "/ten/web", &tasks), 1320);
	assert_int_equal(tasks, 3);
	q = usage_query(c->u, "ten", NULL, NULL);
	assert_int_equal(tx_of(find(q, "tenants", "tenant", "ten")), 1324);
	assert_int_equal(json_array_size(json_object_get(q, "tasks")), 3);
	json_decref(q);
}

/* An agent's batches find their tasks through its previous batch (same order): a task
 * retired (freed) in between is not found there, and the same id reported again is a new
 * record (a use after free under ASan otherwise). */
static void test_batch_after_retirement(void **state)
{
	struct ctx *c = *state;
	double now = now_wall();
	long long tasks;
	json_t *q;

	close_all(c);
	c->retention = 3600;
	open_all(c);
	send1(c, "a1", 1, "old", "/ten/web", 1000, true, now - 7200);
	send1(c, "a1", 2, "old", "/ten/web", 1000, true, now - 7200);
	assert_int_equal(usage_checkpoint(c->u), 0);
	q = usage_query(c->u, NULL, NULL, NULL);
	assert_null(find(q, "tasks", "task_id", "old"));
	json_decref(q);
	send1(c, "a1", 3, "old", "/ten/web", 50, false, now);
	assert_int_equal(task_tx(c, "old"), 50);
	send1(c, "a1", 4, "other", "/ten/web", 7, false, now);
	assert_int_equal(task_tx(c, "other"), 7);
	assert_int_equal(app_tx(c, "/ten/web", &tasks), 1057);
	assert_int_equal(tasks, 3);
}

static void test_no_retention_keeps_all(void **state)
{
	struct ctx *c = *state;
	json_t *q;

	send1(c, "a1", 1, "old", "/ten/web", 1000, true, 1.0);     /* 1970 */
	assert_int_equal(usage_checkpoint(c->u), 0);
	close_all(c);
	open_all(c);
	q = usage_query(c->u, NULL, NULL, NULL);
	assert_non_null(find(q, "tasks", "task_id", "old"));
	json_decref(q);
}

/* Every record the encoder writes reads back the same; a buffer cut anywhere yields the
 * whole records before the cut and nothing else. */
static int count_cb(void *arg, const struct usage_batch *b)
{
	size_t *n = arg;

	assert_string_equal(b->agent_id, "agent-x");
	assert_int_equal(b->seq, 40 + *n);
	assert_int_equal(b->nreports, 2);
	assert_string_equal(b->reports[0].task_id, "t.0");
	assert_null(b->reports[0].app_id);
	assert_string_equal(b->reports[1].app_id, "/a/b");
	assert_true(b->reports[1].final);
	assert_true(b->reports[1].at == 12.5);
	assert_int_equal(b->reports[1].counters[USAGE_NFIELDS - 1], 77);
	(*n)++;
	return 0;
}

static void test_encode_replay_round_trip(void **state)
{
	struct usage_reading r[2] = {
		{ .task_id = "t.0", .at = 1, .has_at = true },
		{ .task_id = "t.1", .app_id = "/a/b", .final = true, .at = 12.5, .has_at = true },
	};
	const struct usage_reading *v[2] = { &r[0], &r[1] };
	struct ujbuf b = { 0 };
	size_t ends[3], n;
	int rc;

	(void)state;
	r[1].counters[USAGE_NFIELDS - 1] = 77;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(usage_journal_encode(&b, "agent-x", 40 + (uint64_t)i, v, 2), 0);
		ends[i] = b.len;
	}
	for (size_t cut = 0; cut <= b.len; cut++) {
		size_t whole = 0, used;

		n = 0;
		used = usage_journal_replay_buf(b.p, cut, count_cb, &n, &whole, &rc);
		assert_int_equal(rc, 0);
		assert_int_equal(n, whole);
		for (int i = 0; i < 3; i++)
			if (cut >= ends[i])
				assert_true(n >= (size_t)i + 1);
		assert_true(used == (n ? ends[n - 1] : 0));
	}
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_torn_tail_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_ends_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_between_checkpoint_and_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_rotation_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_write_failure_not_acked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_under_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_folds_finished_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_after_retirement, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_retention_keeps_all, setup, teardown),
		cmocka_unit_test(test_encode_replay_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
