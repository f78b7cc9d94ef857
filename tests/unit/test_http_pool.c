/* test_http_pool.c - the HTTP server's epoll thread-pool mode over real loopback sockets:
 * async routes answered from another thread (and inline), a client that leaves before its
 * answer, stopping with answers still owed, non-blocking streams woken by their producer,
 * ordinary routes on workers, and async routes on a thread-per-connection server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/util.h"

/* Tokens handed over by the async handler, taken by the test or an answering thread. */
struct mailbox {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct http_deferred *tokens[16];
	int count;
	pthread_t handler_thread;
};

static struct mailbox box = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void park_handler(struct http_request *req, struct http_deferred *d, void *ctx)
{
	(void)req;
	(void)ctx;
	pthread_mutex_lock(&box.mu);
	box.tokens[box.count++] = d;
	box.handler_thread = pthread_self();
	pthread_cond_broadcast(&box.cond);
	pthread_mutex_unlock(&box.mu);
}

/* Waits (5 s at most) for a token the handler parked. */
static struct http_deferred *take_token(void)
{
	struct http_deferred *d = NULL;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&box.mu);
	while (box.count == 0 && pthread_cond_timedwait(&box.cond, &box.mu, &ts) == 0)
		;
	if (box.count > 0)
		d = box.tokens[--box.count];
	pthread_mutex_unlock(&box.mu);
	assert_non_null(d);
	return d;
}

static void inline_handler(struct http_request *req, struct http_deferred *d, void *ctx)
{
	struct http_response resp = { .status = 0 };

	(void)ctx;
	http_respond_json(&resp, 201, json_pack("{s:s}", "body", req->body));
	http_deferred_respond(d, &resp);
}

/* An ordinary route whose handler waits until the test opens the gate. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool entered, open;
} gate = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void gate_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&gate.mu);
	gate.entered = true;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	http_respond_json(resp, 200, json_pack("{s:s}", "body", req->body));
}

static void ping_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_text(resp, 200, "text/plain", "pong");
}

/* A non-blocking stream fed by the test: lines appended under mu, then a wake. */
struct feed {
	pthread_mutex_t mu;
	char buf[256];
	size_t len;
	bool ended, attached, freed;
	struct http_waker *waker;
};

static struct feed feed = { .mu = PTHREAD_MUTEX_INITIALIZER };

static ssize_t feed_read(void *ctx, char *buf, size_t max)
{
	struct feed *fd = ctx;
	ssize_t n;

	pthread_mutex_lock(&fd->mu);
	n = (ssize_t)(fd->len < max ? fd->len : max);
	memcpy(buf, fd->buf, (size_t)n);
	memmove(fd->buf, fd->buf + n, fd->len - (size_t)n);
	fd->len -= (size_t)n;
	if (n == 0 && fd->ended)
		n = -1;
	pthread_mutex_unlock(&fd->mu);
	return n;
}

static void feed_attach(void *ctx, struct http_waker *w)
{
	struct feed *fd = ctx;

	pthread_mutex_lock(&fd->mu);
	fd->waker = w;
	fd->attached = true;
	pthread_mutex_unlock(&fd->mu);
}

static void feed_free(void *ctx)
{
	struct feed *fd = ctx;

	pthread_mutex_lock(&fd->mu);
	fd->waker = NULL;
	fd->freed = true;
	pthread_mutex_unlock(&fd->mu);
}

static void feed_push(const char *text, bool end)
{
	pthread_mutex_lock(&feed.mu);
	memcpy(feed.buf + feed.len, text, strlen(text));
	feed.len += strlen(text);
	feed.ended = end;
	if (feed.waker)
		http_wake(feed.waker);
	pthread_mutex_unlock(&feed.mu);
}

static void feed_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_stream(resp, 200, "text/event-stream",
			    (struct http_stream){ .read = feed_read, .free = feed_free,
						  .attach = feed_attach, .ctx = &feed });
}

static struct http_server *start(unsigned threads)
{
	struct http_server_opts o = { .bind_addr = "127.0.0.1", .port = 0, .threads = threads,
				      .workers = 2 };
	struct http_server *srv;
	char err[128];

