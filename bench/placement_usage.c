/* placement_usage.c - the usage-ingestion load (see placement_usage.h).
 *
 * One thread drives every simulated agent's connection with epoll. A stream connection
 * sends its upgrade request when it opens (answered during the heartbeats-only window);
 * then each batch is one frame and each answer one frame. Agent i sends its batch
 * at base + k x interval + i/N x interval (spread evenly, like agents started at random
 * times), waits for the answer, and sends the next one on its next slot. A batch still
 * unanswered at its agent's next slot is counted late and that slot is skipped (a real
 * agent's next reading would carry the same cumulative totals). Every reading grows every
 * counter, so the master cannot skip unchanged tasks. */
#include "bench/placement_usage.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/frame.h"
#include "lib/usage_frame.h"
#include "lib/util.h"

#define BODY_MAX (1 << 16)

struct uconn {
	int fd;
	bool busy;                      /* a request is out, its answer not complete */
	bool upgraded;                  /* stream mode: the 101 came */
	uint64_t seq;
	double sent_at;
	char *out;
	size_t out_len, out_off;
	char in[1024];
	size_t in_len;
};

struct uload {
	const struct usage_load *l;
	struct uconn *c;
	int ep;
	double *lat;                    /* ack latencies of the measured window, ms */
	size_t nlat, cap;
	bool measuring;
	long ok, failed, late, readings;
	long next;                      /* the next agent to send, in slot order */
	uint64_t tick;                  /* its round */
};

