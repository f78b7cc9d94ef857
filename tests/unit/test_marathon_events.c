/* test_marathon_events.c - the SSE event bus: wire format, type filters, a slow client
 * dropped instead of blocking the publisher, streams ended by close, a reader woken by a
 * publish from another thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "master/marathon/events.h"

static char buf[64 * 1024];

static ssize_t read_some(struct http_stream *s)
{
	ssize_t n = s->read(s->ctx, buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return n;
}

static void test_format_and_filter(void **state)
{
	struct events *ev = events_create();
	struct http_stream all, only;
	const char *types[] = { "app_terminated_event", NULL };

	(void)state;
	assert_int_equal(events_subscribe(ev, NULL, &all), 0);
	assert_int_equal(events_subscribe(ev, types, &only), 0);
	assert_int_equal(events_subscriber_count(ev), 2);
	events_publish(ev, "deployment_info", json_pack("{s:s}", "id", "d1"));
	events_publish(ev, "app_terminated_event", json_pack("{s:s}", "appId", "/x"));

	assert_true(read_some(&all) > 0);
	assert_non_null(strstr(buf, "event: deployment_info\ndata: {"));
	assert_non_null(strstr(buf, "\"eventType\":\"deployment_info\""));
	assert_non_null(strstr(buf, "\"timestamp\":\""));
	assert_non_null(strstr(buf, "event: app_terminated_event\n"));
	assert_non_null(strstr(buf, "}\n\nevent:"));  /* each event ends with a blank line */

	assert_true(read_some(&only) > 0);
	assert_null(strstr(buf, "deployment_info"));
	assert_non_null(strstr(buf, "\"appId\":\"/x\""));

	all.free(all.ctx);
	only.free(only.ctx);
	assert_int_equal(events_subscriber_count(ev), 0);
	events_destroy(ev);
}

/* A reader given a small buffer gets an event in pieces, none lost. */
static void test_partial_reads(void **state)
{
	struct events *ev = events_create();
	struct http_stream s;
	char whole[4096] = "", piece[8];
	ssize_t n;

	(void)state;
	assert_int_equal(events_subscribe(ev, NULL, &s), 0);
	events_publish(ev, "api_post_event", json_pack("{s:s}", "uri", "/v2/apps"));
	while (!strstr(whole, "\n\n")) {
		n = s.read(s.ctx, piece, sizeof(piece));
		assert_true(n > 0 && n <= (ssize_t)sizeof(piece));
		strncat(whole, piece, (size_t)n);
	}
	assert_non_null(strstr(whole, "event: api_post_event\ndata: {\"uri\":\"/v2/apps\""));
	s.free(s.ctx);
	events_destroy(ev);
}

static void test_slow_client_dropped(void **state)
{
	struct events *ev = events_create();
	struct http_stream slow;

	(void)state;
	assert_int_equal(events_subscribe(ev, NULL, &slow), 0);
	/* Never read: the publisher must not block, and the stream ends. */
	for (int i = 0; i < EVENTS_QUEUE_MAX + 10; i++)
		events_publish(ev, "status_update_event", json_pack("{s:i}", "n", i));
	assert_int_equal(slow.read(slow.ctx, buf, sizeof(buf)), -1);
	slow.free(slow.ctx);
	events_destroy(ev);
}

/* A stream can outlive the bus's owner; close ends it. */
static void test_close_ends_streams(void **state)
{
	struct events *ev = events_create();
	struct http_stream s, late;

	(void)state;
	assert_int_equal(events_subscribe(ev, NULL, &s), 0);
	events_close(ev);
	assert_int_equal(s.read(s.ctx, buf, sizeof(buf)), -1);
	assert_int_equal(events_subscribe(ev, NULL, &late), -ESHUTDOWN);
	events_destroy(ev);          /* the stream still holds the bus */
	s.free(s.ctx);               /* last reference: freed here (ASan checks) */
}

struct reader_arg {
	struct http_stream *s;
	ssize_t n;
	char text[1024];
};

static void *reader(void *p)
{
	struct reader_arg *a = p;

	a->n = a->s->read(a->s->ctx, a->text, sizeof(a->text) - 1);
	if (a->n > 0)
		a->text[a->n] = '\0';
	return NULL;
}

static void test_reader_woken_by_publish(void **state)
{
	struct events *ev = events_create();
	struct http_stream s;
	struct reader_arg a = { .s = &s };
	pthread_t t;

	(void)state;
	assert_int_equal(events_subscribe(ev, NULL, &s), 0);
	assert_int_equal(pthread_create(&t, NULL, reader, &a), 0);
	events_publish(ev, "deployment_success", json_pack("{s:s}", "id", "d"));
	pthread_join(t, NULL);   /* returns long before the keep-alive interval */
	assert_true(a.n > 0);
	assert_non_null(strstr(a.text, "event: deployment_success"));
	s.free(s.ctx);
	events_destroy(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_filter),
		cmocka_unit_test(test_partial_reads),
		cmocka_unit_test(test_slow_client_dropped),
		cmocka_unit_test(test_close_ends_streams),
		cmocka_unit_test(test_reader_woken_by_publish),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
