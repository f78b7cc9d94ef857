/* usage_reporter.c - the usage thread: every --usage-interval it reads each running task's
 * cumulative counters (BPF accounting and memory), records them in the spool (usage_spool.c,
 * on disk, numbered) and sends the pending batch to the master (usage_link.c: a frame on
 * the usage stream, else POST /internal/v1/usage).
 * The master acknowledges the batch's sequence number; until it does the readings stay in
 * the spool and go out again (after a master outage, after an agent restart). A task that
 * ended gets its final reading recorded before its accounting is cleaned up
 * (agent_usage_final) and sent at once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "lib/http_lite.h"
#include "lib/log.h"
#include "lib/util.h"

#define USAGE_SEND_TIMEOUT_MS 5000

json_t *usage_counters_json(const struct container_usage *u)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			 "rx_bytes", (json_int_t)u->rx_bytes, "tx_bytes", (json_int_t)u->tx_bytes,
			 "rx_packets", (json_int_t)u->rx_packets, "tx_packets", (json_int_t)u->tx_packets,
			 "tcp_connects", (json_int_t)u->tcp_connects,
			 "tcp_accepts", (json_int_t)u->tcp_accepts,
			 "udp_rx_datagrams", (json_int_t)u->udp_rx_datagrams,
			 "udp_tx_datagrams", (json_int_t)u->udp_tx_datagrams,
			 "policy_denials", (json_int_t)u->policy_denials,
			 "cpu_ns", (json_int_t)u->acct_cpu_ns,
			 "vfs_read_bytes", (json_int_t)u->vfs_read_bytes,
			 "vfs_write_bytes", (json_int_t)u->vfs_write_bytes,
			 "mem_bytes", (json_int_t)u->mem_bytes,
			 "mem_peak_bytes", (json_int_t)u->mem_peak_bytes,
			 "oom_kills", (json_int_t)u->oom_kills);
}

/* With a->lock held: the task's app id (copied), NULL if none. */
static char *task_app_id(struct task *t)
{
	const char *app = json_string_value(json_object_get(t->info, "app_id"));

	return app ? strdup(app) : NULL;
}

static int record(struct agent *a, const char *task_id, const char *app_id, bool final)
{
	struct container_usage u;
	json_t *c;
	int rc = agent_cz_usage(a, task_id, &u);

	if (rc < 0)
		return rc;
	c = usage_counters_json(&u);
	if (!c)
		return -ENOMEM;
	rc = usage_spool_record(&a->usage, task_id, app_id, c, final, now_wall());
	json_decref(c);
	return rc;
}

int agent_usage_final(struct agent *a, const char *task_id)
{
	struct task *t;
	char *app = NULL;
	bool known;
	int rc;

	pthread_mutex_lock(&a->lock);
	t = agent_task_find(a, task_id);
	known = t && !t->orphan;
	if (known)
		app = task_app_id(t);
	pthread_mutex_unlock(&a->lock);
	if (!known)
		return -ENOENT;        /* orphans are never reported */
	rc = record(a, task_id, app, true);
	if (!rc)
		rc = usage_spool_commit(&a->usage);
	if (rc == -ENOENT)
		log_debug("event=usage_final_none task_id=%s", task_id);     /* no cgroup left */
	else if (rc)
		log_warn("event=usage_final_failed task_id=%s error=\"%s\"", task_id, strerror(-rc));
	else
		log_debug("event=usage_final task_id=%s", task_id);
	free(app);
	return rc;
}

struct sample { char *id, *app; };

