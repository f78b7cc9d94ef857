/* api_misc.c - GET /ping, GET /v2/info, GET /v2/events (Server-Sent Events, optional
 * event_type= filters, repeated). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

#include "lib/util.h"
#include "master/marathon/marathon_internal.h"

static void ping(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_text(resp, 200, "text/plain", "pong");
}

static void info(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	const struct master_config *cfg;
	char leader[300], started[32];
	const char *host;

	(void)req;
	master_lock(mt->m);
	cfg = master_get_config(mt->m);
	host = cfg->hostname && cfg->hostname[0] ? cfg->hostname : "localhost";
	snprintf(leader, sizeof(leader), "%s:%u", host, cfg->port);
	format_iso8601(master_started_at(mt->m), started);
	http_respond_json(resp, 200, json_pack(
		"{s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:{s:s, s:s, s:f, s:f, s:f, s:s, s:s},"
		" s:{s:i}, s:n, s:{s:s}}",
		"name", "pacer", "version", PACER_VERSION, "marathonVersion", MARATHON_VERSION,
		"elected", 1, "leader", leader, "frameworkId", mt->fw.id, "startedAt", started,
		"marathon_config",
		"master", leader, "hostname", host,
		"offer_timeout_seconds", cfg->offer_timeout,
		"allocation_interval_seconds", cfg->allocation_interval,
		"agent_timeout_seconds", cfg->agent_timeout,
		"mesos_role", "*", "framework_name", mt->fw.name,
		"http_config", "http_port", (int)cfg->port,
		"zookeeper_config",
		"event_subscriber", "type", "sse"));
	master_unlock(mt->m);
}

#define MAX_TYPE_FILTERS 32

struct type_filter {
	const char *types[MAX_TYPE_FILTERS + 1];
	int n;
};

static enum MHD_Result collect_types(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct type_filter *f = cls;

	(void)kind;
	if (strcmp(key, "event_type") == 0 && value && value[0] && f->n < MAX_TYPE_FILTERS)
		f->types[f->n++] = value;
	return MHD_YES;
}

static void events_stream(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	struct type_filter f = { .n = 0 };
	struct http_stream s;
	int rc;

	if (req->conn)
		MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_types, &f);
	f.types[f.n] = NULL;
	rc = events_subscribe(mt->events, f.n ? f.types : NULL, &s);
	if (rc) {
		http_respond_error(resp, 503, "event stream unavailable: %s", strerror(-rc));
		return;
	}
	events_publish(mt->events, "event_stream_attached",
		       json_pack("{s:s}", "remoteAddress", http_header(req, "X-Forwarded-For") ?: ""));
	http_respond_stream(resp, 200, "text/event-stream", s);
}

int api_misc_register(struct marathon *mt, struct http_server *srv)
{
	int rc = http_server_route(srv, "GET", "/ping", ping, mt);

	if (!rc)
		rc = http_server_route(srv, "GET", "/v2/info", info, mt);
	if (!rc)
		rc = http_server_route(srv, "GET", "/v2/events", events_stream, mt);
	return rc;
}
