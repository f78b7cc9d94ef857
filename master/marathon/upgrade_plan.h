/* upgrade_plan.h - the deployment planner: given an app's wanted instances, its
 * upgradeStrategy and how its tasks stand now, how many new tasks may be launched and
 * how many old ones killed right now. A pure function, called on every reconcile, so a
 * rolling upgrade advances one safe step each time a task changes state.
 *
 * Bounds (Marathon's TaskReplaceActor, without its one exception):
 *   healthy = old_running + new_running  never drops below ceil(minHealth x instances)
 *   total   = old + new + killing        never exceeds floor((1 + maxOver) x instances)
 * "running" means healthy: TASK_RUNNING and, for an app with health checks, its last check
 * passed (the scheduler classifies; a running task not healthy yet is "other"); "killing"
 * are tasks asked to die that have not ended yet: they still hold resources, so they count
 * in the total. */
#ifndef PACER_MARATHON_UPGRADE_PLAN_H
#define PACER_MARATHON_UPGRADE_PLAN_H

#include <stdbool.h>

struct upgrade_state {
	int instances;
	double min_health;              /* upgradeStrategy.minimumHealthCapacity, 0..1 */
	double max_over;                /* upgradeStrategy.maximumOverCapacity, 0..1 */
	int old_running, old_other;     /* old version: healthy / not (staging, starting,
					   running but not healthy yet, unreachable) */
	int new_running, new_other;     /* current version */
	int killing;
};

struct upgrade_step {
	int launch;                     /* new tasks to launch now */
	int kill_old_other;             /* old non-running tasks to kill (free for health) */
	int kill_old_running;           /* old running tasks to kill */
	int kill_new;                   /* surplus new tasks to kill (scale down) */
	bool forced;                    /* minHealth 1 and maxOver 0 with every slot taken:
					   one old task is killed although it dips health */
};

int upgrade_min_healthy(int instances, double min_health);
int upgrade_max_total(int instances, double max_over);
void upgrade_plan(const struct upgrade_state *s, struct upgrade_step *out);

#endif
