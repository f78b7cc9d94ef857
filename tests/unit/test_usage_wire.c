/* test_usage_wire.c - the streaming usage batch reader (master/usage_wire.c): a full batch
 * read into structs, string escapes (\uXXXX, surrogate pairs, escaped key names), unknown
 * keys of every shape skipped, the limits (nesting depth, task id length, reports per
 * batch, int64 range), syntax errors ("Invalid JSON" with a position), top-level field
 * errors named as before, and bad reports marked with their first bad field; and the
 * binary batch of pacer-usage/2 streams (master/usage_binary.c, lib/usage_frame.c): read
 * back exactly as encoded, every cut of a frame refused, fewer or more counter fields than
 * the reader knows, the same verdicts on bad readings, damaged headers refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/frame.h"
#include "lib/usage_frame.h"
#include "master/usage_wire.h"

static char err[256];
static bool syntax;

static int parse(const char *text, struct usage_batch *b)
{
	err[0] = '\0';
	return usage_wire_parse(text, strlen(text), b, &syntax, err, sizeof(err));
}

static void test_full_batch(void **state)
{
	struct usage_batch b;

	(void)state;
	assert_int_equal(parse(" {\"agent_id\":\"agent-1\",\"seq\":42,\"reports\":[{\"task_id\":\"t.1\","
			       "\"app_id\":\"/team-a/web\",\"final\":true,\"at\":1795625000.125,\"rx_bytes\":1,"
			       "\"cpu_ns\":9223372036854775807,\"mem_peak_bytes\":14},\n{\"task_id\":\"t.2\","
			       "\"at\":7}]}\r\n", &b), 0);
	assert_string_equal(b.agent_id, "agent-1");
	assert_int_equal(b.seq, 42);
	assert_int_equal(b.nreports, 2);
	assert_null(b.reports[0].bad_name);
	assert_string_equal(b.reports[0].task_id, "t.1");
	assert_string_equal(b.reports[0].app_id, "/team-a/web");
	assert_true(b.reports[0].final);
	assert_true(b.reports[0].has_at);
	assert_true(b.reports[0].at == 1795625000.125);
	assert_int_equal(b.reports[0].counters[0], 1);
	assert_int_equal(b.reports[0].counters[9], INT64_MAX);
	assert_int_equal(b.reports[0].counters[14], 14);
	assert_int_equal(b.reports[0].counters[1], 0);
	assert_null(b.reports[1].app_id);
	assert_false(b.reports[1].final);
	assert_true(b.reports[1].at == 7.0);
	usage_wire_free(&b);
}

static void test_escapes(void **state)
{
	struct usage_batch b;

	(void)state;
	/* Escaped key names are the same keys; every escape decodes; a surrogate pair is one
	 * 4-byte character; raw UTF-8 passes through. */
	assert_int_equal(parse("{\"agent\\u005fid\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\xc3\xa9\","
			       "\"seq\":1,\"reports\":[{\"t\\u0061sk_id\":\"x\"}]}", &b), 0);
	assert_string_equal(b.agent_id, "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9");
	assert_string_equal(b.reports[0].task_id, "x");
	usage_wire_free(&b);

	static const char *const bad[] = {
		"{\"agent_id\":\"\\ud83d\",\"seq\":1,\"reports\":[]}",          /* lone high surrogate */
		"{\"agent_id\":\"\\ud83d\\u0041\",\"seq\":1,\"reports\":[]}",   /* high + not a low one */
		"{\"agent_id\":\"\\ude00\",\"seq\":1,\"reports\":[]}",          /* lone low surrogate */
		"{\"agent_id\":\"\\u0000\",\"seq\":1,\"reports\":[]}",          /* NUL */
		"{\"agent_id\":\"\\u12g4\",\"seq\":1,\"reports\":[]}",          /* not hex */
		"{\"agent_id\":\"\\x\",\"seq\":1,\"reports\":[]}",              /* unknown escape */
		"{\"agent_id\":\"a\tb\",\"seq\":1,\"reports\":[]}",             /* raw control character */
		"{\"agent_id\":\"\xc0\xaf\",\"seq\":1,\"reports\":[]}",         /* overlong UTF-8 */
		"{\"agent_id\":\"\xed\xa0\x80\",\"seq\":1,\"reports\":[]}",     /* UTF-8 surrogate */
		"{\"agent_id\":\"\xf4\x90\x80\x80\",\"seq\":1,\"reports\":[]}", /* above U+10FFFF */
		"{\"agent_id\":\"abc",                                           /* unterminated */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &b), -EINVAL);
		assert_true(syntax);
	}
}

