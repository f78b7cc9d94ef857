/* test_agent_stream.c - the agent end of the agent stream (agent/stream_link.c) against a
 * scripted master (agent_fixture.h's HTTP routes plus a pacer-agent/1 stream route here):
 * the hello, status batches as 'S' frames acknowledged by 'A', launch and kill calls
 * answered with 'R' items identical to the HTTP batch answers, a batch over the limit
 * refused, the fallback to HTTP when the master has no stream, a stream that breaks with
 * a batch in flight (the batch is sent again), and an 'E' that makes the agent register
 * again and reopen. No containers: launched tasks stay in TASK_STAGING. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "lib/agent_frame.h"
#include "lib/http_lite.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"
#include "agent_fixture.h"

/* ---- the master's end of the stream ---- */

struct fake_stream {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct fake_master *fm;
	struct http_upgrade_target target;
	bool refuse;              /* answer the upgrade with 404 (an older master) */
	bool drop_next_status;    /* close the stream on the next 'S', unanswered */
	bool error_next_status;   /* answer the next 'S' with 'E' 404 and close */
	int attempts, hellos, readers;
	char hello_id[64];
	int fd;                   /* the current stream, -1 */
	size_t stream_updates;    /* updates that came in 'S' frames */
	json_t *results;          /* 'R' frames: {"id","status","message","items":[{"ok","error"}]} */
};

struct reader_arg {
	struct fake_stream *fs;
	int fd;
	struct http_upgraded *up;
};

static int fs_send(int fd, struct frame_buf *b)
{
	return http_lite_send_all(fd, b->p + b->off, b->len - b->off, 5000);
}

/* 'S' -> the updates go to fm->updates and one 'A' answers, as fm_status does. */
static int fs_status(struct fake_stream *fs, int fd, const char *p, size_t len)
{
	struct fake_master *fm = fs->fm;
	struct af_text text;
	struct frame_buf out = { 0 };
	struct af_builder w;
	uint64_t id;
	char err[128];
	json_t *body, *u;
	size_t i;
	int rc;

	assert_int_equal(af_status_read(p, len, &id, &text, err, sizeof(err)), 0);
	body = json_loadb(text.p, text.len, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "agent_id")), fs->hello_id);
	assert_int_equal(af_answer_begin(&w, &out, AF_ACKS, id, 200, NULL), 0);
	pthread_mutex_lock(&fm->lock);
	json_array_foreach(json_object_get(body, "updates"), i, u) {
		if (strcmp(json_string_value(json_object_get(u, "task_id")) ?: "",
			   fm->reject_task) == 0) {
			af_answer_add(&w, false, "refused");
			continue;
		}
		json_array_append(fm->updates, u);
		af_answer_add(&w, true, NULL);
		pthread_mutex_lock(&fs->mu);
		fs->stream_updates++;
		pthread_mutex_unlock(&fs->mu);
	}
	pthread_mutex_unlock(&fm->lock);
	af_end(&w);
	rc = fs_send(fd, &out);
	frame_buf_free(&out);
	json_decref(body);
	return rc;
}

static void fs_results(struct fake_stream *fs, const char *p, size_t len)
{
	struct af_answer_reader r;
	struct af_answer_item it;
	json_t *items = json_array();
	char err[128];

	assert_int_equal(af_answer_open(&r, p, len, err, sizeof(err)), 0);
	assert_int_equal(r.kind, AF_RESULTS);
	while (af_answer_next(&r, &it, err, sizeof(err)) == 1)
		json_array_append_new(items, json_pack("{s:b,s:s%}", "ok", it.ok, "error",
						       it.error.p, it.error.len));
	pthread_mutex_lock(&fs->mu);
	json_array_append_new(fs->results, json_pack("{s:I,s:i,s:s%,s:o}", "id", (json_int_t)r.id,
						     "status", r.status, "message", r.message.p,
						     r.message.len, "items", items));
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->mu);
}

