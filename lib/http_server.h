/* http_server.h - the HTTP server every daemon uses: libmicrohttpd underneath, a small
 * route table on top, JSON responses with jansson, streaming bodies (Server-Sent Events)
 * and answers given later from any thread (async routes).
 *
 * Threading, chosen at start:
 * - one thread per connection (http_server_start, or threads = 0): a handler may block (take
 *   the owner's lock) and a stream reader may wait on a condition variable. An async route's
 *   connection thread waits for the answer.
 * - a pool of epoll threads (threads > 0): thousands of connections on a few threads,
 *   which only read, parse and write. An ordinary route's handler runs on a worker thread
 *   (it may block as on a thread-per-connection server), its connection suspended
 *   meanwhile; a quick route's handler runs on the pool thread (it
 *   may take a lock briefly, never wait for a disk, a client or another program); an async
 *   route's handler runs on the pool thread and answers later from any thread. Stream
 *   reads never block (see struct http_stream).
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

/* What a non-blocking stream's producer pokes when it has data (or the stream ended). */
struct http_waker;

/* Streaming body: read() fills buf with up to max bytes and returns how many (>0), or -1 to
 * end the stream. free() is called once when the client is gone or the stream ended.
 * - Thread-per-connection servers never call attach: read() blocks until data is there.
 * - Pool servers call attach(ctx, waker) once before the first read(). read() must not
 *   block then: 0 means "nothing now", and the producer calls http_wake(waker) when there
 *   is (or when the stream should end); the server also calls read() about once a second
 *   while idle (keep-alives). The waker is valid until free() is called. A stream without
 *   attach on a pool server is read as if non-blocking: it must not block either. */
struct http_stream {
	ssize_t (*read)(void *ctx, char *buf, size_t max);
	void (*free)(void *ctx);
	void (*attach)(void *ctx, struct http_waker *waker);
	void *ctx;
};

/* Any thread, any number of times, until the stream's free() was called (so: call it under
 * the lock that free() takes to forget the waker). Cheap when the reader is not waiting. */
void http_wake(struct http_waker *waker);

/* A connection switched to another protocol (HTTP 101): its socket belongs to the target
 * from fn's call until http_upgraded_close (never close() it). fn runs on a server thread
 * and must not block; extra: bytes the client sent after the request, already read. */
struct http_upgraded;
struct http_upgrade_target {
	void (*fn)(void *ctx, int fd, const char *extra, size_t extra_len,
		   struct http_upgraded *up);
	void *ctx;
};

/* Ends an upgraded connection (any thread, once): the server closes the socket. Every
 * upgraded connection must be ended before http_server_stop. */
void http_upgraded_close(struct http_upgraded *up);
/* Readies an upgraded socket for a long-lived stream of frames: non-blocking, TCP_NODELAY,
 * keep-alive probes (60 s idle, then every 10 s, 6 of them: a peer whose host vanished
 * without closing is found); peer gets "ip:port" ("?:0" when unknown). */
void http_upgraded_stream_setup(int fd, char *peer, size_t peerlen);

#define HTTP_MAX_HEADERS 8
struct http_response {
	int status;
	char *body;                 /* malloc'd; owned by the response */
	size_t body_len;
	const char *content_type;   /* static string */
	struct { char *name, *value; } headers[HTTP_MAX_HEADERS];
	int header_count;
	struct http_stream stream;  /* if stream.read is set, body is ignored */
	const struct http_upgrade_target *upgrade;  /* set: a 101 that hands the socket over */
};

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *resp, void *ctx);

/* An answer owed by an async handler: exactly one http_deferred_finish (or _respond) per
 * token, from any thread, at any time - also after the client left or the server stopped
 * (the answer is then dropped). */
struct http_deferred;
/* req (body, query, headers) is valid only during the call: copy what is needed later. */
typedef void (*http_async_fn)(struct http_request *req, struct http_deferred *d, void *ctx);

struct http_server_opts {
	const char *bind_addr;      /* NULL: all addresses */
	uint16_t port;              /* 0: a free port (see http_server_port) */
	unsigned threads;           /* 0: a thread per connection; else an epoll pool this size */
	unsigned workers;           /* pool: at most this many threads run ordinary routes, started
				     * as needed (0: those run on the pool threads too) */
};

struct http_server *http_server_start_opts(const struct http_server_opts *o, char *err,
					   size_t errlen);
/* Thread per connection. bind_addr may be NULL (all addresses). port 0 picks a free port. */
struct http_server *http_server_start(const char *bind_addr, uint16_t port, char *err, size_t errlen);
uint16_t http_server_port(struct http_server *srv);
void http_server_stop(struct http_server *srv);

/* Routes are tried in the order they were added. pattern is an exact path ("/v2/info"), or
 * a prefix when it ends in '*' ("/v2/apps*" matches "/v2/apps" and "/v2/apps/a/b";
 * req->subpath is then "" or "/a/b"). method "*" matches any method. A path that matches
 * no route gets 404; a path that matches only with other methods gets 405. */
int http_server_route(struct http_server *srv, const char *method, const char *pattern,
		      http_handler_fn fn, void *ctx);
/* A handler that never waits long (a brief lock; no disk, no network): on a pool server it
 * runs on the pool thread, saving the hand-over to a worker (for frequent requests);
 * elsewhere it is an ordinary route. */
int http_server_route_quick(struct http_server *srv, const char *method, const char *pattern,
			    http_handler_fn fn, void *ctx);
/* The same for a handler that answers later through its token. */
int http_server_route_async(struct http_server *srv, const char *method, const char *pattern,
			    http_async_fn fn, void *ctx);

/* Answers an async request (body copied; content_type a static string). Consumes d. */
void http_deferred_finish(struct http_deferred *d, int status, const char *content_type,
			  const char *body, size_t len);
/* Answers with a response made by the builders below (not a stream); its contents are
 * taken over (resp is empty afterwards). Consumes d. */
void http_deferred_respond(struct http_deferred *d, struct http_response *resp);

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
/* That 400 "Invalid JSON" answer, for routes that read their body another way; detail is
 * the parser's "... at line L column C" (or that the body is empty). */
void http_respond_invalid_json(struct http_response *resp, const char *detail);

/* Response builders. json is stolen (decref'd by the server). */
void http_respond_json(struct http_response *resp, int status, json_t *json);
void http_respond_error(struct http_response *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));       /* {"message": "..."} */
void http_respond_text(struct http_response *resp, int status, const char *content_type,
		       const char *text);
void http_respond_header(struct http_response *resp, const char *name, const char *value);
void http_respond_stream(struct http_response *resp, int status, const char *content_type,
			 struct http_stream stream);
/* 101 Switching Protocols to protocol (the Upgrade header); once it is sent, target->fn
 * gets the socket. target must outlive the server (or every upgrade it may still make). */
void http_respond_upgrade(struct http_response *resp, const char *protocol,
			  const struct http_upgrade_target *target);

#endif
