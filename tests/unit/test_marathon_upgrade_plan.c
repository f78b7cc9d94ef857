/* test_marathon_upgrade_plan.c - the deployment planner: exact first steps of the
 * 4-instance upgrade with minimumHealthCapacity 0.5 / maximumOverCapacity 0.25, then
 * randomised whole upgrades for many strategies where the bounds must hold after every
 * step and every task event, and the upgrade must finish. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "master/marathon/upgrade_plan.h"

static void test_bounds(void **state)
{
	(void)state;
	assert_int_equal(upgrade_min_healthy(4, 0.5), 2);
	assert_int_equal(upgrade_max_total(4, 0.25), 5);
	assert_int_equal(upgrade_min_healthy(3, 0.5), 2);      /* ceil(1.5) */
	assert_int_equal(upgrade_max_total(3, 0.5), 4);        /* floor(4.5) */
	assert_int_equal(upgrade_min_healthy(10, 0.3), 3);     /* 0.3 x 10 is not 3.0000001 */
	assert_int_equal(upgrade_max_total(10, 0.1), 11);
}

static void test_first_steps_4_half_quarter(void **state)
{
	struct upgrade_state s = { .instances = 4, .min_health = 0.5, .max_over = 0.25,
				   .old_running = 4 };
	struct upgrade_step st;

	(void)state;
	upgrade_plan(&s, &st);
	assert_int_equal(st.kill_old_running, 2);      /* 4 healthy, 2 needed */
	assert_int_equal(st.launch, 1);                /* 4 + 1 = 5 */
	assert_false(st.forced);
	/* The kills are under way: nothing more until they end or a new task runs. */
	s = (struct upgrade_state){ .instances = 4, .min_health = 0.5, .max_over = 0.25,
				    .old_running = 2, .new_other = 1, .killing = 2 };
	upgrade_plan(&s, &st);
	assert_int_equal(st.launch + st.kill_old_running + st.kill_old_other, 0);
	/* The kills ended: two more launches (total 5). */
	s.killing = 0;
	upgrade_plan(&s, &st);
	assert_int_equal(st.launch, 2);
	assert_int_equal(st.kill_old_running, 0);
	/* A new task runs: one old may go. */
	s = (struct upgrade_state){ .instances = 4, .min_health = 0.5, .max_over = 0.25,
				    .old_running = 2, .new_running = 1, .new_other = 2 };
	upgrade_plan(&s, &st);
	assert_int_equal(st.kill_old_running, 1);
	assert_int_equal(st.launch, 0);
}

static void test_scale_within_one_version(void **state)
{
	struct upgrade_state s = { .instances = 5, .min_health = 1, .max_over = 1,
				   .new_running = 2 };
	struct upgrade_step st;

	(void)state;
	upgrade_plan(&s, &st);
	assert_int_equal(st.launch, 3);
	s = (struct upgrade_state){ .instances = 1, .min_health = 1, .max_over = 1,
				    .new_running = 2, .new_other = 1 };
	upgrade_plan(&s, &st);
	assert_int_equal(st.kill_new, 2);
	assert_int_equal(st.launch, 0);
	s = (struct upgrade_state){ .instances = 0, .min_health = 1, .max_over = 1,
				    .old_running = 1, .new_running = 2 };
	upgrade_plan(&s, &st);                         /* a delete */
	assert_int_equal(st.kill_new, 2);
	assert_int_equal(st.kill_old_running, 1);
}

/* minimumHealthCapacity 1 with maximumOverCapacity 0 has no legal step: one old task is
 * replaced at a time (flagged). */
static void test_no_room_forces_one_kill(void **state)
{
	struct upgrade_state s = { .instances = 3, .min_health = 1, .max_over = 0,
				   .old_running = 3 };
	struct upgrade_step st;

	(void)state;
	upgrade_plan(&s, &st);
	assert_true(st.forced);
	assert_int_equal(st.kill_old_running, 1);
	assert_int_equal(st.launch, 0);
	s.old_running = 2;
	s.killing = 1;
	upgrade_plan(&s, &st);
	assert_false(st.forced);
	assert_int_equal(st.kill_old_running + st.launch, 0);
}

/* Every slot taken, health at its floor, but new tasks are on their way (running, not
 * healthy yet): wait for them, no forced kill (it would dip below minimumHealthCapacity). */
