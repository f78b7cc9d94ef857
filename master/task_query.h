/* task_query.h - indexed task queries for schedulers, beside master_for_each_task in
 * framework.h (which walks all of a framework's tasks): the tasks of one app come from the
 * master's per-app index, so a scheduler looking at one app does not walk a million
 * records. Same rules as framework.h: master->lock held; records valid while it is. */
#ifndef PACER_MASTER_TASK_QUERY_H
#define PACER_MASTER_TASK_QUERY_H

#include "master/framework.h"

/* Calls fn for every non-expunged task of the framework with this app_id, in the order
 * they were created (or loaded). fn may expunge the task it is given (only that one). */
void master_for_each_app_task(struct master *m, const char *framework_id, const char *app_id,
			      void (*fn)(const struct task_record *t, void *arg), void *arg);
/* Number of non-terminal tasks of the framework's app. */
size_t master_app_live_tasks(struct master *m, const char *framework_id, const char *app_id);
/* Number of TASK_RUNNING tasks of the framework's app. */
size_t master_app_running_tasks(struct master *m, const char *framework_id, const char *app_id);
/* Number of non-terminal tasks of the framework (all its apps). */
size_t master_framework_live_tasks(struct master *m, const char *framework_id);

#endif
