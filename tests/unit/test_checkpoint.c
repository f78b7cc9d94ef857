/* test_checkpoint.c - the agent's restart state: agent id, task records and the status
 * update outbox (order, acknowledgement, reload after a restart, damaged files). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "lib/util.h"

static int setup_dir(void **state)
{
	char *dir = strdup("/tmp/pacer-test-checkpoint-XXXXXX");

	if (!dir || !mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int teardown_dir(void **state)
{
	remove_tree(*state);
	free(*state);
	return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[4096];

	assert_int_equal(path_join(path, sizeof(path), "%s/%s", dir, name), 0);
	assert_int_equal(write_file_atomic(path, text, strlen(text)), 0);
}

static json_t *update(const char *task_id, const char *state)
{
	char uuid[37];

	uuid_v4(uuid);
	return json_pack("{s:s, s:s, s:s, s:s}", "uuid", uuid, "task_id", task_id, "state", state,
			 "framework_id", "fw");
}

/* ---- agent id ---- */

static void test_agent_id_created_once(void **state)
{
	char id1[AGENT_ID_LEN + 1], id2[AGENT_ID_LEN + 1], err[256];

	assert_int_equal(checkpoint_agent_id(*state, id1, err, sizeof(err)), 0);
	assert_int_equal(strlen(id1), AGENT_ID_LEN);
	assert_memory_equal(id1, "agent-", 6);
	for (int i = 6; i < AGENT_ID_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", id1[i]));
	assert_int_equal(checkpoint_agent_id(*state, id2, err, sizeof(err)), 0);
	assert_string_equal(id1, id2);
}

static void test_agent_id_accepts_trailing_newline(void **state)
{
	char id[AGENT_ID_LEN + 1], err[256];

	write_text(*state, "agent_id", "agent-0123456789ab\n");
	assert_int_equal(checkpoint_agent_id(*state, id, err, sizeof(err)), 0);
	assert_string_equal(id, "agent-0123456789ab");
}

static void test_agent_id_corrupt_is_refused(void **state)
{
	char id[AGENT_ID_LEN + 1], err[256] = "";

	write_text(*state, "agent_id", "agent-XYZ");
	assert_int_equal(checkpoint_agent_id(*state, id, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "agent_id"));
}

/* ---- task records ---- */

static void test_task_save_load_remove(void **state)
{
	json_t *rec = json_pack("{s:s, s:{s:s}, s:s, s:i}", "framework_id", "fw",
				"task", "task_id", "web.1", "state", "TASK_RUNNING", "executor_pid", 42);
	json_t *records, *bad;
	char dir[4096];
	struct stat st;

	assert_int_equal(checkpoint_task_save(*state, "web.1", rec), 0);
	assert_int_equal(checkpoint_tasks_load(*state, &records, &bad), 0);
	assert_int_equal(json_object_size(records), 1);
	assert_int_equal(json_array_size(bad), 0);
	assert_true(json_equal(json_object_get(records, "web.1"), rec));
	json_decref(records);
	json_decref(bad);

	/* The run dir lives inside the task dir and goes with it. */
	assert_int_equal(checkpoint_run_dir(*state, "web.1", dir, sizeof(dir)), 0);
	assert_int_equal(mkdir_p(dir, 0700), 0);
	assert_int_equal(checkpoint_task_remove(*state, "web.1"), 0);
	assert_int_equal(checkpoint_task_dir(*state, "web.1", dir, sizeof(dir)), 0);
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(checkpoint_task_remove(*state, "web.1"), 0);   /* idempotent */
	assert_int_equal(checkpoint_tasks_load(*state, &records, &bad), 0);
	assert_int_equal(json_object_size(records), 0);
	json_decref(records);
	json_decref(bad);
	json_decref(rec);
}

static void test_task_load_reports_damaged(void **state)
{
	json_t *rec = json_pack("{s:s, s:{s:s}}", "framework_id", "fw", "task", "task_id", "ok.1");
	json_t *records, *bad;
	char dir[4096];

	assert_int_equal(checkpoint_task_save(*state, "ok.1", rec), 0);
	/* truncated JSON */
	assert_int_equal(checkpoint_task_dir(*state, "broken.1", dir, sizeof(dir)), 0);
	assert_int_equal(mkdir_p(dir, 0700), 0);
	write_text(dir, "task.json", "{\"task\": {");
	/* a directory without a record */
	assert_int_equal(checkpoint_task_dir(*state, "empty.1", dir, sizeof(dir)), 0);
	assert_int_equal(mkdir_p(dir, 0700), 0);

	assert_int_equal(checkpoint_tasks_load(*state, &records, &bad), 0);
	assert_int_equal(json_object_size(records), 1);
	assert_non_null(json_object_get(records, "ok.1"));
	assert_int_equal(json_array_size(bad), 2);
	json_decref(records);
	json_decref(bad);
	json_decref(rec);
}

static void test_task_load_without_meta(void **state)
{
	json_t *records, *bad;

	assert_int_equal(checkpoint_tasks_load(*state, &records, &bad), 0);
	assert_int_equal(json_object_size(records), 0);
	json_decref(records);
	json_decref(bad);
}

/* ---- outbox ---- */

static void test_outbox_order_survives_reopen(void **state)
{
	struct outbox o;
	const char *states[] = { "TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED" };
	char uuids[3][37];

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(o.count, 0);
	for (int i = 0; i < 3; i++) {
		json_t *u = update(i == 1 ? "b.1" : "a.1", states[i]);

		assert_int_equal(outbox_add(&o, u), 0);
		strcpy(uuids[i], json_string_value(json_object_get(u, "uuid")));
		json_decref(u);
	}
	assert_int_equal(outbox_count_task(&o, "a.1"), 2);
	assert_int_equal(outbox_last_for_task(&o, "a.1")->state, TASK_FINISHED);
	outbox_close(&o);

	/* A restarted agent finds the same updates, oldest first, and keeps numbering. */
	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(o.count, 3);
	assert_string_equal(o.head->uuid, uuids[0]);
	assert_string_equal(o.head->next->uuid, uuids[1]);
	assert_string_equal(o.tail->uuid, uuids[2]);
	assert_int_equal(o.head->state, TASK_STARTING);
	assert_string_equal(o.head->next->task_id, "b.1");
	assert_true(o.next_seq > o.tail->seq);
	{
		json_t *u = update("c.1", "TASK_RUNNING");
		uint64_t last = o.tail->seq;

		assert_int_equal(outbox_add(&o, u), 0);
		assert_true(o.tail->seq > last);
		json_decref(u);
	}
	assert_int_equal(o.count, 4);
	outbox_close(&o);
}

static void test_outbox_ack_deletes(void **state)
{
	struct outbox o;
	json_t *u1 = update("a.1", "TASK_RUNNING"), *u2 = update("a.1", "TASK_KILLED");
	const char *uuid1 = json_string_value(json_object_get(u1, "uuid"));

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(outbox_add(&o, u1), 0);
	assert_int_equal(outbox_add(&o, u2), 0);
	assert_int_equal(outbox_ack(&o, uuid1), 0);
	assert_int_equal(outbox_ack(&o, uuid1), -ENOENT);    /* a repeated ack */
	assert_null(outbox_find(&o, uuid1));
	assert_int_equal(o.count, 1);
	assert_ptr_equal(o.head, o.tail);
	outbox_close(&o);

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(o.count, 1);
	assert_string_equal(o.head->uuid, json_string_value(json_object_get(u2, "uuid")));
	assert_int_equal(outbox_ack(&o, o.head->uuid), 0);
	assert_null(o.head);
	assert_null(o.tail);
	outbox_close(&o);

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(o.count, 0);
	outbox_close(&o);
	json_decref(u1);
	json_decref(u2);
}

static void test_outbox_rejects_incomplete_update(void **state)
{
	struct outbox o;
	json_t *u = json_pack("{s:s}", "task_id", "a.1");

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(outbox_add(&o, u), -EINVAL);
	assert_int_equal(o.count, 0);
	outbox_close(&o);
	json_decref(u);
}

static void test_outbox_skips_damaged_and_temp_files(void **state)
{
	struct outbox o;
	json_t *u = update("a.1", "TASK_RUNNING");
	char dir[4096], path[4096];
	struct stat st;

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(outbox_add(&o, u), 0);
	outbox_close(&o);
	assert_int_equal(path_join(dir, sizeof(dir), "%s/meta/updates", (char *)*state), 0);
	write_text(dir, "00000000000000000007.json", "{not json");
	write_text(dir, "00000000000000000008.json", "{\"task_id\":\"x\"}");
	write_text(dir, ".00000000000000000009.json.tmp", "{}");

	assert_int_equal(outbox_open(&o, *state), 0);
	assert_int_equal(o.count, 1);
	assert_string_equal(o.head->uuid, json_string_value(json_object_get(u, "uuid")));
	assert_true(o.next_seq >= 2);
	outbox_close(&o);
	/* damaged updates are removed so they cannot block the outbox again */
	assert_int_equal(path_join(path, sizeof(path), "%s/00000000000000000007.json", dir), 0);
	assert_int_equal(stat(path, &st), -1);
	json_decref(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_id_created_once, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_agent_id_accepts_trailing_newline, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_agent_id_corrupt_is_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_task_save_load_remove, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_task_load_reports_damaged, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_task_load_without_meta, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_outbox_order_survives_reopen, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_outbox_ack_deletes, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_outbox_rejects_incomplete_update, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_outbox_skips_damaged_and_temp_files, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