static void test_no_forced_kill_while_new_tasks_come(void **state)
{
	struct upgrade_state s = { .instances = 4, .min_health = 0.5, .max_over = 0.25,
				   .old_running = 2, .new_other = 3 };
	struct upgrade_step st;

	(void)state;
	upgrade_plan(&s, &st);
	assert_false(st.forced);
	assert_int_equal(st.launch + st.kill_old_running + st.kill_old_other, 0);
	/* one of them passed its check: one old task may go */
	s.new_other = 2;
	s.new_running = 1;
	upgrade_plan(&s, &st);
	assert_false(st.forced);
	assert_int_equal(st.kill_old_running, 1);
}

/* A simulated app: tasks are old-running, new-staging, new-running or killing. */
struct sim { int old_running, old_other, new_staging, new_running, killing; };

static void sim_state(const struct sim *m, int n, double mh, double mo,
		      struct upgrade_state *s)
{
	*s = (struct upgrade_state){ .instances = n, .min_health = mh, .max_over = mo,
				     .old_running = m->old_running, .old_other = m->old_other,
				     .new_running = m->new_running, .new_other = m->new_staging,
				     .killing = m->killing };
}

static void check_bounds(const struct sim *m, int n, double mh, double mo, bool forced)
{
	int total = m->old_running + m->old_other + m->new_staging + m->new_running + m->killing;

	if (total > upgrade_max_total(n, mo))
		fail_msg("total %d > %d (n=%d mh=%.2f mo=%.2f)", total, upgrade_max_total(n, mo),
			 n, mh, mo);
	if (!forced && m->old_running + m->new_running < upgrade_min_healthy(n, mh))
		fail_msg("healthy %d < %d (n=%d mh=%.2f mo=%.2f)", m->old_running + m->new_running,
			 upgrade_min_healthy(n, mh), n, mh, mo);
}

static void run_upgrade(int n, double mh, double mo, unsigned seed)
{
	struct sim m = { .old_running = n };
	bool forced_ever = false;
	int steps;

	srand(seed);
	for (steps = 0; steps < 10000; steps++) {
		struct upgrade_state s;
		struct upgrade_step st;
		int events;

		sim_state(&m, n, mh, mo, &s);
		upgrade_plan(&s, &st);
		assert_true(st.kill_new == 0);
		/* Forcing is only for strategies where no step keeps both bounds. */
		if (st.forced)
			assert_true(upgrade_min_healthy(n, mh) >= upgrade_max_total(n, mo));
		forced_ever = forced_ever || st.forced;
		m.old_other -= st.kill_old_other;
		m.old_running -= st.kill_old_running;
		m.killing += st.kill_old_other + st.kill_old_running;
		m.new_staging += st.launch;
		check_bounds(&m, n, mh, mo, forced_ever);
		if (m.old_running + m.old_other + m.killing + m.new_staging == 0 &&
		    m.new_running == n)
			return;
		/* One task event: a staging task starts, or a killed one ends. */
		events = m.new_staging + m.killing;
		assert_true(events > 0);    /* otherwise the upgrade is stuck */
		if (rand() % events < m.new_staging) {
			m.new_staging--;
			m.new_running++;
		} else {
			m.killing--;
		}
		check_bounds(&m, n, mh, mo, forced_ever);
	}
	fail_msg("upgrade did not finish (n=%d mh=%.2f mo=%.2f)", n, mh, mo);
}

static void test_random_upgrades_keep_bounds(void **state)
{
	static const double mhs[] = { 0, 0.25, 0.5, 0.75, 1 };
	static const double mos[] = { 0, 0.25, 0.5, 1 };

	(void)state;
	for (int n = 1; n <= 12; n++)
		for (size_t i = 0; i < 5; i++)
			for (size_t j = 0; j < 4; j++)
				for (unsigned seed = 1; seed <= 20; seed++)
					run_upgrade(n, mhs[i], mos[j], seed * 7919u + (unsigned)n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_first_steps_4_half_quarter),
		cmocka_unit_test(test_scale_within_one_version),
		cmocka_unit_test(test_no_room_forces_one_kill),
		cmocka_unit_test(test_no_forced_kill_while_new_tasks_come),
		cmocka_unit_test(test_random_upgrades_keep_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
