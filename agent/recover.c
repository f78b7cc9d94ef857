/* recover.c - agent start-up after a restart (or a crash, or a reboot). Rebuilds the task
 * table from <work-dir>/meta/tasks and the pending updates, then asks the containerizer
 * about each task: a container still running is adopted (same task id, TASK_RUNNING); one
 * that ended while the agent was away gets its real exit status reported; a task whose
 * launch never began is launched again. Containers the agent has no checkpoint for are
 * orphans: they are killed and cleaned up. Runs before any agent thread starts. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

/* The state the task reached: its newest pending update can be ahead of task.json
 * (the update is written first). */
static void effective_state(struct agent *a, struct task *t)
{
	const struct outbox_entry *last = outbox_last_for_task(&a->outbox, t->id);

	if (!last || task_state_is_terminal(t->state))
		return;
	if (task_state_is_terminal(last->state) || last->state > t->state)
		t->state = last->state;
	if (last->state == TASK_KILLING)
		t->kill_requested = true;
}

/* A pid from the checkpoint: 0 unless a positive integer that fits pid_t (a bare cast
 * would turn 4294967297 into 1, init). */
static pid_t pid_value(json_t *v)
{
	json_int_t n = json_integer_value(v);

	return n > 0 && n <= INT_MAX ? (pid_t)n : 0;
}

static struct task *task_from_record(struct agent *a, const char *id, json_t *rec)
{
	const char *fw = json_string_value(json_object_get(rec, "framework_id"));
	int state = task_state_parse(json_string_value(json_object_get(rec, "state")) ?: "");
	struct task *t = agent_task_new(a, id, fw, json_object_get(rec, "task"));

	if (!t)
		return NULL;
	t->state = state < 0 ? TASK_STAGING : (enum task_state)state;
	t->executor_pid = pid_value(json_object_get(rec, "executor_pid"));
	t->launched = json_is_true(json_object_get(rec, "launched"));
	t->kill_requested = json_is_true(json_object_get(rec, "kill_requested"));
	if (json_is_number(json_object_get(rec, "kill_grace")))
		t->kill_grace = json_number_value(json_object_get(rec, "kill_grace"));
	effective_state(a, t);
	return t;
}

/* The executor's pid in an executor.json document, or 0. Declared in agent.h for tests
 * and fuzzing. */
pid_t executor_pid_from_json(json_t *j)
{
	return pid_value(json_object_get(j, "pid"));
}

/* A crash during containerizer_launch leaves no pid in task.json; the executor records its
 * own in <run_dir>/executor.json (the containerizer checks it is really ours). */
static pid_t executor_pid_from_run_dir(const char *run_dir)
{
	char path[4096];
	json_t *j;
	pid_t pid;

	if (path_join(path, sizeof(path), "%s/executor.json", run_dir))
		return 0;
	j = json_load_file(path, 0, NULL);
	pid = executor_pid_from_json(j);
	json_decref(j);
	return pid;
}

static void recover_ended(struct agent *a, struct task *t, struct container_exit *ex)
{
	if (t->state <= TASK_STARTING && !ex->exited && !ex->signal && !ex->oom_killed)
		agent_task_update(a, t, TASK_FAILED, "REASON_AGENT_RESTARTED",
				  "The agent restarted while the task was being launched", ex);
	else
		agent_task_exited(a, t, ex);
	agent_cz_cleanup(a, t->id);
}

static void recover_task(struct agent *a, const char *id, json_t *rec)
{
	struct task *t = task_from_record(a, id, rec);
	struct container_exit ex;
	char run_dir[4096];
	int rc;

	if (!t) {
		log_error("event=task_recover_failed task_id=%s error=\"out of memory\"", id);
		return;
	}
	if (task_state_is_terminal(t->state)) {
		/* Reported already; only the acknowledgement may be missing. */
		agent_cz_cleanup(a, t->id);
		if (outbox_count_task(&a->outbox, t->id) == 0)
			agent_task_forget(a, t);
		return;
	}
	rc = checkpoint_run_dir(a->cfg.work_dir, id, run_dir, sizeof(run_dir));
	if (!rc && t->state == TASK_STAGING && access(run_dir, F_OK) != 0) {
		log_info("event=task_recovered task_id=%s action=relaunch", id);
		return;     /* the launch never began: the launcher takes it again */
	}
	memset(&ex, 0, sizeof(ex));
	if (!rc) {
		if (t->executor_pid <= 0)
			t->executor_pid = executor_pid_from_run_dir(run_dir);
		rc = a->cz ? containerizer_recover(a->cz, id, run_dir, t->executor_pid, &ex) : -ENODEV;
	}
	log_info("event=task_recovered task_id=%s state=%s result=%d", id, task_state_name(t->state), rc);
	if (rc < 0) {
		char msg[300];

		snprintf(msg, sizeof(msg), "The agent restarted and could not recover the container: %s",
			 strerror(-rc));
		agent_task_update(a, t, TASK_FAILED, "REASON_AGENT_RESTARTED", msg, NULL);
		agent_cz_cleanup(a, t->id);
		return;
	}
	if (rc == 0) {
		recover_ended(a, t, &ex);
		return;
	}
	t->launched = true;
	if (t->kill_requested) {
		if (t->state != TASK_KILLING)
			agent_task_update(a, t, TASK_KILLING, NULL, "Killing the task", NULL);
		agent_cz_kill(a, t->id, t->kill_grace);
	} else if (t->state != TASK_RUNNING) {
		agent_task_update(a, t, TASK_RUNNING, NULL, "Container running", NULL);
	} else {
		agent_task_checkpoint(a, t);
	}
}

/* Containers under our agent id that no checkpoint explains: recovering one without an
 * executor makes the containerizer kill what is left in its cgroup; then it is cleaned up.
 * One that still has a live executor is killed and left to the monitor. */
static void reap_orphans(struct agent *a)
{
	json_t *ids = a->cz ? containerizer_list(a->cz) : NULL, *v;
	size_t i;

	json_array_foreach(ids, i, v) {
		const char *id = json_string_value(v);
		struct container_exit ex;
		char run_dir[4096];
		struct task *t;
		int rc;

		if (!id || agent_task_find(a, id) || checkpoint_run_dir(a->cfg.work_dir, id, run_dir, sizeof(run_dir)))
			continue;
		log_warn("event=orphan_container task_id=%s action=kill", id);
		rc = containerizer_recover(a->cz, id, run_dir, executor_pid_from_run_dir(run_dir), &ex);
		if (rc != 1) {
			agent_cz_cleanup(a, id);
			continue;
		}
		t = agent_task_new(a, id, "", NULL);
		if (!t)
			break;
		t->orphan = true;
		t->launched = true;
		t->kill_requested = true;
		t->state = TASK_KILLING;
		agent_cz_kill(a, id, 0);
	}
	json_decref(ids);
}

int agent_recover(struct agent *a)
{
	json_t *records = NULL, *bad = NULL, *rec, *v;
	const char *id;
	size_t i;
	int rc;

	rc = checkpoint_tasks_load(a->cfg.work_dir, &records, &bad);
	if (rc)
		return rc;
	json_array_foreach(bad, i, v) {
		log_warn("event=checkpoint_dropped task_id=%s", json_string_value(v));
		checkpoint_task_remove(a->cfg.work_dir, json_string_value(v));
	}
	json_object_foreach(records, id, rec)
		recover_task(a, id, rec);
	reap_orphans(a);
	log_info("event=recovery_done checkpoints=%zu pending_updates=%zu", json_object_size(records),
		 a->outbox.count);
	json_decref(records);
	json_decref(bad);
	return 0;
}
