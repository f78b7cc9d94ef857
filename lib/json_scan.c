/* json_scan.c - the streaming JSON scanner of json_scan.h: whitespace, strings (escapes,
 * surrogate pairs, UTF-8 validation, decoding into the arena), numbers checked as jansson
 * checks them, literals, objects and arrays walked with callbacks, values skipped, the
 * depth limit and the error position. Why not jansson: it has no streaming API, and the
 * DOM of a batch costs several times what the master may spend reading it. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_scan.h"
#include "lib/util.h"

void js_init(struct js_scan *js, const char *body, size_t len, char *arena, int max_depth)
{
	memset(js, 0, sizeof(*js));
	js->start = js->p = body;
	js->end = body + len;
	js->arena = arena;
	js->max_depth = max_depth;
}

int js_fail(struct js_scan *js, const char *what)
{
	if (!js->err) {
		js->err = what;
		js->err_at = js->p;
	}
	return -EINVAL;
}

int js_nomem(struct js_scan *js)
{
	js_fail(js, "out of memory");
	js->nomem = true;
	return -ENOMEM;
}

void js_ws(struct js_scan *js)
{
	while (js->p < js->end && (*js->p == ' ' || *js->p == '\n' || *js->p == '\r' || *js->p == '\t'))
		js->p++;
}

bool js_at(struct js_scan *js, char c)
{
	js_ws(js);
	return js->p < js->end && *js->p == c;
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

/* A string at js->p (the opening quote). With out, decodes into it (NUL-terminated) and
 * sets *outlen, or *outlen = SIZE_MAX when it needs more than cap - 1 bytes (then the
 * string is still validated to its end). */
