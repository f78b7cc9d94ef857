/* test_usage_stream.c - the usage stream (issue 4): the frame reader (lib/frame.c) on whole,
 * split, joined and oversized frames; the master's end (master/usage_stream.c) on a real
 * pool server with the journal writer: the upgrade, acks once durable, a repeat acked
 * without being applied, a bad frame answered 400 and the stream closed, an oversized one
 * 413, a request without the upgrade headers 426, the master stopping with streams open;
 * binary batches (pacer-usage/2) applied like JSON ones, a bad reading in one skipped, a
 * damaged one refused; and the agent's end (agent/usage_link.c): binary batches on the
 * stream, POST against a master without streams, and a master restart in the middle of a stream losing and doubling
 * nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/frame.h"
#include "lib/http_lite.h"
#include "lib/log.h"
#include "lib/usage_frame.h"
#include "lib/util.h"
#include "master/usage.h"
#include "master/usage_stream.h"

/* ---- frames ---- */

static void test_frames_whole_split_joined(void **state)
{
	struct frame_buf b = { 0 };
	const char *p;
	size_t plen, used;

	(void)state;
	assert_int_equal(frame_append(&b, "hello", 5), 0);
	assert_int_equal(frame_append(&b, "", 0), 0);
	assert_int_equal(frame_append(&b, "{\"a\":1}", 7), 0);
	assert_int_equal(b.len, 3 * FRAME_HEADER + 12);
	assert_memory_equal(b.p, "\0\0\0\5hello", 9);
	/* Every prefix short of the first frame's end asks for more. */
	for (size_t n = 0; n < 9; n++) {
		assert_int_equal(frame_next(b.p, n, 100, &p, &plen, &used), 0);
		assert_int_equal(used, 0);
		assert_int_equal(plen, n >= FRAME_HEADER ? 5 : 0);
	}
	assert_int_equal(frame_next(b.p, b.len, 100, &p, &plen, &used), 1);
	assert_int_equal(plen, 5);
	assert_int_equal(used, 9);
	assert_memory_equal(p, "hello", 5);
	frame_buf_consume(&b, used);
	assert_int_equal(frame_next(b.p + b.off, b.len - b.off, 100, &p, &plen, &used), 1);
	assert_int_equal(plen, 0);
	frame_buf_consume(&b, used);
	assert_int_equal(frame_next(b.p + b.off, b.len - b.off, 100, &p, &plen, &used), 1);
	assert_memory_equal(p, "{\"a\":1}", 7);
	frame_buf_consume(&b, used);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	frame_buf_free(&b);
}

static void test_frame_over_the_limit(void **state)
{
	const char big[] = { 0x00, 0x10, 0x00, 0x01 };   /* 1 MiB + 1 */
	const char *p;
	size_t plen, used;

	(void)state;
	assert_int_equal(frame_next(big, sizeof(big), 1 << 20, &p, &plen, &used), -EMSGSIZE);
	assert_int_equal(plen, (1 << 20) + 1);
	assert_int_equal(frame_next(big, 3, 1 << 20, &p, &plen, &used), 0);
}

/* ---- a master: usage module, its writer, a pool server, the streams ---- */

struct master {
	char dir[64];
	struct store *st;
	struct usage *u;
	struct http_server *srv;
	struct usage_stream *us;
	uint16_t port;
};

static void master_start(struct master *m, uint16_t port, bool streams)
{
	struct http_server_opts o = { .bind_addr = "127.0.0.1", .port = port, .threads = 2 };
	char err[256];

	assert_int_equal(store_sqlite_open(m->dir, &m->st, err, sizeof(err)), 0);
	assert_int_equal(usage_create(m->st, m->dir, 0, NULL, &m->u, err, sizeof(err)), 0);
	assert_int_equal(usage_start_writer(m->u), 0);
	m->srv = http_server_start_opts(&o, err, sizeof(err));
	assert_non_null(m->srv);
	m->port = http_server_port(m->srv);
	assert_int_equal(api_usage_register(m->u, m->srv), 0);
	m->us = NULL;
	if (streams)
		assert_int_equal(usage_stream_start(m->u, m->srv, &m->us), 0);
}

/* main.c's order: streams closed, server stopped, usage module, then the streams freed. */
static void master_stop(struct master *m)
{
	usage_stop_streams(m->us);
	http_server_stop(m->srv);
	usage_destroy(m->u);
	usage_stream_free(m->us);
	store_close(m->st);
}

static int setup(void **state)
{
	struct master *m = calloc(1, sizeof(*m));

	log_init("test_usage_stream", LOG_LVL_ERROR);
	snprintf(m->dir, sizeof(m->dir), "/tmp/pacer-ustream-XXXXXX");
	if (!mkdtemp(m->dir))
		return -1;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct master *m = *state;

	remove_tree(m->dir);
	free(m);
	return 0;
}

