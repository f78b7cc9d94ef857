/* api_usage.c - the usage routes: POST /internal/v1/usage (agents' numbered batches,
 * read by the streaming usage_wire.c, answered asynchronously once durable with the
 * sequence to acknowledge; the persistent stream of the same batches,
 * GET /internal/v1/usage/stream, is usage_stream.c), GET /v1/usage?tenant=&app=&task= (JSON totals
 * and rates per tenant, app and task), GET /metrics (Prometheus text format) and
 * GET /v1/usage/events (usage_update Server-Sent Events for schedulers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "lib/http_server.h"
#include "lib/log.h"
#include "master/usage.h"

/* The journal writer's answer, from its thread (or at once: a repeat already durable). */
static void report_done(void *arg, int rc, uint64_t acked, uint64_t last, const char *err)
{
	struct http_deferred *d = arg;
	char text[96];
	int n;

	if (rc) {
		struct http_response resp = { .status = 0 };

		log_error("event=usage_apply_failed error=\"%s\"", err);
		http_respond_error(&resp, 503, "%s", err);
		http_deferred_respond(d, &resp);
		return;
	}
	/* Ten thousand of these a second: printed, not built with jansson. */
	n = snprintf(text, sizeof(text), "{\"acknowledged_seq\":%llu,\"last_applied_seq\":%llu}",
		     (unsigned long long)acked, (unsigned long long)last);
	http_deferred_finish(d, 200, "application/json", text, (size_t)n);
}

/* Async: the answer waits for the journal's fdatasync without holding a server thread. */
static void h_report(struct http_request *req, struct http_deferred *d, void *ctx)
{
	struct usage *u = ctx;
	struct http_response resp = { .status = 0 };
	struct usage_batch b;
	char err[256] = "";
	bool syntax;
	int rc;

	rc = usage_wire_parse(req->body, req->body_len, &b, &syntax, err, sizeof(err));
	if (rc == -EINVAL && syntax)
		http_respond_invalid_json(&resp, err);
	else if (rc == -EINVAL)
		http_respond_error(&resp, 400, "%s", err);
	else if (rc)
		http_respond_error(&resp, 503, "out of memory");
	if (rc) {
		http_deferred_respond(d, &resp);
		return;
	}
	usage_apply_async(u, &b, report_done, d);
	usage_wire_free(&b);
}

static void h_usage(struct http_request *req, struct http_response *resp, void *ctx)
{
	json_t *out = usage_query(ctx, http_query(req, "tenant"), http_query(req, "app"),
				  http_query(req, "task"));

	if (!out) {
		http_respond_error(resp, 500, "out of memory");
		return;
	}
	http_respond_json(resp, 200, out);
}

static void h_metrics(struct http_request *req, struct http_response *resp, void *ctx)
{
	char *text = usage_metrics_text(ctx);

	(void)req;
	if (!text) {
		http_respond_error(resp, 500, "out of memory");
		return;
	}
	http_respond_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text);
	free(text);
}

static void h_events(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct http_stream st;

	(void)req;
	if (usage_subscribe(ctx, &st) < 0) {
		http_respond_error(resp, 503, "the usage event stream is closed");
		return;
	}
	http_respond_header(resp, "Cache-Control", "no-cache");
	http_respond_stream(resp, 200, "text/event-stream", st);
}

int api_usage_register(struct usage *u, struct http_server *srv)
{
	int rc = http_server_route_async(srv, "POST", "/internal/v1/usage", h_report, u);

	if (!rc)
		rc = http_server_route(srv, "GET", "/v1/usage/events", h_events, u);
	if (!rc)
		rc = http_server_route(srv, "GET", "/v1/usage", h_usage, u);
	if (!rc)
		rc = http_server_route(srv, "GET", "/metrics", h_metrics, u);
	return rc;
}