static int connect_one(struct uload *u, long i)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(u->l->master_port) };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (epoll_ctl(u->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	u->c[i].fd = fd;
	u->c[i].busy = false;
	u->c[i].upgraded = false;
	u->c[i].in_len = 0;
	if (u->l->mode != USAGE_POST) {
		char req[160];
		struct uconn *c = &u->c[i];

		snprintf(req, sizeof(req), "GET /internal/v1/usage/stream HTTP/1.1\r\nHost: master\r\n"
			 "Connection: Upgrade\r\nUpgrade: pacer-usage/%d\r\n\r\n",
			 u->l->mode == USAGE_BINARY ? 2 : 1);
		free(c->out);
		c->out = strdup(req);
		if (!c->out)
			return -ENOMEM;
		c->out_len = strlen(req);
		c->out_off = 0;      /* goes out on the first EPOLLOUT (the connect's end) */
	}
	return 0;
}

static void drop_conn(struct uload *u, long i)
{
	if (u->c[i].fd >= 0) {
		epoll_ctl(u->ep, EPOLL_CTL_DEL, u->c[i].fd, NULL);
		close(u->c[i].fd);
	}
	u->c[i].fd = -1;
	u->c[i].busy = false;
}

const char *usage_mode_name(enum usage_mode m)
{
	return m == USAGE_POST ? "post" : m == USAGE_JSON ? "json" : "binary";
}

/* The batch as a binary frame (header included): the same readings as make_body's. */
static int make_frame(const struct usage_load *l, long i, uint64_t seq, struct frame_buf *f)
{
	struct usage_frame_reading r[64];
	char tids[64][96], app[64];
	const char *id = l->agent_id(i);
	int n = l->tasks_per_agent;

	if (n > 64)
		return -EINVAL;         /* (--usage-case N:T with T <= 64 in binary mode) */
	snprintf(app, sizeof(app), "/tenant-%ld/app-%ld", i % 10, i % 100);
	for (int j = 0; j < n; j++) {
		unsigned long long s = seq, k = (unsigned long long)j + 1;
		const uint64_t c[USAGE_FRAME_NFIELDS] = {
			s * k * 15000, s * k * 9000, s * k * 12, s * k * 9, s * k, s, s * 3, s * 2, 0,
			s * k * 20000000ULL, s * k * 4096, s * k * 8192, 0,
			(50ULL << 20) + k * 4096, (60ULL << 20) + k * 4096,
		};

		snprintf(tids[j], sizeof(tids[j]), "tenant-%ld_app-%ld.%s-%d", i % 10, i % 100, id, j);
		r[j] = (struct usage_frame_reading){ .task_id = tids[j], .app_id = app,
						     .has_at = true, .at = now_wall() };
		memcpy(r[j].counters, c, sizeof(c));
	}
	return usage_frame_encode(f, id, seq, r, (size_t)n);
}

/* The batch body: every counter grows with seq, differently per task and field. */
static size_t make_body(const struct usage_load *l, long i, uint64_t seq, char *b, size_t cap)
{
	const char *id = l->agent_id(i);
	size_t n = (size_t)snprintf(b, cap, "{\"agent_id\":\"%s\",\"seq\":%llu,\"reports\":[", id,
				    (unsigned long long)seq);

	for (int j = 0; j < l->tasks_per_agent && n < cap; j++) {
		unsigned long long s = seq, k = (unsigned long long)j + 1;

		n += (size_t)snprintf(b + n, cap - n,
			"%s{\"task_id\":\"tenant-%ld_app-%ld.%s-%d\",\"app_id\":\"/tenant-%ld/app-%ld\","
			"\"at\":%.3f,\"rx_bytes\":%llu,\"tx_bytes\":%llu,\"rx_packets\":%llu,"
			"\"tx_packets\":%llu,\"tcp_connects\":%llu,\"tcp_accepts\":%llu,"
			"\"udp_rx_datagrams\":%llu,\"udp_tx_datagrams\":%llu,\"policy_denials\":0,"
			"\"cpu_ns\":%llu,\"vfs_read_bytes\":%llu,\"vfs_write_bytes\":%llu,"
			"\"oom_kills\":0,\"mem_bytes\":%llu,\"mem_peak_bytes\":%llu}",
			j ? "," : "", i % 10, i % 100, id, j, i % 10, i % 100, now_wall(),
			s * k * 15000, s * k * 9000, s * k * 12, s * k * 9, s * k, s,
			s * 3, s * 2, s * k * 20000000ULL, s * k * 4096, s * k * 8192,
			(50ULL << 20) + k * 4096, (60ULL << 20) + k * 4096);
	}
	n += (size_t)snprintf(b + n, cap > n ? cap - n : 0, "]}");
	return n;
}

static int send_batch(struct uload *u, long i, char *body_buf)
{
	struct uconn *c = &u->c[i];
	size_t blen;
	int hl;

	if (c->fd < 0 && connect_one(u, i) < 0)
		return -1;
	if (u->l->mode != USAGE_POST && !c->upgraded)
		return 1;               /* the stream is not open yet: counted late */
	c->seq++;
	if (u->l->mode == USAGE_BINARY) {
		struct frame_buf f = { 0 };

		if (make_frame(u->l, i, c->seq, &f) < 0) {
			frame_buf_free(&f);
			return -1;
		}
		free(c->out);
		c->out = f.p;
		c->out_len = f.len;
		goto send;
	}
	blen = make_body(u->l, i, c->seq, body_buf, BODY_MAX);
	if (blen >= BODY_MAX)
		return -1;
	free(c->out);
	c->out = malloc(blen + 256);
	if (!c->out)
		return -1;
	if (u->l->mode == USAGE_POST) {
		hl = snprintf(c->out, 256, "POST /internal/v1/usage HTTP/1.1\r\nHost: master\r\n"
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
	} else {
		c->out[0] = (char)(blen >> 24);
		c->out[1] = (char)(blen >> 16);
		c->out[2] = (char)(blen >> 8);
		c->out[3] = (char)blen;
		hl = FRAME_HEADER;
	}
	memcpy(c->out + hl, body_buf, blen);
	c->out_len = (size_t)hl + blen;
send:
	c->out_off = 0;
	c->in_len = 0;
	c->busy = true;
	c->sent_at = now_mono();
	for (;;) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w > 0) {
			c->out_off += (size_t)w;
			if (c->out_off == c->out_len)
				return 0;
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;       /* the rest goes on EPOLLOUT */
		return -1;
	}
}

static void record(struct uload *u, struct uconn *c, bool ok)
{
	if (!u->measuring)
		return;
	if (!ok) {
		u->failed++;
		return;
	}
	u->ok++;
	u->readings += u->l->tasks_per_agent;
	if (u->nlat == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 65536;
		double *g = realloc(u->lat, nc * sizeof(*g));

		if (!g)
			return;
		u->lat = g;
		u->cap = nc;
	}
	u->lat[u->nlat++] = (now_mono() - c->sent_at) * 1000.0;
}

/* A complete answer frame in c->in? 1 yes (status 200 for an ack), 0 not yet, -1 bad. */
static int frame_complete(struct uconn *c, int *status, size_t *used)
{
	const char *p;
	size_t plen;
	int rc = frame_next(c->in, c->in_len, sizeof(c->in) - 1 - FRAME_HEADER, &p, &plen, used);

	if (rc <= 0)
		return rc < 0 ? -1 : 0;
	*status = memmem(p, plen, "\"acknowledged_seq\"", 18) ? 200 : 500;
	return 1;
}

/* A complete answer in c->in? 1 yes (status in *status), 0 not yet, -1 malformed. The
 * answer to an upgrade request has no body and leaves the frames that follow in c->in. */
static int answer_complete(struct uconn *c, int *status)
{
	char *end, *cl;
	size_t hdr, len;

	if (c->upgraded) {
		size_t used;
		int rc = frame_complete(c, status, &used);

		if (rc > 0) {
			memmove(c->in, c->in + used, c->in_len - used);
			c->in_len -= used;
		}
		return rc;
	}

	c->in[c->in_len < sizeof(c->in) ? c->in_len : sizeof(c->in) - 1] = '\0';
	end = strstr(c->in, "\r\n\r\n");
	if (!end)
		return c->in_len >= sizeof(c->in) - 1 ? -1 : 0;
	if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1)
		return -1;
	hdr = (size_t)(end - c->in) + 4;
	if (*status == 101) {
		c->upgraded = true;
		memmove(c->in, c->in + hdr, c->in_len - hdr);
		c->in_len -= hdr;
		return 2;
	}
	cl = strcasestr(c->in, "\r\ncontent-length:");
	if (!cl || cl > end)
		return -1;
	len = strtoul(cl + 17, NULL, 10);
	return c->in_len >= hdr + len ? 1 : 0;
}

