/* usage_wire.c - a streaming reader for the agents' usage batches (see usage_wire.h): the
 * batch's own keys and verdicts on top of the scanner of lib/json_scan.h (one pass, no JSON
 * tree). The three ids are decoded into one arena (decoded text is never longer than its
 * JSON form); every other string is only validated (escapes, UTF-8), and unknown values of
 * any shape are skipped. Why not jansson: it has no streaming API, and a DOM of one 4 KB
 * batch costs ~58 us to build, twice the master's whole per-batch budget. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_scan.h"
#include "master/usage_wire.h"

enum { K_TASK_ID = USAGE_NFIELDS, K_APP_ID, K_FINAL, K_AT, K_NREPORT };

/* Index of a report key (a counter's index, or K_*), -1 if unknown. hint: the key most
 * likely here (agents send the fields in table order). */
static int report_key(const char *key, size_t klen, int hint)
{
#define K(s) { s, sizeof(s) - 1 }
	static const struct { const char *name; size_t len; } keys[K_NREPORT] = {
		K("rx_bytes"), K("tx_bytes"), K("rx_packets"), K("tx_packets"), K("tcp_connects"),
		K("tcp_accepts"), K("udp_rx_datagrams"), K("udp_tx_datagrams"), K("policy_denials"),
		K("cpu_ns"), K("vfs_read_bytes"), K("vfs_write_bytes"), K("oom_kills"), K("mem_bytes"),
		K("mem_peak_bytes"), K("task_id"), K("app_id"), K("final"), K("at"),
	};
#undef K

	if (!key)
		return -1;
	for (int n = 0; n < K_NREPORT; n++) {
		int i = (hint + n) % K_NREPORT;

		if (keys[i].len == klen && memcmp(keys[i].name, key, klen) == 0)
			return i;
	}
	return -1;
}

struct report_ctx {
	struct usage_reading *r;
	uint32_t seen, bad;
	int hint;
};

static int report_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	struct report_ctx *c = arg;
	int k = report_key(key, klen, c->hint);
	struct js_value v;
	int rc;

	if (k < 0)
		return js_skip(js);
	c->hint = k + 1;
	if (c->seen & (1u << k))
		return js_fail(js, "duplicate key in a report");
	c->seen |= 1u << k;
	if ((rc = js_value(js, &v, k == K_TASK_ID || k == K_APP_ID)))
		return rc;
	switch (k) {
	case K_TASK_ID:
		if (v.type == JS_STRING && v.slen > 0 && v.slen <= USAGE_TASK_ID_MAX)
			c->r->task_id = v.s;
		else
			c->bad |= 1u << k;
		break;
	case K_APP_ID:
		if (v.type == JS_STRING)
			c->r->app_id = v.s;
		break;
	case K_FINAL:
		if (v.type == JS_TRUE || v.type == JS_FALSE)
			c->r->final = v.type == JS_TRUE;
		else
			c->bad |= 1u << k;
		break;
	case K_AT:
		if (v.type == JS_INT || v.type == JS_REAL) {
			c->r->has_at = true;
			c->r->at = v.d;
		} else
			c->bad |= 1u << k;
		break;
	default:
		if (v.type == JS_INT && v.i >= 0)
			c->r->counters[k] = v.i;
		else
			c->bad |= 1u << k;
	}
	return 0;
}

/* The first problem of a report, in the order the master always checked them. */
static void report_verdict(struct usage_reading *r, uint32_t bad)
{
	if (!r->task_id || (bad & (1u << K_TASK_ID))) {
		r->bad_name = "task_id";
		r->bad_what = "must be a task id";
	} else if (bad & (1u << K_FINAL)) {
		r->bad_name = "final";
		r->bad_what = "must be a boolean";
	} else if (bad & (1u << K_AT)) {
		r->bad_name = "at";
		r->bad_what = "must be a number (wall seconds)";
	} else {
		for (int i = 0; i < USAGE_NFIELDS; i++)
			if (bad & (1u << i)) {
				r->bad_name = usage_frame_fields[i];
				r->bad_what = "must be a non-negative integer";
				break;
			}
	}
}

