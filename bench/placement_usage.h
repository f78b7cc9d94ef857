/* placement_usage.h - the usage-ingestion load of the placement generator (issue 4): N
 * simulated agents, each on its own connection like a real agent's usage thread, send
 * batches of T task readings once per second, spread evenly over the second: as binary
 * frames on a usage stream (GET /internal/v1/usage/stream, upgraded to pacer-usage/2, what
 * agents send), as JSON frames on a pacer-usage/1 stream, or as POST /internal/v1/usage on
 * a keep-alive connection (the way before the streams); the master's CPU is measured with
 * heartbeats only, then with the load. */
#ifndef PACER_BENCH_PLACEMENT_USAGE_H
#define PACER_BENCH_PLACEMENT_USAGE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum usage_mode {
	USAGE_BINARY,                   /* pacer-usage/2 frames (the agents' way) */
	USAGE_JSON,                     /* pacer-usage/1 frames: the JSON body */
	USAGE_POST,                     /* a POST per batch */
};

/* "binary", "json", "post". */
const char *usage_mode_name(enum usage_mode m);

struct usage_load {
	uint16_t master_port;           /* on 127.0.0.1 */
	pid_t master_pid;
	long nagents;
	const char *(*agent_id)(long i);
	int tasks_per_agent;
	double interval;                /* seconds between an agent's batches (1) */
	double idle_seconds;            /* window with heartbeats only */
	double seconds;                 /* measured window with the load */
	enum usage_mode mode;
	volatile sig_atomic_t *interrupted;
};

struct usage_load_result {
	long batches_ok, batches_failed, late;  /* late: the previous batch not answered yet */
	long readings;                          /* task readings acknowledged */
	double window_s;
	double ack_p50_ms, ack_p99_ms;
	double idle_cpu_pct, load_cpu_pct;      /* master CPU, percent of one core */
	char why[200];
};

/* The process's user+system CPU seconds (/proc/<pid>/stat; placement.c), -1 if unknown. */
double proc_cpu_seconds(pid_t pid);

/* Runs the idle window, a warm-up second and the measured window. 0 or -1 (why set). */
int usage_load_run(const struct usage_load *l, struct usage_load_result *r);

#endif
