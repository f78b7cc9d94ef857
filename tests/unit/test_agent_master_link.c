/* test_agent_master_link.c - the agent's side of the protocol against a scripted master on
 * a real HTTP server: register, heartbeat, status updates delivered in order (in batches,
 * acknowledged per uuid) and resent until acknowledged, re-registration on 404 and after an outage, kill_tasks, and a
 * finished task forgotten once its last update is acknowledged. No containers are
 * started (the agent has no containerizer here); launches stay in TASK_STAGING. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"
#include "agent_fixture.h"

/* ---- the agent under test: table, outbox and the master_link thread only ---- */

struct fx {
	char dir[64];
	struct fake_master fm;
	struct agent a;
	char url[64];
	bool link_running;
};

static void agent_open(struct fx *f)
{
	struct agent *a = &f->a;
	char err[256];

	memset(a, 0, sizeof(*a));
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->fm.port);
	a->cfg = (struct agent_config){ .master_url = f->url, .work_dir = f->dir, .ip = "127.0.0.1",
					.port = 5051, .hostname = "test-host" };
	agent_init_sync(a);
	assert_int_equal(checkpoint_agent_id(f->dir, a->agent_id, err, sizeof(err)), 0);
	snprintf(a->address, sizeof(a->address), "127.0.0.1:5051");
	assert_int_equal(resources_parse("cpus:2;mem:1024;disk:100;ports:[31000-31010]", &a->resources,
					 err, sizeof(err)), 0);
	a->attributes = json_pack("{s:s}", "rack", "a");
	assert_int_equal(outbox_open(&a->outbox, f->dir), 0);
}

static void link_start(struct fx *f)
{
	assert_int_equal(pthread_create(&f->a.link_thread, NULL, agent_link_main, &f->a), 0);
	f->link_running = true;
}

static void agent_close(struct fx *f)
{
	struct agent *a = &f->a;
	struct task *t;

	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->link_cond);
	pthread_mutex_unlock(&a->lock);
	if (f->link_running)
		pthread_join(a->link_thread, NULL);
	f->link_running = false;
	while ((t = a->tasks)) {
		a->tasks = t->next;
		agent_task_free(t);
	}
	outbox_close(&a->outbox);
	resources_free(&a->resources);
	json_decref(a->attributes);
	agent_destroy_sync(a);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	log_init("test", LOG_LVL_ERROR);
	http_client_global_init();
	snprintf(f->dir, sizeof(f->dir), "/tmp/pacer-test-link-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	fm_init(&f->fm);
	fm_start(&f->fm, 0);
	agent_open(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	agent_close(f);
	fm_free(&f->fm);
	remove_tree(f->dir);
	free(f);
	return 0;
}

static void wait_outbox_empty(struct fx *f)
{
	double end = now_mono() + DEADLINE;

	for (;;) {
		size_t n;

		pthread_mutex_lock(&f->a.lock);
		n = f->a.outbox.count;
		pthread_mutex_unlock(&f->a.lock);
		if (n == 0)
			return;
		if (now_mono() > end)
			fail_msg("outbox still holds %zu updates", n);
		sleep_ms(10);
	}
}

static void wait_updates(struct fx *f, size_t n)
{
	fm_wait_updates(&f->fm, n);
}

static void wait_counter(struct fx *f, int *counter, int n, const char *what)
{
	fm_wait_counter(&f->fm, counter, n, what);
}

static struct task *add_task(struct fx *f, const char *id)
{
	json_t *info = json_pack("{s:s, s:{s:s}, s:{s:f, s:f}}", "task_id", id, "command", "value", "true",
				 "resources", "cpus", 0.1, "mem", 16.0);
	struct task *t;

	pthread_mutex_lock(&f->a.lock);
	t = agent_task_new(&f->a, id, "fw-1", info);
	assert_non_null(t);
	assert_int_equal(agent_task_checkpoint(&f->a, t), 0);
	pthread_mutex_unlock(&f->a.lock);
	json_decref(info);
	return t;
}

static void update(struct fx *f, struct task *t, enum task_state s)
{
	pthread_mutex_lock(&f->a.lock);
	assert_int_equal(agent_task_update(&f->a, t, s, NULL, "test", NULL), 0);
	pthread_mutex_unlock(&f->a.lock);
}

static const char *received_state(struct fx *f, size_t i, const char **task_id)
{
	json_t *u = json_array_get(f->fm.updates, i);

	if (task_id)
		*task_id = json_string_value(json_object_get(u, "task_id"));
	return json_string_value(json_object_get(u, "state"));
}

static bool task_dir_exists(struct fx *f, const char *id)
{
	char dir[4096];
	struct stat st;

	assert_int_equal(checkpoint_task_dir(f->dir, id, dir, sizeof(dir)), 0);
	return stat(dir, &st) == 0;
}

/* ---- tests ---- */

static void test_register_lists_tasks(void **state)
{
	struct fx *f = *state;
	json_t *tasks;

	add_task(f, "web.1");
	link_start(f);
	wait_counter(f, &f->fm.registers, 1, "registers");
	pthread_mutex_lock(&f->fm.lock);
	assert_string_equal(json_string_value(json_object_get(f->fm.last_register, "agent_id")), f->a.agent_id);
	assert_string_equal(json_string_value(json_object_get(f->fm.last_register, "address")), "127.0.0.1:5051");
	assert_string_equal(json_string_value(json_object_get(f->fm.last_register, "hostname")), "test-host");
	assert_true(json_number_value(json_object_get(json_object_get(f->fm.last_register, "resources"), "cpus")) == 2);
	tasks = json_object_get(f->fm.last_register, "tasks");
	assert_int_equal(json_array_size(tasks), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 0), "task_id")), "web.1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 0), "state")), "TASK_STAGING");
	assert_non_null(json_object_get(json_object_get(json_array_get(tasks, 0), "stats"), "rx_bytes"));
	pthread_mutex_unlock(&f->fm.lock);
	/* heartbeats follow at the master's interval (0.2 s) */
	wait_counter(f, &f->fm.heartbeats, 2, "heartbeats");
}

