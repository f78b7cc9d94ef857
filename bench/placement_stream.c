/* placement_stream.c - the simulated agents' agent streams (see placement_stream.h).
 *
 * One thread, one epoll set, every stream socket. A stream goes CONNECTING (non-blocking
 * connect from the agent's own address, the upgrade request queued) -> UPGRADING (reading
 * the answer's head) -> OPEN (hello sent; frames both ways) or CLOSED (refused or broken:
 * tried again after a while, the agent is on HTTP meanwhile). At most OPENING_MAX streams
 * are being opened at once, so the master's listen queue never overflows.
 *
 * No allocation per task: an agent's status updates not yet acknowledged are records in
 * one growable buffer (state, id length, id), the batch in flight being its first records;
 * frames are built in one scratch buffer of the thread and only the part the socket does
 * not take at once is copied to the agent's out buffer; a partial frame read is kept in
 * the agent's in buffer, whole frames are handled where they were read. */
#include "bench/placement_stream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/agent_frame.h"
#include "lib/frame.h"
#include "lib/util.h"

#define OPENING_MAX 256                 /* streams being opened at once */
#define STATUS_BATCH 256                /* updates per 'S' (the agent's MAX_BATCH) */
#define FRAME_MAX (64u << 20)           /* the biggest call frame read */
#define READ_CHUNK (256 * 1024)
#define HEAD_MAX 8192                   /* the upgrade answer's head */
#define RETRY_REFUSED_S 60.0            /* as agent/usage_link.c */
#define RETRY_BROKEN_S 2.0
#define ERRORS_SHOWN 20                 /* 'E' frames and bad frames printed to stderr */

enum st { ST_IDLE, ST_CONNECTING, ST_UPGRADING, ST_OPEN, ST_CLOSED };

struct astream {
	int fd;
	enum st st;
	bool out_armed;                 /* EPOLLOUT in the set */
	bool busy;                      /* an 'S' is in flight: the first fl_n records of q */
	bool settled;                   /* the first attempt has ended (opened or not) */
	uint32_t qn, fl_n;
	size_t fl_bytes;
	uint64_t next_batch, fl_batch;
	double retry_at;
	struct frame_buf in, out;
	struct frame_buf q;             /* records: state char | u8 len | id */
};

struct agent_streams {
	struct stream_config cfg;
	struct astream *a;
	int ep;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	long next_open, opening;
	struct frame_buf scratch;       /* frames being built */
	struct frame_buf text;          /* a status body being built */
	char *rbuf;                     /* READ_CHUNK */
	uint64_t uuid_seed, uuid_n;
	atomic_long open, opened, refused, closed, errors, pending, launches, kills, batches, acked;
	atomic_int last_refusal;
};

static void report(struct agent_streams *s, long i, const char *what, const char *detail,
		   size_t dlen)
{
	if (atomic_fetch_add(&s->errors, 1) < ERRORS_SHOWN)
		fprintf(stderr, "placement: agent stream of %s: %s%s%.*s\n",
			s->cfg.hooks->agent_id(i), what, dlen ? ": " : "", (int)dlen, detail);
}

/* The end of the agent's first attempt (for agent_streams_stats' pending). */
static void settle(struct agent_streams *s, struct astream *a)
{
	if (!a->settled)
		atomic_fetch_sub(&s->pending, 1);
	a->settled = true;
}

static void set_out(struct agent_streams *s, long i, bool want)
{
	struct astream *a = &s->a[i];
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u64 = (uint64_t)i };

	if (a->out_armed == want)
		return;
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, a->fd, &ev) == 0)
		a->out_armed = want;
}

/* Ends a stream (refused: the master does not have it; else it broke). Its updates not
 * acknowledged go back to placement.c (to go as POSTs); none are lost on a broken one. */
