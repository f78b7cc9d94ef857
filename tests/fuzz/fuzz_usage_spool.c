/* fuzz_usage_spool.c - libFuzzer target for the agent's usage spool file,
 * <work-dir>/meta/usage.json (agent/usage_spool.c), as a restarted agent loads it.
 * Invariants: the load never fails and keeps the bound; every batch made from what was
 * loaded is one the master accepts (a refused batch would be resent forever): task ids,
 * "final" a boolean, "at" a number, every counter a non-negative integer, one report per
 * pending entry; the batch number goes up by one per commit, across a save and reload
 * (which gives back the same entries); an acknowledgement of the batch empties the spool.
 * Input: the file's bytes. The work dir lives in /dev/shm so no disk is touched per input. */
/* fuzz-links: agent/usage_spool.c agent/task_info.c agent/health_def.c */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_ENTRIES 4

static char work_dir[64], spool_path[128];

static void cleanup(void)
{
	if (work_dir[0])
		remove_tree(work_dir);
}

static void setup(void)
{
	log_init("fuzz", LOG_LVL_ERROR + 1);
	snprintf(work_dir, sizeof(work_dir), "/dev/shm/pacer-fuzz-spool-XXXXXX");
	if (!mkdtemp(work_dir))
		abort();
	atexit(cleanup);
	snprintf(spool_path, sizeof(spool_path), "%s/meta/usage.json", work_dir);
	CHECK(mkdir_p(work_dir, 0700) == 0);
}

static void put(const uint8_t *data, size_t len)
{
	char meta[128];
	FILE *f;

	snprintf(meta, sizeof(meta), "%s/meta", work_dir);
	CHECK(mkdir_p(meta, 0700) == 0);
	f = fopen(spool_path, "w");
	CHECK(f);
	CHECK(len == 0 || fwrite(data, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

/* One report as the master's usage_apply validates it (master/usage.c). */
static void check_report(json_t *r, json_t *pending)
{
	const char *task_id = json_string_value(json_object_get(r, "task_id"));
	json_t *app = json_object_get(r, "app_id"), *v;
	const char *k;

	CHECK(task_id && task_id_valid(task_id) && json_object_get(pending, task_id));
	CHECK(!app || json_is_string(app) || json_is_null(app));
	CHECK(json_is_boolean(json_object_get(r, "final")));
	CHECK(json_is_number(json_object_get(r, "at")));
	json_object_foreach(r, k, v) {
		if (strcmp(k, "task_id") && strcmp(k, "app_id") && strcmp(k, "final") && strcmp(k, "at"))
			CHECK(json_is_integer(v) && json_integer_value(v) >= 0);
	}
}

/* A batch of every pending entry under number seq (0: none can be made). */
static void check_batch(struct usage_spool *s, uint64_t seq)
{
	json_t *b = usage_spool_batch(s, "agent-fuzz"), *r, *seen = json_object();
	size_t i;

	if (!seq) {
		CHECK(!b);
		json_decref(seen);
		return;
	}
	CHECK(b);
	CHECK((uint64_t)json_integer_value(json_object_get(b, "seq")) == seq && s->seq == seq);
	CHECK(json_array_size(json_object_get(b, "reports")) == json_object_size(s->pending));
	json_array_foreach(json_object_get(b, "reports"), i, r) {
		check_report(r, s->pending);
		CHECK(json_object_set(seen, json_string_value(json_object_get(r, "task_id")), r) == 0);
	}
	CHECK(json_object_size(seen) == json_object_size(s->pending));
	json_decref(seen);
	json_decref(b);
}

static void record(struct usage_spool *s, const char *task_id, json_int_t tx, bool final)
{
	json_t *c = json_pack("{s:I,s:I}", "tx_bytes", tx, "cpu_ns", tx * 3);

	CHECK(c);
	CHECK(usage_spool_record(s, task_id, "/team-a/web", c, final, 1700000000.5) == 0);
	json_decref(c);
	CHECK(usage_spool_count(s) <= MAX_ENTRIES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	struct usage_spool s;
	uint64_t loaded;
	json_t *saved;
	bool full;

	if (!once) {
		setup();
		once = true;
	}
	put(data, size);
	CHECK(usage_spool_open(&s, work_dir, MAX_ENTRIES) == 0);
	CHECK(usage_spool_count(&s) <= MAX_ENTRIES);
	loaded = s.seq;
	full = loaded >= INT64_MAX;     /* a damaged number: no batch can go higher */

	/* What was loaded goes out as is (nothing new recorded: the file's own number). */
	if (usage_spool_count(&s)) {
		CHECK(loaded > 0);      /* the master refuses batch number 0 */
		check_batch(&s, loaded);
	}

	/* A new reading: the next number, saved; a reload gives back the same entries. */
	record(&s, "team-a_web.fuzz-new", 10, false);
	check_batch(&s, full ? 0 : loaded + 1);
	saved = json_deep_copy(s.pending);
	usage_spool_close(&s);
	CHECK(usage_spool_open(&s, work_dir, MAX_ENTRIES) == 0);
	if (!full) {
		CHECK(s.seq == loaded + 1);
		CHECK(json_equal(saved, s.pending));

		/* A final reading: the number after that; acknowledging it empties the spool. */
		record(&s, "team-a_web.fuzz-new", 20, true);
		CHECK(usage_spool_has_final(&s, "team-a_web.fuzz-new"));
		if (loaded + 1 >= INT64_MAX) {
			check_batch(&s, 0);
			goto out;
		}
		check_batch(&s, loaded + 2);
		CHECK(usage_spool_ack(&s, loaded + 2) == 0);
		CHECK(usage_spool_count(&s) == 0);
		usage_spool_close(&s);
		CHECK(usage_spool_open(&s, work_dir, MAX_ENTRIES) == 0);
		CHECK(s.seq == loaded + 2 && usage_spool_count(&s) == 0);
	}
out:
	json_decref(saved);
	usage_spool_close(&s);
	unlink(spool_path);
	return 0;
}
