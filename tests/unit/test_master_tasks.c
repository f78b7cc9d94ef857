/* test_master_tasks.c - task records in the master core: master_accept validation, status
 * updates (dedup by uuid, persisted), reconciliation on register/heartbeat (kill unknown,
 * LOST after 30 s, unreachable and back), kills, master restart, agent_link against a
 * real HTTP server standing in for the agent (batched launches, one refused; a launch still
 * on its way is not taken for lost), the batched store writer, the task indexes (per app,
 * per agent, live counts) and status batches. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "master/heartbeat_wire.h"
#include "master/task_query.h"
#include "tests/unit/master_fixture.h"

static json_t *g_cmd;

/* The stored record of a task, read from the task log file in the work dir (records are
 * keyed by creation order, not by id): 0 and *out, or -ENOENT. */
struct find_stored {
	const char *task_id;
	json_t *found;
};

static int match_stored(uint64_t key, const char *text, size_t len, const char *update,
			size_t update_len, void *arg)
{
	struct find_stored *fs = arg;
	json_t *value = json_loadb(text, len, 0, NULL);
	json_t *changes = update ? json_loadb(update, update_len, 0, NULL) : json_object();

	(void)key;
	assert_non_null(value);
	assert_non_null(changes);
	assert_int_equal(json_object_update(value, changes), 0);
	json_decref(changes);
	if (!fs->found && strcmp(json_string_value(json_object_get(value, "task_id")) ?: "",
				 fs->task_id) == 0)
		fs->found = json_incref(value);
	json_decref(value);
	return 0;
}

static int stored_task(struct fx *f, const char *task_id, json_t **out)
{
	struct find_stored fs = { .task_id = task_id };
	char path[128];
	size_t len;
	char *data;
	int rc;

	snprintf(path, sizeof(path), "%s/tasks.log", f->dir);
	data = read_file(path, &len);
	assert_non_null(data);
	task_log_replay_buf(data, len, match_stored, &fs, &rc);
	assert_int_equal(rc, 0);
	free(data);
	*out = fs.found;
	return fs.found ? 0 : -ENOENT;
}


/* Launches say their ids are fresh (task_launch.fresh_id) while this is set. */
static bool g_fresh_ids;

static int launch(struct fx *f, struct rec_fw *r, const char *offer_id, const char *task_id,
		  double cpus, double mem, uint32_t port, char *err, size_t errlen)
{
	struct task_launch l = { .resources.cpus = cpus, .resources.mem = mem,
				 .fresh_id = g_fresh_ids };
	const char *ids[1] = { offer_id };
	int rc;

	snprintf(l.task_id, sizeof(l.task_id), "%s", task_id);
	snprintf(l.app_id, sizeof(l.app_id), "/web");
	l.command = g_cmd;
	l.env = json_pack("{s:s}", "K", "V");
	l.extra = json_pack("{s:s}", "version", "v1");
	if (port) {
		l.ports[0] = port;
		l.port_count = 1;
	}
	l.kill_grace_period_seconds = 3;
	master_lock(f->m);
	rc = master_accept(f->m, &r->fw, ids, 1, &l, 1, 0, err, errlen);
	master_unlock(f->m);
	json_decref(l.env);
	json_decref(l.extra);
	return rc;
}

static int status(struct fx *f, const char *agent, const char *task, const char *state,
		  const char *uuid, bool *dup)
{
	json_t *u = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f}", "uuid", uuid, "task_id", task,
			      "state", state, "message", "", "reason", "", "timestamp", fx_wall);
	char err[256];
	int rc;

	master_lock(f->m);
	rc = fx_apply_status(f->m, agent, u, dup, err, sizeof(err));
	master_unlock(f->m);
	json_decref(u);
	return rc;
}

static json_t *heartbeat(struct fx *f, const char *agent, json_t *tasks, int *rc)
{
	json_t *body = json_pack("{s:s,s:o}", "agent_id", agent, "tasks", tasks), *reply = NULL;
	char *text = json_dumps(body, JSON_COMPACT), err[256];
	struct heartbeat hb;
	bool syntax;

	assert_int_equal(heartbeat_wire_parse(text, strlen(text), &hb, &syntax, err, sizeof(err)),
			 0);
	master_lock(f->m);
	*rc = agents_heartbeat(f->m, &hb, &reply, err, sizeof(err));
	master_unlock(f->m);
	heartbeat_wire_free(&hb);
	free(text);
	json_decref(body);
	return reply;
}

static json_t *taskref(const char *id, const char *state)
{
	return json_pack("[{s:s,s:s,s:s,s:{s:i,s:i,s:i,s:i}}]", "task_id", id, "framework_id", "x",
			 "state", state, "stats", "rx_bytes", 10, "tx_bytes", 20, "rx_packets", 1,
			 "tx_packets", 2);
}

static bool kill_list_has(json_t *reply, const char *id)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(reply, "kill_tasks"), i, v)
		if (strcmp(json_string_value(v), id) == 0)
			return true;
	return false;
}

static enum task_state state_of(struct fx *f, const char *task_id)
{
	const struct task_record *t;
	enum task_state s;

	master_lock(f->m);
	t = master_find_task(f->m, task_id);
	assert_non_null(t);
	s = t->state;
	master_unlock(f->m);
	return s;
}

/* One agent (4 cpus, 4096 MiB, ports 31000-31010), one framework with one offer of it. */
static struct fx *setup_one(struct rec_fw **r, const char *address)
{
	struct fx *f = fx_new(100);

	*r = fx_framework(f, "marathon", 1);
	json_decref(fx_register_agent(f, "a1", 4, 4096, address, NULL));
	fx_alloc(f, 1);
	assert_int_equal((*r)->offer_count, 1);
	return f;
}

