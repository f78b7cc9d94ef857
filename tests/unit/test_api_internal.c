/* test_api_internal.c - the agent-facing routes (master/api_internal.c) over real HTTP:
 * register, heartbeat and status answers (single and batch), and a 4xx JSON error for each
 * kind of bad input. */
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "tests/unit/master_fixture.h"

struct api {
	struct fx *f;
	struct http_server *srv;
	char base[64];
};

static int setup(void **state)
{
	struct api *a = calloc(1, sizeof(*a));
	char err[256];

	http_client_global_init();
	a->f = fx_new(100);
	a->srv = http_server_start("127.0.0.1", 0, err, sizeof(err));
	if (!a->srv || api_internal_register(a->f->m, a->srv) < 0 ||
	    api_agents_register(a->f->m, a->srv) < 0)
		return -1;
	snprintf(a->base, sizeof(a->base), "http://127.0.0.1:%u", http_server_port(a->srv));
	*state = a;
	return 0;
}

static int teardown(void **state)
{
	struct api *a = *state;

	http_server_stop(a->srv);
	fx_free(a->f);
	free(a);
	return 0;
}

/* POSTs text to path; returns the status and the parsed answer in *out. */
static long post(struct api *a, const char *path, const char *text, json_t **out)
{
	struct http_result r;
	char url[128];
	const char *hdr[] = { "Content-Type: application/json", NULL };

	snprintf(url, sizeof(url), "%s%s", a->base, path);
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_call("POST", url, text, strlen(text), hdr, 5000, &r), 0);
	*out = http_result_json(&r);
	http_result_free(&r);
	return r.status;
}

static void expect_error(struct api *a, const char *path, const char *text, long status,
			 const char *fragment)
{
	json_t *j = NULL;

	assert_int_equal(post(a, path, text, &j), status);
	assert_non_null(j);
	assert_non_null(json_string_value(json_object_get(j, "message")));
	if (!strstr(json_string_value(json_object_get(j, "message")), fragment))
		fail_msg("message '%s' lacks '%s'", json_string_value(json_object_get(j, "message")),
			 fragment);
	json_decref(j);
}

#define REG "{\"agent_id\":\"agent-1\",\"hostname\":\"h\",\"address\":\"127.0.0.1:5051\"," \
	    "\"resources\":{\"cpus\":2,\"mem\":1024,\"ports\":[[31000,31005]]}," \
	    "\"attributes\":{\"rack\":\"a\"},\"tasks\":[]}"

static void test_register_heartbeat_status(void **state)
{
	struct api *a = *state;
	json_t *j = NULL;

	assert_int_equal(post(a, "/internal/v1/register", REG, &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "agent_id")), "agent-1");
	assert_true(json_number_value(json_object_get(j, "heartbeat_interval_seconds")) > 0);
	assert_int_equal(json_array_size(json_object_get(j, "kill_tasks")), 0);
	json_decref(j);
	/* Persisted. */
	assert_int_equal(store_get(a->f->st, "agents", "agent-1", &j), 0);
	assert_string_equal(json_string_value(json_object_get(j, "address")), "127.0.0.1:5051");
	json_decref(j);

	assert_int_equal(post(a, "/internal/v1/heartbeat",
			      "{\"agent_id\":\"agent-1\",\"tasks\":[{\"task_id\":\"x\",\"state\":\"TASK_RUNNING\"}]}",
			      &j), 200);
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "kill_tasks"), 0)), "x");
	json_decref(j);

	assert_int_equal(post(a, "/internal/v1/status",
			      "{\"agent_id\":\"agent-1\",\"update\":{\"uuid\":\"u-1\",\"task_id\":\"x\","
			      "\"state\":\"TASK_RUNNING\",\"timestamp\":1}}", &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "acknowledged")), "u-1");
	json_decref(j);

	/* A batch: one result per update, by uuid; a bad one is not acknowledged. */
	assert_int_equal(post(a, "/internal/v1/status",
			      "{\"agent_id\":\"agent-1\",\"updates\":[{\"uuid\":\"u-2\",\"task_id\":\"x\","
			      "\"state\":\"TASK_FINISHED\"},{\"uuid\":\"u-3\",\"task_id\":\"x\"}]}", &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "results")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), 0),
							      "uuid")), "u-2");
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(j, "results"), 0),
						 "acknowledged")));
	assert_true(json_is_string(json_object_get(json_array_get(json_object_get(j, "results"), 1),
						   "error")));
	json_decref(j);
	/* An element that is not an object: rejected, its uuid null. */
	assert_int_equal(post(a, "/internal/v1/status", "{\"agent_id\":\"agent-1\",\"updates\":[7]}",
			      &j), 200);
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j, "results"), 0),
						 "uuid")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), 0),
							      "error")),
			    "update needs string fields uuid, task_id and state");
	json_decref(j);

	/* Without an id the master assigns one. */
	assert_int_equal(post(a, "/internal/v1/register",
			      "{\"address\":\"127.0.0.1:5052\",\"resources\":{\"cpus\":1}}", &j), 200);
	assert_true(strncmp(json_string_value(json_object_get(j, "agent_id")), "agent-", 6) == 0);
	json_decref(j);
}

