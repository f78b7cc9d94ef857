/* tasks.c - `pacerctl tasks ...`: list tasks (all, or one app's) with their byte
 * counters, and kill one (optionally scaling its app down). */
#include <stdio.h>
#include <string.h>

#include "tools/pacerctl/pacerctl.h"

#define USAGE_TASKS "tasks list [--app ID] | tasks kill TASK [--scale]"

static void ports_cell(json_t *ports, char *out, size_t len)
{
	json_t *p;
	size_t i;

	out[0] = '\0';
	json_array_foreach(ports, i, p) {
		size_t used = strlen(out);

		snprintf(out + used, len - used, "%s%lld", i ? "," : "",
			 (long long)json_integer_value(p));
	}
	if (!out[0])
		snprintf(out, len, "-");
}

/* Byte counters live under "stats" (pacer's extension of Marathon's task). */
static void counter_cell(json_t *task, const char *key, char *out, size_t len)
{
	json_t *stats = json_object_get(task, "stats");
	json_t *v = json_object_get(stats, key);

	if (!v)
		v = json_object_get(task, key);
	ctl_fmt_value(v, out, len);
}

static int add_task_row(struct table *t, json_t *task)
{
	char ports[512], rx[32], tx[32];
	const char *cells[7];

	ports_cell(json_object_get(task, "ports"), ports, sizeof(ports));
	counter_cell(task, "rx_bytes", rx, sizeof(rx));
	counter_cell(task, "tx_bytes", tx, sizeof(tx));
	cells[0] = json_string_value(json_object_get(task, "id"));
	cells[1] = json_string_value(json_object_get(task, "appId"));
	cells[2] = json_string_value(json_object_get(task, "state"));
	cells[3] = json_string_value(json_object_get(task, "host"));
	cells[4] = ports;
	cells[5] = rx;
	cells[6] = tx;
	return table_add_row(t, cells);
}

int ctl_print_tasks_table(json_t *tasks)
{
	static const char *const headers[] = {
		"ID", "APP", "STATE", "HOST", "PORTS", "RX_BYTES", "TX_BYTES"
	};

	return ctl_print_table(headers, 7, tasks, add_task_row);
}

static int tasks_list(struct ctl *c)
{
	char id[1024], path[1200];
	json_t *j;
	int ret;

	if (c->nargs != 0)
		return ctl_usage_error("tasks list [--app ID]", "unexpected argument '%s'",
				       c->args[0]);
	if (c->app) {
		if (ctl_app_path(c->app, id, sizeof(id)) < 0)
			return ctl_usage_error("tasks list [--app ID]", "bad app id '%s'", c->app);
		snprintf(path, sizeof(path), "/v2/apps/%s/tasks", id);
	} else {
		snprintf(path, sizeof(path), "/v2/tasks");
	}
	ret = ctl_request(c, "GET", path, NULL, 0, &j);
	if (ret)
		return ret;
	if (c->json)
		ctl_print_json(j);
	else if (!json_is_array(json_object_get(j, "tasks")))
		ret = ctl_fail("unexpected answer from GET %s (no \"tasks\" list)", path);
	else
		ret = ctl_print_tasks_table(json_object_get(j, "tasks"));
	json_decref(j);
	return ret;
}

static int tasks_kill(struct ctl *c)
{
	char app[1024], path[2048];
	json_t *j;
	int ret;

	if (c->nargs != 1)
		return ctl_usage_error("tasks kill TASK [--scale]", "expected one task id");
	if (ctl_task_app_path(c->args[0], app, sizeof(app)) < 0)
		return ctl_usage_error("tasks kill TASK [--scale]",
				       "'%s' is not a task id (app_path.uuid)", c->args[0]);
	snprintf(path, sizeof(path), "/v2/apps/%s/tasks/%s%s", app, c->args[0],
		 c->scale ? "?scale=true" : "");
	ret = ctl_request(c, "DELETE", path, NULL, 0, &j);
	if (ret)
		return ret;
	if (c->json && j)
		ctl_print_json(j);
	else if (c->json)
		printf("{}\n");
	else
		printf("killing task %s%s\n", c->args[0], c->scale ? " (and scaling down)" : "");
	json_decref(j);
	return CTL_OK;
}

int cmd_tasks(struct ctl *c)
{
	if (!c->verb)
		return ctl_usage_error(USAGE_TASKS, "missing verb");
	if (!strcmp(c->verb, "list") || !strcmp(c->verb, "ls"))
		return tasks_list(c);
	if (!strcmp(c->verb, "kill"))
		return tasks_kill(c);
	return ctl_usage_error(USAGE_TASKS, "unknown verb '%s'", c->verb);
}
