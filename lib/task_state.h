/* task_state.h - the task lifecycle shared by master, agent and tools (Mesos names). */
#ifndef PACER_TASK_STATE_H
#define PACER_TASK_STATE_H

#include <stdbool.h>

enum task_state {
	TASK_STAGING, TASK_STARTING, TASK_RUNNING, TASK_KILLING,
	TASK_FINISHED, TASK_FAILED, TASK_KILLED, TASK_ERROR, TASK_LOST,
	TASK_DROPPED, TASK_UNREACHABLE, TASK_GONE, TASK_UNKNOWN,
	TASK_STATE_COUNT
};

const char *task_state_name(enum task_state s);           /* "TASK_RUNNING" */
/* Returns -1 for an unknown name. */
int task_state_parse(const char *name);
/* FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE: the task will never run again. */
bool task_state_is_terminal(enum task_state s);

#endif
