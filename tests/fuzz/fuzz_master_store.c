/* fuzz_master_store.c - libFuzzer target for the master's start-up from its store: the
 * documents a restarted master reads back (kinds agents, tasks, frameworks, apps,
 * app_versions, deployments, meta, groups), as raw text in master.db, loaded by master_load
 * and by the Marathon layer (apps_load, groups_load, deployments_load, scheduler_start),
 * then served (marathon_app_json, group_json) and put to work (an allocation cycle offers
 * to the app scheduler, whose reconcile advances the loaded deployments' steps). Task
 * records of older shapes (keyed by task id, TASKINFO inside) are rewritten at load: what
 * the master wrote must read back.
 * A damaged or hand-edited store must never crash the master.
 * Input: documents separated by 0xff bytes; a document's first byte picks its kind (and,
 * for meta, its key), the rest is the stored text. Keys are derived from the position.
 * The store lives in /dev/shm; every input starts from an empty one. */
/* fuzz-links: master/[!m]*.c master/ma[!i]*.c master/marathon/[a-z]*.c */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"
#include "master/marathon/marathon.h"
#include "master/marathon/marathon_internal.h"
#include "tests/fuzz/fuzz_common.h"

static char dir[64];
static double clock_now;
static double fake_mono(void) { return clock_now; }
static double fake_wall(void) { return 1700000000.0 + clock_now; }

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

