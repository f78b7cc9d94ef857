/* status_wire.h - the agents' status bodies (POST /internal/v1/status) read straight from
 * the request body into C structs, without building a JSON tree: at placement scale the
 * master reads thousands of updates a second (issue 3).
 *
 * A body is {"agent_id":..., "update":STATUS} or {"agent_id":..., "updates":[STATUS...]}.
 * It is strict JSON (lib/json_scan.h): what jansson's json_loadb (JSON_REJECT_DUPLICATES)
 * refuses is refused as "Invalid JSON", with the error text of this reader (same shape,
 * other words) and two documented differences: values nested deeper than
 * STATUS_WIRE_MAX_DEPTH are refused (jansson allows 2048), and a repeated key is refused
 * only when it is one this reader reads (a repeated unknown key is skipped like any
 * unknown key). Unknown keys are skipped whatever their value.
 *
 * The fields are what the jansson calls of the old status.c gave it from the tree, so every
 * per-update verdict and record (master/status.c) is the one it reached:
 *   uuid, task_id, state, reason, message   json_string_value: NULL unless a string
 *   timestamp                               json_number_value: 0 unless an integer or real
 *   exit_code, signal                       json_is_integer: present only as integers
 *   healthy                                 json_is_boolean: present only as a boolean
 *   health_checks                           json_array_foreach: no checks unless an array;
 *                                           the first 16 elements (the old loop's break)
 *   a check's alive                         json_is_boolean, else null (-1 here)
 *   a check's four numbers                  json_number_value (status.c: finite and > 0)
 *   a check's last_failure_cause            json_string_value, else ""
 * An element that is not an object (an update in "updates", a check) reads with every field
 * absent, as json_object_get on it gave NULL. Hence, e.g., a uuid of 5 still gets "update
 * needs string fields uuid, task_id and state" and "uuid":null in its batch result.
 * (tests/unit/test_status_wire.c, test_master_tasks.c; fuzz_status_wire.c checks it all
 * against jansson.) */
#ifndef PACER_MASTER_STATUS_WIRE_H
#define PACER_MASTER_STATUS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most updates one POST /internal/v1/status may carry ({"updates":[...]}). */
#define STATUS_BATCH_MAX 4096
#define STATUS_WIRE_MAX_DEPTH 64
/* health_checks elements read per update; later ones are skipped. */
#define STATUS_WIRE_MAX_CHECKS 16

/* One element of an update's "health_checks" (one that is not an object reads with every
 * field absent). */
struct status_check {
	int alive;                  /* 1 true, 0 false, -1 absent or not a boolean */
	/* the numbers as read (integers converted), 0 when absent or not a number */
	double consecutive_failures, first_success, last_success, last_failure;
	const char *last_failure_cause;     /* NULL: absent or not a string */
};

struct status_update {
	/* NULL: absent or not a string. Decoded, NUL-terminated, in the batch's arena. */
	const char *uuid, *task_id, *state, *reason, *message;
	double timestamp;           /* 0 when absent or not a number */
	bool has_exit_code, has_signal;     /* present as integers */
	int64_t exit_code, signal;
	bool has_healthy, healthy;  /* has_healthy: "healthy" is a boolean */
	unsigned nchecks;           /* "health_checks" elements read (0: absent, not an array) */
	const struct status_check *checks;
};

struct status_batch {
	const char *agent_id;       /* a string (may be empty) */
	bool single;                /* {"update":...}: updates[0] is it; else {"updates":[...]} */
	size_t nupdates;
	struct status_update *updates;
	struct status_check *checks;        /* the storage of updates[].checks */
	char *arena;                /* the decoded strings */
};

/* Parses one body. 0: b is filled (free it with status_wire_free). -EINVAL: err is the
 * route's message; *syntax is true when the body is not JSON at all (the route answers
 * "Invalid JSON" with err as the detail), false when it is JSON but not a status body
 * ("request body must be a JSON object", "invalid status: ..."). -ENOMEM. On error b
 * holds nothing to free. */
int status_wire_parse(const char *body, size_t len, struct status_batch *b, bool *syntax,
		      char *err, size_t errlen);
void status_wire_free(struct status_batch *b);

#endif
