/* usage_wire.c - a streaming reader for the agents' usage batches (see usage_wire.h): one
 * pass over the body, recursive descent, no JSON tree. The three ids are decoded into one
 * arena (decoded text is never longer than its JSON form); every other string is only
 * validated (escapes, UTF-8), and unknown values of any shape are skipped. Why not jansson:
 * it has no streaming API, and a DOM of one 4 KB batch costs ~58 us to build, twice the
 * master's whole per-batch budget. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "master/usage_wire.h"


enum vtype { V_STRING, V_INT, V_REAL, V_TRUE, V_FALSE, V_NULL, V_OBJECT, V_ARRAY };

struct value {
	enum vtype type;
	int64_t i;                  /* V_INT */
	double d;                   /* V_INT and V_REAL */
	const char *s;              /* V_STRING, when kept */
	size_t slen;
};

struct parser {
	const char *start, *p, *end;
	char *arena;
	size_t used;
	int depth;
	const char *err;            /* the first syntax error, and where */
	const char *err_at;
};

static int fail(struct parser *ps, const char *what)
{
	if (!ps->err) {
		ps->err = what;
		ps->err_at = ps->p;
	}
	return -EINVAL;
}

static void ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* \uXXXX at p (p at the backslash): the code unit, or -1. */
static long hex4(const char *p, const char *end)
{
	long v = 0;

	if (end - p < 6 || p[1] != 'u')
		return -1;
	for (int i = 2; i < 6; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t utf8_put(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at ps->p (the opening quote). With out, decodes into it (NUL-terminated) and
 * sets *outlen, or *outlen = SIZE_MAX when it needs more than cap - 1 bytes (then the
 * string is still validated to its end). */
static int string(struct parser *ps, char *out, size_t cap, size_t *outlen)
{
	const char *p = ps->p + 1, *end = ps->end;
	size_t n = 0;
	bool over = false;

	for (;;) {
		const char *run = p;
		char buf[4];
		size_t k;

		while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 &&
		       (unsigned char)*p < 0x80)
			p++;
		if (out && !over) {
			if ((size_t)(p - run) >= cap - n)
				over = true;
			else {
				memcpy(out + n, run, (size_t)(p - run));
				n += (size_t)(p - run);
			}
		}
		if (p >= end) {
			ps->p = p;
			return fail(ps, "premature end of input in a string");
		}
		if (*p == '"')
			break;
		if ((unsigned char)*p < 0x20) {
			ps->p = p;
			return fail(ps, "control character in a string");
		}
		if (*p == '\\') {
			long cp;

			if (end - p < 2) {
				ps->p = p;
				return fail(ps, "premature end of input in a string");
			}
			k = 1;
			switch (p[1]) {
			case '"': buf[0] = '"'; break;
			case '\\': buf[0] = '\\'; break;
			case '/': buf[0] = '/'; break;
			case 'b': buf[0] = '\b'; break;
			case 'f': buf[0] = '\f'; break;
			case 'n': buf[0] = '\n'; break;
			case 'r': buf[0] = '\r'; break;
			case 't': buf[0] = '\t'; break;
			case 'u':
				cp = hex4(p, end);
				if (cp < 0) {
					ps->p = p;
					return fail(ps, "invalid \\u escape");
				}
				if (cp >= 0xdc00 && cp <= 0xdfff) {
					ps->p = p;
					return fail(ps, "invalid Unicode: a lone low surrogate");
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					long lo = end - p >= 12 && p[6] == '\\' ? hex4(p + 6, end) : -1;

					if (lo < 0xdc00 || lo > 0xdfff) {
						ps->p = p;
						return fail(ps, "invalid Unicode: a high surrogate without its pair");
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
				if (cp == 0) {
					ps->p = p;
					return fail(ps, "\\u0000 is not allowed");
				}
				k = utf8_put(buf, (unsigned long)cp);
				p += 4;
				break;
			default:
				ps->p = p;
				return fail(ps, "invalid escape");
			}
			p += 2;
		} else {
			k = utf8_seq_len((const unsigned char *)p, (const unsigned char *)end);
			if (!k) {
				ps->p = p;
				return fail(ps, "invalid UTF-8 in a string");
			}
			memcpy(buf, p, k);
			p += k;
		}
		if (out && !over) {
			if (k >= cap - n)
				over = true;
			else {
				memcpy(out + n, buf, k);
				n += k;
			}
		}
	}
	ps->p = p + 1;
	if (out) {
		if (!over)
			out[n] = '\0';
		*outlen = over ? SIZE_MAX : n;
	}
	return 0;
}

static bool digit(struct parser *ps, const char *p)
{
	return p < ps->end && *p >= '0' && *p <= '9';
}

/* A number, checked as jansson does: an integer (no fraction, no exponent) must fit in
 * int64, a real must not overflow to infinity. */
static int number(struct parser *ps, struct value *v)
{
	const char *s = ps->p, *p = s;
	bool neg = false, real = false;

	if (p < ps->end && *p == '-') {
		neg = true;
		p++;
	}
	if (!digit(ps, p))
		return fail(ps, "invalid number");
	if (*p == '0')
		p++;
	else
		while (digit(ps, p))
			p++;
	if (p < ps->end && *p == '.') {
		real = true;
		if (!digit(ps, ++p)) {
			ps->p = p;
			return fail(ps, "invalid number");
		}
		while (digit(ps, p))
			p++;
	}
	if (p < ps->end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < ps->end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(ps, p)) {
			ps->p = p;
			return fail(ps, "invalid number");
		}
		while (digit(ps, p))
			p++;
	}
	if (!real) {
		uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

		for (const char *q = s + neg; q < p; q++) {
			unsigned d = (unsigned)(*q - '0');

			if (u > (lim - d) / 10)
				return fail(ps, "too big integer");
			u = u * 10 + d;
		}
		v->type = V_INT;
		v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
		v->d = (double)v->i;
	} else {
		size_t n = (size_t)(p - s);
		char small[64], *buf = n < sizeof(small) ? small : malloc(n + 1);

		if (!buf)
			return fail(ps, "out of memory");
		memcpy(buf, s, n);
		buf[n] = '\0';
		v->type = V_REAL;
		v->d = strtod(buf, NULL);
		if (buf != small)
			free(buf);
		if (isinf(v->d))
			return fail(ps, "real number overflow");
	}
	ps->p = p;
	return 0;
}

static int literal(struct parser *ps, const char *word, enum vtype t, struct value *v)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, "invalid token");
	ps->p += n;
	v->type = t;
	return 0;
}

static int value(struct parser *ps, struct value *v, bool keep);

typedef int (*member_fn)(struct parser *ps, const char *key, size_t klen, void *arg);
typedef int (*element_fn)(struct parser *ps, size_t idx, void *arg);

/* An object at ps->p: member() is called with ps->p before each value and must consume
 * it. key is NULL when it is too long to be one of ours. */
static int object(struct parser *ps, member_fn member, void *arg)
{
	char key[32];
	size_t klen;
	int rc;

	if (++ps->depth > USAGE_WIRE_MAX_DEPTH)
		return fail(ps, "nested too deeply");
	ps->p++;
	ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		ws(ps);
		if (ps->p >= ps->end || *ps->p != '"')
			return fail(ps, "string or '}' expected");
		if ((rc = string(ps, key, sizeof(key), &klen)))
			return rc;
		ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return fail(ps, "':' expected");
		ps->p++;
		ws(ps);
		if ((rc = member(ps, klen == SIZE_MAX ? NULL : key, klen, arg)))
			return rc;
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}')
			break;
		return fail(ps, "',' or '}' expected");
	}
	ps->p++;
	ps->depth--;
	return 0;
}

