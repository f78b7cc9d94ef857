/* fuzz_agent_protocol.c - libFuzzer target for the master's side of the agent protocol
 * (docs/architecture.md): POST /internal/v1/register, /heartbeat and /status bodies, fed
 * to a real in-process master (SQLite store in /dev/shm, fake clocks) the way
 * master/api_internal.c's handlers do: JSON with duplicate keys rejected, an object
 * required, then agents_register / agents_heartbeat under the lock; a status body is read
 * by status_wire_parse (one update: tasks_apply_status; a batch: tasks_apply_status_batch,
 * its answer text read back). Every input
 * starts from the same state: agent "agent-fuzz0" with two running
 * tasks "fz_web.1" and "fz_web.2" of a recording framework.
 * Input: messages separated by 0xff bytes; a message's first byte picks the call
 * ('r' register, 'h' heartbeat, anything else status), the rest is the body.
 * After every message the accounting must hold: an agent's used resources are the sum of
 * its non-terminal tasks'; a task's recorded health (updates with "healthy") is typed. */
/* fuzz-links: master/[!m]*.c master/ma[!i]*.c */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/heartbeat_wire.h"
#include "master/master_internal.h"
#include "tests/fuzz/fuzz_common.h"

static char dir[64];
static double clock_now;
static double fake_mono(void) { return clock_now; }
static double fake_wall(void) { return 1700000000.0 + clock_now; }

static char offer_id[48];
static void on_offers(struct framework *fw, struct offer **offers, size_t count)
{
	(void)fw;
	if (count)
		snprintf(offer_id, sizeof(offer_id), "%s", offers[0]->id);
}
static void on_status(struct framework *fw, const struct task_status *st)
{
	(void)fw;
	CHECK(st->task_id && st->agent_id && st->message && st->reason);
	CHECK(st->healthy >= -1 && st->healthy <= 1);
	CHECK(!st->health_only || st->healthy >= 0);
}
static const struct framework_ops ops = { .resource_offers = on_offers, .status_update = on_status };

static void cleanup(void)
{
	if (dir[0])
		remove_tree(dir);
}

static void wipe_store(void)
{
	static const char *const files[] = { "master.db", "master.db-wal", "master.db-shm",
					     "tasks.log" };
	char path[128];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
}

static void launch(struct master *m, struct framework *fw, const char *task_id, uint32_t port)
{
	struct task_launch l = { .resources.cpus = 0.5, .resources.mem = 64 };
	const char *ids[1] = { offer_id };
	char err[256];

	offer_id[0] = '\0';
	allocator_run(m, clock_now);
	CHECK(offer_id[0]);
	snprintf(l.task_id, sizeof(l.task_id), "%s", task_id);
	snprintf(l.app_id, sizeof(l.app_id), "/fz/web");
	l.command = json_pack("{s:b,s:s}", "shell", 1, "value", "sleep 100");
	l.ports[0] = port;
	l.port_count = 1;
	l.kill_grace_period_seconds = 3;
	CHECK(master_accept(m, fw, ids, 1, &l, 1, 0, err, sizeof(err)) == 0);
	json_decref(l.command);
}

static void setup(struct store **st, struct master **m, struct framework *fw)
{
	struct master_config cfg = {
		.work_dir = dir, .agent_timeout = 15, .offer_timeout = 5,
		.allocation_interval = 1, .hostname = "fuzz",
	};
	json_t *body, *reply = NULL;
	char err[256];

	wipe_store();
	clock_now = 100;
	CHECK(store_sqlite_open(dir, st, err, sizeof(err)) == 0);
	CHECK(master_create(&cfg, *st, m) == 0);
	(*m)->clock_mono = fake_mono;
	(*m)->clock_wall = fake_wall;
	CHECK(master_load(*m, err, sizeof(err)) == 0);
	memset(fw, 0, sizeof(*fw));
	snprintf(fw->id, sizeof(fw->id), "fw-fuzz");
	snprintf(fw->name, sizeof(fw->name), "fuzz");
	snprintf(fw->role, sizeof(fw->role), "*");
	fw->weight = 1;
	fw->ops = &ops;
	master_lock(*m);
	CHECK(master_register_framework(*m, fw) == 0);
	body = json_pack("{s:s,s:s,s:s,s:{s:f,s:f,s:f,s:[[ii]]},s:{s:s},s:[]}",
			 "agent_id", "agent-fuzz0", "hostname", "h0", "address", "127.0.0.1:5051",
			 "resources", "cpus", 4.0, "mem", 4096.0, "disk", 1000.0, "ports", 31000, 31010,
			 "attributes", "rack", "a", "tasks");
	CHECK(agents_register(*m, body, &reply, err, sizeof(err)) == 0);
	json_decref(body);
	json_decref(reply);
	launch(*m, fw, "fz_web.1", 31001);
	launch(*m, fw, "fz_web.2", 31002);
	master_unlock(*m);
}

static void check_accounting(struct master *m)
{
	for (struct agent *a = m->agents; a; a = a->next) {
		double cpus = 0, mem = 0;

		for (struct dlink *l = m->tasks.next; l != &m->tasks; l = l->next) {
			struct task *t = dl_entry(l, struct task, all);

			if (strcmp(t->rec.agent_id, a->id) || task_state_is_terminal(t->rec.state))
				continue;
			/* a recorded health is always the typed shape the API serves */
			if (t->rec.health) {
				CHECK(json_is_boolean(json_object_get(t->rec.health, "healthy")));
				CHECK(json_array_size(json_object_get(t->rec.health, "checks")) <= 16);
			}
			cpus += t->rec.resources.cpus;
			mem += t->rec.resources.mem;
		}
		CHECK(fabs(a->used.cpus - cpus) < 1e-6 && fabs(a->used.mem - mem) < 1e-6);
	}
}

