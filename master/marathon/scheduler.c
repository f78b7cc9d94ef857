/* scheduler.c - the app scheduler: a framework (master/framework.h) that keeps, for each
 * app, `instances` non-terminal tasks of the app's current configuration. It holds no task
 * table of its own: the master's task records are the truth (so a master restart rebuilds
 * its view for free; a record says whether a kill was asked for it); it only remembers
 * which terminal records still need expunging.
 *
 * A reconcile takes one snapshot of the framework's tasks, sorted by app, and walks it
 * beside the (sorted) app list, so each app sees only its own tasks. Per app: tasks of the
 * current config version are "new", others "old"; the upgrade planner (upgrade_plan.h)
 * says how many new tasks may be launched and which old or surplus ones killed, within
 * upgradeStrategy. Kills follow killSelection, tasks that are not running first.
 *
 * Unreachable tasks keep counting towards their app for inactiveAfterSeconds, are then
 * replaced, and forgotten after expungeAfterSeconds (the master kills one that comes back
 * after that). A task that ends without being asked to delays the app's next launch
 * (backoff); the delay resets once a task of the app has run for
 * scheduler_min_successful_run seconds, on a config change, or by DELETE
 * /v2/queue/{id}/delay. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hashmap.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/marathon/app_id.h"
#include "master/marathon/health_checks.h"
#include "master/marathon/marathon_internal.h"
#include "master/marathon/upgrade_plan.h"
#include "master/task_query.h"

#define REFUSE_IDLE_SECONDS 5.0
#define MIN_SUCCESSFUL_RUN 5.0
#define RES_EPSILON 1e-6

/* Bounded copy that truncates silently (ids are validated to fit before they get here). */
static void scopy(char *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n - 1);

	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* ---- kill and expunge bookkeeping ---- */

int scheduler_kill(struct marathon *mt, const char *task_id, double grace)
{
	const struct task_record *t;
	struct mt_app *ma;
	int rc;

	rc = master_kill_task(mt->m, task_id, grace);
	if (rc)
		return rc;
	t = master_find_task(mt->m, task_id);
	ma = t ? apps_find(mt, t->app_id) : NULL;
	if (ma)
		ma->quiet = false;
	log_info("event=marathon_kill task=%s", task_id);
	return 0;
}

static void expunge_later(struct marathon *mt, const char *task_id)
{
	struct expunge_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return;
	snprintf(e->task_id, sizeof(e->task_id), "%s", task_id);
	e->next = mt->expunge;
	mt->expunge = e;
}

static void expunge_pending(struct marathon *mt)
{
	while (mt->expunge) {
		struct expunge_entry *e = mt->expunge;
		const struct task_record *t = master_find_task(mt->m, e->task_id);

		mt->expunge = e->next;
		if (t && task_state_is_terminal(t->state))
			master_expunge_task(mt->m, e->task_id);
		free(e);
	}
}

/* ---- task views ---- */

struct task_list {
	const struct task_record **v;
	size_t n, cap;
	bool oom;
};

static void collect_task(const struct task_record *t, void *arg)
{
	struct task_list *l = arg;

	if (task_state_is_terminal(t->state))
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		const struct task_record **v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = t;
}

static int by_staged_at(const void *a, const void *b)
{
	const struct task_record *x = *(const struct task_record *const *)a;
	const struct task_record *y = *(const struct task_record *const *)b;

	if (x->staged_at != y->staged_at)
		return x->staged_at < y->staged_at ? -1 : 1;
	return strcmp(x->task_id, y->task_id);
}

static int by_app_then_staged(const void *a, const void *b)
{
	const struct task_record *x = *(const struct task_record *const *)a;
	const struct task_record *y = *(const struct task_record *const *)b;
	int c = strcmp(x->app_id, y->app_id);

	return c ? c : by_staged_at(a, b);
}

static int collect(struct marathon *mt, const char *app_id, const struct task_record ***out,
		   int (*cmp)(const void *, const void *))
{
	struct task_list l = { 0 };

	/* One app's tasks come from the master's per-app index, not a walk of them all (so
	 * collect_task needs no app filter). */
	if (app_id)
		master_for_each_app_task(mt->m, mt->fw.id, app_id, collect_task, &l);
	else
		master_for_each_task(mt->m, mt->fw.id, collect_task, &l);
	if (l.oom) {
		free(l.v);
		*out = NULL;
		return -ENOMEM;
	}
	if (l.n && cmp)
		qsort(l.v, l.n, sizeof(*l.v), cmp);
	*out = l.v;
	return (int)l.n;
}

int scheduler_tasks(struct marathon *mt, const char *app_id, const struct task_record ***out)
{
	return collect(mt, app_id, out, by_staged_at);
}

void scheduler_counts(struct marathon *mt, const char *app_id, struct app_counts *out)
{
	const struct task_record **v;
	int n = scheduler_tasks(mt, app_id, &v);

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n; i++) {
		if (v[i]->state == TASK_STAGING || v[i]->state == TASK_STARTING)
			out->staged++;
		else if (v[i]->state == TASK_RUNNING)
			out->running++;
		/* A task killed for its health stays unhealthy until it is gone. */
		if (v[i]->state == TASK_RUNNING && health_of(v[i]) == 1)
			out->healthy++;
		else if ((v[i]->state == TASK_RUNNING || v[i]->state == TASK_KILLING) &&
			 health_of(v[i]) == 0)
			out->unhealthy++;
	}
	free(v);
}

/* ---- backoff ---- */

void scheduler_reset_backoff(struct mt_app *ma)
{
	ma->failures = 0;
	ma->delay = 0;
	ma->launch_after = 0;
}

double scheduler_min_successful_run(const struct app *a)
{
	return a->backoff_seconds > MIN_SUCCESSFUL_RUN ? a->backoff_seconds : MIN_SUCCESSFUL_RUN;
}

double scheduler_delay_left(struct marathon *mt, const struct mt_app *ma)
{
	double left = ma->launch_after - mt->clock_mono();

	return ma->launch_after > 0 && left > 0 ? left : 0;
}

static bool in_backoff(struct marathon *mt, const struct mt_app *ma)
{
	return scheduler_delay_left(mt, ma) > 0;
}

/* A task of the app ended without being asked to: delay the next launch. */
static void backoff(struct marathon *mt, struct mt_app *ma)
{
	const struct app *a = &ma->app;
	double delay = a->backoff_seconds;

	for (int i = 0; i < ma->failures && delay < a->max_launch_delay; i++)
		delay *= a->backoff_factor;
	if (delay > a->max_launch_delay)
		delay = a->max_launch_delay;
	ma->failures++;
	ma->delay = delay;
	ma->launch_after = mt->clock_mono() + delay;
	log_info("event=marathon_backoff app=%s failures=%d delay=%.2f", ma->app.id, ma->failures,
		 delay);
}

