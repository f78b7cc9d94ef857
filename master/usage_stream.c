/* usage_stream.c - the agents' persistent usage streams (see usage_stream.h): the upgrade
 * route, and the ingest thread that owns every upgraded socket in its own epoll.
 *
 * A frame is read with one recv (the thread's buffer; only an unfinished frame is kept per
 * stream), parsed by usage_wire.c and applied with usage_apply_async like a POST. The
 * answer comes from the journal writer once the batch is durable (or at once for a repeat
 * already durable): it is appended to the stream's acks and the stream put on the dirty
 * list; the first answer of a group commit wakes the thread (eventfd), which sends each
 * dirty stream's answers with one send. Nothing is ever suspended or resumed, and epoll_ctl
 * is called only when a stream opens, closes or its socket is full.
 *
 * Lifetime: a stream is referenced by the thread (until it closes it) and by each answer
 * owed; the last reference frees it. Answers owed when the stream closed are dropped (the
 * agent sends the batch again). s->mu guards the lists, acks, refs and gone. */
#include "master/usage_stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/frame.h"
#include "lib/log.h"

#define FRAME_MAX HTTP_MAX_BODY         /* the POST route's body limit */
#define RECV_CHUNK (64 * 1024)
#define RBUF_SIZE (FRAME_HEADER + FRAME_MAX + RECV_CHUNK)
#define MAX_EVENTS 256
#define KEEP_IN_BYTES (16 * 1024)       /* a larger idle input buffer is given back */

struct sconn {
	struct usage_stream *s;
	int fd;
	struct http_upgraded *up;
	struct frame_buf in;            /* thread: the start of a frame not yet whole */
	struct frame_buf out;           /* thread: bytes the socket has not taken yet */
	struct frame_buf acks;          /* mu: answers since the thread last took them */
	int refs;                       /* mu: the thread's + one per answer owed */
	bool gone;                      /* mu (written by the thread only): closed */
	bool dirty;                     /* mu: on s->dirty */
	bool closing;                   /* thread: an error went out; close once it is sent */
	bool binary;                    /* pacer-usage/2: frames are binary batches */
	uint32_t events;                /* thread: what epoll watches */
	uint64_t batches;
	char peer[64];
	struct sconn *next_dirty, *next_in, *next_dead;
	struct sconn *prev, *next;      /* thread: s->conns */
};

struct usage_stream {
	struct usage *u;
	struct http_upgrade_target json_target, binary_target;
	int ep, evfd;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	bool stopping, woken;           /* mu */
	struct sconn *incoming;         /* mu: upgraded, not yet watched */
	struct sconn *dirty;            /* mu: with answers to send */
	struct sconn *conns;            /* thread */
	struct sconn *dead;             /* thread: closed during this round of events */
	char *rbuf;                     /* thread */
};

static void conn_free(struct sconn *c)
{
	frame_buf_free(&c->in);
	frame_buf_free(&c->out);
	frame_buf_free(&c->acks);
	free(c);
}

static void conn_put(struct sconn *c)
{
	struct usage_stream *s = c->s;
	bool last;

	pthread_mutex_lock(&s->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last)
		conn_free(c);
}

/* mu held: the thread must look at its lists; true if the caller must poke the eventfd. */
static bool wake_locked(struct usage_stream *s)
{
	if (s->woken)
		return false;
	s->woken = true;
	return true;
}

static void poke(struct usage_stream *s)
{
	uint64_t one = 1;

	if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("event=usage_stream_wake_failed error=\"%s\"", strerror(errno));
}

/* ---- the thread's side of a stream ---- */

static void close_conn(struct sconn *c, const char *why)
{
	struct usage_stream *s = c->s;

	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	pthread_mutex_lock(&s->mu);
	c->gone = true;
	if (c->dirty) {
		for (struct sconn **pp = &s->dirty; *pp; pp = &(*pp)->next_dirty) {
			if (*pp == c) {
				*pp = c->next_dirty;
				break;
			}
		}
		c->dirty = false;
	}
	pthread_mutex_unlock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	http_upgraded_close(c->up);     /* the server closes the socket */
	usage_note_stream(s->u, -1, 0);
	log_info("event=usage_stream_closed peer=%s batches=%llu reason=\"%s\"", c->peer,
		 (unsigned long long)c->batches, why);
	c->next_dead = s->dead;         /* its events of this round may still be in hand */
	s->dead = c;
}

