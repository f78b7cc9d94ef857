/* usage_stream.h - the agents' persistent usage streams (issue 4): GET
 * /internal/v1/usage/stream with "Connection: Upgrade" and "Upgrade: pacer-usage/2" (or
 * pacer-usage/1) switches the connection (101) to length-prefixed frames (lib/frame.h).
 * Each frame from the agent is one batch: on pacer-usage/2 the binary batch of
 * lib/usage_frame.h, on pacer-usage/1 the same JSON as a POST /internal/v1/usage body. Each
 * answer frame is the same JSON as the POST's answer, sent once the batch is durable:
 *   {"seq":N,"acknowledged_seq":N,"last_applied_seq":M}   or
 *   {"seq":N,"status":503,"message":"..."}  (journal failure: the agent sends it again)
 *   {"status":400|413,"message":"..."}      (a bad frame; the master then closes the stream)
 * One ingest thread with its own epoll reads every stream: a batch costs one recv, and
 * the acks a group commit makes durable go out with one send per stream. */
#ifndef PACER_MASTER_USAGE_STREAM_H
#define PACER_MASTER_USAGE_STREAM_H

#include "lib/http_server.h"
#include "master/usage.h"

#define USAGE_STREAM_PROTOCOL "pacer-usage/1"      /* JSON batches */
#define USAGE_STREAM_BINARY "pacer-usage/2"        /* binary batches */

struct usage_stream;

/* Starts the ingest thread and adds the route to srv (a pool server). */
int usage_stream_start(struct usage *u, struct http_server *srv, struct usage_stream **out);
/* Before http_server_stop: closes every stream (acks not sent are dropped: the agents send
 * those batches again) and ends the thread; later upgrades are closed at once. */
void usage_stop_streams(struct usage_stream *s);
/* After usage_destroy (the journal writer's answers may still reach the streams until
 * then): frees what is left. */
void usage_stream_free(struct usage_stream *s);

#endif
