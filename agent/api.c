/* api.c - the agent's HTTP API, called by the master (docs/architecture.md):
 *   POST /v1/launch  {"framework_id","task":TASKINFO} -> 202 {} (status updates follow)
 *   POST /v1/kill    {"task_id","grace_period_seconds"} -> 202 {}, 404 for an unknown task
 *   GET  /v1/state   the agent and its tasks
 *   GET  /health     {"ok":true}
 * Bad input gets a 4xx with {"message": ...} naming the field. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/http_server.h"
#include "lib/log.h"

static void handle_launch(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent *a = ctx;
	json_t *body = http_body_json(req, resp), *info, *fw;
	struct task_info ti;
	char err[512];
	int rc;

	if (!body)
		return;
	info = json_object_get(body, "task");
	fw = json_object_get(body, "framework_id");
	if (!json_is_object(body)) {
		http_respond_error(resp, 400, "the body must be a JSON object");
		goto out;
	}
	if (fw && !json_is_null(fw) && !json_is_string(fw)) {
		http_respond_error(resp, 400, "/framework_id must be a string");
		goto out;
	}
	if (task_info_parse(info, &ti, err, sizeof(err))) {
		http_respond_error(resp, 400, "%s", err);
		goto out;
	}
	task_info_free(&ti);
	rc = agent_task_accept(a, json_string_value(fw), info);
	if (rc == -EEXIST)
		http_respond_error(resp, 409, "Task '%s' already exists on this agent",
				   json_string_value(json_object_get(info, "task_id")));
	else if (rc == -ESHUTDOWN)
		http_respond_error(resp, 503, "The agent is shutting down");
	else if (rc)
		http_respond_error(resp, 500, "Cannot checkpoint task '%s': %s",
				   json_string_value(json_object_get(info, "task_id")), strerror(-rc));
	else
		http_respond_json(resp, 202, json_object());
out:
	json_decref(body);
}

static void handle_kill(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent *a = ctx;
	json_t *body = http_body_json(req, resp), *grace_j;
	const char *id;
	double grace = -1;
	int rc;

	if (!body)
		return;
	id = json_string_value(json_object_get(body, "task_id"));
	grace_j = json_object_get(body, "grace_period_seconds");
	if (!json_is_object(body) || !id || !id[0]) {
		http_respond_error(resp, 400, "/task_id must be a non-empty string");
		goto out;
	}
	if (grace_j && !json_is_null(grace_j)) {
		if (!json_is_number(grace_j) || !isfinite(json_number_value(grace_j)) ||
		    json_number_value(grace_j) < 0) {
			http_respond_error(resp, 400, "/grace_period_seconds must be a non-negative number");
			goto out;
		}
		grace = json_number_value(grace_j);
	}
	rc = agent_task_kill(a, id, grace);
	if (rc == -ENOENT)
		http_respond_error(resp, 404, "Task '%s' is not known on this agent", id);
	else if (rc)
		http_respond_error(resp, 500, "Cannot kill task '%s': %s", id, strerror(-rc));
	else
		http_respond_json(resp, 202, json_object());
out:
	json_decref(body);
}

static void handle_state(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent *a = ctx;
	json_t *tasks = json_array(), *state;

	(void)req;
	pthread_mutex_lock(&a->lock);
	for (struct task *t = a->tasks; t && tasks; t = t->next)
		if (!t->orphan)
			json_array_append_new(tasks, agent_task_state_json(a, t));
	state = json_pack("{s:s, s:s, s:s, s:o, s:O, s:b, s:I, s:o}", "agent_id", a->agent_id,
			  "hostname", a->cfg.hostname, "address", a->address,
			  "resources", resources_to_json(&a->resources), "attributes", a->attributes,
			  "registered", a->registered, "pending_updates", (json_int_t)a->outbox.count,
			  "tasks", tasks);
	pthread_mutex_unlock(&a->lock);
	if (!state) {
		http_respond_error(resp, 500, "out of memory");
		return;
	}
	http_respond_json(resp, 200, state);
}

static void handle_health(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

int agent_api_start(struct agent *a, char *err, size_t errlen)
{
	a->http = http_server_start(a->cfg.ip, a->cfg.port, err, errlen);
	if (!a->http)
		return -EADDRNOTAVAIL;
	if (http_server_route(a->http, "POST", "/v1/launch", handle_launch, a) ||
	    http_server_route(a->http, "POST", "/v1/kill", handle_kill, a) ||
	    http_server_route(a->http, "GET", "/v1/state", handle_state, a) ||
	    http_server_route(a->http, "GET", "/health", handle_health, a)) {
		snprintf(err, errlen, "cannot add the API routes");
		http_server_stop(a->http);
		a->http = NULL;
		return -ENOMEM;
	}
	return 0;
}
