/* test_marathon_scheduler.c - the app scheduler against the real master core (SQLite
 * store, allocator, task records; the fixture's fake clock): launches and ports, deployment
 * completion, scale down newest first, replacement after failure (with backoff), unreachable
 * tasks replaced and the surplus killed when they return, rolling restart, delete, and a
 * master restart that launches nothing twice. */
#include "lib/http_server.h"
#include "master/marathon/marathon.h"
#include "master/marathon/marathon_internal.h"
#include "tests/unit/master_fixture.h"

struct sfx {
	struct fx *f;
	struct http_server *srv;
	struct marathon *mt;
	double now;
};

static void start_marathon(struct sfx *s)
{
	char err[256] = "";

	s->srv = http_server_start("127.0.0.1", 0, err, sizeof(err));
	assert_non_null(s->srv);
	if (marathon_start(s->f->m, s->srv, &s->mt, err, sizeof(err)) != 0)
		fail_msg("marathon_start: %s", err);
	s->mt->clock_mono = fx_clock_mono;
	s->mt->clock_wall = fx_clock_wall;
}

static void stop_marathon(struct sfx *s)
{
	marathon_close_streams(s->mt);
	http_server_stop(s->srv);
	marathon_stop(s->mt);
	s->srv = NULL;
	s->mt = NULL;
}

static int setup(void **state)
{
	struct sfx *s = calloc(1, sizeof(*s));

	s->f = fx_new(5);
	json_decref(fx_register_agent(s->f, "a1", 4, 4096, "127.0.0.1:1", NULL));
	start_marathon(s);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *s = *state;

	stop_marathon(s);
	fx_free(s->f);
	free(s);
	return 0;
}

static void create_app(struct sfx *s, const char *text)
{
	json_t *def = json_loads(text, 0, NULL), *clean = NULL, *details = NULL;
	struct deployment *d = NULL;
	struct app a;

	assert_non_null(def);
	assert_int_equal(app_validate(def, NULL, &clean, &details), 0);
	assert_int_equal(app_from_json(clean, &a), 0);
	master_lock(s->f->m);
	assert_int_equal(app_op_create(s->mt, &a, &d), 0);
	assert_non_null(d);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	app_free(&a);
	json_decref(clean);
	json_decref(def);
}

/* One allocation cycle (offers go to the scheduler, which launches) past refuse filters. */
static void offer_round(struct sfx *s)
{
	s->now += 10;
	fx_alloc(s->f, s->now);
}

static void reconcile(struct sfx *s)
{
	master_lock(s->f->m);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
}

/* Task ids of the app (oldest first) into ids; returns the count. */
static int app_tasks(struct sfx *s, const char *app, char ids[][160], int max)
{
	const struct task_record **v;
	int n;

	master_lock(s->f->m);
	n = scheduler_tasks(s->mt, app, &v);
	for (int i = 0; i < n && i < max; i++)
		snprintf(ids[i], 160, "%s", v[i]->task_id);
	master_unlock(s->f->m);
	free(v);
	return n;
}

static void set_state(struct sfx *s, const char *task, const char *state)
{
	char uuid[37], err[256], agent[64];
	const struct task_record *t;
	json_t *u;
	bool dup = false;

	master_lock(s->f->m);
	t = master_find_task(s->f->m, task);
	assert_non_null(t);
	snprintf(agent, sizeof(agent), "%s", t->agent_id);
	master_unlock(s->f->m);
	uuid_v4(uuid);
	u = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f}", "uuid", uuid, "task_id", task, "state", state,
		      "message", "", "reason", "", "timestamp", fx_wall);
	master_lock(s->f->m);
	assert_int_equal(fx_apply_status(s->f->m, agent, u, &dup, err, sizeof(err)), 0);
	master_unlock(s->f->m);
	json_decref(u);
	reconcile(s);
}

