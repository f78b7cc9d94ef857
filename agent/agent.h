/* agent.h - the agent core's private model: configuration, the task table, the status
 * update outbox, and the calls between its modules (main, api, tasks, monitor, recover,
 * master_link, stream_link, calls, checkpoint, outbox, task_info, resources_detect). The containerizer is
 * reached only through agent/containerizer.h.
 *
 * Threads: the main thread waits for SIGTERM/SIGINT; master_link sends register/heartbeat
 * and status updates; stream_link reads the agent stream (the master's calls, the acks of
 * status batches); the launcher starts containers one at a time; the monitor polls
 * running containers every 50 ms; libmicrohttpd runs one thread per API connection.
 * One mutex (agent->lock) guards the task table and the outbox. It is never held across
 * a network call or a call into the containerizer (which is thread-safe on its own). */
#ifndef PACER_AGENT_AGENT_H
#define PACER_AGENT_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "agent/containerizer.h"
#include "agent/health.h"
#include "lib/agent_frame.h"
#include "lib/frame.h"
#include "lib/resources.h"
#include "lib/task_state.h"

#define AGENT_ID_LEN 18          /* "agent-" + 12 hex */
#define TASK_ID_MAX 160   /* longest Marathon task id (159) + room; BPF keeps 167 */
#define DEFAULT_KILL_GRACE 3.0

/* ---- outbox.c: checkpointed, ordered status updates awaiting acknowledgement ---- */

struct outbox_entry {
	struct outbox_entry *next;
	uint64_t seq;
	char uuid[37];
	char *task_id;
	enum task_state state;
	json_t *update;              /* STATUS object */
	double next_attempt;         /* monotonic seconds; 0 = send as soon as possible */
};

struct outbox {
	char *dir;                   /* <work-dir>/meta/updates */
	struct outbox_entry *head, *tail;
	size_t count;
	uint64_t next_seq;
};

/* Loads the updates left in <work-dir>/meta/updates (oldest first). 0 or -errno. */
int outbox_open(struct outbox *o, const char *work_dir);
void outbox_close(struct outbox *o);
/* Writes the update (needs "uuid" and "task_id"; borrowed) to disk, then queues it. */
int outbox_add(struct outbox *o, json_t *update);
/* Deletes the acknowledged update; -ENOENT if no such uuid is pending. */
int outbox_ack(struct outbox *o, const char *uuid);
struct outbox_entry *outbox_find(struct outbox *o, const char *uuid);
size_t outbox_count_task(const struct outbox *o, const char *task_id);
/* The newest pending update of a task, or NULL. */
const struct outbox_entry *outbox_last_for_task(const struct outbox *o, const char *task_id);

/* ---- usage_spool.c: cumulative usage readings awaiting the master's acknowledgement ----
 *
 * Counters are cumulative, so only the newest reading of each task matters: the spool keeps
 * one entry per task (coalescing is the bound) and a per-agent sequence number. Each commit
 * that recorded something takes the next number and rewrites <work-dir>/meta/usage.json
 * (fsync'd), so the number is monotonic across restarts and a reading on disk is never lost.
 * A batch is every pending entry under the current number; the master acknowledges the
 * number and the entries not re-recorded since are dropped. A final entry (the task ended)
 * is never replaced by a later non-final reading. Thread-safe (own mutex). */

#define USAGE_SPOOL_MAX_ENTRIES 10000

struct usage_spool {
	pthread_mutex_t mu;
	pthread_cond_t cond;         /* a final reading was recorded (send it now) */
	char *path;
	uint64_t seq;                /* the last number given to a commit */
	json_t *pending;             /* task id -> {"app_id","counters","final","at","useq"} */
	size_t max_entries;
	bool dirty;                  /* recorded since the last commit */
	bool urgent;
	bool stop;                   /* the usage thread ends */
	uint64_t dropped;            /* entries dropped over the bound */
};

