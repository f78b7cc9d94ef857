/* test_agent_frame.c - the agent stream's messages (lib/agent_frame.c): every message type
 * through its encoder and back through its reader (calls and answers with 0, 1 and many
 * elements), the exact bytes of the wire format, every truncation of a valid frame refused
 * (read from a buffer of exactly that size, so the ASan build proves nothing is read past),
 * trailing bytes, counts that cannot fit, bad strings named in the error, an error text cut
 * at a character boundary, builders on a frame_buf that moves its bytes down and grows
 * between begin and end, and the type of every byte value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/agent_frame.h"
#include "lib/frame.h"

/* ---- helpers ---- */

/* The payload of the one frame b holds from off (it must fill b exactly). */
static const char *only_frame(const struct frame_buf *b, size_t off, size_t *plen)
{
	const char *p;
	size_t used;

	assert_int_equal(frame_next(b->p + off, b->len - off, SIZE_MAX, &p, plen, &used), 1);
	assert_int_equal(used, b->len - off);
	return p;
}

/* A heap copy of p[0..len) in a block of exactly len bytes (ASan sees a read past it). */
static char *exact_copy(const char *p, size_t len)
{
	char *c = malloc(len ? len : 1);

	assert_non_null(c);
	if (len)
		memcpy(c, p, len);
	return c;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void assert_text(struct af_text t, const char *want, size_t len)
{
	assert_int_equal(t.len, len);
	if (len)
		assert_memory_equal(t.p, want, len);
}

/* Reads a whole call or answer frame (or hello / status / error by type): 0 when all of it
 * reads, else the first error (-EINVAL) with err filled. */
static int read_all(const char *p, size_t len, char *err, size_t errlen)
{
	int type = agent_frame_type(p, len), rc;
	struct af_text t;
	uint64_t id;
	unsigned st;

	err[0] = '\0';
	switch (type) {
	case AF_HELLO:
		return af_hello_read(p, len, &t, err, errlen);
	case AF_STATUS:
		return af_status_read(p, len, &id, &t, err, errlen);
	case AF_ERROR:
		return af_error_read(p, len, &st, &t, err, errlen);
	case AF_LAUNCH:
	case AF_KILL: {
		struct af_call_reader r;
		struct af_call_element el;

		if ((rc = af_call_open(&r, p, len, err, errlen)))
			return rc;
		while ((rc = af_call_next(&r, &el, err, errlen)) == 1)
			;
		return rc;
	}
	case AF_RESULTS:
	case AF_ACKS: {
		struct af_answer_reader r;
		struct af_answer_item it;

		if ((rc = af_answer_open(&r, p, len, err, errlen)))
			return rc;
		while ((rc = af_answer_next(&r, &it, err, errlen)) == 1)
			;
		return rc;
	}
	default:
		snprintf(err, errlen, "type");
		return type;
	}
}

static void assert_refused(const char *p, size_t len, const char *naming)
{
	char err[256];

	assert_int_equal(read_all(p, len, err, sizeof(err)), -EINVAL);
	if (!strstr(err, naming))
		fail_msg("error '%s' does not name '%s'", err, naming);
}

/* ---- types ---- */

static void test_type_of_every_byte(void **state)
{
	(void)state;
	for (unsigned v = 0; v < 256; v++) {
		char c = (char)v;
		int want = strchr("HLKRSAE", (int)v) && v ? (int)v : -EINVAL;

		assert_int_equal(agent_frame_type(&c, 1), want);
	}
	assert_int_equal(agent_frame_type("H", 0), -EINVAL);
}

/* ---- hello, status, error ---- */

static void test_hello_round_trip(void **state)
{
	struct frame_buf b = { 0 };
	struct af_text id;
	char err[128], *big;
	const char *p;
	size_t plen;

	(void)state;
	assert_int_equal(af_hello_encode(&b, "agent-1"), 0);
	assert_int_equal(b.len, 4 + 10);
	assert_memory_equal(b.p, "\0\0\0\x0a" "H\x07\0agent-1", 14);
	p = only_frame(&b, 0, &plen);
	assert_int_equal(af_hello_read(p, plen, &id, err, sizeof(err)), 0);
	assert_text(id, "agent-1", 7);
	frame_buf_free(&b);

	/* 65535 bytes of id is the most; one more or none is refused, b untouched. */
	big = repeat('a', 65536);
	assert_int_equal(af_hello_encode(&b, big), -EINVAL);
	assert_int_equal(af_hello_encode(&b, ""), -EINVAL);
	assert_int_equal(b.len, 0);
	big[65535] = '\0';
	assert_int_equal(af_hello_encode(&b, big), 0);
	p = only_frame(&b, 0, &plen);
	assert_int_equal(af_hello_read(p, plen, &id, err, sizeof(err)), 0);
	assert_text(id, big, 65535);
	free(big);
	frame_buf_free(&b);
}

static void test_hello_bad_agent_id(void **state)
{
	(void)state;
	assert_refused("H\0\0", 3, "empty agent_id");
	assert_refused("H\x03\0a\0b", 6, "agent_id is not UTF-8");
	assert_refused("H\x02\0\xc3\x28", 5, "agent_id is not UTF-8");
	assert_refused("H\x01\0\xff", 4, "agent_id is not UTF-8");
	assert_refused("H\x02\0\xc3\xa9!", 6, "1 bytes after the agent_id");
	assert_refused("H\x01", 2, "shorter than its header");
	assert_refused("H\x05\0abcd", 7, "agent_id is cut short");
}

static void test_status_round_trip(void **state)
{
	static const char json[] = "{\"agent_id\":\"a\",\"updates\":[]}\0\xff";
	struct frame_buf b = { 0 };
	struct af_text t;
	uint64_t id;
	char err[128], one = 0;
	const char *p;
	size_t plen;

	(void)state;
	assert_int_equal(af_status_encode(&b, 0x0102030405060708ull, json, sizeof(json)), 0);
	p = only_frame(&b, 0, &plen);
	assert_int_equal(plen, 9 + sizeof(json));
	assert_memory_equal(p, "S\x08\x07\x06\x05\x04\x03\x02\x01", 9);
	assert_int_equal(af_status_read(p, plen, &id, &t, err, sizeof(err)), 0);
	assert_true(id == 0x0102030405060708ull);
	assert_text(t, json, sizeof(json));         /* the JSON bytes as they were, NUL too */
	frame_buf_free(&b);

	assert_int_equal(af_status_encode(&b, UINT64_MAX, NULL, 0), 0);
	p = only_frame(&b, 0, &plen);
	assert_int_equal(af_status_read(p, plen, &id, &t, err, sizeof(err)), 0);
	assert_true(id == UINT64_MAX);
	assert_int_equal(t.len, 0);
	frame_buf_free(&b);

	/* A body that cannot fit in a frame (never read: the size is refused first). */
	assert_int_equal(af_status_encode(&b, 1, &one, UINT32_MAX), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	assert_refused("S\1\2\3\4\5\6\7", 8, "status frame: shorter than its header");
}

static void test_error_round_trip(void **state)
{
	struct frame_buf b = { 0 };
	struct af_text t;
	unsigned st;
	char err[128], *big;
	const char *p;
	size_t plen;

	(void)state;
	assert_int_equal(af_error_encode(&b, 404, "unknown agent a1; register again"), 0);
	p = only_frame(&b, 0, &plen);
	assert_memory_equal(p, "E\x94\x01\x20\0", 5);
	assert_int_equal(af_error_read(p, plen, &st, &t, err, sizeof(err)), 0);
	assert_int_equal(st, 404);
	assert_text(t, "unknown agent a1; register again", 32);
	frame_buf_free(&b);

	assert_int_equal(af_error_encode(&b, 413, NULL), 0);
	p = only_frame(&b, 0, &plen);
	assert_int_equal(af_error_read(p, plen, &st, &t, err, sizeof(err)), 0);
	assert_int_equal(st, 413);
	assert_int_equal(t.len, 0);
	frame_buf_free(&b);

	big = repeat('m', 65536);
	assert_int_equal(af_error_encode(&b, 400, big), -EINVAL);
	assert_int_equal(af_error_encode(&b, 65536, "x"), -EINVAL);
	assert_int_equal(b.len, 0);
	free(big);

	assert_refused("E\x90\x01\x02\0\xc3", 6, "message is cut short");
	assert_refused("E\x90\x01\x01\0\0", 6, "message is not UTF-8");
	assert_refused("E\x90\x01\x01\0ab", 7, "1 bytes after the message");
}

/* ---- calls ---- */

struct el {
	const char *task_id, *json;
	size_t json_len;
};

static void build_call(struct frame_buf *b, enum agent_frame_type kind, uint64_t id,
		       const struct el *els, size_t n)
{
	struct af_builder w;

	assert_int_equal(af_call_begin(&w, b, kind, id), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(af_call_add(&w, els[i].task_id, els[i].json, els[i].json_len), 0);
	af_end(&w);
}

static void check_call(const char *p, size_t plen, enum agent_frame_type kind, uint64_t id,
		       const struct el *els, size_t n)
{
	struct af_call_reader r;
	struct af_call_element e;
	char err[128];

	assert_int_equal(af_call_open(&r, p, plen, err, sizeof(err)), 0);
	assert_int_equal(r.kind, kind);
	assert_true(r.call_id == id);
	assert_int_equal(r.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 1);
		assert_text(e.task_id, els[i].task_id, strlen(els[i].task_id));
		assert_text(e.json, els[i].json, els[i].json_len);
	}
	assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 0);
	assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 0);    /* stays at the end */
}