static void test_accept_rejects_what_does_not_fit(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	char err[256];
	struct agent *a;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 5, 10, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cpus=5"));
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 5000, 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 10, 32000, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "port 32000"));
	assert_int_equal(launch(f, r, "nope", "t1", 1, 10, 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(launch(f, r, r->offers[0], "", 1, 10, 0, err, sizeof(err)), -EINVAL);
	master_lock(f->m);
	assert_null(master_find_task(f->m, "t1"));
	assert_int_equal(f->m->link_len, 0);
	master_unlock(f->m);

	/* The rejected accept changed nothing: the offer still works. */
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 31005, err, sizeof(err)), 0);
	assert_int_equal(state_of(f, "t1"), TASK_STAGING);
	master_lock(f->m);
	a = agents_find(f->m, "a1");
	assert_true(a->used.cpus == 1 && a->used.mem == 512);
	assert_true(port_ranges_contains_port(&a->used.ports, 31005));
	assert_true(resources_is_empty(&a->offered));
	assert_int_equal(f->m->link_len, 1);
	struct link_queue *q = hm_entry(hashmap_get(&f->m->link_queues, "a1"), struct link_queue,
					node);
	assert_string_equal(q->address, "127.0.0.1:1");
	assert_true(q->on_ready && q->head == q->tail && q->head->kind == LINK_LAUNCH);
	json_t *body = json_loads(q->head->body, 0, NULL);
	json_t *task = json_object_get(body, "task");
	assert_string_equal(json_string_value(json_object_get(task, "task_id")), "t1");
	assert_int_equal(json_integer_value(json_array_get(json_object_get(task, "ports"), 0)), 31005);
	assert_string_equal(json_string_value(json_object_get(json_object_get(task, "env"), "K")), "V");
	assert_string_equal(master_find_task(f->m, "t1")->version, "v1");
	json_decref(body);
	master_unlock(f->m);
	/* A task id cannot be used twice. */
	fx_alloc(f, 2);
	assert_int_equal(r->offer_count, 2);
	assert_int_equal(launch(f, r, r->offers[1], "t1", 1, 10, 0, err, sizeof(err)), -EINVAL);
	/* Not even when the framework vouches for a fresh id (the master then skips the
	 * look-up): creating the task refuses it, and the task in place stays as it was. */
	g_fresh_ids = true;
	assert_int_equal(launch(f, r, r->offers[1], "t1", 1, 10, 0, err, sizeof(err)), -EEXIST);
	g_fresh_ids = false;
	assert_non_null(strstr(err, "could not be recorded"));
	master_lock(f->m);
	assert_int_equal(f->m->task_count, 1);
	assert_int_equal(f->m->link_len, 1);
	a = agents_find(f->m, "a1");
	assert_true(a->used.cpus == 1 && a->used.mem == 512);
	master_unlock(f->m);
	/* The rest of the agent is offered again, without the used port. */
	json_t *stored = NULL;
	assert_int_equal(stored_task(f, "t1", &stored), 0);
	assert_string_equal(json_string_value(json_object_get(stored, "state")), "TASK_STAGING");
	json_decref(stored);
	fx_free(f);
	free(r);
}

static void test_status_dedup_and_resources(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	char err[256];
	bool dup;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	assert_false(dup);
	assert_int_equal(r->update_count, 1);
	assert_int_equal(r->updates[0].state, TASK_RUNNING);
	assert_int_equal(state_of(f, "t1"), TASK_RUNNING);
	/* The same update again: acknowledged, not applied twice. */
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	assert_true(dup);
	assert_int_equal(r->update_count, 1);
	/* The same state under a new uuid (a restarted agent re-reporting): acknowledged,
	 * not a transition, so the framework hears nothing. */
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1b", &dup), 0);
	assert_false(dup);
	assert_int_equal(r->update_count, 1);
	/* From the wrong agent: ignored. */
	assert_int_equal(status(f, "a2", "t1", "TASK_FAILED", "u9", &dup), 0);
	assert_int_equal(state_of(f, "t1"), TASK_RUNNING);
	/* Bad input. */
	assert_int_equal(status(f, "a1", "t1", "TASK_BOGUS", "u3", &dup), -EINVAL);
	/* Unknown task: acknowledged so the agent stops resending. */
	assert_int_equal(status(f, "a1", "ghost", "TASK_RUNNING", "u4", &dup), 0);

	assert_int_equal(status(f, "a1", "t1", "TASK_FINISHED", "u2", &dup), 0);
	assert_int_equal(r->update_count, 2);
	master_lock(f->m);
	assert_true(agents_find(f->m, "a1")->used.cpus == 0);
	assert_true(r->fw.allocated.cpus == 0);
	master_unlock(f->m);

	/* The applied uuids survive a master restart. */
	fx_close_master(f);
	fx_open_master(f, 100);
	assert_int_equal(state_of(f, "t1"), TASK_FINISHED);
	assert_int_equal(status(f, "a1", "t1", "TASK_FINISHED", "u2", &dup), 0);
	assert_true(dup);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	assert_true(dup);
	/* Expunge forgets it, in memory and in the store. */
	json_t *stored = NULL;
	master_lock(f->m);
	master_expunge_task(f->m, "t1");
	assert_null(master_find_task(f->m, "t1"));
	master_unlock(f->m);
	assert_int_equal(stored_task(f, "t1", &stored), -ENOENT);
	assert_int_equal(store_get(f->st, "task_infos", "t1", &stored), -ENOENT);
	fx_free(f);
	free(r);
}

