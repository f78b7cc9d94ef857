/* test_tick.c - the master's tick thread (master/tick.c) on the real clock: an allocation
 * request made just after a cycle is served at once (not after a minimum gap), and a
 * framework that revives from inside its own offer callback does not spin the allocator. */
#include <pthread.h>
#include <unistd.h>

#include "tests/unit/master_fixture.h"

#define TRIALS 21

/* Declines every offer at once (so the agent is free again) and stamps when it came. */
struct tick_fw {
	struct framework fw;
	struct master *m;
	bool revive_in_callback;
	size_t offers;
	double last_offer_at;
};

static void tick_offers(struct framework *fw, struct offer **offers, size_t count)
{
	struct tick_fw *t = (struct tick_fw *)fw;

	for (size_t i = 0; i < count; i++)
		master_decline(t->m, fw, offers[i]->id, 0);
	t->offers += count;
	t->last_offer_at = now_mono();
	if (t->revive_in_callback)
		master_revive_offers(t->m, fw);
}

static void tick_rescinded(struct framework *fw, const char *offer_id)
{
	(void)fw;
	(void)offer_id;
}

static void tick_status(struct framework *fw, const struct task_status *st)
{
	(void)fw;
	(void)st;
}

static const struct framework_ops tick_ops = {
	.resource_offers = tick_offers,
	.offer_rescinded = tick_rescinded,
	.status_update = tick_status,
};

static struct fx *start(struct tick_fw *t, bool revive_in_callback)
{
	struct fx *f = fx_new(100);

	f->m->clock_mono = now_mono;
	memset(t, 0, sizeof(*t));
	snprintf(t->fw.name, sizeof(t->fw.name), "tick");
	t->fw.weight = 1;
	t->fw.ops = &tick_ops;
	t->m = f->m;
	t->revive_in_callback = revive_in_callback;
	master_lock(f->m);
	assert_int_equal(master_register_framework(f->m, &t->fw), 0);
	master_unlock(f->m);
	json_decref(fx_register_agent(f, "a1", 4, 4096, "127.0.0.1:1", NULL));
	assert_int_equal(tick_start(f->m), 0);
	return f;
}

/* Waits (deadline 2 s) until t has had more than `seen` offers; returns the count. */
static size_t wait_offers(struct fx *f, struct tick_fw *t, size_t seen)
{
	double deadline = now_mono() + 2;
	size_t n;

	for (;;) {
		master_lock(f->m);
		n = t->offers;
		master_unlock(f->m);
		if (n > seen || now_mono() > deadline)
			return n;
		usleep(100);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Revive right after the previous cycle (as a new app does right after the last one's
 * resources were freed): the offer must not wait for a minimum gap between cycles. */
static void test_request_after_cycle_runs_at_once(void **state)
{
	struct tick_fw t;
	struct fx *f = start(&t, false);
	double lat[TRIALS];
	size_t n = wait_offers(f, &t, 0);

	(void)state;
	assert_true(n >= 1);            /* the agent's registration asked for a cycle */
	for (int i = 0; i < TRIALS; i++) {
		double at;

		master_lock(f->m);
		at = now_mono();
		master_revive_offers(f->m, &t.fw);
		master_unlock(f->m);
		n = wait_offers(f, &t, n);
		master_lock(f->m);
		lat[i] = t.last_offer_at - at;
		master_unlock(f->m);
		assert_true(lat[i] >= 0);
	}
	qsort(lat, TRIALS, sizeof(lat[0]), cmp_double);
	/* Behaviour, not speed: a delayed cycle waits the 5 ms minimum gap every time, an
	 * immediate one takes well under 1 ms; the bound sits just under the gap so that a
	 * loaded or sanitized run does not flake, and a delay still fails. */
	if (lat[TRIALS / 2] >= 0.0045)
		fail_msg("median revive -> offer %.3f ms: the cycle waited for the minimum gap",
			 lat[TRIALS / 2] * 1e3);
	fx_free(f);
}

/* A framework that revives from its own offer callback gets further cycles, but spaced:
 * at most one per 5 ms, not a busy loop. */
static void test_revive_from_callback_does_not_spin(void **state)
{
	struct tick_fw t;
	struct fx *f = start(&t, true);
	size_t first = wait_offers(f, &t, 0), last;
	double t0 = now_mono(), window;

	(void)state;
	assert_true(first >= 1);
	usleep(200 * 1000);             /* the measuring window, not a wait for a condition */
	master_lock(f->m);
	last = t.offers;
	window = now_mono() - t0;
	master_unlock(f->m);
	/* 5 ms apart at most 1 + window/5ms; the echoed requests are not lost either. */
	assert_true(last - first <= (size_t)(window / 0.005) + 2);
	assert_true(last - first >= 5);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_after_cycle_runs_at_once),
		cmocka_unit_test(test_revive_from_callback_does_not_spin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
