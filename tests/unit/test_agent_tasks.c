/* test_agent_tasks.c - the whole agent (agent_start: containerizer, recovery, API, threads)
 * running real tasks through pacer-executor, against the scripted master: the status
 * sequence and exit codes, the environment, kill with TASK_KILLING/TASK_KILLED, launch
 * failures, the API's 4xx answers, batched launches and kills answered per task, and an agent restart that keeps a running task and
 * reports the exit of one that ended while the agent was away.
 * Needs root and the executor built next to the tests ($(BUILD)/pacer-executor); fails
 * otherwise. Everything made on the host is purged at the end, pass or fail. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/util.h"
#include "agent_fixture.h"

struct fx {
	char dir[64];
	char url[64];
	char executor[PATH_MAX];
	char agent_id[AGENT_ID_LEN + 1];
	struct fake_master fm;
	struct agent a;
	bool running;
};

static int start_agent(struct fx *f)
{
	struct agent_config cfg = { .master_url = f->url, .work_dir = f->dir, .ip = "127.0.0.1",
				    .port = 0, .hostname = "test-host", .executor_path = f->executor,
				    .bpffs = "/sys/fs/bpf" };
	struct resources res;
	char err[512];
	int rc;

	resources_init(&res);
	if (resources_parse("cpus:2;mem:1024;disk:100;ports:[31000-31010]", &res, err, sizeof(err)))
		return -EINVAL;
	rc = agent_start(&f->a, &cfg, &res, json_object(), err, sizeof(err));
	resources_free(&res);
	if (rc) {
		print_error("agent_start: %s\n", err);
		return rc;
	}
	snprintf(f->agent_id, sizeof(f->agent_id), "%s", f->a.agent_id);
	f->running = true;
	return 0;
}

static void stop_agent(struct fx *f)
{
	if (f->running)
		agent_stop(&f->a);
	f->running = false;
}

/* Removes the cgroups, BPF pins and processes the agent made under its id. */
static void purge(struct fx *f)
{
	struct containerizer_config cfg = { .agent_id = f->agent_id, .work_dir = f->dir,
					    .executor_path = f->executor, .bpffs = "/sys/fs/bpf" };
	struct containerizer *c;
	char err[256];

	if (!f->agent_id[0] || containerizer_create(&cfg, &c, err, sizeof(err)))
		return;
	containerizer_purge(c);
	containerizer_destroy(c);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char self[PATH_MAX];
	ssize_t n;

	if (!f)
		return -1;
	*state = f;
	log_init("test", LOG_LVL_ERROR);
	http_client_global_init();
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	snprintf(f->executor, sizeof(f->executor), "%s/../pacer-executor", dirname(self));
	/* not under /tmp: the task gets a private /tmp */
	snprintf(f->dir, sizeof(f->dir), "/var/tmp/pacer-test-agent-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	fm_init(&f->fm);
	fm_start(&f->fm, 0);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->fm.port);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	stop_agent(f);
	purge(f);
	fm_free(&f->fm);
	remove_tree(f->dir);
	free(f);
	return 0;
}

static void require_host(struct fx *f)
{
	if (geteuid() != 0 || access(f->executor, X_OK) != 0) {
		fail_msg("needs root and an executable %s (run as root after a full build)",
			 f->executor);
	}
	assert_int_equal(start_agent(f), 0);
}

static long api(struct fx *f, const char *path, json_t *body, json_t **answer)
{
	struct http_result r = { 0 };
	char url[256];
	long status;

	snprintf(url, sizeof(url), "http://%s%s", f->a.address, path);
	http_call_json(body ? "POST" : "GET", url, body, 5000, &r);
	json_decref(body);
	status = r.status;
	*answer = http_result_json(&r);
	http_result_free(&r);
	return status;
}

static json_t *task_info(const char *id, const char *cmd)
{
	return json_pack("{s:s, s:s, s:s, s:{s:b, s:s}, s:{s:f, s:f, s:[[i,i]]}, s:[i], s:{s:s}, s:i}",
			 "task_id", id, "name", "t", "app_id", "/test/app",
			 "command", "shell", 1, "value", cmd,
			 "resources", "cpus", 0.1, "mem", 32.0, "ports", 31001, 31001,
			 "ports", 31001, "env", "GREETING", "hello", "kill_grace_period_seconds", 1);
}