static void close_stream(struct agent_streams *s, long i, bool refused)
{
	struct astream *a = &s->a[i];
	const unsigned char *p = (const unsigned char *)a->q.p + a->q.off;
	const unsigned char *end = (const unsigned char *)a->q.p + a->q.len;

	settle(s, a);
	if (a->st == ST_CONNECTING || a->st == ST_UPGRADING)
		s->opening--;
	if (a->st == ST_OPEN) {
		atomic_fetch_sub(&s->open, 1);
		atomic_fetch_add(&s->closed, 1);
	}
	if (a->fd >= 0) {
		epoll_ctl(s->ep, EPOLL_CTL_DEL, a->fd, NULL);
		close(a->fd);
	}
	a->fd = -1;
	a->st = ST_CLOSED;
	a->out_armed = false;
	a->retry_at = now_mono() + (refused ? RETRY_REFUSED_S : RETRY_BROKEN_S);
	while (!atomic_load(&s->stop) && p < end && p + 2 + p[1] <= end) {
		s->cfg.hooks->requeue(i, (char)p[0], (const char *)p + 2, p[1]);
		p += 2 + p[1];
	}
	a->busy = false;
	a->qn = a->fl_n = 0;
	a->fl_bytes = 0;
	a->in.off = a->in.len = 0;
	frame_buf_free(&a->in);
	frame_buf_free(&a->out);
	frame_buf_free(&a->q);
}

/* Sends what is in scratch for agent i after anything still waiting in its out buffer;
 * what the socket does not take now waits there (EPOLLOUT). */
static void emit(struct agent_streams *s, long i)
{
	struct astream *a = &s->a[i];
	const char *p = s->scratch.p + s->scratch.off;
	size_t n = s->scratch.len - s->scratch.off;

	s->scratch.off = s->scratch.len = 0;
	if (!n || a->fd < 0)
		return;
	if (a->out.len > a->out.off) {
		if (frame_buf_put(&a->out, p, n) < 0)
			close_stream(s, i, false);
		return;
	}
	while (n) {
		ssize_t w = send(a->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			close_stream(s, i, false);
			return;
		}
		p += w;
		n -= (size_t)w;
	}
	if (!n)
		return;
	if (frame_buf_put(&a->out, p, n) < 0) {
		close_stream(s, i, false);
		return;
	}
	set_out(s, i, true);
}

/* EPOLLOUT: the rest of the out buffer. */
static void flush(struct agent_streams *s, long i)
{
	struct astream *a = &s->a[i];

	while (a->out.len > a->out.off) {
		ssize_t w = send(a->fd, a->out.p + a->out.off, a->out.len - a->out.off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			close_stream(s, i, false);
			return;
		}
		frame_buf_consume(&a->out, (size_t)w);
	}
	frame_buf_free(&a->out);         /* (one allocation per batch, not a buffer per agent) */
	set_out(s, i, false);
}

static int open_stream(struct agent_streams *s, long i)
{
	struct astream *a = &s->a[i];
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(s->cfg.master_port) };
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, n;
	char req[256];

	if (fd < 0)
		return -errno;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* From the agent's own address: 10k connections never run out of local ports. */
	from.sin_addr.s_addr = htonl((127u << 24) | (10u << 16) | ((uint32_t)(i / 250) << 8) |
				     (uint32_t)(i % 250 + 1));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
	    (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) ||
	    epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	a->fd = fd;
	a->st = ST_CONNECTING;
	a->out_armed = true;
	s->opening++;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		     "Connection: Upgrade\r\nUpgrade: %s\r\n\r\n", AGENT_STREAM_PATH,
		     s->cfg.master_port, AGENT_STREAM_PROTOCOL);
	if (frame_buf_put(&a->out, req, (size_t)n) < 0) {
		close_stream(s, i, false);
		return -ENOMEM;
	}
	return 0;
}

/* ---- status batches ---- */

static int text_put(struct frame_buf *t, const char *str, size_t n)
{
	return frame_buf_put(t, str, n);
}

#define TEXT_LIT(t, lit) text_put(t, lit, sizeof(lit) - 1)

static int text_str(struct frame_buf *t, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *o = frame_buf_extend(t, 6 * n + 2);
	size_t k = 0;

	if (!o)
		return -ENOMEM;
	o[k++] = '"';
	for (size_t j = 0; j < n; j++) {
		unsigned char c = (unsigned char)str[j];

		if (c == '"' || c == '\\') {
			o[k++] = '\\';
			o[k++] = (char)c;
		} else if (c < 0x20) {
			memcpy(o + k, "\\u00", 4);
			o[k + 4] = hex[c >> 4];
			o[k + 5] = hex[c & 15];
			k += 6;
		} else {
			o[k++] = (char)c;
		}
	}
	o[k++] = '"';
	t->len -= 6 * n + 2 - k;
	return 0;
}