static void watch(struct sconn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (events == c->events)
		return;
	if (epoll_ctl(c->s->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		close_conn(c, "epoll_ctl failed");
		return;
	}
	c->events = events;
}

/* Sends what is queued (one send when the socket takes it all). */
static void flush(struct sconn *c)
{
	while (c->out.off < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			frame_buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		close_conn(c, n < 0 ? strerror(errno) : "send failed");
		return;
	}
	if (c->closing && c->out.off >= c->out.len) {
		close_conn(c, "bad frame");
		return;
	}
	watch(c, (c->closing ? 0 : EPOLLIN) | (c->out.off < c->out.len ? EPOLLOUT : 0));
}

/* An error answer; the stream closes once it is sent. */
static void fail(struct sconn *c, json_t *answer)
{
	char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;

	json_decref(answer);
	if (text) {
		log_warn("event=usage_stream_rejected peer=%s answer=%s", c->peer, text);
		frame_append(&c->out, text, strlen(text));
	}
	free(text);
	c->closing = true;
}

/* The journal writer's answer (any thread). */
static void answered(void *arg, int rc, uint64_t acked, uint64_t last, const char *err)
{
	struct sconn *c = arg;
	struct usage_stream *s = c->s;
	char text[160];
	char *etext = NULL;
	const char *p = text;
	bool wake = false, lost = false;
	int n = 0;

	if (rc) {
		json_t *j = json_pack("{s:i,s:s}", "status", 503, "message", err ? err : "error");

		if (j && acked)
			json_object_set_new(j, "seq", json_integer((json_int_t)acked));
		etext = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		p = etext;
		n = etext ? (int)strlen(etext) : 0;
		log_error("event=usage_apply_failed error=\"%s\"", err ? err : "");
	} else {
		n = snprintf(text, sizeof(text), "{\"acknowledged_seq\":%llu,\"last_applied_seq\":%llu}",
			     (unsigned long long)acked, (unsigned long long)last);
	}
	pthread_mutex_lock(&s->mu);
	if (!c->gone) {
		lost = !p || frame_append(&c->acks, p, (size_t)n) < 0;
		if (!lost && !c->dirty) {
			c->dirty = true;
			c->next_dirty = s->dirty;
			s->dirty = c;
			wake = wake_locked(s);
		}
	}
	pthread_mutex_unlock(&s->mu);
	free(etext);
	if (lost)
		log_error("event=usage_stream_ack_lost peer=%s error=\"out of memory\"", c->peer);
	if (wake)
		poke(s);
	conn_put(c);
}

static void one_batch(struct sconn *c, const char *p, size_t len)
{
	struct usage_stream *s = c->s;
	struct usage_batch b;
	char err[256] = "";
	bool syntax = false;
	int rc = c->binary ? usage_binary_parse(p, len, &b, err, sizeof(err))
			   : usage_wire_parse(p, len, &b, &syntax, err, sizeof(err));

	if (rc == -EINVAL && syntax) {
		fail(c, json_pack("{s:i,s:s,s:[{s:s,s:[s]}]}", "status", 400, "message",
				  "Invalid JSON", "details", "path", "/", "errors", err));
		return;
	}
	if (rc == -EINVAL) {
		fail(c, json_pack("{s:i,s:s}", "status", 400, "message", err));
		return;
	}
	if (rc) {
		fail(c, json_pack("{s:i,s:s}", "status", 503, "message", "out of memory"));
		return;
	}
	c->batches++;
	usage_note_stream(s->u, 0, 1);
	pthread_mutex_lock(&s->mu);
	c->refs++;
	pthread_mutex_unlock(&s->mu);
	usage_apply_async(s->u, &b, answered, c);
	usage_wire_free(&b);
}

/* Every whole frame of buf[0..len); the rest is kept for the next recv. */
static void take_frames(struct sconn *c, const char *buf, size_t len)
{
	size_t off = 0;

	while (!c->closing) {
		const char *p;
		size_t plen, used;
		int rc = frame_next(buf + off, len - off, FRAME_MAX, &p, &plen, &used);

		if (rc == 0)
			break;
		if (rc < 0) {
			char msg[128];

			snprintf(msg, sizeof(msg), "Usage frame of %zu bytes exceeds the limit of %d bytes",
				 plen, FRAME_MAX);
			fail(c, json_pack("{s:i,s:s}", "status", 413, "message", msg));
			break;
		}
		off += used;
		one_batch(c, p, plen);
	}
	c->in.off = c->in.len = 0;
	if (c->in.cap > KEEP_IN_BYTES && (c->closing || off == len))
		frame_buf_free(&c->in);
	if (!c->closing && off < len && frame_buf_put(&c->in, buf + off, len - off) < 0)
		fail(c, json_pack("{s:i,s:s}", "status", 503, "message", "out of memory"));
}

static void read_conn(struct sconn *c)
{
	struct usage_stream *s = c->s;
	size_t have = c->in.len - c->in.off;
	ssize_t n;

	if (have)
		memcpy(s->rbuf, c->in.p + c->in.off, have);
	do
		n = recv(c->fd, s->rbuf + have, RBUF_SIZE - have, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		close_conn(c, "closed by the agent");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN)
			close_conn(c, strerror(errno));
		return;
	}
	take_frames(c, s->rbuf, have + (size_t)n);
	flush(c);
}