static long get(struct api *a, const char *path, json_t **out)
{
	struct http_result r;
	char url[128];

	snprintf(url, sizeof(url), "%s%s", a->base, path);
	memset(&r, 0, sizeof(r));
	assert_int_equal(http_call("GET", url, NULL, 0, NULL, 5000, &r), 0);
	*out = http_result_json(&r);
	http_result_free(&r);
	return r.status;
}

static void test_agents_listing(void **state)
{
	struct api *a = *state;
	json_t *j = NULL, *ag;

	assert_int_equal(get(a, "/v1/agents", &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "agents")), 0);
	json_decref(j);
	assert_int_equal(post(a, "/internal/v1/register", REG, &j), 200);
	json_decref(j);
	assert_int_equal(get(a, "/v1/agents", &j), 200);
	ag = json_array_get(json_object_get(j, "agents"), 0);
	assert_string_equal(json_string_value(json_object_get(ag, "id")), "agent-1");
	assert_true(json_is_true(json_object_get(ag, "active")));
	assert_true(json_number_value(json_object_get(json_object_get(ag, "resources"), "cpus")) == 2);
	assert_true(json_number_value(json_object_get(json_object_get(ag, "used_resources"), "cpus")) == 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ag, "attributes"), "rack")), "a");
	json_decref(j);
	assert_int_equal(get(a, "/v1/agents/agent-1", &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "state")), "ACTIVE");
	json_decref(j);
	assert_int_equal(get(a, "/v1/agents/nope", &j), 404);
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "nope"));
	json_decref(j);
}

static void test_bad_requests(void **state)
{
	struct api *a = *state;
	json_t *j = NULL;

	expect_error(a, "/internal/v1/register", "{\"agent_id\":", 400, "Invalid JSON");
	expect_error(a, "/internal/v1/register", "[1,2]", 400, "JSON object");
	expect_error(a, "/internal/v1/register", "{\"resources\":{}}", 400, "address");
	expect_error(a, "/internal/v1/register", "{\"address\":\"h:1\"}", 400, "resources");
	expect_error(a, "/internal/v1/register",
		     "{\"address\":\"h:1\",\"resources\":{\"cpus\":\"two\"}}", 400, "cpus");
	expect_error(a, "/internal/v1/register",
		     "{\"address\":\"h:1\",\"resources\":{},\"tasks\":{}}", 400, "tasks");
	expect_error(a, "/internal/v1/register", "{\"agent_id\":\"a/b\",\"address\":\"h:1\","
		     "\"resources\":{}}", 400, "agent_id");
	expect_error(a, "/internal/v1/heartbeat", "{\"tasks\":[]}", 400, "agent_id");
	expect_error(a, "/internal/v1/heartbeat", "{\"agent_id\":\"nobody\",\"tasks\":[]}", 404,
		     "register");
	expect_error(a, "/internal/v1/status", "{\"agent_id\":\"agent-1\"}", 400, "update");
	expect_error(a, "/internal/v1/status",
		     "{\"agent_id\":\"agent-1\",\"update\":{\"uuid\":\"u\",\"task_id\":\"t\"}}", 400,
		     "state");
	expect_error(a, "/internal/v1/status",
		     "{\"agent_id\":\"agent-1\",\"update\":{\"uuid\":\"u\",\"task_id\":\"t\","
		     "\"state\":\"RUNNING\"}}", 400, "not a task state");
	expect_error(a, "/internal/v1/status", "{\"agent_id\":\"agent-1\",\"updates\":{}}", 400,
		     "updates");
	expect_error(a, "/internal/v1/status",
		     "{\"agent_id\":\"agent-1\",\"update\":{},\"updates\":[]}", 400, "either");
	/* The status route reads its body without jansson: the same answers. */
	expect_error(a, "/internal/v1/status", "{\"agent_id\":", 400, "Invalid JSON");
	expect_error(a, "/internal/v1/status", "", 400, "Invalid JSON");
	expect_error(a, "/internal/v1/status", "{\"agent_id\":\"a\",\"agent_id\":\"b\"}", 400,
		     "Invalid JSON");
	assert_int_equal(post(a, "/internal/v1/status", "{\"agent_id\":\"agent-1\",\n\"updates\":[}",
			      &j), 400);
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(
		json_array_get(json_object_get(j, "details"), 0), "errors"), 0)), "line 2 column 12"));
	json_decref(j);
	expect_error(a, "/internal/v1/status", "[1,2]", 400, "request body must be a JSON object");
	expect_error(a, "/internal/v1/status", "{\"agent_id\":7,\"updates\":[]}", 400, "either");
	char *many = malloc(64 + 3 * (STATUS_BATCH_MAX + 1)), *p;

	assert_non_null(many);
	p = many + sprintf(many, "{\"agent_id\":\"agent-1\",\"updates\":[{}");
	for (int i = 0; i < STATUS_BATCH_MAX; i++)
		p += sprintf(p, ",{}");
	sprintf(p, "]}");
	expect_error(a, "/internal/v1/status", many, 400, "'updates' holds 4097 updates, at most 4096");
	free(many);
	/* Still healthy afterwards. */
	assert_int_equal(post(a, "/internal/v1/register", REG, &j), 200);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_heartbeat_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agents_listing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
