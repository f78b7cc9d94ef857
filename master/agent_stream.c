/* agent_stream.c - the master's end of the agent streams (see agent_stream.h).
 *
 * The I/O thread owns the sockets in its own epoll: it reads frames (a hello names the
 * stream's agent; results answer the oldest matching call; status frames are parsed and
 * queued for the status thread) and sends what others queued when the socket was full.
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

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/frame.h"
#include "lib/hashmap.h"
#include "lib/log.h"
#include "master/master_internal.h"
#include "master/status_wire.h"

#define FRAME_MAX HTTP_MAX_BODY         /* as the HTTP routes' body limit */
#define RECV_CHUNK (64 * 1024)
#define RBUF_SIZE (FRAME_HEADER + FRAME_MAX + RECV_CHUNK)
#define MAX_EVENTS 256
#define KEEP_IN_BYTES (16 * 1024)       /* a larger idle input buffer is given back */

/* A link worker's call waiting for its results. */
struct call {
	uint64_t id;
	size_t n;
	char **why;                     /* the worker's: filled when answered */
	int rc;                         /* 1 waiting, 0 answered, < 0 failed */
	struct call *next;
};

struct aconn {
	struct agent_stream *s;
	int fd;
	struct http_upgraded *up;
	struct frame_buf in;            /* thread: the start of a frame not yet whole */
	struct frame_buf out;           /* mu: bytes the socket has not taken yet */
	struct hm_node node;            /* mu: s->by_agent, once named */
	char agent_id[64];              /* set once by the thread (hello), then read-only */
	bool named;                     /* mu: in s->by_agent */
	bool gone;                      /* mu (written by the thread only): closed */
	bool broken;                    /* mu: a writer's send failed: the thread closes it */
	bool dirty;                     /* mu: on s->dirty */
	bool closing;                   /* thread: an error went out; close once it is sent */
	uint32_t events;                /* thread: what epoll watches */
	int refs;                       /* mu */
	struct call *calls;             /* mu: calls sent, oldest first */
	uint64_t next_call;             /* mu */
	uint64_t frames;                /* thread */
	char peer[64];
	struct aconn *next_in, *next_dirty, *next_dead;
	struct aconn *prev, *next;      /* thread: s->conns */
};

/* A status frame read, waiting for the status thread. */
struct sbatch {
	struct aconn *c;                /* referenced */
	uint64_t id;
	bool ok;                        /* b is parsed; else status/message say why not */
	unsigned status;
	char message[300];
	struct status_batch b;
	struct sbatch *next;
};

struct agent_stream {
	struct master *m;
	struct http_upgrade_target target;
	int ep, evfd;
	pthread_t io_thread, status_thread;
	bool io_running, status_running;
	pthread_mutex_t mu;
	pthread_cond_t call_cond;       /* a call was answered or failed */
	pthread_cond_t status_cond;     /* status batches were queued, or stop */
	bool stopping, woken;           /* mu */
	struct aconn *incoming;         /* mu: upgraded, not yet watched */
	struct aconn *dirty;            /* mu: output to send or a broken socket */
	struct hashmap by_agent;        /* mu: named streams by agent id */
	struct sbatch *sq_head, *sq_tail;       /* mu: status batches for the status thread */
	struct aconn *conns;            /* thread */
	struct aconn *dead;             /* thread: closed during this round of events */
	char *rbuf;                     /* thread */
};

static void conn_free(struct aconn *c)
{
	frame_buf_free(&c->in);
	frame_buf_free(&c->out);
	free(c);
}

static void conn_put(struct aconn *c)
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
static bool wake_locked(struct agent_stream *s)
{
	if (s->woken)
		return false;
	s->woken = true;
	return true;
}

static void poke(struct agent_stream *s)
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
	return 0;
}

/* mu held, output just appended by a writer that is not the I/O thread: send it now when
 * nothing waited before it; hand the rest (or a broken socket) to the thread. True if the
 * caller must poke the eventfd. */
static bool push_locked(struct aconn *c, bool waited_before)
{
	struct agent_stream *s = c->s;

	if (!waited_before && send_locked(c) < 0)
		c->broken = true;
	if ((c->broken || c->out.off < c->out.len) && !c->dirty) {
		c->dirty = true;
		c->next_dirty = s->dirty;
		s->dirty = c;
		return wake_locked(s);
	}
	return false;
}