static void launch(struct fx *f, const char *id, const char *cmd)
{
	json_t *answer;

	assert_int_equal(api(f, "/v1/launch", json_pack("{s:s, s:o}", "framework_id", "fw-1",
						       "task", task_info(id, cmd)), &answer), 202);
	json_decref(answer);
}

/* Waits for the update (task, state) at the master; returns a new reference to it. */
static json_t *wait_state(struct fx *f, const char *id, const char *state)
{
	double end = now_mono() + DEADLINE;

	for (;;) {
		json_t *u, *found = NULL;
		size_t i;

		pthread_mutex_lock(&f->fm.lock);
		json_array_foreach(f->fm.updates, i, u) {
			if (!strcmp(json_string_value(json_object_get(u, "task_id")), id) &&
			    !strcmp(json_string_value(json_object_get(u, "state")), state))
				found = json_incref(u);
		}
		pthread_mutex_unlock(&f->fm.lock);
		if (found)
			return found;
		if (now_mono() > end)
			fail_msg("no %s update for %s", state, id);
		sleep_ms(10);
	}
}

/* Waits until the task's stdout (in its sandbox) holds text: what the command did before
 * printing it is done (TASK_RUNNING only says the command was started). */
static void wait_output(struct fx *f, const char *id, const char *text)
{
	double end = now_mono() + DEADLINE;
	char sandbox[PATH_MAX], path[PATH_MAX + 8];

	assert_int_equal(checkpoint_sandbox_dir(f->dir, id, sandbox, sizeof(sandbox)), 0);
	snprintf(path, sizeof(path), "%s/stdout", sandbox);
	for (;;) {
		char *out = read_file(path, NULL);
		bool found = out && strstr(out, text);

		free(out);
		if (found)
			return;
		if (now_mono() > end)
			fail_msg("no \"%s\" in %s", text, path);
		sleep_ms(10);
	}
}

/* The states the master received for a task, in order, as "A,B,C". */
static void states_of(struct fx *f, const char *id, char *out, size_t outlen)
{
	json_t *u;
	size_t i, off = 0;

	out[0] = '\0';
	pthread_mutex_lock(&f->fm.lock);
	json_array_foreach(f->fm.updates, i, u) {
		if (strcmp(json_string_value(json_object_get(u, "task_id")), id))
			continue;
		off += snprintf(out + off, outlen - off, "%s%s", off ? "," : "",
				json_string_value(json_object_get(u, "state")) + 5);
	}
	pthread_mutex_unlock(&f->fm.lock);
}

static void test_exit_codes_and_environment(void **state)
{
	struct fx *f = *state;
	json_t *u;
	char seq[256];

	require_host(f);
	launch(f, "fail.1", "exit 3");
	launch(f, "env.1", "test \"$PORT0\" = 31001 && test \"$PORT\" = 31001 && test \"$PORTS\" = 31001 && "
			   "test \"$HOST\" = 127.0.0.1 && test \"$MESOS_TASK_ID\" = env.1 && "
			   "test \"$MARATHON_APP_ID\" = /test/app && test \"$GREETING\" = hello && "
			   "test -d \"$MESOS_SANDBOX\" && echo ok > \"$MESOS_SANDBOX/marker\"");
	u = wait_state(f, "fail.1", "TASK_FAILED");
	assert_int_equal(json_integer_value(json_object_get(u, "exit_code")), 3);
	assert_string_equal(json_string_value(json_object_get(u, "reason")), "REASON_COMMAND_EXECUTOR_FAILED");
	json_decref(u);
	json_decref(wait_state(f, "env.1", "TASK_FINISHED"));
	states_of(f, "fail.1", seq, sizeof(seq));
	assert_string_equal(seq, "STARTING,RUNNING,FAILED");
	states_of(f, "env.1", seq, sizeof(seq));
	assert_string_equal(seq, "STARTING,RUNNING,FINISHED");
}

