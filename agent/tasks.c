/* tasks.c - the agent's task table and lifecycle. A launch is checkpointed before it is
 * accepted (the master already counts it as TASK_STAGING); the launcher thread then sends
 * TASK_STARTING, starts the container and sends TASK_RUNNING (or TASK_FAILED with
 * REASON_CONTAINER_LAUNCH_FAILED). A kill sends TASK_KILLING and lets the containerizer
 * escalate to SIGKILL after the grace period; the monitor (monitor.c) reports how the
 * container ended. Every state change goes through agent_task_update: outbox first, then
 * the task checkpoint, so a crash between the two is resolved by the outbox on recovery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

/* ---- containerizer calls (the containerizer has its own lock; agent->lock is not held) ---- */

int agent_cz_launch(struct agent *a, const struct container_spec *spec, pid_t *pid, char *err, size_t errlen)
{
	int rc;

	if (!a->cz) {
		snprintf(err, errlen, "no containerizer");
		return -ENODEV;
	}
	rc = containerizer_launch(a->cz, spec, pid, err, errlen);
	return rc;
}

int agent_cz_poll(struct agent *a, const char *task_id, struct container_exit *ex)
{
	int rc;

	if (!a->cz)
		return -ENODEV;
	rc = containerizer_poll(a->cz, task_id, ex);
	return rc;
}

int agent_cz_kill(struct agent *a, const char *task_id, double grace)
{
	int rc;

	if (!a->cz)
		return -ENODEV;
	rc = containerizer_kill(a->cz, task_id, grace);
	return rc;
}

int agent_cz_usage(struct agent *a, const char *task_id, struct container_usage *u)
{
	int rc;

	if (!a->cz)
		return -ENODEV;
	rc = containerizer_usage(a->cz, task_id, u);
	return rc;
}

int agent_cz_exec(struct agent *a, const char *task_id, const struct container_exec *x, pid_t *pid,
		  char *err, size_t errlen)
{
	if (!a->cz) {
		snprintf(err, errlen, "no containerizer");
		return -ENODEV;
	}
	return containerizer_exec(a->cz, task_id, x, pid, err, errlen);
}

int agent_cz_cleanup(struct agent *a, const char *task_id)
{
	int rc;

	if (!a->cz)
		return -ENODEV;
	/* Cleanup releases the task's accounting: its final reading must be spooled first
	 * (the monitor did it for a container it saw end; recovery and failed launches not). */
	if (!usage_spool_has_final(&a->usage, task_id))
		agent_usage_final(a, task_id);
	rc = containerizer_cleanup(a->cz, task_id);
	if (rc < 0)
		log_warn("event=container_cleanup_failed task_id=%s error=\"%s\"", task_id, strerror(-rc));
	return rc;
}

/* ---- the table ---- */

struct task *agent_task_find(struct agent *a, const char *id)
{
	for (struct task *t = a->tasks; t; t = t->next)
		if (strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

struct task *agent_task_new(struct agent *a, const char *id, const char *framework_id, json_t *info)
{
	struct task *t = calloc(1, sizeof(*t)), **tail;

	if (!t)
		return NULL;
	t->id = strdup(id);
	t->framework_id = strdup(framework_id ? framework_id : "");
	if (!t->id || !t->framework_id) {
		agent_task_free(t);
		return NULL;
	}
	t->info = json_incref(info);
	t->state = TASK_STAGING;
	t->kill_grace = DEFAULT_KILL_GRACE;
	for (tail = &a->tasks; *tail; tail = &(*tail)->next)
		;
	*tail = t;
	return t;
}

void agent_task_free(struct task *t)
{
	if (!t)
		return;
	json_decref(t->info);
	free(t->framework_id);
	free(t->id);
	free(t);
}

static void task_unlink(struct agent *a, struct task *t)
{
	for (struct task **p = &a->tasks; *p; p = &(*p)->next) {
		if (*p != t)
			continue;
		*p = t->next;
		return;
	}
}

void agent_task_forget(struct agent *a, struct task *t)
{
	task_unlink(a, t);
	if (!t->orphan) {
		int rc = checkpoint_task_remove(a->cfg.work_dir, t->id);

		if (rc)
			log_warn("event=checkpoint_remove_failed task_id=%s error=\"%s\"", t->id, strerror(-rc));
		log_info("event=task_forgotten task_id=%s state=%s", t->id, task_state_name(t->state));
	}
	agent_task_free(t);
}

int agent_task_checkpoint(struct agent *a, struct task *t)
{
	json_t *rec = json_pack("{s:s, s:O, s:s, s:i, s:b, s:b, s:f}",
				"framework_id", t->framework_id, "task", t->info,
				"state", task_state_name(t->state), "executor_pid", (int)t->executor_pid,
				"launched", t->launched, "kill_requested", t->kill_requested,
				"kill_grace", t->kill_grace);
	int rc;

	if (!rec)
		return -ENOMEM;
	rc = checkpoint_task_save(a->cfg.work_dir, t->id, rec);
	json_decref(rec);
	if (rc)
		log_error("event=checkpoint_failed task_id=%s error=\"%s\"", t->id, strerror(-rc));
	return rc;
}

static json_t *status_json(struct task *t, enum task_state state, const char *reason,
			   const char *message, const struct container_exit *ex)
{
	char uuid[37];
	json_t *st;

	uuid_v4(uuid);
	st = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f}", "uuid", uuid, "task_id", t->id,
		       "framework_id", t->framework_id, "state", task_state_name(state),
		       "message", message ? message : "", "source", "SOURCE_EXECUTOR",
		       "timestamp", now_wall());
	if (!st)
		return NULL;
	if (reason)
		json_object_set_new(st, "reason", json_string(reason));
	if (ex && ex->exited)
		json_object_set_new(st, "exit_code", json_integer(ex->exit_code));
	if (ex && ex->signal)
		json_object_set_new(st, "signal", json_integer(ex->signal));
	return st;
}

