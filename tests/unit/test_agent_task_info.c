/* test_agent_task_info.c - TASKINFO validation (what /v1/launch answers 400 to) and the
 * environment a task gets (PORT0..n, PORT, PORTS, HOST, MESOS_*, MARATHON_APP_ID). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/agent.h"

static json_t *base_info(void)
{
	return json_pack("{s:s, s:s, s:s, s:{s:b, s:s}, s:{s:f, s:f, s:f, s:[[i,i]]}, s:[i,i], s:{s:s}}",
			 "task_id", "team-a_web.3f0c", "name", "web", "app_id", "/team-a/web",
			 "command", "shell", 1, "value", "echo $PORT0",
			 "resources", "cpus", 0.5, "mem", 64.0, "disk", 0.0, "ports", 31001, 31002,
			 "ports", 31001, 31002, "env", "GREETING", "hi");
}

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);

	for (char **p = env; *p; p++)
		if (strncmp(*p, key, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

static void expect_invalid(json_t *info, const char *needle)
{
	struct task_info ti;
	char err[512] = "";

	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not name '%s'", err, needle);
	json_decref(info);
}

static void test_valid_shell_task(void **state)
{
	json_t *info = base_info();
	struct task_info ti;
	char err[512];

	(void)state;
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), 0);
	assert_string_equal(ti.task_id, "team-a_web.3f0c");
	assert_true(ti.shell);
	assert_string_equal(ti.command, "echo $PORT0");
	assert_null(ti.argv);
	assert_true(ti.cpus == 0.5);
	assert_true(ti.mem == 64.0);
	assert_int_equal(ti.nports, 2);
	assert_int_equal(ti.ports[1], 31002);
	assert_true(ti.kill_grace == DEFAULT_KILL_GRACE);
	task_info_free(&ti);
	json_decref(info);
}

static void test_argv_task(void **state)
{
	json_t *info = base_info();
	struct task_info ti;
	char err[512];

	(void)state;
	json_object_set_new(info, "command", json_pack("{s:b, s:s, s:[s,s]}", "shell", 0,
						       "value", "/bin/echo", "arguments", "echo", "hello"));
	json_object_set_new(info, "kill_grace_period_seconds", json_integer(7));
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), 0);
	assert_false(ti.shell);
	assert_string_equal(ti.command, "/bin/echo");
	assert_string_equal(ti.argv[0], "echo");
	assert_string_equal(ti.argv[1], "hello");
	assert_null(ti.argv[2]);
	assert_true(ti.kill_grace == 7);
	task_info_free(&ti);

	/* no arguments: the program alone is argv */
	json_object_set_new(info, "command", json_pack("{s:b, s:s}", "shell", 0, "value", "/bin/true"));
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), 0);
	assert_string_equal(ti.argv[0], "/bin/true");
	assert_null(ti.argv[1]);
	task_info_free(&ti);
	json_decref(info);
}

static void test_bad_task_ids(void **state)
{
	const char *bad[] = { "", "../etc", "a/b", ".hidden", "-x", "sp ace", "q\"uote" };
	char longid[TASK_ID_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *info = base_info();

		json_object_set_new(info, "task_id", json_string(bad[i]));
		expect_invalid(info, "/task/task_id");
	}
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_false(task_id_valid(longid));
	longid[TASK_ID_MAX] = '\0';
	assert_true(task_id_valid(longid));
	{
		json_t *info = base_info();

		json_object_del(info, "task_id");
		expect_invalid(info, "/task/task_id");
	}
}

