/* test_app_validate.c - app definition validation (each bad field names its path, the
 * Marathon 422 shape, unsupported and unknown fields) and the app JSON round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "master/marathon/app.h"
#include "master/marathon/app_validate.h"

/* Validates text; returns the cleaned definition or NULL, and the details. */
static json_t *validate(const char *text, json_t **details)
{
	json_error_t jerr;
	json_t *def = json_loads(text, 0, &jerr), *out = NULL;

	if (!def)
		fail_msg("test JSON does not parse: %s", jerr.text);
	*details = NULL;
	app_validate(def, NULL, &out, details);
	json_decref(def);
	return out;
}

/* The errors listed under path, or NULL. */
static json_t *errors_at(json_t *details, const char *path)
{
	size_t i;
	json_t *d;

	json_array_foreach(details, i, d)
		if (strcmp(json_string_value(json_object_get(d, "path")), path) == 0)
			return json_object_get(d, "errors");
	return NULL;
}

static void expect_error(const char *text, const char *path, const char *msg_part)
{
	json_t *details, *out = validate(text, &details), *errs;
	size_t i;
	json_t *e;
	bool found = false;

	if (out)
		fail_msg("%s was accepted", text);
	errs = errors_at(details, path);
	if (!errs) {
		char *s = json_dumps(details, 0);

		fail_msg("no error at %s for %s; details: %s", path, text, s);
	}
	json_array_foreach(errs, i, e)
		found = found || strstr(json_string_value(e), msg_part);
	if (!found)
		fail_msg("errors at %s for %s do not mention '%s'", path, text, msg_part);
	json_decref(details);
}

static void test_minimal_app_gets_defaults(void **state)
{
	json_t *details, *out = validate("{\"id\":\"web\",\"cmd\":\"sleep 1\"}", &details);
	struct app a;

	(void)state;
	assert_non_null(out);
	assert_null(details);
	assert_string_equal(json_string_value(json_object_get(out, "id")), "/web");
	assert_int_equal(app_from_json(out, &a), 0);
	assert_true(a.cpus == APP_DEFAULT_CPUS && a.mem == APP_DEFAULT_MEM && a.disk == 0);
	assert_int_equal(a.instances, 1);
	assert_int_equal(a.port_count, 1);       /* Marathon's default: one port, any number */
	assert_int_equal(a.ports[0].port, 0);
	assert_string_equal(a.cmd, "sleep 1");
	assert_null(a.args);
	assert_true(a.kill_grace < 0);
	assert_true(app_kill_grace(&a) == APP_DEFAULT_KILL_GRACE);
	app_free(&a);
	json_decref(out);
}

