/* usage.h - the master's usage accounting (issue 4): cumulative per-task counters reported
 * by the agents (POST /internal/v1/usage, numbered per agent), kept durable in the store and
 * aggregated per app and tenant, with recent rates; served as JSON (GET /v1/usage), in the
 * Prometheus text format (GET /metrics) and as usage_update events (GET /v1/usage/events).
 *
 * Exactness: a report carries each task's cumulative counters, so a task's total is its
 * newest reading (never a sum of deltas); a batch whose sequence number is not above the
 * agent's last applied one is acknowledged without being applied; once a task's final
 * reading is in, later non-final readings are ignored. App and tenant totals are sums over
 * their tasks, finished ones included. The module has its own mutex; it never takes the
 * master's lock. */
#ifndef PACER_MASTER_USAGE_H
#define PACER_MASTER_USAGE_H

#include <stdint.h>
#include <jansson.h>
#include "lib/http_server.h"
#include "master/store.h"
#include "master/usage_wire.h"

/* --usage-retention: a finished task's record is kept this long after its final reading
 * (seconds), then folded into its app's and tenant's totals and forgotten. 0: forever. */
#define USAGE_RETENTION_DEFAULT (24 * 3600.0)

struct usage;

/* One counter of a report: its JSON name, the Prometheus metric, its help text, whether it
 * is a counter (cumulative, has a rate) or a gauge, and the scale to base units. */
struct usage_field {
	const char *name;
	const char *metric;
	const char *help;
	bool counter;
	double scale;
};
extern const struct usage_field usage_fields[];
extern const size_t usage_nfields;

/* Where usage_update events go: an event bus (master/marathon/events.c) handed in by
 * main.c, so this module links without the Marathon layer (the fuzz targets link
 * master/[!m]*.c alone). Borrowed for the module's life; NULL: no events. */
struct usage_bus {
	void *ctx;
	void (*publish)(void *ctx, const char *type, json_t *data);   /* data stolen */
	int (*subscribe)(void *ctx, const char *const *types, struct http_stream *out);
	void (*close)(void *ctx);
	/* Whether anyone subscribed: without listeners no event is even built. NULL: always. */
	bool (*listening)(void *ctx);
};

/* retention: seconds (see USAGE_RETENTION_DEFAULT). Loads the records, the retired totals and the agents' last applied sequence numbers from
 * the store, replays the usage journal in dir (the master's work dir) and checkpoints what
 * it held into the store. */
int usage_create(struct store *st, const char *dir, double retention,
		 const struct usage_bus *bus, struct usage **out, char *err, size_t errlen);
void usage_destroy(struct usage *u);
/* Group commit: a writer thread appends every batch applied since its last write to the
 * journal in one write + fdatasync, then answers the batches it made durable. Every
 * ~10 s (spaced to 20x the last one's duration; or past 1 GiB of journal) the changed
 * records go into the store in one transaction (a checkpoint thread) and the journal
 * starts over. Without the threads (unit tests) each batch is written on its own. Stop
 * writes what is left. */
int usage_start_writer(struct usage *u);
void usage_stop_writer(struct usage *u);
/* The least time between checkpoints (default 10 s; tests make it short). */
void usage_set_checkpoint_interval(struct usage *u, double seconds);
/* A checkpoint now (the threads must not run): -EBUSY, or the store's error. */
int usage_checkpoint(struct usage *u);

/* The answer to a batch: rc 0 once it is durable (acked: the sequence to acknowledge;
 * last: the agent's highest applied sequence), or -EIO/-ENOMEM with err saying why (the
 * journal write failed, the master is stopping). */
typedef void (*usage_done_fn)(void *arg, int rc, uint64_t acked, uint64_t last, const char *err);
/* Applies one parsed agent batch (usage_wire_parse; b may be freed on return) and queues it
 * for the journal. done is called exactly once: by the journal writer after the fdatasync
 * that made the batch durable (or after the failed write), or in the calling thread (a
 * repeat already durable, no writer running, an error); never with the module's lock held.
 * A bad report inside the batch is logged and skipped; the others are applied. */
void usage_apply_async(struct usage *u, struct usage_batch *b, usage_done_fn done, void *arg);
/* The same, returning once the batch is durable: 0 (applied, or a repeat; *acked is the
 * sequence to acknowledge), -EIO (journal; err says why), -ENOMEM. */
int usage_apply(struct usage *u, struct usage_batch *b, uint64_t *acked, char *err, size_t errlen);
/* The highest sequence applied for the agent (0: none). An agent that sees it above what
 * it sends has lost its numbering (a reset spool) and must number on from there. */
uint64_t usage_last_applied(struct usage *u, const char *agent_id);

/* The stream side's counters for /metrics: conns +1/-1 as streams open and close,
 * batches read from them. Lock-free. */
void usage_note_stream(struct usage *u, int conns, uint64_t batches);

/* {"tenants":[...],"apps":[...],"tasks":[...]} restricted by the filters (each may be NULL). */
json_t *usage_query(struct usage *u, const char *tenant, const char *app, const char *task);
/* The Prometheus text exposition (malloc'd). */
char *usage_metrics_text(struct usage *u);
/* An SSE stream of usage_update events; -ENOTSUP without a bus. */
int usage_subscribe(struct usage *u, struct http_stream *out);
/* Ends the event streams (before the HTTP server stops). */
void usage_close_streams(struct usage *u);

/* The tenant of an app id: its first path segment ("/team-a/web" -> "team-a"). */
void usage_tenant_of(const char *app_id, char *out, size_t outlen);

/* api_usage.c: the routes above. */
int api_usage_register(struct usage *u, struct http_server *srv);

#endif