/* A v4-shaped uuid unique in this process: a random seed mixed with a counter (splitmix64),
 * without a getrandom per update. */
static void next_uuid(struct agent_streams *s, char out[37])
{
	uint64_t w[2];

	for (int k = 0; k < 2; k++) {
		uint64_t z = (s->uuid_seed += 0x9e3779b97f4a7c15ULL) ^ (s->uuid_n++ << 1);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		w[k] = z ^ (z >> 31);
	}
	snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(w[0] >> 32),
		 (unsigned)(w[0] >> 16) & 0xffff, (unsigned)w[0] & 0xfff,
		 (unsigned)((w[1] >> 48) & 0x3fff) | 0x8000,
		 (unsigned long long)(w[1] & 0xffffffffffffULL));
}

/* The agent's next 'S' (its first STATUS_BATCH records) when none is in flight. */
static void send_status(struct agent_streams *s, long i)
{
	struct astream *a = &s->a[i];
	const struct stream_hooks *h = s->cfg.hooks;
	const unsigned char *p = (const unsigned char *)a->q.p + a->q.off, *start = p;
	const char *fw = h->framework_id();
	struct frame_buf *t = &s->text;
	char head[96], ts[40], uuid[37];
	uint32_t n = 0;
	int rc = 0, hl;

	if (a->st != ST_OPEN || a->busy || !a->qn)
		return;
	t->off = t->len = 0;
	hl = snprintf(head, sizeof(head), "{\"agent_id\":\"%s\",\"updates\":[", h->agent_id(i));
	snprintf(ts, sizeof(ts), "%.6f", now_wall());
	rc |= text_put(t, head, (size_t)hl);
	for (; n < a->qn && n < STATUS_BATCH; n++) {
		next_uuid(s, uuid);
		rc |= n ? TEXT_LIT(t, ",{\"uuid\":\"") : TEXT_LIT(t, "{\"uuid\":\"");
		rc |= text_put(t, uuid, 36);
		rc |= TEXT_LIT(t, "\",\"task_id\":");
		rc |= text_str(t, (const char *)p + 2, p[1]);
		rc |= TEXT_LIT(t, ",\"framework_id\":");
		rc |= text_str(t, fw, strlen(fw));
		if (p[0] == 'R')
			rc |= TEXT_LIT(t, ",\"state\":\"TASK_RUNNING\"");
		else
			rc |= TEXT_LIT(t, ",\"state\":\"TASK_KILLED\"");
		rc |= TEXT_LIT(t, ",\"message\":\"\",\"source\":\"SOURCE_EXECUTOR\",\"timestamp\":");
		rc |= text_put(t, ts, strlen(ts));
		rc |= TEXT_LIT(t, "}");
		p += 2 + p[1];
	}
	rc |= TEXT_LIT(t, "]}");
	if (rc || af_status_encode(&s->scratch, a->next_batch, t->p, t->len) < 0) {
		report(s, i, "cannot build a status batch", NULL, 0);
		s->scratch.off = s->scratch.len = 0;
		return;
	}
	a->busy = true;
	a->fl_n = n;
	a->fl_bytes = (size_t)(p - start);
	a->fl_batch = a->next_batch++;
	atomic_fetch_add(&s->batches, 1);
	emit(s, i);
}

static int queue_update(struct astream *a, char state, const char *id, size_t len)
{
	unsigned char *r = frame_buf_extend(&a->q, 2 + len);

	if (!r)
		return -ENOMEM;
	r[0] = (unsigned char)state;
	r[1] = (unsigned char)len;      /* 1..255: the call element's limit */
	memcpy(r + 2, id, len);
	a->qn++;
	return 0;
}

