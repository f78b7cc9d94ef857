/* api_agents.c - GET /v1/agents and GET /v1/agents/{id}: the agent registry as pacer's own
 * JSON (used by `pacerctl agents`): identity, state, total/used/offered resources,
 * attributes, registration and last heartbeat times, number of live tasks. */
#include <stdio.h>
#include <string.h>
#include "lib/http_server.h"
#include "lib/util.h"
#include "master/master_internal.h"

static const char *state_name(enum agent_state s)
{
	switch (s) {
	case AGENT_ACTIVE: return "ACTIVE";
	case AGENT_RECOVERING: return "RECOVERING";
	case AGENT_UNREACHABLE: return "UNREACHABLE";
	}
	return "UNKNOWN";
}

static json_t *agent_json(struct master *m, const struct agent *a, double mono, double wall)
{
	struct task_group *g = tasks_on_agent(m, a->id);
	size_t tasks = g ? g->live : 0;
	char registered[32], seen[32];

	format_iso8601(a->registered_at, registered);
	format_iso8601(wall - (mono - a->last_seen), seen);
	return json_pack("{s:s,s:s,s:s,s:b,s:s,s:o,s:o,s:o,s:O,s:s,s:s,s:I}",
			 "id", a->id, "hostname", a->hostname, "address", a->address,
			 "active", a->state == AGENT_ACTIVE, "state", state_name(a->state),
			 "resources", resources_to_json(&a->total),
			 "used_resources", resources_to_json(&a->used),
			 "offered_resources", resources_to_json(&a->offered),
			 "attributes", a->attributes, "registered_at", registered,
			 "last_heartbeat", seen, "tasks", (json_int_t)tasks);
}

static void h_agents(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct master *m = ctx;
	const char *id = req->subpath[0] == '/' ? req->subpath + 1 : req->subpath;
	double mono = m->clock_mono(), wall = m->clock_wall();
	json_t *list = json_array(), *one = NULL;

	master_lock(m);
	if (*id) {
		struct agent *a = agents_find(m, id);

		if (a)
			one = agent_json(m, a, mono, wall);
	} else {
		for (struct agent *a = m->agents; a; a = a->next)
			json_array_append_new(list, agent_json(m, a, mono, wall));
	}
	master_unlock(m);
	if (!*id) {
		http_respond_json(resp, 200, json_pack("{s:o}", "agents", list));
		return;
	}
	json_decref(list);
	if (one)
		http_respond_json(resp, 200, one);
	else
		http_respond_error(resp, 404, "Agent '%s' does not exist", id);
}

int api_agents_register(struct master *m, struct http_server *srv)
{
	int rc = http_server_route(srv, "GET", "/v1/agents*", h_agents, m);

	/* main.c registers only the agents routes; the metrics route rides along. */
	return rc ? rc : api_metrics_register(m, srv);
}
