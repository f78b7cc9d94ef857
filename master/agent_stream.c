/* agent_stream.c - the master's end of the agent streams (see agent_stream.h).
 *
 * This file is the transport: the upgrade, and the I/O thread that owns the sockets in its
 * own epoll. It reads frames (a hello names the stream's agent; results go to the call they
 * answer, agent_stream_calls.c; status frames are parsed and queued for the status thread,
 * agent_stream_status.c) and sends what others queued when the socket was full.
 * Others write under s->mu: a link worker's call or the status thread's acks are appended
 * to the stream's output and sent at once when nothing is waiting before them, so a call
 * costs no thread hand-off in the usual case.
 *
 * The status thread takes every status batch queued since its last round, applies them all
 * under one master->lock hold (in arrival order), waits once until the store has their
 * writes durable, then appends each batch's acks to its stream: an agent never hears an ack
 * for an update a crash could lose, and at high rates one store wait covers many batches.
 * A body that is not a status batch gets its 400 ack in the same queue, so acks keep the
 * order of the status frames.
 *
 * Lifetime: a stream is referenced by the I/O thread (until it closes it), by each queued
 * status batch and by each link worker using it; the last reference frees it. Only the I/O
 * thread closes a stream; a writer that finds the socket broken marks it for closing.
 * s->mu guards the lists, outputs, calls, refs and flags marked "mu". */
#include "master/agent_stream.h"

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
#include "lib/hashmap.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/agent_stream_internal.h"
#include "master/master_internal.h"

static void conn_free(struct aconn *c)
{
	frame_buf_free(&c->in);
	frame_buf_free(&c->out);
	free(c);
}

void agent_stream_conn_put(struct aconn *c)
{
	struct agent_stream *s = c->s;
	bool last;

	pthread_mutex_lock(&s->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last)
		conn_free(c);
}

/* mu held: the thread must look at its lists; true if the caller must poke the eventfd. */
bool agent_stream_wake_locked(struct agent_stream *s)
{
	if (s->woken)
		return false;
	s->woken = true;
	return true;
}

void agent_stream_poke(struct agent_stream *s)
{
	uint64_t one = 1;

	if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("event=agent_stream_wake_failed error=\"%s\"", strerror(errno));
}

/* mu held: sends what the stream's output holds until the socket is full. -1: broken. */
static int send_locked(struct aconn *c)
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
			return 0;
		return -1;
	}
	if (c->out.cap > KEEP_OUT_BYTES)
		frame_buf_free(&c->out);        /* a big call went out: give its room back */
	return 0;
}

/* mu held, output just appended by a writer that is not the I/O thread: send it now when
 * nothing waited before it; hand the rest (or a broken socket) to the thread. True if the
 * caller must poke the eventfd. */
bool agent_stream_push_locked(struct aconn *c, bool waited_before)
{
	struct agent_stream *s = c->s;

	if (!waited_before && send_locked(c) < 0)
		c->broken = true;
	if ((c->broken || c->out.off < c->out.len) && !c->dirty) {
		c->dirty = true;
		c->next_dirty = s->dirty;
		s->dirty = c;
		return agent_stream_wake_locked(s);
	}
	return false;
}

/* ---- the I/O thread's side of a stream ---- */

static void close_conn(struct aconn *c, const char *why)
{
	struct agent_stream *s = c->s;

	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	pthread_mutex_lock(&s->mu);
	c->gone = true;
	if (c->named) {
		hashmap_remove_node(&s->by_agent, &c->node);
		c->named = false;
	}
	if (c->dirty) {
		for (struct aconn **pp = &s->dirty; *pp; pp = &(*pp)->next_dirty) {
			if (*pp == c) {
				*pp = c->next_dirty;
				break;
			}
		}
		c->dirty = false;
	}
	agent_stream_end_calls_locked(c, s->stopping ? -ESHUTDOWN : -EPIPE);
	pthread_mutex_unlock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	http_upgraded_close(c->up);     /* the server closes the socket */
	log_info("event=agent_stream_closed agent=%s peer=%s frames=%llu reason=\"%s\"",
		 c->agent_id[0] ? c->agent_id : "-", c->peer, (unsigned long long)c->frames, why);
	c->next_dead = s->dead;         /* its events of this round may still be in hand */
	s->dead = c;
}