/* 'A': the answer to the batch in flight. */
static int on_acks(struct agent_streams *s, long i, const char *pl, size_t len)
{
	struct astream *a = &s->a[i];
	const struct stream_hooks *h = s->cfg.hooks;
	struct af_answer_reader r;
	struct af_answer_item it;
	const unsigned char *p;
	char err[160];
	long ok = 0, bad = 0;

	if (af_answer_open(&r, pl, len, err, sizeof(err)) < 0) {
		report(s, i, "bad 'A' frame", err, strlen(err));
		return -EINVAL;
	}
	if (!a->busy || r.id != a->fl_batch) {
		snprintf(err, sizeof(err), "batch %llu, in flight %s%llu",
			 (unsigned long long)r.id, a->busy ? "" : "none, last ",
			 (unsigned long long)a->fl_batch);
		report(s, i, "'A' for another batch", err, strlen(err));
		return -EINVAL;
	}
	if (r.status != 200 || r.n != a->fl_n) {
		snprintf(err, sizeof(err), "status %u, %u items for %u updates", r.status, r.n,
			 a->fl_n);
		report(s, i, "batch not acknowledged", err, strlen(err));
		report(s, i, "its message", r.message.p, r.message.len);
		h->not_acked(i, a->fl_n);
		goto done;
	}
	p = (const unsigned char *)a->q.p + a->q.off;
	for (uint32_t k = 0; k < a->fl_n; k++) {
		if (af_answer_next(&r, &it, err, sizeof(err)) <= 0) {
			report(s, i, "bad 'A' item", err, strlen(err));
			h->not_acked(i, (long)(a->fl_n - k));
			break;
		}
		if (it.ok) {
			h->acked(i, (char)p[0], (const char *)p + 2, p[1]);
			ok++;
		} else {
			if (bad++ == 0)
				report(s, i, "update not acknowledged", it.error.p, it.error.len);
			h->not_acked(i, 1);
		}
		p += 2 + p[1];
	}
	atomic_fetch_add(&s->acked, ok);
done:
	frame_buf_consume(&a->q, a->fl_bytes);
	a->qn -= a->fl_n;
	a->fl_n = 0;
	a->fl_bytes = 0;
	a->busy = false;
	if (!a->qn)
		frame_buf_free(&a->q);
	return 0;
}

/* 'L' / 'K': every element accepted, one 'R' at once. A frame that cannot be read whole
 * is refused as a whole (400, nothing taken). */
static int on_call(struct agent_streams *s, long i, const char *pl, size_t len)
{
	struct astream *a = &s->a[i];
	const struct stream_hooks *h = s->cfg.hooks;
	struct af_call_reader r, again;
	struct af_call_element el;
	struct af_builder w;
	char err[160];
	int rc;

	if (af_call_open(&r, pl, len, err, sizeof(err)) < 0) {
		report(s, i, "bad call frame", err, strlen(err));
		return -EINVAL;         /* no call id to answer: the stream cannot go on */
	}
	again = r;
	while ((rc = af_call_next(&again, &el, err, sizeof(err))) > 0)
		;
	if (rc < 0) {
		report(s, i, "bad call element", err, strlen(err));
		if (af_answer_begin(&w, &s->scratch, AF_RESULTS, r.call_id, 400, err) == 0)
			af_end(&w);
		emit(s, i);
		return 0;
	}
	if (af_answer_begin(&w, &s->scratch, AF_RESULTS, r.call_id, 200, NULL) < 0)
		return -ENOMEM;
	while (af_call_next(&r, &el, err, sizeof(err)) > 0) {
		if (queue_update(a, r.kind == AF_LAUNCH ? 'R' : 'K', el.task_id.p,
				 el.task_id.len) < 0 || af_answer_add(&w, true, NULL) < 0) {
			af_end(&w);
			s->scratch.off = s->scratch.len = 0;
			return -ENOMEM;
		}
		if (r.kind == AF_LAUNCH)
			h->launched(i, el.task_id.p, el.task_id.len, el.json.p, el.json.len);
		else
			h->kill_asked(i, el.task_id.p, el.task_id.len);
	}
	af_end(&w);
	atomic_fetch_add(r.kind == AF_LAUNCH ? &s->launches : &s->kills, (long)r.n);
	emit(s, i);
	return 0;
}

