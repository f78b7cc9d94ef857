/* agent_frame.c - the agent stream's messages (see agent_frame.h): encoders that append
 * whole frames to a frame_buf, and readers that check every length before they look. */
#include "lib/agent_frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/byte_order.h"
#include "lib/util.h"

static unsigned char *put_bytes(unsigned char *p, const void *s, size_t n)
{
	if (n)
		memcpy(p, s, n);
	return p + n;
}

int agent_frame_type(const char *p, size_t len)
{
	if (!len)
		return -EINVAL;
	switch (p[0]) {
	case AF_HELLO: case AF_LAUNCH: case AF_KILL: case AF_RESULTS: case AF_STATUS:
	case AF_ACKS: case AF_ERROR:
		return p[0];
	default:
		return -EINVAL;
	}
}

/* A frame of exactly need payload bytes at the end of b: its payload's start, or NULL. */
static unsigned char *frame_start(struct frame_buf *b, size_t need, int *rc)
{
	unsigned char *at;

	if (need > UINT32_MAX) {
		*rc = -EMSGSIZE;
		return NULL;
	}
	at = frame_buf_extend(b, FRAME_HEADER + need);
	if (!at) {
		*rc = -ENOMEM;
		return NULL;
	}
	frame_header_put(at, (uint32_t)need);
	*rc = 0;
	return at + FRAME_HEADER;
}

int af_hello_encode(struct frame_buf *b, const char *agent_id)
{
	size_t n = strlen(agent_id);
	unsigned char *p;
	int rc;

	if (!n || n > UINT16_MAX)
		return -EINVAL;
	if (!(p = frame_start(b, 1 + 2 + n, &rc)))
		return rc;
	*p++ = AF_HELLO;
	p = le16_store(p, (uint16_t)n);
	put_bytes(p, agent_id, n);
	return 0;
}

int af_status_encode(struct frame_buf *b, uint64_t batch_id, const char *json, size_t len)
{
	unsigned char *p;
	int rc;

	if (!(p = frame_start(b, 1 + 8 + len, &rc)))
		return rc;
	*p++ = AF_STATUS;
	p = le64_store(p, batch_id);
	put_bytes(p, json, len);
	return 0;
}

int af_error_encode(struct frame_buf *b, unsigned status, const char *message)
{
	size_t n = message ? strlen(message) : 0;
	unsigned char *p;
	int rc;

	if (n > UINT16_MAX || status > UINT16_MAX)
		return -EINVAL;
	if (!(p = frame_start(b, 1 + 2 + 2 + n, &rc)))
		return rc;
	*p++ = AF_ERROR;
	p = le16_store(p, (uint16_t)status);
	p = le16_store(p, (uint16_t)n);
	put_bytes(p, message, n);
	return 0;
}

/* ---- builders ---- */

/* Offsets are kept from b->off: growing the buffer may move its bytes down. */
static unsigned char *at_rel(const struct af_builder *w, size_t rel)
{
	return (unsigned char *)w->b->p + w->b->off + rel;
}

/* Reserves the frame header and head bytes of its payload (the last 4 the count): where
 * to write them, or NULL. */
static unsigned char *builder_begin(struct af_builder *w, struct frame_buf *b, size_t head)
{
	unsigned char *at = frame_buf_extend(b, FRAME_HEADER + head);

	if (!at)
		return NULL;
	w->b = b;
	w->start = (size_t)((char *)at - b->p) - b->off;
	w->count_at = w->start + FRAME_HEADER + head - 4;
	w->n = 0;
	return at + FRAME_HEADER;
}

int af_call_begin(struct af_builder *w, struct frame_buf *b, enum agent_frame_type kind,
		  uint64_t call_id)
{
	unsigned char *p;

	if (kind != AF_LAUNCH && kind != AF_KILL)
		return -EINVAL;
	if (!(p = builder_begin(w, b, 1 + 8 + 4)))
		return -ENOMEM;
	*p++ = (unsigned char)kind;
	p = le64_store(p, call_id);
	le32_store(p, 0);
	return 0;
}

/* Room for one more element of n bytes, within a frame's 4 GiB - 1 and a u32 count: where
 * to write it, or NULL with *rc -EMSGSIZE (it cannot fit) or -ENOMEM. */
static unsigned char *builder_extend(struct af_builder *w, size_t n, int *rc)
{
	size_t payload = w->b->len - w->b->off - w->start - FRAME_HEADER;
	unsigned char *p;

	*rc = -EMSGSIZE;
	if (w->n == UINT32_MAX || n > UINT32_MAX - payload)
		return NULL;
	if (!(p = frame_buf_extend(w->b, n)))
		*rc = -ENOMEM;
	return p;
}

