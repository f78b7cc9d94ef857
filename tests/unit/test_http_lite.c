/* test_http_lite.c - the agent's small HTTP client: the response parser on hand-made
 * responses (lengths, chunks, split reads, garbage), and real calls to lib/http_server on
 * loopback (keep-alive reuse, a server restart under a kept connection, errors). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_lite.h"
#include "lib/http_server.h"

static int parse_all(const char *text, bool at_eof, struct http_lite_response *r)
{
	return http_lite_parse(text, strlen(text), at_eof, r);
}

static void test_parse_content_length(void **state)
{
	const char *resp = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n"
			   "Content-Type: application/json\r\n\r\nhello";
	struct http_lite_response r;

	(void)state;
	assert_int_equal(parse_all(resp, false, &r), 1);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body, "hello");
	assert_true(r.keep_alive);
	assert_int_equal(r.consumed, strlen(resp));
	free(r.body);
	/* Every shorter prefix needs more bytes, never a wrong answer. */
	for (size_t n = 0; n < strlen(resp); n++) {
		assert_int_equal(http_lite_parse(resp, n, false, &r), 0);
		free(r.body);
	}
	/* ... and a prefix at end of connection is an error. */
	assert_int_equal(http_lite_parse(resp, strlen(resp) - 1, true, &r), -22);
}

static void test_parse_chunked_and_close(void **state)
{
	const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
			   "4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n";
	struct http_lite_response r;

	(void)state;
	assert_int_equal(parse_all(resp, false, &r), 1);
	assert_string_equal(r.body, "abcdefg");
	assert_int_equal(r.body_len, 7);
	assert_false(r.keep_alive);
	assert_int_equal(r.consumed, strlen(resp));
	free(r.body);
}

static void test_parse_until_eof_and_continue(void **state)
{
	const char *resp = "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest of body";
	struct http_lite_response r;

	(void)state;
	assert_int_equal(parse_all(resp, false, &r), 0);   /* no length: wait for the end */
	assert_int_equal(parse_all(resp, true, &r), 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "rest of body");
	assert_false(r.keep_alive);
	free(r.body);
}

static void test_parse_rejects_garbage(void **state)
{
	const char *bad[] = {
		"SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
	};
	struct http_lite_response r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_all(bad[i], false, &r);

		if (rc != -22)
			fail_msg("accepted (%d): %s", rc, bad[i]);
		assert_true(r.error[0] != '\0');
	}
}

static void echo(struct http_request *req, struct http_response *resp, void *ctx)
{
	int *calls = ctx;
	json_t *body = http_body_json(req, resp);

	if (!body)
		return;
	(*calls)++;
	http_respond_json(resp, 200, json_pack("{s:o,s:i}", "got", body, "calls", *calls));
}

static struct http_server *start(uint16_t port, int *calls)
{
	char err[128];
	struct http_server *srv = http_server_start("127.0.0.1", port, err, sizeof(err));

	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, "POST", "/echo", echo, calls), 0);
	return srv;
}

static void test_calls_reuse_and_survive_server_restart(void **state)
{
	int calls = 0;
	struct http_server *srv = start(0, &calls);
	uint16_t port = http_server_port(srv);
	struct http_result r;
	char url[64];
	json_t *j, *body = json_pack("{s:s}", "k", "v");

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/echo", port);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(http_lite_call_json("POST", url, body, 2000, &r), 0);
		assert_int_equal(r.status, 200);
		j = http_result_json(&r);
		assert_string_equal(json_string_value(json_object_get(json_object_get(j, "got"), "k")),
				    "v");
		assert_int_equal(json_integer_value(json_object_get(j, "calls")), i);
		json_decref(j);
		http_result_free(&r);
	}
	/* The server goes away and comes back on the same port: the kept connection is dead,
	 * the next call reconnects by itself. */
	http_server_stop(srv);
	srv = start(port, &calls);
	assert_int_equal(http_lite_call_json("POST", url, body, 2000, &r), 0);
	assert_int_equal(r.status, 200);
	http_result_free(&r);
	/* 4xx answers arrive as answers. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/nope", port);
	assert_int_equal(http_lite_call_json("POST", url, body, 2000, &r), 0);
	assert_int_equal(r.status, 404);
	http_result_free(&r);
	http_server_stop(srv);
	/* Nobody listening: a transport error with a message. */
	assert_int_equal(http_lite_call_json("POST", url, body, 2000, &r), -1);
	assert_non_null(strstr(r.error, "127.0.0.1"));
	assert_int_equal(http_lite_call_json("POST", "https://x/", body, 2000, &r), -1);
	http_lite_thread_cleanup();
	json_decref(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_content_length),
		cmocka_unit_test(test_parse_chunked_and_close),
		cmocka_unit_test(test_parse_until_eof_and_continue),
		cmocka_unit_test(test_parse_rejects_garbage),
		cmocka_unit_test(test_calls_reuse_and_survive_server_restart),
	};

	return cmocka_run_group_tests_name("http_lite", tests, NULL, NULL);
}