static void test_unknown_keys_skipped(void **state)
{
	struct usage_batch b;

	(void)state;
	assert_int_equal(parse("{\"v\":{\"a\":[1,{\"b\":[[],{}]},\"s\\\"}\"],\"c\":null},\"agent_id\":\"a\","
			       "\"x\":-1.5e+300,\"seq\":3,\"y\":[true,false,null],\"reports\":[{\"task_id\":\"t\","
			       "\"extra\":{\"tx_bytes\":\"no\"},\"tx_bytes\":5,\"z\":[{\"task_id\":1}]}]}", &b), 0);
	assert_int_equal(b.seq, 3);
	assert_int_equal(b.nreports, 1);
	assert_null(b.reports[0].bad_name);
	assert_int_equal(b.reports[0].counters[1], 5);
	usage_wire_free(&b);
}

static char *nested(int depth)
{
	size_t n = 64 + 2 * (size_t)depth;
	char *s = malloc(n), *p = s;

	p += sprintf(p, "{\"agent_id\":\"a\",\"seq\":1,\"reports\":[],\"x\":");
	for (int i = 0; i < depth - 1; i++)
		*p++ = '[';
	for (int i = 0; i < depth - 1; i++)
		*p++ = ']';
	strcpy(p, "}");
	return s;
}

static void test_limits(void **state)
{
	struct usage_batch b;
	char *s, *p, id[256];
	size_t n;

	(void)state;
	s = nested(USAGE_WIRE_MAX_DEPTH);
	assert_int_equal(parse(s, &b), 0);
	usage_wire_free(&b);
	free(s);
	s = nested(USAGE_WIRE_MAX_DEPTH + 1);
	assert_int_equal(parse(s, &b), -EINVAL);
	assert_true(syntax);
	assert_non_null(strstr(err, "nested too deeply"));
	free(s);

	/* Task ids: 1..200 bytes. */
	memset(id, 'i', 200);
	id[200] = '\0';
	s = malloc(600);
	sprintf(s, "{\"agent_id\":\"a\",\"seq\":1,\"reports\":[{\"task_id\":\"%s\"},{\"task_id\":\"%si\"}]}", id, id);
	assert_int_equal(parse(s, &b), 0);
	assert_null(b.reports[0].bad_name);
	assert_string_equal(b.reports[1].bad_name, "task_id");
	usage_wire_free(&b);
	free(s);

	/* int64: the largest passes, one more is not JSON we take (jansson: too big integer). */
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":9223372036854775807,\"reports\":[]}", &b), 0);
	assert_int_equal(b.seq, INT64_MAX);
	usage_wire_free(&b);
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":9223372036854775808,\"reports\":[]}", &b), -EINVAL);
	assert_true(syntax);
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":1,\"reports\":[],\"x\":-9223372036854775809}", &b),
			 -EINVAL);
	assert_true(syntax);
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":1,\"reports\":[],\"x\":1e999}", &b), -EINVAL);
	assert_true(syntax);

	/* At most 20000 reports in one batch. */
	n = 64 + 20001 * 3;
	s = malloc(n);
	p = s + sprintf(s, "{\"agent_id\":\"a\",\"seq\":1,\"reports\":[{}");
	for (int i = 1; i < 20001; i++)
		p += sprintf(p, ",{}");
	strcpy(p, "]}");
	assert_int_equal(parse(s, &b), -EINVAL);
	assert_false(syntax);
	assert_string_equal(err, "reports: at most 20000 per batch");
	free(s);
}

static void test_errors(void **state)
{
	struct usage_batch b;

	(void)state;
	assert_int_equal(parse("", &b), -EINVAL);
	assert_true(syntax);
	assert_string_equal(err, "Request body is empty; a JSON document is expected");
	assert_int_equal(parse("{\"agent_id\":\"a\",\n \"seq\":1,,}", &b), -EINVAL);
	assert_true(syntax);
	assert_string_equal(err, "string or '}' expected at line 2 column 10");
	static const char *const bad_json[] = {
		"5", "{\"agent_id\":\"a\"} x", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}", "{\"a\":.5}",
		"{\"a\":tru}", "{\"a\" 1}", "[1,]", "{\"agent_id\":\"a\",\"agent_id\":\"b\"}",
		"{\"reports\":[{\"tx_bytes\":1,\"tx_bytes\":2}]}", "{\"a\":[1 2]}",
	};
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		assert_int_equal(parse(bad_json[i], &b), -EINVAL);
		assert_true(syntax);
	}

	/* Valid JSON, bad batch: named as the master always named them. */
	assert_int_equal(parse("[]", &b), -EINVAL);
	assert_false(syntax);
	assert_string_equal(err, "agent_id is missing");
	assert_int_equal(parse("{\"agent_id\":\"\",\"seq\":1,\"reports\":[]}", &b), -EINVAL);
	assert_string_equal(err, "agent_id is missing");
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":1.0,\"reports\":[]}", &b), -EINVAL);
	assert_string_equal(err, "seq must be an integer > 0");
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":0,\"reports\":[]}", &b), -EINVAL);
	assert_string_equal(err, "seq must be an integer > 0");
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":1,\"reports\":{}}", &b), -EINVAL);
	assert_false(syntax);
	assert_string_equal(err, "reports must be an array");
}

