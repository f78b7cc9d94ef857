/* test_pacerctl.c - pacerctl's helpers: id/path handling, value and table formatting, and
 * how a request turns the server's answer into an exit code and a stderr line (against a
 * real lib/http_server on loopback). pacerctl is a program, not a library, so its helper
 * files are compiled into this test directly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/http_client.h"
#include "lib/http_server.h"
#include "tools/pacerctl/client.c"
#include "tools/pacerctl/table.c"

static void test_app_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(ctl_app_path("web", out, sizeof(out)), 0);
	assert_string_equal(out, "web");
	assert_int_equal(ctl_app_path("/team/web/", out, sizeof(out)), 0);
	assert_string_equal(out, "team/web");
	assert_int_equal(ctl_app_path("//", out, sizeof(out)), -EINVAL);
	assert_int_equal(ctl_app_path("", out, sizeof(out)), -EINVAL);
	assert_int_equal(ctl_app_path("/a-very-long-app-id", out, 8), -ENAMETOOLONG);
}

static void test_task_app_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(ctl_task_app_path("team_web.3f0c1d2e-0000-4000-8000-000000000001",
					   out, sizeof(out)), 0);
	assert_string_equal(out, "team/web");
	/* Marathon ids may contain dots: the uuid follows the last one. */
	assert_int_equal(ctl_task_app_path("a.b_c.uuid", out, sizeof(out)), 0);
	assert_string_equal(out, "a.b/c");
	assert_int_equal(ctl_task_app_path("nodot", out, sizeof(out)), -EINVAL);
	assert_int_equal(ctl_task_app_path(".uuid", out, sizeof(out)), -EINVAL);
}

static void test_fmt_value(void **state)
{
	char out[64];
	json_t *v;

	(void)state;
	v = json_real(0.5);
	ctl_fmt_value(v, out, sizeof(out));
	assert_string_equal(out, "0.5");
	json_decref(v);
	v = json_real(2.0);
	ctl_fmt_value(v, out, sizeof(out));
	assert_string_equal(out, "2");
	json_decref(v);
	v = json_integer(4096);
	ctl_fmt_value(v, out, sizeof(out));
	assert_string_equal(out, "4096");
	json_decref(v);
	ctl_fmt_value(NULL, out, sizeof(out));
	assert_string_equal(out, "-");
	v = json_pack("{s:s}", "rack", "a");
	ctl_fmt_value(v, out, sizeof(out));
	assert_string_equal(out, "{\"rack\":\"a\"}");
	json_decref(v);
}

static void test_table_alignment(void **state)
{
	static const char *const headers[] = { "ID", "STATE", "HOST" };
	static const char *const row1[] = { "/web", "TASK_RUNNING", "node-1" };
	static const char *const row2[] = { "/a-longer-id", NULL, "n2" };
	struct table *t = table_new(headers, 3);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(t);
	assert_non_null(f);
	assert_int_equal(table_add_row(t, row1), 0);
	assert_int_equal(table_add_row(t, row2), 0);
	table_print(t, f);
	fclose(f);
	assert_string_equal(buf,
			    "ID            STATE         HOST\n"
			    "/web          TASK_RUNNING  node-1\n"
			    "/a-longer-id  -             n2\n");
	free(buf);
	table_free(t);
}

/* ---- ctl_request against a real server ------------------------------------------- */

static void h_invalid(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_json(resp, 422, json_pack("{s:s,s:[{s:s,s:[s]}]}", "message",
					       "Object is not valid", "details", "path", "/cpus",
					       "errors", "must be >= 0"));
}

static void h_ok(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	http_respond_json(resp, 200, json_pack("{s:s,s:s}", "method", req->method,
					       "body", req->body ? req->body : ""));
}

static void h_text(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_text(resp, 503, "text/plain", "overloaded\nsecond line");
}

/* Runs ctl_request with stderr captured into err. */
static int request_capturing(const struct ctl *c, const char *method, const char *path,
			     const char *body, json_t **out, char *err, size_t errlen)
{
	char tmpl[] = "/tmp/test_pacerctl.XXXXXX";
	int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO), ret;
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(tmpl);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	ret = ctl_request(c, method, path, body, body ? strlen(body) : 0, out);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, err, errlen - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	return ret;
}

static void test_request_outcomes(void **state)
{
	char errbuf[256], url[64], err[512];
	struct http_server *srv = http_server_start("127.0.0.1", 0, errbuf, sizeof(errbuf));
	struct ctl c = { 0 };
	json_t *j = NULL;

	(void)state;
	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, "POST", "/invalid", h_invalid, NULL), 0);
	assert_int_equal(http_server_route(srv, "*", "/ok", h_ok, NULL), 0);
	assert_int_equal(http_server_route(srv, "GET", "/text", h_text, NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", http_server_port(srv));
	c.master = url;

	assert_int_equal(request_capturing(&c, "POST", "/invalid", "{}", &j, err, sizeof(err)),
			 CTL_FAILED);
	assert_null(j);
	assert_string_equal(err, "pacerctl: Object is not valid; /cpus: must be >= 0 (HTTP 422)\n");

	assert_int_equal(request_capturing(&c, "PUT", "/ok", "{\"instances\":2}", &j, err,
					   sizeof(err)), CTL_OK);
	assert_string_equal(err, "");
	assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"instances\":2}");
	json_decref(j);

	/* A body that is not JSON: its first line is the message. */
	assert_int_equal(request_capturing(&c, "GET", "/text", NULL, NULL, err, sizeof(err)),
			 CTL_FAILED);
	assert_string_equal(err, "pacerctl: overloaded (HTTP 503)\n");

	/* Unknown route: the server's own 404. */
	assert_int_equal(request_capturing(&c, "GET", "/nope", NULL, NULL, err, sizeof(err)),
			 CTL_FAILED);
	assert_non_null(strstr(err, "(HTTP 404)"));

	http_server_stop(srv);
	/* Nobody listens any more: a transport error, still exit 1. */
	assert_int_equal(request_capturing(&c, "GET", "/ok", NULL, &j, err, sizeof(err)),
			 CTL_FAILED);
	assert_null(j);
	assert_non_null(strstr(err, "pacerctl: cannot reach the master at http://127.0.0.1:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_app_path),
		cmocka_unit_test(test_task_app_path),
		cmocka_unit_test(test_fmt_value),
		cmocka_unit_test(test_table_alignment),
		cmocka_unit_test(test_request_outcomes),
	};

	http_client_global_init();
	return cmocka_run_group_tests_name("pacerctl", tests, NULL, NULL);
}
