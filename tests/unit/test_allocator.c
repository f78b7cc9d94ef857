/* test_allocator.c - the DRF allocator and offers (master/allocator.c, master/offers.c):
 * fairness between frameworks and weights, one offer per agent per cycle, suppress,
 * refuse filters and revive, rescind on timeout and when an agent goes away; cycles sliced
 * by their time budget and the cycle-time histogram. */
#include <time.h>
#include "tests/unit/master_fixture.h"

static void agents(struct fx *f, int n, double cpus, double mem)
{
	for (int i = 0; i < n; i++) {
		char id[16];

		snprintf(id, sizeof(id), "a%d", i + 1);
		json_decref(fx_register_agent(f, id, cpus, mem, "127.0.0.1:1", NULL));
	}
}

/* Six equal agents, offers kept (not answered): DRF alternates between equal frameworks,
 * and gives a weight-2 framework twice the share of a weight-1 one. */
static void run_six(double weight_b, size_t *got_a, size_t *got_b)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);
	struct rec_fw *b = fx_framework(f, "b", weight_b);

	agents(f, 6, 1, 1024);
	fx_alloc(f, 1);
	*got_a = a->offer_count;
	*got_b = b->offer_count;
	/* Every agent was offered exactly once. */
	for (int i = 1; i <= 6; i++) {
		char id[16];

		snprintf(id, sizeof(id), "a%d", i);
		assert_int_equal(fx_offers_on(a, 0, id) + fx_offers_on(b, 0, id), 1);
	}
	fx_free(f);
	free(a);
	free(b);
}

static void test_drf_equal_weights_split_evenly(void **state)
{
	size_t na, nb;

	(void)state;
	run_six(1, &na, &nb);
	assert_int_equal(na, 3);
	assert_int_equal(nb, 3);
}

static void test_drf_weight_two_gets_twice(void **state)
{
	size_t na, nb;

	(void)state;
	run_six(2, &na, &nb);
	assert_int_equal(na, 2);
	assert_int_equal(nb, 4);
}

/* The framework with the lower dominant share wins the next free agent, whatever the
 * registration order: here "a" already runs a big task (mem-dominant). */
static void test_drf_lower_dominant_share_first(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);
	struct rec_fw *b = fx_framework(f, "b", 1);
	struct task_launch l = { .task_id = "big", .name = "big" };
	const char *ids[1];
	char err[256];

	(void)state;
	json_decref(fx_register_agent(f, "a1", 4, 4096, "127.0.0.1:1", NULL));
	fx_alloc(f, 1);
	assert_int_equal(a->offer_count, 1);    /* tie: first registered */
	assert_int_equal(b->offer_count, 0);
	l.command = json_pack("{s:b,s:s}", "shell", 1, "value", "true");
	l.resources.cpus = 0.5;
	l.resources.mem = 3000;
	ids[0] = a->offers[0];
	master_lock(f->m);
	assert_int_equal(master_accept(f->m, &a->fw, ids, 1, &l, 1, 0, err, sizeof(err)), 0);
	/* Dominant share of a: mem 3000/4096. */
	assert_true(allocator_dominant_share(f->m, &a->fw) > 0.7);
	assert_true(allocator_dominant_share(f->m, &b->fw) == 0);
	master_unlock(f->m);

	/* Totals now cpus 5, mem 5120. a1's remainder (3.5 cpus, 1096 MiB) goes to b (share
	 * 0 < a's 3000/5120); that makes b's share 3.5/5 = .7 > a's .59, so a2 goes to a. */
	json_decref(fx_register_agent(f, "a2", 1, 1024, "127.0.0.1:2", NULL));
	fx_alloc(f, 2);
	assert_int_equal(b->offer_count, 1);
	assert_string_equal(b->offer_agents[0], "a1");
	assert_int_equal(a->offer_count, 2);
	assert_string_equal(a->offer_agents[1], "a2");
	json_decref(l.command);
	fx_free(f);
	free(a);
	free(b);
}

static void test_one_offer_per_agent_and_outstanding_not_reoffered(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);

	(void)state;
	agents(f, 2, 2, 2048);
	fx_alloc(f, 1);
	assert_int_equal(a->offer_count, 2);
	fx_alloc(f, 2);
	assert_int_equal(a->offer_count, 2);    /* everything is outstanding */
	master_lock(f->m);
	assert_int_equal(allocator_offer_count(f->m), 2);
	assert_int_equal(master_decline(f->m, &a->fw, a->offers[0], 0), 0);
	assert_int_equal(master_decline(f->m, &a->fw, a->offers[0], 0), -EINVAL); /* gone */
	master_unlock(f->m);
	fx_alloc(f, 3);
	assert_int_equal(a->offer_count, 3);
	assert_string_equal(a->offer_agents[2], a->offer_agents[0]);
	fx_free(f);
	free(a);
}

