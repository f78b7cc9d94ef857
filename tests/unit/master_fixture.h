/* master_fixture.h - shared setup for the master core's unit tests: a real SQLite store in
 * a temp dir, a master with a fake clock, agents registered through the protocol body, and
 * a recording framework. Included by tests/unit/test_allocator.c and test_master_tasks.c. */
#ifndef PACER_TESTS_MASTER_FIXTURE_H
#define PACER_TESTS_MASTER_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

static double fx_mono, fx_wall = 1700000000.0;
static double fx_clock_mono(void) { return fx_mono; }
static double fx_clock_wall(void) { return fx_wall; }

struct fx {
	char dir[64];
	struct store *st;
	struct master *m;
};

static void fx_open_master(struct fx *f, double offer_timeout)
{
	struct master_config cfg = {
		.port = 0, .work_dir = f->dir, .agent_timeout = 15,
		.offer_timeout = offer_timeout, .allocation_interval = 1, .hostname = "test",
	};
	char err[256];

	assert_int_equal(store_sqlite_open(f->dir, &f->st, err, sizeof(err)), 0);
	assert_int_equal(master_create(&cfg, f->st, &f->m), 0);
	f->m->clock_mono = fx_clock_mono;
	f->m->clock_wall = fx_clock_wall;
	assert_int_equal(master_load(f->m, err, sizeof(err)), 0);
}

static void fx_close_master(struct fx *f)
{
	master_destroy(f->m);
	store_close(f->st);
	f->m = NULL;
	f->st = NULL;
}

static inline struct fx *fx_new(double offer_timeout)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	log_init("test", LOG_LVL_ERROR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pacer-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	fx_mono = 0;
	fx_wall = 1700000000.0;
	fx_open_master(f, offer_timeout);
	return f;
}

static inline void fx_free(struct fx *f)
{
	if (f->m)
		fx_close_master(f);
	remove_tree(f->dir);
	free(f);
}

/* Registers (or re-registers) an agent through the protocol body; returns the reply. */
static inline json_t *fx_register_agent(struct fx *f, const char *id, double cpus, double mem,
				 const char *address, json_t *tasks)
{
	json_t *body = json_pack("{s:s,s:s,s:s,s:{s:f,s:f,s:f,s:[[ii]]},s:{s:s},s:o}",
				 "agent_id", id, "hostname", id, "address", address,
				 "resources", "cpus", cpus, "mem", mem, "disk", 1000.0,
				 "ports", 31000, 31010, "attributes", "rack", "a",
				 "tasks", tasks ? tasks : json_array());
	json_t *reply = NULL;
	char err[256] = "";

	master_lock(f->m);
	assert_int_equal(agents_register(f->m, body, &reply, err, sizeof(err)), 0);
	master_unlock(f->m);
	json_decref(body);
	assert_non_null(reply);
	return reply;
}

/* A framework that records what the master tells it. */
#define FX_MAX 64
struct rec_fw {
	struct framework fw;
	char offers[FX_MAX][48];
	char offer_agents[FX_MAX][64];
	size_t offer_count;
	char rescinded[FX_MAX][48];
	size_t rescinded_count;
	struct {
		char task_id[160];
		enum task_state state;
		char reason[64];
	} updates[FX_MAX];
	size_t update_count;
	/* Like Marathon: forget terminal tasks from inside the status callback. */
	bool expunge_terminal;
	struct master *m;
};

static void rec_offers(struct framework *fw, struct offer **offers, size_t count)
{
	struct rec_fw *r = (struct rec_fw *)fw;

	for (size_t i = 0; i < count && r->offer_count < FX_MAX; i++) {
		snprintf(r->offers[r->offer_count], 48, "%s", offers[i]->id);
		snprintf(r->offer_agents[r->offer_count], 64, "%s", offers[i]->agent_id);
		r->offer_count++;
	}
}

