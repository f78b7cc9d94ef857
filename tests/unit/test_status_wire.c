/* test_status_wire.c - the streaming status body reader (master/status_wire.c): a full
 * batch and a single update read into structs, string escapes (also in key names), unknown
 * keys of every shape skipped, every top-level answer the route gives ("Invalid JSON" with a
 * position, not an object, agent_id/update/updates, too many updates), repeated keys, fields
 * of the wrong type read as absent (what json_*_value gave the old code), and the limits
 * (nesting depth, health checks per update, updates per batch, int64 range, long keys). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/status_wire.h"

static char err[256];
static bool syntax;

static int parse(const char *text, struct status_batch *b)
{
	err[0] = '\0';
	syntax = false;
	return status_wire_parse(text, strlen(text), b, &syntax, err, sizeof(err));
}

/* text must be refused; the message must hold fragment; syntax as given. */
static void refused(const char *text, bool want_syntax, const char *fragment)
{
	struct status_batch b;

	if (parse(text, &b) != -EINVAL)
		fail_msg("accepted: %s", text);
	if (syntax != want_syntax || !strstr(err, fragment))
		fail_msg("%s: got '%s' (syntax %d), wanted '%s' (syntax %d)", text, err, syntax,
			 fragment, want_syntax);
}

static void test_full_batch(void **state)
{
	struct status_batch b;
	const struct status_update *u;

	(void)state;
	assert_int_equal(parse(" {\"agent_id\":\"agent-1\",\"updates\":[\n"
			       "{\"uuid\":\"u-1\",\"task_id\":\"team-a_web.1\",\"framework_id\":\"fw\","
			       "\"state\":\"TASK_FAILED\",\"reason\":\"REASON_COMMAND_EXECUTOR_FAILED\","
			       "\"message\":\"exited 3\",\"source\":\"SOURCE_EXECUTOR\","
			       "\"timestamp\":1795625000.125,\"exit_code\":3,\"signal\":-9},\r\n"
			       "{\"task_id\":\"t.2\",\"uuid\":\"u-2\",\"state\":\"TASK_RUNNING\",\"timestamp\":7,"
			       "\"healthy\":false,\"health_checks\":[{\"alive\":false,"
			       "\"consecutive_failures\":3,\"first_success\":1.5,\"last_success\":2,"
			       "\"last_failure\":3e2,\"last_failure_cause\":\"refused\"},{\"alive\":true}]},"
			       "{\"uuid\":\"u-3\",\"task_id\":\"t.3\",\"state\":\"TASK_RUNNING\","
			       "\"healthy\":true,\"health_checks\":[{}]}]}\t", &b), 0);
	assert_string_equal(b.agent_id, "agent-1");
	assert_false(b.single);
	assert_int_equal(b.nupdates, 3);
	u = &b.updates[0];
	assert_string_equal(u->uuid, "u-1");
	assert_string_equal(u->task_id, "team-a_web.1");
	assert_string_equal(u->state, "TASK_FAILED");
	assert_string_equal(u->reason, "REASON_COMMAND_EXECUTOR_FAILED");
	assert_string_equal(u->message, "exited 3");
	assert_true(u->timestamp == 1795625000.125);
	assert_true(u->has_exit_code && u->exit_code == 3);
	assert_true(u->has_signal && u->signal == -9);
	assert_false(u->has_healthy);
	assert_int_equal(u->nchecks, 0);
	u = &b.updates[1];
	assert_string_equal(u->uuid, "u-2");
	assert_null(u->reason);
	assert_null(u->message);
	assert_true(u->timestamp == 7.0);
	assert_false(u->has_exit_code);
	assert_false(u->has_signal);
	assert_true(u->has_healthy && !u->healthy);
	assert_int_equal(u->nchecks, 2);
	assert_int_equal(u->checks[0].alive, 0);
	assert_true(u->checks[0].consecutive_failures == 3.0);
	assert_true(u->checks[0].first_success == 1.5);
	assert_true(u->checks[0].last_success == 2.0);
	assert_true(u->checks[0].last_failure == 300.0);
	assert_string_equal(u->checks[0].last_failure_cause, "refused");
	assert_int_equal(u->checks[1].alive, 1);
	assert_null(u->checks[1].last_failure_cause);
	/* the third update's checks follow the second's */
	u = &b.updates[2];
	assert_true(u->has_healthy && u->healthy);
	assert_int_equal(u->nchecks, 1);
	assert_ptr_equal(u->checks, b.updates[1].checks + 2);
	assert_int_equal(u->checks[0].alive, -1);
	assert_true(u->checks[0].consecutive_failures == 0 && u->checks[0].last_failure == 0);
	status_wire_free(&b);
}

