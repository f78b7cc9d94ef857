/* agents.c - `pacerctl agents ...`: the master's agent registry from GET /v1/agents
 * (pacer's own API, not Marathon's). Resource columns read "used/total". */
#include <stdio.h>
#include <string.h>

#include "tools/pacerctl/pacerctl.h"

#define USAGE_AGENTS "agents list | agents show ID"

static void used_total_cell(json_t *agent, const char *key, char *out, size_t len)
{
	char used[32], total[32];
	json_t *u = json_object_get(json_object_get(agent, "used_resources"), key);

	ctl_fmt_value(json_object_get(json_object_get(agent, "resources"), key), total,
		      sizeof(total));
	if (u)
		ctl_fmt_value(u, used, sizeof(used));
	else
		snprintf(used, sizeof(used), "0");
	snprintf(out, len, "%s/%s", used, total);
}

/* "rack=a,zone=1" */
static void attributes_cell(json_t *attrs, char *out, size_t len)
{
	const char *key;
	json_t *v;
	char val[256];

	out[0] = '\0';
	json_object_foreach(attrs, key, v) {
		size_t used = strlen(out);

		ctl_fmt_value(v, val, sizeof(val));
		snprintf(out + used, len - used, "%s%s=%s", used ? "," : "", key, val);
	}
	if (!out[0])
		snprintf(out, len, "-");
}

static int add_agent_row(struct table *t, json_t *agent)
{
	char cpus[64], mem[64], disk[64], attrs[512], active[16];
	const char *cells[8];

	used_total_cell(agent, "cpus", cpus, sizeof(cpus));
	used_total_cell(agent, "mem", mem, sizeof(mem));
	used_total_cell(agent, "disk", disk, sizeof(disk));
	attributes_cell(json_object_get(agent, "attributes"), attrs, sizeof(attrs));
	ctl_fmt_value(json_object_get(agent, "active"), active, sizeof(active));
	cells[0] = json_string_value(json_object_get(agent, "id"));
	cells[1] = json_string_value(json_object_get(agent, "hostname"));
	cells[2] = json_string_value(json_object_get(agent, "address"));
	cells[3] = cpus;
	cells[4] = mem;
	cells[5] = disk;
	cells[6] = attrs;
	cells[7] = active;
	return table_add_row(t, cells);
}

static int print_agents_table(json_t *agents)
{
	static const char *const headers[] = {
		"ID", "HOSTNAME", "ADDRESS", "CPUS", "MEM", "DISK", "ATTRIBUTES", "ACTIVE"
	};

	return ctl_print_table(headers, 8, agents, add_agent_row);
}

static void print_agent(json_t *agent)
{
	static const char *const keys[] = {
		"id", "hostname", "address", "active", "resources", "used_resources",
		"attributes", "registered_at", "last_heartbeat",
	};
	char buf[4096];
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(agent, keys[i]);

		if (!v)
			continue;
		ctl_fmt_value(v, buf, sizeof(buf));
		printf("%-15s %s\n", keys[i], buf);
	}
}

static json_t *find_agent(json_t *agents, const char *id)
{
	json_t *agent;
	size_t i;

	json_array_foreach(agents, i, agent) {
		const char *aid = json_string_value(json_object_get(agent, "id"));
		const char *host = json_string_value(json_object_get(agent, "hostname"));

		if ((aid && !strcmp(aid, id)) || (host && !strcmp(host, id)))
			return agent;
	}
	return NULL;
}

int cmd_agents(struct ctl *c)
{
	json_t *j, *agents, *agent;
	int ret;

	if (!c->verb)
		return ctl_usage_error(USAGE_AGENTS, "missing verb");
	if (strcmp(c->verb, "list") && strcmp(c->verb, "ls") && strcmp(c->verb, "show"))
		return ctl_usage_error(USAGE_AGENTS, "unknown verb '%s'", c->verb);
	if (!strcmp(c->verb, "show") && c->nargs != 1)
		return ctl_usage_error("agents show ID", "expected one agent id");
	if (strcmp(c->verb, "show") && c->nargs != 0)
		return ctl_usage_error("agents list", "unexpected argument '%s'", c->args[0]);

	ret = ctl_request(c, "GET", "/v1/agents", NULL, 0, &j);
	if (ret)
		return ret;
	agents = json_object_get(j, "agents");
	if (!json_is_array(agents)) {
		ret = ctl_fail("unexpected answer from GET /v1/agents (no \"agents\" list)");
		goto out;
	}
	if (strcmp(c->verb, "show")) {
		if (c->json)
			ctl_print_json(j);
		else
			ret = print_agents_table(agents);
		goto out;
	}
	agent = find_agent(agents, c->args[0]);
	if (!agent)
		ret = ctl_fail("Agent '%s' does not exist", c->args[0]);
	else if (c->json)
		ctl_print_json(agent);
	else
		print_agent(agent);
out:
	json_decref(j);
	return ret;
}
