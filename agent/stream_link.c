/* stream_link.c - the agent end of the agent stream (pacer-agent/1, lib/agent_frame.h,
 * docs/architecture.md "Agent stream"): one persistent connection to the master, opened by
 * the agent once it is registered, carrying the master's launch and kill calls ('L' / 'K',
 * each answered with one 'R') and the agent's status batches ('S', each answered by the
 * master with one 'A').
 *
 * Its own thread opens the stream (GET /internal/v1/agent/stream, upgraded), sends the
 * hello and reads frames until the stream ends. A call's elements are carried out one by
 * one exactly as POST /v1/launch and /v1/kill carry out a batch's (calls.c) and answered at
 * once; an ack goes to the master_link thread waiting for it (agent_stream_status: one
 * batch in flight). A stream that closes or fails to open is tried again after a backoff
 * (1 s, doubling to 30 s, back to 1 s once one opens), or at once when the agent registers
 * again; a master without the route (404 / 426: an older one) is asked again after 60 s.
 * Without a stream everything goes over HTTP as before.
 *
 * Locking: s->wmu keeps writes on the socket whole and is taken before s->mu; only the
 * thread closes the socket, holding both, so a writer never sends on a closed (reused)
 * descriptor. agent->lock is never held with either. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/agent_frame.h"
#include "lib/http_lite.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"

#define BACKOFF_MIN_S 1.0
#define BACKOFF_MAX_S 30.0
#define REFUSED_RETRY_S 60.0           /* a master without the stream: HTTP only meanwhile */
#define UNREGISTERED_POLL_S 1.0        /* not registered: look again (a kick comes sooner) */
#define OPEN_TIMEOUT_MS 5000
#define SEND_TIMEOUT_MS 10000
#define IN_FRAME_MAX (16u * 1024 * 1024)  /* a call of AGENT_BATCH_MAX launches fits */

_Static_assert(STREAM_OUT_FRAME_MAX == HTTP_MAX_BODY, "the master reads frames up to its body limit");

void stream_link_init(struct stream_link *s)
{
	pthread_condattr_t attr;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	s->fd = -1;
}

void stream_link_destroy(struct stream_link *s)
{
	free(s->ack);
	s->ack = NULL;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->wmu);
	pthread_mutex_destroy(&s->mu);
}

/* With s->mu held: waits on s->cond until the monotonic deadline (or a signal). */
static void timed_wait(struct stream_link *s, double deadline)
{
	double left = deadline - now_mono();
	struct timespec ts;

	if (left <= 0)
		return;
	if (left > 3600)
		left = 3600;
	ts = timespec_after(CLOCK_MONOTONIC, left);
	pthread_cond_timedwait(&s->cond, &s->mu, &ts);
}