static void test_each_bad_field_names_its_path(void **state)
{
	(void)state;
	expect_error("{\"cmd\":\"x\"}", "/id", "error.path.missing");
	expect_error("{\"id\":5,\"cmd\":\"x\"}", "/id", "error.expected.jsstring");
	expect_error("{\"id\":\"Web\",\"cmd\":\"x\"}", "/id", "must fully match");
	expect_error("{\"id\":\"w\"}", "/", "must either contain one of 'cmd' or 'args'");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"args\":[\"y\"]}", "/", "not both");
	expect_error("{\"id\":\"w\",\"cmd\":\"\"}", "/cmd", "must not be empty");
	expect_error("{\"id\":\"w\",\"args\":[]}", "/args", "must not be empty");
	expect_error("{\"id\":\"w\",\"args\":[1]}", "/args(0)", "error.expected.jsstring");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"cpus\":-1}", "/cpus", "got -1.0, expected more than 0.0 (it is the task's cgroup limit)");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"cpus\":0}", "/cpus", "got 0.0, expected more than 0.0 (it is the task's cgroup limit)");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"mem\":0}", "/mem", "got 0.0, expected more than 0.0 (it is the task's cgroup limit)");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"cpus\":\"1\"}", "/cpus", "error.expected.jsnumber");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"mem\":-5}", "/mem", "expected more than 0.0 (it is the task's cgroup limit)");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"disk\":-5}", "/disk", "expected 0.0 or more");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"instances\":-1}", "/instances", "expected 0 or more");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"instances\":1.5}", "/instances", "error.expected.jsnumber");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"env\":[]}", "/env", "error.expected.jsobject");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"env\":{\"A\":1}}", "/env/A", "error.expected.jsstring");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"env\":{\"A\":{\"secret\":\"s\"}}}", "/env/A", "not supported yet");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"labels\":{\"A\":true}}", "/labels/A", "error.expected.jsstring");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":{}}", "/portDefinitions", "error.expected.jsarray");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{\"port\":70000}]}",
		     "/portDefinitions(0)/port", "between 0 and 65535");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{\"port\":0},{\"port\":1,\"protocol\":\"sctp\"}]}",
		     "/portDefinitions(1)/protocol", "is not one of");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{\"port\":80},{\"port\":80}]}",
		     "/portDefinitions", "Ports must be unique.");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{\"port\":0,\"name\":\"Web\"}]}",
		     "/portDefinitions(0)/name", "must fully match");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{\"port\":0,\"name\":\"a\"},{\"port\":0,\"name\":\"a\"}]}",
		     "/portDefinitions", "Port names must be unique.");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{}]}", "/portDefinitions(0)/port", "error.path.missing");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"ports\":[0],\"portDefinitions\":[]}", "/", "both ports and port definitions");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"user\":7}", "/user", "error.expected.jsstring");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"taskKillGracePeriodSeconds\":0}",
		     "/taskKillGracePeriodSeconds", "expected greater than 0");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"requirePorts\":false,\"portDefinitions\":[{\"port\":80}]}",
		     "/requirePorts", "not supported yet");
}

static void test_unsupported_and_unknown_fields(void **state)
{
	(void)state;
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"container\":{\"type\":\"DOCKER\"}}",
		     "/container", "not supported yet");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"readinessChecks\":[{\"name\":\"r\"}]}",
		     "/readinessChecks", "not supported yet");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"uris\":[\"http://a/b\"]}", "/uris", "not supported yet");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"cpu\":1}", "/cpu", "unknown field");
}

/* Marathon's defaults for unsupported fields change nothing, and read-only fields of the
 * served form are dropped: a GET can be PUT back. */
static void test_defaults_and_read_only_accepted(void **state)
{
	json_t *details, *out = validate(
		"{\"id\":\"/w\",\"cmd\":\"x\",\"constraints\":[],\"healthChecks\":[],"
		"\"upgradeStrategy\":{\"minimumHealthCapacity\":1,\"maximumOverCapacity\":1},"
		"\"backoffSeconds\":1,\"backoffFactor\":1.15,\"maxLaunchDelaySeconds\":3600,"
		"\"container\":null,\"acceptedResourceRoles\":[\"*\"],\"requirePorts\":true,"
		"\"version\":\"2020-01-01T00:00:00.000Z\",\"tasksRunning\":3,\"tasks\":[],"
		"\"deployments\":[{\"id\":\"x\"}],\"args\":null}", &details);

	(void)state;
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "constraints")), 0);
	assert_null(json_object_get(out, "version"));
	assert_null(json_object_get(out, "tasksRunning"));
	assert_null(json_object_get(out, "args"));
	assert_null(json_object_get(out, "requirePorts"));
	json_decref(out);
}

/* constraints, backoff, upgradeStrategy, killSelection, unreachableStrategy: Marathon's
 * rules, each problem under its own path. */