static int array(struct parser *ps, element_fn element, void *arg)
{
	size_t idx = 0;
	int rc;

	if (++ps->depth > USAGE_WIRE_MAX_DEPTH)
		return fail(ps, "nested too deeply");
	ps->p++;
	ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		ws(ps);
		if ((rc = element(ps, idx++, arg)))
			return rc;
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']')
			break;
		return fail(ps, "',' or ']' expected");
	}
	ps->p++;
	ps->depth--;
	return 0;
}

static int skip_member(struct parser *ps, const char *key, size_t klen, void *arg)
{
	struct value v;

	(void)key, (void)klen, (void)arg;
	return value(ps, &v, false);
}

static int skip_element(struct parser *ps, size_t idx, void *arg)
{
	struct value v;

	(void)idx, (void)arg;
	return value(ps, &v, false);
}

/* Any value at ps->p (after whitespace). keep: a string is decoded into the arena. */
static int value(struct parser *ps, struct value *v, bool keep)
{
	ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "premature end of input");
	switch (*ps->p) {
	case '"':
		v->type = V_STRING;
		if (!keep)
			return string(ps, NULL, 0, NULL);
		v->s = ps->arena + ps->used;
		/* The arena holds the whole body: a decoded string and its NUL always fit. */
		if (string(ps, ps->arena + ps->used, (size_t)(ps->end - ps->start) + 1 - ps->used,
			   &v->slen))
			return -EINVAL;
		ps->used += v->slen + 1;
		return 0;
	case '{':
		v->type = V_OBJECT;
		return object(ps, skip_member, NULL);
	case '[':
		v->type = V_ARRAY;
		return array(ps, skip_element, NULL);
	case 't':
		return literal(ps, "true", V_TRUE, v);
	case 'f':
		return literal(ps, "false", V_FALSE, v);
	case 'n':
		return literal(ps, "null", V_NULL, v);
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return number(ps, v);
		return fail(ps, "invalid token");
	}
}

/* ---- the batch's own keys ---- */

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

