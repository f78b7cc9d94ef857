/* task_state.c - names and classes of task states. */
#include "lib/task_state.h"

#include <string.h>

static const char *const state_names[TASK_STATE_COUNT] = {
	[TASK_STAGING] = "TASK_STAGING",     [TASK_STARTING] = "TASK_STARTING",
	[TASK_RUNNING] = "TASK_RUNNING",     [TASK_KILLING] = "TASK_KILLING",
	[TASK_FINISHED] = "TASK_FINISHED",   [TASK_FAILED] = "TASK_FAILED",
	[TASK_KILLED] = "TASK_KILLED",       [TASK_ERROR] = "TASK_ERROR",
	[TASK_LOST] = "TASK_LOST",           [TASK_DROPPED] = "TASK_DROPPED",
	[TASK_UNREACHABLE] = "TASK_UNREACHABLE", [TASK_GONE] = "TASK_GONE",
	[TASK_UNKNOWN] = "TASK_UNKNOWN",
};

const char *task_state_name(enum task_state s)
{
	if ((unsigned)s >= TASK_STATE_COUNT)
		return "TASK_UNKNOWN";
	return state_names[s];
}

int task_state_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < TASK_STATE_COUNT; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}

bool task_state_is_terminal(enum task_state s)
{
	switch (s) {
	case TASK_FINISHED: case TASK_FAILED: case TASK_KILLED: case TASK_ERROR:
	case TASK_LOST: case TASK_DROPPED: case TASK_GONE:
		return true;
	default:
		return false;
	}
}
