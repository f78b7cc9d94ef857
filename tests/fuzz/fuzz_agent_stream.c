/* fuzz_agent_stream.c - libFuzzer target for the agent's reading of the master's frames on
 * the agent stream (agent/stream_frames.c): the input is one frame payload. A launch or
 * kill call is answered through a pure element function (the call's shape checks of
 * agent/call_parse.c, and a refusal for every third element so error items are made too):
 * the answer must be exactly one results frame, within the master's frame limit, with the
 * call's id and one item per element (status 200) or none (400), or nothing at all with
 * -EPROTO. An acks frame gives the POST-shaped answer: results for 200 (as many as items),
 * a message otherwise, or -EPROTO. */
/* fuzz-links: agent/stream_frames.c agent/call_parse.c agent/task_info.c agent/health_def.c */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "agent/agent.h"
#include "tests/fuzz/fuzz_common.h"

struct counter {
	uint32_t calls;
};

static int element(void *ctx, bool launch, const char *json, size_t len, char *err,
		   size_t errlen)
{
	struct counter *c = ctx;
	json_t *elem = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	struct task_info ti;
	const char *id;
	double grace;
	int status = 0;

	if (c->calls++ % 3 == 2) {
		memset(err, 'x', errlen - 1);         /* the longest error there is */
		err[errlen - 1] = '\0';
		json_decref(elem);
		return 500;
	}
	if (!elem) {
		snprintf(err, errlen, "Invalid JSON");
		return 400;
	}
	if (launch) {
		if (call_launch_check(elem, &ti, err, errlen))
			status = 400;
		else
			task_info_free(&ti);
	} else if (call_kill_check(elem, &id, &grace, err, errlen)) {
		status = 400;
	}
	json_decref(elem);
	return status;
}

static void check_call(const char *p, size_t len)
{
	struct frame_buf out = { 0 };
	struct counter c = { 0 };
	struct af_call_reader cr;
	struct af_answer_reader r;
	struct af_answer_item it;
	const char *payload;
	size_t plen, used;
	char err[256];
	int rc = stream_call_answer(p, len, element, &c, &out, err, sizeof(err));

	if (rc == -EPROTO) {
		CHECK(out.len == 0 && err[0]);
		CHECK(af_call_open(&cr, p, len, err, sizeof(err)) < 0);
		goto out;
	}
	CHECK(rc == 0);
	CHECK(af_call_open(&cr, p, len, err, sizeof(err)) == 0);
	CHECK(frame_next(out.p, out.len, STREAM_OUT_FRAME_MAX, &payload, &plen, &used) == 1);
	CHECK(used == out.len);
	CHECK(af_answer_open(&r, payload, plen, err, sizeof(err)) == 0);
	CHECK(r.kind == AF_RESULTS && r.id == cr.call_id);
	if (r.status == 200) {
		CHECK(r.n == cr.n && c.calls == cr.n);
		while ((rc = af_answer_next(&r, &it, err, sizeof(err))) == 1)
			CHECK(it.ok == (it.error.len == 0));
		CHECK(rc == 0);
	} else {
		CHECK(r.status == 400 && r.n == 0 && r.message.len > 0 && c.calls == 0);
	}
out:
	frame_buf_free(&out);
}

static void check_acks(const char *p, size_t len)
{
	struct af_answer_reader r;
	json_t *answer = NULL;
	long status = 0;
	char err[256];
	int rc = stream_ack_answer(p, len, &status, &answer, err, sizeof(err));

	if (rc == -EPROTO) {
		CHECK(!answer);
		return;
	}
	CHECK(rc == 0 && answer);
	CHECK(af_answer_open(&r, p, len, err, sizeof(err)) == 0 && (long)r.status == status);
	if (status == 200)
		CHECK(json_array_size(json_object_get(answer, "results")) == r.n);
	else
		CHECK(json_is_string(json_object_get(answer, "message")));
	json_decref(answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	switch (agent_frame_type(p, size)) {
	case AF_LAUNCH:
	case AF_KILL:
		check_call(p, size);
		break;
	case AF_ACKS:
	case AF_RESULTS:
		check_acks(p, size);
		break;
	default:
		break;
	}
	return 0;
}