/* One frame: false when the stream should end. */
static bool fs_frame(struct fake_stream *fs, int fd, const char *p, size_t len)
{
	struct af_text id;
	char err[128];
	bool drop, error;

	switch (agent_frame_type(p, len)) {
	case AF_HELLO:
		assert_int_equal(af_hello_read(p, len, &id, err, sizeof(err)), 0);
		pthread_mutex_lock(&fs->mu);
		fs->hellos++;
		snprintf(fs->hello_id, sizeof(fs->hello_id), "%.*s", (int)id.len, id.p);
		pthread_mutex_unlock(&fs->mu);
		return true;
	case AF_STATUS:
		pthread_mutex_lock(&fs->mu);
		drop = fs->drop_next_status;
		error = fs->error_next_status;
		fs->drop_next_status = fs->error_next_status = false;
		pthread_mutex_unlock(&fs->mu);
		if (error) {
			struct frame_buf out = { 0 };

			af_error_encode(&out, 404, "unknown agent; register again");
			fs_send(fd, &out);
			frame_buf_free(&out);
		}
		return !drop && !error && fs_status(fs, fd, p, len) == 0;
	case AF_RESULTS:
		fs_results(fs, p, len);
		return true;
	default:
		fail_msg("unexpected frame type %d from the agent", p[0]);
		return false;
	}
}

static void *fs_reader(void *arg)
{
	struct reader_arg *ra = arg;
	struct fake_stream *fs = ra->fs;
	struct frame_buf in = { 0 };
	char buf[16384];

	for (bool go = true; go;) {
		const char *p;
		size_t plen, used;
		int rc = 0;
		ssize_t n;

		while (go && in.p && (rc = frame_next(in.p + in.off, in.len - in.off, 1 << 20, &p, &plen,
					      &used)) == 1) {
			go = fs_frame(fs, ra->fd, p, plen);
			frame_buf_consume(&in, used);
		}
		if (!go)
			break;
		n = recv(ra->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pfd = { .fd = ra->fd, .events = POLLIN };

			poll(&pfd, 1, -1);
			continue;
		}
		if (n <= 0)
			break;
		frame_buf_put(&in, buf, (size_t)n);
	}
	frame_buf_free(&in);
	pthread_mutex_lock(&fs->mu);
	if (fs->fd == ra->fd)
		fs->fd = -1;
	http_upgraded_close(ra->up);
	fs->readers--;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->mu);
	free(ra);
	return NULL;
}

static void fs_upgraded(void *ctx, int fd, const char *extra, size_t extra_len,
			struct http_upgraded *up)
{
	struct fake_stream *fs = ctx;
	struct reader_arg *ra = calloc(1, sizeof(*ra));
	pthread_t t;

	assert_non_null(ra);
	assert_int_equal(extra_len, 0);    /* the agent waits for the 101 before its hello */
	(void)extra;
	*ra = (struct reader_arg){ .fs = fs, .fd = fd, .up = up };
	pthread_mutex_lock(&fs->mu);
	fs->fd = fd;
	fs->readers++;
	pthread_mutex_unlock(&fs->mu);
	assert_int_equal(pthread_create(&t, NULL, fs_reader, ra), 0);
	pthread_detach(t);
}

static void fs_route(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct fake_stream *fs = ctx;
	const char *up = http_header(req, "Upgrade");
	bool refuse;

	pthread_mutex_lock(&fs->mu);
	fs->attempts++;
	refuse = fs->refuse;
	pthread_mutex_unlock(&fs->mu);
	if (refuse) {
		http_respond_error(resp, 404, "no such route");
		return;
	}
	if (!up || strcmp(up, AGENT_STREAM_PROTOCOL) != 0) {
		http_respond_error(resp, 426, "Upgrade: %s expected", AGENT_STREAM_PROTOCOL);
		return;
	}
	http_respond_upgrade(resp, AGENT_STREAM_PROTOCOL, &fs->target);
}

/* Ends the current stream (the reader closes it) and waits for every reader to end. */
static void fs_close_all(struct fake_stream *fs)
{
	double end = now_mono() + DEADLINE;

	pthread_mutex_lock(&fs->mu);
	if (fs->fd >= 0)
		shutdown(fs->fd, SHUT_RDWR);
	while (fs->readers > 0 && now_mono() < end) {
		pthread_mutex_unlock(&fs->mu);
		sleep_ms(5);
		pthread_mutex_lock(&fs->mu);
	}
	assert_int_equal(fs->readers, 0);
	pthread_mutex_unlock(&fs->mu);
}

