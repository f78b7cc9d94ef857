/* api_usage.c - the usage routes: POST /internal/v1/usage (agents' numbered batches,
 * read by the streaming usage_wire.c, answered with the sequence to acknowledge), GET /v1/usage?tenant=&app=&task= (JSON totals
 * and rates per tenant, app and task), GET /metrics (Prometheus text format) and
 * GET /v1/usage/events (usage_update Server-Sent Events for schedulers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "lib/http_server.h"
#include "lib/log.h"
#include "master/usage.h"

static void h_report(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct usage *u = ctx;
	struct usage_batch b;
	uint64_t acked = 0, last = 0;
	char err[256] = "";
	bool syntax;
	int rc;

	rc = usage_wire_parse(req->body, req->body_len, &b, &syntax, err, sizeof(err));
	if (rc == -EINVAL && syntax) {
		http_respond_json(resp, 400, json_pack("{s:s,s:[{s:s,s:[s]}]}", "message", "Invalid JSON",
						       "details", "path", "/", "errors", err));
		return;
	}
	if (rc == -EINVAL) {
		http_respond_error(resp, 400, "%s", err);
		return;
	}
	if (rc) {
		http_respond_error(resp, 503, "out of memory");
		return;
	}
	rc = usage_apply(u, &b, &acked, err, sizeof(err));
	if (rc == 0)
		last = usage_last_applied(u, b.agent_id);
	usage_wire_free(&b);
	if (rc) {
		log_error("event=usage_apply_failed error=\"%s\"", err);
		http_respond_error(resp, 503, "%s", err);
		return;
	}
	/* Ten thousand of these a second: printed, not built with jansson. */
	char text[96];

	snprintf(text, sizeof(text), "{\"acknowledged_seq\":%llu,\"last_applied_seq\":%llu}",
		 (unsigned long long)acked, (unsigned long long)last);
	http_respond_text(resp, 200, "application/json", text);
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
	int rc = http_server_route(srv, "POST", "/internal/v1/usage", h_report, u);

	if (!rc)
		rc = http_server_route(srv, "GET", "/v1/usage/events", h_events, u);
	if (!rc)
		rc = http_server_route(srv, "GET", "/v1/usage", h_usage, u);
	if (!rc)
		rc = http_server_route(srv, "GET", "/metrics", h_metrics, u);
	return rc;
}
