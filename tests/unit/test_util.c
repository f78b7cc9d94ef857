/* test_util.c - small helpers of lib/util.c: the uuid forms (v4 random, v7 time-ordered
 * and sorted in the order they were made, also across threads). */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "lib/util.h"

static void assert_uuid_form(const char *u, char version)
{
	assert_int_equal(strlen(u), 36);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(u[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", u[i]));
	}
	assert_int_equal(u[14], version);
	assert_non_null(strchr("89ab", u[19]));      /* RFC variant */
}

static void test_v4_form(void **state)
{
	char a[37], b[37];

	(void)state;
	uuid_v4(a);
	uuid_v4(b);
	assert_uuid_form(a, '4');
	assert_string_not_equal(a, b);
}

/* uuids come from a per-thread pool of random bytes: a forked child must not hand out the
 * bytes its parent will (the pool is emptied in the child). */
static void test_v4_differs_across_fork(void **state)
{
	char mine[37], theirs[37] = "";
	int fds[2], status = 0;
	pid_t pid;

	(void)state;
	uuid_v4(mine);                  /* the pool is filled now */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char u[37];

		uuid_v4(u);
		_exit(write(fds[1], u, sizeof(u)) == (ssize_t)sizeof(u) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uuid_v4(mine);
	assert_uuid_form(theirs, '4');
	assert_string_not_equal(mine, theirs);
}

/* The first 48 bits are the wall clock in milliseconds. */
static void test_v7_carries_the_time(void **state)
{
	char u[37], hex[13];
	struct timespec ts;
	long long ms, now;

	(void)state;
	uuid_v7(u);
	assert_uuid_form(u, '7');
	memcpy(hex, u, 8);
	memcpy(hex + 8, u + 9, 4);
	hex[12] = '\0';
	ms = strtoll(hex, NULL, 16);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	assert_true(ms <= now + 2000);          /* borrowed milliseconds stay close */
	assert_true(ms >= now - 60000);
}

/* Many ids in a row (far more than 4,096 per millisecond) sort strictly in order. */
static void test_v7_sorted_in_order_made(void **state)
{
	enum { N = 50000 };
	char (*ids)[37] = malloc(N * sizeof(*ids));

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < N; i++)
		uuid_v7(ids[i]);
	for (int i = 1; i < N; i++)
		if (strcmp(ids[i - 1], ids[i]) >= 0)
			fail_msg("id %d (%s) does not sort after id %d (%s)", i, ids[i], i - 1,
				 ids[i - 1]);
	free(ids);
}

struct run {
	char (*ids)[37];
	int n;
};

static void *make_ids(void *arg)
{
	struct run *r = arg;

	for (int i = 0; i < r->n; i++)
		uuid_v7(r->ids[i]);
	return NULL;
}

static int by_text(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Threads making ids at once never make the same one. */
static void test_v7_unique_across_threads(void **state)
{
	enum { T = 4, N = 20000 };
	char (*ids)[37] = malloc((size_t)T * N * sizeof(*ids));
	pthread_t th[T];
	struct run r[T];

	(void)state;
	assert_non_null(ids);
	for (int t = 0; t < T; t++) {
		r[t] = (struct run){ .ids = ids + (size_t)t * N, .n = N };
		assert_int_equal(pthread_create(&th[t], NULL, make_ids, &r[t]), 0);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	qsort(ids, (size_t)T * N, sizeof(*ids), by_text);
	for (size_t i = 1; i < (size_t)T * N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_form),
		cmocka_unit_test(test_v4_differs_across_fork),
		cmocka_unit_test(test_v7_carries_the_time),
		cmocka_unit_test(test_v7_sorted_in_order_made),
		cmocka_unit_test(test_v7_unique_across_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