/* ---- one app against its tasks ---- */

enum task_class { TC_IGNORED, TC_KILLING, TC_OLD_RUNNING, TC_OLD_OTHER, TC_NEW_RUNNING,
		  TC_NEW_OTHER };

static bool is_new(const struct mt_app *ma, const struct task_record *t)
{
	return strcmp(t->version, ma->app.last_config_change_at) == 0;
}

/* Seconds a TASK_UNREACHABLE task has been so (its last update is the transition). */
static double unreachable_for(struct marathon *mt, const struct task_record *t)
{
	return mt->clock_wall() - t->updated_at;
}

static enum task_class classify(struct marathon *mt, const struct mt_app *ma,
				const struct task_record *t)
{
	bool fresh = is_new(ma, t);

	if (t->state == TASK_UNKNOWN)
		return TC_IGNORED;
	if (t->state == TASK_UNREACHABLE) {
		if (t->kill_asked)
			return TC_IGNORED;
		if (!ma->app.unreachable_disabled &&
		    unreachable_for(mt, t) >= ma->app.inactive_after)
			return TC_IGNORED;      /* inactive: replaced */
		return fresh ? TC_NEW_OTHER : TC_OLD_OTHER;
	}
	if (t->state == TASK_KILLING || t->kill_asked)
		return TC_KILLING;
	/* "Running" for the planner is healthy: with health checks, a passed last check. */
	if (health_task_ready(t))
		return fresh ? TC_NEW_RUNNING : TC_OLD_RUNNING;
	return fresh ? TC_NEW_OTHER : TC_OLD_OTHER;
}

/* Kill order: not running before running, then killSelection by staging time. */
static int kill_order(const void *a, const void *b, void *arg)
{
	enum kill_selection sel = *(const enum kill_selection *)arg;
	const struct task_record *x = *(const struct task_record *const *)a;
	const struct task_record *y = *(const struct task_record *const *)b;
	int rx = x->state == TASK_RUNNING, ry = y->state == TASK_RUNNING;

	if (rx != ry)
		return rx - ry;
	if (x->staged_at != y->staged_at) {
		bool younger_first = sel == KILL_YOUNGEST_FIRST;

		return (x->staged_at > y->staged_at) == younger_first ? -1 : 1;
	}
	return strcmp(x->task_id, y->task_id);
}

/* Kills up to count tasks of v[] whose class is c1 or c2, in kill order. */
static int kill_some(struct marathon *mt, const struct mt_app *ma,
		     const struct task_record **v, int n, enum task_class c1,
		     enum task_class c2, int count)
{
	const struct task_record **cand;
	int m = 0, killed = 0;

	if (count <= 0)
		return 0;
	cand = malloc((size_t)n * sizeof(*cand));
	if (!cand)
		return 0;
	for (int i = 0; i < n; i++) {
		enum task_class c = classify(mt, ma, v[i]);

		if (c == c1 || c == c2)
			cand[m++] = v[i];
	}
	qsort_r(cand, (size_t)m, sizeof(*cand), kill_order, (void *)&ma->app.kill_selection);
	for (int i = 0; i < m && killed < count; i++)
		if (scheduler_kill(mt, cand[i]->task_id, app_kill_grace(&ma->app)) == 0)
			killed++;
	free(cand);
	return killed;
}

struct app_view {
	int counts[TC_NEW_OTHER + 1];
	bool successful_run;            /* a task ran long enough to end the backoff */
	int unreachable;
	int placed;                     /* tasks that count for constraints ... */
	uint64_t placed_agents_sum;     /* ... and the sum of hm_hash(agent id) over them */
};

/* Tasks that count for the app's constraints (placed and staying). */
static bool counts_as_placed(enum task_class c)
{
	return c != TC_IGNORED && c != TC_KILLING;
}

static void view_app(struct marathon *mt, const struct mt_app *ma,
		     const struct task_record **v, int n, struct app_view *out)
{
	double min_run = scheduler_min_successful_run(&ma->app), now = mt->clock_wall();

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n; i++) {
		enum task_class c = classify(mt, ma, v[i]);

		out->counts[c]++;
		out->unreachable += v[i]->state == TASK_UNREACHABLE;
		if (ma->app.cs.n && counts_as_placed(c)) {
			out->placed++;
			out->placed_agents_sum += hm_hash(v[i]->agent_id);
		}
		if (v[i]->state == TASK_RUNNING && v[i]->started_at > 0 &&
		    now - v[i]->started_at >= min_run)
			out->successful_run = true;
	}
}

/* The app's placed tasks per constraint value, for the next offers. Counted again only
 * when the placed tasks differ from those counted (or the definition or the agents' info
 * changed): the launches since were added as they were made, so most reconciles find
 * the same count and agents sum and keep the counts. */
static void count_placed(struct marathon *mt, struct mt_app *ma,
			 const struct task_record **v, int n, const struct app_view *av)
{
	if (ma->app.cs.n == 0) {
		constraint_counts_free(&ma->cc);
		return;
	}
	if (ma->cc.n == ma->app.cs.n && ma->cc.placed == av->placed &&
	    ma->cc_agents_sum == av->placed_agents_sum &&
	    ma->cc_agent_info_gen == mt->agent_info_gen &&
	    strcmp(ma->cc_version, ma->app.version) == 0)
		return;
	constraint_counts_free(&ma->cc);
	if (constraint_counts_init(&ma->cc, &ma->app.cs))
		return;
	for (int i = 0; i < n; i++) {
		json_t *info;

		if (!counts_as_placed(classify(mt, ma, v[i])))
			continue;
		info = json_object_get(mt->agent_info, v[i]->agent_id);
		mt->counted_unknown_agent |= !info;
		constraint_counts_add(&ma->cc, &ma->app.cs, v[i]->hostname,
				      json_object_get(info, "attributes"));
	}
	ma->cc_agents_sum = av->placed_agents_sum;
	ma->cc_agent_info_gen = mt->agent_info_gen;
	scopy(ma->cc_version, sizeof(ma->cc_version), ma->app.version);
}

static void app_terminated(struct marathon *mt, struct mt_app *ma)
{
	char id[APP_ID_MAX + 1];

	snprintf(id, sizeof(id), "%s", ma->app.id);
	apps_unpersist(mt, id);
	apps_remove(mt, ma);
	log_info("event=app_terminated app=%s", id);
	events_publish(mt->events, "app_terminated_event", json_pack("{s:s}", "appId", id));
}