/* One whole frame from the master. < 0: the stream must close. */
static int on_frame(struct agent_streams *s, long i, const char *pl, size_t len)
{
	struct af_text msg;
	unsigned status;
	char err[160], what[64];

	switch (agent_frame_type(pl, len)) {
	case AF_LAUNCH:
	case AF_KILL:
		return on_call(s, i, pl, len);
	case AF_ACKS:
		return on_acks(s, i, pl, len);
	case AF_ERROR:
		if (af_error_read(pl, len, &status, &msg, err, sizeof(err)) < 0) {
			report(s, i, "bad 'E' frame", err, strlen(err));
			return -EINVAL;
		}
		snprintf(what, sizeof(what), "'E' %u from the master", status);
		report(s, i, what, msg.p, msg.len);
		return -EPROTO;
	default:
		snprintf(what, sizeof(what), "unexpected frame type 0x%02x", len ? (unsigned char)pl[0] : 0);
		report(s, i, what, NULL, 0);
		return -EINVAL;
	}
}

/* Cuts whole frames out of buf[0..len) and handles them; returns the bytes used, or -1
 * when the stream was closed. */
static long frames(struct agent_streams *s, long i, const char *buf, size_t len)
{
	size_t at = 0, plen, used;
	const char *pl;
	int rc;

	while ((rc = frame_next(buf + at, len - at, FRAME_MAX, &pl, &plen, &used)) > 0) {
		if (on_frame(s, i, pl, plen) < 0 || s->a[i].st != ST_OPEN) {
			if (s->a[i].st == ST_OPEN)
				close_stream(s, i, false);
			return -1;
		}
		at += used;
	}
	if (rc < 0) {
		report(s, i, "frame too big", NULL, 0);
		close_stream(s, i, false);
		return -1;
	}
	return (long)at;
}

/* The upgrade answer's head in a->in: 101 opens the stream (hello sent; frames after the
 * head stay in a->in), anything else closes it as refused. 0 when more bytes are needed. */
static int upgraded(struct agent_streams *s, long i)
{
	struct astream *a = &s->a[i];
	const char *p = a->in.p + a->in.off, *end;
	size_t n = a->in.len - a->in.off;
	int status = 0;

	end = memmem(p, n, "\r\n\r\n", 4);
	if (!end) {
		if (n < HEAD_MAX)
			return 0;
		report(s, i, "upgrade answer head too long", NULL, 0);
		close_stream(s, i, true);
		return -1;
	}
	/* "HTTP/1.x NNN": the buffer is not NUL-terminated, so no sscanf on it. */
	if (end - p >= 12 && memcmp(p, "HTTP/1.", 7) == 0 && p[8] == ' ' &&
	    isdigit((unsigned char)p[9]) && isdigit((unsigned char)p[10]) &&
	    isdigit((unsigned char)p[11]))
		status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (status != 101) {
		atomic_store(&s->last_refusal, status);
		atomic_fetch_add(&s->refused, 1);
		close_stream(s, i, true);
		return -1;
	}
	frame_buf_consume(&a->in, (size_t)(end + 4 - p));
	settle(s, a);
	a->st = ST_OPEN;
	s->opening--;
	atomic_fetch_add(&s->open, 1);
	atomic_fetch_add(&s->opened, 1);
	if (af_hello_encode(&s->scratch, s->cfg.hooks->agent_id(i)) < 0) {
		close_stream(s, i, false);
		return -1;
	}
	emit(s, i);
	return a->st == ST_OPEN ? 1 : -1;
}

static void on_readable(struct agent_streams *s, long i)
{
	struct astream *a = &s->a[i];
	ssize_t r;
	long used;

	do
		r = recv(a->fd, s->rbuf, READ_CHUNK, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN)
		return;
	if (r <= 0) {
		if (a->st == ST_OPEN)
			report(s, i, r == 0 ? "closed by the master" : "read failed", NULL, 0);
		close_stream(s, i, a->st != ST_OPEN);
		return;
	}
	if (a->st == ST_OPEN && a->in.len == a->in.off) {
		/* Nothing kept: frames are handled in place, only a partial one is copied. */
		used = frames(s, i, s->rbuf, (size_t)r);
		if (used >= 0 && (size_t)used < (size_t)r &&
		    frame_buf_put(&a->in, s->rbuf + used, (size_t)r - (size_t)used) < 0)
			close_stream(s, i, false);
		goto status;
	}
	if (frame_buf_put(&a->in, s->rbuf, (size_t)r) < 0) {
		close_stream(s, i, false);
		return;
	}
	if (a->st == ST_UPGRADING && upgraded(s, i) <= 0)
		return;
	used = frames(s, i, a->in.p + a->in.off, a->in.len - a->in.off);
	if (used < 0)
		return;
	frame_buf_consume(&a->in, (size_t)used);
	if (a->in.len == 0)
		frame_buf_free(&a->in);
status:
	send_status(s, i);
}