static void fail(struct aconn *c, unsigned status, const char *msg);

/* ---- calls (link workers) ---- */

/* mu held: the call ends with rc (0 answered, < 0 failed); its worker is woken. */
static void call_end_locked(struct agent_stream *s, struct call *k, int rc)
{
	k->rc = rc;
	pthread_cond_broadcast(&s->call_cond);
}

/* mu held: unlinks k from c's calls. */
static void call_unlink_locked(struct aconn *c, struct call *k)
{
	for (struct call **pp = &c->calls; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			return;
		}
	}
}

int agent_stream_call(struct master *m, const char *agent_id, enum agent_frame_type kind,
		      const struct link_job *jobs, size_t n, char **why, long timeout_ms)
{
	struct agent_stream *s = m->astream;
	struct call k = { .n = n, .why = why, .rc = 1 };
	struct af_builder w;
	struct hm_node *node;
	struct aconn *c;
	struct timespec until;
	bool waited, wake;
	int rc = 0;

	if (!s)
		return -ENOTCONN;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	node = s->stopping ? NULL : hashmap_get(&s->by_agent, agent_id);
	if (!node) {
		rc = s->stopping ? -ESHUTDOWN : -ENOTCONN;
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	c = hm_entry(node, struct aconn, node);
	if (c->broken) {
		pthread_mutex_unlock(&s->mu);
		return -EPIPE;
	}
	k.id = ++c->next_call;
	waited = c->out.off < c->out.len;
	rc = af_call_begin(&w, &c->out, kind, k.id);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	for (const struct link_job *j = jobs; rc == 0 && j; j = j->next)
		rc = af_call_add(&w, j->task_id, j->body, j->body_len);
	if (rc) {
		/* Cut the half-built frame off: the stream's bytes stay whole frames. */
		c->out.len = c->out.off + w.start;
		if (c->out.len == c->out.off)
			c->out.off = c->out.len = 0;
		pthread_mutex_unlock(&s->mu);
		return rc == -EINVAL ? -EINVAL : -ENOMEM;
	}
	af_end(&w);
	c->refs++;
	{
		struct call **pp = &c->calls;

		while (*pp)
			pp = &(*pp)->next;
		*pp = &k;
	}
	wake = push_locked(c, waited);
	while (k.rc == 1 && !s->stopping) {
		if (pthread_cond_timedwait(&s->call_cond, &s->mu, &until) == ETIMEDOUT) {
			if (k.rc == 1) {
				call_unlink_locked(c, &k);
				k.rc = -ETIMEDOUT;
			}
			break;
		}
	}
	if (k.rc == 1) {                /* stopping */
		call_unlink_locked(c, &k);
		k.rc = -ESHUTDOWN;
	}
	rc = k.rc;
	pthread_mutex_unlock(&s->mu);
	if (wake)
		poke(s);
	conn_put(c);
	return rc;
}

/* The I/O thread: an 'R' frame answers the call with its id (the oldest, normally). */
static int take_results(struct aconn *c, const char *p, size_t len, char *err, size_t errlen)
{
	struct agent_stream *s = c->s;
	struct af_answer_reader r;
	struct af_answer_item it;
	struct call *k;
	int rc = af_answer_open(&r, p, len, err, errlen);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	for (k = c->calls; k && k->id != r.id; k = k->next)
		;
	if (!k) {                       /* its worker gave up waiting */
		pthread_mutex_unlock(&s->mu);
		log_warn("event=agent_stream_late_results agent=%s call=%llu", c->agent_id,
			 (unsigned long long)r.id);
		return 0;
	}
	call_unlink_locked(c, k);
	if (r.status != 200 || r.n != k->n) {
		char msg[400];

		if (r.status != 200)
			snprintf(msg, sizeof(msg), "agent %s answered %u: %.*s", c->agent_id, r.status,
				 (int)(r.message.len > 300 ? 300 : r.message.len), r.message.p);
		else
			snprintf(msg, sizeof(msg), "agent %s answered %u results for %zu tasks",
				 c->agent_id, r.n, k->n);
		for (size_t i = 0; i < k->n; i++)
			k->why[i] = strdup(msg);
		call_end_locked(s, k, 0);
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	for (size_t i = 0; i < k->n; i++) {
		char msg[400];

		rc = af_answer_next(&r, &it, err, errlen);
		if (rc <= 0) {
			/* A broken answer fails the whole call; the stream is closed. */
			for (size_t j = i; j < k->n; j++)
				k->why[j] = strdup("the agent's answer could not be read");
			call_end_locked(s, k, 0);
			pthread_mutex_unlock(&s->mu);
			return rc < 0 ? rc : -EINVAL;
		}
		if (it.ok)
			continue;
		snprintf(msg, sizeof(msg), "agent %s refused the task: %.*s", c->agent_id,
			 (int)(it.error.len > 300 ? 300 : it.error.len), it.error.p);
		k->why[i] = strdup(msg);
	}
	call_end_locked(s, k, 0);
	pthread_mutex_unlock(&s->mu);
	return af_answer_next(&r, &it, err, errlen);    /* 0: nothing after the last item */
}

/* ---- status batches (I/O thread queues, status thread applies) ---- */

static void take_status(struct aconn *c, const char *p, size_t len)
{
	struct agent_stream *s = c->s;
	struct sbatch *sb;
	struct af_text json;
	char err[256] = "";
	bool syntax = false;
	uint64_t id;
	int rc;

	if (af_status_read(p, len, &id, &json, err, sizeof(err)) < 0) {
		fail(c, 400, err);
		return;
	}
	if (!(sb = calloc(1, sizeof(*sb)))) {
		log_error("event=agent_stream_status_dropped agent=%s error=\"out of memory\"",
			  c->agent_id);
		return;                 /* no ack: the agent sends it again */
	}
	sb->c = c;
	sb->id = id;
	rc = status_wire_parse(json.p, json.len, &sb->b, &syntax, err, sizeof(err));
	sb->ok = rc == 0;
	if (rc == -EINVAL) {
		sb->status = 400;
		snprintf(sb->message, sizeof(sb->message), "%s%s", syntax ? "Invalid JSON: " : "",
			 err);
	} else if (rc) {
		sb->status = 503;
		snprintf(sb->message, sizeof(sb->message), "out of memory");
	} else if (strcmp(sb->b.agent_id, c->agent_id) != 0) {
		sb->ok = false;
		sb->status = 400;
		snprintf(sb->message, sizeof(sb->message),
			 "invalid status: agent_id '%.100s' is not this stream's agent '%.60s'",
			 sb->b.agent_id, c->agent_id);
		status_wire_free(&sb->b);
	}
	master_status_enter(s->m);
	pthread_mutex_lock(&s->mu);
	c->refs++;
	if (s->sq_tail)
		s->sq_tail->next = sb;
	else
		s->sq_head = sb;
	s->sq_tail = sb;
	pthread_cond_signal(&s->status_cond);
	pthread_mutex_unlock(&s->mu);
}

struct ack_build {
	struct af_builder w;
	int rc;
};

static void ack_one(void *arg, const struct status_update *u, const char *err)
{
	struct ack_build *ab = arg;

	(void)u;
	if (ab->rc == 0)
		ab->rc = af_answer_add(&ab->w, err == NULL, err);
}

/* master->lock held: applies one batch; its ack frame goes to ack. */
static void apply_batch(struct master *m, struct sbatch *sb, struct frame_buf *ack)
{
	struct ack_build ab = { .rc = 0 };
	struct agent *a;

	if (!sb->ok) {
		af_answer_begin(&ab.w, ack, AF_ACKS, sb->id, sb->status, sb->message);
		af_end(&ab.w);
		return;
	}
	a = agents_find(m, sb->c->agent_id);
	if (a && a->state == AGENT_ACTIVE)
		a->last_seen = m->clock_mono();
	if (af_answer_begin(&ab.w, ack, AF_ACKS, sb->id, 200, NULL) < 0)
		return;                 /* no ack: the agent sends the batch again */
	tasks_apply_status_each(m, sb->b.agent_id, sb->b.updates, sb->b.nupdates, ack_one, &ab);
	af_end(&ab.w);
}

static void *status_main(void *arg)
{
	struct agent_stream *s = arg;
	struct master *m = s->m;

	pthread_setname_np(pthread_self(), "agent-status");
	for (;;) {
		struct sbatch *list;
		unsigned long seq;
		size_t n = 0;

		pthread_mutex_lock(&s->mu);
		while (!s->stopping && !s->sq_head)
			pthread_cond_wait(&s->status_cond, &s->mu);
		list = s->sq_head;
		s->sq_head = s->sq_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		if (!list)
			break;          /* stopping, nothing left */
		/* One lock hold for all of them; each batch's ack is built in place. */
		{
			struct frame_buf acks[64];
			struct sbatch *sb = list;

			while (sb) {
				struct sbatch *first = sb;

				n = 0;
				memset(acks, 0, sizeof(acks));
				master_lock(m);
				for (; sb && n < 64; sb = sb->next, n++) {
					apply_batch(m, sb, &acks[n]);
					master_status_leave(m);
				}
				seq = master_store_seq(m);
				master_unlock(m);
				master_store_wait(m, seq);      /* durable before the agent hears */
				n = 0;
				for (struct sbatch *q = first; q != sb; n++) {
					struct sbatch *next = q->next;
					struct aconn *c = q->c;
					bool wake = false;

					pthread_mutex_lock(&s->mu);
					if (!c->gone && acks[n].len > acks[n].off) {
						bool waited = c->out.off < c->out.len;

						if (frame_buf_put(&c->out, acks[n].p + acks[n].off,
								  acks[n].len - acks[n].off) == 0)
							wake = push_locked(c, waited);
					}
					pthread_mutex_unlock(&s->mu);
					if (wake)
						poke(s);
					frame_buf_free(&acks[n]);
					if (q->ok)
						status_wire_free(&q->b);
					conn_put(c);
					free(q);
					q = next;
				}
			}
		}
	}
	return NULL;
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
	while (c->calls) {
		struct call *k = c->calls;

		c->calls = k->next;
		call_end_locked(s, k, s->stopping ? -ESHUTDOWN : -EPIPE);
	}
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
static void fail(struct aconn *c, unsigned status, const char *msg)
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
		fail(c, 400, err);
		return;
	}
	if (id.len >= sizeof(c->agent_id)) {
		fail(c, 400, "hello frame: agent_id longer than 63 bytes");
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
		fail(c, 404, msg);
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
		fail(c, 400, "the first frame must be a hello");
		return;
	}
	switch (type) {
	case AF_HELLO:
		if (c->named) {
			fail(c, 400, "a second hello on the stream");
			return;
		}
		take_hello(c, p, len);
		return;
	case AF_RESULTS:
		if (take_results(c, p, len, err, sizeof(err)) < 0)
			fail(c, 400, err);
		return;
	case AF_STATUS:
		take_status(c, p, len);
		return;
	default:
		if (type < 0)
			snprintf(err, sizeof(err), "unknown frame type 0x%02x",
				 len ? (unsigned char)p[0] : 0);
		else
			snprintf(err, sizeof(err), "frame type '%c' is not one an agent sends",
				 type);
		fail(c, 400, err);
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
			fail(c, 413, msg);
			break;
		}
		off += used;
		one_frame(c, p, plen);
	}
	c->in.off = c->in.len = 0;
	if (c->in.cap > KEEP_IN_BYTES && (c->closing || off == len))
		frame_buf_free(&c->in);
	if (!c->closing && !c->gone && off < len && frame_buf_put(&c->in, buf + off, len - off) < 0)
		fail(c, 503, "out of memory");
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
		conn_put(c);
	}
}

static void *io_main(void *arg)
{
	struct agent_stream *s = arg;
	struct epoll_event evs[MAX_EVENTS];
	bool stop = false;

	pthread_setname_np(pthread_self(), "agent-stream");
	while (!stop) {
		int n = epoll_wait(s->ep, evs, MAX_EVENTS, -1);

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
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int one = 1, port = 0, keep_idle = 60, keep_intvl = 10, keep_cnt = 6;
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
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Keep-alive probes find the agents whose host vanished without closing the stream. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keep_idle, sizeof(keep_idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keep_intvl, sizeof(keep_intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keep_cnt, sizeof(keep_cnt));
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
	rc = -pthread_create(&s->status_thread, NULL, status_main, s);
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
		poke(s);
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
	while (s->sq_head) {
		struct sbatch *sb = s->sq_head;

		s->sq_head = sb->next;
		if (sb->ok)
			status_wire_free(&sb->b);
		conn_put(sb->c);
		free(sb);
	}
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