/* The queue entry: an app waits while instances of its version are missing. */
static void update_queue(struct marathon *mt, struct mt_app *ma)
{
	if (ma->missing > 0 && ma->queued_since == 0) {
		ma->queued_since = mt->clock_wall();
		memset(&ma->qs, 0, sizeof(ma->qs));
	} else if (ma->missing == 0) {
		ma->queued_since = 0;
	}
}

/* Unreachable tasks of the app past expungeAfterSeconds are to be forgotten. */
static void find_expunged(struct marathon *mt, const struct mt_app *ma,
			  const struct task_record **v, int n, json_t *forget)
{
	for (int i = 0; forget && i < n; i++) {
		if (v[i]->state != TASK_UNREACHABLE || ma->app.unreachable_disabled)
			continue;
		if (unreachable_for(mt, v[i]) >= ma->app.expunge_after)
			json_array_append_new(forget, json_string(v[i]->task_id));
	}
}

struct ready_count {
	const struct mt_app *ma;
	int ready;
};

static void count_ready(const struct task_record *t, void *arg)
{
	struct ready_count *rc = arg;

	/* Ready is Marathon's: running and, for a task launched with health checks, healthy. */
	if (!task_state_is_terminal(t->state) && is_new(rc->ma, t) && health_task_ready(t) &&
	    !t->kill_asked)
		rc->ready++;
}

/* Counted in one walk of the app's tasks, without a list or a sort: deployments ask this
 * of every app they wait for on every tick. */
bool marathon_app_ready(struct marathon *mt, const struct mt_app *ma)
{
	struct ready_count rc = { .ma = ma };

	if (master_app_running_tasks(mt->m, mt->fw.id, ma->app.id) < (size_t)ma->app.instances)
		return false;   /* a ready task is a running one: not enough of those yet */
	master_for_each_app_task(mt->m, mt->fw.id, ma->app.id, count_ready, &rc);
	return rc.ready >= ma->app.instances;
}

/* The app's action in a deployment waits for earlier steps: nothing is launched or
 * killed, the app is not in the queue. */
static void hold_app(struct marathon *mt, struct mt_app *ma, const struct task_record **v,
		     int n)
{
	struct app_view av;

	ma->missing = 0;
	ma->to_launch = 0;
	ma->settled = false;
	view_app(mt, ma, v, n, &av);
	count_placed(mt, ma, v, n, &av);
	update_queue(mt, ma);
}

/* Returns true if the app was removed (deleted and all its tasks gone). */
static bool reconcile_app(struct marathon *mt, struct mt_app *ma,
			  const struct task_record **v, int n, json_t *forget)
{
	struct upgrade_state us;
	struct upgrade_step step;
	struct app_view av;
	int wanted = ma->deleting ? 0 : ma->app.instances;

	ma->quiet = false;
	ma->simple = false;
	ma->walk_due = false;
	if (deployment_held(mt, ma->app.id)) {
		hold_app(mt, ma, v, n);
		return false;
	}
	health_kill_unhealthy(mt, ma, v, n);
	view_app(mt, ma, v, n, &av);
	if (ma->failures > 0 && av.successful_run) {
		log_info("event=marathon_backoff_reset app=%s reason=successful_run", ma->app.id);
		scheduler_reset_backoff(ma);
	}
	us = (struct upgrade_state){
		.instances = wanted, .min_health = ma->app.min_health,
		.max_over = ma->app.max_over,
		.old_running = av.counts[TC_OLD_RUNNING], .old_other = av.counts[TC_OLD_OTHER],
		.new_running = av.counts[TC_NEW_RUNNING], .new_other = av.counts[TC_NEW_OTHER],
		.killing = av.counts[TC_KILLING],
	};
	upgrade_plan(&us, &step);
	if (step.forced)
		log_warn("event=marathon_upgrade_forced_kill app=%s reason=\"minimumHealthCapacity 1 "
			 "and maximumOverCapacity 0 leave no room\"", ma->app.id);
	if (step.kill_new + step.kill_old_other + step.kill_old_running > 0) {
		kill_some(mt, ma, v, n, TC_NEW_OTHER, TC_NEW_RUNNING, step.kill_new);
		kill_some(mt, ma, v, n, TC_OLD_OTHER, TC_OLD_OTHER, step.kill_old_other);
		kill_some(mt, ma, v, n, TC_OLD_RUNNING, TC_OLD_RUNNING, step.kill_old_running);
		view_app(mt, ma, v, n, &av);
	}
	if (!ma->deleting)
		find_expunged(mt, ma, v, n, forget);
	ma->missing = wanted - av.counts[TC_NEW_RUNNING] - av.counts[TC_NEW_OTHER];
	if (ma->missing < 0)
		ma->missing = 0;
	ma->to_launch = step.launch;
	count_placed(mt, ma, v, n, &av);
	update_queue(mt, ma);
	if (ma->to_launch > 0 && !in_backoff(mt, ma)) {
		mt->waiting = true;
		/* New work: offers declined while the app did not wait (refuse filters) must
		 * come back now, suppressed or not (applied after the reconcile). */
		mt->new_work |= !ma->was_waiting;
		ma->was_waiting = true;
	} else {
		ma->was_waiting = false;
	}

	if (ma->deleting) {
		/* Gone means no task that could still run, unreachable ones aside. */
		ma->settled = false;
		for (int c = TC_KILLING; c <= TC_NEW_OTHER; c++)
			if (av.counts[c] > 0)
				return false;
		app_terminated(mt, ma);     /* its deployment step sees it gone */
		return true;
	}
	ma->settled = av.counts[TC_OLD_RUNNING] + av.counts[TC_OLD_OTHER] == 0 &&
		      av.counts[TC_KILLING] == 0 && av.counts[TC_NEW_RUNNING] == wanted &&
		      av.counts[TC_NEW_OTHER] == 0;
	ma->simple = av.counts[TC_OLD_RUNNING] + av.counts[TC_OLD_OTHER] == 0 &&
		     av.counts[TC_KILLING] == 0 && av.counts[TC_IGNORED] == 0 &&
		     av.unreachable == 0 && ma->failures == 0 &&
		     json_array_size(ma->app.health_checks) == 0;
	/* Settled with no timer to watch: unreachable tasks (TC_*_OTHER, or TC_IGNORED once
	 * inactive) and a backoff keep it looked at every time. */
	ma->quiet = ma->settled && ma->failures == 0 && av.counts[TC_IGNORED] == 0;
	ma->seen_instances = ma->app.instances;
	scopy(ma->seen_version, sizeof(ma->seen_version), ma->app.last_config_change_at);
	return false;
}

/* What the app's last reconcile found about it still holds (mt_app.simple, .quiet). */
static bool unchanged_since_reconcile(struct marathon *mt, const struct mt_app *ma)
{
	return !ma->deleting && ma->seen_instances == ma->app.instances &&
	       strcmp(ma->seen_version, ma->app.last_config_change_at) == 0 &&
	       !deployment_held(mt, ma->app.id);
}