static void test_behaviour_fields_validated(void **state)
{
	json_t *details, *out;

	(void)state;
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"rack\",\"NEAR\"]]}",
		     "/constraints(0)", "Constraint operator must be one of");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"hostname\",\"UNIQUE\"],"
		     "[\"rack\",\"LIKE\"]]}", "/constraints(1)", "regular expression value");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"rack\",\"LIKE\",\"a(\"]]}",
		     "/constraints(0)", "is not a valid regular expression");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"rack\",\"MAX_PER\",\"two\"]]}",
		     "/constraints(0)", "is not a number");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"rack\",\"MAX_PER\"]]}",
		     "/constraints(0)", "Missing value");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"rack\",\"GROUP_BY\",\"-1\"]]}",
		     "/constraints(0)", "is not a number");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"hostname\",\"UNIQUE\",\"x\"]]}",
		     "/constraints(0)", "Value specified but not used");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"hostname\"]]}",
		     "/constraints(0)", "either 2 or 3 fields");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":{\"a\":1}}",
		     "/constraints", "error.expected.jsarray");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"backoffFactor\":0.5}", "/backoffFactor",
		     "expected between 1 and");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"backoffSeconds\":-1}", "/backoffSeconds",
		     "expected between 0 and");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"upgradeStrategy\":{\"minimumHealthCapacity\":1.5}}",
		     "/upgradeStrategy/minimumHealthCapacity", "expected between 0 and 1");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"upgradeStrategy\":{\"max\":1}}",
		     "/upgradeStrategy/max", "unknown field");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"killSelection\":\"RANDOM\"}", "/killSelection",
		     "is not one of");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"unreachableStrategy\":{\"inactiveAfterSeconds\":60,"
		     "\"expungeAfterSeconds\":30}}", "/unreachableStrategy/expungeAfterSeconds",
		     "greater than or equal to inactiveAfterSeconds");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"unreachableStrategy\":\"never\"}",
		     "/unreachableStrategy", "disabled");

	out = validate("{\"id\":\"w\",\"cmd\":\"x\",\"constraints\":[[\"hostname\",\"UNIQUE\"],"
		       "[\"rack\",\"CLUSTER\",\"a\"],[\"rack\",\"GROUP_BY\"],[\"rack\",\"GROUP_BY\",\"3\"],"
		       "[\"rack\",\"LIKE\",\"[ab]\"],[\"rack\",\"UNLIKE\",\"c|d\"],[\"rack\",\"MAX_PER\",\"2\"]],"
		       "\"backoffSeconds\":2,\"backoffFactor\":2,\"maxLaunchDelaySeconds\":60,"
		       "\"upgradeStrategy\":{\"minimumHealthCapacity\":0.5,\"maximumOverCapacity\":0.25},"
		       "\"killSelection\":\"OLDEST_FIRST\","
		       "\"unreachableStrategy\":{\"inactiveAfterSeconds\":5,\"expungeAfterSeconds\":10}}",
		       &details);
	assert_non_null(out);
	assert_int_equal(json_array_size(json_object_get(out, "constraints")), 7);
	json_decref(out);
	out = validate("{\"id\":\"w\",\"cmd\":\"x\",\"unreachableStrategy\":\"disabled\"}", &details);
	assert_non_null(out);
	json_decref(out);
}

static void test_422_body_shape(void **state)
{
	json_t *details = json_array(), *body;

	(void)state;
	validation_add(details, "/cpus", "first");
	validation_add(details, "/mem", "other");
	validation_add(details, "/cpus", "second");
	body = validation_body(details);
	assert_string_equal(json_string_value(json_object_get(body, "message")), "Object is not valid");
	details = json_object_get(body, "details");
	assert_int_equal(json_array_size(details), 2);   /* grouped by path */
	assert_int_equal(json_array_size(errors_at(details, "/cpus")), 2);
	json_decref(body);
}