/* Loads <work-dir>/meta/usage.json if present. max_entries 0: USAGE_SPOOL_MAX_ENTRIES. */
int usage_spool_open(struct usage_spool *s, const char *work_dir, size_t max_entries);
void usage_spool_close(struct usage_spool *s);
/* Records a task's newest cumulative counters (object of integers, borrowed). A non-final
 * reading does not replace a pending final one. */
int usage_spool_record(struct usage_spool *s, const char *task_id, const char *app_id,
		       json_t *counters, bool final, double wall);
/* Gives the recorded readings the next sequence number and writes the spool to disk. */
int usage_spool_commit(struct usage_spool *s);
/* {"agent_id","seq","reports":[{"task_id","app_id","final","at",counters...}]} for every
 * pending entry (commits first if needed), or NULL when nothing is pending. */
json_t *usage_spool_batch(struct usage_spool *s, const char *agent_id);
/* The master applied batch seq: drops the entries not recorded again since. */
int usage_spool_ack(struct usage_spool *s, uint64_t seq);
/* After a reset spool: number on from above the master's last applied sequence. */
int usage_spool_renumber(struct usage_spool *s, uint64_t above);
size_t usage_spool_count(struct usage_spool *s);
bool usage_spool_has_final(struct usage_spool *s, const char *task_id);

struct agent;

/* ---- usage_link.c: the usage thread's way to the master (usage stream, else POST) ---- */

struct usage_link {
	int fd;                      /* the stream, -1 when none */
	struct frame_buf in;         /* answer bytes not used yet */
	double retry_at;             /* monotonic: no stream before (the master refused one) */
	uint64_t batches;            /* sent on streams */
};
#define USAGE_LINK_INIT { .fd = -1 }

struct http_result;
/* Sends one batch (a POST /internal/v1/usage body) and gets its answer as the POST would
 * give it: 0 (out->status, out->body), or -1 on a transport error (out->error). */
int usage_link_send(struct usage_link *l, const char *master_url, json_t *batch,
		    long timeout_ms, struct http_result *out);
void usage_link_close(struct usage_link *l);

/* ---- usage_reporter.c: the usage thread (reads every --usage-interval, sends) ---- */

/* The counters of a container as the report's JSON fields (new reference). */
json_t *usage_counters_json(const struct container_usage *u);
/* Reads the task's counters and records them as its final reading (durable on return).
 * Called once the container ended, before its accounting is cleaned up. 0 or -errno. */
int agent_usage_final(struct agent *a, const char *task_id);
void *agent_usage_main(void *arg);
/* Wakes the usage thread and makes it end. */
void agent_usage_stop(struct agent *a);

/* ---- checkpoint.c: what survives an agent restart, under <work-dir> ---- */

/* Reads <work-dir>/agent_id or creates it. out gets "agent-<12 hex>". */
int checkpoint_agent_id(const char *work_dir, char out[AGENT_ID_LEN + 1], char *err, size_t errlen);
int checkpoint_task_dir(const char *work_dir, const char *task_id, char *out, size_t outlen);
int checkpoint_run_dir(const char *work_dir, const char *task_id, char *out, size_t outlen);
int checkpoint_sandbox_dir(const char *work_dir, const char *task_id, char *out, size_t outlen);
/* Writes <work-dir>/meta/tasks/<id>/task.json atomically (record borrowed). */
int checkpoint_task_save(const char *work_dir, const char *task_id, json_t *record);
/* Removes <work-dir>/meta/tasks/<id> (with its run dir). Missing is not an error. */
int checkpoint_task_remove(const char *work_dir, const char *task_id);
/* Every checkpointed task: object task_id -> record (new reference, never NULL on 0).
 * Unreadable records are reported in *bad (array of task ids, new reference). */
int checkpoint_tasks_load(const char *work_dir, json_t **records, json_t **bad);

/* ---- task_info.c: TASKINFO validation and the container's command and environment ---- */