/* A quiet app whose definition did not change since has nothing to do (see mt_app.quiet). */
static bool still_quiet(struct marathon *mt, const struct mt_app *ma)
{
	return ma->quiet && unchanged_since_reconcile(mt, ma);
}

static bool still_simple(struct marathon *mt, const struct mt_app *ma);

/* A simple app that nothing happened to since its last walk but launches and tasks
 * starting to run (mt_app.walk_due): what a walk would find, on_offers and on_status
 * keep (missing, to_launch), so a whole reconcile leaves its tasks alone. While a million
 * tasks are placed that is every app, and walking their tasks is a cache miss each. */
static bool unchanged_simple(struct marathon *mt, const struct mt_app *ma)
{
	return !ma->walk_due && still_simple(mt, ma);
}

/* A task whose app no longer exists is killed; an unreachable one is forgotten (safe
 * context only): a deleted app leaves nothing listed behind, and if the agent comes back
 * the master kills what it no longer knows. */
static void orphan_task(struct marathon *mt, const struct task_record *t, bool safe,
			json_t *forget)
{
	if (t->state == TASK_UNREACHABLE) {
		if (safe && forget)
			json_array_append_new(forget, json_string(t->task_id));
		return;
	}
	if (t->state == TASK_UNKNOWN || t->state == TASK_KILLING ||
	    t->kill_asked)
		return;
	log_warn("event=marathon_orphan_task task=%s app=%s", t->task_id, t->app_id);
	scheduler_kill(mt, t->task_id, APP_DEFAULT_KILL_GRACE);
}

/* Tasks of no app (deleted, or an id no app has): killed, unreachable ones forgotten. Only
 * walked when the apps' live counts do not add up to the framework's. */
static void reconcile_orphans(struct marathon *mt, bool safe, json_t *forget)
{
	const struct task_record **v = NULL;
	int n = collect(mt, NULL, &v, by_app_then_staged);

	for (int i = 0; i < n; i++)
		if (!apps_find(mt, v[i]->app_id))
			orphan_task(mt, v[i], safe, forget);
	free(v);
}

/* One pass over every app and its tasks; forget (may be NULL) collects tasks to expunge. */
static void reconcile_pass(struct marathon *mt, bool safe, json_t *forget)
{
	const struct task_record **v = NULL;
	struct mt_app *ma, *next;
	size_t live_in_apps = 0;
	int total = 0;

	mt->waiting = false;
	/* App by app from the master's per-app index: no sort of every task by app id. */
	for (ma = mt->apps; ma; ma = next) {
		int n;

		next = ma->next;
		n = (int)master_app_live_tasks(mt->m, mt->fw.id, ma->app.id);
		live_in_apps += (size_t)n;
		if (still_quiet(mt, ma))
			continue;       /* not walked: not counted in what a reconcile costs */
		if (unchanged_simple(mt, ma)) {
			if (ma->to_launch > 0 && !in_backoff(mt, ma))
				mt->waiting = true;     /* as its last walk found it */
			continue;
		}
		/* Unsorted: nothing below depends on the order (kills sort their candidates). */
		n = collect(mt, ma->app.id, &v, NULL);
		if (n < 0)
			continue;
		total += n;
		reconcile_app(mt, ma, v, n, safe ? forget : NULL);     /* may remove ma */
		free(v);
		v = NULL;
	}
	if (master_framework_live_tasks(mt->m, mt->fw.id) > live_in_apps)
		reconcile_orphans(mt, safe, forget);
	mt->full_reconcile_tasks = total;
	mt->last_full_reconcile = mt->clock_mono();
}

/* Deployment steps are advanced after a pass; the apps of a step that just began act in
 * another pass at once (a bounded number: each pass can only end steps). */
#define MAX_PASSES 8

void scheduler_reconcile(struct marathon *mt, bool safe)
{
	json_t *forget = json_array();
	size_t j;
	json_t *id;

	if (!mt->registered)
		goto out;
	json_object_clear(mt->dirty_apps);      /* none is quiet: the passes reconcile them */
	if (safe)
		expunge_pending(mt);
	for (int pass = 0; pass < MAX_PASSES; pass++) {
		reconcile_pass(mt, safe, pass == 0 && safe ? forget : NULL);
		if (!deployments_advance(mt))
			break;
	}
	/* Expunge after the walk: the records the passes looked at are freed by it. */
	json_array_foreach(forget, j, id) {
		log_info("event=marathon_forget_unreachable task=%s", json_string_value(id));
		master_expunge_task(mt->m, json_string_value(id));
	}
	if (mt->waiting && (mt->fw.suppressed || mt->new_work))
		master_revive_offers(mt->m, &mt->fw);
	else if (!mt->waiting && !mt->fw.suppressed)
		master_suppress_offers(mt->m, &mt->fw);
	mt->new_work = false;
out:
	json_decref(forget);
}

void scheduler_reconcile_app(struct marathon *mt, struct mt_app *ma)
{
	const struct task_record **v = NULL;
	bool was_waiting = mt->waiting, gone;
	int n;

	if (!mt->registered)
		return;
	n = collect(mt, ma->app.id, &v, NULL);
	if (n < 0) {
		scheduler_reconcile(mt, false);
		return;
	}
	mt->waiting = false;
	gone = reconcile_app(mt, ma, v, n, NULL);        /* may remove ma */
	free(v);
	/* Offers are asked for as soon as this app waits; they are stopped only by a whole
	 * reconcile, which knows that no app waits. */
	if (mt->waiting && (mt->fw.suppressed || mt->new_work))
		master_revive_offers(mt->m, &mt->fw);
	mt->new_work = false;
	mt->waiting = mt->waiting || was_waiting;
	/* The app may have ended its deployment's step (only by being gone, or settled: not
	 * worth a look at every deployment otherwise): the apps of the next one act now. */
	if ((gone || ma->settled) && deployments_advance(mt))
		scheduler_reconcile(mt, false);
}

/* A small app is reconciled soon after its tasks change; an app with many tasks waits for
 * the next whole reconcile (every tick, at most once a second past 10,000 tasks): walking
 * its tasks once per status update would cost as many tasks as it has, per update. */
#define RECONCILE_AT_ONCE_MAX_TASKS 256
/* A status batch that changed at most this many apps reconciles them at its end (a small
 * cluster sees each change at once); more are left dirty for the next allocation cycle or
 * tick, which reconciles each once, however many batches changed it meanwhile (at 10,000
 * agents a batch touches a few tasks of each of many apps, and each app is in many). */