/* The fake master on a pool server (only those hand upgraded sockets over). */
static void fm_start_pool(struct fake_master *fm)
{
	struct http_server_opts o = { .bind_addr = "127.0.0.1", .threads = 2, .workers = 4 };
	char err[256];

	fm->srv = http_server_start_opts(&o, err, sizeof(err));
	assert_non_null(fm->srv);
	fm->port = http_server_port(fm->srv);
	assert_int_equal(http_server_route(fm->srv, "POST", "/internal/v1/register", fm_register, fm), 0);
	assert_int_equal(http_server_route(fm->srv, "POST", "/internal/v1/heartbeat", fm_heartbeat, fm), 0);
	assert_int_equal(http_server_route(fm->srv, "POST", "/internal/v1/status", fm_status, fm), 0);
}

/* ---- the agent under test: table, outbox, master_link, the stream and the HTTP API ---- */

struct fx {
	char dir[64];
	struct fake_master fm;
	struct fake_stream fs;
	struct agent a;
	char url[64], api[64];
	bool running;
};

static void agent_open(struct fx *f)
{
	struct agent *a = &f->a;
	char err[256];

	memset(a, 0, sizeof(*a));
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->fm.port);
	a->cfg = (struct agent_config){ .master_url = f->url, .work_dir = f->dir, .ip = "127.0.0.1",
					.port = 0, .hostname = "test-host", .agent_stream = true };
	agent_init_sync(a);
	assert_int_equal(checkpoint_agent_id(f->dir, a->agent_id, err, sizeof(err)), 0);
	snprintf(a->address, sizeof(a->address), "127.0.0.1:5051");
	assert_int_equal(resources_parse("cpus:2;mem:1024;disk:100;ports:[31000-31010]", &a->resources,
					 err, sizeof(err)), 0);
	a->attributes = json_object();
	assert_int_equal(outbox_open(&a->outbox, f->dir), 0);
	assert_int_equal(agent_api_start(a, err, sizeof(err)), 0);
	snprintf(f->api, sizeof(f->api), "http://127.0.0.1:%u", http_server_port(a->http));
}

static void agent_run(struct fx *f)
{
	assert_int_equal(pthread_create(&f->a.link_thread, NULL, agent_link_main, &f->a), 0);
	assert_int_equal(stream_link_start(&f->a), 0);
	f->running = true;
}

