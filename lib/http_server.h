/* http_server.h - the HTTP server every daemon uses: libmicrohttpd underneath, a small
 * route table on top, JSON responses with jansson, and streaming bodies (Server-Sent Events).
 *
 * Threading: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), so a handler may
 * block (take the owner's lock) and a stream reader may wait on a condition variable.
 * Request bodies are limited to HTTP_MAX_BODY bytes; larger ones get 413 with a JSON body
 * before any handler runs. */
#ifndef PACER_HTTP_SERVER_H
#define PACER_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#define HTTP_MAX_BODY (1024 * 1024)

struct http_server;
struct MHD_Connection;

struct http_request {
	const char *method;        /* "GET", "POST", ... */
	const char *path;          /* URL path, without the query string */
	const char *subpath;       /* for prefix routes: what follows the prefix ("" if none) */
	const char *body;          /* NUL-terminated (may be "" ) */
	size_t body_len;
	struct MHD_Connection *conn;
};

/* Streaming body: read() fills buf with up to max bytes, blocking until data is there.
 * Returns bytes written (>0), or -1 to end the stream. free() is called once when the
 * client is gone or the stream ended. */
struct http_stream {
	ssize_t (*read)(void *ctx, char *buf, size_t max);
	void (*free)(void *ctx);
	void *ctx;
};

#define HTTP_MAX_HEADERS 8
struct http_response {
	int status;
	char *body;                 /* malloc'd; owned by the response */
	size_t body_len;
	const char *content_type;   /* static string */
	struct { char *name, *value; } headers[HTTP_MAX_HEADERS];
	int header_count;
	struct http_stream stream;  /* if stream.read is set, body is ignored */
};

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *resp, void *ctx);

/* bind_addr may be NULL (all addresses). port 0 picks a free port (see http_server_port). */
struct http_server *http_server_start(const char *bind_addr, uint16_t port, char *err, size_t errlen);
uint16_t http_server_port(struct http_server *srv);
void http_server_stop(struct http_server *srv);

/* Routes are tried in the order they were added. pattern is an exact path ("/v2/info"), or
 * a prefix when it ends in '*' ("/v2/apps*" matches "/v2/apps" and "/v2/apps/a/b";
 * req->subpath is then "" or "/a/b"). method "*" matches any method. A path that matches
 * no route gets 404; a path that matches only with other methods gets 405. */
int http_server_route(struct http_server *srv, const char *method, const char *pattern,
		      http_handler_fn fn, void *ctx);

/* Query string access (already URL-decoded). */
const char *http_query(struct http_request *req, const char *key);
/* True if key=value occurs among the (possibly repeated) query parameters. */
bool http_query_has(struct http_request *req, const char *key, const char *value);
/* true for "true"/"1"/"" (present without value); false when absent. */
bool http_query_bool(struct http_request *req, const char *key);
const char *http_header(struct http_request *req, const char *name);

/* Parses the body as JSON. On failure fills resp with 400
 * {"message":"Invalid JSON","details":[{"path":"/","errors":["... line L column C"]}]}
 * and returns NULL. */
json_t *http_body_json(struct http_request *req, struct http_response *resp);

/* Response builders. json is stolen (decref'd by the server). */
void http_respond_json(struct http_response *resp, int status, json_t *json);
void http_respond_error(struct http_response *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));       /* {"message": "..."} */
void http_respond_text(struct http_response *resp, int status, const char *content_type,
		       const char *text);
void http_respond_header(struct http_response *resp, const char *name, const char *value);
void http_respond_stream(struct http_response *resp, int status, const char *content_type,
			 struct http_stream stream);

#endif