static void test_round_trip(void **state)
{
	json_t *details, *out = validate(
		"{\"id\":\"/team-a/web\",\"args\":[\"/bin/echo\",\"hi\"],\"cpus\":0.25,\"mem\":64,"
		"\"disk\":10,\"instances\":3,\"env\":{\"A\":\"1\"},\"labels\":{\"tier\":\"web\"},"
		"\"portDefinitions\":[{\"port\":0,\"name\":\"http\",\"protocol\":\"tcp\"},"
		"{\"port\":8080,\"protocol\":\"udp\",\"labels\":{\"x\":\"y\"}}],\"user\":\"nobody\","
		"\"taskKillGracePeriodSeconds\":5}", &details);
	struct app a, b;
	json_t *j1, *j2, *cmd;

	(void)state;
	assert_non_null(out);
	assert_int_equal(app_from_json(out, &a), 0);
	snprintf(a.version, sizeof(a.version), "2026-01-01T00:00:00.000Z");
	snprintf(a.last_scaling_at, sizeof(a.last_scaling_at), "%s", a.version);
	snprintf(a.last_config_change_at, sizeof(a.last_config_change_at), "%s", a.version);
	j1 = app_to_json(&a);
	assert_int_equal(app_from_json(j1, &b), 0);
	j2 = app_to_json(&b);
	assert_true(json_equal(j1, j2));
	assert_string_equal(b.id, "/team-a/web");
	assert_int_equal(b.port_count, 2);
	assert_int_equal(b.ports[1].port, 8080);
	assert_string_equal(b.ports[1].protocol, "udp");
	assert_string_equal(b.ports[0].name, "http");
	assert_string_equal(b.user, "nobody");
	assert_true(b.kill_grace == 5);
	assert_string_equal(b.last_config_change_at, "2026-01-01T00:00:00.000Z");
	assert_false(app_config_differs(&a, &b));
	b.instances = 7;
	assert_false(app_config_differs(&a, &b));     /* a scale is not a config change */
	json_object_set_new(b.env, "A", json_string("2"));
	assert_true(app_config_differs(&a, &b));
	cmd = app_task_command(&a);
	assert_false(json_is_true(json_object_get(cmd, "shell")));
	assert_string_equal(json_string_value(json_object_get(cmd, "value")), "/bin/echo");
	assert_int_equal(json_array_size(json_object_get(cmd, "arguments")), 2);
	json_decref(cmd);
	app_free(&a);
	app_free(&b);
	json_decref(j1);
	json_decref(j2);
	json_decref(out);
}

/* healthChecks: Marathon's rules, each problem under /healthChecks(i)/field; the stored
 * form has every default; the app's round trip keeps them. */