/* As agent_stop: the stream first (it wakes a link thread waiting for an ack). */
static void agent_close(struct fx *f)
{
	struct agent *a = &f->a;
	struct task *t;

	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->link_cond);
	pthread_mutex_unlock(&a->lock);
	http_server_stop(a->http);
	stream_link_stop(a);
	if (f->running)
		pthread_join(a->link_thread, NULL);
	f->running = false;
	while ((t = a->tasks)) {
		a->tasks = t->next;
		agent_task_free(t);
	}
	outbox_close(&a->outbox);
	resources_free(&a->resources);
	json_decref(a->attributes);
	agent_destroy_sync(a);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	log_init("test", LOG_LVL_ERROR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pacer-test-stream-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	fm_init(&f->fm);
	fm_start_pool(&f->fm);
	pthread_mutex_init(&f->fs.mu, NULL);
	pthread_cond_init(&f->fs.cond, NULL);
	f->fs.fm = &f->fm;
	f->fs.fd = -1;
	f->fs.results = json_array();
	f->fs.target = (struct http_upgrade_target){ .fn = fs_upgraded, .ctx = &f->fs };
	assert_int_equal(http_server_route(f->fm.srv, "GET", AGENT_STREAM_PATH, fs_route, &f->fs), 0);
	agent_open(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	agent_close(f);
	fs_close_all(&f->fs);
	fm_free(&f->fm);
	json_decref(f->fs.results);
	pthread_cond_destroy(&f->fs.cond);
	pthread_mutex_destroy(&f->fs.mu);
	remove_tree(f->dir);
	http_lite_thread_cleanup();
	free(f);
	return 0;
}

/* ---- helpers ---- */

static int fs_count(struct fx *f, int *what)
{
	int n;

	pthread_mutex_lock(&f->fs.mu);
	n = *what;
	pthread_mutex_unlock(&f->fs.mu);
	return n;
}

static void wait_fs(struct fx *f, int *what, int n, const char *name)
{
	for (double end = now_mono() + DEADLINE; fs_count(f, what) < n; sleep_ms(5))
		if (now_mono() > end)
			fail_msg("%s: %d, expected %d", name, fs_count(f, what), n);
}

/* The agent's side is up (its status batches go on the stream from now on). */
static void wait_stream_up(struct fx *f, int hellos)
{
	wait_fs(f, &f->fs.hellos, hellos, "hellos");
	for (double end = now_mono() + DEADLINE;; sleep_ms(5)) {
		int fd;

		pthread_mutex_lock(&f->a.stream.mu);
		fd = f->a.stream.fd;
		pthread_mutex_unlock(&f->a.stream.mu);
		if (fd >= 0)
			return;
		if (now_mono() > end)
			fail_msg("the agent's stream is not up");
	}
}

static void wait_outbox_empty(struct fx *f)
{
	for (double end = now_mono() + DEADLINE;; sleep_ms(5)) {
		size_t n;

		pthread_mutex_lock(&f->a.lock);
		n = f->a.outbox.count;
		pthread_mutex_unlock(&f->a.lock);
		if (n == 0)
			return;
		if (now_mono() > end)
			fail_msg("outbox still holds %zu updates", n);
	}
}

static struct task *add_task(struct fx *f, const char *id)
{
	json_t *info = json_pack("{s:s, s:{s:s}, s:{s:f, s:f}}", "task_id", id, "command", "value", "true",
				 "resources", "cpus", 0.1, "mem", 16.0);
	struct task *t;

	pthread_mutex_lock(&f->a.lock);
	t = agent_task_new(&f->a, id, "fw-1", info);
	assert_non_null(t);
	assert_int_equal(agent_task_checkpoint(&f->a, t), 0);
	pthread_mutex_unlock(&f->a.lock);
	json_decref(info);
	return t;
}

static void update(struct fx *f, struct task *t, enum task_state s)
{
	pthread_mutex_lock(&f->a.lock);
	assert_int_equal(agent_task_update(&f->a, t, s, NULL, "test", NULL), 0);
	pthread_mutex_unlock(&f->a.lock);
}

/* Sends one call frame made of the elements of a JSON array (each with its task id). */
static void send_call(struct fx *f, enum agent_frame_type kind, uint64_t call_id, json_t *elems)
{
	struct frame_buf b = { 0 };
	struct af_builder w;
	json_t *e;
	size_t i;
	int fd;

	assert_int_equal(af_call_begin(&w, &b, kind, call_id), 0);
	json_array_foreach(elems, i, e) {
		const char *text = json_string_value(json_object_get(e, "json"));

		assert_int_equal(af_call_add(&w, json_string_value(json_object_get(e, "task_id")),
					     text, strlen(text)), 0);
	}
	af_end(&w);
	pthread_mutex_lock(&f->fs.mu);
	fd = f->fs.fd;
	pthread_mutex_unlock(&f->fs.mu);
	assert_true(fd >= 0);
	assert_int_equal(fs_send(fd, &b), 0);
	frame_buf_free(&b);
}

/* The 'R' frame of call_id (waits for it); a new reference. */
static json_t *wait_result(struct fx *f, uint64_t call_id)
{
	double end = now_mono() + DEADLINE;
	json_t *r, *found = NULL;
	size_t i;

	pthread_mutex_lock(&f->fs.mu);
	while (!found) {
		json_array_foreach(f->fs.results, i, r)
			if ((uint64_t)json_integer_value(json_object_get(r, "id")) == call_id)
				found = json_incref(r);
		if (found)
			break;
		pthread_mutex_unlock(&f->fs.mu);
		if (now_mono() > end)
			fail_msg("no results for call %llu", (unsigned long long)call_id);
		sleep_ms(5);
		pthread_mutex_lock(&f->fs.mu);
	}
	pthread_mutex_unlock(&f->fs.mu);
	return found;
}

/* POST path body -> the agent's HTTP answer (the batch form's "results"). */
static json_t *http_batch(struct fx *f, const char *path, json_t *body)
{
	struct http_result r = { 0 };
	char url[128];
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", f->api, path);
	assert_int_equal(http_lite_call_json("POST", url, body, 5000, &r), 0);
	assert_int_equal(r.status, 202);
	j = http_result_json(&r);
	http_result_free(&r);
	json_decref(body);
	assert_non_null(j);
	return j;
}

static json_t *elem(const char *task_id, json_t *json)
{
	char *text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
	json_t *e = json_pack("{s:s,s:s}", "task_id", task_id, "json", text);

	free(text);
	json_decref(json);
	return e;
}

static json_t *launch_json(const char *id)
{
	return json_pack("{s:s,s:{s:s,s:s,s:{s:s},s:{s:f,s:f}}}", "framework_id", "fw-1", "task",
			 "task_id", id, "name", "x", "command", "value", "true", "resources", "cpus",
			 0.1, "mem", 16.0);
}

static const char *item_error(json_t *res, size_t i)
{
	json_t *it = json_array_get(json_object_get(res, "items"), i);

	assert_non_null(it);
	if (json_is_true(json_object_get(it, "ok")))
		return NULL;
	return json_string_value(json_object_get(it, "error"));
}

/* ---- tests ---- */

static void test_call_answers_are_the_http_ones(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(call_launch_answer(0, "a.1", err, sizeof(err)), 0);
	assert_int_equal(call_launch_answer(-EEXIST, "a.1", err, sizeof(err)), 409);
	assert_string_equal(err, "Task 'a.1' already exists on this agent");
	assert_int_equal(call_launch_answer(-ESHUTDOWN, "a.1", err, sizeof(err)), 503);
	assert_string_equal(err, "The agent is shutting down");
	assert_int_equal(call_launch_answer(-ENOSPC, "a.1", err, sizeof(err)), 500);
	assert_string_equal(err, "Cannot checkpoint task 'a.1': No space left on device");
	assert_int_equal(call_kill_answer(0, "a.1", err, sizeof(err)), 0);
	assert_int_equal(call_kill_answer(-ENOENT, "a.1", err, sizeof(err)), 404);
	assert_string_equal(err, "Task 'a.1' is not known on this agent");
	assert_int_equal(call_kill_answer(-EIO, "a.1", err, sizeof(err)), 500);
	assert_string_equal(err, "Cannot kill task 'a.1': Input/output error");
}

static void test_status_goes_on_the_stream(void **state)
{
	struct fx *f = *state;
	struct task *t = add_task(f, "web.1");

	agent_run(f);
	wait_stream_up(f, 1);
	assert_string_equal(f->fs.hello_id, f->a.agent_id);
	update(f, t, TASK_RUNNING);
	update(f, t, TASK_FINISHED);
	fm_wait_updates(&f->fm, 2);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	assert_string_equal(json_string_value(json_object_get(json_array_get(f->fm.updates, 0), "state")),
			    "TASK_RUNNING");
	assert_string_equal(json_string_value(json_object_get(json_array_get(f->fm.updates, 1), "state")),
			    "TASK_FINISHED");
	assert_int_equal(json_array_size(f->fm.updates), 2);
	pthread_mutex_unlock(&f->fm.lock);
	assert_int_equal(f->fs.stream_updates, 2);      /* none went as a POST */
	/* the finished task was forgotten once its last update was acknowledged */
	pthread_mutex_lock(&f->a.lock);
	assert_null(agent_task_find(&f->a, "web.1"));
	pthread_mutex_unlock(&f->a.lock);
}

/* An update the master refuses in its 'A' stays in the outbox and is sent again. */
static void test_refused_update_stays_until_acknowledged(void **state)
{
	struct fx *f = *state;
	struct task *t1 = add_task(f, "t1"), *t2 = add_task(f, "t2");

	pthread_mutex_lock(&f->fm.lock);
	snprintf(f->fm.reject_task, sizeof(f->fm.reject_task), "t1");
	pthread_mutex_unlock(&f->fm.lock);
	agent_run(f);
	wait_stream_up(f, 1);
	update(f, t1, TASK_RUNNING);
	update(f, t2, TASK_RUNNING);
	fm_wait_updates(&f->fm, 1);
	for (double end = now_mono() + DEADLINE;; sleep_ms(5)) {
		size_t left;

		pthread_mutex_lock(&f->a.lock);
		left = outbox_count_task(&f->a.outbox, "t2") + 10 * outbox_count_task(&f->a.outbox, "t1");
		pthread_mutex_unlock(&f->a.lock);
		if (left == 10)
			break;
		if (now_mono() > end)
			fail_msg("expected only t1's update left (code %zu)", left);
	}
	pthread_mutex_lock(&f->fm.lock);
	f->fm.reject_task[0] = '\0';
	pthread_mutex_unlock(&f->fm.lock);
	fm_wait_updates(&f->fm, 2);
	wait_outbox_empty(f);
	assert_int_equal(f->fs.stream_updates, 2);
}

static void test_calls_answered_as_http(void **state)
{
	struct fx *f = *state;
	json_t *http, *res, *elems, *hres;

	agent_run(f);
	wait_stream_up(f, 1);
	/* over HTTP first: x.1 launched, then refused as a repeat; a launch without a task */
	http = http_batch(f, "/v1/launch", json_pack("{s:[o,o,{s:s}]}", "launches", launch_json("x.1"),
						      launch_json("x.1"), "framework_id", "fw-1"));
	hres = json_object_get(http, "results");
	assert_true(json_is_true(json_object_get(json_array_get(hres, 0), "accepted")));

	/* on the stream: s.1 new, x.1 again, the same bad launch, and not JSON at all */
	elems = json_pack("[o,o,o,o]", elem("s.1", launch_json("s.1")), elem("x.1", launch_json("x.1")),
			  elem("y.1", json_pack("{s:s}", "framework_id", "fw-1")),
			  json_pack("{s:s,s:s}", "task_id", "z.1", "json", "{\"task\":"));
	send_call(f, AF_LAUNCH, 7, elems);
	res = wait_result(f, 7);
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 200);
	assert_int_equal(json_array_size(json_object_get(res, "items")), 4);
	assert_null(item_error(res, 0));
	assert_string_equal(item_error(res, 1), "Task 'x.1' already exists on this agent");
	assert_string_equal(item_error(res, 1),
			    json_string_value(json_object_get(json_array_get(hres, 1), "error")));
	assert_string_equal(item_error(res, 2),
			    json_string_value(json_object_get(json_array_get(hres, 2), "error")));
	assert_non_null(strstr(item_error(res, 3), "Invalid JSON: "));
	pthread_mutex_lock(&f->a.lock);
	assert_non_null(agent_task_find(&f->a, "s.1"));
	assert_int_equal(agent_task_find(&f->a, "s.1")->state, TASK_STAGING);
	pthread_mutex_unlock(&f->a.lock);
	json_decref(res);
	json_decref(elems);
	json_decref(http);

	/* kills: s.1 is killed before it launched (its update follows), nope.1 is unknown */
	http = http_batch(f, "/v1/kill", json_pack("{s:[{s:s}]}", "kills", "task_id", "nope.1"));
	elems = json_pack("[o,o]", elem("s.1", json_pack("{s:s,s:i}", "task_id", "s.1",
							 "grace_period_seconds", 1)),
			  elem("nope.1", json_pack("{s:s}", "task_id", "nope.1")));
	send_call(f, AF_KILL, 8, elems);
	res = wait_result(f, 8);
	assert_null(item_error(res, 0));
	assert_string_equal(item_error(res, 1), "Task 'nope.1' is not known on this agent");
	assert_string_equal(item_error(res, 1), json_string_value(json_object_get(
			    json_array_get(json_object_get(http, "results"), 0), "error")));
	fm_wait_updates(&f->fm, 1);
	pthread_mutex_lock(&f->fm.lock);
	assert_string_equal(json_string_value(json_object_get(json_array_get(f->fm.updates, 0), "state")),
			    "TASK_KILLED");
	pthread_mutex_unlock(&f->fm.lock);
	json_decref(res);
	json_decref(elems);
	json_decref(http);
}