static void test_reconcile_unknown_killed_and_missing_lost(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	json_t *reply;
	char err[256];
	int rc;

	(void)state;
	/* The agent runs something the master never launched. */
	reply = fx_register_agent(f, "a1", 4, 4096, "127.0.0.1:1", taskref("ghost", "TASK_RUNNING"));
	assert_true(kill_list_has(reply, "ghost"));
	assert_true(json_is_integer(json_object_get(reply, "heartbeat_interval_seconds")));
	json_decref(reply);
	/* ...but a terminal one it still lists needs no kill. */
	reply = heartbeat(f, "a1", taskref("old", "TASK_FINISHED"), &rc);
	assert_int_equal(rc, 0);
	assert_false(kill_list_has(reply, "old"));
	json_decref(reply);

	fx_alloc(f, 2);
	assert_int_equal(launch(f, r, r->offers[r->offer_count - 1], "t1", 1, 512, 0, err,
				sizeof(err)), 0);
	/* Not listed, launched 10 s ago: maybe still on its way. */
	fx_wall += 10;
	reply = heartbeat(f, "a1", json_array(), &rc);
	json_decref(reply);
	assert_int_equal(state_of(f, "t1"), TASK_STAGING);
	/* Listed: stats are kept. */
	reply = heartbeat(f, "a1", taskref("t1", "TASK_RUNNING"), &rc);
	assert_false(kill_list_has(reply, "t1"));
	json_decref(reply);
	master_lock(f->m);
	assert_true(master_find_task(f->m, "t1")->has_stats);
	assert_int_equal(master_find_task(f->m, "t1")->stats.tx_bytes, 20);
	master_unlock(f->m);
	/* Not listed 31 s after launch: lost. */
	fx_wall += 21;
	reply = heartbeat(f, "a1", json_array(), &rc);
	json_decref(reply);
	assert_int_equal(state_of(f, "t1"), TASK_LOST);
	assert_int_equal(r->updates[r->update_count - 1].state, TASK_LOST);
	assert_string_equal(r->updates[r->update_count - 1].reason, "REASON_RECONCILIATION");
	/* It shows up after all: the master knows it as terminal, so it is killed. */
	reply = heartbeat(f, "a1", taskref("t1", "TASK_RUNNING"), &rc);
	assert_true(kill_list_has(reply, "t1"));
	json_decref(reply);
	/* Unknown agent heartbeat: -ENOENT (404, re-register). */
	reply = heartbeat(f, "zz", json_array(), &rc);
	assert_int_equal(rc, -ENOENT);
	assert_null(reply);
	fx_free(f);
	free(r);
}

/* A framework that expunges tasks from inside its status callback must not trip the
 * master's loops (ASan build catches a use after free here). */
