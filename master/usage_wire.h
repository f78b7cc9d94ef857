/* usage_wire.h - the agents' usage batch (POST /internal/v1/usage) read straight from the
 * request body into C structs, without building a JSON tree: the master's hot path parses
 * ten thousand of these a second (issue 4).
 *
 * The body is strict JSON (RFC 8259, UTF-8): anything jansson's json_loadb (with
 * JSON_REJECT_DUPLICATES) refuses is refused too, with two documented differences: values
 * nested deeper than USAGE_WIRE_MAX_DEPTH are refused (jansson allows 2048 levels), and a
 * repeated key is refused only when it is one of the batch's own keys (a repeated unknown key
 * is skipped like any unknown key). Unknown keys are skipped whatever their value. */
#ifndef PACER_MASTER_USAGE_WIRE_H
#define PACER_MASTER_USAGE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/usage_frame.h"

#define USAGE_NFIELDS USAGE_FRAME_NFIELDS   /* = usage_nfields (master/usage.c checks) */
#define USAGE_WIRE_MAX_DEPTH 64
#define USAGE_TASK_ID_MAX 200
#define USAGE_WIRE_MAX_REPORTS 20000

/* One task reading. When bad_name is set the report is unusable and skipped (the batch
 * still applies): the message is "reports[i].<bad_name> <bad_what>". */
struct usage_reading {
	const char *task_id;        /* NUL-terminated, in the batch's arena */
	const char *app_id;         /* NULL: absent or not a string (then the task's old one) */
	bool final;
	bool has_at;
	double at;                  /* wall seconds, when has_at */
	int64_t counters[USAGE_NFIELDS];   /* in usage_fields order; absent = 0; all >= 0 */
	const char *bad_name, *bad_what;
};

struct usage_batch {
	const char *agent_id;       /* non-empty, NUL-terminated */
	uint64_t seq;               /* > 0 */
	size_t nreports;
	struct usage_reading *reports;
	char *arena;                /* the decoded strings */
};

/* The counter names are usage_frame_fields (lib/usage_frame.h), in usage_fields order
 * (usage.c's table must match). */

/* Parses one body. 0: b is filled (free it with usage_wire_free). -EINVAL: err says why;
 * *syntax is true when the body is not JSON at all (the route answers "Invalid JSON"),
 * false when a top-level field is bad (agent_id, seq, reports). -ENOMEM. On error b holds
 * nothing to free. */
int usage_wire_parse(const char *body, size_t len, struct usage_batch *b, bool *syntax,
		     char *err, size_t errlen);
void usage_wire_free(struct usage_batch *b);

/* Decodes one binary batch (lib/usage_frame.h) into b, with the JSON reader's checks: a bad
 * reading is marked (bad_name) and the batch still applies. 0, -EINVAL (err says what is
 * wrong with the frame: it cannot be read on), -ENOMEM. Free b with usage_wire_free. */
int usage_binary_parse(const char *payload, size_t len, struct usage_batch *b, char *err,
		       size_t errlen);

#endif