#define RECONCILE_BATCH_AT_ONCE_APPS 8
/* How long an offer round may spend on dirty apps first. */
#define DIRTY_IN_OFFERS_BUDGET_MS 4.0

/* Reconciles the dirty apps (by id: reconciling one may remove another, a deployment
 * step that ends); past budget_ms (0: none) the rest stay dirty. */
static void reconcile_dirty(struct marathon *mt, double budget_ms)
{
	json_t *dirty = mt->dirty_apps, *v;
	double started = mt->clock_mono();
	const char *id;

	if (!json_object_size(dirty))
		return;
	mt->dirty_apps = json_object();
	if (!mt->dirty_apps) {
		mt->dirty_apps = dirty;
		return;
	}
	json_object_foreach(dirty, id, v) {
		struct mt_app *ma;

		if (budget_ms > 0 && (mt->clock_mono() - started) * 1000 >= budget_ms) {
			json_object_set_new(mt->dirty_apps, id, json_true());
			continue;
		}
		ma = apps_find(mt, id);
		if (ma)
			scheduler_reconcile_app(mt, ma);
	}
	json_decref(dirty);
}

/* The app's last reconcile found it simple (mt_app.simple) and nothing changed since that
 * a reconcile must see: its definition, a kill, a task ending. */
static bool still_simple(struct marathon *mt, const struct mt_app *ma)
{
	return ma->simple && ma->failures == 0 && unchanged_since_reconcile(mt, ma);
}

/* later: leave it dirty (in a status batch, after an offer round) instead of now. */
static void app_changed(struct marathon *mt, struct mt_app *ma, bool later)
{
	ma->walk_due = true;
	if (master_app_live_tasks(mt->m, mt->fw.id, ma->app.id) > RECONCILE_AT_ONCE_MAX_TASKS)
		return;
	if (later && json_object_set_new(mt->dirty_apps, ma->app.id, json_true()) == 0)
		return;
	scheduler_reconcile_app(mt, ma);        /* (or no memory for the set) */
}

static void on_status_batch_begin(struct framework *fw)
{
	struct marathon *mt = fw->ctx;

	mt->in_status_batch = true;
}

static void on_status_batch_end(struct framework *fw)
{
	struct marathon *mt = fw->ctx;

	mt->in_status_batch = false;
	if (json_object_size(mt->dirty_apps) <= RECONCILE_BATCH_AT_ONCE_APPS)
		reconcile_dirty(mt, 0);
}

/* ---- offers ---- */

struct pending_app {
	struct mt_app *ma;
	int waiting;
	int per_offer;      /* spread: at most this many instances of the app per offer */
	size_t offer_no;    /* the offer the fields below are about (1-based; 0 none yet) */
	int on_this_offer;  /* launched on that offer */
	int at_offer_start; /* waiting when the app was first looked at for that offer */
	unsigned reasons;   /* why that offer did not take (more of) the app */
};

/* The apps of one offer round that still wait: the order they are looked at in (a cursor
 * turns it from offer to offer, so that the same apps are not always first) and how many
 * instances wait in all. */
struct offer_round {
	struct pending_app *pend;
	size_t *active;     /* indices into pend of apps with waiting > 0 */
	size_t nactive;
	size_t cursor;      /* where the next offer starts in active */
	size_t offer_no;
	long waiting;       /* sum of waiting */
	bool some_done;     /* an app stopped waiting on the last offer */
};

/* An offer that refused this many apps in a row for lack of resources is taken as full:
 * the apps after them are not looked at (an offer costs the apps it fits, not every app
 * that waits). */
#define FULL_AFTER_REFUSALS 8

static const char *const reason_names[OFFER_REASON_COUNT] = {
	"UnfulfilledConstraint", "InsufficientCpus", "InsufficientMemory", "InsufficientDisk",
	"InsufficientPorts",
};

const char *offer_reason_name(unsigned reason_bit)
{
	for (int i = 0; i < OFFER_REASON_COUNT; i++)
		if (reason_bit == 1u << i)
			return reason_names[i];
	return "Unknown";
}

/* Removes one port from a set. */
static int take_port(struct port_ranges *set, uint32_t port)
{
	struct port_ranges one;
	int rc;

	port_ranges_init(&one);
	rc = port_ranges_add_range(&one, port, port);
	if (!rc)
		rc = port_ranges_subtract(set, &one);
	port_ranges_free(&one);
	return rc;
}

/* Chooses the app's host ports from free_ports (chosen ones are removed): fixed ports
 * first, then the lowest free port for each "port 0". */