/* A raw client: the upgrade request, its answer's head; what follows stays in in. */
struct client {
	int fd;
	char in[8192];
	size_t len;
};

static int client_open(struct client *c, uint16_t port, const char *request, char *head,
		       size_t headlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	char *end;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(send(c->fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
	while (!(end = memmem(c->in, c->len, "\r\n\r\n", 4))) {
		ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);

		assert_true(n > 0);
		c->len += (size_t)n;
	}
	snprintf(head, headlen, "%.*s", (int)(end - c->in), c->in);
	c->len -= (size_t)(end + 4 - c->in);
	memmove(c->in, end + 4, c->len);
	return atoi(head + 9);
}

static const char upgrade_req[] = "GET /internal/v1/usage/stream HTTP/1.1\r\nHost: m\r\n"
				  "Connection: Upgrade\r\nUpgrade: pacer-usage/1\r\n\r\n";

static void client_send(struct client *c, const char *payload)
{
	struct frame_buf f = { 0 };

	assert_int_equal(frame_append(&f, payload, strlen(payload)), 0);
	assert_int_equal(send(c->fd, f.p, f.len, MSG_NOSIGNAL), (ssize_t)f.len);
	frame_buf_free(&f);
}

/* The next answer frame as a JSON object (NULL: the stream ended). */
static json_t *client_read(struct client *c)
{
	const char *p;
	size_t plen, used;
	json_t *j;

	while (frame_next(c->in, c->len, sizeof(c->in), &p, &plen, &used) == 0) {
		ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);

		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
	j = json_loadb(p, plen, 0, NULL);
	assert_non_null(j);
	c->len -= used;
	memmove(c->in, c->in + used, c->len);
	return j;
}

static char *batch_text(const char *agent, uint64_t seq, long rx)
{
	static char text[512];

	snprintf(text, sizeof(text), "{\"agent_id\":\"%s\",\"seq\":%llu,\"reports\":[{\"task_id\":"
		 "\"t-%s\",\"app_id\":\"/ten/app\",\"rx_bytes\":%ld}]}", agent,
		 (unsigned long long)seq, agent, rx);
	return text;
}

static json_int_t task_rx(struct master *m, const char *task)
{
	json_t *q = usage_query(m->u, NULL, NULL, task);
	json_t *t = json_array_get(json_object_get(q, "tasks"), 0);
	json_int_t v = t ? json_integer_value(json_object_get(json_object_get(t, "counters"),
							       "rx_bytes")) : -1;

	json_decref(q);
	return v;
}

static void assert_ack(json_t *a, json_int_t acked, json_int_t last)
{
	assert_non_null(a);
	assert_int_equal(json_integer_value(json_object_get(a, "acknowledged_seq")), acked);
	assert_int_equal(json_integer_value(json_object_get(a, "last_applied_seq")), last);
	json_decref(a);
}

static void test_stream_acks_repeats_and_pipelining(void **state)
{
	struct master *m = *state;
	struct client c;
	char head[1024];
	char *metrics;

	master_start(m, 0, true);
	assert_int_equal(client_open(&c, m->port, upgrade_req, head, sizeof(head)), 101);
	assert_non_null(strcasestr(head, "Upgrade: pacer-usage/1"));
	client_send(&c, batch_text("a1", 1, 100));
	assert_ack(client_read(&c), 1, 1);
	assert_int_equal(task_rx(m, "t-a1"), 100);
	/* Two frames in one send: two acks, in order. */
	client_send(&c, batch_text("a1", 2, 200));
	client_send(&c, batch_text("a1", 3, 300));
	assert_ack(client_read(&c), 2, 2);
	assert_ack(client_read(&c), 3, 3);
	/* A repeat is acknowledged and not applied again. */
	client_send(&c, batch_text("a1", 2, 999));
	assert_ack(client_read(&c), 2, 3);
	assert_int_equal(task_rx(m, "t-a1"), 300);
	metrics = usage_metrics_text(m->u);
	assert_non_null(strstr(metrics, "\npacer_usage_stream_batches_total 4\n"));
	assert_non_null(strstr(metrics, "\npacer_usage_stream_connections 1\n"));
	free(metrics);
	close(c.fd);
	master_stop(m);
}

static void test_stream_bad_frames_close_it(void **state)
{
	struct master *m = *state;
	struct client c;
	char head[1024], big[4] = { 0x00, 0x20, 0x00, 0x00 };
	json_t *a;

	master_start(m, 0, true);
	/* Not JSON: 400 like the POST route, then the end of the stream. */
	assert_int_equal(client_open(&c, m->port, upgrade_req, head, sizeof(head)), 101);
	client_send(&c, "{\"agent_id\":");
	a = client_read(&c);
	assert_int_equal(json_integer_value(json_object_get(a, "status")), 400);
	assert_string_equal(json_string_value(json_object_get(a, "message")), "Invalid JSON");
	json_decref(a);
	assert_null(client_read(&c));
	close(c.fd);
	/* A bad field: 400 naming it. */
	assert_int_equal(client_open(&c, m->port, upgrade_req, head, sizeof(head)), 101);
	client_send(&c, "{\"agent_id\":\"a\",\"seq\":0,\"reports\":[]}");
	a = client_read(&c);
	assert_int_equal(json_integer_value(json_object_get(a, "status")), 400);
	assert_non_null(strstr(json_string_value(json_object_get(a, "message")), "seq"));
	json_decref(a);
	assert_null(client_read(&c));
	close(c.fd);
	/* Over the body limit: 413 before any of it is read. */
	assert_int_equal(client_open(&c, m->port, upgrade_req, head, sizeof(head)), 101);
	assert_int_equal(send(c.fd, big, sizeof(big), MSG_NOSIGNAL), 4);
	a = client_read(&c);
	assert_int_equal(json_integer_value(json_object_get(a, "status")), 413);
	json_decref(a);
	assert_null(client_read(&c));
	close(c.fd);
	/* Without the upgrade headers: 426 naming them. */
	assert_int_equal(client_open(&c, m->port, "GET /internal/v1/usage/stream HTTP/1.1\r\n"
				     "Host: m\r\n\r\n", head, sizeof(head)), 426);
	assert_non_null(strcasestr(head, "Upgrade: pacer-usage/2, pacer-usage/1"));
	close(c.fd);
	master_stop(m);
}

static const char binary_req[] = "GET /internal/v1/usage/stream HTTP/1.1\r\nHost: m\r\n"
				 "Connection: Upgrade\r\nUpgrade: pacer-usage/2\r\n\r\n";

static void client_send_binary(struct client *c, const char *agent, uint64_t seq,
			       const struct usage_frame_reading *r, size_t n)
{
	struct frame_buf f = { 0 };

	assert_int_equal(usage_frame_encode(&f, agent, seq, r, n), 0);
	assert_int_equal(send(c->fd, f.p, f.len, MSG_NOSIGNAL), (ssize_t)f.len);
	frame_buf_free(&f);
}

static json_t *task_json(struct master *m, const char *task)
{
	json_t *q = usage_query(m->u, NULL, NULL, task);
	json_t *t = json_incref(json_array_get(json_object_get(q, "tasks"), 0));

	json_decref(q);
	return t;
}

/* Binary batches: applied like JSON ones (every counter, the app, final), a repeat acked
 * without being applied, a reading with a bad counter skipped while the rest applies, and
 * a frame that is not a binary batch refused with 400 naming what is wrong. */
static void test_binary_stream(void **state)
{
	struct master *m = *state;
	struct usage_frame_reading r[2] = {
		{ .task_id = "t-b1", .app_id = "/ten/app", .has_at = true, .at = 1700000000.5 },
		{ .task_id = "t-b2", .final = true },
	};
	struct client c;
	char head[1024];
	json_t *t, *a;

	master_start(m, 0, true);
	assert_int_equal(client_open(&c, m->port, binary_req, head, sizeof(head)), 101);
	assert_non_null(strcasestr(head, "Upgrade: pacer-usage/2"));
	for (size_t f = 0; f < USAGE_FRAME_NFIELDS; f++) {
		r[0].counters[f] = 1000 + f;
		r[1].counters[f] = 7;
	}
	client_send_binary(&c, "b", 1, r, 2);
	assert_ack(client_read(&c), 1, 1);
	t = task_json(m, "t-b1");
	assert_string_equal(json_string_value(json_object_get(t, "app_id")), "/ten/app");
	for (size_t f = 0; f < USAGE_FRAME_NFIELDS; f++)
		assert_int_equal(json_integer_value(json_object_get(json_object_get(t, "counters"),
								     usage_frame_fields[f])),
				 (json_int_t)(1000 + f));
	json_decref(t);
	t = task_json(m, "t-b2");
	assert_true(json_is_true(json_object_get(t, "final")));
	json_decref(t);
	/* A repeat: acknowledged, not applied. */
	r[0].counters[0] = 5000;
	client_send_binary(&c, "b", 1, r, 1);
	assert_ack(client_read(&c), 1, 1);
	assert_int_equal(task_rx(m, "t-b1"), 1000);
	/* A counter above 2^63 - 1 spoils its reading only. */
	r[1].task_id = "t-b3";
	r[1].counters[3] = UINT64_MAX;
	client_send_binary(&c, "b", 2, r, 2);
	assert_ack(client_read(&c), 2, 2);
	assert_int_equal(task_rx(m, "t-b1"), 5000);
	assert_int_equal(task_rx(m, "t-b3"), -1);
	/* Text on a binary stream: 400 naming the magic, then the end of the stream. */
	client_send(&c, batch_text("b", 3, 1));
	a = client_read(&c);
	assert_int_equal(json_integer_value(json_object_get(a, "status")), 400);
	assert_non_null(strstr(json_string_value(json_object_get(a, "message")), "magic"));
	json_decref(a);
	assert_null(client_read(&c));
	close(c.fd);
	master_stop(m);
}

/* Stopping with streams open (one idle, one with a frame half sent) ends them cleanly. */
static void test_master_stops_with_streams_open(void **state)
{
	struct master *m = *state;
	struct client c1, c2;
	char head[1024];

	master_start(m, 0, true);
	assert_int_equal(client_open(&c1, m->port, upgrade_req, head, sizeof(head)), 101);
	assert_int_equal(client_open(&c2, m->port, upgrade_req, head, sizeof(head)), 101);
	client_send(&c1, batch_text("s1", 1, 5));
	assert_ack(client_read(&c1), 1, 1);
	assert_int_equal(send(c2.fd, "\0\0\0\100{\"agent", 11, MSG_NOSIGNAL), 11);
	master_stop(m);
	assert_null(client_read(&c1));
	assert_null(client_read(&c2));
	close(c1.fd);
	close(c2.fd);
}

static json_int_t send_link(struct usage_link *l, uint16_t port, const char *agent,
			    uint64_t seq, long rx)
{
	char url[64];
	json_t *b = json_loads(batch_text(agent, seq, rx), 0, NULL), *a;
	struct http_result r;
	json_int_t acked;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	assert_int_equal(usage_link_send(l, url, b, 5000, &r), 0);
	json_decref(b);
	assert_int_equal(r.status, 200);
	a = http_result_json(&r);
	acked = json_integer_value(json_object_get(a, "acknowledged_seq"));
	json_decref(a);
	http_result_free(&r);
	return acked;
}

static void test_agent_streams_and_falls_back(void **state)
{
	struct master *m = *state;
	struct usage_link l = USAGE_LINK_INIT;

	/* A master without streams: POST, and no new try at once. */
	master_start(m, 0, false);
	assert_int_equal(send_link(&l, m->port, "g1", 1, 10), 1);
	assert_int_equal(l.fd, -1);
	assert_int_equal(l.batches, 0);
	assert_true(l.retry_at > now_mono() + 30);
	master_stop(m);
	/* With streams: the batches go as binary frames. */
	l.retry_at = 0;
	master_start(m, 0, true);
	assert_int_equal(send_link(&l, m->port, "g1", 2, 20), 2);
	assert_int_equal(send_link(&l, m->port, "g1", 3, 30), 3);
	assert_true(l.fd >= 0);
	assert_int_equal(l.batches, 2);
	assert_int_equal(task_rx(m, "t-g1"), 30);
	usage_link_close(&l);
	http_lite_thread_cleanup();
	master_stop(m);
}

/* The master restarts between two batches of an open stream: the next batch goes as a
 * POST to the new master at once, the one after on a new stream; totals exact. */
static void test_master_restart_mid_stream(void **state)
{
	struct master *m = *state;
	struct usage_link l = USAGE_LINK_INIT;
	uint16_t port;
	char *metrics;

	master_start(m, 0, true);
	port = m->port;
	assert_int_equal(send_link(&l, port, "r1", 1, 100), 1);
	assert_int_equal(send_link(&l, port, "r1", 2, 200), 2);
	assert_int_equal(l.batches, 2);
	master_stop(m);
	master_start(m, port, true);
	assert_int_equal(task_rx(m, "t-r1"), 200);          /* from the journal */
	assert_int_equal(send_link(&l, port, "r1", 2, 200), 2); /* resent: not applied again */
	assert_int_equal(task_rx(m, "t-r1"), 200);
	assert_int_equal(send_link(&l, port, "r1", 3, 300), 3);
	assert_true(l.fd >= 0);
	assert_int_equal(l.batches, 3);                     /* the resend was a POST */
	assert_int_equal(task_rx(m, "t-r1"), 300);
	metrics = usage_metrics_text(m->u);
	assert_non_null(strstr(metrics, "\npacer_usage_stream_batches_total 1\n"));
	assert_non_null(strstr(metrics, "\npacer_usage_duplicate_reports_total 1\n"));
	free(metrics);
	usage_link_close(&l);
	http_lite_thread_cleanup();
	master_stop(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_whole_split_joined),
		cmocka_unit_test(test_frame_over_the_limit),
		cmocka_unit_test_setup_teardown(test_stream_acks_repeats_and_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_bad_frames_close_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_stops_with_streams_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_streams_and_falls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_restart_mid_stream, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