static void test_call_round_trips(void **state)
{
	static const char launch[] = "{\"framework_id\":\"marathon\",\"task\":{\"task_id\":"
		"{\"value\":\"web.1\"}}}";
	static const char kill[] = "{\"task_id\":\"web.1\",\"grace_period_seconds\":3}";
	enum agent_frame_type kinds[] = { AF_LAUNCH, AF_KILL };
	struct el one[] = { { "web.1", launch, sizeof(launch) - 1 } };
	struct el many[300];
	char ids[300][16], *id255 = repeat('t', 255);
	struct frame_buf b = { 0 };
	const char *p;
	size_t plen;

	(void)state;
	for (size_t i = 0; i < 300; i++) {
		snprintf(ids[i], sizeof(ids[i]), "app.%zu", i);
		many[i] = (struct el){ ids[i], i % 2 ? kill : launch,
				       i % 7 == 3 ? 0 : (i % 2 ? sizeof(kill) : sizeof(launch)) - 1 };
	}
	many[299].task_id = id255;
	for (size_t k = 0; k < 2; k++) {
		build_call(&b, kinds[k], 0, NULL, 0);
		p = only_frame(&b, 0, &plen);
		assert_int_equal(plen, 13);
		assert_memory_equal(p + 1, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
		check_call(p, plen, kinds[k], 0, NULL, 0);
		frame_buf_free(&b);

		build_call(&b, kinds[k], 7, one, 1);
		p = only_frame(&b, 0, &plen);
		assert_int_equal(plen, 13 + 1 + 5 + 4 + sizeof(launch) - 1);
		assert_memory_equal(p + 9, "\1\0\0\0\5web.1", 10);
		assert_int_equal((unsigned char)p[19], sizeof(launch) - 1);
		check_call(p, plen, kinds[k], 7, one, 1);
		frame_buf_free(&b);

		build_call(&b, kinds[k], UINT64_MAX - 1, many, 300);
		p = only_frame(&b, 0, &plen);
		check_call(p, plen, kinds[k], UINT64_MAX - 1, many, 300);
		frame_buf_free(&b);
	}
	free(id255);
}

static void test_call_encoder_refusals(void **state)
{
	struct frame_buf b = { 0 };
	struct af_builder w;
	struct el first = { "t1", "{}", 2 };
	char *id256 = repeat('t', 256), one = 0;
	const char *p;
	size_t plen, len;

	(void)state;
	assert_int_equal(af_call_begin(&w, &b, AF_RESULTS, 1), -EINVAL);
	assert_int_equal(af_call_begin(&w, &b, AF_HELLO, 1), -EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(af_call_begin(&w, &b, AF_LAUNCH, 9), 0);
	assert_int_equal(af_call_add(&w, first.task_id, first.json, first.json_len), 0);
	len = b.len;
	/* Refused elements leave the frame as it was: it still ends and reads whole. */
	assert_int_equal(af_call_add(&w, "", "{}", 2), -EINVAL);
	assert_int_equal(af_call_add(&w, id256, "{}", 2), -EINVAL);
	assert_int_equal(af_call_add(&w, "t2", &one, UINT32_MAX), -EMSGSIZE);
	assert_int_equal(b.len, len);
	assert_int_equal(w.n, 1);
	af_end(&w);
	p = only_frame(&b, 0, &plen);
	check_call(p, plen, AF_LAUNCH, 9, &first, 1);
	free(id256);
	frame_buf_free(&b);
}

/* Frames with a hand-made element (u8 tl | task_id | u32 json len | json). */
static void test_call_reader_refusals(void **state)
{
	(void)state;
	/* counts that cannot fit: 1 element needs at least 6 bytes */
	assert_refused("L\1\0\0\0\0\0\0\0\1\0\0\0" "\1a\0\0\0", 18, "1 elements cannot fit in 5");
	assert_refused("K\1\0\0\0\0\0\0\0\xff\xff\xff\xff" "\1a\0\0\0\0", 19,
		       "4294967295 elements cannot fit");
	/* a count that fits by size, with fewer elements than it says */
	assert_refused("L\1\0\0\0\0\0\0\0\2\0\0\0" "\1a\1\0\0\0x" "\1b\0\0\0", 25,
		       "call element 1: cut short");
	assert_refused("L\0\0\0\0\0\0\0\0\1\0\0\0" "\0a\0\0\0\0", 19,
		       "call element 0: empty task_id");
	assert_refused("L\0\0\0\0\0\0\0\0\1\0\0\0" "\2\xc3\x28\0\0\0\0", 20,
		       "call element 0: task_id is not UTF-8");
	assert_refused("L\0\0\0\0\0\0\0\0\1\0\0\0" "\2a\0\0\0\0\0", 20,
		       "call element 0: task_id is not UTF-8");
	assert_refused("L\0\0\0\0\0\0\0\0\1\0\0\0" "\7abc\0\0", 19,
		       "call element 0: task_id is cut short");
	assert_refused("L\0\0\0\0\0\0\0\0\1\0\0\0" "\1a\3\0\0\0{}", 21,
		       "call element 0: json is cut short");
	/* trailing bytes after the last element, and after a call with none */
	assert_refused("K\0\0\0\0\0\0\0\0\1\0\0\0" "\1a\2\0\0\0{}!", 22,
		       "1 bytes after the last element");
	assert_refused("K\0\0\0\0\0\0\0\0\0\0\0\0!!", 15, "2 bytes after the last element");
	assert_refused("K\0\0\0\0\0\0\0\0\0\0\0", 12, "call frame: shorter than its header");
}

/* ---- answers ---- */

struct item {
	bool ok;
	const char *error;
};

static void build_answer(struct frame_buf *b, enum agent_frame_type kind, uint64_t id,
			 unsigned status, const char *message, const struct item *items, size_t n)
{
	struct af_builder w;

	assert_int_equal(af_answer_begin(&w, b, kind, id, status, message), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(af_answer_add(&w, items[i].ok, items[i].error), 0);
	af_end(&w);
}

static void check_answer(const char *p, size_t plen, enum agent_frame_type kind, uint64_t id,
			 unsigned status, const char *message, const struct item *items, size_t n)
{
	struct af_answer_reader r;
	struct af_answer_item it;
	char err[128];

	assert_int_equal(af_answer_open(&r, p, plen, err, sizeof(err)), 0);
	assert_int_equal(r.kind, kind);
	assert_true(r.id == id);
	assert_int_equal(r.status, status);
	assert_text(r.message, message, message ? strlen(message) : 0);
	assert_int_equal(r.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 1);
		assert_int_equal(it.ok, items[i].ok);
		assert_text(it.error, items[i].error,
			    items[i].error ? strlen(items[i].error) : 0);
	}
	assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 0);
}

static void test_answer_round_trips(void **state)
{
	enum agent_frame_type kinds[] = { AF_RESULTS, AF_ACKS };
	struct item one[] = { { false, "task web.1 is already running on this agent" } };
	struct item many[500];
	struct frame_buf b = { 0 };
	const char *p;
	size_t plen;

	(void)state;
	for (size_t i = 0; i < 500; i++)
		many[i] = i % 3 ? (struct item){ true, NULL }
				: (struct item){ false, i % 2 ? "unknown task" : "caf\xc3\xa9 \xe2\x82\xac" };
	for (size_t k = 0; k < 2; k++) {
		build_answer(&b, kinds[k], 3, 200, NULL, NULL, 0);
		p = only_frame(&b, 0, &plen);
		assert_int_equal(plen, 17);
		assert_memory_equal(p + 1, "\3\0\0\0\0\0\0\0\xc8\0\0\0\0\0\0\0", 16);
		check_answer(p, plen, kinds[k], 3, 200, NULL, NULL, 0);
		frame_buf_free(&b);

		build_answer(&b, kinds[k], 4, 200, "", one, 1);
		p = only_frame(&b, 0, &plen);
		assert_int_equal(plen, 17 + 3 + strlen(one[0].error));
		assert_memory_equal(p + 13, "\1\0\0\0\0", 5);   /* n 1, ok 0 */
		check_answer(p, plen, kinds[k], 4, 200, NULL, one, 1);
		frame_buf_free(&b);

		build_answer(&b, kinds[k], 5, 200, NULL, many, 500);
		p = only_frame(&b, 0, &plen);
		check_answer(p, plen, kinds[k], 5, 200, NULL, many, 500);
		frame_buf_free(&b);

		/* not 200: a message and no items */
		build_answer(&b, kinds[k], UINT64_MAX, 503, "store is not writable; try again",
			     NULL, 0);
		p = only_frame(&b, 0, &plen);
		check_answer(p, plen, kinds[k], UINT64_MAX, 503, "store is not writable; try again",
			     NULL, 0);
		frame_buf_free(&b);
		build_answer(&b, kinds[k], 6, 400, "updates: not an array", NULL, 0);
		p = only_frame(&b, 0, &plen);
		check_answer(p, plen, kinds[k], 6, 400, "updates: not an array", NULL, 0);
		frame_buf_free(&b);
	}
}

/* An error text that is not UTF-8 (a path, a system message) still makes a readable
 * answer: the bytes a reader refuses are written as '?', valid characters are kept. */
static void test_answer_error_text_cleaned(void **state)
{
	struct frame_buf b = { 0 };
	struct af_builder w;
	struct af_answer_reader r;
	struct af_answer_item it;
	char err[160];
	const char *p;
	size_t plen, used;

	(void)state;
	assert_int_equal(af_answer_begin(&w, &b, AF_RESULTS, 9, 200, NULL), 0);
	assert_int_equal(af_answer_add(&w, false, "bad \xff path /tmp/caf\xc3\xa9 \xe2\x82 end"), 0);
	af_end(&w);
	assert_int_equal(frame_next(b.p + b.off, b.len - b.off, 1 << 20, &p, &plen, &used), 1);
	assert_int_equal(af_answer_open(&r, p, plen, err, sizeof(err)), 0);
	assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 1);
	assert_false(it.ok);
	assert_int_equal(it.error.len, strlen("bad ? path /tmp/caf\xc3\xa9 ?? end"));
	assert_memory_equal(it.error.p, "bad ? path /tmp/caf\xc3\xa9 ?? end", it.error.len);
	assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 0);
	frame_buf_free(&b);
}

