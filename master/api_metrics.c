/* api_metrics.c - GET /v1/metrics: the master core's counters as JSON, for operators and
 * bench/placement: allocation cycles (count, histogram of durations with its bucket bounds,
 * max, last), offers made, registry sizes, the store writer's batches and the agent link's
 * queue. Histogram counts only grow, so a reader takes two samples and subtracts them to
 * get percentiles over the window between. */
#include <math.h>
#include "lib/http_server.h"
#include "master/agent_stream.h"
#include "master/master_internal.h"

static json_t *alloc_json(const struct alloc_stats *s)
{
	json_t *ub = json_array(), *counts = json_array();

	for (int i = 0; i < ALLOC_HIST_BUCKETS; i++) {
		double bound = ALLOC_HIST_MIN_MS * pow(10, (double)i / ALLOC_HIST_PER_DECADE);

		/* The last bucket has no upper bound: null. */
		json_array_append_new(ub, i == ALLOC_HIST_BUCKETS - 1 ? json_null()
				      : json_real(bound));
		json_array_append_new(counts, json_integer((json_int_t)s->counts[i]));
	}
	return json_pack("{s:I,s:I,s:f,s:f,s:f,s:o,s:o,s:{s:I,s:I,s:I}}", "count",
			 (json_int_t)s->cycles, "offers", (json_int_t)s->offers, "sum_ms", s->sum_ms,
			 "max_ms", s->max_ms, "last_ms", s->last_ms, "bucket_upper_ms", ub,
			 "bucket_counts", counts, "held_back", "agent_link", (json_int_t)s->held_link,
			 "status", (json_int_t)s->held_status, "store", (json_int_t)s->held_store);
}

static void h_metrics(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct master *m = ctx;
	struct alloc_stats alloc;
	size_t agents, tasks, offers, link_len;
	unsigned long batches, writes, queued, durable, coalesced, log_writes;
	struct task_log_stats log;

	(void)req;
	master_lock(m);
	alloc = m->alloc;
	agents = m->agent_count;
	tasks = m->task_count;
	offers = m->offer_count;
	master_unlock(m);
	pthread_mutex_lock(&m->link_mutex);
	link_len = m->link_len;
	pthread_mutex_unlock(&m->link_mutex);
	pthread_mutex_lock(&m->sw_mutex);
	batches = m->sw_batches;
	writes = m->sw_writes;
	coalesced = m->sw_coalesced;
	queued = m->sw_seq;
	durable = m->sw_durable;
	log_writes = m->sw_log_writes;
	log = m->sw_log_stats;
	pthread_mutex_unlock(&m->sw_mutex);
	http_respond_json(resp, 200, json_pack(
		"{s:o,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:{s:b,s:I,s:I,s:I,s:I}},s:{s:I,s:I}}",
		"allocation_cycles", alloc_json(&alloc), "agents", (json_int_t)agents,
		"tasks", (json_int_t)tasks, "offers", (json_int_t)offers,
		"store", "batches", (json_int_t)batches, "writes", (json_int_t)writes,
		"coalesced", (json_int_t)coalesced,
		"pending", (json_int_t)(queued - durable),
		"task_log", "open", m->task_log != NULL, "writes", (json_int_t)log_writes,
		"file_bytes", (json_int_t)log.file_bytes, "live_bytes", (json_int_t)log.live_bytes,
		"compactions", (json_int_t)log.compactions,
		"agent_link", "queued", (json_int_t)link_len,
		"streams", (json_int_t)agent_stream_count(m)));
}

int api_metrics_register(struct master *m, struct http_server *srv)
{
	return http_server_route(srv, "GET", "/v1/metrics", h_metrics, m);
}
