/* api.c - the agent's HTTP API, called by the master (docs/architecture.md):
 *   POST /v1/launch  {"framework_id","task":TASKINFO} -> 202 {} (status updates follow)
 *                    {"launches":[{"framework_id","task"},...]} -> 202 {"results":[...]}
 *   POST /v1/kill    {"task_id","grace_period_seconds"} -> 202 {}, 404 for an unknown task
 *                    {"kills":[{"task_id","grace_period_seconds"},...]} -> 202 {"results"}
 * A batch answers per element, in order: {"task_id","accepted":true} or {"task_id","error",
 * "status"} (the status the single form would have answered with).
 *   GET  /v1/state   the agent and its tasks
 *   GET  /health     {"ok":true}
 * Bad input gets a 4xx with {"message": ...} naming the field. Each element is carried out
 * by calls.c, as on the agent stream. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"

typedef int (*elem_fn)(struct agent *a, json_t *elem, char *err, size_t errlen);

/* The batch form -> 202 {"results":[{"task_id","accepted":true} or {"task_id","error",
 * "status"}]}, one per element in order: a bad element does not sink the others. */
static void handle_batch(struct agent *a, struct http_response *resp, json_t *list, elem_fn fn)
{
	json_t *results = json_array(), *elem;
	size_t i;

	json_array_foreach(list, i, elem) {
		char err[512] = "";
		int status = fn(a, elem, err, sizeof(err));
		json_t *id = call_task_id(elem, fn == agent_call_launch), *res;

		utf8_sanitize(err);     /* a message cut short must still be a JSON string */
		if (status == 0)
			res = json_pack("{s:O?,s:b}", "task_id", id, "accepted", 1);
		else
			res = json_pack("{s:O?,s:s,s:i}", "task_id", id, "error", err, "status", status);
		if (!results || json_array_append_new(results, res) < 0) {
			json_decref(results);
			http_respond_error(resp, 500, "out of memory");
			return;
		}
	}
	http_respond_json(resp, 202, json_pack("{s:o}", "results", results));
}

/* The single form (the body is one element) or the batch form (the elements under key). */
static void handle_calls(struct http_request *req, struct http_response *resp, struct agent *a,
			 const char *key, elem_fn fn)
{
	json_t *body = http_body_json(req, resp), *list;
	char err[512] = "";
	int status;

	if (!body)
		return;
	if (call_batch_list(body, key, &list, err, sizeof(err))) {
		http_respond_error(resp, 400, "%s", err);
		goto out;
	}
	if (list) {
		handle_batch(a, resp, list, fn);
		goto out;
	}
	status = fn(a, body, err, sizeof(err));
	if (status)
		http_respond_error(resp, status, "%s", err);
	else
		http_respond_json(resp, 202, json_object());
out:
	json_decref(body);
}

static void handle_launch(struct http_request *req, struct http_response *resp, void *ctx)
{
	handle_calls(req, resp, ctx, "launches", agent_call_launch);
}

static void handle_kill(struct http_request *req, struct http_response *resp, void *ctx)
{
	handle_calls(req, resp, ctx, "kills", agent_call_kill);
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
