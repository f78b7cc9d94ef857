/* status_wire.c - the streaming reader of the agents' status bodies (see status_wire.h): the
 * body's, an update's and a health check's own keys on top of the scanner of
 * lib/json_scan.h, one pass, no JSON tree. The strings the master uses are decoded into one
 * arena; the health checks of all updates go into one array, in document order, and the
 * updates point into it once the body is read (the array moves while it grows). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_scan.h"
#include "master/status_wire.h"

#define K JS_KEY

struct ctx {
	struct status_batch *b;
	size_t ucap, ccap, nchecks;  /* updates and checks allocated; checks used */
	size_t nelems;              /* elements of "updates", also those past the limit */
	unsigned seen;              /* the body's keys met */
	bool update_obj, updates_arr;
};

/* ---- a health check ---- */

enum { C_ALIVE, C_CONSECUTIVE_FAILURES, C_FIRST_SUCCESS, C_LAST_SUCCESS, C_LAST_FAILURE,
       C_LAST_FAILURE_CAUSE, C_N };

struct check_ctx {
	struct status_check *c;
	unsigned seen;
};

static int check_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const struct js_key keys[C_N] = {
		K("alive"), K("consecutive_failures"), K("first_success"), K("last_success"),
		K("last_failure"), K("last_failure_cause"),
	};
	struct check_ctx *cc = arg;
	int k = js_key_index(keys, C_N, key, klen), rc;
	struct js_value v;
	double *num = NULL;

	if (k < 0)
		return js_skip(js);
	if (cc->seen & (1u << k))
		return js_fail(js, "duplicate key in a health check");
	cc->seen |= 1u << k;
	if ((rc = js_value(js, &v, k == C_LAST_FAILURE_CAUSE)))
		return rc;
	switch (k) {
	case C_ALIVE:
		if (v.type == JS_TRUE || v.type == JS_FALSE)
			cc->c->alive = v.type == JS_TRUE;
		return 0;
	case C_LAST_FAILURE_CAUSE:
		if (v.type == JS_STRING)
			cc->c->last_failure_cause = v.s;
		return 0;
	case C_CONSECUTIVE_FAILURES: num = &cc->c->consecutive_failures; break;
	case C_FIRST_SUCCESS: num = &cc->c->first_success; break;
	case C_LAST_SUCCESS: num = &cc->c->last_success; break;
	default: num = &cc->c->last_failure; break;
	}
	if (v.type == JS_INT || v.type == JS_REAL)
		*num = v.d;
	return 0;
}

struct update_ctx {
	struct ctx *c;
	struct status_update *u;
	unsigned seen;
};

static int check_element(struct js_scan *js, size_t idx, void *arg)
{
	struct update_ctx *uc = arg;
	struct ctx *c = uc->c;
	struct check_ctx cc = { 0 };

	(void)idx;
	if (uc->u->nchecks == STATUS_WIRE_MAX_CHECKS)
		return js_skip(js);
	if (c->nchecks == c->ccap) {
		size_t cap = c->ccap ? c->ccap * 2 : 16;
		struct status_check *g = realloc(c->b->checks, cap * sizeof(*g));

		if (!g)
			return js_nomem(js);
		c->b->checks = g;
		c->ccap = cap;
	}
	cc.c = &c->b->checks[c->nchecks++];
	*cc.c = (struct status_check){ .alive = -1 };
	uc->u->nchecks++;
	if (!js_at(js, '{'))
		return js_skip(js);
	return js_object(js, check_member, &cc);
}

/* ---- an update ---- */

enum { U_UUID, U_TASK_ID, U_STATE, U_REASON, U_MESSAGE, U_TIMESTAMP, U_EXIT_CODE, U_SIGNAL,
       U_HEALTHY, U_HEALTH_CHECKS, U_N };

static int update_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const struct js_key keys[U_N] = {
		K("uuid"), K("task_id"), K("state"), K("reason"), K("message"), K("timestamp"),
		K("exit_code"), K("signal"), K("healthy"), K("health_checks"),
	};
	struct update_ctx *uc = arg;
	struct status_update *u = uc->u;
	int k = js_key_index(keys, U_N, key, klen), rc;
	struct js_value v;

	if (k < 0)
		return js_skip(js);
	if (uc->seen & (1u << k))
		return js_fail(js, "duplicate key in an update");
	uc->seen |= 1u << k;
	if (k == U_HEALTH_CHECKS)
		return js_at(js, '[') ? js_array(js, check_element, uc) : js_skip(js);
	if ((rc = js_value(js, &v, k <= U_MESSAGE)))
		return rc;
	switch (k) {
	case U_UUID: case U_TASK_ID: case U_STATE: case U_REASON: case U_MESSAGE:
		if (v.type == JS_STRING) {
			const char **f[] = { &u->uuid, &u->task_id, &u->state, &u->reason, &u->message };

			*f[k] = v.s;
		}
		break;
	case U_TIMESTAMP:
		if (v.type == JS_INT || v.type == JS_REAL)
			u->timestamp = v.d;
		break;
	case U_EXIT_CODE:
		if (v.type == JS_INT) {
			u->has_exit_code = true;
			u->exit_code = v.i;
		}
		break;
	case U_SIGNAL:
		if (v.type == JS_INT) {
			u->has_signal = true;
			u->signal = v.i;
		}
		break;
	default:        /* U_HEALTHY */
		if (v.type == JS_TRUE || v.type == JS_FALSE) {
			u->has_healthy = true;
			u->healthy = v.type == JS_TRUE;
		}
	}
	return 0;
}