static void test_expunge_from_callback_during_reconcile(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	json_t *reply;
	char err[256];
	bool dup;
	int rc;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	fx_alloc(f, 2);
	assert_int_equal(launch(f, r, r->offers[1], "t2", 1, 512, 0, err, sizeof(err)), 0);
	fx_alloc(f, 3);
	assert_int_equal(launch(f, r, r->offers[2], "t3", 1, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t2", "TASK_RUNNING", "u2", &dup), 0);
	r->expunge_terminal = true;
	fx_wall += 31;
	reply = heartbeat(f, "a1", taskref("t2", "TASK_RUNNING"), &rc);
	json_decref(reply);
	master_lock(f->m);
	assert_null(master_find_task(f->m, "t1"));
	assert_null(master_find_task(f->m, "t3"));
	assert_non_null(master_find_task(f->m, "t2"));
	assert_true(agents_find(f->m, "a1")->used.cpus == 1);
	master_unlock(f->m);
	fx_free(f);
	free(r);
}

static void test_unreachable_and_back(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	json_t *reply;
	char err[256];
	bool dup;
	int rc;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	master_lock(f->m);
	agents_check_timeouts(f->m, 16);
	master_unlock(f->m);
	assert_int_equal(state_of(f, "t1"), TASK_UNREACHABLE);
	assert_int_equal(r->updates[r->update_count - 1].state, TASK_UNREACHABLE);
	assert_string_equal(r->updates[r->update_count - 1].reason, "REASON_AGENT_REMOVED");
	/* Its resources stay booked on the agent (the task may come back), but no longer
	 * count in the framework's DRF share. */
	master_lock(f->m);
	assert_true(agents_find(f->m, "a1")->used.cpus == 1);
	assert_true(r->fw.allocated.cpus == 0);
	master_unlock(f->m);
	/* An unreachable agent's heartbeat is refused: it must re-register. */
	reply = heartbeat(f, "a1", taskref("t1", "TASK_RUNNING"), &rc);
	assert_int_equal(rc, -ENOENT);
	fx_wall += 100;
	reply = fx_register_agent(f, "a1", 4, 4096, "127.0.0.1:1", taskref("t1", "TASK_RUNNING"));
	assert_false(kill_list_has(reply, "t1"));
	json_decref(reply);
	assert_int_equal(state_of(f, "t1"), TASK_RUNNING);
	assert_int_equal(r->updates[r->update_count - 1].state, TASK_RUNNING);
	master_lock(f->m);
	assert_true(r->fw.allocated.cpus == 1);
	assert_true(agents_find(f->m, "a1")->used.cpus == 1);
	master_unlock(f->m);
	fx_free(f);
	free(r);
}

static void test_kill_resent_until_gone(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	json_t *reply;
	char err[256];
	bool dup;
	int rc;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	master_lock(f->m);
	assert_int_equal(master_kill_task(f->m, "nope", 1), -ENOENT);
	assert_int_equal(master_kill_task(f->m, "t1", 7), 0);
	assert_int_equal(f->m->link_len, 2);     /* launch + kill */
	/* One queue for the agent, in order: the launch, then the kill. */
	struct link_queue *q = hm_entry(hashmap_get(&f->m->link_queues, "a1"), struct link_queue,
					node);
	assert_true(q->head->kind == LINK_LAUNCH && q->tail->kind == LINK_KILL);
	json_t *kbody = json_loads(q->tail->body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(kbody, "task_id")), "t1");
	assert_true(json_number_value(json_object_get(kbody, "grace_period_seconds")) == 7);
	json_decref(kbody);
	master_unlock(f->m);
	assert_int_equal(state_of(f, "t1"), TASK_KILLING);
	/* Still running there: the kill is asked for again on every heartbeat. */
	for (int i = 0; i < 2; i++) {
		reply = heartbeat(f, "a1", taskref("t1", "TASK_RUNNING"), &rc);
		assert_true(kill_list_has(reply, "t1"));
		json_decref(reply);
	}
	/* Gone from the agent without a final update: killed. */
	reply = heartbeat(f, "a1", json_array(), &rc);
	json_decref(reply);
	assert_int_equal(state_of(f, "t1"), TASK_KILLED);
	master_lock(f->m);
	assert_int_equal(master_kill_task(f->m, "t1", 1), -ENOENT);
	master_unlock(f->m);
	fx_free(f);
	free(r);
}

static void test_master_restart_keeps_tasks(void **state)
{
	struct rec_fw *r, *r2;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	char fw_id[64], err[256];
	json_t *reply;
	bool dup;
	int rc;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 2, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	snprintf(fw_id, sizeof(fw_id), "%s", r->fw.id);
	fx_close_master(f);
	free(r);

	fx_mono = 100;
	fx_open_master(f, 100);
	master_lock(f->m);
	assert_int_equal(agents_find(f->m, "a1")->state, AGENT_RECOVERING);
	assert_true(agents_find(f->m, "a1")->used.cpus == 2);
	master_unlock(f->m);
	assert_int_equal(state_of(f, "t1"), TASK_RUNNING);
	/* The framework gets its old id back by name, and its allocation. */
	r2 = fx_framework(f, "marathon", 1);
	assert_string_equal(r2->fw.id, fw_id);
	assert_true(r2->fw.allocated.cpus == 2);
	/* Recovering agents get no offers and must re-register, not heartbeat. */
	fx_alloc(f, 101);
	assert_int_equal(r2->offer_count, 0);
	reply = heartbeat(f, "a1", taskref("t1", "TASK_RUNNING"), &rc);
	assert_int_equal(rc, -ENOENT);
	fx_wall += 100;
	reply = fx_register_agent(f, "a1", 4, 4096, "127.0.0.1:1", taskref("t1", "TASK_RUNNING"));
	assert_int_equal(json_array_size(json_object_get(reply, "kill_tasks")), 0);
	json_decref(reply);
	assert_int_equal(state_of(f, "t1"), TASK_RUNNING);
	fx_alloc(f, 102);
	assert_int_equal(r2->offer_count, 1);   /* 2 cpus left */
	fx_free(f);
	free(r2);
}

/* Only the task record is stored, not the TASKINFO the agent was sent (as Mesos's master:
 * the agent keeps it, the framework can build it again): a restarted master has every
 * field of the record back. */
static void test_task_record_stored_without_taskinfo_and_restored(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	const struct task_record *t;
	json_t *stored = NULL;
	char err[256];
	bool dup;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 31003, err, sizeof(err)), 0);
	assert_int_equal(store_get(f->st, "task_infos", "t1", &stored), -ENOENT);
	assert_int_equal(stored_task(f, "t1", &stored), 0);
	assert_null(json_object_get(stored, "info"));
	json_decref(stored);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	assert_int_equal(stored_task(f, "t1", &stored), 0);
	assert_string_equal(json_string_value(json_object_get(stored, "state")), "TASK_RUNNING");
	json_decref(stored);

	fx_close_master(f);
	fx_open_master(f, 100);
	master_lock(f->m);
	t = master_find_task(f->m, "t1");
	assert_non_null(t);
	assert_string_equal(t->task_id, "t1");
	assert_string_equal(t->framework_id, r->fw.id);
	assert_string_equal(t->agent_id, "a1");
	assert_string_equal(t->hostname, "a1");
	assert_string_equal(t->app_id, "/web");
	assert_string_equal(t->version, "v1");
	assert_string_equal(json_string_value(json_object_get(t->extra, "version")), "v1");
	assert_int_equal(t->port_count, 1);
	assert_int_equal(t->ports[0], 31003);
	assert_true(t->resources.cpus == 1 && t->resources.mem == 512);
	assert_int_equal(t->resources.ports.count, 1);
	assert_int_equal(t->resources.ports.ranges[0].begin, 31003);
	assert_true(t->staged_at == fx_wall);
	assert_int_equal(t->state, TASK_RUNNING);
	master_unlock(f->m);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	assert_true(dup);
	fx_free(f);
	free(r);
}

/* A store written by an older master (the TASKINFO inside the task record, "version"
 * beside "extra"; or the TASKINFO in its own "task_infos" record) loads, and is rewritten
 * in the new shape: records without the TASKINFO, no "task_infos" left. */