/* Above AGENT_BATCH_MAX elements: one 400 for the call, as the HTTP route answers, and
 * nothing launched; the stream goes on. */
static void test_call_over_the_limit_refused(void **state)
{
	struct fx *f = *state;
	json_t *elems = json_array(), *res;

	agent_run(f);
	wait_stream_up(f, 1);
	for (int i = 0; i <= AGENT_BATCH_MAX; i++)
		json_array_append_new(elems, json_pack("{s:s,s:s}", "task_id", "t", "json", "{}"));
	send_call(f, AF_LAUNCH, 9, elems);
	res = wait_result(f, 9);
	assert_int_equal(json_integer_value(json_object_get(res, "status")), 400);
	assert_string_equal(json_string_value(json_object_get(res, "message")),
			    "/launches holds 4097 elements, at most 4096");
	assert_int_equal(json_array_size(json_object_get(res, "items")), 0);
	json_decref(res);
	json_decref(elems);
	/* still up: a later call is answered */
	elems = json_pack("[o]", elem("k.1", json_pack("{s:s}", "task_id", "k.1")));
	send_call(f, AF_KILL, 10, elems);
	res = wait_result(f, 10);
	assert_string_equal(item_error(res, 0), "Task 'k.1' is not known on this agent");
	assert_int_equal(fs_count(f, &f->fs.hellos), 1);
	json_decref(res);
	json_decref(elems);
}