static void test_kill(void **state)
{
	struct fx *f = *state;
	json_t *answer, *u;
	char seq[256];

	require_host(f);
	launch(f, "sleep.1", "exec sleep 100");
	json_decref(wait_state(f, "sleep.1", "TASK_RUNNING"));
	assert_int_equal(api(f, "/v1/kill", json_pack("{s:s, s:i}", "task_id", "sleep.1",
						     "grace_period_seconds", 1), &answer), 202);
	json_decref(answer);
	u = wait_state(f, "sleep.1", "TASK_KILLED");
	assert_int_equal(json_integer_value(json_object_get(u, "signal")), 15);
	json_decref(u);
	states_of(f, "sleep.1", seq, sizeof(seq));
	assert_string_equal(seq, "STARTING,RUNNING,KILLING,KILLED");

	/* a task that ignores SIGTERM is SIGKILLed after the grace period (killed once it
	 * ignores it: on a busy host the shell may not have run trap yet at TASK_RUNNING) */
	launch(f, "stubborn.1", "trap '' TERM; echo armed; while :; do sleep 0.05; done");
	json_decref(wait_state(f, "stubborn.1", "TASK_RUNNING"));
	wait_output(f, "stubborn.1", "armed");
	assert_int_equal(api(f, "/v1/kill", json_pack("{s:s, s:f}", "task_id", "stubborn.1",
						     "grace_period_seconds", 0.3), &answer), 202);
	json_decref(answer);
	u = wait_state(f, "stubborn.1", "TASK_KILLED");
	assert_int_equal(json_integer_value(json_object_get(u, "signal")), 9);
	json_decref(u);
}

static void test_api_errors(void **state)
{
	struct fx *f = *state;
	json_t *answer, *info;

	require_host(f);
	launch(f, "dup.1", "exec sleep 100");
	assert_int_equal(api(f, "/v1/launch", json_pack("{s:s, s:o}", "framework_id", "fw-1",
						       "task", task_info("dup.1", "true")), &answer), 409);
	assert_non_null(strstr(json_string_value(json_object_get(answer, "message")), "dup.1"));
	json_decref(answer);

	info = task_info("bad.1", "true");
	json_object_set_new(json_object_get(info, "resources"), "mem", json_integer(0));
	assert_int_equal(api(f, "/v1/launch", json_pack("{s:o}", "task", info), &answer), 400);
	assert_non_null(strstr(json_string_value(json_object_get(answer, "message")), "/task/resources/mem"));
	json_decref(answer);

	assert_int_equal(api(f, "/v1/launch", json_pack("{s:s}", "framework_id", "x"), &answer), 400);
	json_decref(answer);
	assert_int_equal(api(f, "/v1/kill", json_pack("{s:s}", "task_id", "nope.1"), &answer), 404);
	json_decref(answer);
	assert_int_equal(api(f, "/v1/kill", json_pack("{s:s, s:i}", "task_id", "dup.1",
						     "grace_period_seconds", -1), &answer), 400);
	json_decref(answer);

	assert_int_equal(api(f, "/v1/state", NULL, &answer), 200);
	assert_string_equal(json_string_value(json_object_get(answer, "agent_id")), f->agent_id);
	assert_int_equal(json_array_size(json_object_get(answer, "tasks")), 1);
	json_decref(answer);
	assert_int_equal(api(f, "/health", NULL, &answer), 200);
	assert_true(json_is_true(json_object_get(answer, "ok")));
	json_decref(answer);
	assert_int_equal(agent_task_kill(&f->a, "dup.1", 0), 0);
	json_decref(wait_state(f, "dup.1", "TASK_KILLED"));
}

static json_t *result_of(json_t *answer, size_t i)
{
	return json_array_get(json_object_get(answer, "results"), i);
}

/* A batch launch: the good tasks start, a bad element fails alone with its own error; a batch
 * kill answers per task the same way; a body of the wrong shape is a 400. */