static void watch(struct aconn *c, uint32_t events)
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

/* The thread sends what is queued and watches for room if the socket is full. */
static void flush(struct aconn *c)
{
	struct agent_stream *s = c->s;
	bool broken, pending;

	pthread_mutex_lock(&s->mu);
	broken = c->broken || send_locked(c) < 0;
	pending = c->out.off < c->out.len;
	pthread_mutex_unlock(&s->mu);
	if (broken) {
		close_conn(c, "send failed");
		return;
	}
	if (c->closing && !pending) {
		close_conn(c, "bad frame");
		return;
	}
	watch(c, (c->closing ? 0 : EPOLLIN) | (pending ? EPOLLOUT : 0));
}

/* An error frame; the stream closes once it is sent. */
void agent_stream_fail(struct aconn *c, unsigned status, const char *msg)
{
	struct agent_stream *s = c->s;

	log_warn("event=agent_stream_rejected agent=%s peer=%s status=%u message=\"%s\"",
		 c->agent_id[0] ? c->agent_id : "-", c->peer, status, msg);
	pthread_mutex_lock(&s->mu);
	af_error_encode(&c->out, status, msg);
	pthread_mutex_unlock(&s->mu);
	c->closing = true;
}

static void take_hello(struct aconn *c, const char *p, size_t len)
{
	struct agent_stream *s = c->s;
	struct af_text id;
	struct hm_node *old;
	char err[256];
	bool known;

	if (af_hello_read(p, len, &id, err, sizeof(err)) < 0) {
		agent_stream_fail(c, 400, err);
		return;
	}
	if (id.len >= sizeof(c->agent_id)) {
		agent_stream_fail(c, 400, "hello frame: agent_id longer than 63 bytes");
		return;
	}
	memcpy(c->agent_id, id.p, id.len);
	c->agent_id[id.len] = 0;
	master_lock(s->m);
	{
		struct agent *a = agents_find(s->m, c->agent_id);

		known = a && a->state == AGENT_ACTIVE;
	}
	master_unlock(s->m);
	if (!known) {
		char msg[160];

		snprintf(msg, sizeof(msg), "unknown agent '%s'; register again", c->agent_id);
		agent_stream_fail(c, 404, msg);
		return;
	}
	pthread_mutex_lock(&s->mu);
	old = hashmap_remove(&s->by_agent, c->agent_id);
	if (old)
		hm_entry(old, struct aconn, node)->named = false;
	hashmap_put(&s->by_agent, &c->node, c->agent_id);
	c->named = true;
	pthread_mutex_unlock(&s->mu);
	if (old)
		close_conn(hm_entry(old, struct aconn, node), "a newer stream of the agent");
	log_info("event=agent_stream_opened agent=%s peer=%s", c->agent_id, c->peer);
}

static void one_frame(struct aconn *c, const char *p, size_t len)
{
	char err[256] = "";
	int type = agent_frame_type(p, len);

	c->frames++;
	if (!c->named && type != AF_HELLO) {
		agent_stream_fail(c, 400, "the first frame must be a hello");
		return;
	}
	switch (type) {
	case AF_HELLO:
		if (c->named) {
			agent_stream_fail(c, 400, "a second hello on the stream");
			return;
		}
		take_hello(c, p, len);
		return;
	case AF_RESULTS:
		if (agent_stream_take_results(c, p, len, err, sizeof(err)) < 0)
			agent_stream_fail(c, 400, err);
		return;
	case AF_STATUS:
		agent_stream_take_status(c, p, len);
		return;
	default:
		if (type < 0)
			snprintf(err, sizeof(err), "unknown frame type 0x%02x",
				 len ? (unsigned char)p[0] : 0);
		else
			snprintf(err, sizeof(err), "frame type '%c' is not one an agent sends",
				 type);
		agent_stream_fail(c, 400, err);
		return;
	}
}

