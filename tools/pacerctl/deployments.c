/* deployments.c - `pacerctl deployments list`: Marathon's GET /v2/deployments. */
#include <stdio.h>
#include <string.h>

#include "tools/pacerctl/pacerctl.h"

/* "/a,/b" from a list of strings. */
static void join_cell(json_t *list, char *out, size_t len)
{
	json_t *v;
	size_t i;

	out[0] = '\0';
	json_array_foreach(list, i, v) {
		size_t used = strlen(out);

		snprintf(out + used, len - used, "%s%s", i ? "," : "",
			 json_string_value(v) ? json_string_value(v) : "?");
	}
	if (!out[0])
		snprintf(out, len, "-");
}

/* The current step's actions, "ScaleApplication /web". */
static void actions_cell(json_t *dep, char *out, size_t len)
{
	json_t *a, *actions = json_object_get(dep, "currentActions");
	size_t i;

	out[0] = '\0';
	json_array_foreach(actions, i, a) {
		const char *action = json_string_value(json_object_get(a, "action"));
		const char *app = json_string_value(json_object_get(a, "app"));
		size_t used = strlen(out);

		snprintf(out + used, len - used, "%s%s %s", i ? "," : "",
			 action ? action : "?", app ? app : "?");
	}
	if (!out[0])
		snprintf(out, len, "-");
}

static int add_deployment_row(struct table *t, json_t *dep)
{
	char apps[1024], step[64], cur[32], total[32], actions[1024];
	const char *cells[5];

	join_cell(json_object_get(dep, "affectedApps"), apps, sizeof(apps));
	ctl_fmt_value(json_object_get(dep, "currentStep"), cur, sizeof(cur));
	ctl_fmt_value(json_object_get(dep, "totalSteps"), total, sizeof(total));
	snprintf(step, sizeof(step), "%s/%s", cur, total);
	actions_cell(dep, actions, sizeof(actions));
	cells[0] = json_string_value(json_object_get(dep, "id"));
	cells[1] = json_string_value(json_object_get(dep, "version"));
	cells[2] = apps;
	cells[3] = step;
	cells[4] = actions;
	return table_add_row(t, cells);
}

static int print_deployments_table(json_t *deps)
{
	static const char *const headers[] = { "ID", "VERSION", "APPS", "STEP", "ACTIONS" };

	return ctl_print_table(headers, 5, deps, add_deployment_row);
}

int cmd_deployments(struct ctl *c)
{
	json_t *j;
	int ret;

	if (!c->verb || (strcmp(c->verb, "list") && strcmp(c->verb, "ls")))
		return ctl_usage_error("deployments list", "%s verb%s%s",
				       c->verb ? "unknown" : "missing", c->verb ? " " : "",
				       c->verb ? c->verb : "");
	if (c->nargs != 0)
		return ctl_usage_error("deployments list", "unexpected argument '%s'", c->args[0]);
	ret = ctl_request(c, "GET", "/v2/deployments", NULL, 0, &j);
	if (ret)
		return ret;
	if (c->json)
		ctl_print_json(j);
	else if (!json_is_array(j))
		ret = ctl_fail("unexpected answer from GET /v2/deployments (not a list)");
	else
		ret = print_deployments_table(j);
	json_decref(j);
	return ret;
}