static void test_single_update(void **state)
{
	struct status_batch b;

	(void)state;
	/* An empty agent_id is a string: the route took it (the task's agent then differs). */
	assert_int_equal(parse("{\"update\":{\"uuid\":\"u\",\"task_id\":\"t\",\"state\":\"TASK_RUNNING\"},"
			       "\"agent_id\":\"\"}", &b), 0);
	assert_true(b.single);
	assert_int_equal(b.nupdates, 1);
	assert_string_equal(b.agent_id, "");
	assert_string_equal(b.updates[0].uuid, "u");
	assert_null(b.updates[0].checks);
	status_wire_free(&b);

	/* An empty batch is a batch. */
	assert_int_equal(parse("{\"agent_id\":\"a\",\"updates\":[]}", &b), 0);
	assert_false(b.single);
	assert_int_equal(b.nupdates, 0);
	status_wire_free(&b);
}

static void test_escapes(void **state)
{
	struct status_batch b;

	(void)state;
	/* Escaped key names are the same keys; every escape decodes; a surrogate pair is one
	 * 4-byte character; raw UTF-8 passes through. */
	assert_int_equal(parse("{\"agent\\u005fid\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\xc3\xa9\","
			       "\"upd\\u0061tes\":[{\"t\\u0061sk_id\":\"x\\u0041\",\"message\":\"line\\nnext\","
			       "\"health_checks\":[{\"last_failure_cause\":\"\\u00e9t\\u00e9\"}]}]}", &b), 0);
	assert_string_equal(b.agent_id, "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9");
	assert_string_equal(b.updates[0].task_id, "xA");
	assert_string_equal(b.updates[0].message, "line\nnext");
	assert_string_equal(b.updates[0].checks[0].last_failure_cause, "\xc3\xa9t\xc3\xa9");
	status_wire_free(&b);

	refused("{\"agent_id\":\"\\ud83d\",\"updates\":[]}", true, "surrogate");
	refused("{\"agent_id\":\"\\ude00\",\"updates\":[]}", true, "lone low surrogate");
	refused("{\"agent_id\":\"\\u0000\",\"updates\":[]}", true, "\\u0000");
	refused("{\"agent_id\":\"\\u12g4\",\"updates\":[]}", true, "invalid \\u escape");
	refused("{\"agent_id\":\"\\x\",\"updates\":[]}", true, "invalid escape");
	refused("{\"agent_id\":\"a\tb\",\"updates\":[]}", true, "control character");
	refused("{\"agent_id\":\"\xc3\",\"updates\":[]}", true, "invalid UTF-8");
	refused("{\"agent_id\":\"a\",\"updates\":[{\"message\":\"\xed\xa0\x80\"}]}", true,
		"invalid UTF-8");
}

/* Keys the reader does not read are skipped whatever their value, also inside updates and
 * health checks, and so are members whose name is too long to be one of its keys. */
static void test_unknown_keys(void **state)
{
	struct status_batch b;

	(void)state;
	assert_int_equal(parse("{\"x\":{\"a\":[1,2.5e-3,{\"b\":null}],\"c\":\"\\u00e9\"},\"agent_id\":\"a\","
			       "\"y\":[],\"z\":true,\"w\":false,\"v\":-0,"
			       "\"a_key_far_longer_than_any_key_of_a_status_body\":\"s\","
			       "\"updates\":[{\"uuid\":\"u\",\"executor\":{\"id\":[{}]},\"labels\":[[[]]],"
			       "\"health_checks\":[{\"protocol\":\"HTTP\",\"alive\":true,\"extra\":[1]}],"
			       "\"task_id\":\"t\",\"state\":\"TASK_RUNNING\"}]}", &b), 0);
	assert_string_equal(b.agent_id, "a");
	assert_int_equal(b.nupdates, 1);
	assert_string_equal(b.updates[0].uuid, "u");
	assert_string_equal(b.updates[0].state, "TASK_RUNNING");
	assert_int_equal(b.updates[0].checks[0].alive, 1);
	status_wire_free(&b);
}

#define NEEDS "invalid status: needs 'agent_id' (string) and either 'update' (object) or " \
	      "'updates' (array)"

