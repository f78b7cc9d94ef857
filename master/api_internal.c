/* api_internal.c - the agent-facing routes of the master (docs/architecture.md):
 * POST /internal/v1/register, /internal/v1/heartbeat, /internal/v1/status (one update or a
 * batch of them). Parses and
 * checks the JSON at the edge (400 with a message naming the problem), then calls the
 * registry (agents.c) or the status path (status.c) under master->lock. Every answer
 * waits (lock released) until what the call changed is durable in the store: writes are
 * group-committed by store_writer.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/http_server.h"
#include "lib/json_text.h"
#include "lib/log.h"
#include "master/master_internal.h"

static json_t *object_body(struct http_request *req, struct http_response *resp)
{
	json_t *body = http_body_json(req, resp);

	if (body && !json_is_object(body)) {
		json_decref(body);
		http_respond_error(resp, 400, "request body must be a JSON object");
		return NULL;
	}
	return body;
}

static void h_register(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct master *m = ctx;
	json_t *body = object_body(req, resp), *reply = NULL;
	char err[256] = "";
	int rc;

	if (!body)
		return;
	unsigned long seq;

	master_lock(m);
	rc = agents_register(m, body, &reply, err, sizeof(err));
	seq = master_store_seq(m);
	master_unlock(m);
	master_store_wait(m, seq);
	json_decref(body);
	if (rc == -EINVAL)
		http_respond_error(resp, 400, "invalid registration: %s", err);
	else if (rc < 0)
		http_respond_error(resp, 500, "registration failed: %s", err);
	else
		http_respond_json(resp, 200, reply);
}

static void h_heartbeat(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct master *m = ctx;
	json_t *body = object_body(req, resp), *reply = NULL;
	char err[256] = "";
	int rc;

	if (!body)
		return;
	unsigned long before, seq;

	master_lock(m);
	before = master_store_seq(m);
	rc = agents_heartbeat(m, body, &reply, err, sizeof(err));
	seq = master_store_seq(m);
	master_unlock(m);
	/* Only a heartbeat whose reconciliation changed records waits for the store: most
	 * change nothing, and must not queue behind a backlog of other writes. */
	if (seq != before)
		master_store_wait(m, seq);
	json_decref(body);
	if (rc == -ENOENT)
		http_respond_error(resp, 404, "%s; register again", err);
	else if (rc < 0)
		http_respond_error(resp, 400, "invalid heartbeat: %s", err);
	else
		http_respond_json(resp, 200, reply);
}

/* The status handlers' share of the allocator's back pressure (lock held on the way out). */
static void status_enter(struct master *m)
{
	__atomic_add_fetch(&m->status_inflight, 1, __ATOMIC_RELAXED);
}

static void status_leave(struct master *m)
{
	/* The allocator held back while updates queued up: it may go on once they thin out. */
	if (__atomic_sub_fetch(&m->status_inflight, 1, __ATOMIC_RELAXED) <= STATUS_BACKLOG_MAX / 2 &&
	    m->status_throttled) {
		m->status_throttled = false;
		master_wake_allocator(m);
	}
}

static void seen(struct master *m, const char *agent_id)
{
	struct agent *a = agents_find(m, agent_id);

	if (a && a->state == AGENT_ACTIVE)
		a->last_seen = m->clock_mono();
}

/* 200 {"results":[...]} (a batch answer is large: written in one allocation of its size).
 * results is stolen. */
static void respond_results(struct http_response *resp, json_t *results)
{
	json_t *body = json_pack("{s:o}", "results", results);
	size_t len;
	char *text = body ? json_dump_exact(body, &len) : NULL;

	if (!text)
		http_respond_error(resp, 500, "out of memory");
	else
		http_respond_text(resp, 200, "application/json", text);
	free(text);
	json_decref(body);
}

/* {"agent_id","updates":[STATUS...]}: all applied under one lock hold, one store wait,
 * then 200 {"results":[...]} (one per update, in order; tasks_apply_status_batch). */
static void status_batch(struct master *m, struct http_response *resp, const char *agent_id,
			 json_t *updates)
{
	json_t *results;
	unsigned long seq;

	if (json_array_size(updates) > STATUS_BATCH_MAX) {
		http_respond_error(resp, 400, "invalid status: 'updates' holds %zu updates, at most %d",
				   json_array_size(updates), STATUS_BATCH_MAX);
		return;
	}
	status_enter(m);
	master_lock(m);
	seen(m, agent_id);
	results = tasks_apply_status_batch(m, agent_id, updates);
	seq = master_store_seq(m);
	status_leave(m);
	master_unlock(m);
	master_store_wait(m, seq);      /* stored before the agent hears the acks */
	if (!results)
		http_respond_error(resp, 500, "out of memory");
	else
		respond_results(resp, results);
}

static void h_status(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct master *m = ctx;
	json_t *body = object_body(req, resp), *update, *updates;
	const char *agent_id;
	char err[256] = "";
	bool dup = false;
	unsigned long seq;
	int rc;

	if (!body)
		return;
	agent_id = json_string_value(json_object_get(body, "agent_id"));
	update = json_object_get(body, "update");
	updates = json_object_get(body, "updates");
	if (agent_id && json_is_array(updates) && !update) {
		status_batch(m, resp, agent_id, updates);
		goto out;
	}
	if (!agent_id || !json_is_object(update) || updates) {
		http_respond_error(resp, 400,
				   "invalid status: needs 'agent_id' (string) and either 'update' "
				   "(object) or 'updates' (array)");
		goto out;
	}
	status_enter(m);
	master_lock(m);
	seen(m, agent_id);
	rc = tasks_apply_status_json(m, agent_id, update, &dup, err, sizeof(err));
	seq = master_store_seq(m);
	status_leave(m);
	master_unlock(m);
	master_store_wait(m, seq);      /* stored before the agent hears the ack */
	if (rc < 0)
		http_respond_error(resp, 400, "invalid status: %s", err);
	else
		http_respond_json(resp, 200, json_pack("{s:s}", "acknowledged",
						       json_string_value(json_object_get(update, "uuid"))));
out:
	json_decref(body);
}

int api_internal_register(struct master *m, struct http_server *srv)
{
	int rc = http_server_route(srv, "POST", "/internal/v1/register", h_register, m);

	if (rc == 0)
		rc = http_server_route_quick(srv, "POST", "/internal/v1/heartbeat", h_heartbeat, m);
	if (rc == 0)
		rc = http_server_route(srv, "POST", "/internal/v1/status", h_status, m);
	return rc;
}
