/* heartbeat_wire.c - the streaming reader of the agents' heartbeat bodies (see
 * heartbeat_wire.h): the body's, a task reference's and its stats' own keys on top of the
 * scanner of lib/json_scan.h, one pass, no JSON tree, the ids decoded into one arena. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_scan.h"
#include "master/heartbeat_wire.h"

#define K JS_KEY

struct ctx {
	struct heartbeat *hb;
	size_t cap;
	unsigned seen;
};

/* ---- stats ---- */

struct stats_ctx {
	struct task_ref *r;
	unsigned seen;
};

/* tasks.c's counter(): an integer > 0 as it is, a real in (0, 1.8e19) truncated, else 0. */
static uint64_t counter(const struct js_value *v)
{
	if (v->type == JS_INT)
		return v->i > 0 ? (uint64_t)v->i : 0;
	if (v->type == JS_REAL && v->d > 0 && v->d < 1.8e19)
		return (uint64_t)v->d;
	return 0;
}

static int stats_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const struct js_key keys[] = {
		K("rx_bytes"), K("tx_bytes"), K("rx_packets"), K("tx_packets"),
	};
	struct stats_ctx *sc = arg;
	int k = js_key_index(keys, 4, key, klen), rc;
	uint64_t *fields[] = { &sc->r->rx_bytes, &sc->r->tx_bytes, &sc->r->rx_packets,
			       &sc->r->tx_packets };
	struct js_value v;

	if (k < 0)
		return js_skip(js);
	if (sc->seen & (1u << k))
		return js_fail(js, "duplicate key in a task's stats");
	sc->seen |= 1u << k;
	if ((rc = js_value(js, &v, false)))
		return rc;
	*fields[k] = counter(&v);
	return 0;
}

/* ---- a task reference ---- */

enum { R_TASK_ID, R_STATE, R_STATS, R_N };

struct ref_ctx {
	struct task_ref *r;
	unsigned seen;
};

static int ref_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const struct js_key keys[R_N] = { K("task_id"), K("state"), K("stats") };
	struct ref_ctx *rx = arg;
	int k = js_key_index(keys, R_N, key, klen), err;
	struct stats_ctx sc = { .r = rx->r };
	struct js_value v;

	if (k < 0)
		return js_skip(js);
	if (rx->seen & (1u << k))
		return js_fail(js, "duplicate key in a task reference");
	rx->seen |= 1u << k;
	if (k == R_STATS) {
		if (!js_at(js, '{'))
			return js_skip(js);
		rx->r->has_stats = true;
		return js_object(js, stats_member, &sc);
	}
	if ((err = js_value(js, &v, true)))
		return err;
	if (v.type == JS_STRING) {
		if (k == R_TASK_ID)
			rx->r->task_id = v.s;
		else
			rx->r->state = v.s;
	}
	return 0;
}

static int ref_element(struct js_scan *js, size_t idx, void *arg)
{
	struct ctx *c = arg;
	struct heartbeat *hb = c->hb;
	struct ref_ctx rx = { 0 };

	(void)idx;
	if (hb->ntasks == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct task_ref *g = realloc(hb->tasks, cap * sizeof(*g));

		if (!g)
			return js_nomem(js);
		hb->tasks = g;
		c->cap = cap;
	}
	rx.r = &hb->tasks[hb->ntasks++];
	memset(rx.r, 0, sizeof(*rx.r));
	if (!js_at(js, '{'))
		return js_skip(js);
	return js_object(js, ref_member, &rx);
}

/* ---- the body ---- */

enum { B_AGENT_ID, B_TASKS, B_N };

static int body_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const struct js_key keys[B_N] = { K("agent_id"), K("tasks") };
	struct ctx *c = arg;
	int k = js_key_index(keys, B_N, key, klen), rc;
	struct js_value v;

	if (k < 0)
		return js_skip(js);
	if (c->seen & (1u << k))
		return js_fail(js, "duplicate key in the body");
	c->seen |= 1u << k;
	if (k == B_TASKS) {
		c->hb->has_tasks = true;
		if (!js_at(js, '['))
			return js_skip(js);
		c->hb->tasks_array = true;
		return js_array(js, ref_element, c);
	}
	if ((rc = js_value(js, &v, true)))
		return rc;
	if (v.type == JS_STRING)
		c->hb->agent_id = v.s;
	return 0;
}

void heartbeat_wire_free(struct heartbeat *hb)
{
	free(hb->tasks);
	free(hb->arena);
	memset(hb, 0, sizeof(*hb));
}

int heartbeat_wire_parse(const char *body, size_t len, struct heartbeat *hb, bool *syntax,
			 char *err, size_t errlen)
{
	struct ctx c = { .hb = hb };
	int rc;

	memset(hb, 0, sizeof(*hb));
	*syntax = true;
	hb->arena = malloc(len + 1);
	if (!hb->arena)
		return -ENOMEM;
	rc = js_object_body(body, len, hb->arena, HEARTBEAT_WIRE_MAX_DEPTH, body_member, &c,
			    syntax, err, errlen);
	if (rc)
		heartbeat_wire_free(hb);
	return rc;
}