static void test_old_task_record_migrated(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	const struct task_record *t;
	json_t *old, *stored = NULL;
	char fw_id[64], err[256];
	bool dup;

	(void)state;
	snprintf(fw_id, sizeof(fw_id), "%s", r->fw.id);
	fx_close_master(f);
	free(r);
	old = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:f,s:f,s:f,s:[[ii]]},s:[i],s:f,s:f,s:f,s:s,"
			"s:{s:s,s:b},s:b,s:f,s:[s],s:i,s:{s:s,s:s}}",
			"task_id", "old1", "framework_id", fw_id, "agent_id", "a1",
			"hostname", "host-a1", "app_id", "/web", "state", "TASK_RUNNING",
			"resources", "cpus", 0.5, "mem", 64.0, "disk", 0.0, "ports", 31001, 31001,
			"ports", 31001, "staged_at", fx_wall, "started_at", fx_wall,
			"updated_at", fx_wall, "version", "v0",
			"extra", "version", "v0", "healthChecked", 1,
			"kill_requested", 0, "kill_grace", 3.0, "uuids", "old-u1", "uuid_next", 1,
			"info", "task_id", "old1", "name", "old1");
	assert_non_null(old);
	assert_int_equal(store_sqlite_open(f->dir, &f->st, err, sizeof(err)), 0);
	assert_int_equal(store_put(f->st, "tasks", "old1", old), 0);
	json_decref(old);
	old = json_pack("{s:{s:s}}", "info", "task_id", "gone2");
	assert_int_equal(store_put(f->st, "task_infos", "gone2", old), 0);
	store_close(f->st);
	json_decref(old);

	fx_open_master(f, 100);
	master_lock(f->m);
	t = master_find_task(f->m, "old1");
	assert_non_null(t);
	assert_string_equal(t->version, "v0");
	assert_true(json_is_true(json_object_get(t->extra, "healthChecked")));
	assert_string_equal(t->hostname, "host-a1");
	assert_int_equal(t->ports[0], 31001);
	assert_true(agents_find(f->m, "a1")->used.cpus == 0.5);
	master_unlock(f->m);
	assert_int_equal(state_of(f, "old1"), TASK_RUNNING);
	assert_int_equal(status(f, "a1", "old1", "TASK_RUNNING", "old-u1", &dup), 0);
	assert_true(dup);
	assert_int_equal(store_get(f->st, "task_infos", "old1", &stored), -ENOENT);
	assert_int_equal(store_get(f->st, "task_infos", "gone2", &stored), -ENOENT);
	/* keyed by creation order now, not by its id */
	assert_int_equal(store_get(f->st, "tasks", "old1", &stored), -ENOENT);
	assert_int_equal(stored_task(f, "old1", &stored), 0);
	assert_null(json_object_get(stored, "info"));
	assert_string_equal(json_string_value(json_object_get(stored, "state")), "TASK_RUNNING");
	json_decref(stored);
	/* and the new shape loads again */
	fx_close_master(f);
	fx_open_master(f, 100);
	assert_int_equal(state_of(f, "old1"), TASK_RUNNING);
	fx_free(f);
}

static void test_recovering_agent_that_never_returns(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	char err[256];
	bool dup;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	fx_close_master(f);
	free(r);
	fx_mono = 50;
	fx_open_master(f, 100);
	r = fx_framework(f, "marathon", 1);
	master_lock(f->m);
	agents_check_timeouts(f->m, 64);
	assert_int_equal(agents_find(f->m, "a1")->state, AGENT_RECOVERING);
	agents_check_timeouts(f->m, 66);
	assert_int_equal(agents_find(f->m, "a1")->state, AGENT_UNREACHABLE);
	master_unlock(f->m);
	assert_int_equal(state_of(f, "t1"), TASK_UNREACHABLE);
	assert_int_equal(r->update_count, 1);
	fx_free(f);
	free(r);
}

/* --- agent_link against a real HTTP server playing the agent --- */

struct fake_agent {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	json_t *launched;
	int status;
	bool hold, holding;     /* hold: answer only once cleared; holding: a call waits */
};

/* Takes the batch form; keeps the last launch element; refuses tasks named "refuse*". */
static void fake_launch(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct fake_agent *fa = ctx;
	json_t *body = http_body_json(req, resp), *results = json_array(), *l;
	size_t i;

	if (!body)
		return;
	pthread_mutex_lock(&fa->mu);
	while (fa->hold) {
		fa->holding = true;
		pthread_cond_broadcast(&fa->cond);
		pthread_cond_wait(&fa->cond, &fa->mu);
	}
	fa->holding = false;
	json_array_foreach(json_object_get(body, "launches"), i, l) {
		const char *id = json_string_value(json_object_get(json_object_get(l, "task"),
								   "task_id"));

		if (id && strncmp(id, "refuse", 6) == 0) {
			json_array_append_new(results, json_pack("{s:s,s:s}", "task_id", id, "error",
								 "/task/cpus: no way"));
			continue;
		}
		json_array_append_new(results, json_pack("{s:s,s:b}", "task_id", id, "accepted", 1));
		json_decref(fa->launched);
		fa->launched = json_incref(l);
	}
	pthread_mutex_unlock(&fa->mu);
	json_decref(body);
	http_respond_json(resp, fa->status, json_pack("{s:o}", "results", results));
}