int agent_task_update(struct agent *a, struct task *t, enum task_state state,
		      const char *reason, const char *message, const struct container_exit *ex)
{
	json_t *st = status_json(t, state, reason, message, ex);
	int rc;

	if (!st)
		return -ENOMEM;
	rc = outbox_add(&a->outbox, st);
	json_decref(st);
	if (rc)
		log_error("event=status_checkpoint_failed task_id=%s state=%s error=\"%s\"", t->id,
			  task_state_name(state), strerror(-rc));
	t->state = state;
	/* STARTING and RUNNING are left out of task.json to keep a launch at one fsync per
	 * step: recovery learns them from the outbox, the run dir and executor.json. */
	if (state != TASK_STARTING && state != TASK_RUNNING)
		agent_task_checkpoint(a, t);
	log_info("event=task_status task_id=%s state=%s%s%s", t->id, task_state_name(state),
		 reason ? " reason=" : "", reason ? reason : "");
	pthread_cond_signal(&a->link_cond);
	return rc;
}

int agent_task_health_update(struct agent *a, struct task *t, bool healthy, json_t *checks,
			     const char *message)
{
	json_t *st = status_json(t, TASK_RUNNING, NULL, message, NULL);
	int rc;

	if (!st) {
		json_decref(checks);
		return -ENOMEM;
	}
	json_object_set_new(st, "healthy", json_boolean(healthy));
	json_object_set_new(st, "health_checks", checks ? checks : json_array());
	rc = outbox_add(&a->outbox, st);
	json_decref(st);
	if (rc)
		log_error("event=status_checkpoint_failed task_id=%s state=TASK_RUNNING error=\"%s\"",
			  t->id, strerror(-rc));
	log_info("event=task_health task_id=%s healthy=%s", t->id, healthy ? "true" : "false");
	pthread_cond_signal(&a->link_cond);
	return rc;
}

void agent_task_exited(struct agent *a, struct task *t, const struct container_exit *ex)
{
	char msg[300];

	t->launched = false;
	if (t->kill_requested) {
		agent_task_update(a, t, TASK_KILLED, NULL, ex->message[0] ? ex->message : "Task killed", ex);
	} else if (ex->oom_killed) {
		agent_task_update(a, t, TASK_FAILED, "REASON_CONTAINER_LIMITATION_MEMORY",
				  "memory limit exceeded", ex);
	} else if (ex->exited && ex->exit_code == 0) {
		agent_task_update(a, t, TASK_FINISHED, NULL,
				  ex->message[0] ? ex->message : "Command exited with status 0", ex);
	} else {
		if (ex->message[0])
			snprintf(msg, sizeof(msg), "%s", ex->message);
		else if (ex->exited)
			snprintf(msg, sizeof(msg), "Command exited with status %d", ex->exit_code);
		else if (ex->signal)
			snprintf(msg, sizeof(msg), "Command terminated with signal %d", ex->signal);
		else
			snprintf(msg, sizeof(msg), "Executor ended without an exit status");
		agent_task_update(a, t, TASK_FAILED, "REASON_COMMAND_EXECUTOR_FAILED", msg, ex);
	}
}

