/* fuzz_agent_frame.c - libFuzzer target for the agent stream's readers (lib/agent_frame.c,
 * bytes from the peer of a pacer-agent/1 stream): the input is cut into frames with
 * frame_next as a stream end does (and is also read whole as one payload), each payload
 * copied to a block of exactly its size and given to every reader. Invariants:
 *  - no reader reads past the payload (ASan), views lie inside it, a refusal says why;
 *  - a reader of another type refuses the payload;
 *  - what reads (a hello, status, error, every element of a call, every item of an answer)
 *    encodes again, with the encoders and builders (on a frame_buf holding consumed bytes
 *    at its front), into the very same payload bytes, and reading that back gives the same
 *    values (ids, status, message, task ids, json bytes, ok flags, errors). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/agent_frame.h"
#include "lib/frame.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_FRAME (1 << 20)     /* what the master takes */

static bool inside(struct af_text t, const char *p, size_t len)
{
	return t.p >= p && t.len <= len && (size_t)(t.p - p) <= len - t.len;
}

static bool same_text(struct af_text a, struct af_text b)
{
	return a.len == b.len && (!a.len || !memcmp(a.p, b.p, a.len));
}

/* A NUL-terminated copy of t (readers' strings have no NUL). */
static char *cstr(struct af_text t)
{
	char *s = malloc(t.len + 1);

	CHECK(s);
	memcpy(s, t.p, t.len);
	s[t.len] = '\0';
	return s;
}

/* A frame_buf with a few consumed bytes at its front and a few still pending, so the
 * builders' offsets must follow the bytes when the buffer moves them down and grows. */
static void prefilled(struct frame_buf *b, size_t pending)
{
	static const char junk[200] = { 0 };

	memset(b, 0, sizeof(*b));
	CHECK(frame_buf_put(b, junk, sizeof(junk)) == 0);
	frame_buf_consume(b, sizeof(junk) - pending);
}

/* The payload of the one frame b holds after its pending bytes. */
static void frame_of(struct frame_buf *b, size_t pending, const char **p, size_t *plen)
{
	size_t used;

	CHECK(b->len - b->off > pending);
	CHECK(frame_next(b->p + b->off + pending, b->len - b->off - pending, SIZE_MAX, p, plen,
			 &used) == 1);
	CHECK(used == b->len - b->off - pending);
}

static void same_payload(struct frame_buf *b, size_t pending, const char *p, size_t len)
{
	const char *q;
	size_t qlen;

	frame_of(b, pending, &q, &qlen);
	CHECK(qlen == len && !memcmp(q, p, len));
}