static void add_conn(struct sconn *c)
{
	struct usage_stream *s = c->s;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
	usage_note_stream(s->u, 1, 0);
	log_info("event=usage_stream_opened peer=%s", c->peer);
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		close_conn(c, "epoll_ctl failed");
		return;
	}
	c->events = EPOLLIN;
	if (c->in.len) {                /* sent right behind the upgrade request */
		size_t n = c->in.len;

		memcpy(s->rbuf, c->in.p, n);
		c->in.len = 0;
		take_frames(c, s->rbuf, n);
		flush(c);
	}
}

/* The eventfd: new streams, answers to send, or stop. True when stopping. */
static bool on_wake(struct usage_stream *s)
{
	struct sconn *inc, *dirty;
	uint64_t v;
	bool stop;

	if (read(s->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("event=usage_stream_wake_failed error=\"%s\"", strerror(errno));
	pthread_mutex_lock(&s->mu);
	s->woken = false;
	inc = s->incoming;
	s->incoming = NULL;
	dirty = s->dirty;
	s->dirty = NULL;
	for (struct sconn *c = dirty; c; c = c->next_dirty) {
		c->dirty = false;
		if (c->out.off >= c->out.len) {     /* the usual case: take the buffer whole */
			struct frame_buf t = c->out;

			c->out = c->acks;
			c->acks = t;
			c->acks.off = c->acks.len = 0;
		} else if (frame_buf_put(&c->out, c->acks.p + c->acks.off,
					 c->acks.len - c->acks.off) == 0) {
			c->acks.off = c->acks.len = 0;
		}
	}
	stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	while (inc) {
		struct sconn *next = inc->next_in;

		add_conn(inc);
		inc = next;
	}
	while (dirty) {
		struct sconn *next = dirty->next_dirty;

		if (!dirty->gone)
			flush(dirty);
		dirty = next;
	}
	return stop;
}

static void bury(struct usage_stream *s)
{
	while (s->dead) {
		struct sconn *c = s->dead;

		s->dead = c->next_dead;
		conn_put(c);
	}
}

static void *ingest_main(void *arg)
{
	struct usage_stream *s = arg;
	struct epoll_event evs[MAX_EVENTS];
	bool stop = false;

	pthread_setname_np(pthread_self(), "usage-ingest");
	while (!stop) {
		int n = epoll_wait(s->ep, evs, MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			log_error("event=usage_stream_epoll_failed error=\"%s\"", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (!c) {
				stop |= on_wake(s);
				continue;
			}
			if (c->gone)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(c);
			if (!c->gone && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				if (c->closing)
					close_conn(c, "bad frame");
				else
					read_conn(c);
			}
		}
		bury(s);
	}
	while (s->conns)
		close_conn(s->conns, "the master is stopping");
	bury(s);
	return NULL;
}

/* ---- the upgrade ---- */

/* A server thread: the socket is ours now; the ingest thread takes it from here. */
static void upgraded(struct usage_stream *s, bool binary, int fd, const char *extra,
		     size_t extra_len, struct http_upgraded *up)
{
	struct sconn *c = calloc(1, sizeof(*c));
	bool wake = false, refused;

	if (!c || (extra_len && frame_buf_put(&c->in, extra, extra_len) < 0)) {
		if (c)
			conn_free(c);
		http_upgraded_close(up);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->up = up;
	c->binary = binary;
	c->refs = 1;
	http_upgraded_stream_setup(fd, c->peer, sizeof(c->peer));
	pthread_mutex_lock(&s->mu);
	refused = s->stopping;
	if (!refused) {
		c->next_in = s->incoming;
		s->incoming = c;
		wake = wake_locked(s);
	}
	pthread_mutex_unlock(&s->mu);
	if (refused) {
		http_upgraded_close(up);
		conn_free(c);
		return;
	}
	if (wake)
		poke(s);
}

static void upgraded_json(void *ctx, int fd, const char *extra, size_t extra_len,
			  struct http_upgraded *up)
{
	upgraded(ctx, false, fd, extra, extra_len, up);
}

static void upgraded_binary(void *ctx, int fd, const char *extra, size_t extra_len,
			    struct http_upgraded *up)
{
	upgraded(ctx, true, fd, extra, extra_len, up);
}

/* Quick route: headers only. Same trust as POST /internal/v1/usage (the batch names its
 * agent; the internal routes have no authentication). */
static void h_stream(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct usage_stream *s = ctx;
	const char *up = http_header(req, "Upgrade"), *conn = http_header(req, "Connection");
	bool stopping, binary = up && strcasecmp(up, USAGE_STREAM_BINARY) == 0;

	if (!up || (!binary && strcasecmp(up, USAGE_STREAM_PROTOCOL)) || !conn ||
	    !strcasestr(conn, "upgrade")) {
		http_respond_error(resp, 426, "%s %s needs the headers \"Connection: Upgrade\" and "
				   "\"Upgrade: %s\" (binary batches) or \"Upgrade: %s\" (JSON batches)",
				   req->method, req->path, USAGE_STREAM_BINARY, USAGE_STREAM_PROTOCOL);
		http_respond_header(resp, "Upgrade", USAGE_STREAM_BINARY ", " USAGE_STREAM_PROTOCOL);
		return;
	}
	pthread_mutex_lock(&s->mu);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->mu);
	if (stopping) {
		http_respond_error(resp, 503, "The server is shutting down");
		return;
	}
	if (binary)
		http_respond_upgrade(resp, USAGE_STREAM_BINARY, &s->binary_target);
	else
		http_respond_upgrade(resp, USAGE_STREAM_PROTOCOL, &s->json_target);
}

/* ---- start and stop ---- */

int usage_stream_start(struct usage *u, struct http_server *srv, struct usage_stream **out)
{
	struct usage_stream *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int rc = -ENOMEM;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->u = u;
	s->json_target.fn = upgraded_json;
	s->json_target.ctx = s;
	s->binary_target.fn = upgraded_binary;
	s->binary_target.ctx = s;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->rbuf = malloc(RBUF_SIZE);
	if (s->ep < 0 || s->evfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (!s->rbuf)
		goto fail;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->evfd, &ev) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = -pthread_create(&s->thread, NULL, ingest_main, s);
	if (rc)
		goto fail;
	s->running = true;
	rc = http_server_route_quick(srv, "GET", "/internal/v1/usage/stream", h_stream, s);
	if (rc) {
		usage_stop_streams(s);
		usage_stream_free(s);
		return rc;
	}
	*out = s;
	return 0;
fail:
	usage_stream_free(s);
	return rc;
}

void usage_stop_streams(struct usage_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	if (!s->running)
		return;
	poke(s);
	pthread_join(s->thread, NULL);
	s->running = false;
}

void usage_stream_free(struct usage_stream *s)
{
	if (!s)
		return;
	usage_stop_streams(s);
	if (s->ep >= 0)
		close(s->ep);
	if (s->evfd >= 0)
		close(s->evfd);
	free(s->rbuf);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