static void test_updates_in_order_and_task_forgotten(void **state)
{
	struct fx *f = *state;
	struct task *t = add_task(f, "web.1");
	const char *id;

	link_start(f);
	update(f, t, TASK_STARTING);
	update(f, t, TASK_RUNNING);
	update(f, t, TASK_FINISHED);
	wait_updates(f, 3);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	assert_string_equal(received_state(f, 0, &id), "TASK_STARTING");
	assert_string_equal(id, "web.1");
	assert_string_equal(received_state(f, 1, NULL), "TASK_RUNNING");
	assert_string_equal(received_state(f, 2, NULL), "TASK_FINISHED");
	assert_string_equal(json_string_value(json_object_get(json_array_get(f->fm.updates, 0), "framework_id")), "fw-1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(f->fm.updates, 0), "source")),
			    "SOURCE_EXECUTOR");
	pthread_mutex_unlock(&f->fm.lock);
	/* the last update was acknowledged: the task and its checkpoint are gone */
	pthread_mutex_lock(&f->a.lock);
	assert_null(agent_task_find(&f->a, "web.1"));
	pthread_mutex_unlock(&f->a.lock);
	assert_false(task_dir_exists(f, "web.1"));
}

static void test_unacknowledged_updates_are_resent_in_order(void **state)
{
	struct fx *f = *state;
	struct task *a = add_task(f, "a.1"), *b = add_task(f, "b.1");
	const char *id;

	pthread_mutex_lock(&f->fm.lock);
	f->fm.fail_status = 2;         /* the first two deliveries fail */
	pthread_mutex_unlock(&f->fm.lock);
	update(f, a, TASK_STARTING);
	update(f, a, TASK_RUNNING);
	update(f, b, TASK_STARTING);
	link_start(f);
	wait_updates(f, 3);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	assert_int_equal(json_array_size(f->fm.updates), 3);
	/* a.1's updates stay in order even though its first one failed */
	for (size_t i = 0, seen_starting = 0; i < 3; i++) {
		const char *s = received_state(f, i, &id);

		if (strcmp(id, "a.1") == 0) {
			if (strcmp(s, "TASK_STARTING") == 0)
				seen_starting = 1;
			else
				assert_true(seen_starting);
		}
	}
	pthread_mutex_unlock(&f->fm.lock);
	/* a running task keeps its checkpoint */
	assert_true(task_dir_exists(f, "a.1"));
}

static void test_updates_survive_agent_restart(void **state)
{
	struct fx *f = *state;
	struct task *t = add_task(f, "web.1");

	/* the master is away while the agent makes its updates, then the agent stops */
	fm_stop(&f->fm);
	update(f, t, TASK_STARTING);
	update(f, t, TASK_FAILED);
	link_start(f);
	sleep_ms(300);                 /* let it fail against the absent master */
	agent_close(f);
	assert_true(task_dir_exists(f, "web.1"));

	/* a new agent process: same work dir, same id, updates found on disk */
	fm_start(&f->fm, f->fm.port);
	agent_open(f);
	assert_int_equal(f->a.outbox.count, 2);
	add_task(f, "web.1");          /* what recovery rebuilds from the checkpoint */
	f->a.tasks->state = TASK_FAILED;
	link_start(f);
	wait_updates(f, 2);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	assert_string_equal(received_state(f, 0, NULL), "TASK_STARTING");
	assert_string_equal(received_state(f, 1, NULL), "TASK_FAILED");
	assert_int_equal(f->fm.registers, 1);
	pthread_mutex_unlock(&f->fm.lock);
	assert_false(task_dir_exists(f, "web.1"));
}