static int string(struct js_scan *js, char *out, size_t cap, size_t *outlen)
{
	const char *p = js->p + 1, *end = js->end;
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
			js->p = p;
			return js_fail(js, "premature end of input in a string");
		}
		if (*p == '"')
			break;
		if ((unsigned char)*p < 0x20) {
			js->p = p;
			return js_fail(js, "control character in a string");
		}
		if (*p == '\\') {
			long cp;

			if (end - p < 2) {
				js->p = p;
				return js_fail(js, "premature end of input in a string");
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
					js->p = p;
					return js_fail(js, "invalid \\u escape");
				}
				if (cp >= 0xdc00 && cp <= 0xdfff) {
					js->p = p;
					return js_fail(js, "invalid Unicode: a lone low surrogate");
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					long lo = end - p >= 12 && p[6] == '\\' ? hex4(p + 6, end) : -1;

					if (lo < 0xdc00 || lo > 0xdfff) {
						js->p = p;
						return js_fail(js, "invalid Unicode: a high surrogate without its pair");
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
				if (cp == 0) {
					js->p = p;
					return js_fail(js, "\\u0000 is not allowed");
				}
				k = utf8_put(buf, (unsigned long)cp);
				p += 4;
				break;
			default:
				js->p = p;
				return js_fail(js, "invalid escape");
			}
			p += 2;
		} else {
			k = utf8_seq_len((const unsigned char *)p, (const unsigned char *)end);
			if (!k) {
				js->p = p;
				return js_fail(js, "invalid UTF-8 in a string");
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
	js->p = p + 1;
	if (out) {
		if (!over)
			out[n] = '\0';
		*outlen = over ? SIZE_MAX : n;
	}
	return 0;
}

static bool digit(struct js_scan *js, const char *p)
{
	return p < js->end && *p >= '0' && *p <= '9';
}

/* A number, checked as jansson does: an integer (no fraction, no exponent) must fit in
 * int64, a real must not overflow to infinity. */
static int number(struct js_scan *js, struct js_value *v)
{
	const char *s = js->p, *p = s;
	bool neg = false, real = false;

	if (p < js->end && *p == '-') {
		neg = true;
		p++;
	}
	if (!digit(js, p))
		return js_fail(js, "invalid number");
	if (*p == '0')
		p++;
	else
		while (digit(js, p))
			p++;
	if (p < js->end && *p == '.') {
		real = true;
		if (!digit(js, ++p)) {
			js->p = p;
			return js_fail(js, "invalid number");
		}
		while (digit(js, p))
			p++;
	}
	if (p < js->end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < js->end && (*p == '+' || *p == '-'))
			p++;
		if (!digit(js, p)) {
			js->p = p;
			return js_fail(js, "invalid number");
		}
		while (digit(js, p))
			p++;
	}
	if (!real) {
		uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

		for (const char *q = s + neg; q < p; q++) {
			unsigned d = (unsigned)(*q - '0');

			if (u > (lim - d) / 10)
				return js_fail(js, "too big integer");
			u = u * 10 + d;
		}
		v->type = JS_INT;
		v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
		v->d = (double)v->i;
	} else {
		size_t n = (size_t)(p - s);
		char small[64], *buf = n < sizeof(small) ? small : malloc(n + 1);

		if (!buf)
			return js_nomem(js);
		memcpy(buf, s, n);
		buf[n] = '\0';
		v->type = JS_REAL;
		v->d = strtod(buf, NULL);
		if (buf != small)
			free(buf);
		if (isinf(v->d))
			return js_fail(js, "real number overflow");
	}
	js->p = p;
	return 0;
}

static int literal(struct js_scan *js, const char *word, enum js_type t, struct js_value *v)
{
	size_t n = strlen(word);

	if ((size_t)(js->end - js->p) < n || memcmp(js->p, word, n))
		return js_fail(js, "invalid token");
	js->p += n;
	v->type = t;
	return 0;
}

int js_object(struct js_scan *js, js_member_fn member, void *arg)
{
	char key[JS_KEY_MAX];
	size_t klen;
	int rc;

	if (++js->depth > js->max_depth)
		return js_fail(js, "nested too deeply");
	js->p++;
	js_ws(js);
	if (js->p < js->end && *js->p == '}') {
		js->p++;
		js->depth--;
		return 0;
	}
	for (;;) {
		js_ws(js);
		if (js->p >= js->end || *js->p != '"')
			return js_fail(js, "string or '}' expected");
		if ((rc = string(js, key, sizeof(key), &klen)))
			return rc;
		js_ws(js);
		if (js->p >= js->end || *js->p != ':')
			return js_fail(js, "':' expected");
		js->p++;
		js_ws(js);
		if ((rc = member(js, klen == SIZE_MAX ? NULL : key, klen, arg)))
			return rc;
		js_ws(js);
		if (js->p < js->end && *js->p == ',') {
			js->p++;
			continue;
		}
		if (js->p < js->end && *js->p == '}')
			break;
		return js_fail(js, "',' or '}' expected");
	}
	js->p++;
	js->depth--;
	return 0;
}

int js_array(struct js_scan *js, js_element_fn element, void *arg)
{
	size_t idx = 0;
	int rc;

	if (++js->depth > js->max_depth)
		return js_fail(js, "nested too deeply");
	js->p++;
	js_ws(js);
	if (js->p < js->end && *js->p == ']') {
		js->p++;
		js->depth--;
		return 0;
	}
	for (;;) {
		js_ws(js);
		if ((rc = element(js, idx++, arg)))
			return rc;
		js_ws(js);
		if (js->p < js->end && *js->p == ',') {
			js->p++;
			continue;
		}
		if (js->p < js->end && *js->p == ']')
			break;
		return js_fail(js, "',' or ']' expected");
	}
	js->p++;
	js->depth--;
	return 0;
}

static int skip_member(struct js_scan *js, const char *key, size_t klen, void *arg)
{
	struct js_value v;

	(void)key, (void)klen, (void)arg;
	return js_value(js, &v, false);
}

static int skip_element(struct js_scan *js, size_t idx, void *arg)
{
	struct js_value v;

	(void)idx, (void)arg;
	return js_value(js, &v, false);
}

int js_value(struct js_scan *js, struct js_value *v, bool keep)
{
	js_ws(js);
	if (js->p >= js->end)
		return js_fail(js, "premature end of input");
	switch (*js->p) {
	case '"':
		v->type = JS_STRING;
		if (!keep)
			return string(js, NULL, 0, NULL);
		v->s = js->arena + js->used;
		/* The arena holds the whole body: a decoded string and its NUL always fit. */
		if (string(js, js->arena + js->used, (size_t)(js->end - js->start) + 1 - js->used,
			   &v->slen))
			return -EINVAL;
		js->used += v->slen + 1;
		return 0;
	case '{':
		v->type = JS_OBJECT;
		return js_object(js, skip_member, NULL);
	case '[':
		v->type = JS_ARRAY;
		return js_array(js, skip_element, NULL);
	case 't':
		return literal(js, "true", JS_TRUE, v);
	case 'f':
		return literal(js, "false", JS_FALSE, v);
	case 'n':
		return literal(js, "null", JS_NULL, v);
	default:
		if (*js->p == '-' || (*js->p >= '0' && *js->p <= '9'))
			return number(js, v);
		return js_fail(js, "invalid token");
	}
}

int js_skip(struct js_scan *js)
{
	struct js_value v;

	return js_value(js, &v, false);
}

int js_document(struct js_scan *js, int (*top)(struct js_scan *js, void *arg), void *arg)
{
	int rc;

	js_ws(js);
	if (js->p == js->end)
		return -ENODATA;
	rc = top(js, arg);
	if (!rc) {
		js_ws(js);
		if (js->p < js->end)
			rc = js_fail(js, "end of file expected");
	}
	if (js->nomem)
		return -ENOMEM;
	return js->err ? -EINVAL : rc;
}

void js_where(const struct js_scan *js, char *err, size_t errlen)
{
	int line = 1, col = 1;

	for (const char *q = js->start; q < js->err_at && q < js->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	snprintf(err, errlen, "%s at line %d column %d", js->err, line, col);
}

int js_key_index(const struct js_key *keys, int n, const char *key, size_t klen)
{
	if (!key)
		return -1;
	for (int i = 0; i < n; i++)
		if (keys[i].len == klen && memcmp(keys[i].name, key, klen) == 0)
			return i;
	return -1;
}

struct object_top {
	js_member_fn member;
	void *arg;
	bool object;
};

/* An object is read member by member; an array is read (then refused as not an object);
 * any other value is not JSON as jansson reads it (no JSON_DECODE_ANY). */
static int object_top(struct js_scan *js, void *arg)
{
	struct object_top *t = arg;

	if (*js->p == '{') {
		t->object = true;
		return js_object(js, t->member, t->arg);
	}
	if (*js->p == '[')
		return js_skip(js);
	return js_fail(js, "'[' or '{' expected");
}

int js_object_body(const char *body, size_t len, char *arena, int max_depth,
		   js_member_fn member, void *arg, bool *syntax, char *err, size_t errlen)
{
	struct object_top t = { .member = member, .arg = arg };
	struct js_scan js;
	int rc;

	*syntax = true;
	js_init(&js, body, len, arena, max_depth);
	rc = js_document(&js, object_top, &t);
	if (rc == -ENOMEM)
		return rc;
	if (rc == -ENODATA) {
		snprintf(err, errlen, "Request body is empty; a JSON document is expected");
		return -EINVAL;
	}
	if (rc) {
		js_where(&js, err, errlen);
		return rc;
	}
	*syntax = false;
	if (!t.object) {
		snprintf(err, errlen, "request body must be a JSON object");
		return -EINVAL;
	}
	return 0;
}