/* One more update in the batch, zeroed; NULL without memory (recorded). */
static struct status_update *new_update(struct js_scan *js, struct ctx *c)
{
	struct status_batch *b = c->b;

	if (b->nupdates == c->ucap) {
		size_t cap = c->ucap ? c->ucap * 2 : 16;
		struct status_update *g = realloc(b->updates, cap * sizeof(*g));

		if (!g) {
			js_nomem(js);
			return NULL;
		}
		b->updates = g;
		c->ucap = cap;
	}
	memset(&b->updates[b->nupdates], 0, sizeof(b->updates[0]));
	return &b->updates[b->nupdates++];
}

/* An update at js->p: an object is read into a new update; any other value is skipped and
 * leaves one with every field absent. */
static int update(struct js_scan *js, struct ctx *c)
{
	struct update_ctx uc = { .c = c };

	uc.u = new_update(js, c);
	if (!uc.u)
		return -ENOMEM;
	if (!js_at(js, '{'))
		return js_skip(js);
	return js_object(js, update_member, &uc);
}

static int update_element(struct js_scan *js, size_t idx, void *arg)
{
	struct ctx *c = arg;

	(void)idx;
	if (++c->nelems > STATUS_BATCH_MAX)
		return js_skip(js);     /* counted for the route's message, not kept */
	return update(js, c);
}

/* ---- the body ---- */

enum { B_AGENT_ID, B_UPDATE, B_UPDATES, B_N };

static int body_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const struct js_key keys[B_N] = { K("agent_id"), K("update"), K("updates") };
	struct ctx *c = arg;
	int k = js_key_index(keys, B_N, key, klen), rc;
	struct js_value v;

	if (k < 0)
		return js_skip(js);
	if (c->seen & (1u << k))
		return js_fail(js, "duplicate key in the body");
	c->seen |= 1u << k;
	switch (k) {
	case B_AGENT_ID:
		if ((rc = js_value(js, &v, true)))
			return rc;
		if (v.type == JS_STRING)
			c->b->agent_id = v.s;
		return 0;
	case B_UPDATE:
		if (!js_at(js, '{'))
			return js_skip(js);
		c->update_obj = true;
		return update(js, c);
	default:
		if (!js_at(js, '['))
			return js_skip(js);
		c->updates_arr = true;
		return js_array(js, update_element, c);
	}
}

void status_wire_free(struct status_batch *b)
{
	free(b->updates);
	free(b->checks);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

/* The route's verdict on a body that is JSON, as h_status reached it from the tree. */
static int verdict(struct ctx *c, char *err, size_t errlen)
{
	struct status_batch *b = c->b;
	bool has_update = c->seen & (1u << B_UPDATE), has_updates = c->seen & (1u << B_UPDATES);

	if (b->agent_id && c->updates_arr && !has_update) {
		if (c->nelems > STATUS_BATCH_MAX) {
			snprintf(err, errlen, "invalid status: 'updates' holds %zu updates, at most %d",
				 c->nelems, STATUS_BATCH_MAX);
			return -EINVAL;
		}
		return 0;
	}
	if (!b->agent_id || !c->update_obj || has_updates) {
		snprintf(err, errlen, "invalid status: needs 'agent_id' (string) and either 'update' "
			 "(object) or 'updates' (array)");
		return -EINVAL;
	}
	b->single = true;
	return 0;
}

int status_wire_parse(const char *body, size_t len, struct status_batch *b, bool *syntax,
		      char *err, size_t errlen)
{
	struct ctx c = { .b = b };
	size_t at = 0;
	int rc;

	memset(b, 0, sizeof(*b));
	*syntax = true;
	b->arena = malloc(len + 1);
	if (!b->arena)
		return -ENOMEM;
	rc = js_object_body(body, len, b->arena, STATUS_WIRE_MAX_DEPTH, body_member, &c, syntax,
			    err, errlen);
	if (rc)
		goto out;
	if ((rc = verdict(&c, err, errlen)))
		goto out;
	/* Each update's checks follow the previous update's in the array. */
	for (size_t i = 0; i < b->nupdates; i++) {
		b->updates[i].checks = b->updates[i].nchecks ? b->checks + at : NULL;
		at += b->updates[i].nchecks;
	}
	return 0;
out:
	status_wire_free(b);
	return rc;
}
