/* usage_frame.h - the binary usage batch of the usage stream's second version
 * (pacer-usage/2, issue 4): what an agent sends each --usage-interval, as fixed-width
 * little-endian fields instead of JSON text, so the master decodes a batch with loads and
 * bounds checks rather than a parse. The agent (agent/usage_link.c) and the load generator
 * (bench/placement_usage.c) encode; the master decodes (master/usage_binary.c).
 *
 * Payload of one frame (lib/frame.h), all integers little-endian:
 *   u32 magic "PUB2" | u64 seq | u16 nfields | u16 agent_id length | u32 readings |
 *   agent_id bytes | readings
 * one reading:
 *   u8 flags (1 final, 2 app_id present, 4 at present) | u8 task_id length |
 *   u16 app_id length | f64 at (IEEE 754; 0 when absent) | nfields x u64 counters |
 *   task_id bytes | app_id bytes
 * Counters are in usage_frame_fields order. A sender with more fields than the reader
 * knows is read up to the reader's fields (the rest skipped); one with fewer leaves the
 * reader's last fields 0. Strings are UTF-8 without NUL, not terminated. */
#ifndef PACER_USAGE_FRAME_H
#define PACER_USAGE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/byte_order.h"
#include "lib/frame.h"

#define USAGE_FRAME_MAGIC 0x32425550u       /* "PUB2" read little-endian */
#define USAGE_FRAME_NFIELDS 15
#define USAGE_FRAME_HEAD (4 + 8 + 2 + 2 + 4)
#define USAGE_FRAME_READING_FIXED (1 + 1 + 2 + 8)
#define USAGE_FRAME_FINAL 1
#define USAGE_FRAME_APP 2
#define USAGE_FRAME_AT 4

/* The counter names (the JSON batch's keys) in the frame's order. */
extern const char *const usage_frame_fields[USAGE_FRAME_NFIELDS];

struct usage_frame_reading {
	const char *task_id;        /* 1..255 bytes */
	const char *app_id;         /* NULL: not sent */
	bool final, has_at;
	double at;
	uint64_t counters[USAGE_FRAME_NFIELDS];
};

/* Appends one whole frame (header and payload) holding the batch. -EINVAL: an id too long
 * for its length field (agent_id 65535, task_id 255, app_id 65535 bytes) or an empty one;
 * -EMSGSIZE, -ENOMEM. On error b is as it was. */
int usage_frame_encode(struct frame_buf *b, const char *agent_id, uint64_t seq,
		       const struct usage_frame_reading *r, size_t n);

#endif
