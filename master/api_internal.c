/* api_internal.c - the agent-facing routes of the master (docs/architecture.md):
 * POST /internal/v1/register, /internal/v1/heartbeat (read without a JSON tree by
 * heartbeat_wire.c), /internal/v1/status (one update or a batch of them; read without a
 * JSON tree by status_wire.c). Parses and
 * checks the JSON at the edge (400 with a message naming the problem), then calls the
 * registry (agents.c) or the status path (status.c) under master->lock. Every answer
 * waits (lock released) until what the call changed is durable in the store: writes are
 * group-committed by store_writer.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/http_server.h"
#include "lib/log.h"
#include "master/heartbeat_wire.h"
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
	struct heartbeat hb;
	json_t *reply = NULL;
	char err[256] = "";
	unsigned long before, seq;
	bool syntax;
	int rc;

	rc = heartbeat_wire_parse(req->body, req->body_len, &hb, &syntax, err, sizeof(err));
	if (rc == -EINVAL && syntax) {
		http_respond_invalid_json(resp, err);
		return;
	}
	if (rc) {
		http_respond_error(resp, rc == -EINVAL ? 400 : 500, "%s",
				   rc == -EINVAL ? err : "out of memory");
		return;
	}
	master_lock(m);
	before = master_store_seq(m);
	rc = agents_heartbeat(m, &hb, &reply, err, sizeof(err));
	seq = master_store_seq(m);
	master_unlock(m);
	heartbeat_wire_free(&hb);
	/* Only a heartbeat whose reconciliation changed records waits for the store: most
	 * change nothing, and must not queue behind a backlog of other writes. */
	if (seq != before)
		master_store_wait(m, seq);
	if (rc == -ENOENT)
		http_respond_error(resp, 404, "%s; register again", err);
	else if (rc < 0)
		http_respond_error(resp, 400, "invalid heartbeat: %s", err);
	else
		http_respond_json(resp, 200, reply);
}

/* {"agent_id","updates":[STATUS...]}: all applied under one lock hold, one store wait,
 * then 200 {"results":[...]} (one per update, in order; tasks_apply_status_batch). */
static void status_batch(struct master *m, struct http_response *resp,
			 const struct status_batch *b)
{
	unsigned long seq;
	char *results;

	master_status_enter(m);
	master_lock(m);
	agents_seen(m, b->agent_id);
	results = tasks_apply_status_batch(m, b->agent_id, b->updates, b->nupdates);
	seq = master_store_seq(m);
	master_status_leave(m);
	master_unlock(m);
	master_store_wait(m, seq);      /* stored before the agent hears the acks */
	if (!results)
		http_respond_error(resp, 500, "out of memory");
	else
		http_respond_text(resp, 200, "application/json", results);
	free(results);
}

/* {"agent_id","update":STATUS}: 200 {"acknowledged":"<uuid>"} once stored, or 400. */
static void status_single(struct master *m, struct http_response *resp,
			  const struct status_batch *b)
{
	const struct status_update *u = &b->updates[0];
	char err[256] = "";
	bool dup = false;
	unsigned long seq;
	int rc;

	master_status_enter(m);
	master_lock(m);
	agents_seen(m, b->agent_id);
	rc = tasks_apply_status(m, b->agent_id, u, &dup, err, sizeof(err));
	seq = master_store_seq(m);
	master_status_leave(m);
	master_unlock(m);
	master_store_wait(m, seq);      /* stored before the agent hears the ack */
	if (rc < 0)
		http_respond_error(resp, 400, "invalid status: %s", err);
	else
		http_respond_json(resp, 200, json_pack("{s:s}", "acknowledged", u->uuid));
}

/* The body is read by status_wire.c (no JSON tree), with the answers a parse gave: 400
 * "Invalid JSON", "request body must be a JSON object", "invalid status: ...". */
static void h_status(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct master *m = ctx;
	struct status_batch b;
	char err[256] = "";
	bool syntax;
	int rc;

	rc = status_wire_parse(req->body, req->body_len, &b, &syntax, err, sizeof(err));
	if (rc == -EINVAL && syntax) {
		http_respond_invalid_json(resp, err);
		return;
	}
	if (rc == -EINVAL) {
		http_respond_error(resp, 400, "%s", err);
		return;
	}
	if (rc) {
		http_respond_error(resp, 500, "out of memory");
		return;
	}
	if (b.single)
		status_single(m, resp, &b);
	else
		status_batch(m, resp, &b);
	status_wire_free(&b);
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