/* Every whole frame of buf[0..len); the rest is kept for the next recv. */
static void take_frames(struct aconn *c, const char *buf, size_t len)
{
	size_t off = 0;

	while (!c->closing && !c->gone) {
		const char *p;
		size_t plen, used;
		int rc = frame_next(buf + off, len - off, FRAME_MAX, &p, &plen, &used);

		if (rc == 0)
			break;
		if (rc < 0) {
			char msg[128];

			snprintf(msg, sizeof(msg), "frame of %zu bytes exceeds the limit of %d bytes",
				 plen, FRAME_MAX);
			agent_stream_fail(c, 413, msg);
			break;
		}
		off += used;
		one_frame(c, p, plen);
	}
	c->in.off = c->in.len = 0;
	if (c->in.cap > KEEP_IN_BYTES && (c->closing || off == len))
		frame_buf_free(&c->in);
	if (!c->closing && !c->gone && off < len && frame_buf_put(&c->in, buf + off, len - off) < 0)
		agent_stream_fail(c, 503, "out of memory");
}

static void read_conn(struct aconn *c)
{
	struct agent_stream *s = c->s;
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
	if (!c->gone)
		flush(c);
}

static void add_conn(struct aconn *c)
{
	struct agent_stream *s = c->s;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	c->opened_at = now_mono();
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
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
		if (!c->gone)
			flush(c);
	}
}