static void test_suppressed_gets_nothing(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);
	struct rec_fw *b = fx_framework(f, "b", 1);

	(void)state;
	master_lock(f->m);
	master_suppress_offers(f->m, &a->fw);
	master_unlock(f->m);
	agents(f, 2, 1, 1024);
	fx_alloc(f, 1);
	assert_int_equal(a->offer_count, 0);
	assert_int_equal(b->offer_count, 2);
	fx_free(f);
	free(a);
	free(b);
}

static void test_refuse_filter_until_deadline(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);

	(void)state;
	agents(f, 1, 1, 1024);
	fx_alloc(f, 0);
	assert_int_equal(a->offer_count, 1);
	fx_mono = 0;
	master_lock(f->m);
	assert_int_equal(master_decline(f->m, &a->fw, a->offers[0], 10), 0);
	assert_true(allocator_filtered(f->m, a->fw.id, "a1", 9.9));
	master_unlock(f->m);
	fx_alloc(f, 1);
	fx_alloc(f, 9.9);
	assert_int_equal(a->offer_count, 1);    /* filtered */
	fx_alloc(f, 10.1);
	assert_int_equal(a->offer_count, 2);    /* filter expired */
	fx_free(f);
	free(a);
}

static void test_filter_is_per_framework_and_revive_clears_it(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);
	struct rec_fw *b = fx_framework(f, "b", 1);

	(void)state;
	master_lock(f->m);
	master_suppress_offers(f->m, &b->fw);
	master_unlock(f->m);
	agents(f, 1, 1, 1024);
	fx_alloc(f, 0);
	assert_int_equal(a->offer_count, 1);
	fx_mono = 0;
	master_lock(f->m);
	assert_int_equal(master_decline(f->m, &a->fw, a->offers[0], 100), 0);
	master_revive_offers(f->m, &b->fw);
	master_unlock(f->m);
	fx_alloc(f, 1);
	assert_int_equal(a->offer_count, 1);
	assert_int_equal(b->offer_count, 1);    /* the filter was a's only */
	master_lock(f->m);
	assert_int_equal(master_decline(f->m, &b->fw, b->offers[0], 100), 0);
	master_revive_offers(f->m, &a->fw);      /* clears a's filter */
	master_unlock(f->m);
	fx_alloc(f, 2);
	assert_int_equal(a->offer_count, 2);
	assert_int_equal(b->offer_count, 1);
	fx_free(f);
	free(a);
	free(b);
}

static void test_rescind_on_timeout(void **state)
{
	struct fx *f = fx_new(5);
	struct rec_fw *a = fx_framework(f, "a", 1);
	struct agent *ag;

	(void)state;
	agents(f, 1, 2, 2048);
	fx_alloc(f, 10);
	assert_int_equal(a->offer_count, 1);
	master_lock(f->m);
	ag = agents_find(f->m, "a1");
	assert_true(ag->offered.cpus == 2);
	assert_true(a->fw.allocated.cpus == 2);
	allocator_expire_offers(f->m, 14.9);
	assert_int_equal(a->rescinded_count, 0);
	allocator_expire_offers(f->m, 15);
	assert_int_equal(a->rescinded_count, 1);
	assert_string_equal(a->rescinded[0], a->offers[0]);
	assert_true(resources_is_empty(&ag->offered));
	assert_true(a->fw.allocated.cpus == 0);
	assert_int_equal(allocator_offer_count(f->m), 0);
	master_unlock(f->m);
	/* Resources are back: the next cycle offers them again under a new id. */
	fx_alloc(f, 16);
	assert_int_equal(a->offer_count, 2);
	assert_string_not_equal(a->offers[1], a->offers[0]);
	fx_free(f);
	free(a);
}

static void test_unreachable_agent_offers_rescinded(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = fx_framework(f, "a", 1);

	(void)state;
	fx_mono = 0;
	agents(f, 1, 2, 2048);
	fx_alloc(f, 1);
	assert_int_equal(a->offer_count, 1);
	master_lock(f->m);
	agents_check_timeouts(f->m, 14);
	assert_int_equal(a->rescinded_count, 0);
	agents_check_timeouts(f->m, 16);
	assert_int_equal(a->rescinded_count, 1);
	assert_int_equal(agents_find(f->m, "a1")->state, AGENT_UNREACHABLE);
	master_unlock(f->m);
	fx_alloc(f, 17);
	assert_int_equal(a->offer_count, 1);    /* nothing offered from it */
	fx_free(f);
	free(a);
}