static void test_bad_fields(void **state)
{
	json_t *info;

	(void)state;
	expect_invalid(json_string("x"), "/task");

	info = base_info();
	json_object_del(info, "command");
	expect_invalid(info, "/task/command");

	info = base_info();
	json_object_set_new(info, "command", json_pack("{s:b, s:s}", "shell", 1, "value", ""));
	expect_invalid(info, "/task/command/value");

	info = base_info();
	json_object_set_new(info, "command", json_pack("{s:s, s:s}", "shell", "yes", "value", "x"));
	expect_invalid(info, "/task/command/shell");

	info = base_info();
	json_object_set_new(info, "command", json_pack("{s:b, s:[s,i]}", "shell", 0, "arguments", "a", 1));
	expect_invalid(info, "/task/command/arguments/1");

	info = base_info();
	json_object_set_new(json_object_get(info, "resources"), "cpus", json_integer(0));
	expect_invalid(info, "/task/resources/cpus");

	info = base_info();
	json_object_set_new(json_object_get(info, "resources"), "mem", json_string("64"));
	expect_invalid(info, "/task/resources/mem");

	info = base_info();
	json_object_del(info, "resources");
	expect_invalid(info, "/task/resources");

	info = base_info();
	json_object_set_new(info, "ports", json_pack("[i]", 70000));
	expect_invalid(info, "/task/ports/0");

	info = base_info();
	json_object_set_new(info, "env", json_pack("{s:i}", "N", 1));
	expect_invalid(info, "/task/env/N");

	info = base_info();
	json_object_set_new(info, "user", json_integer(0));
	expect_invalid(info, "/task/user");

	info = base_info();
	json_object_set_new(info, "kill_grace_period_seconds", json_integer(-1));
	expect_invalid(info, "/task/kill_grace_period_seconds");
}

static void test_ports_from_ranges(void **state)
{
	json_t *info = base_info();
	struct task_info ti;
	char err[512];

	(void)state;
	json_object_del(info, "ports");
	json_object_set_new(json_object_get(info, "resources"), "ports", json_pack("[[i,i],[i,i]]", 31000, 31001, 31005, 31005));
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), 0);
	assert_int_equal(ti.nports, 3);
	assert_int_equal(ti.ports[2], 31005);
	task_info_free(&ti);

	json_object_set_new(json_object_get(info, "resources"), "ports", json_pack("[[i,i]]", 31002, 31001));
	expect_invalid(info, "/task/resources/ports/0");
}

static void test_environment(void **state)
{
	json_t *info = base_info();
	struct task_info ti;
	char err[512], **env;

	(void)state;
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), 0);
	env = task_env_build(&ti, "198.18.0.2", "/w/sandboxes/team-a_web.3f0c");
	assert_non_null(env);
	assert_string_equal(env_get(env, "PORT0"), "31001");
	assert_string_equal(env_get(env, "PORT1"), "31002");
	assert_null(env_get(env, "PORT2"));
	assert_string_equal(env_get(env, "PORT"), "31001");
	assert_string_equal(env_get(env, "PORTS"), "31001,31002");
	assert_string_equal(env_get(env, "HOST"), "198.18.0.2");
	assert_string_equal(env_get(env, "MESOS_TASK_ID"), "team-a_web.3f0c");
	assert_string_equal(env_get(env, "MARATHON_APP_ID"), "/team-a/web");
	assert_string_equal(env_get(env, "MESOS_SANDBOX"), "/w/sandboxes/team-a_web.3f0c");
	assert_string_equal(env_get(env, "GREETING"), "hi");
	assert_non_null(env_get(env, "PATH"));
	strv_free(env);
	task_info_free(&ti);

	/* the app's own env wins over ours, and no ports means no PORT variables */
	json_object_set_new(json_object_get(info, "env"), "HOST", json_string("custom"));
	json_object_set_new(info, "ports", json_array());
	assert_int_equal(task_info_parse(info, &ti, err, sizeof(err)), 0);
	env = task_env_build(&ti, "127.0.0.1", "/s");
	assert_string_equal(env_get(env, "HOST"), "custom");
	assert_null(env_get(env, "PORT"));
	assert_null(env_get(env, "PORTS"));
	assert_null(env_get(env, "PORT0"));
	strv_free(env);
	task_info_free(&ti);
	json_decref(info);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_shell_task),
		cmocka_unit_test(test_argv_task),
		cmocka_unit_test(test_bad_task_ids),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_ports_from_ranges),
		cmocka_unit_test(test_environment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