/* Reads every running task's counters into the spool. */
static void sample_all(struct agent *a)
{
	struct sample *v = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&a->lock);
	for (struct task *t = a->tasks; t; t = t->next)
		cap++;
	if (cap)
		v = calloc(cap, sizeof(*v));
	for (struct task *t = a->tasks; v && t; t = t->next) {
		if (!t->launched || t->launching || t->orphan || task_state_is_terminal(t->state))
			continue;
		v[n].id = strdup(t->id);
		v[n].app = task_app_id(t);
		if (v[n].id)
			n++;
	}
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < n; i++) {
		int rc = record(a, v[i].id, v[i].app, false);

		if (rc && rc != -ENOENT)
			log_debug("event=usage_read_failed task_id=%s error=\"%s\"", v[i].id, strerror(-rc));
		free(v[i].id);
		free(v[i].app);
	}
	free(v);
	usage_spool_commit(&a->usage);
}

/* Sends the pending batch; true if the master acknowledged it (or nothing was pending). */
static bool send_batch(struct agent *a, struct usage_link *link, bool *down_logged)
{
	json_t *batch = usage_spool_batch(&a->usage, a->agent_id), *answer;
	struct http_result r;
	json_int_t seq, acked, last;
	bool ok = false;

	if (!batch)
		return true;
	seq = json_integer_value(json_object_get(batch, "seq"));
	usage_link_send(link, a->cfg.master_url, batch, USAGE_SEND_TIMEOUT_MS, &r);
	json_decref(batch);
	if (r.status == 0) {
		if (!*down_logged)
			log_warn("event=usage_master_unreachable url=%s error=\"%s\"", a->cfg.master_url,
				 r.error);
		*down_logged = true;
	} else if (r.status != 200) {
		log_warn("event=usage_rejected status=%ld body=\"%.200s\"", r.status, r.body ?: "");
	} else {
		*down_logged = false;
		answer = http_result_json(&r);
		acked = json_integer_value(json_object_get(answer, "acknowledged_seq"));
		last = json_integer_value(json_object_get(answer, "last_applied_seq"));
		json_decref(answer);
		if (last > seq) {
			/* The master has seen higher numbers from us: our spool was reset. This batch
			 * was not applied; number on from the master's and send it again. */
			log_warn("event=usage_renumbered seq=%lld master_last=%lld", (long long)seq,
				 (long long)last);
			usage_spool_renumber(&a->usage, (uint64_t)last);
		} else if (acked >= seq && acked > 0) {
			usage_spool_ack(&a->usage, (uint64_t)seq);
			ok = true;
		} else {
			log_warn("event=usage_bad_ack seq=%lld acknowledged=%lld", (long long)seq,
				 (long long)acked);
		}
	}
	http_result_free(&r);
	return ok;
}

static void deadline_after(struct timespec *ts, double seconds)
{
	*ts = timespec_after(CLOCK_REALTIME, seconds);
}

void *agent_usage_main(void *arg)
{
	struct agent *a = arg;
	struct usage_spool *s = &a->usage;
	double interval = a->cfg.usage_interval > 0 ? a->cfg.usage_interval : 1.0;
	double next = now_mono();
	struct usage_link link = USAGE_LINK_INIT;
	bool down_logged = false;

	for (;;) {
		struct timespec ts;
		double now = now_mono(), wait;

		if (now >= next) {
			sample_all(a);
			next += interval;
			if (next < now)
				next = now + interval;     /* we fell behind: no burst */
		}
		send_batch(a, &link, &down_logged);
		pthread_mutex_lock(&s->mu);
		wait = next - now_mono();
		/* Retry an unacknowledged batch at the interval; a final reading goes at once. */
		if (!s->stop && !s->urgent && wait > 0) {
			deadline_after(&ts, wait);
			pthread_cond_timedwait(&s->cond, &s->mu, &ts);
		}
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		pthread_mutex_unlock(&s->mu);
	}
	usage_link_close(&link);
	http_lite_thread_cleanup();
	return NULL;
}

void agent_usage_stop(struct agent *a)
{
	pthread_mutex_lock(&a->usage.mu);
	a->usage.stop = true;
	pthread_cond_broadcast(&a->usage.cond);
	pthread_mutex_unlock(&a->usage.mu);
}
