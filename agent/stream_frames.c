/* stream_frames.c - the agent stream's frames from the master as the agent reads them
 * (lib/agent_frame.h): a launch / kill call turned into its results frame, an acks frame
 * turned into the answer POST /internal/v1/status would have given. Pure: what an element
 * does is the caller's function (stream_link.c carries it out with calls.c); fuzzed by
 * tests/fuzz/fuzz_agent_stream.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/util.h"

/* The room one item's error text may take so that an answer of n items stays within the
 * master's frame limit. */
static size_t item_error_room(uint32_t n)
{
	size_t per = (STREAM_OUT_FRAME_MAX - FRAME_HEADER - 64) / (n ? n : 1) - 3;

	return per < STREAM_ITEM_ERROR_MAX ? per : STREAM_ITEM_ERROR_MAX;
}

/* The results frame for a call that cannot be carried out at all (400, no items). */
static int refuse_call(uint64_t call_id, const char *why, struct frame_buf *out)
{
	struct af_builder w;
	char msg[512];
	int rc;

	snprintf(msg, sizeof(msg), "%s", why);
	utf8_sanitize(msg);
	rc = af_answer_begin(&w, out, AF_RESULTS, call_id, 400, msg);
	if (rc == 0)
		af_end(&w);
	return rc;
}

int stream_call_answer(const char *p, size_t len, stream_call_fn fn, void *ctx,
		       struct frame_buf *out, char *err, size_t errlen)
{
	struct af_call_reader r;
	struct af_call_element el;
	struct af_builder w;
	bool launch;
	char why[STREAM_ITEM_ERROR_MAX + 1] = "";
	size_t room;
	int rc;

	if (af_call_open(&r, p, len, err, errlen) < 0)
		return -EPROTO;
	launch = r.kind == AF_LAUNCH;
	if (r.n > AGENT_BATCH_MAX) {
		snprintf(why, sizeof(why), "/%s holds %u elements, at most %d",
			 launch ? "launches" : "kills", r.n, AGENT_BATCH_MAX);
		return refuse_call(r.call_id, why, out);
	}
	/* Every element's shape first: a frame that cannot be read is refused whole. */
	while ((rc = af_call_next(&r, &el, why, sizeof(why))) == 1)
		;
	if (rc < 0)
		return refuse_call(r.call_id, why, out);
	room = item_error_room(r.n);
	af_call_open(&r, p, len, why, sizeof(why));
	if ((rc = af_answer_begin(&w, out, AF_RESULTS, r.call_id, 200, NULL)) < 0)
		return rc;
	while (af_call_next(&r, &el, why, sizeof(why)) == 1) {
		int status;

		why[0] = '\0';
		status = fn(ctx, launch, el.json.p, el.json.len, why, sizeof(why));
		if (strlen(why) > room)
			why[room] = '\0';
		utf8_sanitize(why);     /* a message cut short must still be text */
		if ((rc = af_answer_add(&w, status == 0, status == 0 ? NULL : why)) < 0)
			break;
	}
	af_end(&w);
	return rc;
}

int stream_ack_answer(const char *p, size_t len, long *status, json_t **answer, char *err,
		      size_t errlen)
{
	struct af_answer_reader r;
	struct af_answer_item it;
	json_t *results;
	int rc;

	*answer = NULL;
	if (af_answer_open(&r, p, len, err, errlen) < 0)
		return -EPROTO;
	if (r.kind != AF_ACKS) {
		snprintf(err, errlen, "not an acks frame");
		return -EPROTO;
	}
	*status = r.status;
	if (r.status != 200) {
		*answer = json_pack("{s:s%}", "message", r.message.p, r.message.len);
		return *answer ? 0 : -ENOMEM;
	}
	if (!(results = json_array()))
		return -ENOMEM;
	while ((rc = af_answer_next(&r, &it, err, errlen)) == 1) {
		json_t *res = it.ok ? json_pack("{s:b}", "acknowledged", 1)
				    : json_pack("{s:s%}", "error", it.error.p, it.error.len);

		if (json_array_append_new(results, res) < 0) {
			rc = -ENOMEM;
			break;
		}
	}
	if (rc < 0) {
		json_decref(results);
		return rc == -ENOMEM ? rc : -EPROTO;
	}
	*answer = json_pack("{s:o}", "results", results);
	return *answer ? 0 : -ENOMEM;
}