static void test_reregisters_after_404_and_outage(void **state)
{
	struct fx *f = *state;
	struct task *t;

	link_start(f);
	wait_counter(f, &f->fm.registers, 1, "registers");
	pthread_mutex_lock(&f->fm.lock);
	f->fm.forget_agent = true;
	pthread_mutex_unlock(&f->fm.lock);
	wait_counter(f, &f->fm.registers, 2, "registers after 404");

	/* master outage: updates wait, then go out after the agent registers again */
	fm_stop(&f->fm);
	t = add_task(f, "web.1");
	update(f, t, TASK_STARTING);
	sleep_ms(300);
	fm_start(&f->fm, f->fm.port);
	wait_counter(f, &f->fm.registers, 3, "registers after the outage");
	wait_updates(f, 1);
	wait_outbox_empty(f);
}

static void test_kill_tasks_from_master(void **state)
{
	struct fx *f = *state;
	json_t *u;

	add_task(f, "web.1");
	pthread_mutex_lock(&f->fm.lock);
	json_array_append_new(f->fm.kill_on_register, json_string("web.1"));
	json_array_append_new(f->fm.kill_on_register, json_string("unknown.1"));
	pthread_mutex_unlock(&f->fm.lock);
	link_start(f);
	/* web.1 never started: killed during launch, reported, then forgotten */
	wait_updates(f, 1);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	u = json_array_get(f->fm.updates, 0);
	assert_string_equal(json_string_value(json_object_get(u, "state")), "TASK_KILLED");
	assert_string_equal(json_string_value(json_object_get(u, "reason")), "REASON_TASK_KILLED_DURING_LAUNCH");
	pthread_mutex_unlock(&f->fm.lock);
	assert_false(task_dir_exists(f, "web.1"));
}

/* One status call carries every due update; the master's per-uuid answer decides what leaves
 * the outbox: a refused task's updates stay (in order) and are resent, the others go. */
static void test_batch_acked_per_uuid(void **state)
{
	struct fx *f = *state;
	struct task *t1 = add_task(f, "t1"), *t2 = add_task(f, "t2");
	const char *id;

	pthread_mutex_lock(&f->fm.lock);
	snprintf(f->fm.reject_task, sizeof(f->fm.reject_task), "t1");
	pthread_mutex_unlock(&f->fm.lock);
	update(f, t1, TASK_RUNNING);
	update(f, t2, TASK_RUNNING);
	update(f, t1, TASK_FINISHED);
	link_start(f);
	wait_updates(f, 1);
	pthread_mutex_lock(&f->fm.lock);
	assert_int_equal(f->fm.max_batch, 3);
	assert_string_equal(received_state(f, 0, &id), "TASK_RUNNING");
	assert_string_equal(id, "t2");
	pthread_mutex_unlock(&f->fm.lock);
	for (double end = now_mono() + DEADLINE;; sleep_ms(10)) {
		size_t left;

		pthread_mutex_lock(&f->a.lock);
		left = f->a.outbox.count;
		pthread_mutex_unlock(&f->a.lock);
		if (left == 2)
			break;
		if (now_mono() > end)
			fail_msg("outbox holds %zu updates, expected t1's 2", left);
	}
	pthread_mutex_lock(&f->a.lock);
	assert_int_equal(outbox_count_task(&f->a.outbox, "t1"), 2);
	pthread_mutex_unlock(&f->a.lock);
	pthread_mutex_lock(&f->fm.lock);
	f->fm.reject_task[0] = '\0';
	pthread_mutex_unlock(&f->fm.lock);
	wait_updates(f, 3);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	assert_string_equal(received_state(f, 1, &id), "TASK_RUNNING");
	assert_string_equal(id, "t1");
	assert_string_equal(received_state(f, 2, &id), "TASK_FINISHED");
	assert_string_equal(id, "t1");
	pthread_mutex_unlock(&f->fm.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_lists_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_updates_in_order_and_task_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unacknowledged_updates_are_resent_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_updates_survive_agent_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reregisters_after_404_and_outage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_tasks_from_master, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_acked_per_uuid, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