/* Every top-level answer of the route, with the words it had. */
static void test_top_level_errors(void **state)
{
	(void)state;
	refused("", true, "Request body is empty; a JSON document is expected");
	refused(" \n", true, "Request body is empty");
	refused("{\"agent_id\":", true, "premature end of input at line 1 column 13");
	refused("{\"agent_id\":\"a\",\n\"updates\":[}", true, "invalid token at line 2 column 12");
	refused("5", true, "'[' or '{' expected");
	refused("\"text\"", true, "'[' or '{' expected");
	refused("{} x", true, "end of file expected");
	refused("{\"a\" 1}", true, "':' expected");
	refused("{\"a\":1 \"b\":2}", true, "',' or '}' expected");
	refused("[1 2]", true, "',' or ']' expected");
	refused("{\"agent_id\":1.}", true, "invalid number");
	refused("{\"agent_id\":tru}", true, "invalid token");

	refused("[{\"agent_id\":\"a\",\"updates\":[]}]", false, "request body must be a JSON object");
	refused("{\"agent_id\":\"agent-1\"}", false, NEEDS);
	refused("{\"updates\":[]}", false, NEEDS);
	refused("{\"agent_id\":5,\"updates\":[]}", false, NEEDS);
	refused("{\"agent_id\":null,\"update\":{}}", false, NEEDS);
	refused("{\"agent_id\":\"a\",\"updates\":{}}", false, NEEDS);
	refused("{\"agent_id\":\"a\",\"update\":[]}", false, NEEDS);
	refused("{\"agent_id\":\"a\",\"update\":\"u\"}", false, NEEDS);
	refused("{\"agent_id\":\"a\",\"update\":{},\"updates\":[]}", false, NEEDS);
	refused("{\"agent_id\":\"a\",\"updates\":[],\"update\":null}", false, NEEDS);
	refused("{\"agent_id\":\"a\",\"update\":{},\"updates\":null}", false, NEEDS);
}

/* A repeated key jansson refuses (JSON_REJECT_DUPLICATES) is refused when it is one of the
 * reader's; a repeated unknown key is skipped (the documented difference). */
static void test_repeated_keys(void **state)
{
	struct status_batch b;

	(void)state;
	refused("{\"agent_id\":\"a\",\"agent_id\":\"b\",\"updates\":[]}", true, "duplicate key");
	refused("{\"agent_id\":\"a\",\"updates\":[],\"upd\\u0061tes\":[]}", true, "duplicate key");
	refused("{\"agent_id\":\"a\",\"updates\":[{\"uuid\":\"1\",\"uuid\":\"2\"}]}", true,
		"duplicate key in an update");
	refused("{\"agent_id\":\"a\",\"update\":{\"healthy\":true,\"healthy\":false}}", true,
		"duplicate key in an update");
	refused("{\"agent_id\":\"a\",\"updates\":[{\"health_checks\":[{\"alive\":true,\"alive\":1}]}]}",
		true, "duplicate key in a health check");
	assert_int_equal(parse("{\"agent_id\":\"a\",\"x\":1,\"x\":2,\"updates\":[]}", &b), 0);
	status_wire_free(&b);
}

/* A field of another type reads as json_*_value read it: a string field that is not a
 * string is NULL, a number that is not one is 0, exit_code/signal/healthy are present
 * only with their type; health_checks that is not an array holds no check, and a check
 * that is not an object has every field absent. The master's verdicts follow from these
 * (test_master_tasks.c: test_status_field_types). */
static void test_field_types(void **state)
{
	struct status_batch b;
	const struct status_update *u;

	(void)state;
	assert_int_equal(parse("{\"agent_id\":\"a\",\"updates\":[{\"uuid\":5,\"task_id\":[\"t\"],"
			       "\"state\":{},\"reason\":true,\"message\":null,\"timestamp\":\"1\","
			       "\"exit_code\":1.0,\"signal\":\"9\",\"healthy\":1,\"health_checks\":{}},"
			       "7,\"u\",null,[],"
			       "{\"healthy\":true,\"health_checks\":[1,{\"alive\":\"yes\","
			       "\"consecutive_failures\":\"3\",\"first_success\":true,\"last_success\":[],"
			       "\"last_failure\":null,\"last_failure_cause\":4},{\"alive\":null}],"
			       "\"exit_code\":-2147483649,\"timestamp\":-5}]}", &b), 0);
	assert_int_equal(b.nupdates, 6);
	for (size_t i = 0; i < 5; i++) {
		u = &b.updates[i];
		assert_null(u->uuid);
		assert_null(u->task_id);
		assert_null(u->state);
		assert_null(u->reason);
		assert_null(u->message);
		assert_true(u->timestamp == 0);
		assert_false(u->has_exit_code);
		assert_false(u->has_signal);
		assert_false(u->has_healthy);
		assert_int_equal(u->nchecks, 0);
	}
	u = &b.updates[5];
	assert_true(u->has_healthy && u->healthy);
	assert_true(u->has_exit_code && u->exit_code == -2147483649LL);
	assert_true(u->timestamp == -5.0);
	assert_int_equal(u->nchecks, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(u->checks[i].alive, -1);
		assert_true(u->checks[i].consecutive_failures == 0);
		assert_true(u->checks[i].first_success == 0);
		assert_true(u->checks[i].last_success == 0);
		assert_true(u->checks[i].last_failure == 0);
		assert_null(u->checks[i].last_failure_cause);
	}
	status_wire_free(&b);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *sep,
		    const char *tail)
{
	size_t len = strlen(head) + n * (strlen(unit) + strlen(sep)) + strlen(tail) + 1;
	char *s = malloc(len), *p = s;

	assert_non_null(s);
	p += sprintf(p, "%s", head);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? sep : "", unit);
	sprintf(p, "%s", tail);
	return s;
}