static int report_member(struct parser *ps, const char *key, size_t klen, void *arg)
{
	struct report_ctx *c = arg;
	int k = report_key(key, klen, c->hint);
	struct value v;
	int rc;

	if (k < 0)
		return skip_member(ps, key, klen, NULL);
	c->hint = k + 1;
	if (c->seen & (1u << k))
		return fail(ps, "duplicate key in a report");
	c->seen |= 1u << k;
	if ((rc = value(ps, &v, k == K_TASK_ID || k == K_APP_ID)))
		return rc;
	switch (k) {
	case K_TASK_ID:
		if (v.type == V_STRING && v.slen > 0 && v.slen <= USAGE_TASK_ID_MAX)
			c->r->task_id = v.s;
		else
			c->bad |= 1u << k;
		break;
	case K_APP_ID:
		if (v.type == V_STRING)
			c->r->app_id = v.s;
		break;
	case K_FINAL:
		if (v.type == V_TRUE || v.type == V_FALSE)
			c->r->final = v.type == V_TRUE;
		else
			c->bad |= 1u << k;
		break;
	case K_AT:
		if (v.type == V_INT || v.type == V_REAL) {
			c->r->has_at = true;
			c->r->at = v.d;
		} else
			c->bad |= 1u << k;
		break;
	default:
		if (v.type == V_INT && v.i >= 0)
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

static int report_element(struct parser *ps, size_t idx, void *arg)
{
	struct batch_ctx *c = arg;
	struct report_ctx rc = { 0 };
	int err;

	(void)idx;
	if (c->b->nreports == USAGE_WIRE_MAX_REPORTS) {
		c->too_many = true;
		return skip_element(ps, idx, NULL);
	}
	if (c->b->nreports == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct usage_reading *r = realloc(c->b->reports, cap * sizeof(*r));

		if (!r)
			return fail(ps, "out of memory");
		c->b->reports = r;
		c->cap = cap;
	}
	rc.r = &c->b->reports[c->b->nreports++];
	memset(rc.r, 0, sizeof(*rc.r));
	if (ps->p >= ps->end || *ps->p != '{') {
		rc.r->bad_name = "task_id";
		rc.r->bad_what = "must be a task id";
		return skip_element(ps, idx, NULL);
	}
	if ((err = object(ps, report_member, &rc)))
		return err;
	report_verdict(rc.r, rc.bad);
	return 0;
}

static int batch_member(struct parser *ps, const char *key, size_t klen, void *arg)
{
	static const char *const keys[] = { "agent_id", "seq", "reports" };
	struct batch_ctx *c = arg;
	struct value v;
	int k = -1, rc;

	for (int i = 0; key && i < 3; i++)
		if (strlen(keys[i]) == klen && memcmp(keys[i], key, klen) == 0)
			k = i;
	if (k < 0)
		return skip_member(ps, key, klen, NULL);
	if (c->seen & (1u << k))
		return fail(ps, "duplicate key in the batch");
	c->seen |= 1u << k;
	if (k == 2 && ps->p < ps->end && *ps->p == '[') {
		c->reports_ok = true;
		return array(ps, report_element, c);
	}
	if ((rc = value(ps, &v, k == 0)))
		return rc;
	if (k == 0 && v.type == V_STRING && v.slen > 0)
		c->b->agent_id = v.s;
	if (k == 1 && v.type == V_INT && v.i > 0) {
		c->b->seq = (uint64_t)v.i;
		c->seq_ok = true;
	}
	return 0;
}

static void where(struct parser *ps, char *err, size_t errlen)
{
	int line = 1, col = 1;

	for (const char *q = ps->start; q < ps->err_at && q < ps->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	snprintf(err, errlen, "%s at line %d column %d", ps->err, line, col);
}

void usage_wire_free(struct usage_batch *b)
{
	free(b->reports);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

int usage_wire_parse(const char *body, size_t len, struct usage_batch *b, bool *syntax,
		     char *err, size_t errlen)
{
	struct parser ps = { .start = body, .p = body, .end = body + len };
	struct batch_ctx c = { .b = b };
	struct value v;
	int rc = -EINVAL;

	memset(b, 0, sizeof(*b));
	*syntax = true;
	ws(&ps);
	if (ps.p == ps.end) {
		snprintf(err, errlen, "Request body is empty; a JSON document is expected");
		return -EINVAL;
	}
	ps.arena = b->arena = malloc(len + 1);
	if (!b->arena)
		return -ENOMEM;
	if (*ps.p == '{')
		rc = object(&ps, batch_member, &c);
	else if (*ps.p == '[')
		rc = value(&ps, &v, false);
	else
		fail(&ps, "'[' or '{' expected");
	if (!rc) {
		ws(&ps);
		if (ps.p < ps.end)
			rc = fail(&ps, "end of file expected");
	}
	if (ps.err) {
		if (strcmp(ps.err, "out of memory") == 0) {
			usage_wire_free(b);
			return -ENOMEM;
		}
		where(&ps, err, errlen);
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