void agent_update_acked(struct agent *a, const char *uuid)
{
	struct outbox_entry *e = outbox_find(&a->outbox, uuid);
	struct task *t;

	if (!e)
		return;     /* a repeated acknowledgement */
	t = agent_task_find(a, e->task_id);
	/* Forget the task first: a crash in between leaves an update file (resent, and
	 * acknowledged again by uuid) rather than a task without its last update. */
	if (t && task_state_is_terminal(t->state) && task_state_is_terminal(e->state) &&
	    outbox_count_task(&a->outbox, e->task_id) == 1 && !t->launching)
		agent_task_forget(a, t);
	outbox_ack(&a->outbox, uuid);
}

/* ---- accept, kill ---- */

int agent_task_accept(struct agent *a, const char *framework_id, json_t *info)
{
	const char *id = json_string_value(json_object_get(info, "task_id"));
	struct task *t;
	double grace = json_number_value(json_object_get(info, "kill_grace_period_seconds"));
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	if (a->stopping) {
		rc = -ESHUTDOWN;
		goto out;
	}
	if (agent_task_find(a, id)) {
		rc = -EEXIST;
		goto out;
	}
	t = agent_task_new(a, id, framework_id, info);
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	if (json_object_get(info, "kill_grace_period_seconds"))
		t->kill_grace = grace;
	rc = agent_task_checkpoint(a, t);
	if (rc) {
		task_unlink(a, t);
		agent_task_free(t);
		goto out;
	}
	log_info("event=task_accepted task_id=%s framework_id=%s", id, framework_id ? framework_id : "");
	pthread_cond_signal(&a->launch_cond);
out:
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int agent_task_kill(struct agent *a, const char *task_id, double grace)
{
	struct task *t;
	char *id = NULL;
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	t = agent_task_find(a, task_id);
	if (!t || t->orphan) {
		rc = -ENOENT;
		goto out;
	}
	if (task_state_is_terminal(t->state))
		goto out;
	if (grace >= 0)
		t->kill_grace = grace;
	t->kill_requested = true;
	if (t->state == TASK_STAGING && !t->launching) {
		agent_task_update(a, t, TASK_KILLED, "REASON_TASK_KILLED_DURING_LAUNCH",
				  "Task killed before it was launched", NULL);
		goto out;
	}
	if (t->state != TASK_KILLING)
		agent_task_update(a, t, TASK_KILLING, NULL, "Killing the task", NULL);
	else
		agent_task_checkpoint(a, t);
	/* Still launching: the launcher kills it once the container exists. */
	if (t->launched && !t->launching)
		id = strdup(t->id);
	grace = t->kill_grace;
out:
	pthread_mutex_unlock(&a->lock);
	if (id) {
		int krc = agent_cz_kill(a, id, grace);

		if (krc < 0)
			log_warn("event=task_kill_failed task_id=%s error=\"%s\"", id, strerror(-krc));
		free(id);
	}
	return rc;
}

/* ---- the launcher thread ---- */

struct launch_job {
	char id[TASK_ID_MAX + 1];
	json_t *info;
	char sandbox[4096], run_dir[4096];
};

static struct task *next_staged(struct agent *a)
{
	for (struct task *t = a->tasks; t; t = t->next)
		if (t->state == TASK_STAGING && !t->launching && !t->orphan)
			return t;
	return NULL;
}

static int launch_container(struct agent *a, struct launch_job *job, pid_t *pid, char *err, size_t errlen)
{
	struct task_info ti;
	struct container_spec spec = { 0 };
	char **envp = NULL;
	int rc;

	rc = task_info_parse(job->info, &ti, err, errlen);
	if (rc)
		return rc;
	rc = mkdir_p(job->sandbox, 0755);
	if (!rc)
		rc = mkdir_p(job->run_dir, 0700);
	if (rc) {
		snprintf(err, errlen, "cannot create the sandbox %.300s: %s", job->sandbox, strerror(-rc));
		goto out;
	}
	envp = task_env_build(&ti, a->cfg.ip, job->sandbox);
	if (!envp) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory building the environment");
		goto out;
	}
	spec.task_id = job->id;
	spec.sandbox_dir = job->sandbox;
	spec.run_dir = job->run_dir;
	spec.shell = ti.shell;
	spec.command = ti.command;
	spec.argv = ti.shell ? NULL : ti.argv;
	spec.envp = (const char *const *)envp;
	spec.cpus = ti.cpus;
	spec.mem_bytes = (uint64_t)(ti.mem * 1024 * 1024);
	spec.user = ti.user;
	spec.hostname = a->cfg.hostname;
	rc = agent_cz_launch(a, &spec, pid, err, errlen);
	if (rc > 0)
		rc = -EIO;
out:
	strv_free(envp);
	task_info_free(&ti);
	return rc;
}