/* An older master (404 for the stream): status updates go as POSTs; no second try soon. */
static void test_master_without_stream_gets_http(void **state)
{
	struct fx *f = *state;
	struct task *t = add_task(f, "web.1");

	f->fs.refuse = true;
	agent_run(f);
	wait_fs(f, &f->fs.attempts, 1, "stream attempts");
	update(f, t, TASK_RUNNING);
	fm_wait_updates(&f->fm, 1);
	wait_outbox_empty(f);
	assert_int_equal(f->fs.stream_updates, 0);
	assert_int_equal(fs_count(f, &f->fs.hellos), 0);
	/* a registration (kick) asks again at once: still refused, HTTP still works */
	pthread_mutex_lock(&f->fm.lock);
	f->fm.forget_agent = true;
	pthread_mutex_unlock(&f->fm.lock);
	fm_wait_counter(&f->fm, &f->fm.registers, 2, "registers after 404");
	wait_fs(f, &f->fs.attempts, 2, "stream attempts after registering again");
	update(f, t, TASK_FINISHED);
	fm_wait_updates(&f->fm, 2);
	wait_outbox_empty(f);
	assert_int_equal(f->fs.stream_updates, 0);
}

/* The stream breaks with a batch in flight: the batch counts as unanswered, the stream
 * reopens after the backoff and the update is delivered. */
