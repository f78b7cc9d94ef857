/* monitor.c - watches running containers. Every 50 ms it polls each launched task through
 * the containerizer (which also enforces the SIGKILL deadline of a kill), turns an ended
 * container into its terminal status update and cleans the container up; about once a
 * second it refreshes each task's network counters for the heartbeat. An ended task's final
 * usage reading goes to the usage spool before anything else happens to it. Orphans (containers
 * found without a checkpoint) are only killed and cleaned, never reported. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

#define POLL_INTERVAL_MS 50
#define USAGE_INTERVAL 1.0

struct watch {
	char *id;
	bool usage_due;
};

/* With the lock held: the ids worth polling now. */
static struct watch *snapshot(struct agent *a, size_t *n)
{
	struct watch *w;
	size_t cap = 0, i = 0;
	double now = now_mono();

	for (struct task *t = a->tasks; t; t = t->next)
		cap++;
	*n = 0;
	if (!cap)
		return NULL;
	w = calloc(cap, sizeof(*w));
	if (!w)
		return NULL;
	for (struct task *t = a->tasks; t; t = t->next) {
		if (!t->launched || t->launching)
			continue;
		w[i].id = strdup(t->id);
		if (!w[i].id)
			break;
		w[i].usage_due = now - t->usage_at >= USAGE_INTERVAL;
		i++;
	}
	*n = i;
	return w;
}

static void store_usage(struct agent *a, const char *id, const struct container_usage *u)
{
	struct task *t = agent_task_find(a, id);

	if (!t)
		return;
	t->usage.rx_bytes = u->rx_bytes;
	t->usage.tx_bytes = u->tx_bytes;
	t->usage.rx_packets = u->rx_packets;
	t->usage.tx_packets = u->tx_packets;
	t->usage_at = now_mono();
}

static void check_one(struct agent *a, struct watch *w)
{
	struct container_exit ex;
	struct container_usage u;
	bool have_usage = false;
	struct task *t;
	int rc;

	memset(&ex, 0, sizeof(ex));
	rc = agent_cz_poll(a, w->id, &ex);
	if (rc < 0)
		log_debug("event=container_poll_failed task_id=%s error=\"%s\"", w->id, strerror(-rc));
	if ((rc == 1 || w->usage_due) && agent_cz_usage(a, w->id, &u) == 0)
		have_usage = true;     /* read the counters before cleanup drops them */
	/* The cgroup is empty: these counters are final. They are in the spool (on disk)
	 * before the terminal update can be acknowledged and the task forgotten. */
	if (rc == 1)
		agent_usage_final(a, w->id);

	pthread_mutex_lock(&a->lock);
	if (have_usage)
		store_usage(a, w->id, &u);
	t = rc == 1 ? agent_task_find(a, w->id) : NULL;
	if (t && t->launched) {
		log_debug("event=container_ended task_id=%s exited=%d exit_code=%d signal=%d oom=%d",
			 t->id, ex.exited, ex.exit_code, ex.signal, ex.oom_killed);
		if (t->orphan)
			agent_task_forget(a, t);
		else
			agent_task_exited(a, t, &ex);
	} else {
		rc = 0;
	}
	pthread_mutex_unlock(&a->lock);
	if (rc == 1)
		agent_cz_cleanup(a, w->id);
}

void *agent_monitor_main(void *arg)
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		struct timespec deadline;
		struct watch *w;
		size_t n;

		w = snapshot(a, &n);
		pthread_mutex_unlock(&a->lock);
		for (size_t i = 0; i < n; i++) {
			check_one(a, &w[i]);
			free(w[i].id);
		}
		free(w);

		deadline = timespec_after(CLOCK_MONOTONIC, POLL_INTERVAL_MS / 1000.0);
		pthread_mutex_lock(&a->lock);
		if (!a->stopping)
			pthread_cond_timedwait(&a->monitor_cond, &a->lock, &deadline);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}