static void test_answer_encoder_refusals(void **state)
{
	struct frame_buf b = { 0 };
	struct af_builder w;
	char *big = repeat('m', 65536);
	size_t len;

	(void)state;
	assert_int_equal(af_answer_begin(&w, &b, AF_LAUNCH, 1, 200, NULL), -EINVAL);
	assert_int_equal(af_answer_begin(&w, &b, AF_STATUS, 1, 200, NULL), -EINVAL);
	assert_int_equal(af_answer_begin(&w, &b, AF_ACKS, 1, 65536, NULL), -EINVAL);
	assert_int_equal(af_answer_begin(&w, &b, AF_ACKS, 1, 400, big), -EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(af_answer_begin(&w, &b, AF_ACKS, 1, 200, NULL), 0);
	assert_int_equal(af_answer_add(&w, true, NULL), 0);
	/* A count at its limit: the next item is refused and the frame stays as it was. */
	len = b.len;
	w.n = UINT32_MAX;
	assert_int_equal(af_answer_add(&w, true, NULL), -EMSGSIZE);
	assert_int_equal(b.len, len);
	free(big);
	frame_buf_free(&b);
}

static void test_answer_reader_refusals(void **state)
{
	(void)state;
	assert_refused("R\1\0\0\0\0\0\0\0\xc8\0\0\0\2\0\0\0" "\1\0\0", 20, "2 items cannot fit in 3");
	assert_refused("A\1\0\0\0\0\0\0\0\xc8\0\0\0\xff\xff\xff\xff" "\1\0\0", 20,
		       "4294967295 items cannot fit");
	assert_refused("A\1\0\0\0\0\0\0\0\xc8\0\0\0\1\0\0\0" "\2\0\0", 20, "answer item 0: ok is 2");
	assert_refused("A\1\0\0\0\0\0\0\0\xc8\0\0\0\1\0\0\0" "\xff\0\0", 20, "ok is 255");
	assert_refused("R\1\0\0\0\0\0\0\0\xc8\0\0\0\1\0\0\0" "\0\2\0\xc3", 21,
		       "answer item 0: error is cut short");
	assert_refused("R\1\0\0\0\0\0\0\0\xc8\0\0\0\1\0\0\0" "\0\1\0\x80", 21,
		       "answer item 0: error is not UTF-8");
	assert_refused("R\1\0\0\0\0\0\0\0\xc8\0\0\0\1\0\0\0" "\0\1\0\0", 21,
		       "answer item 0: error is not UTF-8");
	assert_refused("R\1\0\0\0\0\0\0\0\xc8\0\0\0\2\0\0\0" "\0\1\0x" "\1\0", 23,
		       "answer item 1: cut short");
	assert_refused("R\1\0\0\0\0\0\0\0\xc8\0\0\0\1\0\0\0" "\1\0\0!", 21,
		       "1 bytes after the last item");
	assert_refused("A\1\0\0\0\0\0\0\0\x90\x01\2\0\xc3\x28\0\0\0\0", 19,
		       "answer frame: message is not UTF-8");
	assert_refused("A\1\0\0\0\0\0\0\0\x90\x01\2\0ab\0\0\0", 18, "answer frame: no item count");
	assert_refused("A\1\0\0\0\0\0\0\0\x90\x01\3\0ab", 15, "answer frame: message is cut short");
	assert_refused("A\1\0\0\0\0\0\0\0\x90\x01\0", 12, "answer frame: shorter than its header");
}

/* An error longer than 65535 bytes: cut before the character that would cross the limit. */
static void test_answer_error_cut_at_a_character(void **state)
{
	static const struct {
		const char *tail;       /* written from byte 65532 on */
		size_t want;
	} cases[] = {
		{ "abcd", 65535 },                          /* ASCII: cut at the limit */
		{ "\xe2\x82\xac", 65535 },                  /* 65535 bytes ending in a euro: whole */
		{ "\xe2\x82\xac!", 65535 },                 /* the euro ends at the limit */
		{ "a\xe2\x82\xac", 65533 },                 /* the euro would end one past it */
		{ "ab\xc3\xa9", 65534 },                    /* so would an e acute */
		{ "\xe2\x82\xac\xe2\x82\xac", 65535 },      /* a second euro starts past it */
		{ "abc\xf0\x9f\x98\x80", 65535 },            /* a 4-byte one starts past it */
		{ "a\xf0\x9f\x98\x80", 65533 },              /* a 4-byte one crosses it */
	};
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t tl = strlen(cases[c].tail);
		char *e = malloc(65532 + tl + 1);
		struct frame_buf b = { 0 };
		struct af_answer_reader r;
		struct af_answer_item it;
		struct af_builder w;
		char err[128];
		const char *p;
		size_t plen;

		assert_non_null(e);
		memset(e, 'x', 65532);
		memcpy(e + 65532, cases[c].tail, tl + 1);
		assert_int_equal(af_answer_begin(&w, &b, AF_RESULTS, 1, 200, NULL), 0);
		assert_int_equal(af_answer_add(&w, false, e), 0);
		assert_int_equal(af_answer_add(&w, true, NULL), 0);
		af_end(&w);
		p = only_frame(&b, 0, &plen);
		assert_int_equal(af_answer_open(&r, p, plen, err, sizeof(err)), 0);
		assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 1);
		assert_false(it.ok);
		if (it.error.len != cases[c].want)
			fail_msg("case %zu: error cut to %zu bytes, want %zu", c, it.error.len,
				 cases[c].want);
		assert_memory_equal(it.error.p, e, it.error.len);
		assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 1);
		assert_true(it.ok);
		assert_int_equal(af_answer_next(&r, &it, err, sizeof(err)), 0);
		free(e);
		frame_buf_free(&b);
	}
}