static int pick_ports(const struct app *a, struct port_ranges *free_ports, uint32_t *out)
{
	int rc;

	for (size_t i = 0; i < a->port_count; i++) {
		uint32_t p = a->ports[i].port;

		if (p == 0)
			continue;
		if (!port_ranges_contains_port(free_ports, p))
			return -ENOSPC;
		out[i] = p;
		rc = take_port(free_ports, p);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < a->port_count; i++) {
		if (a->ports[i].port != 0)
			continue;
		rc = port_ranges_pick(free_ports, 1, &out[i]);
		if (!rc)
			rc = take_port(free_ports, out[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* If the app fits in remaining, fills l (resources and ports) and takes them from
 * remaining. Returns 0 or -ENOSPC (*reasons says what was short). */
static int fit_task(const struct app *a, struct resources *remaining, struct task_launch *l,
		    unsigned *reasons)
{
	struct port_ranges free_ports;
	unsigned short_of = 0;
	int rc;

	if (a->cpus > remaining->cpus + RES_EPSILON)
		short_of |= REASON_CPUS;
	if (a->mem > remaining->mem + RES_EPSILON)
		short_of |= REASON_MEM;
	if (a->disk > remaining->disk + RES_EPSILON)
		short_of |= REASON_DISK;
	port_ranges_init(&free_ports);
	rc = port_ranges_copy(&free_ports, &remaining->ports);
	if (rc)
		goto out;
	if (pick_ports(a, &free_ports, l->ports))
		short_of |= REASON_PORTS;
	if (short_of) {
		*reasons |= short_of;
		rc = -ENOSPC;
		goto out;
	}
	resources_init(&l->resources);
	l->resources.cpus = a->cpus;
	l->resources.mem = a->mem;
	l->resources.disk = a->disk;
	l->port_count = a->port_count;
	for (size_t i = 0; i < a->port_count && !rc; i++)
		rc = port_ranges_add_range(&l->resources.ports, l->ports[i], l->ports[i]);
	if (!rc)
		rc = resources_subtract(remaining, &l->resources);
	if (rc)
		resources_free(&l->resources);
out:
	port_ranges_free(&free_ports);
	return rc;
}

/* The parts of a launch that do not change between tasks of one app version, made for
 * the first of them. */
static void launch_parts(struct mt_app *ma)
{
	const struct app *a = &ma->app;
	struct task_launch l = { 0 };

	if (ma->launch_command && strcmp(ma->launch_version, a->version) == 0)
		return;
	json_decref(ma->launch_command);
	json_decref(ma->launch_extra);
	free(ma->launch_shared_info);
	free(ma->launch_extra_text);
	ma->launch_command = app_task_command(a);
	ma->launch_extra = json_pack("{s:s, s:s}", "version", a->last_config_change_at,
				     "appVersion", a->version);
	ma->launch_extra_text = ma->launch_extra ?
		json_dumps(ma->launch_extra, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
	l.command = ma->launch_command;
	l.env = a->env;
	l.labels = a->labels;
	l.user = a->user;
	l.kill_grace_period_seconds = app_kill_grace(a);
	ma->launch_shared_info = ma->launch_command ? master_shared_info_text(&l) : NULL;
	scopy(ma->launch_version, sizeof(ma->launch_version), a->version);
}

/* Before fill_launch: l->ports are chosen (fit_task). */
static void fill_launch(struct mt_app *ma, struct task_launch *l)
{
	const struct app *a = &ma->app;
	char prefix[160], uuid[37];

	launch_parts(ma);
	app_id_task_prefix(a->id, prefix, sizeof(prefix));
	uuid_v7(uuid);     /* time-ordered: the store inserts at the end of the app's keys */
	scopy(l->task_id, sizeof(l->task_id) - sizeof(uuid), prefix);
	strcat(l->task_id, ".");
	strcat(l->task_id, uuid);
	l->fresh_id = true;
	scopy(l->name, sizeof(l->name), prefix);
	scopy(l->app_id, sizeof(l->app_id), a->id);
	l->command = json_incref(ma->launch_command);
	l->env = a->env;
	l->labels = a->labels;
	l->user = a->user;
	l->kill_grace_period_seconds = app_kill_grace(a);
	l->shared_info = ma->launch_shared_info;
	l->health_checks = health_checks_for_launch(a->health_checks, l->ports, l->port_count);
	/* (Whether it has health checks is the master's record's health_checked.) */
	l->extra = json_incref(ma->launch_extra);
	l->extra_text = ma->launch_extra_text;
}

static void free_launches(struct task_launch *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(ls[i].command);
		json_decref(ls[i].extra);
		json_decref(ls[i].health_checks);
		resources_free(&ls[i].resources);
	}
}

/* The app may take one more task on this offer's agent (constraints). */
static bool placement_allowed(struct pending_app *p, const struct offer *o)
{
	const struct app *a = &p->ma->app;

	if (a->cs.n == 0)
		return true;
	if (p->ma->cc.n != a->cs.n || !constraints_allow(&a->cs, &p->ma->cc, o->hostname,
							  o->attributes, NULL)) {
		p->reasons |= REASON_CONSTRAINT;
		return false;
	}
	return true;
}

/* Queue statistics for one offer, per app that was waiting when it came. */
static void record_offer(struct marathon *mt, struct pending_app *p, const struct offer *o)
{
	struct queue_stats *qs = &p->ma->qs;
	double now = mt->clock_wall();
	struct unused_offer *u;

	if (p->at_offer_start <= 0)
		return;
	qs->processed++;
	if (p->on_this_offer > 0) {
		qs->last_used_at = now;
		return;
	}
	if (!p->reasons)
		return;         /* not refused: the app had its share of this batch */
	qs->unused++;
	qs->last_unused_at = now;
	u = &qs->last[qs->next];
	qs->next = (qs->next + 1) % QUEUE_LAST_OFFERS;
	if (qs->count < QUEUE_LAST_OFFERS)
		qs->count++;
	scopy(u->agent_id, sizeof(u->agent_id), o->agent_id);
	scopy(u->hostname, sizeof(u->hostname), o->hostname);
	u->reasons = p->reasons;
	u->at = now;
}

/* The app is looked at for the round's current offer: its per-offer fields start over. */
static void look_at(struct offer_round *r, struct pending_app *p, size_t *touched, size_t *nt,
		    size_t idx)
{
	if (p->offer_no == r->offer_no)
		return;
	p->offer_no = r->offer_no;
	p->on_this_offer = 0;
	p->reasons = 0;
	p->at_offer_start = p->waiting;
	touched[(*nt)++] = idx;
}

/* Launches what fits of the waiting apps on one offer; returns launches made. Round robin:
 * one instance per app per pass, so one big app does not starve others; an app leaves the
 * offer's candidates once it has its share, no longer waits or is refused. */
static size_t use_offer(struct marathon *mt, struct offer *o, struct offer_round *r)
{
	struct task_launch *ls = NULL;
	size_t n = 0, cap = 0, launched = 0, ncand = r->nactive, nt = 0, first_pass_end = 0;
	size_t *cand = ncand ? malloc(ncand * sizeof(*cand)) : NULL;
	size_t *touched = ncand ? malloc(ncand * sizeof(*touched)) : NULL;
	struct resources remaining;
	const char *ids[1] = { o->id };
	char err[256], agent_id[64], offer_id[48];
	bool first_pass = true, full = false;
	int refusals = 0, rc;

	r->offer_no++;
	resources_init(&remaining);
	if ((ncand && (!cand || !touched)) || resources_copy(&remaining, &o->resources)) {
		ncand = 0;
		full = true;
	}
	for (size_t k = 0; k < ncand; k++)
		cand[k] = r->active[(r->cursor + k) % r->nactive];
	while (ncand && !full) {
		size_t keep = 0, k;

		for (k = 0; k < ncand && !full; k++) {
			struct pending_app *p = &r->pend[cand[k]];
			struct task_launch l;

			look_at(r, p, touched, &nt, cand[k]);
			if (p->waiting <= 0 || p->on_this_offer >= p->per_offer)
				continue;
			if (!placement_allowed(p, o))
				continue;
			memset(&l, 0, sizeof(l));
			if (fit_task(&p->ma->app, &remaining, &l, &p->reasons)) {
				full = ++refusals >= FULL_AFTER_REFUSALS;
				continue;
			}
			refusals = 0;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 8;
				struct task_launch *nl = realloc(ls, nc * sizeof(*nl));

				if (!nl) {
					resources_free(&l.resources);
					full = true;
					break;
				}
				ls = nl;
				cap = nc;
			}
			fill_launch(p->ma, &l);
			ls[n++] = l;
			p->ma->quiet = false;
			p->waiting--;
			r->waiting--;
			r->some_done |= p->waiting == 0;
			p->on_this_offer++;
			if (p->ma->app.cs.n) {
				constraint_counts_add(&p->ma->cc, &p->ma->app.cs, o->hostname,
						      o->attributes);
				p->ma->cc_agents_sum += hm_hash(o->agent_id);
			}
			if (p->waiting > 0 && p->on_this_offer < p->per_offer)
				cand[keep++] = cand[k];
		}
		if (first_pass)
			first_pass_end = k;
		first_pass = false;
		ncand = keep;
	}
	/* The next offer starts after the last app this one looked at first. */
	if (r->nactive)
		r->cursor = (r->cursor + first_pass_end) % r->nactive;
	resources_free(&remaining);
	for (size_t k = 0; k < nt; k++)
		record_offer(mt, &r->pend[touched[k]], o);
	if (n == 0) {
		master_decline(mt->m, &mt->fw, o->id, r->waiting > 0 ? 0 : REFUSE_IDLE_SECONDS);
		goto out;
	}
	/* The offer is gone once accepted: keep what the log needs. */
	scopy(agent_id, sizeof(agent_id), o->agent_id);
	scopy(offer_id, sizeof(offer_id), o->id);
	rc = master_accept(mt->m, &mt->fw, ids, 1, ls, n, r->waiting > 0 ? 0 : REFUSE_IDLE_SECONDS,
			   err, sizeof(err));
	if (rc) {
		log_error("event=marathon_accept_failed offer=%s error=\"%s\"", offer_id, err);
		master_decline(mt->m, &mt->fw, offer_id, 0);   /* harmless if already gone */
		goto out;
	}
	launched = n;
	for (size_t i = 0; i < n; i++)
		log_info("event=marathon_launch task=%s app=%s agent=%s", ls[i].task_id,
			 ls[i].app_id, agent_id);
out:
	free_launches(ls, n);
	free(ls);
	free(cand);
	free(touched);
	return launched;
}

/* Apps that no longer wait leave the round (order kept). */
static void compact_round(struct offer_round *r)
{
	size_t keep = 0, cursor = 0;

	if (!r->some_done)
		return;
	r->some_done = false;
	for (size_t k = 0; k < r->nactive; k++) {
		if (k == r->cursor)
			cursor = keep;
		if (r->pend[r->active[k]].waiting > 0)
			r->active[keep++] = r->active[k];
	}
	r->nactive = keep;
	r->cursor = keep ? cursor % keep : 0;
}

/* How long one round of offers may launch tasks (the allocation cycle holds the master's
 * lock meanwhile; its own budget, ALLOC_BUDGET_MS, is checked only between rounds). */
#define OFFER_ROUND_BUDGET_MS 12.0

static void on_offers(struct framework *fw, struct offer **offers, size_t count)
{
	struct marathon *mt = fw->ctx;
	struct offer_round r = { 0 };
	struct pending_app *pend = NULL;
	size_t npend = 0, napps = 0;
	bool progress = false;
	double started;

	/* What each app waits for, up to date (bounded: this is inside the allocation cycle;
	 * the rest is for the next one or the tick). */
	reconcile_dirty(mt, DIRTY_IN_OFFERS_BUDGET_MS);
	started = mt->clock_mono();
	agents_seen_offers(mt, offers, count);
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		napps++;
	if (napps) {
		pend = calloc(napps, sizeof(*pend));
		r.active = calloc(napps, sizeof(*r.active));
	}
	/* to_launch is from the reconcile that ended the last change (every status update,
	 * offer round and API change ends with one): no task scan here. */
	for (struct mt_app *ma = mt->apps; pend && ma; ma = ma->next) {
		if (ma->deleting || ma->to_launch <= 0 || in_backoff(mt, ma))
			continue;
		pend[npend].ma = ma;
		pend[npend].waiting = ma->to_launch;
		npend++;
	}
	/* Spread each app over the agents offered together: an even share per offer now;
	 * what did not fit waits for the next cycle (which a revive starts at once). */
	for (size_t i = 0; i < npend; i++) {
		pend[i].per_offer = count ? (int)((pend[i].waiting + count - 1) / count) : 0;
		r.waiting += pend[i].waiting;
		if (r.active)
			r.active[r.nactive++] = i;
	}
	r.pend = pend;
	for (size_t i = 0; i < count; i++) {
		/* The lock is held for the whole round: past its budget the offers left are
		 * declined without a filter and come back in the next cycle, at once. */
		if (i > 0 && r.waiting > 0 && (mt->clock_mono() - started) * 1000 >= OFFER_ROUND_BUDGET_MS) {
			for (size_t k = i; k < count; k++)
				master_decline(mt->m, &mt->fw, offers[k]->id, 0);
			master_wake_allocator(mt->m);
			break;
		}
		use_offer(mt, offers[i], &r);
		compact_round(&r);
	}
	/* What was launched no longer waits (the launches are STAGING tasks now); the
	 * reconcile of the app recounts it exactly. */
	for (size_t i = 0; i < npend; i++) {
		struct mt_app *ma = pend[i].ma;
		int launched = ma->to_launch - pend[i].waiting;

		if (launched <= 0)
			continue;
		progress = true;
		ma->to_launch = pend[i].waiting;
		ma->missing = ma->missing > launched ? ma->missing - launched : 0;
		update_queue(mt, ma);
		/* Its new tasks are STAGING: what the reconcile would count, on_offers has. */
		if (!still_simple(mt, ma))
			app_changed(mt, ma, true);
	}
	/* Instances still wait after a round that launched some: the agents' next offers
	 * (what these launches left, the shares a constraint held back) may take them, so ask
	 * for the next cycle now instead of at the next tick (the allocator runs it after
	 * ALLOC_ECHO_GAP). A round that launched nothing waits for the tick: no spinning on
	 * offers that cannot fit. */
	if (progress && r.waiting > 0)
		master_wake_allocator(mt->m);
	free(r.active);
	free(pend);
}

static void on_rescinded(struct framework *fw, const char *offer_id)
{
	(void)fw;
	(void)offer_id;     /* offers are answered at once; nothing is held */
}

static json_t *ip_addresses(struct marathon *mt, const char *agent_id, const char *host)
{
	const char *ip = json_string_value(json_object_get(mt->agent_ips, agent_id ? agent_id : ""));

	if (!ip)
		ip = host;
	if (!ip || !ip[0])
		return json_array();
	return json_pack("[{s:s, s:s}]", "ipAddress", ip, "protocol",
			 strchr(ip, ':') ? "IPv6" : "IPv4");
}

static void publish_status(struct marathon *mt, const struct task_status *st,
			   const struct task_record *t)
{
	char app_id[APP_ID_MAX + 1] = "";
	json_t *ports;
	char ts[32];

	if (!events_wanted(mt->events, "status_update_event"))
		return;         /* nobody listens: no event built per update */
	ports = json_array();
	if (t)
		scopy(app_id, sizeof(app_id), t->app_id);
	else
		app_id_from_task_id(st->task_id, app_id, sizeof(app_id));
	for (size_t i = 0; t && i < t->port_count; i++)
		json_array_append_new(ports, json_integer(t->ports[i]));
	format_iso8601(st->timestamp > 0 ? st->timestamp : now_wall(), ts);
	events_publish(mt->events, "status_update_event",
		       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s}",
				 "slaveId", st->agent_id ? st->agent_id : "",
				 "agentId", st->agent_id ? st->agent_id : "",
				 "taskId", st->task_id,
				 "taskStatus", task_state_name(st->state),
				 "message", st->message ? st->message : "",
				 "appId", app_id,
				 "ports", ports,
				 "ipAddresses", ip_addresses(mt, st->agent_id, t ? t->hostname : NULL),
				 "host", t ? t->hostname : "",
				 "version", t ? t->version : "", "timestamp", ts));
}

static void on_status(struct framework *fw, const struct task_status *st)
{
	struct marathon *mt = fw->ctx;
	const struct task_record *t = master_find_task(mt->m, st->task_id);
	struct mt_app *ma = t ? apps_find(mt, t->app_id) : NULL;

	if (ma)
		ma->quiet = false;
	health_on_status(mt, st, t);
	if (st->health_only) {          /* same state: only the health changed */
		if (ma)
			app_changed(mt, ma, mt->in_status_batch);
		return;
	}
	publish_status(mt, st, t);
	log_info("event=marathon_status task=%s state=%s", st->task_id, task_state_name(st->state));
	/* TASK_RUNNING alone does not end a backoff: a successful run does (reconcile). */
	if (task_state_is_terminal(st->state)) {
		if (ma && !ma->deleting && !t->kill_asked)
			backoff(mt, ma);
		expunge_later(mt, st->task_id);
	}
	/* A simple app's task that starts running only matters once all of them run. */
	if (ma && st->state == TASK_RUNNING && still_simple(mt, ma) &&
	    master_app_running_tasks(mt->m, mt->fw.id, ma->app.id) < (size_t)ma->app.instances)
		return;
	/* One update changes one app: reconcile that one (a million tasks are not walked
	 * per update). A task of no app is an orphan: the next whole reconcile kills it. */
	if (ma)
		app_changed(mt, ma, mt->in_status_batch);
}

/* The tick walks every task (timers: backoff ends, unreachable tasks, successful runs,
 * orphans; suppressing offers): every tick while that is cheap, at most once a second
 * once the framework has many tasks. Changes between are handled per app. */
#define FULL_RECONCILE_MANY_TASKS 10000
#define FULL_RECONCILE_MIN_INTERVAL 1.0
/* ... and one more second per this many tasks: a reconcile walks the tasks of every app
 * that changed since the last one (all of them while a million are placed), so its
 * share of the master's time stays bounded. Small apps react to their changes at once
 * anyway; a big one's replacements wait at most this long. */
#define FULL_RECONCILE_TASKS_PER_SECOND 200000

static void on_tick(struct framework *fw, double now)
{
	struct marathon *mt = fw->ctx;

	(void)now;
	if (mt->full_reconcile_tasks >= FULL_RECONCILE_MANY_TASKS &&
	    mt->clock_mono() - mt->last_full_reconcile <
	    FULL_RECONCILE_MIN_INTERVAL +
	    (double)mt->full_reconcile_tasks / FULL_RECONCILE_TASKS_PER_SECOND) {
		reconcile_dirty(mt, 0);
		expunge_pending(mt);
		return;
	}
	scheduler_reconcile(mt, true);
}

static const struct framework_ops app_scheduler_ops = {
	.resource_offers = on_offers,
	.offer_rescinded = on_rescinded,
	.status_update = on_status,
	.tick = on_tick,
	.status_batch_begin = on_status_batch_begin,
	.status_batch_end = on_status_batch_end,
};

/* The framework id survives restarts, so the master reattaches our running tasks. */
static int framework_id(struct marathon *mt, char *out, size_t outlen)
{
	json_t *j = NULL;
	char uuid[37];
	int rc;

	if (store_get(mt->store, KIND_META, META_FRAMEWORK_KEY, &j) == 0) {
		const char *id = json_string_value(json_object_get(j, "id"));

		if (id && id[0]) {
			snprintf(out, outlen, "%s", id);
			json_decref(j);
			return 0;
		}
		json_decref(j);
	}
	uuid_v4(uuid);
	snprintf(out, outlen, "marathon-%s", uuid);
	j = json_pack("{s:s}", "id", out);
	rc = j ? store_put(mt->store, KIND_META, META_FRAMEWORK_KEY, j) : -ENOMEM;
	json_decref(j);
	return rc;
}

int scheduler_start(struct marathon *mt, char *err, size_t errlen)
{
	int rc;

	rc = agents_seen_load(mt);
	if (rc) {
		snprintf(err, errlen, "cannot load the agents known from offers: %s", strerror(-rc));
		return rc;
	}
	if (!mt->clock_mono)
		mt->clock_mono = now_mono;
	if (!mt->clock_wall)
		mt->clock_wall = now_wall;
	mt->dirty_apps = json_object();
	if (!mt->agent_ips || !mt->agent_info || !mt->dirty_apps)
		return -ENOMEM;
	rc = framework_id(mt, mt->fw.id, sizeof(mt->fw.id));
	if (rc) {
		snprintf(err, errlen, "cannot store the app scheduler's framework id: %s",
			 strerror(-rc));
		return rc;
	}
	snprintf(mt->fw.name, sizeof(mt->fw.name), "marathon");
	snprintf(mt->fw.role, sizeof(mt->fw.role), "*");
	mt->fw.weight = 1.0;
	mt->fw.ops = &app_scheduler_ops;
	mt->fw.ctx = mt;
	rc = master_register_framework(mt->m, &mt->fw);
	if (rc) {
		snprintf(err, errlen, "cannot register the app scheduler: %s", strerror(-rc));
		return rc;
	}
	mt->registered = true;
	log_info("event=marathon_registered framework_id=%s", mt->fw.id);
	scheduler_reconcile(mt, true);
	return 0;
}

void scheduler_free(struct marathon *mt)
{
	json_decref(mt->dirty_apps);
	mt->dirty_apps = NULL;
	json_decref(mt->agent_info);
	mt->agent_info = NULL;

	while (mt->expunge) {
		struct expunge_entry *e = mt->expunge;

		mt->expunge = e->next;
		free(e);
	}
	json_decref(mt->agent_ips);
	mt->agent_ips = NULL;
}