static uint16_t closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static bool wait_state(struct fx *f, const char *task_id, enum task_state want, double secs)
{
	double deadline = now_mono() + secs;

	while (now_mono() < deadline) {
		if (state_of(f, task_id) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static const char *last_offer_of(struct rec_fw *r, const char *agent_id)
{
	for (size_t i = r->offer_count; i-- > 0;)
		if (strcmp(r->offer_agents[i], agent_id) == 0)
			return r->offers[i];
	fail_msg("no offer for %s", agent_id);
	return NULL;
}

static void test_agent_link_launch_delivered_and_failed(void **state)
{
	struct fake_agent fa = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
				 .status = 202 };
	struct http_server *srv;
	struct rec_fw *r;
	struct fx *f;
	char addr[64], bad[64], err[256];
	double deadline;
	bool got = false;

	(void)state;
	http_client_global_init();
	srv = http_server_start("127.0.0.1", 0, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, "POST", "/v1/launch", fake_launch, &fa), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", http_server_port(srv));
	snprintf(bad, sizeof(bad), "127.0.0.1:%u", closed_port());

	f = setup_one(&r, addr);
	json_decref(fx_register_agent(f, "a2", 4, 4096, bad, NULL));
	assert_int_equal(agent_link_start(f->m), 0);
	assert_int_equal(launch(f, r, r->offers[0], "good", 1, 512, 0, err, sizeof(err)), 0);
	deadline = now_mono() + 10;
	while (!got && now_mono() < deadline) {
		pthread_mutex_lock(&fa.mu);
		got = fa.launched != NULL;
		pthread_mutex_unlock(&fa.mu);
		if (!got)
			usleep(10000);
	}
	assert_true(got);
	assert_string_equal(json_string_value(json_object_get(fa.launched, "framework_id")),
			    r->fw.id);
	assert_string_equal(json_string_value(json_object_get(json_object_get(fa.launched, "task"),
							      "task_id")), "good");
	assert_int_equal(state_of(f, "good"), TASK_STAGING);


	/* An agent nobody listens for: the launch fails and the framework hears of it. */
	fx_alloc(f, 2);
	assert_string_equal(r->offer_agents[r->offer_count - 1], "a2");
	assert_int_equal(launch(f, r, r->offers[r->offer_count - 1], "bad", 1, 512, 0, err,
				sizeof(err)), 0);
	assert_true(wait_state(f, "bad", TASK_FAILED, 10));
	master_lock(f->m);
	assert_string_equal(r->updates[r->update_count - 1].reason, "REASON_CONTAINER_LAUNCH_FAILED");
	assert_true(agents_find(f->m, "a2")->used.cpus == 0);
	master_unlock(f->m);

	/* The agent refuses one task of a batch: that one fails, the others are launched. */
	fx_alloc(f, 3);
	assert_int_equal(launch(f, r, last_offer_of(r, "a1"), "refuse-me", 1, 256, 0, err,
				sizeof(err)), 0);
	fx_alloc(f, 4);
	assert_int_equal(launch(f, r, last_offer_of(r, "a1"), "good2", 1, 256, 0, err,
				sizeof(err)), 0);
	assert_true(wait_state(f, "refuse-me", TASK_FAILED, 10));
	master_lock(f->m);
	assert_string_equal(r->updates[r->update_count - 1].task_id, "refuse-me");
	assert_string_equal(r->updates[r->update_count - 1].reason, "REASON_CONTAINER_LAUNCH_FAILED");
	master_unlock(f->m);
	deadline = now_mono() + 10;
	got = false;
	while (!got && now_mono() < deadline) {
		pthread_mutex_lock(&fa.mu);
		got = strcmp(json_string_value(json_object_get(json_object_get(fa.launched, "task"),
							       "task_id")), "good2") == 0;
		pthread_mutex_unlock(&fa.mu);
		if (!got)
			usleep(10000);
	}
	assert_true(got);
	assert_int_equal(state_of(f, "good2"), TASK_STAGING);
	assert_int_equal(state_of(f, "good"), TASK_STAGING);

	fx_free(f);             /* stops agent_link first */
	http_server_stop(srv);
	json_decref(fa.launched);
	free(r);
}

/* A launch still on its way to the agent (queued behind others, or being sent) is not lost
 * when the agent's heartbeat does not list it yet, however long it has been staged. */
static void test_launch_on_the_way_not_lost(void **state)
{
	struct fake_agent fa = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
				 .status = 202, .hold = true };
	struct http_server *srv;
	struct rec_fw *r;
	struct fx *f;
	char addr[64], err[256];
	double deadline;
	int rc;

	(void)state;
	http_client_global_init();
	srv = http_server_start("127.0.0.1", 0, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, "POST", "/v1/launch", fake_launch, &fa), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", http_server_port(srv));
	f = setup_one(&r, addr);
	assert_int_equal(agent_link_start(f->m), 0);
	assert_int_equal(launch(f, r, r->offers[0], "slow", 1, 256, 0, err, sizeof(err)), 0);
	deadline = now_mono() + 10;
	pthread_mutex_lock(&fa.mu);
	while (!fa.holding && now_mono() < deadline) {
		pthread_mutex_unlock(&fa.mu);
		usleep(10000);
		pthread_mutex_lock(&fa.mu);
	}
	assert_true(fa.holding);
	pthread_mutex_unlock(&fa.mu);
	/* The agent has not answered yet: 31 s later its heartbeat does not list the task. */
	fx_wall += 31;
	json_decref(heartbeat(f, "a1", json_array(), &rc));
	assert_int_equal(rc, 0);
	assert_int_equal(state_of(f, "slow"), TASK_STAGING);
	/* Once the launch went through, a heartbeat without it means it is lost. */
	pthread_mutex_lock(&fa.mu);
	fa.hold = false;
	pthread_cond_broadcast(&fa.cond);
	pthread_mutex_unlock(&fa.mu);
	deadline = now_mono() + 10;
	while (agent_link_launch_pending(f->m, "a1", "slow") && now_mono() < deadline)
		usleep(10000);
	assert_false(agent_link_launch_pending(f->m, "a1", "slow"));
	json_decref(heartbeat(f, "a1", json_array(), &rc));
	assert_int_equal(state_of(f, "slow"), TASK_LOST);

	fx_free(f);
	http_server_stop(srv);
	json_decref(fa.launched);
	free(r);
}

static void count_task(const struct task_record *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
}

static int store_state(struct fx *f, const char *task_id, char *out, size_t len)
{
	json_t *j = NULL;
	int rc = stored_task(f, task_id, &j);

	if (rc == 0)
		snprintf(out, len, "%s", json_string_value(json_object_get(j, "state")));
	json_decref(j);
	return rc;
}

/* With the store writer running, records are written in batches off the lock: a write is
 * in the store once master_store_wait has returned for its number, an expunge deletes the
 * record, and the per-app index and live counts follow every change. */
static void test_store_writer_and_indexes(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	char err[256], st[32];
	unsigned long seq;
	int n = 0;
	bool dup;

	(void)state;
	assert_int_equal(store_writer_start(f->m), 0);
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	fx_alloc(f, 2);
	assert_int_equal(launch(f, r, r->offers[1], "t2", 1, 512, 0, err, sizeof(err)), 0);
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u1", &dup), 0);
	master_lock(f->m);
	seq = master_store_seq(f->m);
	assert_true(seq >= 3);
	master_for_each_app_task(f->m, r->fw.id, "/web", count_task, &n);
	assert_int_equal(n, 2);
	n = 0;
	master_for_each_app_task(f->m, r->fw.id, "/other", count_task, &n);
	assert_int_equal(n, 0);
	assert_int_equal(master_app_live_tasks(f->m, r->fw.id, "/web"), 2);
	assert_int_equal(tasks_on_agent(f->m, "a1")->live, 2);
	master_unlock(f->m);
	master_store_wait(f->m, seq);
	assert_int_equal(store_state(f, "t1", st, sizeof(st)), 0);
	assert_string_equal(st, "TASK_RUNNING");
	assert_int_equal(store_state(f, "t2", st, sizeof(st)), 0);
	assert_string_equal(st, "TASK_STAGING");

	assert_int_equal(status(f, "a1", "t2", "TASK_FAILED", "u2", &dup), 0);
	master_lock(f->m);
	assert_int_equal(master_app_live_tasks(f->m, r->fw.id, "/web"), 1);
	assert_int_equal(tasks_on_agent(f->m, "a1")->live, 1);
	master_expunge_task(f->m, "t2");
	assert_null(master_find_task(f->m, "t2"));
	n = 0;
	master_for_each_task(f->m, r->fw.id, count_task, &n);
	assert_int_equal(n, 1);
	seq = master_store_seq(f->m);
	master_unlock(f->m);
	master_store_wait(f->m, seq);
	assert_int_equal(store_state(f, "t2", st, sizeof(st)), -ENOENT);
	/* Queued writes are not lost when the master stops: a RUNNING t1 comes back. */
	assert_int_equal(status(f, "a1", "t1", "TASK_KILLED", "u3", &dup), 0);
	fx_close_master(f);
	fx_open_master(f, 100);
	assert_int_equal(state_of(f, "t1"), TASK_KILLED);
	/* Its applied uuids came back with it. */
	assert_int_equal(status(f, "a1", "t1", "TASK_KILLED", "u3", &dup), 0);
	assert_true(dup);
	fx_free(f);
	free(r);
}

/* The uuid memory grows with the updates a task gets and keeps the last 16: the 17th
 * pushes out the first, across a restart too. */
static void test_uuid_ring_keeps_last_sixteen(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	char err[256], uuid[16];
	bool dup;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 512, 0, err, sizeof(err)), 0);
	for (int i = 0; i <= TASK_UUID_MEMORY; i++) {
		snprintf(uuid, sizeof(uuid), "u%d", i);
		assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", uuid, &dup), 0);
		assert_false(dup);
	}
	fx_close_master(f);
	fx_open_master(f, 100);
	for (int i = TASK_UUID_MEMORY; i >= 1; i--) {
		snprintf(uuid, sizeof(uuid), "u%d", i);
		assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", uuid, &dup), 0);
		assert_true(dup);
	}
	assert_int_equal(status(f, "a1", "t1", "TASK_RUNNING", "u0", &dup), 0);
	assert_false(dup);                      /* forgotten: the oldest of 17 */
	fx_free(f);
	free(r);
}