static void test_limits(void **state)
{
	struct status_batch b;
	char *s, *open, *close;
	char want[128];

	(void)state;
	/* At most STATUS_BATCH_MAX updates; the message counts them all. */
	s = repeat("{\"agent_id\":\"a\",\"updates\":[", "{\"uuid\":\"u\"}", STATUS_BATCH_MAX, ",", "]}");
	assert_int_equal(parse(s, &b), 0);
	assert_int_equal(b.nupdates, STATUS_BATCH_MAX);
	assert_string_equal(b.updates[STATUS_BATCH_MAX - 1].uuid, "u");
	status_wire_free(&b);
	free(s);
	s = repeat("{\"agent_id\":\"a\",\"updates\":[", "{}", STATUS_BATCH_MAX + 3, ",", "]}");
	snprintf(want, sizeof(want), "invalid status: 'updates' holds %d updates, at most %d",
		 STATUS_BATCH_MAX + 3, STATUS_BATCH_MAX);
	refused(s, false, want);
	free(s);
	/* ... and the syntax of those past the limit is still checked. */
	s = repeat("{\"agent_id\":\"a\",\"updates\":[", "{}", STATUS_BATCH_MAX + 1, ",", ",{\"x\":}]}");
	refused(s, true, "invalid token");
	free(s);

	/* The first STATUS_WIRE_MAX_CHECKS health checks are read, the others skipped. */
	s = repeat("{\"agent_id\":\"a\",\"update\":{\"healthy\":true,\"health_checks\":[",
		   "{\"alive\":true}", STATUS_WIRE_MAX_CHECKS + 4, ",", "]}}");
	assert_int_equal(parse(s, &b), 0);
	assert_int_equal(b.updates[0].nchecks, STATUS_WIRE_MAX_CHECKS);
	assert_int_equal(b.updates[0].checks[STATUS_WIRE_MAX_CHECKS - 1].alive, 1);
	status_wire_free(&b);
	free(s);

	/* Nesting: STATUS_WIRE_MAX_DEPTH levels are read, one more is refused. */
	open = repeat("", "[", STATUS_WIRE_MAX_DEPTH - 1, "", "");
	close = repeat("", "]", STATUS_WIRE_MAX_DEPTH - 1, "", "");
	s = malloc(strlen(open) * 2 + 64);
	sprintf(s, "{\"agent_id\":\"a\",\"updates\":[],\"x\":%s%s}", open, close);
	assert_int_equal(parse(s, &b), 0);
	status_wire_free(&b);
	sprintf(s, "{\"agent_id\":\"a\",\"updates\":[],\"x\":[%s%s]}", open, close);
	refused(s, true, "nested too deeply");
	free(s);
	free(open);
	free(close);

	/* Integers are int64 (as jansson reads them); reals must stay finite. */
	assert_int_equal(parse("{\"agent_id\":\"a\",\"update\":{\"exit_code\":-9223372036854775808,"
			       "\"signal\":9223372036854775807}}", &b), 0);
	assert_true(b.updates[0].exit_code == INT64_MIN);
	assert_true(b.updates[0].signal == INT64_MAX);
	status_wire_free(&b);
	refused("{\"agent_id\":\"a\",\"update\":{\"exit_code\":9223372036854775808}}", true,
		"too big integer");
	refused("{\"agent_id\":\"a\",\"update\":{\"timestamp\":1e999}}", true, "real number overflow");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_batch),
		cmocka_unit_test(test_single_update),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_top_level_errors),
		cmocka_unit_test(test_repeated_keys),
		cmocka_unit_test(test_field_types),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
