/* usage_link.c - how the usage thread's batches reach the master: as frames on a usage
 * stream (GET /internal/v1/usage/stream, upgraded to pacer-usage/2: binary batches, see
 * lib/usage_frame.h and master/usage_stream.h), one frame out and its answer frame back,
 * or else as today's POST /internal/v1/usage (a master without that stream: an older one
 * during an upgrade). Either way the caller gets the POST's answer (status and
 * body), so what it does with an acknowledgement does not depend on the path.
 *
 * The stream is opened on first use and kept. A master that does not know it (404, 426,
 * ... for the upgrade) gets POSTs and is asked again every USAGE_STREAM_RETRY_S seconds; a
 * stream that breaks (the master restarted, an answer late) is closed, the batch goes
 * as a POST at once and the next batch opens a new stream. No pipelining: one batch is
 * out at a time (each batch carries every pending reading anyway). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/http_lite.h"
#include "lib/usage_frame.h"
#include "lib/log.h"
#include "lib/util.h"

#define USAGE_STREAM_RETRY_S 60.0
#define USAGE_ANSWER_MAX (64 * 1024)

void usage_link_close(struct usage_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	frame_buf_free(&l->in);
}

static void open_stream(struct usage_link *l, const char *master_url, long timeout_ms)
{
	struct http_result r;
	char url[2048], extra[1024];
	size_t extra_len = 0;
	int fd;

	if (path_join(url, sizeof(url), "%s/internal/v1/usage/stream", master_url))
		return;
	fd = http_lite_upgrade(url, "pacer-usage/2", timeout_ms, extra, sizeof(extra), &extra_len,
			       &r);
	if (fd < 0) {
		if (r.status) {
			/* A master without streams (or refusing one): POSTs for a while. */
			l->retry_at = now_mono() + USAGE_STREAM_RETRY_S;
			log_info("event=usage_stream_refused status=%ld body=\"%.200s\" fallback=post "
				 "retry_s=%g", r.status, r.body ?: "", USAGE_STREAM_RETRY_S);
		} else {
			log_debug("event=usage_stream_open_failed error=\"%s\"", r.error);
		}
		http_result_free(&r);
		return;
	}
	l->fd = fd;
	l->in.off = l->in.len = 0;
	if (extra_len && frame_buf_put(&l->in, extra, extra_len) < 0) {
		usage_link_close(l);
		return;
	}
	log_info("event=usage_stream_opened url=%s", url);
}

/* The batch as one binary frame. -EINVAL: it does not fit the format (an id too long). */
static int binary_frame(json_t *batch, struct frame_buf *f)
{
	json_t *reports = json_object_get(batch, "reports"), *e;
	size_t n = json_array_size(reports), i;
	struct usage_frame_reading *r = calloc(n ? n : 1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	json_array_foreach(reports, i, e) {
		json_t *at = json_object_get(e, "at");

		r[i].task_id = json_string_value(json_object_get(e, "task_id")) ?: "";
		r[i].app_id = json_string_value(json_object_get(e, "app_id"));
		r[i].final = json_is_true(json_object_get(e, "final"));
		r[i].has_at = json_is_number(at);
		r[i].at = json_number_value(at);
		for (size_t k = 0; k < USAGE_FRAME_NFIELDS; k++)
			r[i].counters[k] = (uint64_t)json_integer_value(
				json_object_get(e, usage_frame_fields[k]));
	}
	rc = usage_frame_encode(f, json_string_value(json_object_get(batch, "agent_id")) ?: "",
				(uint64_t)json_integer_value(json_object_get(batch, "seq")), r, n);
	free(r);
	return rc;
}

/* One batch on the stream: 0 with out filled like the POST's answer, or -errno (the stream
 * is closed, or the batch does not fit a binary frame; the caller posts it instead). */
static int stream_call(struct usage_link *l, json_t *batch, long timeout_ms,
		       struct http_result *out)
{
	struct frame_buf f = { 0 };
	const char *p = NULL;
	size_t plen = 0, used = 0;
	json_t *j;
	int rc;

	rc = binary_frame(batch, &f);
	if (rc == -EINVAL) {
		frame_buf_free(&f);
		return rc;              /* the stream stays: only this batch goes as a POST */
	}
	if (rc == 0)
		rc = http_lite_send_all(l->fd, f.p, f.len, timeout_ms);
	frame_buf_free(&f);
	if (rc < 0)
		goto broken;
	while ((rc = frame_next(l->in.p + l->in.off, l->in.len - l->in.off, USAGE_ANSWER_MAX, &p,
				&plen, &used)) == 0) {
		char buf[4096];
		long n = http_lite_recv(l->fd, buf, sizeof(buf), timeout_ms);

		if (n <= 0) {
			rc = n < 0 ? (int)n : -ECONNRESET;
			goto broken;
		}
		if (frame_buf_put(&l->in, buf, (size_t)n) < 0) {
			rc = -ENOMEM;
			goto broken;
		}
	}
	if (rc < 0)
		goto broken;
	memset(out, 0, sizeof(*out));
	out->body = strndup(p, plen);
	out->body_len = plen;
	frame_buf_consume(&l->in, used);
	if (!out->body) {
		rc = -ENOMEM;
		goto broken;
	}
	/* An ack is the POST's 200 body; an error names its status. */
	j = json_loadb(out->body, out->body_len, 0, NULL);
	out->status = json_is_integer(json_object_get(j, "status"))
			      ? (long)json_integer_value(json_object_get(j, "status")) : 200;
	json_decref(j);
	if (out->status == 400 || out->status == 413)
		usage_link_close(l);    /* the master closes the stream after a bad frame */
	return 0;
broken:
	log_info("event=usage_stream_lost error=\"%s\" fallback=post", strerror(-rc));
	usage_link_close(l);
	return rc;
}

int usage_link_send(struct usage_link *l, const char *master_url, json_t *batch,
		    long timeout_ms, struct http_result *out)
{
	char url[2048], *text;
	int rc;

	memset(out, 0, sizeof(*out));
	if (l->fd < 0 && now_mono() >= l->retry_at)
		open_stream(l, master_url, timeout_ms);
	if (l->fd >= 0 && stream_call(l, batch, timeout_ms, out) == 0) {
		l->batches++;
		return 0;
	}
	if (!(text = json_dumps(batch, JSON_COMPACT))) {
		snprintf(out->error, sizeof(out->error), "cannot encode the usage batch");
		return -1;
	}
	if (path_join(url, sizeof(url), "%s/internal/v1/usage", master_url)) {
		snprintf(out->error, sizeof(out->error), "master URL too long");
		rc = -1;
	} else {
		rc = http_lite_call("POST", url, text, strlen(text), "application/json", timeout_ms,
				    out);
	}
	free(text);
	return rc;
}