static void test_broken_stream_resends_batch(void **state)
{
	struct fx *f = *state;
	struct task *t = add_task(f, "web.1");

	agent_run(f);
	wait_stream_up(f, 1);
	pthread_mutex_lock(&f->fs.mu);
	f->fs.drop_next_status = true;
	pthread_mutex_unlock(&f->fs.mu);
	update(f, t, TASK_RUNNING);
	wait_fs(f, &f->fs.hellos, 2, "hellos after the stream broke");
	fm_wait_updates(&f->fm, 1);
	wait_outbox_empty(f);
	pthread_mutex_lock(&f->fm.lock);
	assert_int_equal(json_array_size(f->fm.updates), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(f->fm.updates, 0), "state")),
			    "TASK_RUNNING");
	pthread_mutex_unlock(&f->fm.lock);
}

/* 'E' 404 (the master does not know the agent): the agent registers again, reopens. */
static void test_error_frame_registers_again_and_reopens(void **state)
{
	struct fx *f = *state;
	struct task *t = add_task(f, "web.1");

	agent_run(f);
	wait_stream_up(f, 1);
	fm_wait_counter(&f->fm, &f->fm.registers, 1, "registers");
	pthread_mutex_lock(&f->fs.mu);
	f->fs.error_next_status = true;
	pthread_mutex_unlock(&f->fs.mu);
	update(f, t, TASK_RUNNING);
	fm_wait_counter(&f->fm, &f->fm.registers, 2, "registers after the error");
	wait_stream_up(f, 2);
	fm_wait_updates(&f->fm, 1);
	wait_outbox_empty(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_call_answers_are_the_http_ones),
		cmocka_unit_test_setup_teardown(test_status_goes_on_the_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_update_stays_until_acknowledged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_calls_answered_as_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_over_the_limit_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_without_stream_gets_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_stream_resends_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_frame_registers_again_and_reopens, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
