/* fuzz_exec_spec.c - libFuzzer target for pacer-executor's launch spec
 * (<run_dir>/spec.json, written by the containerizer and read back by the executor, also
 * after an agent restart): exec_spec_load. A spec it accepts must give a non-empty argv,
 * an environment with PATH, the paths it needs and only known namespace flags. The file
 * lives in /dev/shm so no disk is touched per input. */
/* fuzz-links: agent/executor/spec.c */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/executor/executor.h"
#include "tests/fuzz/fuzz_common.h"

static char path[64];

static void cleanup(void)
{
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const int known = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
	struct exec_spec s;
	char err[1024] = "";
	size_t n;
	FILE *f;
	bool has_path = false;

	if (!path[0]) {
		int fd;

		snprintf(path, sizeof(path), "/dev/shm/pacer-fuzz-spec-XXXXXX");
		fd = mkstemp(path);
		CHECK(fd >= 0);
		close(fd);
		atexit(cleanup);
	}
	f = fopen(path, "w");
	CHECK(f);
	CHECK(size == 0 || fwrite(data, 1, size, f) == size);
	CHECK(fclose(f) == 0);

	if (exec_spec_load(path, &s, err, sizeof(err))) {
		CHECK(err[0] && !s.root && !s.argv);
		return 0;
	}
	CHECK(s.task_id && s.sandbox && s.run_dir && s.command);
	CHECK(s.argv && s.argv[0] && s.env && s.cgroups);
	for (n = 0; s.env[n]; n++)
		has_path = has_path || strncmp(s.env[n], "PATH=", 5) == 0;
	CHECK(has_path);
	for (n = 0; s.argv[n]; n++)
		;
	if (s.shell)
		CHECK(n == 3 && strcmp(s.argv[2], s.command) == 0);
	CHECK((s.clone_flags & ~known) == 0);
	exec_spec_free(&s);
	return 0;
}