struct task_info {
	const char *task_id, *name, *app_id, *user;   /* borrowed from the JSON */
	bool shell;
	const char *command;
	const char **argv;           /* !shell: NULL-terminated, malloc'd array of borrowed strings */
	double cpus, mem, disk;
	uint32_t *ports;             /* malloc'd */
	size_t nports;
	json_t *env;                 /* borrowed object of strings, may be NULL */
	double kill_grace;
	struct hc_def checks[HC_MAX_CHECKS];   /* "health_checks" (health_def.c) */
	size_t nchecks;
};

bool task_id_valid(const char *id);
/* Validates TASKINFO; on error returns -EINVAL with a message naming the field. */
int task_info_parse(json_t *info, struct task_info *out, char *err, size_t errlen);
void task_info_free(struct task_info *ti);
/* KEY=VALUE list: PATH, PORT0..n, PORT, PORTS, HOST, MESOS_TASK_ID, MARATHON_APP_ID,
 * MESOS_SANDBOX, then the TASKINFO env (which wins). NULL-terminated; strv_free(). */
char **task_env_build(const struct task_info *ti, const char *host, const char *sandbox);
void strv_free(char **v);

/* ---- call_parse.c: the shapes of the master's launch and kill calls ---- */

/* Elements one batch call ({"launches":[...]} / {"kills":[...]}) may carry. */
#define AGENT_BATCH_MAX 4096

/* The body must be an object; *list is its array under key (the batch form) or NULL (the
 * single form: the body is the element). -EINVAL with a message for another shape. */
int call_batch_list(json_t *body, const char *key, json_t **list, char *err, size_t errlen);
/* A launch element {"framework_id","task":TASKINFO}; on 0, ti is filled (task_info_free). */
int call_launch_check(json_t *elem, struct task_info *ti, char *err, size_t errlen);
/* A kill element {"task_id","grace_period_seconds"} (grace -1: the task's own). */
int call_kill_check(json_t *elem, const char **task_id, double *grace, char *err, size_t errlen);
/* The task id an element names (borrowed), or NULL. */
json_t *call_task_id(json_t *elem, bool launch);
/* The answer to an element once tried, from what agent_task_accept / agent_task_kill
 * returned: 0 (accepted), or the HTTP status the single form answers with and err. */
int call_launch_answer(int rc, const char *task_id, char *err, size_t errlen);
int call_kill_answer(int rc, const char *task_id, char *err, size_t errlen);

/* ---- calls.c: one launch / kill element carried out (the HTTP API and the stream) ---- */

/* 0 (accepted) or the HTTP status the single form answers with, and a message in err. */
int agent_call_launch(struct agent *a, json_t *elem, char *err, size_t errlen);
int agent_call_kill(struct agent *a, json_t *elem, char *err, size_t errlen);
/* The element as JSON text (an agent stream call's): parsed as a request body is. */
int agent_call_text(struct agent *a, bool launch, const char *text, size_t len, char *err,
		    size_t errlen);

/* ---- stream_frames.c: the master's frames on the agent stream, read (pure) ---- */

/* The master reads frames of at most this many bytes (its POST routes' body limit). */
#define STREAM_OUT_FRAME_MAX (1024 * 1024)
#define STREAM_ITEM_ERROR_MAX 511

/* Carries out one element (its JSON text): 0 or an HTTP status and err (agent_call_text). */
typedef int (*stream_call_fn)(void *ctx, bool launch, const char *json, size_t len, char *err,
			      size_t errlen);
/* A launch / kill call frame (payload p) -> its results frame appended to out: the shape of
 * every element is checked first (a bad element or more than AGENT_BATCH_MAX: status 400
 * and a message, nothing carried out), then fn carries out each in order (one item each;
 * error texts are cut so the frame stays within STREAM_OUT_FRAME_MAX). -EPROTO when the
 * frame's header cannot be read (no answer is possible; err says why), -ENOMEM. */
int stream_call_answer(const char *p, size_t len, stream_call_fn fn, void *ctx,
		       struct frame_buf *out, char *err, size_t errlen);
/* An acks frame -> *status and *answer shaped as the POST's ({"results":[{"acknowledged":
 * true} or {"error"}]} in order, without uuids; {"message"} for another status).
 * -EPROTO (err says why), -ENOMEM. */