static void test_bad_reports_marked(void **state)
{
	struct usage_batch b;

	(void)state;
	assert_int_equal(parse("{\"agent_id\":\"a\",\"seq\":1,\"reports\":[7,{\"app_id\":\"x\"},"
			       "{\"task_id\":\"t\",\"tx_bytes\":1.0},{\"task_id\":\"t\",\"rx_bytes\":-1},"
			       "{\"cpu_ns\":\"x\",\"task_id\":\"t\",\"at\":\"now\",\"final\":1},"
			       "{\"task_id\":\"t\",\"at\":null,\"tx_bytes\":\"x\"},"
			       "{\"task_id\":\"ok\",\"app_id\":5,\"cpu_ns\":-0}]}", &b), 0);
	assert_int_equal(b.nreports, 7);
	assert_string_equal(b.reports[0].bad_name, "task_id");
	assert_string_equal(b.reports[1].bad_name, "task_id");
	assert_string_equal(b.reports[2].bad_name, "tx_bytes");
	assert_string_equal(b.reports[2].bad_what, "must be a non-negative integer");
	assert_string_equal(b.reports[3].bad_name, "rx_bytes");
	assert_string_equal(b.reports[4].bad_name, "final");     /* checked before at and counters */
	assert_string_equal(b.reports[5].bad_name, "at");
	assert_null(b.reports[6].bad_name);
	assert_null(b.reports[6].app_id);                        /* not a string: as if absent */
	assert_int_equal(b.reports[6].counters[9], 0);
	usage_wire_free(&b);
}

/* ---- binary batches ---- */

/* The payload of one encoded batch (without the frame header), in *f. */
static const char *encode(struct frame_buf *f, const char *agent, uint64_t seq,
			  const struct usage_frame_reading *r, size_t n, size_t *len)
{
	f->off = f->len = 0;
	assert_int_equal(usage_frame_encode(f, agent, seq, r, n), 0);
	*len = f->len - FRAME_HEADER;
	return f->p + FRAME_HEADER;
}

static void test_binary_round_trip_and_cuts(void **state)
{
	struct usage_frame_reading r[3] = {
		{ .task_id = "t.1", .app_id = "/team-a/web", .final = true, .has_at = true,
		  .at = 1795625000.125 },
		{ .task_id = "t.2" },
		{ .task_id = "\xc3\xa9t\xc3\xa9", .app_id = "" },
	};
	struct frame_buf f = { 0 };
	struct usage_batch b;
	const char *p;
	size_t len;

	(void)state;
	for (size_t i = 0; i < USAGE_FRAME_NFIELDS; i++)
		r[0].counters[i] = i == 9 ? INT64_MAX : i * 3 + 1;
	p = encode(&f, "agent-1", 42, r, 3, &len);
	assert_int_equal(usage_binary_parse(p, len, &b, err, sizeof(err)), 0);
	assert_string_equal(b.agent_id, "agent-1");
	assert_int_equal(b.seq, 42);
	assert_int_equal(b.nreports, 3);
	assert_null(b.reports[0].bad_name);
	assert_string_equal(b.reports[0].task_id, "t.1");
	assert_string_equal(b.reports[0].app_id, "/team-a/web");
	assert_true(b.reports[0].final);
	assert_true(b.reports[0].has_at);
	assert_true(b.reports[0].at == 1795625000.125);
	for (size_t i = 0; i < USAGE_FRAME_NFIELDS; i++)
		assert_int_equal(b.reports[0].counters[i], (int64_t)r[0].counters[i]);
	assert_null(b.reports[1].app_id);
	assert_false(b.reports[1].final);
	assert_false(b.reports[1].has_at);
	assert_string_equal(b.reports[2].task_id, "\xc3\xa9t\xc3\xa9");
	assert_string_equal(b.reports[2].app_id, "");
	usage_wire_free(&b);
	/* Every cut, and one byte too many, is refused without reading past the end. */
	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n ? n : 1);

		memcpy(copy, p, n);
		assert_int_equal(usage_binary_parse(copy, n, &b, err, sizeof(err)), -EINVAL);
		free(copy);
	}
	assert_int_equal(frame_buf_put(&f, "x", 1), 0);
	assert_int_equal(usage_binary_parse(f.p + FRAME_HEADER, len + 1, &b, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "bytes after the last reading"));
	/* Ids that do not fit their length fields, or empty ones, are not encoded. */
	r[1].task_id = "";
	assert_int_equal(usage_frame_encode(&f, "a", 1, r, 2), -EINVAL);
	assert_int_equal(usage_frame_encode(&f, "", 1, r, 1), -EINVAL);
	frame_buf_free(&f);
}

