/* test_http.c - the HTTP server and client over real loopback sockets: routing, 404/405,
 * the body limit (413), JSON error shapes, headers and a streamed body. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_client.h"
#include "lib/http_server.h"

struct fixture {
	struct http_server *srv;
	char base[64];
};

static void echo_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	json_t *body;

	(void)ctx;
	body = http_body_json(req, resp);
	if (!body)
		return;
	http_respond_header(resp, "X-Sub", req->subpath);
	http_respond_json(resp, 201, json_pack("{s:o,s:s*}", "got", body, "embed",
					       http_query(req, "embed")));
}

static void ping_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_text(resp, 200, "text/plain", "pong");
}

static ssize_t count_read(void *ctx, char *buf, size_t max)
{
	int *left = ctx;

	if (*left == 0 || max < 16)
		return -1;
	(*left)--;
	return snprintf(buf, max, "data: %d\n\n", *left);
}

static void stream_handler(struct http_request *req, struct http_response *resp, void *ctx)
{
	int *left = malloc(sizeof(int));

	(void)req;
	(void)ctx;
	*left = 3;
	http_respond_stream(resp, 200, "text/event-stream",
			    (struct http_stream){ .read = count_read, .free = free, .ctx = left });
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[128];

	http_client_global_init();
	f->srv = http_server_start("127.0.0.1", 0, err, sizeof(err));
	assert_non_null(f->srv);
	assert_int_equal(http_server_route(f->srv, "POST", "/v2/apps*", echo_handler, NULL), 0);
	assert_int_equal(http_server_route(f->srv, "GET", "/ping", ping_handler, NULL), 0);
	assert_int_equal(http_server_route(f->srv, "GET", "/stream", stream_handler, NULL), 0);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", http_server_port(f->srv));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_server_stop(f->srv);
	http_client_global_cleanup();
	free(f);
	return 0;
}

static json_t *call(struct fixture *f, const char *method, const char *path, const char *body,
		    long *status, struct http_result *r)
{
	char url[256];

	snprintf(url, sizeof(url), "%s%s", f->base, path);
	assert_int_equal(http_call(method, url, body, body ? strlen(body) : 0, NULL, 5000, r), 0);
	*status = r->status;
	return http_result_json(r);
}

static void test_routes_and_prefix(void **state)
{
	struct fixture *f = *state;
	struct http_result r;
	long status;
	json_t *j = call(f, "POST", "/v2/apps/team/web?embed=apps.tasks", "{\"a\":1}", &status, &r);

	assert_int_equal(status, 201);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "got"), "a")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "embed")), "apps.tasks");
	json_decref(j);
	http_result_free(&r);

	j = call(f, "GET", "/ping", NULL, &status, &r);
	assert_int_equal(status, 200);
	assert_string_equal(r.body, "pong");
	http_result_free(&r);
}

static void test_errors_are_json(void **state)
{
	struct fixture *f = *state;
	struct http_result r;
	long status;
	json_t *j;

	j = call(f, "GET", "/nope", NULL, &status, &r);
	assert_int_equal(status, 404);
	assert_non_null(json_object_get(j, "message"));
	json_decref(j);
	http_result_free(&r);

	j = call(f, "DELETE", "/ping", NULL, &status, &r);
	assert_int_equal(status, 405);
	json_decref(j);
	http_result_free(&r);

	j = call(f, "POST", "/v2/apps", "{\"a\":\n  oops}", &status, &r);
	assert_int_equal(status, 400);
	assert_string_equal(json_string_value(json_object_get(j, "message")), "Invalid JSON");
	assert_non_null(strstr(r.body, "line 2"));
	json_decref(j);
	http_result_free(&r);

	/* "/v2/appsX" must not match the "/v2/apps*" prefix route */
	j = call(f, "POST", "/v2/appsX", "{}", &status, &r);
	assert_int_equal(status, 404);
	json_decref(j);
	http_result_free(&r);
}

static void test_body_limit(void **state)
{
	struct fixture *f = *state;
	size_t n = HTTP_MAX_BODY + 10;
	char *big = malloc(n + 1);
	struct http_result r;
	long status;
	json_t *j;

	memset(big, ' ', n);
	big[n] = '\0';
	j = call(f, "POST", "/v2/apps", big, &status, &r);
	assert_int_equal(status, 413);
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "exceeds"));
	json_decref(j);
	http_result_free(&r);
	free(big);
}

static void test_stream(void **state)
{
	struct fixture *f = *state;
	struct http_result r;
	long status;

	call(f, "GET", "/stream", NULL, &status, &r);
	assert_int_equal(status, 200);
	assert_string_equal(r.body, "data: 2\n\ndata: 1\n\ndata: 0\n\n");
	http_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_and_prefix),
		cmocka_unit_test(test_errors_are_json),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_stream),
	};

	return cmocka_run_group_tests_name("http", tests, setup, teardown);
}