/* The eventfd: new streams, output to send, or stop. True when stopping. */
static bool on_wake(struct agent_stream *s)
{
	struct aconn *inc, *dirty;
	uint64_t v;
	bool stop;

	if (read(s->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("event=agent_stream_wake_failed error=\"%s\"", strerror(errno));
	pthread_mutex_lock(&s->mu);
	s->woken = false;
	inc = s->incoming;
	s->incoming = NULL;
	dirty = s->dirty;
	s->dirty = NULL;
	for (struct aconn *c = dirty; c; c = c->next_dirty)
		c->dirty = false;
	stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	while (inc) {
		struct aconn *next = inc->next_in;

		add_conn(inc);
		inc = next;
	}
	while (dirty) {
		struct aconn *next = dirty->next_dirty;

		if (!dirty->gone)
			flush(dirty);
		dirty = next;
	}
	return stop;
}

static void bury(struct agent_stream *s)
{
	while (s->dead) {
		struct aconn *c = s->dead;

		s->dead = c->next_dead;
		agent_stream_conn_put(c);
	}
}

/* Once a second: streams still without a hello past HELLO_DEADLINE_S get a 408 and close. */
static void sweep_silent(struct agent_stream *s, double now)
{
	for (struct aconn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->named || c->closing || c->gone || now - c->opened_at < HELLO_DEADLINE_S)
			continue;
		agent_stream_fail(c, 408, "no hello frame within 10 seconds of the upgrade");
		flush(c);
	}
}

static void *io_main(void *arg)
{
	struct agent_stream *s = arg;
	struct epoll_event evs[MAX_EVENTS];
	double swept = now_mono();
	bool stop = false;

	pthread_setname_np(pthread_self(), "agent-stream");
	while (!stop) {
		int n = epoll_wait(s->ep, evs, MAX_EVENTS, 1000);
		double now = now_mono();

		if (now - swept >= 1.0) {
			sweep_silent(s, now);
			swept = now;
		}

		if (n < 0 && errno != EINTR) {
			log_error("event=agent_stream_epoll_failed error=\"%s\"", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct aconn *c = evs[i].data.ptr;

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

/* A server thread: the socket is ours now; the I/O thread takes it from here. */
static void upgraded(void *ctx, int fd, const char *extra, size_t extra_len,
		     struct http_upgraded *up)
{
	struct agent_stream *s = ctx;
	struct aconn *c = calloc(1, sizeof(*c));
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
	c->refs = 1;
	http_upgraded_stream_setup(fd, c->peer, sizeof(c->peer));
	pthread_mutex_lock(&s->mu);
	refused = s->stopping;
	if (!refused) {
		c->next_in = s->incoming;
		s->incoming = c;
		wake = agent_stream_wake_locked(s);
	}
	pthread_mutex_unlock(&s->mu);
	if (refused) {
		http_upgraded_close(up);
		conn_free(c);
		return;
	}
	if (wake)
		agent_stream_poke(s);
}

/* Quick route: headers only. Same trust as the other internal routes (the hello names the
 * agent; the internal routes have no authentication). */
static void h_stream(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent_stream *s = ctx;
	const char *up = http_header(req, "Upgrade"), *conn = http_header(req, "Connection");
	bool stopping;

	if (!up || strcasecmp(up, AGENT_STREAM_PROTOCOL) || !conn || !strcasestr(conn, "upgrade")) {
		http_respond_error(resp, 426, "%s %s needs the headers \"Connection: Upgrade\" and "
				   "\"Upgrade: %s\"", req->method, req->path, AGENT_STREAM_PROTOCOL);
		http_respond_header(resp, "Upgrade", AGENT_STREAM_PROTOCOL);
		return;
	}
	pthread_mutex_lock(&s->mu);
	stopping = s->stopping;
	pthread_mutex_unlock(&s->mu);
	if (stopping) {
		http_respond_error(resp, 503, "The server is shutting down");
		return;
	}
	http_respond_upgrade(resp, AGENT_STREAM_PROTOCOL, &s->target);
}

/* ---- start and stop ---- */

size_t agent_stream_count(struct master *m)
{
	struct agent_stream *s = m->astream;
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	n = hashmap_count(&s->by_agent);
	pthread_mutex_unlock(&s->mu);
	return n;
}

int agent_stream_start(struct master *m, struct http_server *srv)
{
	struct agent_stream *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int rc = -ENOMEM;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->status_cond, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->call_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->m = m;
	s->target.fn = upgraded;
	s->target.ctx = s;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->rbuf = malloc(RBUF_SIZE);
	m->astream = s;
	if (s->ep < 0 || s->evfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (!s->rbuf || hashmap_init(&s->by_agent) < 0)
		goto fail;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->evfd, &ev) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = -pthread_create(&s->status_thread, NULL, agent_stream_status_main, s);
	if (rc)
		goto fail;
	s->status_running = true;
	rc = -pthread_create(&s->io_thread, NULL, io_main, s);
	if (rc)
		goto fail;
	s->io_running = true;
	rc = http_server_route_quick(srv, "GET", AGENT_STREAM_PATH, h_stream, s);
	if (rc)
		goto fail;
	return 0;
fail:
	agent_stream_free(m);
	return rc;
}

void agent_stream_stop(struct master *m)
{
	struct agent_stream *s = m->astream;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->call_cond);
	pthread_cond_broadcast(&s->status_cond);
	pthread_mutex_unlock(&s->mu);
	if (s->io_running) {
		agent_stream_poke(s);
		pthread_join(s->io_thread, NULL);
		s->io_running = false;
	}
	if (s->status_running) {
		pthread_join(s->status_thread, NULL);
		s->status_running = false;
	}
}

void agent_stream_free(struct master *m)
{
	struct agent_stream *s = m->astream;

	if (!s)
		return;
	agent_stream_stop(m);
	/* The status thread applied or dropped every batch on its way out; what a closed
	 * stream still queued is freed here. */
	agent_stream_drop_status(s);
	if (s->ep >= 0)
		close(s->ep);
	if (s->evfd >= 0)
		close(s->evfd);
	free(s->rbuf);
	hashmap_destroy(&s->by_agent);
	pthread_cond_destroy(&s->call_cond);
	pthread_cond_destroy(&s->status_cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
	m->astream = NULL;
}

