/* test_agent_health.c - the agent's health checks: TASKINFO "health_checks" parsing (what a
 * launch is refused for) and the per-check state machine driven by a fake clock (delay,
 * interval, grace period, consecutive failures -> unhealthy, a pass resets). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "agent/health.h"

static struct hc_def def(double grace, double interval, int max_failures)
{
	return (struct hc_def){ .protocol = HC_TCP, .port = 31000, .grace = grace,
				.interval = interval, .timeout = 1, .delay = 2,
				.max_failures = max_failures };
}

/* ---- parsing ---- */

static void test_parse_defaults_and_fields(void **state)
{
	json_t *arr = json_pack("[{s:s, s:i}, {s:s, s:s, s:i, s:i, s:f, s:i, s:b},"
				" {s:s, s:s}]",
				"protocol", "TCP", "port", 31000,
				"protocol", "HTTP", "path", "/health", "port", 31001,
				"interval_seconds", 1, "grace_period_seconds", 0.5,
				"max_consecutive_failures", 0, "ignore_http1xx", 1,
				"protocol", "COMMAND", "command", "test -f /tmp/ok");
	struct hc_def d[HC_MAX_CHECKS];
	char err[256] = "";
	size_t n = 99;

	(void)state;
	assert_int_equal(health_defs_parse(arr, d, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(d[0].protocol, HC_TCP);
	assert_int_equal(d[0].port, 31000);
	/* Marathon's defaults */
	assert_true(d[0].grace == 300 && d[0].interval == 60 && d[0].timeout == 20 &&
		    d[0].delay == 15 && d[0].max_failures == 3 && !d[0].ignore_1xx);
	assert_int_equal(d[1].protocol, HC_HTTP);
	assert_string_equal(d[1].path, "/health");
	assert_true(d[1].interval == 1 && d[1].grace == 0.5 && d[1].max_failures == 0 &&
		    d[1].ignore_1xx);
	assert_int_equal(d[2].protocol, HC_COMMAND);
	assert_string_equal(d[2].command, "test -f /tmp/ok");
	json_decref(arr);

	assert_int_equal(health_defs_parse(NULL, d, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
}

static void expect_bad(const char *text, const char *needle)
{
	json_t *arr = json_loads(text, 0, NULL);
	struct hc_def d[HC_MAX_CHECKS];
	char err[256] = "";
	size_t n = 7;

	assert_non_null(arr);
	assert_int_equal(health_defs_parse(arr, d, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(n, 0);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not name '%s'", err, needle);
	json_decref(arr);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	expect_bad("{}", "/task/health_checks");
	expect_bad("[1]", "/task/health_checks/0");
	expect_bad("[{\"protocol\":\"UDP\",\"port\":1}]", "/task/health_checks/0/protocol");
	expect_bad("[{\"protocol\":\"TCP\"}]", "/task/health_checks/0/port");
	expect_bad("[{\"protocol\":\"TCP\",\"port\":70000}]", "/task/health_checks/0/port");
	expect_bad("[{\"protocol\":\"HTTP\",\"port\":80,\"path\":\"x\"}]", "/path");
	expect_bad("[{\"protocol\":\"HTTP\",\"port\":80,\"path\":\"/a b\"}]", "/path");
	expect_bad("[{\"protocol\":\"HTTP\",\"port\":80,\"path\":\"/a\\u0001\"}]", "/path");
	expect_bad("[{\"protocol\":\"COMMAND\"}]", "/task/health_checks/0/command");
	expect_bad("[{\"protocol\":\"COMMAND\",\"command\":\"\"}]", "/command");
	expect_bad("[{\"protocol\":\"TCP\",\"port\":1},{\"protocol\":\"TCP\",\"port\":1,"
		   "\"interval_seconds\":0}]", "/task/health_checks/1/interval_seconds");
	expect_bad("[{\"protocol\":\"TCP\",\"port\":1,\"timeout_seconds\":-1}]", "timeout_seconds");
	expect_bad("[{\"protocol\":\"TCP\",\"port\":1,\"max_consecutive_failures\":1.5}]",
		   "max_consecutive_failures");
	expect_bad("[{\"protocol\":\"TCP\",\"port\":1,\"ignore_http1xx\":\"yes\"}]", "ignore_http1xx");
}

static void test_launch_refused_for_bad_check(void **state)
{
	json_t *info = json_pack("{s:s, s:{s:b, s:s}, s:{s:f, s:f}, s:[{s:s}]}",
				 "task_id", "web.1", "command", "shell", 1, "value", "sleep 1",
				 "resources", "cpus", 0.1, "mem", 32.0,
				 "health_checks", "protocol", "TCP");
	struct task_info ti;
	char err[256] = "";

	(void)state;
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/task/health_checks/0/port"));
	json_decref(info);
}

/* ---- the state machine ---- */

static void test_first_probe_after_delay_then_interval(void **state)
{
	struct hc_def d = def(0, 5, 3);
	struct hc_state s;

	(void)state;
	hc_state_init(&s, &d, 100);
	assert_true(s.next_due == 102);          /* delaySeconds */
	assert_int_equal(s.health, HC_UNKNOWN);
	assert_true(hc_state_result(&s, &d, true, NULL, 102.5, 1000));
	assert_int_equal(s.health, HC_HEALTHY);
	assert_true(s.next_due == 107.5);        /* interval from the end of the probe */
	assert_true(s.first_success == 1000 && s.last_success == 1000);
	/* the same result again: nothing new to report */
	assert_false(hc_state_result(&s, &d, true, NULL, 107.6, 1005));
	assert_true(s.first_success == 1000 && s.last_success == 1005);
	hc_state_skip(&s, &d, 110);
	assert_true(s.next_due == 115);
	assert_int_equal(s.health, HC_HEALTHY);
}

static void test_grace_period_ignores_failures_until_a_pass(void **state)
{
	struct hc_def d = def(10, 1, 2);
	struct hc_state s;

	(void)state;
	hc_state_init(&s, &d, 0);
	/* inside the grace period, never passed: not counted, nothing to report */
	assert_false(hc_state_result(&s, &d, false, "refused", 3, 1003));
	assert_false(hc_state_result(&s, &d, false, "refused", 9.9, 1009));
	assert_int_equal(s.consecutive_failures, 0);
	assert_int_equal(s.health, HC_UNKNOWN);
	assert_true(s.last_failure == 0);
	/* after the grace period failures count */
	assert_true(hc_state_result(&s, &d, false, "refused", 10.5, 1010));
	assert_int_equal(s.consecutive_failures, 1);
	assert_int_equal(s.health, HC_UNKNOWN);
	assert_true(hc_state_result(&s, &d, false, "refused again", 11.5, 1011));
	assert_int_equal(s.consecutive_failures, 2);
	assert_int_equal(s.health, HC_UNHEALTHY);
	assert_string_equal(s.last_failure_cause, "refused again");
	assert_true(s.last_failure == 1011);
}

static void test_failure_after_a_pass_counts_inside_grace(void **state)
{
	struct hc_def d = def(300, 1, 2);
	struct hc_state s;

	(void)state;
	hc_state_init(&s, &d, 0);
	assert_true(hc_state_result(&s, &d, true, NULL, 3, 1003));
	assert_true(hc_state_result(&s, &d, false, "HTTP 500", 4, 1004));
	assert_int_equal(s.consecutive_failures, 1);
	assert_int_equal(s.health, HC_HEALTHY);  /* one failure of two allowed */
	assert_true(hc_state_result(&s, &d, false, "HTTP 500", 5, 1005));
	assert_int_equal(s.health, HC_UNHEALTHY);
	/* further failures change nothing the master must hear */
	assert_false(hc_state_result(&s, &d, false, "HTTP 500", 6, 1006));
	assert_int_equal(s.consecutive_failures, 3);
	/* a pass makes it healthy again and resets the count */
	assert_true(hc_state_result(&s, &d, true, NULL, 7, 1007));
	assert_int_equal(s.health, HC_HEALTHY);
	assert_int_equal(s.consecutive_failures, 0);
	assert_true(s.first_success == 1003 && s.last_success == 1007);
}

static void test_success_resets_the_count(void **state)
{
	struct hc_def d = def(0, 1, 3);
	struct hc_state s;

	(void)state;
	hc_state_init(&s, &d, 0);
	assert_true(hc_state_result(&s, &d, false, "x", 2, 2));
	assert_true(hc_state_result(&s, &d, false, "x", 3, 3));
	assert_int_equal(s.consecutive_failures, 2);
	assert_true(hc_state_result(&s, &d, true, NULL, 4, 4));   /* count reset is news */
	assert_int_equal(s.consecutive_failures, 0);
	assert_true(hc_state_result(&s, &d, false, "x", 5, 5));
	assert_true(hc_state_result(&s, &d, false, "x", 6, 6));
	assert_int_equal(s.health, HC_HEALTHY);                   /* 2 of 3 */
	assert_true(hc_state_result(&s, &d, false, "x", 7, 7));
	assert_int_equal(s.health, HC_UNHEALTHY);
}

/* A cause cut inside a UTF-8 character still makes valid JSON. */
static void test_long_cause_is_cut_cleanly(void **state)
{
	struct hc_def d = def(0, 1, 1);
	struct hc_state s;
	char cause[400];
	json_t *j;

	(void)state;
	memset(cause, 'a', sizeof(cause));
	for (size_t i = 150; i + 2 < sizeof(cause); i += 2)
		memcpy(cause + i, "\xc3\xa9", 2);            /* e-acute */
	cause[sizeof(cause) - 1] = '\0';
	hc_state_init(&s, &d, 0);
	hc_state_result(&s, &d, false, cause, 1, 1);
	j = hc_state_json(&s);
	assert_non_null(j);
	assert_true(strlen(json_string_value(json_object_get(j, "last_failure_cause"))) < HC_CAUSE_MAX);
	json_decref(j);
}

static void test_zero_max_failures_is_unhealthy_at_first(void **state)
{
	struct hc_def d = def(0, 1, 0);
	struct hc_state s;

	(void)state;
	hc_state_init(&s, &d, 0);
	assert_true(hc_state_result(&s, &d, false, "x", 2, 2));
	assert_int_equal(s.health, HC_UNHEALTHY);
	assert_false(hc_state_result(&s, &d, false, "x", 3, 3));
}

static void test_aggregate_and_json(void **state)
{
	struct hc_def d = def(0, 1, 1);
	struct hc_state s[2];
	json_t *j;

	(void)state;
	hc_state_init(&s[0], &d, 0);
	hc_state_init(&s[1], &d, 0);
	assert_int_equal(hc_aggregate(s, 0), HC_UNKNOWN);
	assert_int_equal(hc_aggregate(s, 2), HC_UNKNOWN);
	hc_state_result(&s[0], &d, true, NULL, 2, 2);
	assert_int_equal(hc_aggregate(s, 2), HC_UNKNOWN);
	hc_state_result(&s[1], &d, true, NULL, 2, 2);
	assert_int_equal(hc_aggregate(s, 2), HC_HEALTHY);
	hc_state_result(&s[1], &d, false, "connect: refused", 3, 3);
	assert_int_equal(hc_aggregate(s, 2), HC_UNHEALTHY);
	j = hc_state_json(&s[1]);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "alive")));
	assert_int_equal(json_integer_value(json_object_get(j, "consecutive_failures")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "last_failure_cause")),
			    "connect: refused");
	json_decref(j);
	hc_state_init(&s[0], &d, 0);
	j = hc_state_json(&s[0]);
	assert_true(json_is_null(json_object_get(j, "alive")));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_defaults_and_fields),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_launch_refused_for_bad_check),
		cmocka_unit_test(test_first_probe_after_delay_then_interval),
		cmocka_unit_test(test_grace_period_ignores_failures_until_a_pass),
		cmocka_unit_test(test_failure_after_a_pass_counts_inside_grace),
		cmocka_unit_test(test_success_resets_the_count),
		cmocka_unit_test(test_zero_max_failures_is_unhealthy_at_first),
		cmocka_unit_test(test_long_cause_is_cut_cleanly),
		cmocka_unit_test(test_aggregate_and_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