static void hello(const char *p, size_t len)
{
	struct af_text id, id2;
	struct frame_buf b = { 0 };
	char err[256] = "", *s;
	const char *q;
	size_t qlen;

	if (af_hello_read(p, len, &id, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(inside(id, p, len) && id.len >= 1 && id.len <= UINT16_MAX);
	s = cstr(id);
	CHECK(af_hello_encode(&b, s) == 0);
	same_payload(&b, 0, p, len);
	frame_of(&b, 0, &q, &qlen);
	CHECK(af_hello_read(q, qlen, &id2, err, sizeof(err)) == 0 && same_text(id, id2));
	free(s);
	frame_buf_free(&b);
}

static void status(const char *p, size_t len)
{
	struct af_text json, json2;
	struct frame_buf b = { 0 };
	uint64_t id, id2;
	char err[256] = "";
	const char *q;
	size_t qlen;

	if (af_status_read(p, len, &id, &json, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(inside(json, p, len));
	CHECK(af_status_encode(&b, id, json.p, json.len) == 0);
	same_payload(&b, 0, p, len);
	frame_of(&b, 0, &q, &qlen);
	CHECK(af_status_read(q, qlen, &id2, &json2, err, sizeof(err)) == 0);
	CHECK(id2 == id && same_text(json, json2));
	frame_buf_free(&b);
}

static void error_frame(const char *p, size_t len)
{
	struct af_text msg, msg2;
	struct frame_buf b = { 0 };
	unsigned st, st2;
	char err[256] = "", *s;
	const char *q;
	size_t qlen;

	if (af_error_read(p, len, &st, &msg, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(inside(msg, p, len) && st <= UINT16_MAX);
	s = cstr(msg);
	CHECK(af_error_encode(&b, st, s) == 0);
	same_payload(&b, 0, p, len);
	frame_of(&b, 0, &q, &qlen);
	CHECK(af_error_read(q, qlen, &st2, &msg2, err, sizeof(err)) == 0);
	CHECK(st2 == st && same_text(msg, msg2));
	free(s);
	frame_buf_free(&b);
}

static void call(const char *p, size_t len, size_t pending)
{
	struct af_call_reader r, r2;
	struct af_call_element *els = NULL, e2;
	struct frame_buf b;
	struct af_builder w;
	char err[256] = "", tid[256];
	const char *q;
	size_t n = 0, qlen;
	int rc;

	if (af_call_open(&r, p, len, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(r.kind == AF_LAUNCH || r.kind == AF_KILL);
	CHECK((size_t)r.n * 6 <= len - 13);
	els = calloc(r.n + 1, sizeof(*els));
	CHECK(els);
	while ((rc = af_call_next(&r, &els[n], err, sizeof(err))) == 1) {
		CHECK(n < r.n);
		CHECK(inside(els[n].task_id, p, len) && inside(els[n].json, p, len));
		CHECK(els[n].task_id.len >= 1 && els[n].task_id.len <= 255);
		n++;
	}
	if (rc) {
		CHECK(rc == -EINVAL && err[0]);
	} else {
		CHECK(n == r.n);
	}
	/* What was read builds again; when all of it was, into the same bytes. */
	prefilled(&b, pending);
	CHECK(af_call_begin(&w, &b, r.kind, r.call_id) == 0);
	for (size_t i = 0; i < n; i++) {
		memcpy(tid, els[i].task_id.p, els[i].task_id.len);
		tid[els[i].task_id.len] = '\0';
		CHECK(af_call_add(&w, tid, els[i].json.p, els[i].json.len) == 0);
	}
	af_end(&w);
	if (!rc)
		same_payload(&b, pending, p, len);
	frame_of(&b, pending, &q, &qlen);
	CHECK(af_call_open(&r2, q, qlen, err, sizeof(err)) == 0);
	CHECK(r2.kind == r.kind && r2.call_id == r.call_id && r2.n == n);
	for (size_t i = 0; i < n; i++) {
		CHECK(af_call_next(&r2, &e2, err, sizeof(err)) == 1);
		CHECK(same_text(e2.task_id, els[i].task_id) && same_text(e2.json, els[i].json));
	}
	CHECK(af_call_next(&r2, &e2, err, sizeof(err)) == 0);
	frame_buf_free(&b);
	free(els);
}

static void answer(const char *p, size_t len, size_t pending)
{
	struct af_answer_reader r, r2;
	struct af_answer_item *its = NULL, i2;
	struct frame_buf b;
	struct af_builder w;
	char err[256] = "", *s;
	const char *q;
	size_t n = 0, qlen;
	int rc;

	if (af_answer_open(&r, p, len, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(r.kind == AF_RESULTS || r.kind == AF_ACKS);
	CHECK(inside(r.message, p, len) && r.status <= UINT16_MAX);
	its = calloc(r.n + 1, sizeof(*its));
	CHECK(its);
	while ((rc = af_answer_next(&r, &its[n], err, sizeof(err))) == 1) {
		CHECK(n < r.n && inside(its[n].error, p, len) && its[n].error.len <= UINT16_MAX);
		n++;
	}
	if (rc) {
		CHECK(rc == -EINVAL && err[0]);
	} else {
		CHECK(n == r.n);
	}
	prefilled(&b, pending);
	s = cstr(r.message);
	CHECK(af_answer_begin(&w, &b, r.kind, r.id, r.status, s) == 0);
	free(s);
	for (size_t i = 0; i < n; i++) {
		s = cstr(its[i].error);
		CHECK(af_answer_add(&w, its[i].ok, s) == 0);
		free(s);
	}
	af_end(&w);
	if (!rc)
		same_payload(&b, pending, p, len);
	frame_of(&b, pending, &q, &qlen);
	CHECK(af_answer_open(&r2, q, qlen, err, sizeof(err)) == 0);
	CHECK(r2.kind == r.kind && r2.id == r.id && r2.status == r.status && r2.n == n);
	CHECK(same_text(r2.message, r.message));
	for (size_t i = 0; i < n; i++) {
		CHECK(af_answer_next(&r2, &i2, err, sizeof(err)) == 1);
		CHECK(i2.ok == its[i].ok && same_text(i2.error, its[i].error));
	}
	CHECK(af_answer_next(&r2, &i2, err, sizeof(err)) == 0);
	frame_buf_free(&b);
	free(its);
}

/* Every reader on a copy of the payload of exactly its size; the ones of other types
 * must refuse it. */
static void payload(const char *in, size_t len, size_t pending)
{
	char *p = malloc(len ? len : 1), err[256];
	int type = agent_frame_type(in, len);
	struct af_call_reader cr;
	struct af_answer_reader ar;
	struct af_text t;
	uint64_t id;
	unsigned st;

	CHECK(p);
	if (len)
		memcpy(p, in, len);
	CHECK(type == -EINVAL || (len && type == (unsigned char)p[0]));
	if (type == AF_HELLO)
		hello(p, len);
	else
		CHECK(af_hello_read(p, len, &t, err, sizeof(err)) == -EINVAL);
	if (type == AF_STATUS)
		status(p, len);
	else
		CHECK(af_status_read(p, len, &id, &t, err, sizeof(err)) == -EINVAL);
	if (type == AF_ERROR)
		error_frame(p, len);
	else
		CHECK(af_error_read(p, len, &st, &t, err, sizeof(err)) == -EINVAL);
	if (type == AF_LAUNCH || type == AF_KILL)
		call(p, len, pending);
	else
		CHECK(af_call_open(&cr, p, len, err, sizeof(err)) == -EINVAL);
	if (type == AF_RESULTS || type == AF_ACKS)
		answer(p, len, pending);
	else
		CHECK(af_answer_open(&ar, p, len, err, sizeof(err)) == -EINVAL);
	free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0, pending = size ? data[0] % 64 : 0;

	payload(buf, size, pending);
	while (off < size) {
		const char *p;
		size_t plen, used;
		int rc = frame_next(buf + off, size - off, MAX_FRAME, &p, &plen, &used);

		if (rc <= 0) {
			CHECK(rc == 0 || (rc == -EMSGSIZE && plen > MAX_FRAME));
			break;
		}
		CHECK(used == FRAME_HEADER + plen && used <= size - off && p == buf + off + 4);
		payload(p, plen, pending);
		off += used;
	}
	return 0;
}
