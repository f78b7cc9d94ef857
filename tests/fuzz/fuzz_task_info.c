/* fuzz_task_info.c - libFuzzer target for the agent's POST /v1/launch and /v1/kill bodies:
 * the JSON as the handlers read it (duplicate keys rejected), the call shapes
 * (agent/call_parse.c: the single form or the batch form {"launches":[...]} /
 * {"kills":[...]}, every element checked on its own), TASKINFO validation (task_info_parse,
 * with its health_checks), and the container's environment built from a valid one
 * (task_env_build). A TASKINFO the agent accepts must give safe ids, positive resources, a
 * runnable command, real ports and a well-formed KEY=VALUE environment; a kill it accepts
 * names a task and a usable grace period; a rejected element has a message. */
/* fuzz-links: agent/task_info.c agent/health_def.c agent/call_parse.c */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "tests/fuzz/fuzz_common.h"

static void check_env(const struct task_info *ti)
{
	char **env = task_env_build(ti, "198.18.0.1", "/var/lib/pacer/sandboxes/x");
	bool path = false;
	size_t n = 0;

	CHECK(env);
	for (char **p = env; *p; p++, n++) {
		const char *eq = strchr(*p, '=');

		CHECK(eq && eq != *p);
		path = path || strncmp(*p, "PATH=", 5) == 0;
	}
	CHECK(path);
	/* our variables (PATH, HOST, MESOS_TASK_ID, MESOS_SANDBOX, PORTn...) are all there */
	CHECK(n >= 4 + ti->nports);
	strv_free(env);
}

static void check_launch(json_t *elem)
{
	struct task_info ti;
	char err[512] = "";
	int rc = call_launch_check(elem, &ti, err, sizeof(err));

	if (rc) {
		CHECK(rc == -EINVAL && err[0]);
		CHECK(!ti.argv && !ti.ports);
		return;
	}
	CHECK(json_is_object(elem));
	CHECK(call_task_id(elem, true) &&
	      strcmp(json_string_value(call_task_id(elem, true)), ti.task_id) == 0);
	CHECK(task_id_valid(ti.task_id));
	CHECK(ti.cpus > 0 && ti.mem > 0 && ti.disk >= 0 && ti.kill_grace >= 0);
	CHECK(ti.command);
	if (ti.shell)
		CHECK(ti.command[0]);
	else
		CHECK(ti.argv && ti.argv[0]);
	CHECK(ti.nports <= 1000);
	for (size_t i = 0; i < ti.nports; i++)
		CHECK(ti.ports[i] >= 1 && ti.ports[i] <= 65535);
	/* health checks the agent would run: a real port or a command, sane timing */
	CHECK(ti.nchecks <= HC_MAX_CHECKS);
	for (size_t i = 0; i < ti.nchecks; i++) {
		const struct hc_def *d = &ti.checks[i];

		CHECK(d->interval >= 0.1 && d->timeout >= 0.1 && d->grace >= 0 && d->delay >= 0);
		CHECK(d->max_failures >= 0);
		if (d->protocol == HC_COMMAND)
			CHECK(d->command && d->command[0]);
		else
			CHECK(d->port >= 1 && d->port <= 65535);
		if (d->protocol == HC_HTTP)
			CHECK(d->path && d->path[0] == '/' && !strpbrk(d->path, " \r\n"));
	}
	check_env(&ti);
	task_info_free(&ti);
}

static void check_kill(json_t *elem)
{
	const char *id = NULL;
	double grace = 0;
	char err[512] = "";
	int rc = call_kill_check(elem, &id, &grace, err, sizeof(err));

	if (rc) {
		CHECK(rc == -EINVAL && err[0] && !id);
		return;
	}
	CHECK(id && id[0] && call_task_id(elem, false));
	CHECK(grace == -1 || (isfinite(grace) && grace >= 0));
}

/* One body as POST /v1/launch (launch) or /v1/kill reads it. */
static void check_call(json_t *body, const char *key, void (*check)(json_t *))
{
	json_t *list = NULL, *elem;
	char err[512] = "";
	size_t i;
	int rc = call_batch_list(body, key, &list, err, sizeof(err));

	if (rc) {
		CHECK(rc == -EINVAL && err[0] && !list);
		return;
	}
	CHECK(json_is_object(body));
	if (!list) {
		check(body);
		return;
	}
	CHECK(json_is_array(list) && json_array_size(list) <= AGENT_BATCH_MAX);
	json_array_foreach(list, i, elem)
		check(elem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (!body)
		return 0;
	check_call(body, "launches", check_launch);
	check_call(body, "kills", check_kill);
	json_decref(body);
	return 0;
}