/* Writes the raw documents next to the store's own connection. */
static void insert_docs(const uint8_t *data, size_t size)
{
	static const char *const kinds[] = { "agents", "tasks", "frameworks", "apps",
					     "app_versions", "deployments", "meta", "meta",
					     "groups" };
	char path[128], key[64];
	sqlite3_stmt *st;
	sqlite3 *db;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/master.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO objects (kind, key, value) "
				 "VALUES (?1, ?2, ?3)", -1, &st, NULL) == SQLITE_OK);
	while (size > 0) {
		const uint8_t *end = memchr(data, 0xff, size);
		size_t len = end ? (size_t)(end - data) : size;
		unsigned k = len ? data[0] % ARRAY_SIZE(kinds) : 0;

		switch (k) {
		case 0: snprintf(key, sizeof(key), "agent-fuzz%u", n % 3); break;
		case 1:         /* by task id (older masters) or by creation sequence */
			if (n % 3 == 2)
				snprintf(key, sizeof(key), "%016x", n + 1);
			else
				snprintf(key, sizeof(key), "fz_app%u.%u", n % 2, n);
			break;
		case 2: snprintf(key, sizeof(key), "fw-fuzz%u", n % 2); break;
		case 3: snprintf(key, sizeof(key), "/fz/app%u", n % 2); break;
		case 4: snprintf(key, sizeof(key), "/fz/app%u@2026-01-01T00:00:00.00%uZ", n % 2, n % 10); break;
		case 5: snprintf(key, sizeof(key), "0b7e4c1e-1111-4222-8333-44445555%04u", n % 10000); break;
		case 6: snprintf(key, sizeof(key), META_FRAMEWORK_KEY); break;
		case 7: snprintf(key, sizeof(key), "marathon_agent_ips"); break;
		default:
			if (n % 2)
				snprintf(key, sizeof(key), "/fz");
			else
				snprintf(key, sizeof(key), "/fz/g%u", n % 3);
			break;
		}
		if (len > 0) {
			sqlite3_bind_text(st, 1, kinds[k], -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, (const char *)data + 1, (int)len - 1, SQLITE_STATIC);
			CHECK(sqlite3_step(st) == SQLITE_DONE);
			sqlite3_reset(st);
		}
		n++;
		data += len + (end ? 1 : 0);
		size -= len + (end ? 1 : 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Registers an agent so the app scheduler gets offers built from what it loaded. */
static void allocate(struct master *m)
{
	json_t *body = json_pack("{s:s,s:s,s:{s:f,s:f,s:f,s:[[ii]]},s:[]}",
				 "agent_id", "agent-fuzz0", "address", "127.0.0.1:5051",
				 "resources", "cpus", 8.0, "mem", 8192.0, "disk", 1000.0,
				 "ports", 31000, 31100, "tasks");
	json_t *reply = NULL;
	char err[256];

	if (agents_register(m, body, &reply, err, sizeof(err)) == 0)
		json_decref(reply);
	json_decref(body);
	clock_now += 2;
	allocator_run(m, clock_now);
}

/* Every task the master loaded has a record it can read back from the task log under its
 * own key (the creation sequence number; the master moved the rows of kind "tasks" into
 * the log and rewrote records of older shapes: keyed by task id, or with the TASKINFO
 * inside), naming the task, without the TASKINFO; no "tasks" or "task_infos" row is left
 * in the store. */
static int count_doc(const char *key, json_t *v, void *arg)
{
	(void)key;
	(void)v;
	(*(int *)arg)++;
	return 0;
}

struct logged {
	json_t *by_key;         /* "<key>" -> the record (with its update laid over it) */
};

static int collect_logged(uint64_t key, const char *text, size_t len, const char *update,
			  size_t update_len, void *arg)
{
	struct logged *lg = arg;
	json_t *v = json_loadb(text, len, 0, NULL), *u;
	char k[32];

	CHECK(json_is_object(v));
	if (update) {
		u = json_loadb(update, update_len, 0, NULL);
		CHECK(json_is_object(u) && json_object_update(v, u) == 0);
		json_decref(u);
	}
	snprintf(k, sizeof(k), "%016" PRIx64, key);
	json_object_set_new(lg->by_key, k, v);
	return 0;
}

static void check_tasks_rewritten(struct master *m)
{
	struct logged lg = { .by_key = json_object() };
	int infos = 0, rows = 0, rc = -1;
	char path[128];
	size_t len = 0;
	char *image;

	snprintf(path, sizeof(path), "%s/tasks.log", dir);
	image = read_file(path, &len);
	CHECK(image);
	CHECK(task_log_replay_buf(image, len, collect_logged, &lg, &rc) == len && rc == 0);
	free(image);
	for (struct dlink *l = m->tasks.next; l != &m->tasks; l = l->next) {
		struct task *t = dl_entry(l, struct task, all);
		char key[32];
		json_t *v;

		CHECK(t->store_seq != 0);
		snprintf(key, sizeof(key), "%016" PRIx64, t->store_seq);
		v = json_object_get(lg.by_key, key);
		CHECK(json_is_object(v) && !json_object_get(v, "info"));
		CHECK(strcmp(json_string_value(json_object_get(v, "task_id")) ?: "",
			     t->rec.task_id) == 0);
	}
	json_decref(lg.by_key);
	store_scan(m->store, "tasks", count_doc, &rows);
	CHECK(rows == 0);
	store_scan(m->store, "task_infos", count_doc, &infos);
	CHECK(infos == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct master_config cfg = {
		.work_dir = dir, .agent_timeout = 15, .offer_timeout = 5,
		.allocation_interval = 1, .hostname = "fuzz",
	};
	struct marathon *mt;
	struct store *st;
	struct master *m;
	char err[256];
	int rc;

	if (!dir[0]) {
		log_init("fuzz", LOG_LVL_ERROR + 1);
		snprintf(dir, sizeof(dir), "/dev/shm/pacer-fuzz-XXXXXX");
		CHECK(mkdtemp(dir));
		atexit(cleanup);
	}
	wipe_store();
	clock_now = 100;
	CHECK(store_sqlite_open(dir, &st, err, sizeof(err)) == 0);
	insert_docs(data, size);
	CHECK(master_create(&cfg, st, &m) == 0);
	m->clock_mono = fake_mono;
	m->clock_wall = fake_wall;
	rc = master_load(m, err, sizeof(err));
	CHECK(rc == 0 || err[0]);
	check_tasks_rewritten(m);

	mt = calloc(1, sizeof(*mt));
	CHECK(mt);
	mt->m = m;
	mt->store = st;
	mt->events = events_create();
	CHECK(mt->events);
	master_lock(m);
	if (apps_load(mt) == 0 && groups_load(mt) == 0 && deployments_load(mt) == 0 &&
	    scheduler_start(mt, err, sizeof(err)) == 0) {
		for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
			json_decref(marathon_app_json(mt, ma, true));
		allocate(m);
		for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
			json_decref(marathon_app_json(mt, ma, true));
		json_decref(group_json(mt, "/", EMBED_APPS | EMBED_GROUPS | EMBED_TASKS));
		for (struct deployment *d = mt->deployments; d; d = d->next)
			json_decref(deployment_to_json(d));
	}
	master_unlock(m);
	marathon_stop(mt);
	master_destroy(m);
	store_close(st);
	return 0;
}
