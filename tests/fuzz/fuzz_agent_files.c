/* fuzz_agent_files.c - libFuzzer target for the files a restarted agent reads back from
 * its work dir: <work-dir>/meta/tasks/<id>/task.json (checkpoint_tasks_load, then the
 * TASKINFO inside it as the relaunch reads it), <work-dir>/meta/updates/<seq>.json (the
 * status update outbox, outbox_open) and <work-dir>/agent_id (checkpoint_agent_id).
 * Input: the three file contents separated by 0xff bytes (never in valid UTF-8 JSON).
 * The work dir lives in /dev/shm so no disk is touched per input. */
/* fuzz-links: agent/checkpoint.c agent/outbox.c agent/task_info.c agent/health_def.c */
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

#define TASK_ID "team-a_web.3f0c2a4e-0000-4000-8000-000000000000"

static char work_dir[64];

static void cleanup(void)
{
	if (work_dir[0])
		remove_tree(work_dir);
}

static int setup(void)
{
	char path[256];

	log_init("fuzz", LOG_LVL_ERROR + 1);
	snprintf(work_dir, sizeof(work_dir), "/dev/shm/pacer-fuzz-XXXXXX");
	if (!mkdtemp(work_dir))
		abort();
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/meta/tasks/" TASK_ID, work_dir);
	CHECK(mkdir_p(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/meta/updates", work_dir);
	CHECK(mkdir_p(path, 0700) == 0);
	return 0;
}

static void put(const char *rel, const uint8_t *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", work_dir, rel);
	f = fopen(path, "w");
	CHECK(f);
	CHECK(len == 0 || fwrite(data, 1, len, f) == len);
	CHECK(fclose(f) == 0);
}

/* Next section of the input up to a 0xff byte (or the end). */
static const uint8_t *section(const uint8_t **data, size_t *size, size_t *len)
{
	const uint8_t *start = *data, *end = memchr(start, 0xff, *size);

	*len = end ? (size_t)(end - start) : *size;
	*data += *len + (end ? 1 : 0);
	*size -= *len + (end ? 1 : 0);
	return start;
}

static void check_record(json_t *rec)
{
	struct task_info ti;
	char err[512];

	CHECK(json_is_object(json_object_get(rec, "task")));
	if (task_info_parse(json_object_get(rec, "task"), &ti, err, sizeof(err)) == 0) {
		char **env = task_env_build(&ti, "127.0.0.1", "/sandbox");

		CHECK(env);
		strv_free(env);
		task_info_free(&ti);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once = -1;
	const uint8_t *task, *update, *agent_id;
	size_t tlen, ulen, alen;
	json_t *records = NULL, *bad = NULL, *rec;
	struct outbox o;
	char id[AGENT_ID_LEN + 1], err[512];
	const char *key;

	if (once < 0)
		once = setup();
	task = section(&data, &size, &tlen);
	update = section(&data, &size, &ulen);
	agent_id = section(&data, &size, &alen);
	put("meta/tasks/" TASK_ID "/task.json", task, tlen);
	put("meta/updates/00000000000000000007.json", update, ulen);
	put("agent_id", agent_id, alen);

	CHECK(checkpoint_tasks_load(work_dir, &records, &bad) == 0);
	CHECK(json_object_size(records) + json_array_size(bad) == 1);
	json_object_foreach(records, key, rec)
		check_record(rec);
	json_decref(records);
	json_decref(bad);

	CHECK(outbox_open(&o, work_dir) == 0);
	CHECK(o.count <= 1 && o.next_seq >= 1);
	for (struct outbox_entry *e = o.head; e; e = e->next) {
		CHECK(strlen(e->uuid) == 36 && e->task_id && e->seq == 7 && o.next_seq == 8);
		CHECK(outbox_find(&o, e->uuid) == e);
		CHECK(outbox_last_for_task(&o, e->task_id) == e);
	}
	outbox_close(&o);

	if (checkpoint_agent_id(work_dir, id, err, sizeof(err)) == 0)
		CHECK(strlen(id) == AGENT_ID_LEN && strncmp(id, "agent-", 6) == 0);
	else
		CHECK(err[0]);
	return 0;
}
