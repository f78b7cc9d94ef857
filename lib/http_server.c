/* http_server.c - libmicrohttpd with a route table, bounded request bodies, JSON helpers,
 * streaming responses and the request path of both modes (see http_server.h); pool mode's
 * suspended connections (async answers, parked streams, workers) are in http_pool.c. */
#include "lib/http_server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"

/* Per-request state kept by MHD between calls of the access handler. */
struct pending_request {
	char *body;
	size_t len, cap;
	size_t expect;                  /* Content-Length when given: the body's first size */
	bool too_large;
	struct http_deferred *deferred; /* an async route's answer */
};

static int add_route(struct http_server *srv, const char *method, const char *pattern,
		     http_handler_fn fn, http_async_fn afn, bool quick, void *ctx)
{
	struct route *r;
	size_t len = strlen(pattern);

	if (srv->route_count >= MAX_ROUTES)
		return -ENOSPC;
	r = &srv->routes[srv->route_count];
	r->is_prefix = len > 0 && pattern[len - 1] == '*';
	r->method = strdup(method);
	r->prefix = strndup(pattern, r->is_prefix ? len - 1 : len);
	if (!r->method || !r->prefix) {
		free(r->method);
		free(r->prefix);
		return -ENOMEM;
	}
	r->fn = fn;
	r->afn = afn;
	r->quick = quick;
	r->ctx = ctx;
	srv->route_count++;
	return 0;
}

int http_server_route(struct http_server *srv, const char *method, const char *pattern,
		      http_handler_fn fn, void *ctx)
{
	return add_route(srv, method, pattern, fn, NULL, false, ctx);
}

int http_server_route_quick(struct http_server *srv, const char *method, const char *pattern,
			    http_handler_fn fn, void *ctx)
{
	return add_route(srv, method, pattern, fn, NULL, true, ctx);
}

int http_server_route_async(struct http_server *srv, const char *method, const char *pattern,
			    http_async_fn fn, void *ctx)
{
	return add_route(srv, method, pattern, NULL, fn, false, ctx);
}

static bool route_matches_path(const struct route *r, const char *path, const char **subpath)
{
	size_t n = strlen(r->prefix);

	if (!r->is_prefix) {
		*subpath = "";
		return strcmp(path, r->prefix) == 0;
	}
	if (strncmp(path, r->prefix, n) != 0)
		return false;
	if (path[n] != '\0' && path[n] != '/')
		return false;
	*subpath = path + n;
	return true;
}

const char *http_query(struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_match {
	const char *key, *value;
	bool found;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct query_match *m = cls;

	(void)kind;
	if (strcmp(key, m->key) == 0 && value && strcmp(value, m->value) == 0) {
		m->found = true;
		return MHD_NO;
	}
	return MHD_YES;
}

bool http_query_has(struct http_request *req, const char *key, const char *value)
{
	struct query_match m = { key, value, false };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_iter, &m);
	return m.found;
}

static enum MHD_Result query_present_iter(void *cls, enum MHD_ValueKind kind,
					  const char *key, const char *value)
{
	struct query_match *m = cls;

	(void)kind;
	(void)value;
	if (strcmp(key, m->key) == 0) {
		m->found = true;
		return MHD_NO;
	}
	return MHD_YES;
}

bool http_query_bool(struct http_request *req, const char *key)
{
	struct query_match m = { key, NULL, false };
	const char *v = http_query(req, key);

	if (v)
		return strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || v[0] == '\0';
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_present_iter, &m);
	return m.found;
}

const char *http_header(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static void set_body(struct http_response *resp, int status, const char *content_type,
		     char *body)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = body;
	resp->body_len = body ? strlen(body) : 0;
}

void http_respond_json(struct http_response *resp, int status, json_t *json)
{
	char *text = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(json);
	if (!text) {
		set_body(resp, 500, "application/json",
			 strdup("{\"message\":\"internal error: response could not be encoded\"}"));
		return;
	}
	set_body(resp, status, "application/json", text);
}

void http_respond_error(struct http_response *resp, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_sanitize(msg);     /* messages quote request paths: keep the 4xx a 4xx */
	http_respond_json(resp, status, json_pack("{s:s}", "message", msg));
}

void http_respond_text(struct http_response *resp, int status, const char *content_type,
		       const char *text)
{
	set_body(resp, status, content_type, strdup(text));
}

