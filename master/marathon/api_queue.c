/* api_queue.c - GET /v2/queue: the apps waiting for tasks to be launched, with their launch
 * delay (backoff) and what became of the offers seen while waiting (Marathon 1.5's
 * processedOffersSummary and lastUnusedOffers, in a smaller form: docs/api.md);
 * DELETE /v2/queue/{id}/delay: launch again without waiting. */
#include <string.h>

#include "lib/util.h"
#include "master/marathon/marathon_internal.h"

static json_t *time_or_null(double wall)
{
	char ts[32];

	if (wall <= 0)
		return json_null();
	format_iso8601(wall, ts);
	return json_string(ts);
}

static json_t *reasons_json(unsigned reasons)
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < OFFER_REASON_COUNT; i++)
		if (reasons & (1u << i))
			json_array_append_new(arr, json_string(offer_reason_name(1u << i)));
	return arr;
}

/* Marathon's funnel over the last unused offers: each offer is declined by the first
 * check it failed (constraints, cpus, mem, disk, ports); "processed" is how many offers
 * reached that check. */
static json_t *reject_summary(const struct queue_stats *qs)
{
	json_t *arr = json_array();
	int reached = qs->count;

	for (int r = 0; arr && r < OFFER_REASON_COUNT; r++) {
		int declined = 0;

		for (int i = 0; i < qs->count; i++) {
			unsigned bits = qs->last[i].reasons;

			if ((bits & (1u << r)) && (bits & ((1u << r) - 1)) == 0)
				declined++;
		}
		json_array_append_new(arr, json_pack("{s:s, s:i, s:i}", "reason",
						     offer_reason_name(1u << r), "declined",
						     declined, "processed", reached));
		reached -= declined;
	}
	return arr;
}

static json_t *last_unused(const struct queue_stats *qs)
{
	json_t *arr = json_array();

	/* Newest first. */
	for (int k = 1; arr && k <= qs->count; k++) {
		const struct unused_offer *u =
			&qs->last[(qs->next - k + QUEUE_LAST_OFFERS) % QUEUE_LAST_OFFERS];

		json_array_append_new(arr, json_pack("{s:{s:s, s:s}, s:o, s:o}",
						     "offer", "agentId", u->agent_id,
						     "hostname", u->hostname,
						     "timestamp", time_or_null(u->at),
						     "reason", reasons_json(u->reasons)));
	}
	return arr;
}

static json_t *queue_entry(struct marathon *mt, const struct mt_app *ma)
{
	const struct queue_stats *qs = &ma->qs;
	double left = scheduler_delay_left(mt, ma);

	return json_pack("{s:o, s:i, s:o, s:{s:f, s:b}, s:{s:I, s:I, s:o, s:o, s:o}, s:o}",
			 "app", marathon_app_json(mt, ma, false),
			 "count", ma->missing,
			 "since", time_or_null(ma->queued_since),
			 "delay", "timeLeftSeconds", left, "overdue", left <= 0,
			 "processedOffersSummary",
			 "processedOffersCount", (json_int_t)qs->processed,
			 "unusedOffersCount", (json_int_t)qs->unused,
			 "lastUnusedOfferAt", time_or_null(qs->last_unused_at),
			 "lastUsedOfferAt", time_or_null(qs->last_used_at),
			 "rejectSummaryLastOffers", reject_summary(qs),
			 "lastUnusedOffers", last_unused(qs));
}

static void list_queue(struct http_response *resp, struct marathon *mt)
{
	json_t *arr = json_array();

	master_lock(mt->m);
	for (struct mt_app *ma = mt->apps; arr && ma; ma = ma->next)
		if (!ma->deleting && ma->missing > 0)
			json_array_append_new(arr, queue_entry(mt, ma));
	master_unlock(mt->m);
	http_respond_json(resp, 200, json_pack("{s:o}", "queue", arr));
}

static void reset_delay(struct http_response *resp, struct marathon *mt, const char *raw)
{
	char id[APP_ID_MAX + 1], err[512];
	struct mt_app *ma;

	if (app_id_normalize(raw, NULL, id, sizeof(id), err, sizeof(err))) {
		http_respond_error(resp, 404, "Application %s not found in tasks queue.", raw);
		return;
	}
	master_lock(mt->m);
	ma = apps_find(mt, id);
	if (!ma) {
		http_respond_error(resp, 404, "Application %s not found in tasks queue.", id);
	} else {
		scheduler_reset_backoff(ma);
		events_publish(mt->events, "app_delay_reset_event", json_pack("{s:s}", "appId", id));
		http_respond_text(resp, 204, "application/json", "");
		scheduler_reconcile(mt, true);
	}
	master_unlock(mt->m);
}

static void queue_route(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	const char *sub = req->subpath;
	size_t n = strlen(sub);
	char raw[1024];

	if (strspn(sub, "/") == n) {
		if (strcmp(req->method, "GET") == 0)
			list_queue(resp, mt);
		else
			http_respond_error(resp, 405, "Method %s is not allowed on %s", req->method,
					   req->path);
		return;
	}
	if (n > 6 && strcmp(sub + n - 6, "/delay") == 0 && strcmp(req->method, "DELETE") == 0) {
		snprintf(raw, sizeof(raw), "%.*s", (int)(n - 6), sub);
		reset_delay(resp, mt, raw);
		return;
	}
	if (n > 6 && strcmp(sub + n - 6, "/delay") == 0)
		http_respond_error(resp, 405, "Method %s is not allowed on %s", req->method, req->path);
	else
		http_respond_error(resp, 404, "No such resource: %s", req->path);
}

int api_queue_register(struct marathon *mt, struct http_server *srv)
{
	return http_server_route(srv, "*", "/v2/queue*", queue_route, mt);
}