static void on_event(struct uload *u, long i, uint32_t events)
{
	struct uconn *c = &u->c[i];

	if (c->fd < 0)
		return;
	if ((events & EPOLLOUT) && (c->busy || !c->upgraded) && c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w > 0)
			c->out_off += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			goto broken;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);
			int status = 0, done;

			if (r == 0)
				goto broken;
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				goto broken;
			}
			c->in_len += (size_t)r;
			done = answer_complete(c, &status);
			if (done < 0)
				goto broken;
			if (done == 2)
				continue;       /* upgraded */
			if (done > 0) {
				record(u, c, c->busy && status == 200);
				c->busy = false;
				c->in_len = 0;
				break;
			}
		}
	}
	return;
broken:
	if (c->busy)
		record(u, c, false);
	drop_conn(u, i);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return -1;
	k = (size_t)ceil(p / 100.0 * (double)n);
	return v[k ? k - 1 : 0];
}

/* Drives the load until `until` (mono); each agent sends on its slots. */
static void drive(struct uload *u, double base, double until, char *body_buf)
{
	const struct usage_load *l = u->l;
	struct epoll_event evs[256];

	while (!*l->interrupted) {
		double now = now_mono(), due;
		int n, wait_ms, rc;

		for (;;) {
			due = base + ((double)u->tick + (double)u->next / (double)l->nagents) *
			      l->interval;
			if (due > now || due >= until)
				break;
			if (u->c[u->next].busy) {
				if (u->measuring)
					u->late++;
			} else if ((rc = send_batch(u, u->next, body_buf)) < 0) {
				if (u->measuring)
					u->failed++;
				drop_conn(u, u->next);
			} else if (rc > 0 && u->measuring) {
				u->late++;
			}
			if (++u->next == l->nagents) {
				u->next = 0;
				u->tick++;
			}
		}
		if (now >= until)
			return;
		wait_ms = (int)((due - now) * 1000.0);
		n = epoll_wait(u->ep, evs, 256, wait_ms < 0 ? 0 : wait_ms > 50 ? 50 : wait_ms);
		for (int k = 0; k < n; k++)
			on_event(u, (long)evs[k].data.u64, evs[k].events);
	}
}

int usage_load_run(const struct usage_load *l, struct usage_load_result *r)
{
	struct uload u = { .l = l, .ep = -1 };
	char *body_buf = malloc(BODY_MAX);
	double c0, c1, t0, base;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	u.c = calloc((size_t)l->nagents, sizeof(*u.c));
	u.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!u.c || !body_buf || u.ep < 0) {
		snprintf(r->why, sizeof(r->why), "out of memory or epoll: %s", strerror(errno));
		goto out;
	}
	for (long i = 0; i < l->nagents; i++)
		u.c[i].fd = -1;
	for (long i = 0; i < l->nagents; i++) {
		int e = connect_one(&u, i);

		if (e < 0) {
			snprintf(r->why, sizeof(r->why), "connection %ld: %s (ulimit -n?)", i, strerror(-e));
			goto out;
		}
	}
	/* Heartbeats only (the agents' connections open and idle). */
	t0 = now_mono();
	c0 = proc_cpu_seconds(l->master_pid);
	while (now_mono() < t0 + l->idle_seconds && !*l->interrupted)
		usleep(50000);
	c1 = proc_cpu_seconds(l->master_pid);
	r->idle_cpu_pct = 100.0 * (c1 - c0) / (now_mono() - t0);
	/* One unmeasured round so every agent has a first reading, then the window. */
	base = now_mono();
	drive(&u, base, base + l->interval, body_buf);
	u.measuring = true;
	t0 = now_mono();
	c0 = proc_cpu_seconds(l->master_pid);
	drive(&u, base, t0 + l->seconds, body_buf);
	c1 = proc_cpu_seconds(l->master_pid);
	r->window_s = now_mono() - t0;
	r->load_cpu_pct = 100.0 * (c1 - c0) / r->window_s;
	r->batches_ok = u.ok;
	r->batches_failed = u.failed;
	r->late = u.late;
	r->readings = u.readings;
	qsort(u.lat, u.nlat, sizeof(double), cmp_double);
	r->ack_p50_ms = pct(u.lat, u.nlat, 50);
	r->ack_p99_ms = pct(u.lat, u.nlat, 99);
	rc = *l->interrupted ? -1 : 0;
	if (rc)
		snprintf(r->why, sizeof(r->why), "interrupted");
out:
	for (long i = 0; u.c && i < l->nagents; i++) {
		drop_conn(&u, i);
		free(u.c[i].out);
	}
	if (u.ep >= 0)
		close(u.ep);
	free(u.c);
	free(u.lat);
	free(body_buf);
	return rc;
}