void http_respond_header(struct http_response *resp, const char *name, const char *value)
{
	if (resp->header_count >= HTTP_MAX_HEADERS)
		return;
	resp->headers[resp->header_count].name = strdup(name);
	resp->headers[resp->header_count].value = strdup(value);
	resp->header_count++;
}

void http_respond_stream(struct http_response *resp, int status, const char *content_type,
			 struct http_stream stream)
{
	set_body(resp, status, content_type, NULL);
	resp->stream = stream;
}

void http_respond_upgrade(struct http_response *resp, const char *protocol,
			  const struct http_upgrade_target *target)
{
	set_body(resp, 101, NULL, NULL);
	resp->upgrade = target;
	http_respond_header(resp, "Upgrade", protocol);
}

/* MHD's handle is the connection's: closing through it lets MHD release the socket. */
void http_upgraded_close(struct http_upgraded *up)
{
	MHD_upgrade_action((struct MHD_UpgradeResponseHandle *)up, MHD_UPGRADE_ACTION_CLOSE);
}

void http_upgraded_stream_setup(int fd, char *peer, size_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int one = 1, port = 0, keep_idle = 60, keep_intvl = 10, keep_cnt = 6;

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(peer, peerlen, "%s:%d", host, port);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keep_idle, sizeof(keep_idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keep_intvl, sizeof(keep_intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keep_cnt, sizeof(keep_cnt));
}

static void upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
		     size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	const struct http_upgrade_target *t = cls;

	(void)conn;
	(void)con_cls;
	t->fn(t->ctx, sock, extra, extra_len, (struct http_upgraded *)urh);
}

json_t *http_body_json(struct http_request *req, struct http_response *resp)
{
	json_error_t error;
	json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &error);
	char detail[512];

	if (j)
		return j;
	if (req->body_len == 0)
		snprintf(detail, sizeof(detail), "Request body is empty; a JSON document is expected");
	else
		snprintf(detail, sizeof(detail), "%s at line %d column %d", error.text, error.line,
			 error.column);
	http_respond_invalid_json(resp, detail);
	return NULL;
}

void http_respond_invalid_json(struct http_response *resp, const char *detail)
{
	http_respond_json(resp, 400,
			  json_pack("{s:s,s:[{s:s,s:[s]}]}", "message", "Invalid JSON", "details",
				    "path", "/", "errors", detail));
}