static void test_batch_launch_and_kill(void **state)
{
	struct fx *f = *state;
	json_t *answer, *bad = task_info("batch.bad", "true"), *res;
	char seq[256];

	require_host(f);
	json_object_set_new(json_object_get(bad, "resources"), "mem", json_integer(0));
	assert_int_equal(api(f, "/v1/launch", json_pack("{s:[{s:s,s:o},{s:s,s:o},{s:s,s:o},i,{s:s,s:o}]}",
		"launches",
		"framework_id", "fw-1", "task", task_info("batch.1", "exec sleep 100"),
		"framework_id", "fw-1", "task", bad,
		"framework_id", "fw-1", "task", task_info("batch.1", "true"),
		7,
		"framework_id", "fw-1", "task", task_info("batch.2", "exit 0")), &answer), 202);
	assert_int_equal(json_array_size(json_object_get(answer, "results")), 5);
	res = result_of(answer, 0);
	assert_string_equal(json_string_value(json_object_get(res, "task_id")), "batch.1");
	assert_true(json_is_true(json_object_get(res, "accepted")));
	res = result_of(answer, 1);
	assert_string_equal(json_string_value(json_object_get(res, "task_id")), "batch.bad");
	assert_non_null(strstr(json_string_value(json_object_get(res, "error")), "/task/resources/mem"));
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 400);
	res = result_of(answer, 2);                     /* the same id twice: the second is refused */
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 409);
	res = result_of(answer, 3);
	assert_true(json_is_null(json_object_get(res, "task_id")));
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 400);
	assert_true(json_is_true(json_object_get(result_of(answer, 4), "accepted")));
	json_decref(answer);
	json_decref(wait_state(f, "batch.1", "TASK_RUNNING"));
	json_decref(wait_state(f, "batch.2", "TASK_FINISHED"));

	assert_int_equal(api(f, "/v1/kill", json_pack("{s:[{s:s,s:i},{s:s}]}", "kills",
		"task_id", "batch.1", "grace_period_seconds", 1, "task_id", "nope.1"), &answer), 202);
	assert_true(json_is_true(json_object_get(result_of(answer, 0), "accepted")));
	assert_int_equal(json_integer_value(json_object_get(result_of(answer, 1), "status")), 404);
	json_decref(answer);
	json_decref(wait_state(f, "batch.1", "TASK_KILLED"));
	states_of(f, "batch.1", seq, sizeof(seq));
	assert_string_equal(seq, "STARTING,RUNNING,KILLING,KILLED");
	/* the refused task never reached the agent's table */
	assert_int_equal(api(f, "/v1/state", NULL, &answer), 200);
	for (size_t i = 0; i < json_array_size(json_object_get(answer, "tasks")); i++)
		assert_string_not_equal(json_string_value(json_object_get(
			json_array_get(json_object_get(answer, "tasks"), i), "task_id")), "batch.bad");
	json_decref(answer);

	assert_int_equal(api(f, "/v1/launch", json_pack("{s:{}}", "launches"), &answer), 400);
	assert_non_null(strstr(json_string_value(json_object_get(answer, "message")), "/launches"));
	json_decref(answer);
	assert_int_equal(api(f, "/v1/kill", json_pack("{s:i}", "kills", 3), &answer), 400);
	assert_non_null(strstr(json_string_value(json_object_get(answer, "message")), "/kills"));
	json_decref(answer);
}

static void test_launch_failure(void **state)
{
	struct fx *f = *state;
	json_t *u;

	require_host(f);
	/* no such program: the executor cannot exec it */
	{
		json_t *info = task_info("noexec.1", "x"), *answer;

		json_object_set_new(info, "command", json_pack("{s:b, s:s}", "shell", 0,
							       "value", "/nonexistent/program"));
		assert_int_equal(api(f, "/v1/launch", json_pack("{s:s, s:o}", "framework_id", "fw-1",
							       "task", info), &answer), 202);
		json_decref(answer);
	}
	u = wait_state(f, "noexec.1", "TASK_FAILED");
	assert_string_equal(json_string_value(json_object_get(u, "reason")), "REASON_CONTAINER_LAUNCH_FAILED");
	assert_true(strlen(json_string_value(json_object_get(u, "message"))) > 0);
	json_decref(u);
}