int af_call_add(struct af_builder *w, const char *task_id, const char *json, size_t json_len)
{
	size_t tl = strlen(task_id);
	unsigned char *p;
	int rc;

	if (!tl || tl > UINT8_MAX || json_len > UINT32_MAX)
		return -EINVAL;
	if (!(p = builder_extend(w, 1 + tl + 4 + json_len, &rc)))
		return rc;
	*p++ = (unsigned char)tl;
	p = put_bytes(p, task_id, tl);
	p = le32_store(p, (uint32_t)json_len);
	put_bytes(p, json, json_len);
	w->n++;
	return 0;
}

int af_answer_begin(struct af_builder *w, struct frame_buf *b, enum agent_frame_type kind,
		    uint64_t id, unsigned status, const char *message)
{
	size_t ml = message ? strlen(message) : 0;
	unsigned char *p;

	if ((kind != AF_RESULTS && kind != AF_ACKS) || status > UINT16_MAX || ml > UINT16_MAX)
		return -EINVAL;
	if (!(p = builder_begin(w, b, 1 + 8 + 2 + 2 + ml + 4)))
		return -ENOMEM;
	*p++ = (unsigned char)kind;
	p = le64_store(p, id);
	p = le16_store(p, (uint16_t)status);
	p = le16_store(p, (uint16_t)ml);
	p = put_bytes(p, message, ml);
	le32_store(p, 0);
	return 0;
}

/* Makes the n bytes at p what a reader takes: UTF-8 without NUL (an error text quoting a
 * path or a system message may be neither: a NUL or a byte outside a valid sequence
 * becomes '?'), so one odd error never spoils a whole answer. */
static void text_clean(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, p + n);

		if (!l || !p[i]) {
			p[i++] = '?';
			continue;
		}
		i += l;
	}
}

/* An error longer than its u16 length is cut at a character's start; bytes a reader would
 * refuse are written as '?'. */
int af_answer_add(struct af_builder *w, bool ok, const char *error)
{
	size_t full = error ? strlen(error) : 0, el = full > UINT16_MAX ? UINT16_MAX : full;
	unsigned char *p;
	int rc;

	while (el && el < full && ((unsigned char)error[el] & 0xC0) == 0x80)
		el--;
	if (!(p = builder_extend(w, 1 + 2 + el, &rc)))
		return rc;
	*p++ = ok ? 1 : 0;
	p = le16_store(p, (uint16_t)el);
	put_bytes(p, error, el);
	text_clean(p, el);
	w->n++;
	return 0;
}

void af_end(struct af_builder *w)
{
	size_t payload = w->b->len - w->b->off - w->start - FRAME_HEADER;

	frame_header_put(at_rel(w, w->start), (uint32_t)payload);
	le32_store(at_rel(w, w->count_at), w->n);
}

/* ---- readers ---- */

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A string of n bytes at *at, inside end: UTF-8 without NUL. */
static int take_text(const unsigned char **at, const unsigned char *end, size_t n,
		     struct af_text *t)
{
	if ((size_t)(end - *at) < n)
		return -1;
	if (memchr(*at, 0, n) || !utf8_valid((const char *)*at, n))
		return -2;
	t->p = (const char *)*at;
	t->len = n;
	*at += n;
	return 0;
}

static const char *text_problem(int rc)
{
	return rc == -1 ? "is cut short" : "is not UTF-8 without NUL";
}

int af_hello_read(const char *p, size_t len, struct af_text *agent_id, char *err, size_t errlen)
{
	const unsigned char *at = (const unsigned char *)p + 1, *end = (const unsigned char *)p + len;
	size_t n;
	int rc;

	if (len < 3 || p[0] != AF_HELLO)
		return bad(err, errlen, "hello frame: shorter than its header");
	n = le16_load(at);
	at += 2;
	if (!n)
		return bad(err, errlen, "hello frame: empty agent_id");
	if ((rc = take_text(&at, end, n, agent_id)))
		return bad(err, errlen, "hello frame: agent_id %s", text_problem(rc));
	if (at != end)
		return bad(err, errlen, "hello frame: %zu bytes after the agent_id", (size_t)(end - at));
	return 0;
}

int af_status_read(const char *p, size_t len, uint64_t *batch_id, struct af_text *json,
		   char *err, size_t errlen)
{
	if (len < 9 || p[0] != AF_STATUS)
		return bad(err, errlen, "status frame: shorter than its header");
	*batch_id = le64_load((const unsigned char *)p + 1);
	json->p = p + 9;
	json->len = len - 9;
	return 0;
}