void stream_link_kick(struct agent *a)
{
	struct stream_link *s = &a->stream;

	if (!a->cfg.agent_stream)
		return;
	pthread_mutex_lock(&s->mu);
	s->kick = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* ---- status batches (the master_link thread) ---- */

int stream_link_status(struct agent *a, const char *body, size_t len, long timeout_ms,
			long *status, json_t **answer)
{
	struct stream_link *s = &a->stream;
	struct frame_buf f = { 0 };
	double deadline = now_mono() + (double)timeout_ms / 1000.0;
	uint64_t id, session;
	char *ack = NULL;
	size_t ack_len = 0;
	int rc, fd;

	*status = 0;
	*answer = NULL;
	if (!a->cfg.agent_stream || FRAME_HEADER + 9 + len > STREAM_OUT_FRAME_MAX)
		return -ENOTCONN;
	pthread_mutex_lock(&s->wmu);
	pthread_mutex_lock(&s->mu);
	fd = s->fd;
	if (fd < 0 || s->stop) {
		pthread_mutex_unlock(&s->mu);
		pthread_mutex_unlock(&s->wmu);
		return -ENOTCONN;
	}
	id = ++s->batch_id;
	s->want = id;
	session = s->session;
	free(s->ack);
	s->ack = NULL;
	pthread_mutex_unlock(&s->mu);
	rc = af_status_encode(&f, id, body, len);
	if (rc == 0)
		rc = http_lite_send_all(fd, f.p, f.len, timeout_ms);
	if (rc < 0 && rc != -ENOMEM)
		shutdown(fd, SHUT_RDWR);    /* part of a frame may be out: the stream is spoilt */
	pthread_mutex_unlock(&s->wmu);
	frame_buf_free(&f);
	pthread_mutex_lock(&s->mu);
	while (rc == 0 && !s->ack && s->session == session && s->fd >= 0 && !s->stop &&
	       now_mono() < deadline)
		timed_wait(s, deadline);
	if (rc == 0 && s->ack) {
		ack = s->ack;
		ack_len = s->ack_len;
		s->ack = NULL;
	} else if (rc == 0) {
		rc = s->session == session && s->fd >= 0 && !s->stop ? -ETIMEDOUT : -ECONNRESET;
	}
	s->want = 0;
	pthread_mutex_unlock(&s->mu);
	if (rc == 0) {
		char err[160];

		rc = stream_ack_answer(ack, ack_len, status, answer, err, sizeof(err));
		if (rc == -EPROTO)
			log_warn("event=agent_stream_bad_ack error=\"%s\"", err);
	}
	free(ack);
	return rc;
}

/* ---- the stream's thread ---- */

/* Sends a whole frame (or more) on the stream; 0 or -errno. */
static int send_frames(struct stream_link *s, int fd, const struct frame_buf *f)
{
	int rc;

	pthread_mutex_lock(&s->wmu);
	rc = http_lite_send_all(fd, f->p + f->off, f->len - f->off, SEND_TIMEOUT_MS);
	pthread_mutex_unlock(&s->wmu);
	return rc;
}

static int carry_out(void *ctx, bool launch, const char *json, size_t len, char *err,
		     size_t errlen)
{
	return agent_call_text(ctx, launch, json, len, err, errlen);
}

/* 'L' / 'K': carried out and answered with one 'R' (stream_frames.c). 0, or -errno when
 * the stream cannot go on. */
static int handle_call(struct agent *a, int fd, const char *p, size_t len)
{
	struct frame_buf out = { 0 };
	char err[256];
	int rc;

	log_debug("event=agent_stream_call kind=%c bytes=%zu", p[0], len);
	rc = stream_call_answer(p, len, carry_out, a, &out, err, sizeof(err));
	if (rc == -EPROTO)
		log_warn("event=agent_stream_bad_frame error=\"%s\"", err);
	if (rc == 0)
		rc = send_frames(&a->stream, fd, &out);
	frame_buf_free(&out);
	return rc;
}

/* 'A': handed to the status batch waiting for it; any other is late (its waiter gave
 * up: the batch is sent again) and dropped. -EPROTO for a frame that cannot be read. */
static int handle_ack(struct stream_link *s, const char *p, size_t len, char *reason,
		      size_t reason_len)
{
	struct af_answer_reader r;
	char err[160];

	if (af_answer_open(&r, p, len, err, sizeof(err)) < 0) {
		snprintf(reason, reason_len, "unreadable ack frame: %s", err);
		return -EPROTO;
	}
	pthread_mutex_lock(&s->mu);
	if (r.id && r.id == s->want && !s->ack && (s->ack = malloc(len))) {
		memcpy(s->ack, p, len);
		s->ack_len = len;
		pthread_cond_broadcast(&s->cond);
	} else {
		log_debug("event=agent_stream_late_ack batch_id=%llu", (unsigned long long)r.id);
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* 'E': the master ends the stream. An agent it does not know registers again. */
static void handle_error(struct agent *a, const char *p, size_t len, char *reason,
			 size_t reason_len)
{
	struct af_text msg = { "", 0 };
	unsigned status = 0;
	char err[160];

	if (af_error_read(p, len, &status, &msg, err, sizeof(err)) < 0) {
		snprintf(reason, reason_len, "unreadable error frame: %s", err);
		return;
	}
	log_warn("event=agent_stream_error status=%u message=\"%.*s\"", status,
		 (int)(msg.len > 400 ? 400 : msg.len), msg.p);
	snprintf(reason, reason_len, "the master sent error %u", status);
	if (status == 404) {
		pthread_mutex_lock(&a->lock);
		a->registered = false;
		pthread_cond_broadcast(&a->link_cond);
		pthread_mutex_unlock(&a->lock);
	}
}

/* One frame from the master: 0 to go on, else the stream ends (reason says why). */
static int handle_frame(struct agent *a, int fd, const char *p, size_t len, char *reason,
			size_t reason_len)
{
	int rc;

	switch (agent_frame_type(p, len)) {
	case AF_LAUNCH:
	case AF_KILL:
		if ((rc = handle_call(a, fd, p, len)) < 0)
			snprintf(reason, reason_len, "cannot answer a call: %s", strerror(-rc));
		return rc;
	case AF_ACKS:
		return handle_ack(&a->stream, p, len, reason, reason_len);
	case AF_ERROR:
		handle_error(a, p, len, reason, reason_len);
		return -ECONNRESET;
	default:
		snprintf(reason, reason_len, "unexpected frame type 0x%02x",
			 len ? (unsigned char)p[0] : 0);
		return -EPROTO;
	}
}

/* Waits until the socket is readable (or hung up); shutdown() from agent_stream_stop ends
 * the wait. */
static long recv_some(int fd, char *buf, size_t len)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n = recv(fd, buf, len, 0);

		if (n >= 0)
			return (long)n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

/* Reads and handles frames until the stream ends; the reason goes to reason. */
static void read_frames(struct agent *a, int fd, struct frame_buf *in, char *reason,
			size_t reason_len)
{
	char buf[16384];

	for (;;) {
		const char *p;
		size_t plen, used;
		long n;
		int rc = 0;

		while (in->p && (rc = frame_next(in->p + in->off, in->len - in->off, IN_FRAME_MAX, &p,
						 &plen, &used)) == 1) {
			if (handle_frame(a, fd, p, plen, reason, reason_len) < 0)
				return;
			frame_buf_consume(in, used);
		}
		if (rc < 0) {
			snprintf(reason, reason_len, "a frame of %zu bytes, above %u", plen, IN_FRAME_MAX);
			return;
		}
		n = recv_some(fd, buf, sizeof(buf));
		if (n == 0) {
			snprintf(reason, reason_len, "the master closed the stream");
			return;
		}
		if (n < 0) {
			snprintf(reason, reason_len, "%s", strerror((int)-n));
			return;
		}
		if (frame_buf_put(in, buf, (size_t)n) < 0) {
			snprintf(reason, reason_len, "out of memory");
			return;
		}
	}
}

/* A master that vanished without a word (no RST) is noticed within about a minute even
 * while nothing is sent. */
static void keepalive(int fd)
{
	int on = 1, idle = 15, intvl = 5, cnt = 4;
	unsigned user_timeout = 30000;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

enum open_result { OPENED, OPEN_FAILED, OPEN_REFUSED };

/* Upgrades a connection to the stream and sends the hello; on OPENED the socket is s->fd
 * and in holds the bytes that came behind the 101. */
static enum open_result open_stream(struct agent *a, struct frame_buf *in)
{
	struct stream_link *s = &a->stream;
	struct http_result r;
	struct frame_buf hello = { 0 };
	char url[2048], extra[4096];
	size_t extra_len = 0;
	int fd, rc;

	if (path_join(url, sizeof(url), "%s%s", a->cfg.master_url, AGENT_STREAM_PATH))
		return OPEN_FAILED;
	fd = http_lite_upgrade(url, AGENT_STREAM_PROTOCOL, OPEN_TIMEOUT_MS, extra, sizeof(extra),
			       &extra_len, &r);
	if (fd < 0) {
		enum open_result res = r.status == 404 || r.status == 426 ? OPEN_REFUSED : OPEN_FAILED;

		if (res == OPEN_REFUSED)
			log_info("event=agent_stream_refused status=%ld fallback=http retry_s=%g",
				 r.status, REFUSED_RETRY_S);
		else if (r.status)
			log_warn("event=agent_stream_open_failed status=%ld body=\"%.200s\"", r.status,
				 r.body ?: "");
		else
			log_debug("event=agent_stream_open_failed error=\"%s\"", r.error);
		http_result_free(&r);
		return res;
	}
	http_result_free(&r);
	keepalive(fd);
	in->off = in->len = 0;
	rc = extra_len ? frame_buf_put(in, extra, extra_len) : 0;
	if (rc == 0)
		rc = af_hello_encode(&hello, a->agent_id);
	if (rc == 0)
		rc = http_lite_send_all(fd, hello.p, hello.len, SEND_TIMEOUT_MS);
	frame_buf_free(&hello);
	if (rc < 0) {
		log_warn("event=agent_stream_open_failed error=\"hello: %s\"", strerror(-rc));
		close(fd);
		return OPEN_FAILED;
	}
	pthread_mutex_lock(&s->mu);
	if (s->stop) {
		pthread_mutex_unlock(&s->mu);
		close(fd);
		return OPEN_FAILED;
	}
	s->fd = fd;
	s->session++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	log_info("event=agent_stream_opened master=%s agent_id=%s", a->cfg.master_url, a->agent_id);
	return OPENED;
}

static void close_stream(struct stream_link *s, const char *reason)
{
	pthread_mutex_lock(&s->wmu);
	pthread_mutex_lock(&s->mu);
	close(s->fd);
	s->fd = -1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->wmu);
	log_info("event=agent_stream_closed reason=\"%s\"", reason);
}

static bool registered(struct agent *a)
{
	bool v;

	pthread_mutex_lock(&a->lock);
	v = a->registered && !a->stopping;
	pthread_mutex_unlock(&a->lock);
	return v;
}

static void *stream_main(void *arg)
{
	struct agent *a = arg;
	struct stream_link *s = &a->stream;
	struct frame_buf in = { 0 };
	double backoff = BACKOFF_MIN_S, next_try = 0;

	for (;;) {
		char reason[256] = "";
		bool stop;

		pthread_mutex_lock(&s->mu);
		while (!s->stop && !s->kick && now_mono() < next_try)
			timed_wait(s, next_try);
		stop = s->stop;
		s->kick = false;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		if (!registered(a)) {
			next_try = now_mono() + UNREGISTERED_POLL_S;
			continue;
		}
		switch (open_stream(a, &in)) {
		case OPENED:
			backoff = BACKOFF_MIN_S;
			read_frames(a, s->fd, &in, reason, sizeof(reason));
			pthread_mutex_lock(&s->mu);
			if (s->stop)
				snprintf(reason, sizeof(reason), "the agent is stopping");
			pthread_mutex_unlock(&s->mu);
			close_stream(s, reason);
			next_try = now_mono() + backoff;
			break;
		case OPEN_REFUSED:
			next_try = now_mono() + REFUSED_RETRY_S;
			break;
		case OPEN_FAILED:
			next_try = now_mono() + backoff;
			backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
			break;
		}
		/* A frame buffer grown for a large call is given back. */
		frame_buf_free(&in);
	}
	frame_buf_free(&in);
	return NULL;
}

int stream_link_start(struct agent *a)
{
	int rc;

	if (!a->cfg.agent_stream)
		return 0;
	rc = pthread_create(&a->stream.thread, NULL, stream_main, a);
	if (rc)
		return -rc;
	a->stream.thread_started = true;
	return 0;
}

void stream_link_stop(struct agent *a)
{
	struct stream_link *s = &a->stream;

	if (!a->cfg.agent_stream)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	if (s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);     /* the thread's read ends; it closes the socket */
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	s->thread_started = false;
}