	srv = http_server_start_opts(&o, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(http_server_route_async(srv, "POST", "/park", park_handler, NULL), 0);
	assert_int_equal(http_server_route_async(srv, "POST", "/inline", inline_handler, NULL), 0);
	assert_int_equal(http_server_route_quick(srv, "GET", "/ping", ping_handler, NULL), 0);
	assert_int_equal(http_server_route(srv, "GET", "/feed", feed_handler, NULL), 0);
	assert_int_equal(http_server_route(srv, "POST", "/gate", gate_handler, NULL), 0);
	return srv;
}

struct client_call {
	pthread_t thread;
	char url[128];
	long status;
	char body[256];
	int rc;
};

static void *client_main(void *arg)
{
	struct client_call *c = arg;
	struct http_result r;

	c->rc = http_call("POST", c->url, "x", 1, NULL, 10000, &r);
	if (c->rc == 0) {
		c->status = r.status;
		snprintf(c->body, sizeof(c->body), "%s", r.body ? r.body : "");
		http_result_free(&r);
	}
	return NULL;
}

static void client_start(struct client_call *c, struct http_server *srv, const char *path)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%u%s", http_server_port(srv), path);
	assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static long ping(struct http_server *srv)
{
	struct http_result r;
	char url[128];
	long status;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/ping", http_server_port(srv));
	assert_int_equal(http_call("GET", url, NULL, 0, NULL, 5000, &r), 0);
	status = r.status;
	http_result_free(&r);
	return status;
}

static void *answer_main(void *arg)
{
	struct http_deferred *d = arg;
	char text[64];

	snprintf(text, sizeof(text), "{\"answered_by\":\"other thread\"}");
	http_deferred_finish(d, 200, "application/json", text, strlen(text));
	return NULL;
}

/* The handler parks the token; a thread of ours answers while the server threads go on
 * serving other requests. */
static void test_async_answered_from_another_thread(void **state)
{
	struct http_server *srv = start(2);
	struct client_call c;
	struct http_deferred *d;
	pthread_t t;

	(void)state;
	client_start(&c, srv, "/park");
	d = take_token();
	assert_int_equal(ping(srv), 200);       /* a pool thread is not held by the wait */
	assert_int_equal(pthread_create(&t, NULL, answer_main, d), 0);
	pthread_join(t, NULL);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.status, 200);
	assert_string_equal(c.body, "{\"answered_by\":\"other thread\"}");
	assert_false(pthread_equal(t, box.handler_thread));
	http_server_stop(srv);
}

static void test_async_answered_inline(void **state)
{
	struct http_server *srv = start(2);
	struct client_call c;

	(void)state;
	client_start(&c, srv, "/inline");
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.status, 201);
	assert_string_equal(c.body, "{\"body\":\"x\"}");
	http_server_stop(srv);
}

static int connect_to(struct http_server *srv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(http_server_port(srv)) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void send_all(int fd, const char *text)
{
	assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* Reads until want appears in what came (5 s at most); returns whether it did. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *want)
{
	double deadline = now_mono() + 5;

	while (!memmem(buf, *len, want, strlen(want)) && now_mono() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf + *len, cap - 1 - *len, 0);
		if (n <= 0)
			break;
		*len += (size_t)n;
		buf[*len] = '\0';
	}
	return memmem(buf, *len, want, strlen(want)) != NULL;
}

/* The client leaves while its answer is owed: the answer comes later and goes nowhere;
 * the server lives on (under ASan: without touching freed memory). */
static void test_client_gone_before_the_answer(void **state)
{
	struct http_server *srv = start(2);
	struct http_deferred *d;
	int fd = connect_to(srv);

	(void)state;
	send_all(fd, "POST /park HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx");
	d = take_token();
	close(fd);
	http_deferred_finish(d, 200, "text/plain", "late", 4);
	assert_int_equal(ping(srv), 200);
	http_server_stop(srv);
}

/* Stopping answers what is still owed (503) and the late answer after the stop is safe. */
static void test_stop_with_an_answer_owed(void **state)
{
	struct http_server *srv = start(2);
	struct client_call c;
	struct http_deferred *d;

	(void)state;
	client_start(&c, srv, "/park");
	d = take_token();
	http_server_stop(srv);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.status, 503);
	assert_non_null(strstr(c.body, "shutting down"));
	http_deferred_finish(d, 200, "text/plain", "late", 4);
}