static bool kill_pending(struct sfx *s, const char *task)
{
	const struct task_record *t;
	bool r;

	master_lock(s->f->m);
	t = master_find_task(s->f->m, task);
	r = t && t->kill_asked;
	master_unlock(s->f->m);
	return r;
}

static bool has_deployment(struct sfx *s, const char *app)
{
	bool r;

	master_lock(s->f->m);
	r = deployment_for_app(s->mt, app) != NULL;
	master_unlock(s->f->m);
	return r;
}

static struct mt_app *find_app(struct sfx *s, const char *id)
{
	struct mt_app *ma;

	master_lock(s->f->m);
	ma = apps_find(s->mt, id);
	master_unlock(s->f->m);
	return ma;
}

static void test_launch_ports_and_deployment(void **state)
{
	struct sfx *s = *state;
	const struct task_record *t;
	struct mt_app *ma;
	char ids[8][160];
	int n;

	create_app(s, "{\"id\":\"/team-a/web\",\"cmd\":\"sleep 100\",\"cpus\":1,\"mem\":128,"
		      "\"instances\":3,\"portDefinitions\":[{\"port\":0},{\"port\":31009}]}");
	assert_true(has_deployment(s, "/team-a/web"));
	offer_round(s);
	n = app_tasks(s, "/team-a/web", ids, 8);
	/* The fixed port 31009 exists once on the agent: only one instance fits there. */
	assert_int_equal(n, 1);
	assert_int_equal(strncmp(ids[0], "team-a_web.", 11), 0);
	assert_int_equal(strlen(ids[0]), 11 + 36);
	ma = find_app(s, "/team-a/web");
	master_lock(s->f->m);
	t = master_find_task(s->f->m, ids[0]);
	assert_int_equal(t->port_count, 2);
	assert_int_equal(t->ports[1], 31009);
	assert_true(t->ports[0] >= 31000 && t->ports[0] <= 31010 && t->ports[0] != 31009);
	assert_string_equal(t->version, ma->app.last_config_change_at);
	master_unlock(s->f->m);

	set_state(s, ids[0], "TASK_RUNNING");
	assert_true(has_deployment(s, "/team-a/web"));   /* 1 of 3 */

	/* Two more agents: the other instances land there and the deployment completes. */
	json_decref(fx_register_agent(s->f, "a2", 4, 4096, "127.0.0.1:2", NULL));
	json_decref(fx_register_agent(s->f, "a3", 4, 4096, "127.0.0.1:3", NULL));
	offer_round(s);
	n = app_tasks(s, "/team-a/web", ids, 8);
	assert_int_equal(n, 3);
	for (int i = 0; i < n; i++)
		set_state(s, ids[i], "TASK_RUNNING");
	assert_false(has_deployment(s, "/team-a/web"));
}