/* The batch's answer text (tasks_apply_status_batch) read back: its "results". */
static json_t *apply_batch(struct master *m, const struct status_batch *b)
{
	char *text = tasks_apply_status_batch(m, b->agent_id, b->updates, b->nupdates);
	json_t *answer, *results;

	CHECK(text);
	answer = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_object_size(answer) == 1);
	results = json_incref(json_object_get(answer, "results"));
	json_decref(answer);
	free(text);
	return results;
}

/* The batch form: one result per update, in order, each an ack of the update's uuid or a
 * message; applying the same batch again acknowledges the same updates (duplicates). */
static void status_batch(struct master *m, const struct status_batch *b, json_t *updates)
{
	json_t *results, *again, *r;
	size_t i;

	results = apply_batch(m, b);
	CHECK(json_array_size(results) == json_array_size(updates));
	json_array_foreach(results, i, r) {
		json_t *uuid = json_object_get(json_array_get(updates, i), "uuid");

		if (json_is_true(json_object_get(r, "acknowledged"))) {
			CHECK(json_string_length(uuid) > 0);
			CHECK(json_equal(json_object_get(r, "uuid"), uuid));
			CHECK(!json_object_get(r, "error"));
		} else {
			CHECK(json_string_length(json_object_get(r, "error")) > 0);
			CHECK(json_is_string(uuid) ? json_equal(json_object_get(r, "uuid"), uuid)
						   : json_is_null(json_object_get(r, "uuid")));
		}
	}
	check_accounting(m);
	again = apply_batch(m, b);
	json_array_foreach(results, i, r)
		CHECK(json_is_true(json_object_get(r, "acknowledged")) ==
		      json_is_true(json_object_get(json_array_get(again, i), "acknowledged")));
	json_decref(again);
	json_decref(results);
}

/* A status body read as the handler reads it (status_wire.c), body being jansson's tree
 * of the same text for the checks. */
static void status(struct master *m, const char *text, size_t len, json_t *body)
{
	struct status_batch b;
	char err[256] = "";
	bool dup = false, syntax;
	struct agent *a;
	int rc;

	rc = status_wire_parse(text, len, &b, &syntax, err, sizeof(err));
	if (rc) {
		CHECK(rc == -EINVAL && err[0]);
		return;         /* the handler answers 400 */
	}
	CHECK(strcmp(b.agent_id, json_string_value(json_object_get(body, "agent_id"))) == 0);
	a = agents_find(m, b.agent_id);
	if (a && a->state == AGENT_ACTIVE)
		a->last_seen = m->clock_mono();
	if (!b.single) {
		status_batch(m, &b, json_object_get(body, "updates"));
	} else {
		rc = tasks_apply_status(m, b.agent_id, &b.updates[0], &dup, err, sizeof(err));
		if (rc)
			CHECK(rc == -EINVAL && err[0]);
		else
			CHECK(json_string_length(json_object_get(json_object_get(body, "update"),
								 "uuid")) > 0);
	}
	status_wire_free(&b);
}

static void message(struct master *m, const uint8_t *data, size_t len)
{
	json_t *body, *reply = NULL;
	char err[256] = "";
	int rc;

	if (len == 0)
		return;
	body = json_loadb((const char *)data + 1, len - 1, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(body)) {
		json_decref(body);
		return;
	}
	master_lock(m);
	if (data[0] == 'r') {
		rc = agents_register(m, body, &reply, err, sizeof(err));
		if (rc == 0)
			CHECK(json_is_string(json_object_get(reply, "agent_id")) &&
			      json_is_array(json_object_get(reply, "kill_tasks")));
		else
			CHECK(rc == -EINVAL && err[0] && !reply);
	} else if (data[0] == 'h') {
		struct heartbeat hb;
		bool syntax;

		/* The bytes as the route reads them (jansson above only screens the input; the
		 * reader refuses a little more: fuzz_heartbeat_wire.c). */
		if (heartbeat_wire_parse((const char *)data + 1, len - 1, &hb, &syntax, err,
					 sizeof(err)) == 0) {
			rc = agents_heartbeat(m, &hb, &reply, err, sizeof(err));
			heartbeat_wire_free(&hb);
			if (rc == 0)
				CHECK(json_is_array(json_object_get(reply, "kill_tasks")));
			else
				CHECK((rc == -EINVAL || rc == -ENOENT) && err[0] && !reply);
		}
	} else {
		status(m, (const char *)data + 1, len - 1, body);
	}
	check_accounting(m);
	clock_now += 1;
	master_unlock(m);
	json_decref(reply);
	json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct framework fw;
	struct store *st;
	struct master *m;

	if (!dir[0]) {
		log_init("fuzz", LOG_LVL_ERROR + 1);
		snprintf(dir, sizeof(dir), "/dev/shm/pacer-fuzz-XXXXXX");
		CHECK(mkdtemp(dir));
		atexit(cleanup);
	}
	setup(&st, &m, &fw);
	while (size > 0) {
		const uint8_t *end = memchr(data, 0xff, size);
		size_t len = end ? (size_t)(end - data) : size;

		message(m, data, len);
		data += len + (end ? 1 : 0);
		size -= len + (end ? 1 : 0);
	}
	/* what the tick does with the state the messages left */
	master_lock(m);
	clock_now += 60;
	agents_check_timeouts(m, clock_now);
	allocator_expire_offers(m, clock_now);
	allocator_run(m, clock_now);
	check_accounting(m);
	master_unlock(m);
	master_destroy(m);
	store_close(st);
	return 0;
}