/* ---- truncations and trailing bytes of every valid frame ---- */

static void test_every_truncation_refused(void **state)
{
	struct el els[] = { { "web.1", "{\"a\":1}", 7 }, { "w\xc3\xa9" "b.2", "", 0 },
			    { "x", "{}", 2 } };
	struct item items[] = { { true, NULL }, { false, "no r\xc3\xa9sources" }, { true, "" } };
	struct frame_buf b = { 0 };
	size_t off = 0, nframes = 0;

	(void)state;
	assert_int_equal(af_hello_encode(&b, "agent-\xc3\xa9"), 0);
	assert_int_equal(af_error_encode(&b, 400, "bad frame"), 0);
	assert_int_equal(af_error_encode(&b, 413, NULL), 0);
	assert_int_equal(af_status_encode(&b, 5, "{}", 2), 0);
	build_call(&b, AF_LAUNCH, 1, els, 3);
	build_call(&b, AF_KILL, 2, els, 1);
	build_call(&b, AF_KILL, 3, NULL, 0);
	build_answer(&b, AF_RESULTS, 1, 200, NULL, items, 3);
	build_answer(&b, AF_ACKS, 5, 200, "ok", items, 1);
	build_answer(&b, AF_ACKS, 6, 503, "try again", NULL, 0);
	build_answer(&b, AF_RESULTS, 7, 200, NULL, NULL, 0);
	while (off < b.len) {
		const char *p;
		size_t plen, used;
		char err[256], *c;

		assert_int_equal(frame_next(b.p + off, b.len - off, SIZE_MAX, &p, &plen, &used), 1);
		/* the whole frame reads */
		c = exact_copy(p, plen);
		assert_int_equal(read_all(c, plen, err, sizeof(err)), 0);
		free(c);
		/* every cut short of its end is refused (a status frame's JSON is not looked
		 * at: its cuts inside the JSON are still status frames) */
		for (size_t cut = 0; cut < plen; cut++) {
			if (p[0] == AF_STATUS && cut >= 9)
				continue;
			c = exact_copy(p, cut);
			if (read_all(c, cut, err, sizeof(err)) != -EINVAL)
				fail_msg("frame %zu ('%c') cut to %zu of %zu bytes was read", nframes,
					 p[0], cut, plen);
			assert_true(err[0] != '\0');
			free(c);
		}
		/* one byte more is refused, except by a status frame (it is JSON) */
		if (p[0] != AF_STATUS) {
			c = malloc(plen + 1);
			assert_non_null(c);
			memcpy(c, p, plen);
			c[plen] = '}';
			assert_int_equal(read_all(c, plen + 1, err, sizeof(err)), -EINVAL);
			assert_non_null(strstr(err, "after"));
			free(c);
		}
		/* and so is the frame header cut short: no frame yet */
		for (size_t cut = 0; cut < used; cut++) {
			const char *q;
			size_t qlen, qused;

			assert_int_equal(frame_next(b.p + off, cut, SIZE_MAX, &q, &qlen, &qused), 0);
		}
		off += used;
		nframes++;
	}
	assert_int_equal(nframes, 11);
	frame_buf_free(&b);
}