int stream_ack_answer(const char *p, size_t len, long *status, json_t **answer, char *err,
		      size_t errlen);

/* ---- stream_link.c: the agent end of the agent stream (pacer-agent/1, lib/agent_frame.h) ---- */

struct stream_link {
	pthread_mutex_t mu;          /* the fields below */
	pthread_mutex_t wmu;         /* one writer on fd at a time; taken before mu */
	pthread_cond_t cond;         /* an ack came, a stream opened or closed, a kick, stop */
	int fd;                      /* -1: no stream (everything goes over HTTP) */
	bool stop, kick;
	uint64_t session;            /* streams opened so far: a waiter sees its stream go */
	uint64_t batch_id;           /* the last 'S' frame's */
	uint64_t want;               /* the batch whose 'A' is awaited (0: none) */
	char *ack;                   /* that 'A' payload once it came (malloc'd) */
	size_t ack_len;
	bool thread_started;
	pthread_t thread;
};

/* ---- resources_detect.c ---- */

/* cpus from the affinity mask, mem = MemTotal - 1 GiB headroom, disk = free space of
 * work_dir, ports [31000-32000]. */
int resources_detect(const char *work_dir, struct resources *out, char *err, size_t errlen);
/* The --resources flag: keys given in text override the detected defaults. */
int resources_from_flag(const char *text, const char *work_dir, struct resources *out,
			char *err, size_t errlen);

/* ---- the agent ---- */

struct task_usage {
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

struct task {
	struct task *next;
	char *id;
	char *framework_id;
	json_t *info;                /* TASKINFO as launched */
	enum task_state state;
	pid_t executor_pid;
	bool launching;              /* inside containerizer_launch */
	bool launched;               /* the container exists (cleanup needed) */
	bool kill_requested;         /* a kill came in; end as TASK_KILLED */
	bool orphan;                 /* found in the containerizer with no checkpoint */
	double kill_grace;
	struct task_usage usage;
	double usage_at;             /* monotonic time of the last usage refresh */
};

struct agent_config {
	const char *master_url;
	const char *work_dir;        /* absolute */
	const char *ip;
	uint16_t port;
	const char *hostname;
	const char *executor_path;
	const char *bpffs;
	double usage_interval;       /* seconds between usage reports (default 1) */
	bool agent_stream;           /* --agent-stream=on: open the agent stream */
};

struct agent {
	struct agent_config cfg;
	char agent_id[AGENT_ID_LEN + 1];
	char address[96];            /* ip:port as advertised */
	struct resources resources;
	json_t *attributes;

	struct containerizer *cz;

	pthread_mutex_t lock;        /* everything below */
	struct task *tasks;          /* in arrival order */
	struct outbox outbox;
	struct usage_spool usage;    /* own mutex */
	struct stream_link stream;  /* own mutexes */
	bool stopping;
	bool registered;
	pthread_cond_t launch_cond;  /* a task waits in TASK_STAGING */
	pthread_cond_t link_cond;    /* an update was queued */
	pthread_cond_t monitor_cond; /* stopping */