/* A stream with nothing to send parks its connection; the producer's wake sends what it
 * queued; the stream's end ends the response. */
static void test_stream_woken_by_its_producer(void **state)
{
	struct http_server *srv = start(1);
	char buf[4096] = "";
	size_t len = 0;
	int fd = connect_to(srv);
	bool attached;

	(void)state;
	send_all(fd, "GET /feed HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(read_until(fd, buf, sizeof(buf), &len, "\r\n\r\n"));
	assert_non_null(strstr(buf, "200 OK"));
	pthread_mutex_lock(&feed.mu);
	attached = feed.attached;
	pthread_mutex_unlock(&feed.mu);
	assert_true(attached);
	assert_int_equal(ping(srv), 200);       /* the only pool thread is free */
	feed_push("data: one\n\n", false);
	assert_true(read_until(fd, buf, sizeof(buf), &len, "data: one\n\n"));
	feed_push("data: two\n\n", true);
	assert_true(read_until(fd, buf, sizeof(buf), &len, "data: two\n\n"));
	assert_true(read_until(fd, buf, sizeof(buf), &len, "\r\n0\r\n\r\n"));   /* the end */
	close(fd);
	http_server_stop(srv);
	assert_true(feed.freed);
}

/* A parked stream when the server stops: it ends, MHD is not stopped with it suspended. */
static void test_stop_with_a_parked_stream(void **state)
{
	struct http_server *srv = start(2);
	char buf[4096] = "";
	size_t len = 0;
	int fd = connect_to(srv);

	(void)state;
	pthread_mutex_lock(&feed.mu);
	feed.len = 0;
	feed.ended = feed.attached = feed.freed = false;
	pthread_mutex_unlock(&feed.mu);
	send_all(fd, "GET /feed HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(read_until(fd, buf, sizeof(buf), &len, "\r\n\r\n"));
	http_server_stop(srv);
	assert_true(feed.freed);
	close(fd);
}

/* An ordinary route's handler waits on a worker: the only pool thread serves others
 * meanwhile. */
static void test_ordinary_route_runs_on_a_worker(void **state)
{
	struct http_server *srv = start(1);
	struct client_call c;
	struct timespec ts;

	(void)state;
	client_start(&c, srv, "/gate");
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&gate.mu);
	while (!gate.entered && pthread_cond_timedwait(&gate.cond, &gate.mu, &ts) == 0)
		;
	assert_true(gate.entered);
	pthread_mutex_unlock(&gate.mu);
	assert_int_equal(ping(srv), 200);
	pthread_mutex_lock(&gate.mu);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.mu);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.status, 200);
	assert_string_equal(c.body, "{\"body\":\"x\"}");
	http_server_stop(srv);
}

/* Thread per connection: the connection's thread waits for the answer. */
static void test_async_on_thread_per_connection(void **state)
{
	struct http_server *srv = start(0);
	struct client_call c;
	struct http_deferred *d;
	pthread_t t;

	(void)state;
	client_start(&c, srv, "/park");
	d = take_token();
	assert_int_equal(pthread_create(&t, NULL, answer_main, d), 0);
	pthread_join(t, NULL);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.status, 200);
	assert_string_equal(c.body, "{\"answered_by\":\"other thread\"}");
	client_start(&c, srv, "/park");
	d = take_token();
	http_server_stop(srv);          /* the waiting thread gets its 503 */
	pthread_join(c.thread, NULL);
	assert_int_equal(c.status, 503);
	http_deferred_finish(d, 200, "text/plain", "late", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_answered_from_another_thread),
		cmocka_unit_test(test_async_answered_inline),
		cmocka_unit_test(test_client_gone_before_the_answer),
		cmocka_unit_test(test_stop_with_an_answer_owed),
		cmocka_unit_test(test_stream_woken_by_its_producer),
		cmocka_unit_test(test_stop_with_a_parked_stream),
		cmocka_unit_test(test_ordinary_route_runs_on_a_worker),
		cmocka_unit_test(test_async_on_thread_per_connection),
	};

	http_client_global_init();
	int rc = cmocka_run_group_tests_name("http_pool", tests, NULL, NULL);

	http_client_global_cleanup();
	return rc;
}