static void rec_rescinded(struct framework *fw, const char *offer_id)
{
	struct rec_fw *r = (struct rec_fw *)fw;

	if (r->rescinded_count < FX_MAX)
		snprintf(r->rescinded[r->rescinded_count++], 48, "%s", offer_id);
}

static void rec_status(struct framework *fw, const struct task_status *st)
{
	struct rec_fw *r = (struct rec_fw *)fw;

	if (r->update_count >= FX_MAX)
		return;
	snprintf(r->updates[r->update_count].task_id, 160, "%s", st->task_id);
	r->updates[r->update_count].state = st->state;
	snprintf(r->updates[r->update_count].reason, 64, "%s", st->reason);
	r->update_count++;
	if (r->expunge_terminal && task_state_is_terminal(st->state))
		master_expunge_task(r->m, st->task_id);
}

static const struct framework_ops rec_ops = {
	.resource_offers = rec_offers,
	.offer_rescinded = rec_rescinded,
	.status_update = rec_status,
};

static inline struct rec_fw *fx_framework(struct fx *f, const char *name, double weight)
{
	struct rec_fw *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	snprintf(r->fw.name, sizeof(r->fw.name), "%s", name);
	r->fw.weight = weight;
	r->fw.ops = &rec_ops;
	r->m = f->m;
	master_lock(f->m);
	assert_int_equal(master_register_framework(f->m, &r->fw), 0);
	master_unlock(f->m);
	return r;
}

/* Offers of r that are on agent_id, counted from index `from`. */
static inline size_t fx_offers_on(const struct rec_fw *r, size_t from, const char *agent_id)
{
	size_t n = 0;

	for (size_t i = from; i < r->offer_count; i++)
		if (strcmp(r->offer_agents[i], agent_id) == 0)
			n++;
	return n;
}

static inline void fx_alloc(struct fx *f, double now)
{
	fx_mono = now;
	master_lock(f->m);
	allocator_expire_offers(f->m, now);
	allocator_run(f->m, now);
	master_unlock(f->m);
}

/* A status body as the route reads it: the JSON text of {"agent_id","update"|"updates"}
 * through status_wire_parse (which must accept it). Free b with status_wire_free. */
static inline void fx_status_body(const char *agent_id, const char *key, json_t *value,
				  struct status_batch *b)
{
	json_t *body = json_pack("{s:s,s:O}", "agent_id", agent_id, key, value);
	char *text = json_dumps(body, JSON_COMPACT), err[256] = "";
	bool syntax;

	assert_non_null(text);
	if (status_wire_parse(text, strlen(text), b, &syntax, err, sizeof(err)) != 0)
		fail_msg("status body refused: %s", err);
	free(text);
	json_decref(body);
}

/* One STATUS update (a JSON object) applied the way POST /internal/v1/status applies it;
 * the caller holds the lock. */
static inline int fx_apply_status(struct master *m, const char *agent_id, json_t *update,
				  bool *dup, char *err, size_t errlen)
{
	struct status_batch b;
	int rc;

	fx_status_body(agent_id, "update", update, &b);
	assert_true(b.single);
	rc = tasks_apply_status(m, agent_id, &b.updates[0], dup, err, errlen);
	status_wire_free(&b);
	return rc;
}

/* A batch of STATUS updates (a JSON array) applied the way the route applies it; the
 * answer's "results" read back as JSON. The caller holds the lock. */
static inline json_t *fx_apply_status_batch(struct master *m, const char *agent_id,
					    json_t *updates)
{
	struct status_batch b;
	json_t *answer, *results;
	char *text;

	fx_status_body(agent_id, "updates", updates, &b);
	assert_false(b.single);
	text = tasks_apply_status_batch(m, agent_id, b.updates, b.nupdates);
	assert_non_null(text);
	answer = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(answer);
	results = json_incref(json_object_get(answer, "results"));
	assert_true(json_is_array(results));
	json_decref(answer);
	free(text);
	status_wire_free(&b);
	return results;
}

#endif
