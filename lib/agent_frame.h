/* agent_frame.h - the messages of the agent stream (pacer-agent/1, issue 3): one persistent
 * connection per agent that carries the master's launch and kill calls to the agent, their
 * results back, the agent's status updates to the master and the master's acks, instead of
 * one HTTP call per batch in each direction (docs/architecture.md, "Agent stream").
 *
 * The agent opens it: GET /internal/v1/agent/stream with "Connection: Upgrade" and
 * "Upgrade: pacer-agent/1"; after the 101 both sides send length-prefixed frames
 * (lib/frame.h). The payload of each frame starts with its type byte; all integers are
 * little-endian; strings are UTF-8 without NUL, not terminated:
 *
 *   'H' hello    agent -> master, first frame:  u16 len | agent_id
 *   'L' launch   master -> agent:  u64 call_id | u32 n | n x element
 *   'K' kill     master -> agent:  u64 call_id | u32 n | n x element
 *        element: u8 task_id len | task_id | u32 json len | json
 *        (json: the element of the HTTP batch form, {"launches":[...]} / {"kills":[...]};
 *        task_id repeats the task's id so a reader can route it without a parse)
 *   'R' results  agent -> master, one per call, in call order:  answer (id = call_id)
 *   'S' status   agent -> master:  u64 batch_id | json (a POST /internal/v1/status body)
 *   'A' acks     master -> agent, one per status frame, in order:  answer (id = batch_id)
 *   'E' error    master -> agent, then the master closes:  u16 status | u16 len | message
 *
 *   answer: u64 id | u16 status | u16 len | message | u32 n | n x item
 *        item: u8 ok (1: accepted / acknowledged) | u16 len | error (empty when ok)
 *        status 200: one item per element / update, in order; any other status (an
 *        HTTP status: 400 bad batch, 503 try again): n is 0 and message says why.
 *
 * Encoders append whole frames to a frame_buf; readers check every length against the
 * payload and return -EINVAL naming what was wrong, so a peer's bytes can never be read
 * past. */
#ifndef PACER_AGENT_FRAME_H
#define PACER_AGENT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/frame.h"

#define AGENT_STREAM_PROTOCOL "pacer-agent/1"
#define AGENT_STREAM_PATH "/internal/v1/agent/stream"

enum agent_frame_type {
	AF_HELLO = 'H',
	AF_LAUNCH = 'L',
	AF_KILL = 'K',
	AF_RESULTS = 'R',
	AF_STATUS = 'S',
	AF_ACKS = 'A',
	AF_ERROR = 'E',
};

/* The payload's type (one of the above) or -EINVAL (empty or unknown). */
int agent_frame_type(const char *p, size_t len);

/* ---- encoders: -EINVAL (a string too long for its length field, an empty id), -EMSGSIZE,
 * -ENOMEM; on error b is as it was ---- */

int af_hello_encode(struct frame_buf *b, const char *agent_id);
int af_status_encode(struct frame_buf *b, uint64_t batch_id, const char *json, size_t len);
int af_error_encode(struct frame_buf *b, unsigned status, const char *message);

/* A call or an answer is built element by element in place: begin reserves the header,
 * add appends, end writes the count and the frame length. Between begin and end nothing
 * else may be appended to b. On an error from add the frame is still whole up to the last
 * element added (end may be called); from begin, nothing was appended. */
struct af_builder {
	struct frame_buf *b;
	size_t start;           /* offset of the frame header in b */
	size_t count_at;        /* offset of the u32 count in b */
	uint32_t n;
};

int af_call_begin(struct af_builder *w, struct frame_buf *b, enum agent_frame_type kind,
		  uint64_t call_id);
int af_call_add(struct af_builder *w, const char *task_id, const char *json, size_t json_len);
/* kind AF_RESULTS or AF_ACKS; message may be NULL (empty). An item's error is written as
 * UTF-8 without NUL (other bytes become '?') and cut to 65535 bytes at a character's start,
 * so any text can be sent. Nothing may consume b's front between begin and end either
 * (offsets are kept from it). */
int af_answer_begin(struct af_builder *w, struct frame_buf *b, enum agent_frame_type kind,
		    uint64_t id, unsigned status, const char *message);
int af_answer_add(struct af_builder *w, bool ok, const char *error);
void af_end(struct af_builder *w);

/* ---- readers: views into the payload (strings not terminated: use the lengths) ---- */

struct af_text {
	const char *p;
	size_t len;
};

/* 'H': the agent id (1..65535 bytes). */
int af_hello_read(const char *p, size_t len, struct af_text *agent_id, char *err, size_t errlen);
/* 'S': the batch id and the JSON text (not checked here: the status reader does). */
int af_status_read(const char *p, size_t len, uint64_t *batch_id, struct af_text *json,
		   char *err, size_t errlen);
/* 'E' */
int af_error_read(const char *p, size_t len, unsigned *status, struct af_text *message,
		  char *err, size_t errlen);

/* 'L' / 'K': open checks the header, next hands out elements one by one (1 with one, 0 at
 * the end, -EINVAL on a bad element: the rest of the frame is then unusable). */
struct af_call_reader {
	enum agent_frame_type kind;
	uint64_t call_id;
	uint32_t n, seen;
	const unsigned char *at, *end;
};

struct af_call_element {
	struct af_text task_id;         /* 1..255 bytes */
	struct af_text json;
};

int af_call_open(struct af_call_reader *r, const char *p, size_t len, char *err, size_t errlen);
int af_call_next(struct af_call_reader *r, struct af_call_element *el, char *err, size_t errlen);

/* 'R' / 'A' */
struct af_answer_reader {
	enum agent_frame_type kind;
	uint64_t id;
	unsigned status;
	struct af_text message;
	uint32_t n, seen;
	const unsigned char *at, *end;
};

struct af_answer_item {
	bool ok;
	struct af_text error;
};

int af_answer_open(struct af_answer_reader *r, const char *p, size_t len, char *err,
		   size_t errlen);
int af_answer_next(struct af_answer_reader *r, struct af_answer_item *it, char *err,
		   size_t errlen);

#endif