struct batch_ctx {
	struct usage_batch *b;
	size_t cap;
	unsigned seen;
	bool seq_ok, reports_ok, too_many;
};

static int report_element(struct js_scan *js, size_t idx, void *arg)
{
	struct batch_ctx *c = arg;
	struct report_ctx rc = { 0 };
	int err;

	(void)idx;
	if (c->b->nreports == USAGE_WIRE_MAX_REPORTS) {
		c->too_many = true;
		return js_skip(js);
	}
	if (c->b->nreports == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct usage_reading *r = realloc(c->b->reports, cap * sizeof(*r));

		if (!r)
			return js_nomem(js);
		c->b->reports = r;
		c->cap = cap;
	}
	rc.r = &c->b->reports[c->b->nreports++];
	memset(rc.r, 0, sizeof(*rc.r));
	if (js->p >= js->end || *js->p != '{') {
		rc.r->bad_name = "task_id";
		rc.r->bad_what = "must be a task id";
		return js_skip(js);
	}
	if ((err = js_object(js, report_member, &rc)))
		return err;
	report_verdict(rc.r, rc.bad);
	return 0;
}

static int batch_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	static const char *const keys[] = { "agent_id", "seq", "reports" };
	struct batch_ctx *c = arg;
	struct js_value v;
	int k = -1, rc;

	for (int i = 0; key && i < 3; i++)
		if (strlen(keys[i]) == klen && memcmp(keys[i], key, klen) == 0)
			k = i;
	if (k < 0)
		return js_skip(js);
	if (c->seen & (1u << k))
		return js_fail(js, "duplicate key in the batch");
	c->seen |= 1u << k;
	if (k == 2 && js->p < js->end && *js->p == '[') {
		c->reports_ok = true;
		return js_array(js, report_element, c);
	}
	if ((rc = js_value(js, &v, k == 0)))
		return rc;
	if (k == 0 && v.type == JS_STRING && v.slen > 0)
		c->b->agent_id = v.s;
	if (k == 1 && v.type == JS_INT && v.i > 0) {
		c->b->seq = (uint64_t)v.i;
		c->seq_ok = true;
	}
	return 0;
}

void usage_wire_free(struct usage_batch *b)
{
	free(b->reports);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

/* The document: a batch object; any other array is read (the top-level checks refuse
 * it), any other value is not JSON here. */
static int top(struct js_scan *js, void *arg)
{
	if (*js->p == '{')
		return js_object(js, batch_member, arg);
	if (*js->p == '[')
		return js_skip(js);
	return js_fail(js, "'[' or '{' expected");
}

int usage_wire_parse(const char *body, size_t len, struct usage_batch *b, bool *syntax,
		     char *err, size_t errlen)
{
	struct batch_ctx c = { .b = b };
	struct js_scan js;
	int rc;

	memset(b, 0, sizeof(*b));
	*syntax = true;
	b->arena = malloc(len + 1);
	if (!b->arena)
		return -ENOMEM;
	js_init(&js, body, len, b->arena, USAGE_WIRE_MAX_DEPTH);
	rc = js_document(&js, top, &c);
	if (rc == -ENOMEM) {
		usage_wire_free(b);
		return -ENOMEM;
	}
	if (rc == -ENODATA) {
		snprintf(err, errlen, "Request body is empty; a JSON document is expected");
		goto fail;
	}
	if (rc) {
		js_where(&js, err, errlen);
		goto fail;
	}
	*syntax = false;
	if (!b->agent_id) {
		snprintf(err, errlen, "agent_id is missing");
		goto fail;
	}
	if (!c.seq_ok) {
		snprintf(err, errlen, "seq must be an integer > 0");
		goto fail;
	}
	if (!c.reports_ok) {
		snprintf(err, errlen, "reports must be an array");
		goto fail;
	}
	if (c.too_many) {
		snprintf(err, errlen, "reports: at most %d per batch", USAGE_WIRE_MAX_REPORTS);
		goto fail;
	}
	return 0;
fail:
	usage_wire_free(b);
	return -EINVAL;
}
