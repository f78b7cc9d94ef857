/* heartbeat_wire.h - the agents' heartbeat bodies (POST /internal/v1/heartbeat) read
 * straight from the request body into C structs, without a JSON tree: every agent lists
 * every task it runs in every heartbeat, so at a million tasks the master reads a few
 * hundred thousand task references a second (issue 3).
 *
 * A body is {"agent_id":..., "tasks":[TASKREF...]} with TASKREF {"task_id","state",
 * "stats":{"rx_bytes","tx_bytes","rx_packets","tx_packets"}} (other keys of any shape are
 * skipped). Strict JSON (lib/json_scan.h): what jansson's json_loadb refuses is refused as
 * "Invalid JSON" (this reader's words, the same position), with two differences: nesting
 * deeper than HEARTBEAT_WIRE_MAX_DEPTH is refused (jansson allows 2048), and a repeated key
 * is refused only when this reader reads it.
 *
 * The fields are what the jansson calls of the old reconciliation gave it, so every
 * decision (master/agents.c) is the one it reached:
 *   agent_id, task_id, state   json_string_value: NULL unless a string
 *   tasks                      absent, an array, or present but not an array (refused)
 *   stats                      used only when an object
 *   a counter                  an integer > 0 as it is; a real in (0, 1.8e19) truncated;
 *                              anything else 0 (tasks.c's counter())
 * An element of "tasks" that is not an object reads with every field absent (ignored). */
#ifndef PACER_MASTER_HEARTBEAT_WIRE_H
#define PACER_MASTER_HEARTBEAT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTBEAT_WIRE_MAX_DEPTH 64

/* One task the agent lists (at registration too: agents.c reads those from the tree). */
struct task_ref {
	const char *task_id;        /* NULL: absent or not a string (the reference is ignored) */
	const char *state;          /* NULL: absent or not a string */
	bool has_stats;             /* "stats" is an object */
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

struct heartbeat {
	const char *agent_id;       /* NULL: absent or not a string */
	bool has_tasks;             /* "tasks" is there */
	bool tasks_array;           /* ... and an array */
	size_t ntasks;
	struct task_ref *tasks;
	char *arena;                /* the decoded strings */
};

/* Parses one body. 0: hb is filled (free it with heartbeat_wire_free). -EINVAL: err says
 * why; *syntax is true when the body is not JSON (the route answers "Invalid JSON" with
 * err as the detail), false when it is JSON but not an object. -ENOMEM. On error hb
 * holds nothing to free. */
int heartbeat_wire_parse(const char *body, size_t len, struct heartbeat *hb, bool *syntax,
			 char *err, size_t errlen);
void heartbeat_wire_free(struct heartbeat *hb);

#endif