/* A hand-built frame: header with nfields, one reading with the given task id bytes. */
static size_t raw_frame(unsigned char *out, uint64_t seq, unsigned nfields, uint8_t flags,
			const char *tid, size_t tlen, double at, uint64_t counter)
{
	unsigned char *p = out;
	uint64_t bits;

	memcpy(&bits, &at, 8);
	for (int i = 0; i < 4; i++)
		*p++ = (unsigned char)(USAGE_FRAME_MAGIC >> (8 * i));
	for (int i = 0; i < 8; i++)
		*p++ = (unsigned char)(seq >> (8 * i));
	*p++ = (unsigned char)nfields;
	*p++ = (unsigned char)(nfields >> 8);
	*p++ = 1;
	*p++ = 0;
	*p++ = 1;
	*p++ = 0;
	*p++ = 0;
	*p++ = 0;
	*p++ = 'a';
	*p++ = flags;
	*p++ = (unsigned char)tlen;
	*p++ = 0;
	*p++ = 0;
	for (int i = 0; i < 8; i++)
		*p++ = (unsigned char)(bits >> (8 * i));
	for (unsigned f = 0; f < nfields; f++)
		for (int i = 0; i < 8; i++)
			*p++ = (unsigned char)((f == 0 ? counter : f) >> (8 * i));
	memcpy(p, tid, tlen);
	return (size_t)(p + tlen - out);
}

static void test_binary_fields_and_verdicts(void **state)
{
	unsigned char buf[2048];
	struct usage_batch b;
	size_t n;

	(void)state;
	/* A newer sender with 20 fields: the 15 known are read, the rest skipped. */
	n = raw_frame(buf, 1, 20, 0, "t", 1, 0, 5);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_int_equal(b.reports[0].counters[0], 5);
	assert_int_equal(b.reports[0].counters[14], 14);
	usage_wire_free(&b);
	/* An older one with 2: the others are 0. */
	n = raw_frame(buf, 1, 2, 0, "t", 1, 0, 5);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_int_equal(b.reports[0].counters[1], 1);
	assert_int_equal(b.reports[0].counters[2], 0);
	usage_wire_free(&b);
	/* Bad readings are marked, as the JSON reader marks them. */
	n = raw_frame(buf, 1, 15, 0, "t\0u", 3, 0, 5);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_string_equal(b.reports[0].bad_name, "task_id");
	usage_wire_free(&b);
	n = raw_frame(buf, 1, 15, 0, "t\xc0\xaf", 3, 0, 5);      /* overlong '/' */
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_string_equal(b.reports[0].bad_name, "task_id");
	usage_wire_free(&b);
	n = raw_frame(buf, 1, 15, 0, "", 0, 0, 5);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_string_equal(b.reports[0].bad_name, "task_id");
	usage_wire_free(&b);
	{
		char long_id[201];

		memset(long_id, 'x', sizeof(long_id));
		n = raw_frame(buf, 1, 15, 0, long_id, 201, 0, 5);
		assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
		assert_string_equal(b.reports[0].bad_name, "task_id");
		usage_wire_free(&b);
	}
	n = raw_frame(buf, 1, 15, USAGE_FRAME_AT, "t", 1, 1.0 / 0.0, 5);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_string_equal(b.reports[0].bad_name, "at");
	usage_wire_free(&b);
	n = raw_frame(buf, 1, 15, 0, "t", 1, 0, (uint64_t)INT64_MAX + 1);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), 0);
	assert_string_equal(b.reports[0].bad_name, "rx_bytes");
	usage_wire_free(&b);
	/* The frame itself: seq 0 and a wrong magic are refused, naming what is wrong. */
	n = raw_frame(buf, 0, 15, 0, "t", 1, 0, 5);
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "seq"));
	n = raw_frame(buf, 1, 15, 0, "t", 1, 0, 5);
	buf[0] = '{';
	assert_int_equal(usage_binary_parse((char *)buf, n, &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "magic"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_batch),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_unknown_keys_skipped),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bad_reports_marked),
		cmocka_unit_test(test_binary_round_trip_and_cuts),
		cmocka_unit_test(test_binary_fields_and_verdicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