/* ---- builders on a buffer that moves ---- */

/* b holds 150 consumed bytes at its front and 50 unsent ones: a small frame built then
 * stays where it is (its header is written at the right place behind the consumed bytes);
 * a big one has to move down (the room at the front is used first) and then grow
 * (realloc) between its begin and its end: offsets must follow. */
static void test_builders_on_a_moving_buffer(void **state)
{
	char pending[200], json[300], id[16];
	struct frame_buf b = { 0 };
	struct af_builder w;
	struct af_call_reader r;
	struct af_call_element e;
	struct af_answer_reader ar;
	struct af_answer_item it;
	char err[128];
	const char *p;
	size_t plen, used, cap;

	(void)state;
	for (size_t i = 0; i < sizeof(pending); i++)
		pending[i] = (char)i;
	memset(json, 'j', sizeof(json));
	assert_int_equal(frame_buf_put(&b, pending, sizeof(pending)), 0);
	frame_buf_consume(&b, 150);
	assert_int_equal(b.off, 150);
	cap = b.cap;
	assert_int_equal(af_call_begin(&w, &b, AF_KILL, 41), 0);
	assert_int_equal(af_call_add(&w, "k", "{}", 2), 0);
	af_end(&w);
	assert_int_equal(b.off, 150);                       /* nothing moved */
	assert_int_equal(b.len, 200 + 4 + 13 + 1 + 1 + 4 + 2);
	assert_int_equal(af_call_begin(&w, &b, AF_LAUNCH, 42), 0);
	assert_int_equal(b.off, 150);                       /* nothing moved yet */
	assert_int_equal(af_call_add(&w, "t.0", json, 100), 0);
	assert_int_equal(b.off, 0);                         /* moved down to the front */
	assert_int_equal(b.cap, cap);
	for (int i = 1; i < 40; i++) {
		snprintf(id, sizeof(id), "t.%d", i);
		assert_int_equal(af_call_add(&w, id, json, 100 + (size_t)i), 0);
	}
	assert_true(b.cap > cap);                           /* and grew */
	af_end(&w);
	cap = b.cap;

	/* an answer begun with consumed bytes in front again: the unsent 50 go first */
	assert_memory_equal(b.p + b.off, pending + 150, 50);
	frame_buf_consume(&b, 20);
	assert_int_equal(af_answer_begin(&w, &b, AF_ACKS, 43, 200, "m"), 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(af_answer_add(&w, i % 2, i % 2 ? NULL : "refused"), 0);
	af_end(&w);
	assert_true(b.cap > cap);

	assert_int_equal(b.off, 0);
	assert_memory_equal(b.p, pending + 170, 30);
	assert_int_equal(frame_next(b.p + 30, b.len - 30, SIZE_MAX, &p, &plen, &used), 1);
	assert_int_equal(af_call_open(&r, p, plen, err, sizeof(err)), 0);
	assert_int_equal(r.kind, AF_KILL);
	assert_true(r.call_id == 41);
	assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 1);
	assert_text(e.task_id, "k", 1);
	assert_text(e.json, "{}", 2);
	assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 0);
	frame_buf_consume(&b, 30 + used);
	assert_int_equal(frame_next(b.p + b.off, b.len - b.off, SIZE_MAX, &p, &plen, &used), 1);
	assert_int_equal(af_call_open(&r, p, plen, err, sizeof(err)), 0);
	assert_true(r.call_id == 42);
	assert_int_equal(r.n, 40);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 1);
		snprintf(id, sizeof(id), "t.%d", i);
		assert_text(e.task_id, id, strlen(id));
		assert_text(e.json, json, 100 + (size_t)i);
	}
	assert_int_equal(af_call_next(&r, &e, err, sizeof(err)), 0);
	frame_buf_consume(&b, used);
	p = only_frame(&b, b.off, &plen);
	assert_int_equal(af_answer_open(&ar, p, plen, err, sizeof(err)), 0);
	assert_true(ar.id == 43);
	assert_text(ar.message, "m", 1);
	assert_int_equal(ar.n, 2000);
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(af_answer_next(&ar, &it, err, sizeof(err)), 1);
		assert_int_equal(it.ok, i % 2);
		assert_text(it.error, "refused", i % 2 ? 0 : 7);
	}
	assert_int_equal(af_answer_next(&ar, &it, err, sizeof(err)), 0);
	frame_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_of_every_byte),
		cmocka_unit_test(test_hello_round_trip),
		cmocka_unit_test(test_hello_bad_agent_id),
		cmocka_unit_test(test_status_round_trip),
		cmocka_unit_test(test_error_round_trip),
		cmocka_unit_test(test_call_round_trips),
		cmocka_unit_test(test_call_encoder_refusals),
		cmocka_unit_test(test_call_reader_refusals),
		cmocka_unit_test(test_answer_round_trips),
		cmocka_unit_test(test_answer_encoder_refusals),
		cmocka_unit_test(test_answer_reader_refusals),
		cmocka_unit_test(test_answer_error_cut_at_a_character),
		cmocka_unit_test(test_answer_error_text_cleaned),
		cmocka_unit_test(test_every_truncation_refused),
		cmocka_unit_test(test_builders_on_a_moving_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