/* With the lock held: picks the next staged task and announces TASK_STARTING. */
static bool take_job(struct agent *a, struct launch_job *job)
{
	struct task *t = next_staged(a);

	if (!t)
		return false;
	t->launching = true;
	snprintf(job->id, sizeof(job->id), "%s", t->id);
	job->info = json_incref(t->info);
	checkpoint_sandbox_dir(a->cfg.work_dir, t->id, job->sandbox, sizeof(job->sandbox));
	checkpoint_run_dir(a->cfg.work_dir, t->id, job->run_dir, sizeof(job->run_dir));
	agent_task_update(a, t, TASK_STARTING, NULL, "Launching the container", NULL);
	return true;
}

/* With the lock held: how the launch went. Returns true if the task must be killed now. */
static bool finish_job(struct agent *a, struct launch_job *job, int rc, pid_t pid, const char *err)
{
	struct task *t = agent_task_find(a, job->id);

	if (!t)
		return false;
	t->launching = false;
	if (rc) {
		log_warn("event=task_launch_failed task_id=%s error=\"%s\"", t->id, err);
		if (t->kill_requested)
			agent_task_update(a, t, TASK_KILLED, "REASON_TASK_KILLED_DURING_LAUNCH", err, NULL);
		else
			agent_task_update(a, t, TASK_FAILED, "REASON_CONTAINER_LAUNCH_FAILED", err, NULL);
		return false;
	}
	t->executor_pid = pid;
	t->launched = true;
	if (t->kill_requested) {
		agent_task_checkpoint(a, t);
		return true;
	}
	agent_task_update(a, t, TASK_RUNNING, NULL, "Container running", NULL);
	return false;
}

void *agent_launcher_main(void *arg)
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		struct launch_job job;
		char err[512] = "";
		pid_t pid = 0;
		double grace;
		bool kill_now;
		int rc;

		if (!take_job(a, &job)) {
			pthread_cond_wait(&a->launch_cond, &a->lock);
			continue;
		}
		pthread_mutex_unlock(&a->lock);

		rc = launch_container(a, &job, &pid, err, sizeof(err));
		if (rc)
			agent_cz_cleanup(a, job.id);    /* whatever part of it was set up */

		pthread_mutex_lock(&a->lock);
		kill_now = finish_job(a, &job, rc, pid, err);
		grace = agent_task_find(a, job.id) ? agent_task_find(a, job.id)->kill_grace : 0;
		json_decref(job.info);
		if (kill_now) {
			pthread_mutex_unlock(&a->lock);
			agent_cz_kill(a, job.id, grace);
			pthread_mutex_lock(&a->lock);
		}
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* ---- JSON views ---- */

static json_t *stats_json(const struct task_usage *u)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "rx_bytes", (json_int_t)u->rx_bytes,
			 "tx_bytes", (json_int_t)u->tx_bytes, "rx_packets", (json_int_t)u->rx_packets,
			 "tx_packets", (json_int_t)u->tx_packets);
}

static json_t *task_resources(struct task *t)
{
	json_t *r = json_object_get(t->info, "resources");

	return r ? json_incref(r) : json_object();
}

json_t *agent_task_ref(struct task *t)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "task_id", t->id, "framework_id", t->framework_id,
			 "state", task_state_name(t->state), "resources", task_resources(t),
			 "stats", stats_json(&t->usage));
}

static void set_or(json_t *obj, const char *key, json_t *value, json_t *fallback)
{
	if (value) {
		json_decref(fallback);
		json_object_set(obj, key, value);
	} else {
		json_object_set_new(obj, key, fallback);
	}
}

json_t *agent_task_state_json(struct agent *a, struct task *t)
{
	json_t *j = agent_task_ref(t);
	char sandbox[4096];

	if (!j)
		return NULL;
	set_or(j, "name", json_object_get(t->info, "name"), json_null());
	set_or(j, "app_id", json_object_get(t->info, "app_id"), json_null());
	set_or(j, "ports", json_object_get(t->info, "ports"), json_array());
	json_object_set_new(j, "executor_pid", json_integer(t->executor_pid));
	if (checkpoint_sandbox_dir(a->cfg.work_dir, t->id, sandbox, sizeof(sandbox)) == 0)
		json_object_set_new(j, "sandbox", json_string(sandbox));
	return j;
}