static void test_accepting_rescinded_offer_fails(void **state)
{
	struct fx *f = fx_new(5);
	struct rec_fw *a = fx_framework(f, "a", 1);
	struct task_launch l = { .task_id = "t1" };
	const char *ids[1];
	char err[256] = "";

	(void)state;
	agents(f, 1, 2, 2048);
	fx_alloc(f, 0);
	fx_alloc(f, 6);                         /* expires the first, offers a new one */
	assert_int_equal(a->rescinded_count, 1);
	l.command = json_pack("{s:b,s:s}", "shell", 1, "value", "true");
	l.resources.cpus = 1;
	ids[0] = a->offers[0];
	master_lock(f->m);
	assert_int_equal(master_accept(f->m, &a->fw, ids, 1, &l, 1, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, a->offers[0]));
	master_unlock(f->m);
	json_decref(l.command);
	fx_free(f);
	free(a);
}

/* A framework that keeps its offers and is slow to answer: each callback takes 45 ms. */
static void slow_offers(struct framework *fw, struct offer **offers, size_t count)
{
	struct timespec ts = { 0, 45 * 1000 * 1000 };

	rec_offers(fw, offers, count);
	nanosleep(&ts, NULL);
}

static const struct framework_ops slow_ops = { .resource_offers = slow_offers };

/* A cycle that runs past its time budget stops after the chunk it is in, asks for the next
 * cycle at once, and that one goes on with the next agents: over the cycles every agent is
 * offered exactly once, and each cycle lands in the metrics histogram. */
static void test_sliced_cycle_resumes_where_it_stopped(void **state)
{
	struct fx *f = fx_new(100);
	struct rec_fw *a = calloc(1, sizeof(*a));
	unsigned long hist = 0;
	int cycles = 0;

	(void)state;
	snprintf(a->fw.name, sizeof(a->fw.name), "slow");
	a->fw.weight = 1;
	a->fw.ops = &slow_ops;
	master_lock(f->m);
	assert_int_equal(master_register_framework(f->m, &a->fw), 0);
	master_unlock(f->m);
	agents(f, 10, 1, 1024);
	do {
		master_lock(f->m);
		f->m->allocate_now = false;
		allocator_run(f->m, 1);
		master_unlock(f->m);
		cycles++;
		if (cycles == 1)
			assert_int_equal(a->offer_count, 4);    /* the first chunk only */
	} while (f->m->allocate_now && cycles < 10);
	assert_int_equal(cycles, 3);                    /* 4 + 4 + 2 agents */
	assert_int_equal(a->offer_count, 10);
	for (int i = 1; i <= 10; i++) {
		char id[16];

		snprintf(id, sizeof(id), "a%d", i);
		assert_int_equal(fx_offers_on(a, 0, id), 1);
	}
	for (int i = 0; i < ALLOC_HIST_BUCKETS; i++)
		hist += f->m->alloc.counts[i];
	assert_int_equal(f->m->alloc.cycles, 3);
	assert_int_equal(hist, 3);
	assert_int_equal(f->m->alloc.offers, 10);
	assert_true(f->m->alloc.max_ms >= 45);
	fx_free(f);
	free(a);
}

static void test_cycle_histogram_buckets(void **state)
{
	struct alloc_stats s;

	(void)state;
	memset(&s, 0, sizeof(s));
	alloc_stats_record(&s, 0.001, 0);       /* below the first bound */
	alloc_stats_record(&s, 1.0, 2);         /* exactly 10^2 x 0.01 ms */
	alloc_stats_record(&s, 1.01, 0);        /* just above: the next bucket */
	alloc_stats_record(&s, 1e9, 0);         /* beyond the last bound */
	assert_int_equal(s.counts[0], 1);
	assert_int_equal(s.counts[2 * ALLOC_HIST_PER_DECADE], 1);
	assert_int_equal(s.counts[2 * ALLOC_HIST_PER_DECADE + 1], 1);
	assert_int_equal(s.counts[ALLOC_HIST_BUCKETS - 1], 1);
	assert_int_equal(s.cycles, 4);
	assert_int_equal(s.offers, 2);
	assert_true(s.max_ms == 1e9 && s.last_ms == 1e9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drf_equal_weights_split_evenly),
		cmocka_unit_test(test_drf_weight_two_gets_twice),
		cmocka_unit_test(test_drf_lower_dominant_share_first),
		cmocka_unit_test(test_one_offer_per_agent_and_outstanding_not_reoffered),
		cmocka_unit_test(test_suppressed_gets_nothing),
		cmocka_unit_test(test_refuse_filter_until_deadline),
		cmocka_unit_test(test_filter_is_per_framework_and_revive_clears_it),
		cmocka_unit_test(test_rescind_on_timeout),
		cmocka_unit_test(test_unreachable_agent_offers_rescinded),
		cmocka_unit_test(test_accepting_rescinded_offer_fails),
		cmocka_unit_test(test_sliced_cycle_resumes_where_it_stopped),
		cmocka_unit_test(test_cycle_histogram_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