	pthread_t launcher_thread, monitor_thread, link_thread, usage_thread, health_thread;
	bool threads_started;
	int lock_fd;                 /* flock on <work-dir>/agent.lock */
	struct http_server *http;
};

/* agent.c: the agent's life. agent_start takes the work dir lock, loads the agent id and
 * the outbox, creates the containerizer, recovers the tasks, starts the API and threads.
 * agent_stop leaves every task running (a restarted agent recovers them). */
/* The agent's mutex and condition variables (monotonic clock) and its stream link's
 * state: what agent_start sets up first (tests that drive parts of an agent use it too). */
int agent_init_sync(struct agent *a);
/* Undoes agent_init_sync (no thread may use them any more). */
void agent_destroy_sync(struct agent *a);
int agent_start(struct agent *a, const struct agent_config *cfg, struct resources *res,
		json_t *attributes, char *err, size_t errlen);
void agent_stop(struct agent *a);

/* tasks.c */
struct task *agent_task_find(struct agent *a, const char *id);
/* Validated launch (lock not held). 0, -EEXIST, -ESHUTDOWN, or -errno from the checkpoint. */
int agent_task_accept(struct agent *a, const char *framework_id, json_t *info);
/* Kill (lock not held). 0, or -ENOENT for an unknown task. grace < 0: the task's own. */
int agent_task_kill(struct agent *a, const char *task_id, double grace);
/* With the lock held: records a state change (checkpoint, outbox, wake master_link). */
int agent_task_update(struct agent *a, struct task *t, enum task_state state,
		      const char *reason, const char *message, const struct container_exit *ex);
/* With the lock held: a TASK_RUNNING update carrying the task's health ("healthy", and
 * "health_checks": one hc_state_json per check, stolen). Does not change t->state. */
int agent_task_health_update(struct agent *a, struct task *t, bool healthy, json_t *checks,
			     const char *message);
/* With the lock held: the terminal update for a container that ended. */
void agent_task_exited(struct agent *a, struct task *t, const struct container_exit *ex);
int agent_task_checkpoint(struct agent *a, struct task *t);
struct task *agent_task_new(struct agent *a, const char *id, const char *framework_id, json_t *info);
void agent_task_free(struct task *t);
/* With the lock held: unlinks and frees t and removes its checkpoint. */
void agent_task_forget(struct agent *a, struct task *t);
/* With the lock held: an update was acknowledged; forgets finished tasks. */
void agent_update_acked(struct agent *a, const char *uuid);
json_t *agent_task_ref(struct task *t);         /* TASKREF (lock held) */
json_t *agent_task_state_json(struct agent *a, struct task *t);
void *agent_launcher_main(void *arg);

/* containerizer calls (agent->lock must not be held) */
int agent_cz_launch(struct agent *a, const struct container_spec *spec, pid_t *pid, char *err, size_t errlen);
int agent_cz_poll(struct agent *a, const char *task_id, struct container_exit *ex);
int agent_cz_kill(struct agent *a, const char *task_id, double grace);
int agent_cz_usage(struct agent *a, const char *task_id, struct container_usage *u);
int agent_cz_cleanup(struct agent *a, const char *task_id);
int agent_cz_exec(struct agent *a, const char *task_id, const struct container_exec *x, pid_t *pid,
		  char *err, size_t errlen);

/* monitor.c */
void *agent_monitor_main(void *arg);

/* recover.c: rebuilds the task table from the checkpoints (before any thread starts). */
int agent_recover(struct agent *a);
/* For tests and fuzzing: the pid in an executor.json document, or 0 (none, or not a pid). */
pid_t executor_pid_from_json(json_t *j);

/* master_link.c */
void *agent_link_main(void *arg);
json_t *agent_task_refs(struct agent *a);       /* lock held */

/* api.c */
int agent_api_start(struct agent *a, char *err, size_t errlen);

/* stream_link.c. init/destroy: the state (always); start: the stream's thread when
 * cfg.agent_stream; stop: closes the stream and joins the thread (before the link thread
 * is joined: it wakes a wait for an ack). */
void stream_link_init(struct stream_link *s);
int stream_link_start(struct agent *a);
void stream_link_stop(struct agent *a);
void stream_link_destroy(struct stream_link *s);
/* The agent (re-)registered: open the stream now (no backoff). */
void stream_link_kick(struct agent *a);
/* One status batch (the text of a POST /internal/v1/status body) as an 'S' frame, and its
 * 'A' answer within timeout_ms, shaped as the POST's: 0 with *status and *answer
 * ({"results":[{"acknowledged":true} or {"error":...}]}, one per update in order, without
 * their uuids; or {"message":...}). -ENOTCONN: no stream, or the body does not fit a frame
 * (POST it); -ECONNRESET, -ETIMEDOUT, ...: sent, but no answer (send it again later). */
int stream_link_status(struct agent *a, const char *body, size_t len, long timeout_ms,
			long *status, json_t **answer);

#endif