static void test_restart_recovers(void **state)
{
	struct fx *f = *state;
	json_t *u, *tasks;
	size_t i;
	bool listed = false;

	require_host(f);
	launch(f, "keep.1", "exec sleep 100");
	launch(f, "gone.1", "sleep 0.5; exit 4");
	json_decref(wait_state(f, "keep.1", "TASK_RUNNING"));
	json_decref(wait_state(f, "gone.1", "TASK_RUNNING"));
	stop_agent(f);
	/* gone.1 ends while no agent runs: its executor writes exit.json */
	{
		char exit_path[PATH_MAX];
		double deadline = now_mono() + 10;

		assert_int_equal(path_join(exit_path, sizeof(exit_path),
					   "%s/meta/tasks/gone.1/run/exit.json", f->dir), 0);
		while (access(exit_path, F_OK) != 0) {
			assert_true(now_mono() < deadline);
			sleep_ms(10);
		}
	}

	assert_int_equal(start_agent(f), 0);
	u = wait_state(f, "gone.1", "TASK_FAILED");
	assert_int_equal(json_integer_value(json_object_get(u, "exit_code")), 4);
	json_decref(u);
	fm_wait_counter(&f->fm, &f->fm.registers, 2, "registers");
	pthread_mutex_lock(&f->fm.lock);
	tasks = json_object_get(f->fm.last_register, "tasks");
	json_array_foreach(tasks, i, u)
		if (!strcmp(json_string_value(json_object_get(u, "task_id")), "keep.1")) {
			listed = true;
			assert_string_equal(json_string_value(json_object_get(u, "state")), "TASK_RUNNING");
		}
	pthread_mutex_unlock(&f->fm.lock);
	assert_true(listed);
	/* the adopted task is still ours to kill */
	assert_int_equal(agent_task_kill(&f->a, "keep.1", 1), 0);
	json_decref(wait_state(f, "keep.1", "TASK_KILLED"));
}

/* A task accepted just before a crash (checkpointed, never started) is launched on restart;
 * a container with no checkpoint (an orphan) is killed and cleaned up. */
static void test_restart_relaunches_and_reaps_orphans(void **state)
{
	struct fx *f = *state;
	json_t *rec, *ids;
	double end;

	require_host(f);
	launch(f, "orphan.1", "exec sleep 100");
	json_decref(wait_state(f, "orphan.1", "TASK_RUNNING"));
	stop_agent(f);
	assert_int_equal(checkpoint_task_remove(f->dir, "orphan.1"), 0);
	rec = json_pack("{s:s, s:o, s:s}", "framework_id", "fw-1", "task", task_info("staged.1", "exit 0"),
			"state", "TASK_STAGING");
	assert_int_equal(checkpoint_task_save(f->dir, "staged.1", rec), 0);
	json_decref(rec);

	assert_int_equal(start_agent(f), 0);
	json_decref(wait_state(f, "staged.1", "TASK_FINISHED"));
	end = now_mono() + DEADLINE;
	for (;;) {
		size_t n;

		ids = containerizer_list(f->a.cz);
		n = json_array_size(ids);
		json_decref(ids);
		if (n == 0)
			break;
		if (now_mono() > end)
			fail_msg("the orphan container is still there");
		sleep_ms(20);
	}
	/* the orphan is never reported: the master did not know it from us */
	pthread_mutex_lock(&f->fm.lock);
	for (size_t i = 0; i < json_array_size(f->fm.updates); i++) {
		json_t *u = json_array_get(f->fm.updates, i);

		if (!strcmp(json_string_value(json_object_get(u, "task_id")), "orphan.1"))
			assert_string_not_equal(json_string_value(json_object_get(u, "state")), "TASK_KILLED");
	}
	pthread_mutex_unlock(&f->fm.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exit_codes_and_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_launch_and_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_launch_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_relaunches_and_reaps_orphans, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