int af_error_read(const char *p, size_t len, unsigned *status, struct af_text *message,
		  char *err, size_t errlen)
{
	const unsigned char *at = (const unsigned char *)p + 1, *end = (const unsigned char *)p + len;
	size_t n;
	int rc;

	if (len < 5 || p[0] != AF_ERROR)
		return bad(err, errlen, "error frame: shorter than its header");
	*status = le16_load(at);
	n = le16_load(at + 2);
	at += 4;
	if ((rc = take_text(&at, end, n, message)))
		return bad(err, errlen, "error frame: message %s", text_problem(rc));
	if (at != end)
		return bad(err, errlen, "error frame: %zu bytes after the message", (size_t)(end - at));
	return 0;
}

int af_call_open(struct af_call_reader *r, const char *p, size_t len, char *err, size_t errlen)
{
	const unsigned char *at = (const unsigned char *)p;

	memset(r, 0, sizeof(*r));
	if (len < 13 || (p[0] != AF_LAUNCH && p[0] != AF_KILL))
		return bad(err, errlen, "call frame: shorter than its header");
	r->kind = (enum agent_frame_type)p[0];
	r->call_id = le64_load(at + 1);
	r->n = le32_load(at + 9);
	r->at = at + 13;
	r->end = at + len;
	/* Each element takes at least 6 bytes: a count the payload cannot hold is a lie. */
	if (r->n > (size_t)(r->end - r->at) / 6)
		return bad(err, errlen, "call frame: %u elements cannot fit in %zu bytes", r->n,
			   (size_t)(r->end - r->at));
	return 0;
}

int af_call_next(struct af_call_reader *r, struct af_call_element *el, char *err, size_t errlen)
{
	size_t tl, jl;
	int rc;

	if (r->seen == r->n) {
		if (r->at != r->end)
			return bad(err, errlen, "call frame: %zu bytes after the last element",
				   (size_t)(r->end - r->at));
		return 0;
	}
	if (r->end - r->at < 1)
		return bad(err, errlen, "call element %u: cut short", r->seen);
	tl = *r->at++;
	if (!tl)
		return bad(err, errlen, "call element %u: empty task_id", r->seen);
	if ((rc = take_text(&r->at, r->end, tl, &el->task_id)))
		return bad(err, errlen, "call element %u: task_id %s", r->seen, text_problem(rc));
	if (r->end - r->at < 4)
		return bad(err, errlen, "call element %u: cut short", r->seen);
	jl = le32_load(r->at);
	r->at += 4;
	if ((size_t)(r->end - r->at) < jl)
		return bad(err, errlen, "call element %u: json is cut short", r->seen);
	el->json.p = (const char *)r->at;
	el->json.len = jl;
	r->at += jl;
	r->seen++;
	return 1;
}

int af_answer_open(struct af_answer_reader *r, const char *p, size_t len, char *err,
		   size_t errlen)
{
	const unsigned char *at = (const unsigned char *)p, *end = at + len;
	size_t ml;
	int rc;

	memset(r, 0, sizeof(*r));
	if (len < 13 || (p[0] != AF_RESULTS && p[0] != AF_ACKS))
		return bad(err, errlen, "answer frame: shorter than its header");
	r->kind = (enum agent_frame_type)p[0];
	r->id = le64_load(at + 1);
	r->status = le16_load(at + 9);
	ml = le16_load(at + 11);
	at += 13;
	if ((rc = take_text(&at, end, ml, &r->message)))
		return bad(err, errlen, "answer frame: message %s", text_problem(rc));
	if (end - at < 4)
		return bad(err, errlen, "answer frame: no item count");
	r->n = le32_load(at);
	r->at = at + 4;
	r->end = end;
	if (r->n > (size_t)(r->end - r->at) / 3)
		return bad(err, errlen, "answer frame: %u items cannot fit in %zu bytes", r->n,
			   (size_t)(r->end - r->at));
	return 0;
}

int af_answer_next(struct af_answer_reader *r, struct af_answer_item *it, char *err,
		   size_t errlen)
{
	size_t el;
	int rc;

	if (r->seen == r->n) {
		if (r->at != r->end)
			return bad(err, errlen, "answer frame: %zu bytes after the last item",
				   (size_t)(r->end - r->at));
		return 0;
	}
	if (r->end - r->at < 3)
		return bad(err, errlen, "answer item %u: cut short", r->seen);
	if (r->at[0] > 1)
		return bad(err, errlen, "answer item %u: ok is %u, not 0 or 1", r->seen, r->at[0]);
	it->ok = r->at[0] == 1;
	el = le16_load(r->at + 1);
	r->at += 3;
	if ((rc = take_text(&r->at, r->end, el, &it->error)))
		return bad(err, errlen, "answer item %u: error %s", r->seen, text_problem(rc));
	r->seen++;
	return 1;
}
