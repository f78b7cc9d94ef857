/* fuzz_exit_files.c - libFuzzer target for the files the executor leaves in a task's run
 * dir for a restarted agent: exit.json (container_exit_from_json, what read_exit in
 * agent/containerizer.c does with it) and executor.json (executor_pid_from_json, what
 * agent/recover.c uses when task.json has no pid). Both are parsed as json_load_file does
 * (flags 0). Invariants: an accepted exit.json gives back exactly its fields (no integer
 * silently cut to int) and a terminated message; a refused one reads as "lost" (not
 * exited, code -1, a message); the pid is the document's when that is a pid, else 0.
 * Input: the two file contents separated by a 0xff byte (never in valid UTF-8 JSON). */
/* fuzz-links: agent/[!bim]*.c agent/bpf_common.c agent/isolator_[!b]*.c agent/m[!a]*.c agent/ma[!i]*.c */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/containerizer.h"
#include "agent/isolator.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz_common.h"

/* Link-time only: the BPF isolator needs a generated skeleton the fuzz build does not make,
 * and no containerizer is ever created here. */
const struct isolator_ops isolator_bpf_net;

static void check_exit(const uint8_t *data, size_t len)
{
	json_t *j = json_loadb((const char *)data, len, 0, NULL);
	struct container_exit e;
	int rc;

	memset(&e, 0xa5, sizeof(e));
	rc = container_exit_from_json(j, &e);
	CHECK(memchr(e.message, '\0', sizeof(e.message)));
	if (rc) {
		CHECK(rc == -EINVAL && !e.exited && e.exit_code == -1 && !e.signal && !e.oom_killed);
		CHECK(e.message[0]);
	} else {
		const char *msg = json_string_value(json_object_get(j, "message"));

		CHECK(e.exited == json_is_true(json_object_get(j, "exited")));
		CHECK(e.oom_killed == json_is_true(json_object_get(j, "oom_killed")));
		CHECK(e.exit_code == json_integer_value(json_object_get(j, "exit_code")));
		CHECK(e.signal == json_integer_value(json_object_get(j, "signal")) && e.signal >= 0);
		CHECK(strncmp(e.message, msg ? msg : "", sizeof(e.message) - 1) == 0);
	}
	json_decref(j);
}

static void check_pid(const uint8_t *data, size_t len)
{
	json_t *j = json_loadb((const char *)data, len, 0, NULL);
	json_t *v = json_object_get(j, "pid");
	json_int_t want = json_integer_value(v);
	pid_t pid = executor_pid_from_json(j);

	if (json_is_integer(v) && want > 0 && want <= INT_MAX)
		CHECK(pid == want);
	else
		CHECK(pid == 0);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep = memchr(data, 0xff, size);
	size_t first = sep ? (size_t)(sep - data) : size;
	static bool once;

	if (!once) {
		log_init("fuzz", LOG_LVL_ERROR + 1);
		once = true;
	}
	check_exit(data, first);
	if (sep)
		check_pid(sep + 1, size - first - 1);
	return 0;
}