void hs_response_release(struct http_response *resp)
{
	free(resp->body);
	for (int i = 0; i < resp->header_count; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	if (resp->stream.read && resp->stream.free)
		resp->stream.free(resp->stream.ctx);
	memset(resp, 0, sizeof(*resp));
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *s = cls;
	ssize_t n;

	(void)pos;
	n = s->read(s->ctx, buf, max);
	return n > 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
	struct http_stream *s = cls;

	if (s->free)
		s->free(s->ctx);
	free(s);
}

/* ---- requests ---- */

static enum MHD_Result send_response(struct http_server *srv, struct MHD_Connection *conn,
				     struct http_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (resp->upgrade) {
		r = MHD_create_response_for_upgrade(upgraded, (void *)resp->upgrade);
		if (!r)
			return MHD_NO;
	} else if (resp->stream.read && srv->pool) {
		r = hs_pool_stream_response(srv, conn, &resp->stream);
		if (!r)
			return MHD_NO;  /* hs_response_release frees the stream */
		MHD_add_response_header(r, "Cache-Control", "no-cache");
	} else if (resp->stream.read) {
		struct http_stream *s = malloc(sizeof(*s));

		if (!s)
			return MHD_NO;
		*s = resp->stream;
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, s,
						      stream_free);
		if (!r) {
			free(s);
			return MHD_NO;
		}
		memset(&resp->stream, 0, sizeof(resp->stream));
		MHD_add_response_header(r, "Cache-Control", "no-cache");
	} else {
		r = MHD_create_response_from_buffer(resp->body_len, resp->body ? resp->body : (void *)"",
						    resp->body ? MHD_RESPMEM_MUST_FREE
							       : MHD_RESPMEM_PERSISTENT);
		if (!r)
			return MHD_NO;
		resp->body = NULL; /* owned by MHD now */
	}
	if (resp->content_type)
		MHD_add_response_header(r, "Content-Type", resp->content_type);
	for (int i = 0; i < resp->header_count; i++)
		MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The route for the request (its subpath set), or NULL with resp holding the 404/405. */
static struct route *find_route(struct http_server *srv, struct http_request *req,
				struct http_response *resp)
{
	bool path_known = false;

	for (int i = 0; i < srv->route_count; i++) {
		struct route *r = &srv->routes[i];
		const char *subpath;

		if (!route_matches_path(r, req->path, &subpath))
			continue;
		path_known = true;
		if (strcmp(r->method, "*") != 0 && strcmp(r->method, req->method) != 0)
			continue;
		req->subpath = subpath;
		return r;
	}
	if (path_known)
		http_respond_error(resp, 405, "Method %s is not allowed on %s", req->method,
				   req->path);
	else
		http_respond_error(resp, 404, "No such resource: %s", req->path);
	return NULL;
}

void hs_no_answer(struct http_request *req, struct http_response *resp)
{
	if (resp->status == 0)
		http_respond_error(resp, 500, "internal error: handler for %s %s gave no answer",
				   req->method, req->path);
}

/* An async request: answered -> the answer goes out; else the connection waits (its
 * thread, or suspended in pool mode until the answer resumes it). */
static enum MHD_Result deferred_poll(struct http_server *srv, struct MHD_Connection *conn,
				     struct pending_request *p, const char *method, const char *url)
{
	struct http_deferred *d = p->deferred;
	struct http_response resp;
	enum MHD_Result ret;

	pthread_mutex_lock(&d->mu);
	while (!d->answered && !srv->pool)
		pthread_cond_wait(&d->cond, &d->mu);
	if (!d->answered) {
		d->suspended = true;
		MHD_suspend_connection(conn);
		pthread_mutex_unlock(&d->mu);
		return MHD_YES;
	}
	resp = d->resp;
	memset(&d->resp, 0, sizeof(d->resp));
	pthread_mutex_unlock(&d->mu);
	if (resp.status == 0)
		http_respond_error(&resp, 500, "internal error: handler for %s %s gave no answer",
				   method, url);
	log_debug("event=http_request method=%s path=%s status=%d", method, url, resp.status);
	ret = send_response(srv, conn, &resp);
	hs_response_release(&resp);
	return ret;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct http_server *srv = cls;
	struct pending_request *p = *con_cls;
	struct http_response resp;
	struct http_request req;
	struct route *r;
	enum MHD_Result ret;

	(void)version;
	if (!p) {
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		p = calloc(1, sizeof(*p));
		if (!p)
			return MHD_NO;
		*con_cls = p;
		/* Too large: the body is still read (and dropped) before the 413 goes out, so
		 * that a client busy sending sees the answer instead of a reset connection. */
		if (cl) {
			unsigned long long n = strtoull(cl, NULL, 10);

			if (n > HTTP_MAX_BODY)
				p->too_large = true;
			else
				p->expect = (size_t)n;
		}
		return MHD_YES;
	}
	if (p->deferred)                /* resumed (or woken) while waiting for the answer */
		return deferred_poll(srv, conn, p, method, url);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (p->too_large || p->len + n > HTTP_MAX_BODY) {
			p->too_large = true;
			return MHD_YES;
		}
		if (p->len + n + 1 > p->cap) {
			/* One allocation when the length was given (no 4 KiB -> 8 KiB copies). */
			size_t cap = p->cap ? p->cap : p->expect >= 4096 ? p->expect + 1 : 4096;
			char *grown;

			while (cap < p->len + n + 1)
				cap *= 2;
			grown = realloc(p->body, cap);
			if (!grown)
				return MHD_NO;
			p->body = grown;
			p->cap = cap;
		}
		memcpy(p->body + p->len, upload_data, n);
		p->len += n;
		return MHD_YES;
	}

	memset(&resp, 0, sizeof(resp));
	if (p->too_large) {
		http_respond_error(&resp, 413, "Request body exceeds the limit of %d bytes",
				   HTTP_MAX_BODY);
		goto send;
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.subpath = "";
	req.body = p->body ? p->body : "";
	if (p->body)
		p->body[p->len] = '\0';
	req.body_len = p->len;
	req.conn = conn;
	r = find_route(srv, &req, &resp);
	if (r && (r->afn || (!r->quick && srv->workers_max))) {
		p->deferred = hs_deferred_new(srv, conn);
		if (!p->deferred) {
			http_respond_error(&resp, 503, "The server is shutting down");
			goto send;
		}
		if (r->afn) {
			r->afn(&req, p->deferred, r->ctx);
		} else if (!hs_job_queue(srv, r, p->deferred, &req)) {
			http_respond_error(&resp, 503, "The server is shutting down");
			http_deferred_respond(p->deferred, &resp);
		}
		return deferred_poll(srv, conn, p, method, url);
	}
	if (r) {
		r->fn(&req, &resp, r->ctx);
		hs_no_answer(&req, &resp);
	}
send:
	log_debug("event=http_request method=%s path=%s status=%d", method, url, resp.status);
	ret = send_response(srv, conn, &resp);
	hs_response_release(&resp);
	return ret;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct pending_request *p = *con_cls;

	(void)conn;
	(void)toe;
	if (!p)
		return;
	if (p->deferred)
		hs_deferred_release_conn(srv, p->deferred);
	free(p->body);
	free(p);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_debug("event=http_server_note msg=\"%s\"", msg);
}

/* libmicrohttpd's default is FD_SETSIZE - 4 (1,020) connections even with poll(); a master
 * talks to thousands of agents, each keeping connections open, so the limit is what the
 * process may open, less a reserve for files, the store and outgoing calls. (A pool splits
 * it evenly between its threads; a thread at its share stops accepting, the others go on.) */
static unsigned connection_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 65536;
	return rl.rlim_cur > 1280 ? (unsigned)(rl.rlim_cur - 256) : 1020;
}