static void test_scale_down_kills_newest(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL;
	char ids[4][160], older[160], newer[160];

	create_app(s, "{\"id\":\"/web\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":1}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/web", ids, 4), 1);
	snprintf(older, sizeof(older), "%s", ids[0]);
	set_state(s, older, "TASK_RUNNING");
	assert_false(has_deployment(s, "/web"));

	fx_wall += 60;   /* the second task is staged later */
	master_lock(s->f->m);
	assert_int_equal(app_op_scale(s->mt, apps_find(s->mt, "/web"), 2, false, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	/* A second change while this one runs is refused without force. */
	assert_int_equal(app_op_scale(s->mt, apps_find(s->mt, "/web"), 5, false, &d, &locked), -EBUSY);
	assert_non_null(locked);
	assert_non_null(strstr(json_string_value(json_object_get(locked, "message")),
			       "App is locked by one or more deployments"));
	json_decref(locked);
	locked = NULL;
	master_unlock(s->f->m);
	offer_round(s);
	assert_int_equal(app_tasks(s, "/web", ids, 4), 2);
	snprintf(newer, sizeof(newer), "%s", strcmp(ids[0], older) == 0 ? ids[1] : ids[0]);
	set_state(s, newer, "TASK_RUNNING");
	assert_false(has_deployment(s, "/web"));

	master_lock(s->f->m);
	assert_int_equal(app_op_scale(s->mt, apps_find(s->mt, "/web"), 1, false, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_true(kill_pending(s, newer));
	assert_false(kill_pending(s, older));
	assert_true(has_deployment(s, "/web"));       /* until the kill is confirmed */
	set_state(s, newer, "TASK_KILLED");
	assert_false(has_deployment(s, "/web"));
	master_lock(s->f->m);
	assert_null(master_find_task(s->f->m, newer));   /* expunged */
	master_unlock(s->f->m);
}

/* An allocation cycle dt seconds later (refuse filters may still hold). */
static void offer_after(struct sfx *s, double dt)
{
	s->now += dt;
	fx_wall += dt;
	fx_alloc(s->f, s->now);
}

/* Clock moves on by dt, then the tick's reconcile. */
static void tick_after(struct sfx *s, double dt)
{
	s->now += dt;
	fx_mono = s->now;
	fx_wall += dt;
	reconcile(s);
}

static void fail_only_task(struct sfx *s, const char *app, char *out_id)
{
	char ids[4][160];

	assert_int_equal(app_tasks(s, app, ids, 4), 1);
	if (out_id)
		snprintf(out_id, 160, "%s", ids[0]);
	set_state(s, ids[0], "TASK_FAILED");
	assert_int_equal(app_tasks(s, app, ids, 4), 0);
}

/* backoffSeconds x backoffFactor^(n-1), capped; TASK_RUNNING alone does not reset it, a
 * run of max(5 s, backoffSeconds) does. */
static void test_backoff_grows_caps_and_resets_after_successful_run(void **state)
{
	struct sfx *s = *state;
	char ids[4][160], first[160];
	struct mt_app *ma;

	create_app(s, "{\"id\":\"/crash\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,"
		      "\"backoffSeconds\":2,\"backoffFactor\":2,\"maxLaunchDelaySeconds\":5}");
	offer_round(s);
	fail_only_task(s, "/crash", first);
	ma = find_app(s, "/crash");
	assert_int_equal(ma->failures, 1);
	assert_true(ma->delay > 1.999 && ma->delay < 2.001);
	offer_after(s, 1.5);                          /* still backing off */
	assert_int_equal(app_tasks(s, "/crash", ids, 4), 0);
	tick_after(s, 1);                             /* 2.5 s: the delay has passed */
	offer_after(s, 0);
	assert_int_equal(app_tasks(s, "/crash", ids, 4), 1);
	assert_string_not_equal(ids[0], first);

	set_state(s, ids[0], "TASK_RUNNING");
	assert_int_equal(ma->failures, 1);            /* running is not yet a success */
	set_state(s, ids[0], "TASK_FAILED");
	assert_true(ma->delay > 3.999 && ma->delay < 4.001);
	tick_after(s, 4.5);
	offer_after(s, 0);
	fail_only_task(s, "/crash", NULL);
	assert_true(ma->delay > 4.999 && ma->delay < 5.001);   /* 8 capped at 5 */
	assert_int_equal(ma->failures, 3);

	tick_after(s, 5.5);
	offer_after(s, 0);
	assert_int_equal(app_tasks(s, "/crash", ids, 4), 1);
	set_state(s, ids[0], "TASK_RUNNING");
	tick_after(s, 4);
	assert_int_equal(ma->failures, 3);            /* 4 s < 5 s */
	tick_after(s, 1.5);
	assert_int_equal(ma->failures, 0);            /* a successful run */
	assert_true(scheduler_delay_left(s->mt, ma) == 0);
	set_state(s, ids[0], "TASK_FAILED");
	assert_true(ma->delay > 1.999 && ma->delay < 2.001);   /* from the start again */
}

/* A new configuration starts without backoff. */
static void test_config_change_resets_backoff(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL;
	struct mt_app *ma;

	create_app(s, "{\"id\":\"/cc\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"backoffSeconds\":100}");
	offer_round(s);
	fail_only_task(s, "/cc", NULL);
	ma = find_app(s, "/cc");
	assert_true(scheduler_delay_left(s->mt, ma) > 99);
	master_lock(s->f->m);
	assert_int_equal(app_op_restart(s->mt, ma, true, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_int_equal(ma->failures, 0);
	assert_true(scheduler_delay_left(s->mt, ma) == 0);
	offer_after(s, 0);
	assert_int_equal(app_tasks(s, "/cc", NULL, 0), 1);
}

/* killSelection OLDEST_FIRST kills the first-staged running task on a scale down. */
static void test_kill_selection_oldest_first(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL;
	char ids[4][160];

	create_app(s, "{\"id\":\"/old\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":1,"
		      "\"killSelection\":\"OLDEST_FIRST\"}");
	offer_round(s);
	fx_wall += 60;
	master_lock(s->f->m);
	assert_int_equal(app_op_scale(s->mt, apps_find(s->mt, "/old"), 3, true, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	offer_round(s);
	assert_int_equal(app_tasks(s, "/old", ids, 4), 3);   /* oldest first */
	for (int i = 0; i < 3; i++)
		set_state(s, ids[i], "TASK_RUNNING");
	master_lock(s->f->m);
	assert_int_equal(app_op_scale(s->mt, apps_find(s->mt, "/old"), 2, false, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_true(kill_pending(s, ids[0]));
	assert_false(kill_pending(s, ids[1]) || kill_pending(s, ids[2]));
}

/* Not-running tasks are killed before running ones, whatever their age. */
static void test_scale_down_kills_staging_first(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL;
	char ids[4][160];

	create_app(s, "{\"id\":\"/st\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":3}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/st", ids, 4), 3);
	set_state(s, ids[1], "TASK_RUNNING");
	set_state(s, ids[2], "TASK_RUNNING");
	master_lock(s->f->m);
	assert_int_equal(app_op_scale(s->mt, apps_find(s->mt, "/st"), 2, true, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_true(kill_pending(s, ids[0]));
	assert_false(kill_pending(s, ids[1]) || kill_pending(s, ids[2]));
}

/* inactiveAfterSeconds: the unreachable task counts until then and is replaced after;
 * expungeAfterSeconds: it is forgotten. */
static void test_unreachable_strategy(void **state)
{
	struct sfx *s = *state;
	char ids[4][160], lost[160];

	create_app(s, "{\"id\":\"/ur\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,"
		      "\"unreachableStrategy\":{\"inactiveAfterSeconds\":30,\"expungeAfterSeconds\":90}}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/ur", ids, 4), 1);
	snprintf(lost, sizeof(lost), "%s", ids[0]);
	set_state(s, lost, "TASK_RUNNING");
	master_lock(s->f->m);
	tasks_transition(s->f->m, tasks_find(s->f->m, lost), TASK_UNREACHABLE, "REASON_AGENT_REMOVED",
			 "agent is unreachable");
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	offer_after(s, 20);
	assert_int_equal(app_tasks(s, "/ur", ids, 4), 1);    /* not replaced yet */
	tick_after(s, 11);
	offer_after(s, 0);
	assert_int_equal(app_tasks(s, "/ur", ids, 4), 2);    /* replaced after 30 s */
	tick_after(s, 30);
	master_lock(s->f->m);
	assert_non_null(master_find_task(s->f->m, lost));    /* still known at 61 s */
	master_unlock(s->f->m);
	tick_after(s, 30);
	master_lock(s->f->m);
	assert_null(master_find_task(s->f->m, lost));        /* expunged at 91 s */
	master_unlock(s->f->m);
	assert_int_equal(app_tasks(s, "/ur", ids, 4), 1);
}

/* UNIQUE hostname: two agents take one task each; the third waits in the queue with
 * the constraint as the reason offers were not used. */
static void test_constraint_unique_and_queue_reason(void **state)
{
	struct sfx *s = *state;
	char ids[4][160];
	struct mt_app *ma;
	const struct unused_offer *u;

	json_decref(fx_register_agent(s->f, "a2", 4, 4096, "127.0.0.1:2", NULL));
	create_app(s, "{\"id\":\"/u\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":3,"
		      "\"constraints\":[[\"hostname\",\"UNIQUE\"]]}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/u", ids, 4), 2);
	ma = find_app(s, "/u");
	assert_int_equal(ma->missing, 1);
	assert_int_equal(ma->cc.placed, 2);
	offer_round(s);
	assert_int_equal(app_tasks(s, "/u", ids, 4), 2);
	assert_true(ma->qs.unused >= 2);
	u = &ma->qs.last[(ma->qs.next + QUEUE_LAST_OFFERS - 1) % QUEUE_LAST_OFFERS];
	assert_true(u->reasons & REASON_CONSTRAINT);
	assert_true(ma->queued_since > 0);

	/* A third agent is a new hostname: the last instance goes there. */
	json_decref(fx_register_agent(s->f, "a3", 4, 4096, "127.0.0.1:3", NULL));
	offer_round(s);
	assert_int_equal(app_tasks(s, "/u", ids, 4), 3);
	assert_int_equal(ma->missing, 0);
	assert_true(ma->queued_since == 0);
}

/* A round that launched some instances while others still wait asks for the next cycle at
 * once (the agents' next offers may take them) instead of waiting for the tick; a round
 * that launched nothing does not (no spinning on offers that cannot fit). */
static void test_round_with_progress_asks_for_next_cycle(void **state)
{
	struct sfx *s = *state;
	char ids[4][160];

	json_decref(fx_register_agent(s->f, "a2", 4, 4096, "127.0.0.1:2", NULL));
	create_app(s, "{\"id\":\"/next\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,"
		      "\"instances\":3,\"constraints\":[[\"hostname\",\"UNIQUE\"]]}");
	s->f->m->allocate_now = false;
	offer_round(s);
	assert_int_equal(app_tasks(s, "/next", ids, 4), 2);
	assert_true(s->f->m->allocate_now);
	s->f->m->allocate_now = false;
	offer_round(s);                 /* nothing fits: two hosts, both taken */
	assert_int_equal(app_tasks(s, "/next", ids, 4), 2);
	assert_false(s->f->m->allocate_now);
}

/* The constraint counts follow the tasks, not only the launches: when the task on one
 * host fails, its replacement may go back to that host (UNIQUE), and only there. */
static void test_constraint_counts_forget_a_failed_task(void **state)
{
	struct sfx *s = *state;
	char ids[4][160], failed_agent[64];
	const struct task_record *t;
	struct mt_app *ma;
	int n;

	json_decref(fx_register_agent(s->f, "a2", 4, 4096, "127.0.0.1:2", NULL));
	create_app(s, "{\"id\":\"/uf\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":2,"
		      "\"backoffSeconds\":1,\"constraints\":[[\"hostname\",\"UNIQUE\"]]}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/uf", ids, 4), 2);
	ma = find_app(s, "/uf");
	assert_int_equal(ma->cc.placed, 2);
	master_lock(s->f->m);
	t = master_find_task(s->f->m, ids[0]);
	snprintf(failed_agent, sizeof(failed_agent), "%s", t->agent_id);
	master_unlock(s->f->m);

	set_state(s, ids[0], "TASK_FAILED");
	assert_int_equal(ma->cc.placed, 1);
	tick_after(s, 2);                             /* past the backoff */
	offer_after(s, 0);
	n = app_tasks(s, "/uf", ids, 4);
	assert_int_equal(n, 2);
	assert_int_equal(ma->missing, 0);
	assert_int_equal(ma->cc.placed, 2);
	master_lock(s->f->m);
	t = master_find_task(s->f->m, ids[1]);        /* the newest: the replacement */
	assert_string_equal(t->agent_id, failed_agent);
	master_unlock(s->f->m);
}

/* An app too big to be reconciled at each change (over 256 tasks) whose placement only
 * launched and started tasks: a whole reconcile does not walk its tasks (nothing there a
 * walk would change) until its last task runs. A task killed and gone is replaced. */
static void test_big_simple_app_not_walked_until_something_changes(void **state)
{
	static char ids[300][160];
	struct sfx *s = *state;
	struct mt_app *ma;

	create_app(s, "{\"id\":\"/big\",\"cmd\":\"x\",\"cpus\":0.01,\"mem\":1,\"instances\":300,"
		      "\"portDefinitions\":[]}");
	for (int round = 0; round < 400 && app_tasks(s, "/big", ids, 300) < 300; round++)
		offer_round(s);
	assert_int_equal(app_tasks(s, "/big", ids, 300), 300);
	ma = find_app(s, "/big");
	reconcile(s);                                   /* its first walk after the launches */
	for (int i = 0; i < 299; i++)
		set_state(s, ids[i], "TASK_RUNNING");   /* each followed by a whole reconcile */
	assert_int_equal(s->mt->full_reconcile_tasks, 0);
	assert_false(ma->settled);
	set_state(s, ids[299], "TASK_RUNNING");         /* the last: walked, settled */
	assert_false(ma->walk_due);
	assert_true(ma->settled);
	assert_false(has_deployment(s, "/big"));
	/* A task killed (no backoff) and gone: the next whole reconcile walks the app and
	 * its replacement is launched. */
	master_lock(s->f->m);
	assert_int_equal(scheduler_kill(s->mt, ids[7], 0), 0);
	master_unlock(s->f->m);
	set_state(s, ids[7], "TASK_KILLED");
	assert_int_equal(ma->missing, 1);
	offer_round(s);
	assert_int_equal(app_tasks(s, "/big", ids, 300), 300);
	assert_int_equal(ma->missing, 0);
}

/* A task too big for any agent is refused for cpus, recorded for /v2/queue. */
static void test_queue_reason_insufficient_cpus(void **state)
{
	struct sfx *s = *state;
	struct mt_app *ma;

	create_app(s, "{\"id\":\"/big\",\"cmd\":\"x\",\"cpus\":64,\"mem\":64}");
	offer_round(s);
	ma = find_app(s, "/big");
	assert_int_equal(ma->missing, 1);
	assert_true(ma->qs.unused >= 1);
	assert_int_equal(ma->qs.last[0].reasons, REASON_CPUS);
	assert_string_equal(offer_reason_name(REASON_CPUS), "InsufficientCpus");
}

/* Rolling back a running upgrade restores the old version: its tasks are current again
 * and the new ones are killed. */
static void test_rollback_keeps_old_tasks(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL, *rb = NULL;
	json_t *locked = NULL;
	char old[2][160], ids[8][160];
	struct app a;
	struct mt_app *ma;
	int n;

	create_app(s, "{\"id\":\"/rb\",\"cmd\":\"v1\",\"cpus\":0.5,\"mem\":64,\"instances\":2}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/rb", old, 2), 2);
	set_state(s, old[0], "TASK_RUNNING");
	set_state(s, old[1], "TASK_RUNNING");
	ma = find_app(s, "/rb");
	assert_int_equal(app_copy(&a, &ma->app), 0);
	free(a.cmd);
	a.cmd = strdup("v2");
	memset(a.last_config_change_at, 0, sizeof(a.last_config_change_at));
	master_lock(s->f->m);
	assert_int_equal(app_op_update(s->mt, ma, &a, false, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	app_free(&a);
	offer_round(s);
	n = app_tasks(s, "/rb", ids, 8);
	assert_int_equal(n, 4);
	master_lock(s->f->m);
	assert_int_equal(app_op_rollback(s->mt, d, &rb), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_string_equal(ma->app.cmd, "v1");
	assert_false(kill_pending(s, old[0]) || kill_pending(s, old[1]));
	for (int i = 0; i < n; i++)
		if (strcmp(ids[i], old[0]) && strcmp(ids[i], old[1]))
			assert_true(kill_pending(s, ids[i]));
	for (int i = 0; i < n; i++)
		if (strcmp(ids[i], old[0]) && strcmp(ids[i], old[1]))
			set_state(s, ids[i], "TASK_KILLED");
	assert_false(has_deployment(s, "/rb"));
}

static void test_unreachable_replaced_then_surplus_killed(void **state)
{
	struct sfx *s = *state;
	char ids[4][160], a[160], b[160];
	int killed = 0;

	create_app(s, "{\"id\":\"/svc\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/svc", ids, 4), 1);
	snprintf(a, sizeof(a), "%s", ids[0]);
	set_state(s, a, "TASK_RUNNING");

	master_lock(s->f->m);
	tasks_transition(s->f->m, tasks_find(s->f->m, a), TASK_UNREACHABLE, "REASON_AGENT_REMOVED",
			 "agent is unreachable");
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	fx_wall += 60;
	offer_round(s);
	assert_int_equal(app_tasks(s, "/svc", ids, 4), 2);   /* the replacement */
	snprintf(b, sizeof(b), "%s", strcmp(ids[0], a) == 0 ? ids[1] : ids[0]);
	set_state(s, b, "TASK_RUNNING");

	set_state(s, a, "TASK_RUNNING");                      /* it came back */
	killed = kill_pending(s, a) + kill_pending(s, b);
	assert_int_equal(killed, 1);
	assert_true(kill_pending(s, b));                      /* newest first */
}

static void test_restart_replaces_old_after_new_run(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL;
	char ids[8][160], old[2][160];
	int n;

	create_app(s, "{\"id\":\"/r\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":2}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/r", old, 2), 2);
	set_state(s, old[0], "TASK_RUNNING");
	set_state(s, old[1], "TASK_RUNNING");

	master_lock(s->f->m);
	assert_int_equal(app_op_restart(s->mt, apps_find(s->mt, "/r"), false, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_false(kill_pending(s, old[0]) || kill_pending(s, old[1]));  /* capacity kept */
	offer_round(s);
	n = app_tasks(s, "/r", ids, 8);
	assert_int_equal(n, 4);
	for (int i = 0; i < n; i++)
		if (strcmp(ids[i], old[0]) && strcmp(ids[i], old[1]))
			set_state(s, ids[i], "TASK_RUNNING");
	assert_true(kill_pending(s, old[0]) && kill_pending(s, old[1]));
	assert_true(has_deployment(s, "/r"));
	set_state(s, old[0], "TASK_KILLED");
	set_state(s, old[1], "TASK_KILLED");
	assert_false(has_deployment(s, "/r"));
	assert_int_equal(app_tasks(s, "/r", ids, 8), 2);
}

static void test_delete_waits_for_tasks(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL, *versions;
	char ids[4][160];

	create_app(s, "{\"id\":\"/gone\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":2}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/gone", ids, 4), 2);
	set_state(s, ids[0], "TASK_RUNNING");
	/* Locked by the start deployment: delete needs force. */
	master_lock(s->f->m);
	assert_int_equal(app_op_delete(s->mt, apps_find(s->mt, "/gone"), false, &d, &locked), -EBUSY);
	json_decref(locked);
	assert_int_equal(app_op_delete(s->mt, apps_find(s->mt, "/gone"), true, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_true(kill_pending(s, ids[0]) && kill_pending(s, ids[1]));
	assert_non_null(find_app(s, "/gone"));
	set_state(s, ids[0], "TASK_KILLED");
	assert_non_null(find_app(s, "/gone"));
	set_state(s, ids[1], "TASK_KILLED");
	assert_null(find_app(s, "/gone"));
	assert_false(has_deployment(s, "/gone"));
	master_lock(s->f->m);
	assert_null(apps_version_get(s->mt, "/gone", "x"));
	versions = apps_versions(s->mt, "/gone");
	master_unlock(s->f->m);
	assert_int_equal(json_array_size(versions), 0);
	json_decref(versions);
}

/* Deleting an app also forgets its unreachable tasks. */
static void test_delete_forgets_unreachable(void **state)
{
	struct sfx *s = *state;
	struct deployment *d = NULL;
	json_t *locked = NULL;
	char ids[4][160], lost[160], repl[160];

	create_app(s, "{\"id\":\"/lost\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/lost", ids, 4), 1);
	snprintf(lost, sizeof(lost), "%s", ids[0]);
	set_state(s, lost, "TASK_RUNNING");
	master_lock(s->f->m);
	tasks_transition(s->f->m, tasks_find(s->f->m, lost), TASK_UNREACHABLE, "REASON_AGENT_REMOVED",
			 "agent is unreachable");
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	offer_round(s);
	assert_int_equal(app_tasks(s, "/lost", ids, 4), 2);
	snprintf(repl, sizeof(repl), "%s", strcmp(ids[0], lost) == 0 ? ids[1] : ids[0]);
	set_state(s, repl, "TASK_RUNNING");

	master_lock(s->f->m);
	assert_int_equal(app_op_delete(s->mt, apps_find(s->mt, "/lost"), false, &d, &locked), 0);
	scheduler_reconcile(s->mt, true);
	master_unlock(s->f->m);
	assert_true(kill_pending(s, repl));
	set_state(s, repl, "TASK_KILLED");
	assert_null(find_app(s, "/lost"));
	reconcile(s);
	master_lock(s->f->m);
	assert_null(master_find_task(s->f->m, lost));
	master_unlock(s->f->m);
}

static void test_master_restart_launches_nothing_twice(void **state)
{
	struct sfx *s = *state;
	char ids[4][160], after[4][160];
	json_t *refs = json_array();
	char fw_id[64];

	create_app(s, "{\"id\":\"/keep\",\"cmd\":\"x\",\"cpus\":0.5,\"mem\":64,\"instances\":2}");
	offer_round(s);
	assert_int_equal(app_tasks(s, "/keep", ids, 4), 2);
	set_state(s, ids[0], "TASK_RUNNING");
	set_state(s, ids[1], "TASK_RUNNING");
	assert_false(has_deployment(s, "/keep"));
	snprintf(fw_id, sizeof(fw_id), "%s", s->mt->fw.id);

	stop_marathon(s);
	fx_close_master(s->f);
	fx_open_master(s->f, 5);
	start_marathon(s);
	assert_string_equal(s->mt->fw.id, fw_id);             /* same framework id */
	assert_non_null(find_app(s, "/keep"));
	for (int i = 0; i < 2; i++)
		json_array_append_new(refs, json_pack("{s:s,s:s,s:s,s:{s:f,s:f}}", "task_id", ids[i],
						      "framework_id", fw_id, "state", "TASK_RUNNING",
						      "resources", "cpus", 0.5, "mem", 64.0));
	json_decref(fx_register_agent(s->f, "a1", 4, 4096, "127.0.0.1:1", refs));
	reconcile(s);
	offer_round(s);
	assert_int_equal(app_tasks(s, "/keep", after, 4), 2);
	assert_true((strcmp(after[0], ids[0]) == 0 && strcmp(after[1], ids[1]) == 0) ||
		    (strcmp(after[0], ids[1]) == 0 && strcmp(after[1], ids[0]) == 0));
	assert_false(kill_pending(s, ids[0]) || kill_pending(s, ids[1]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_launch_ports_and_deployment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_down_kills_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_grows_caps_and_resets_after_successful_run,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_change_resets_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_selection_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_down_kills_staging_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_strategy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constraint_unique_and_queue_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_with_progress_asks_for_next_cycle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_constraint_counts_forget_a_failed_task, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_big_simple_app_not_walked_until_something_changes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_reason_insufficient_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_keeps_old_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_replaced_then_surplus_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_replaces_old_after_new_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_waits_for_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_forgets_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_master_restart_launches_nothing_twice, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
