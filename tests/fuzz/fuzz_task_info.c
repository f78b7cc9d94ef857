/* fuzz_task_info.c - libFuzzer target for the agent's POST /v1/launch body: the JSON as
 * the handler reads it (duplicate keys rejected), TASKINFO validation (task_info_parse, with
 * its health_checks),
 * and the container's environment built from a valid one (task_env_build). A TASKINFO
 * the agent accepts must give safe ids, positive resources, a runnable command, real
 * ports and a well-formed KEY=VALUE environment. */
/* fuzz-links: agent/task_info.c agent/health_def.c */
#include <errno.h>
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct task_info ti;
	char err[512] = "";
	int rc;

	if (!body)
		return 0;
	rc = task_info_parse(json_object_get(body, "task"), &ti, err, sizeof(err));
	if (rc) {
		CHECK(rc == -EINVAL && err[0] == '/');
		CHECK(!ti.argv && !ti.ports);
		goto out;
	}
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
out:
	json_decref(body);
	return 0;
}