static int group_setup(void **state)
{
	(void)state;
	g_cmd = json_pack("{s:b,s:s}", "shell", 1, "value", "sleep 100");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	json_decref(g_cmd);
	return 0;
}

static json_t *upd(const char *uuid, const char *task, const char *state)
{
	return json_pack("{s:s,s:s,s:s?,s:f}", "uuid", uuid, "task_id", task, "state", state,
			 "timestamp", fx_wall);
}

/* Agent a1's status batch applied as the route does (lock held); its results. */
static json_t *apply_batch(struct fx *f, json_t *updates)
{
	json_t *results;

	master_lock(f->m);
	results = fx_apply_status_batch(f->m, "a1", updates);
	master_unlock(f->m);
	return results;
}

static void expect_result(json_t *results, size_t i, const char *uuid, bool acked)
{
	json_t *res = json_array_get(results, i);

	assert_string_equal(json_string_value(json_object_get(res, "uuid")), uuid);
	assert_int_equal(json_is_true(json_object_get(res, "acknowledged")), acked);
	assert_int_equal(json_is_string(json_object_get(res, "error")), !acked);
}

/* One batch of updates from an agent: applied in order, answered per uuid; a bad element is
 * rejected alone (with the later updates of its task), a duplicate is acknowledged again
 * without being applied twice. */
