/* agent_fixture.h - a scripted master for the agent's tests (tests/unit/test_agent_*.c):
 * a real HTTP server answering the agent<->master protocol, recording what it receives,
 * with switches to fail status updates, forget the agent, or ask for kills. */
#ifndef PACER_TESTS_AGENT_FIXTURE_H
#define PACER_TESTS_AGENT_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/http_server.h"
#include "lib/util.h"

#define DEADLINE 10.0


struct fake_master {
	pthread_mutex_t lock;
	struct http_server *srv;
	uint16_t port;
	int registers, heartbeats;
	int fail_status;          /* answer this many status calls with 500 */
	bool forget_agent;        /* answer the next heartbeat with 404 */
	char reject_task[64];     /* batch form: refuse (not acknowledge) this task's updates */
	size_t max_batch;         /* most updates one status call carried */
	json_t *kill_on_register; /* array of task ids */
	json_t *updates;          /* every update received, in arrival order */
	json_t *last_register;
};

static inline void fm_register(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct fake_master *fm = ctx;
	json_t *body = http_body_json(req, resp);

	if (!body)
		return;
	pthread_mutex_lock(&fm->lock);
	fm->registers++;
	json_decref(fm->last_register);
	fm->last_register = json_incref(body);
	http_respond_json(resp, 200, json_pack("{s:O, s:f, s:O}", "agent_id", json_object_get(body, "agent_id"),
					       "heartbeat_interval_seconds", 0.2, "kill_tasks", fm->kill_on_register));
	json_array_clear(fm->kill_on_register);
	pthread_mutex_unlock(&fm->lock);
	json_decref(body);
}

static inline void fm_heartbeat(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct fake_master *fm = ctx;

	(void)req;
	pthread_mutex_lock(&fm->lock);
	fm->heartbeats++;
	if (fm->forget_agent) {
		fm->forget_agent = false;
		http_respond_error(resp, 404, "unknown agent");
	} else {
		http_respond_json(resp, 200, json_pack("{s:[]}", "kill_tasks"));
	}
	pthread_mutex_unlock(&fm->lock);
}

/* Both forms: {"update"} -> {"acknowledged"}, {"updates":[...]} -> {"results":[...]}. */
static inline void fm_status(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct fake_master *fm = ctx;
	json_t *body = http_body_json(req, resp), *update, *updates, *results;
	size_t i;

	if (!body)
		return;
	update = json_object_get(body, "update");
	updates = json_object_get(body, "updates");
	pthread_mutex_lock(&fm->lock);
	if (fm->fail_status > 0) {
		fm->fail_status--;
		http_respond_error(resp, 500, "store unavailable");
	} else if (updates) {
		results = json_array();
		if (json_array_size(updates) > fm->max_batch)
			fm->max_batch = json_array_size(updates);
		json_array_foreach(updates, i, update) {
			if (strcmp(json_string_value(json_object_get(update, "task_id")) ?: "",
				   fm->reject_task) == 0) {
				json_array_append_new(results, json_pack("{s:O,s:s}", "uuid",
						      json_object_get(update, "uuid"), "error", "refused"));
				continue;
			}
			json_array_append(fm->updates, update);
			json_array_append_new(results, json_pack("{s:O,s:b}", "uuid",
					      json_object_get(update, "uuid"), "acknowledged", 1));
		}
		http_respond_json(resp, 200, json_pack("{s:o}", "results", results));
	} else {
		json_array_append(fm->updates, update);
		http_respond_json(resp, 200, json_pack("{s:O}", "acknowledged", json_object_get(update, "uuid")));
	}
	pthread_mutex_unlock(&fm->lock);
	json_decref(body);
}

static inline void fm_start(struct fake_master *fm, uint16_t port)
{
	char err[256];

	fm->srv = http_server_start("127.0.0.1", port, err, sizeof(err));
	assert_non_null(fm->srv);
	fm->port = http_server_port(fm->srv);
	assert_int_equal(http_server_route(fm->srv, "POST", "/internal/v1/register", fm_register, fm), 0);
	assert_int_equal(http_server_route(fm->srv, "POST", "/internal/v1/heartbeat", fm_heartbeat, fm), 0);
	assert_int_equal(http_server_route(fm->srv, "POST", "/internal/v1/status", fm_status, fm), 0);
}

static inline void fm_stop(struct fake_master *fm)
{
	if (fm->srv)
		http_server_stop(fm->srv);
	fm->srv = NULL;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits (with a deadline) until the master has received n updates. */
static inline void fm_wait_updates(struct fake_master *fm, size_t n)
{
	double end = now_mono() + DEADLINE;

	for (;;) {
		size_t got;

		pthread_mutex_lock(&fm->lock);
		got = json_array_size(fm->updates);
		pthread_mutex_unlock(&fm->lock);
		if (got >= n)
			return;
		if (now_mono() > end)
			fail_msg("master received %zu updates, expected %zu", got, n);
		sleep_ms(10);
	}
}

static inline void fm_wait_counter(struct fake_master *fm, int *counter, int n, const char *what)
{
	double end = now_mono() + DEADLINE;

	for (;;) {
		int got;

		pthread_mutex_lock(&fm->lock);
		got = *counter;
		pthread_mutex_unlock(&fm->lock);
		if (got >= n)
			return;
		if (now_mono() > end)
			fail_msg("%s: %d, expected %d", what, got, n);
		sleep_ms(10);
	}
}

static inline void fm_init(struct fake_master *fm)
{
	memset(fm, 0, sizeof(*fm));
	pthread_mutex_init(&fm->lock, NULL);
	fm->updates = json_array();
	fm->kill_on_register = json_array();
}

static inline void fm_free(struct fake_master *fm)
{
	fm_stop(fm);
	json_decref(fm->updates);
	json_decref(fm->kill_on_register);
	json_decref(fm->last_register);
	pthread_mutex_destroy(&fm->lock);
}

#endif