static void test_health_checks(void **state)
{
	json_t *details, *out, *hc;
	struct app a;

	(void)state;
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":{}}", "/healthChecks",
		     "error.expected.jsarray");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"protocol\":\"UDP\"}]}",
		     "/healthChecks(0)/protocol", "is not one of");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"protocol\":\"HTTPS\"}]}",
		     "/healthChecks(0)/protocol", "not supported yet");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"protocol\":\"COMMAND\"}]}",
		     "/healthChecks(0)/command", "command.value");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{},{\"portIndex\":1}]}",
		     "/healthChecks(1)/portIndex", "must address an element of the ports array");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[],\"healthChecks\":[{}]}",
		     "/healthChecks(0)/portIndex", "must address an element");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"port\":80,\"portIndex\":0}]}",
		     "/healthChecks(0)", "both port and portIndex");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"port\":0}]}",
		     "/healthChecks(0)/port", "between 1 and 65535");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"path\":\"health\"}]}",
		     "/healthChecks(0)/path", "must start with '/'");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"intervalSeconds\":0}]}",
		     "/healthChecks(0)/intervalSeconds", "expected between 1");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"gracePeriodSeconds\":\"a\"}]}",
		     "/healthChecks(0)/gracePeriodSeconds", "error.expected.jsnumber");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"maxConsecutiveFailures\":-1}]}",
		     "/healthChecks(0)/maxConsecutiveFailures", "integer between 0");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"ignoreHttp1xx\":1}]}",
		     "/healthChecks(0)/ignoreHttp1xx", "error.expected.jsboolean");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"protocol\":\"TCP\","
		     "\"command\":{\"value\":\"true\"}}]}", "/healthChecks(0)/command", "only COMMAND");
	expect_error("{\"id\":\"w\",\"cmd\":\"x\",\"healthChecks\":[{\"timeout\":3}]}",
		     "/healthChecks(0)/timeout", "unknown field");

	out = validate("{\"id\":\"w\",\"cmd\":\"x\",\"portDefinitions\":[{\"port\":0},{\"port\":0}],"
		       "\"healthChecks\":[{}, {\"protocol\":\"MESOS_TCP\",\"portIndex\":1,"
		       "\"intervalSeconds\":1,\"maxConsecutiveFailures\":0},"
		       "{\"protocol\":\"COMMAND\",\"command\":{\"value\":\"true\"}}]}", &details);
	assert_non_null(out);
	hc = json_array_get(json_object_get(out, "healthChecks"), 0);
	assert_string_equal(json_string_value(json_object_get(hc, "protocol")), "HTTP");
	assert_string_equal(json_string_value(json_object_get(hc, "path")), "/");
	assert_int_equal(json_integer_value(json_object_get(hc, "portIndex")), 0);
	assert_int_equal(json_integer_value(json_object_get(hc, "gracePeriodSeconds")), 300);
	assert_int_equal(json_integer_value(json_object_get(hc, "intervalSeconds")), 60);
	assert_int_equal(json_integer_value(json_object_get(hc, "timeoutSeconds")), 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "maxConsecutiveFailures")), 3);
	assert_int_equal(json_integer_value(json_object_get(hc, "delaySeconds")), 15);
	assert_true(json_is_false(json_object_get(hc, "ignoreHttp1xx")));
	hc = json_array_get(json_object_get(out, "healthChecks"), 1);
	assert_string_equal(json_string_value(json_object_get(hc, "protocol")), "MESOS_TCP");
	assert_null(json_object_get(hc, "path"));
	assert_int_equal(json_integer_value(json_object_get(hc, "maxConsecutiveFailures")), 0);
	hc = json_array_get(json_object_get(out, "healthChecks"), 2);
	assert_null(json_object_get(hc, "portIndex"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(hc, "command"),
							      "value")), "true");

	/* stored and compared: a changed check is a config change, the round trip keeps it */
	assert_int_equal(app_from_json(out, &a), 0);
	{
		json_t *j = app_to_json(&a);
		struct app b;

		assert_true(json_equal(json_object_get(j, "healthChecks"),
				       json_object_get(out, "healthChecks")));
		json_integer_set(json_object_get(json_array_get(json_object_get(j, "healthChecks"), 0),
						 "intervalSeconds"), 5);
		assert_int_equal(app_from_json(j, &b), 0);
		assert_true(app_config_differs(&a, &b));
		app_free(&b);
		json_decref(j);
	}
	app_free(&a);
	json_decref(out);
}

static void test_legacy_ports(void **state)
{
	json_t *details, *out = validate("{\"id\":\"w\",\"cmd\":\"x\",\"ports\":[0,9000]}", &details);
	struct app a;

	(void)state;
	assert_non_null(out);
	assert_int_equal(app_from_json(out, &a), 0);
	assert_int_equal(a.port_count, 2);
	assert_int_equal(a.ports[1].port, 9000);
	app_free(&a);
	json_decref(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_app_gets_defaults),
		cmocka_unit_test(test_each_bad_field_names_its_path),
		cmocka_unit_test(test_unsupported_and_unknown_fields),
		cmocka_unit_test(test_defaults_and_read_only_accepted),
		cmocka_unit_test(test_422_body_shape),
		cmocka_unit_test(test_behaviour_fields_validated),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_legacy_ports),
		cmocka_unit_test(test_health_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