static void server_free(struct http_server *srv)
{
	for (int i = 0; i < srv->route_count; i++) {
		free(srv->routes[i].method);
		free(srv->routes[i].prefix);
	}
	pthread_cond_destroy(&srv->tick_cond);
	pthread_cond_destroy(&srv->drained);
	pthread_cond_destroy(&srv->jobs_cond);
	pthread_cond_destroy(&srv->workers_gone);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}

struct http_server *http_server_start_opts(const struct http_server_opts *o, char *err,
					   size_t errlen)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	const char *bind_addr = o->bind_addr;
	struct sockaddr_in sin;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&srv->mu, NULL);
	srv->workers_max = o->threads ? o->workers : 0;
	pthread_cond_init(&srv->tick_cond, NULL);
	pthread_cond_init(&srv->drained, NULL);
	pthread_cond_init(&srv->jobs_cond, NULL);
	pthread_cond_init(&srv->workers_gone, NULL);
	srv->jobs_tail = &srv->jobs;
	srv->pool = o->threads > 0;
	flags |= srv->pool ? MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE
			   : MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(o->port);
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind_addr && *bind_addr && inet_pton(AF_INET, bind_addr, &sin.sin_addr) != 1) {
		snprintf(err, errlen, "bind address '%s' is not an IPv4 address", bind_addr);
		server_free(srv);
		return NULL;
	}
	/* A pool: its threads, and 16 KiB per connection instead of 32 (MHD zeroes a
	 * connection's memory after every request; headers still get 8 KiB and more). */
	struct MHD_OptionItem pool_opts[] = {
		{ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)o->threads, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)(16 * 1024), NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	srv->daemon = MHD_start_daemon(flags, o->port, NULL, NULL, access_handler, srv,
				       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
				       MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
				       MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
				       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				       srv->pool ? MHD_OPTION_ARRAY : MHD_OPTION_END, pool_opts,
				       MHD_OPTION_END);
	if (!srv->daemon) {
		snprintf(err, errlen, "cannot listen on %s:%u (address in use or not available)",
			 bind_addr && *bind_addr ? bind_addr : "0.0.0.0", o->port);
		server_free(srv);
		return NULL;
	}
	if (srv->pool) {
		int rc = pthread_create(&srv->ticker, NULL, hs_ticker_main, srv);

		if (rc) {
			snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
			MHD_stop_daemon(srv->daemon);
			server_free(srv);
			return NULL;
		}
		srv->ticker_running = true;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : o->port;
	return srv;
}

struct http_server *http_server_start(const char *bind_addr, uint16_t port, char *err,
				      size_t errlen)
{
	struct http_server_opts o = { .bind_addr = bind_addr, .port = port, .threads = 0 };

	return http_server_start_opts(&o, err, errlen);
}

uint16_t http_server_port(struct http_server *srv)
{
	return srv->port;
}

void http_server_stop(struct http_server *srv)
{
	if (!srv)
		return;
	hs_workers_stop(srv);           /* they finish what is queued: its memory is MHD's */
	hs_release_waiters(srv);
	if (srv->ticker_running)
		pthread_join(srv->ticker, NULL);
	MHD_stop_daemon(srv->daemon);
	server_free(srv);
}