static void on_event(struct agent_streams *s, long i, uint32_t events)
{
	struct astream *a = &s->a[i];

	if (a->fd < 0)
		return;
	if (a->st == ST_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int e = 0;
		socklen_t el = sizeof(e);

		if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e) {
			close_stream(s, i, false);
			return;
		}
		a->st = ST_UPGRADING;
	}
	if ((events & EPOLLOUT) && a->fd >= 0)
		flush(s, i);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && a->fd >= 0)
		on_readable(s, i);
}

/* Opens streams not open (first attempts in order, retries when due), OPENING_MAX at most
 * under way. */
static void open_more(struct agent_streams *s, double now, double *next_scan)
{
	while (s->opening < OPENING_MAX && s->next_open < s->cfg.nagents) {
		long i = s->next_open++;
		int e = open_stream(s, i);

		if (e < 0) {
			report(s, i, "cannot connect", strerror(-e), strlen(strerror(-e)));
			close_stream(s, i, false);
		}
	}
	if (now < *next_scan)
		return;
	*next_scan = now + 0.5;
	for (long i = 0; i < s->next_open && s->opening < OPENING_MAX; i++) {
		struct astream *a = &s->a[i];

		if (a->st == ST_CLOSED && a->retry_at <= now && open_stream(s, i) < 0)
			close_stream(s, i, false);
	}
}

static void *loop_main(void *arg)
{
	struct agent_streams *s = arg;
	struct epoll_event evs[512];
	double next_scan = 0;

	while (!atomic_load(&s->stop)) {
		int n;

		open_more(s, now_mono(), &next_scan);
		n = epoll_wait(s->ep, evs, 512, 50);
		for (int k = 0; k < n; k++)
			on_event(s, (long)evs[k].data.u64, evs[k].events);
	}
	return NULL;
}

int agent_streams_start(const struct stream_config *cfg, struct agent_streams **out)
{
	struct agent_streams *s = calloc(1, sizeof(*s));
	unsigned char seed[8];

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->a = calloc((size_t)cfg->nagents, sizeof(*s->a));
	s->rbuf = malloc(READ_CHUNK);
	if (s->ep < 0 || !s->a || !s->rbuf) {
		agent_streams_stop(s);
		return -ENOMEM;
	}
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		memcpy(seed, &s, sizeof(seed) < sizeof(s) ? sizeof(seed) : sizeof(s));
	memcpy(&s->uuid_seed, seed, sizeof(seed));
	for (long i = 0; i < cfg->nagents; i++)
		s->a[i].fd = -1;
	atomic_store(&s->pending, cfg->nagents);
	if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
		agent_streams_stop(s);
		return -EAGAIN;
	}
	s->started = true;
	*out = s;
	return 0;
}

void agent_streams_stats(struct agent_streams *s, struct stream_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	st->open = atomic_load(&s->open);
	st->opened = atomic_load(&s->opened);
	st->refused = atomic_load(&s->refused);
	st->closed = atomic_load(&s->closed);
	st->errors = atomic_load(&s->errors);
	st->pending = atomic_load(&s->pending);
	st->launches = atomic_load(&s->launches);
	st->kills = atomic_load(&s->kills);
	st->batches = atomic_load(&s->batches);
	st->acked = atomic_load(&s->acked);
	st->last_refusal = atomic_load(&s->last_refusal);
}

void agent_streams_stop(struct agent_streams *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	if (s->started)
		pthread_join(s->thread, NULL);
	for (long i = 0; s->a && i < s->cfg.nagents; i++) {
		struct astream *a = &s->a[i];

		if (a->fd >= 0)
			close(a->fd);
		frame_buf_free(&a->in);
		frame_buf_free(&a->out);
		frame_buf_free(&a->q);
	}
	if (s->ep >= 0)
		close(s->ep);
	frame_buf_free(&s->scratch);
	frame_buf_free(&s->text);
	free(s->rbuf);
	free(s->a);
	free(s);
}