static void test_status_batch_acked_per_uuid(void **state)
{
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	json_t *updates, *results;
	char err[256];
	size_t before;

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 256, 0, err, sizeof(err)), 0);
	fx_alloc(f, 2);
	assert_int_equal(launch(f, r, r->offers[r->offer_count - 1], "t2", 1, 256, 0, err,
				sizeof(err)), 0);
	before = r->update_count;
	updates = json_pack("[o,o,o,o,o,i]", upd("u1", "t1", "TASK_RUNNING"),
			    upd("u2-bad", "t2", NULL), upd("u3", "t2", "TASK_RUNNING"),
			    upd("u1", "t1", "TASK_RUNNING"), upd("u4", "ghost", "TASK_RUNNING"), 7);
	results = apply_batch(f, updates);
	assert_int_equal(json_array_size(results), 6);
	expect_result(results, 0, "u1", true);
	expect_result(results, 1, "u2-bad", false);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(results, 1), "error")),
			       "state"));
	expect_result(results, 2, "u3", false);         /* behind the rejected one of t2 */
	expect_result(results, 3, "u1", true);          /* duplicate: acked, not applied again */
	expect_result(results, 4, "u4", true);          /* unknown task: acked, reconciled later */
	assert_true(json_is_null(json_object_get(json_array_get(results, 5), "uuid")));
	assert_true(json_is_string(json_object_get(json_array_get(results, 5), "error")));
	assert_int_equal(state_of(f, "t1"), TASK_RUNNING);
	assert_int_equal(state_of(f, "t2"), TASK_STAGING);
	assert_int_equal(r->update_count, before + 1);
	json_decref(results);
	json_decref(updates);

	/* A message quoting a long multi-byte task id is cut short: still one result each. */
	char longid[256] = "x";
	for (int i = 0; i < 100; i++)
		strcat(longid, "\xc3\xa9");
	updates = json_pack("[o,o]", upd("u6", longid, "NOPE"), upd("u7", longid, "TASK_RUNNING"));
	results = apply_batch(f, updates);
	assert_int_equal(json_array_size(results), 2);
	expect_result(results, 0, "u6", false);
	expect_result(results, 1, "u7", false);
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(results, 1), "error")),
			       "follows a rejected update"));
	json_decref(results);
	json_decref(updates);

	/* The agent resends what was not acknowledged, fixed: now it applies. */
	updates = json_pack("[o,o]", upd("u3", "t2", "TASK_RUNNING"), upd("u5", "t2", "TASK_FINISHED"));
	results = apply_batch(f, updates);
	expect_result(results, 0, "u3", true);
	expect_result(results, 1, "u5", true);
	assert_int_equal(state_of(f, "t2"), TASK_FINISHED);
	assert_int_equal(r->update_count, before + 3);
	json_decref(results);
	json_decref(updates);
	fx_free(f);
	free(r);
}

/* Fields of the wrong type inside an update get the verdicts the jansson tree gave them
 * (status_wire.h): a uuid, task_id or state that is not a string (or an empty uuid)
 * rejects the update as "update needs string fields uuid, task_id and state", its result's
 * uuid null when the uuid is not a string; a timestamp that is not a number is the
 * master's clock, a reason that is not a string is ""; health checks with ill-typed fields
 * are recorded with null, 0 and "". */
static void test_status_field_types(void **state)
{
	static const char *const needs = "update needs string fields uuid, task_id and state";
	struct rec_fw *r;
	struct fx *f = setup_one(&r, "127.0.0.1:1");
	json_t *updates, *results, *want, *check;
	const struct task_record *t;
	char err[256];

	(void)state;
	assert_int_equal(launch(f, r, r->offers[0], "t1", 1, 256, 0, err, sizeof(err)), 0);
	updates = json_loads("[{\"uuid\":5,\"task_id\":\"t9\",\"state\":\"TASK_RUNNING\"},"
			     "{\"uuid\":\"u1\",\"task_id\":[\"t1\"],\"state\":\"TASK_RUNNING\"},"
			     "{\"uuid\":\"u2\",\"task_id\":\"t8\",\"state\":7},"
			     "{\"uuid\":\"\",\"task_id\":\"t7\",\"state\":\"TASK_RUNNING\"},"
			     "{\"uuid\":\"u3\",\"task_id\":\"t1\",\"state\":\"TASK_RUNNING\","
			     "\"timestamp\":\"soon\",\"reason\":5,\"message\":[],\"exit_code\":\"0\","
			     "\"healthy\":true,\"health_checks\":[1,{\"alive\":\"yes\","
			     "\"consecutive_failures\":\"3\",\"first_success\":-2,\"last_success\":null,"
			     "\"last_failure\":{},\"last_failure_cause\":4}]}]", 0, NULL);
	assert_non_null(updates);
	master_lock(f->m);
	results = fx_apply_status_batch(f->m, "a1", updates);
	master_unlock(f->m);
	assert_int_equal(json_array_size(results), 5);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(results, i),
								      "error")), needs);
	assert_true(json_is_null(json_object_get(json_array_get(results, 0), "uuid")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(results, 1), "uuid")), "u1");
	assert_string_equal(json_string_value(json_object_get(json_array_get(results, 3), "uuid")), "");
	expect_result(results, 4, "u3", true);
	json_decref(results);
	json_decref(updates);

	assert_int_equal(r->update_count, 1);
	assert_int_equal(r->updates[0].state, TASK_RUNNING);
	assert_string_equal(r->updates[0].reason, "");
	check = json_pack("{s:n,s:I,s:f,s:f,s:f,s:s}", "alive", "consecutive_failures",
			  (json_int_t)0, "first_success", 0.0, "last_success", 0.0, "last_failure",
			  0.0, "last_failure_cause", "");
	want = json_pack("{s:b,s:[O,O]}", "healthy", 1, "checks", check, check);
	master_lock(f->m);
	t = master_find_task(f->m, "t1");
	assert_true(t->started_at == fx_wall);
	assert_true(json_equal(t->health, want));
	master_unlock(f->m);
	json_decref(want);
	json_decref(check);
	fx_free(f);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_rejects_what_does_not_fit),
		cmocka_unit_test(test_status_field_types),
		cmocka_unit_test(test_status_dedup_and_resources),
		cmocka_unit_test(test_reconcile_unknown_killed_and_missing_lost),
		cmocka_unit_test(test_expunge_from_callback_during_reconcile),
		cmocka_unit_test(test_unreachable_and_back),
		cmocka_unit_test(test_kill_resent_until_gone),
		cmocka_unit_test(test_master_restart_keeps_tasks),
		cmocka_unit_test(test_task_record_stored_without_taskinfo_and_restored),
		cmocka_unit_test(test_old_task_record_migrated),
		cmocka_unit_test(test_recovering_agent_that_never_returns),
		cmocka_unit_test(test_agent_link_launch_delivered_and_failed),
		cmocka_unit_test(test_launch_on_the_way_not_lost),
		cmocka_unit_test(test_store_writer_and_indexes),
		cmocka_unit_test(test_uuid_ring_keeps_last_sixteen),
		cmocka_unit_test(test_status_batch_acked_per_uuid),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
