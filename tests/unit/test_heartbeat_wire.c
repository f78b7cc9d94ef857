/* test_heartbeat_wire.c - the streaming heartbeat body reader (master/heartbeat_wire.c): a
 * body with task references read into structs (strings decoded, stats counters as the
 * master counted them, elements and fields of the wrong type read as absent, unknown keys
 * of any shape skipped), and the refusals: not JSON, not an object, a repeated key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "master/heartbeat_wire.h"

static char err[256];
static bool syntax;

static int parse(const char *text, struct heartbeat *hb)
{
	err[0] = '\0';
	return heartbeat_wire_parse(text, strlen(text), hb, &syntax, err, sizeof(err));
}

static void test_body_read(void **state)
{
	struct heartbeat hb;

	(void)state;
	assert_int_equal(parse("{\"x\":[{\"y\":null}],\"agent_id\":\"a\\u00e9\",\"tasks\":["
			       "{\"task_id\":\"t.1\",\"framework_id\":\"f\",\"state\":\"TASK_RUNNING\","
			       "\"stats\":{\"rx_bytes\":10,\"tx_bytes\":2.5e3,\"rx_packets\":-4,"
			       "\"tx_packets\":\"7\",\"other\":1}},"
			       "5,{\"task_id\":7,\"state\":null,\"stats\":[1]}]}", &hb), 0);
	assert_string_equal(hb.agent_id, "a\xc3\xa9");
	assert_true(hb.has_tasks && hb.tasks_array);
	assert_int_equal(hb.ntasks, 3);
	assert_string_equal(hb.tasks[0].task_id, "t.1");
	assert_string_equal(hb.tasks[0].state, "TASK_RUNNING");
	assert_true(hb.tasks[0].has_stats);
	assert_int_equal(hb.tasks[0].rx_bytes, 10);
	assert_int_equal(hb.tasks[0].tx_bytes, 2500);
	assert_int_equal(hb.tasks[0].rx_packets, 0);     /* not > 0 */
	assert_int_equal(hb.tasks[0].tx_packets, 0);     /* not a number */
	assert_null(hb.tasks[1].task_id);                /* not an object: ignored */
	assert_null(hb.tasks[2].task_id);
	assert_null(hb.tasks[2].state);
	assert_false(hb.tasks[2].has_stats);
	heartbeat_wire_free(&hb);
	/* "tasks" there but not an array; agent_id not a string. */
	assert_int_equal(parse("{\"agent_id\":1,\"tasks\":{}}", &hb), 0);
	assert_null(hb.agent_id);
	assert_true(hb.has_tasks);
	assert_false(hb.tasks_array);
	heartbeat_wire_free(&hb);
}

static void test_refusals(void **state)
{
	struct heartbeat hb;

	(void)state;
	assert_int_equal(parse("{\"agent_id\":\"a\",", &hb), -EINVAL);
	assert_true(syntax);
	assert_non_null(strstr(err, "line 1 column"));
	assert_int_equal(parse("", &hb), -EINVAL);
	assert_true(syntax);
	assert_int_equal(parse("[1,2]", &hb), -EINVAL);
	assert_false(syntax);
	assert_string_equal(err, "request body must be a JSON object");
	assert_int_equal(parse("{\"agent_id\":\"a\",\"agent_id\":\"b\"}", &hb), -EINVAL);
	assert_true(syntax);
	assert_int_equal(parse("{\"tasks\":[{\"task_id\":\"a\",\"task_id\":\"b\"}]}", &hb), -EINVAL);
	assert_true(syntax);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_read),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
