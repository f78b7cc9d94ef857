/* test_cgroup.c - agent/cgroup_fs.h against the host's real cgroup hierarchies (root):
 * layout detection, create / limit / attach / signal / remove, and the counters. Every
 * cgroup lives under pacer/test-cg-<random>/ and is removed in the teardown, also when a
 * test fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <unistd.h>

#include "agent/cgroup_fs.h"
#include "lib/log.h"
#include "lib/util.h"

static struct cgroup_layout layout;
static char base[128];              /* pacer/test-cg-<hex> */

static void rel_of(char *out, size_t len, const char *name)
{
	assert_int_equal(path_join(out, len, "%s/%s", base, name), 0);
}

static char *knob(const char *root, const char *rel, const char *file)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), "%s/%s/%s", root, rel, file))
		return NULL;
	return read_file(path, NULL);
}

static int group_setup(void **state)
{
	char err[256], hex[9];

	(void)state;
	log_init("test_cgroup", LOG_LVL_WARN);
	if (cgroup_layout_detect(&layout, err, sizeof(err))) {
		fprintf(stderr, "cgroup layout: %s\n", err);
		return -1;
	}
	random_hex(hex, 8);
	snprintf(base, sizeof(base), "pacer/test-cg-%s", hex);
	return 0;
}

static int group_teardown(void **state)
{
	char **names, rel[PATH_MAX], path[PATH_MAX];
	size_t n;

	(void)state;
	if (cgroup_children(&layout, base, &names, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!path_join(rel, sizeof(rel), "%s/%s", base, names[i]))
				cgroup_remove(&layout, rel, 5);
		cgroup_free_names(names, n);
	}
	/* A child made in only one hierarchy (a failed test) is removed there too. */
	for (int i = 0; i < layout.nroots; i++) {
		static const char *const leftovers[] = { "limits", "a", "b", "busy" };

		for (size_t k = 0; k < ARRAY_SIZE(leftovers); k++)
			if (!path_join(path, sizeof(path), "%s/%s/%s", layout.roots[i], base, leftovers[k]))
				rmdir(path);
		if (!path_join(path, sizeof(path), "%s/%s", layout.roots[i], base))
			rmdir(path);
		if (!path_join(path, sizeof(path), "%s/pacer", layout.roots[i]))
			rmdir(path);    /* fails while other agents use it: fine */
	}
	return cgroup_exists(&layout, base) ? -1 : 0;
}

static void test_layout_matches_mounts(void **state)
{
	struct statfs st;
	bool pure_v2;

	(void)state;
	pure_v2 = statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
	assert_true(layout.unified[0]);
	assert_ptr_equal(layout.roots[0], layout.unified);
	if (pure_v2) {
		assert_int_equal(layout.mode, CGROUP_MODE_V2);
		assert_int_equal(layout.nroots, 1);
		assert_string_equal(cgroup_mode_name(layout.mode), "v2");
	} else {
		assert_int_equal(layout.mode, CGROUP_MODE_HYBRID);
		assert_true(layout.v1[CG_V1_MEMORY][0]);
		assert_true(layout.v1[CG_V1_CPU][0]);
		assert_true(layout.nroots >= 3);
		assert_string_equal(cgroup_mode_name(layout.mode), "hybrid");
		for (int i = 1; i < layout.nroots; i++)
			assert_true(statfs(layout.roots[i], &st) == 0 && st.f_type == CGROUP_SUPER_MAGIC);
	}
}

static void test_create_and_limits(void **state)
{
	char rel[PATH_MAX], dir[PATH_MAX], *v;
	struct stat st;
	uint64_t id = 0, ooms = 99;

	(void)state;
	rel_of(rel, sizeof(rel), "limits");
	assert_int_equal(cgroup_create(&layout, rel), 0);
	assert_true(cgroup_exists(&layout, rel));
	for (int i = 0; i < layout.nroots; i++) {
		assert_int_equal(path_join(dir, sizeof(dir), "%s/%s", layout.roots[i], rel), 0);
		assert_int_equal(stat(dir, &st), 0);
	}
	assert_int_equal(cgroup_set_limits(&layout, rel, 0.5, 64ULL << 20), 0);
	if (layout.mode == CGROUP_MODE_V2) {
		v = knob(layout.unified, rel, "cpu.max");
		assert_string_equal(v, "50000 100000\n");
		free(v);
		v = knob(layout.unified, rel, "cpu.weight");
		assert_string_equal(v, "50\n");
		free(v);
		v = knob(layout.unified, rel, "memory.max");
		assert_string_equal(v, "67108864\n");
		free(v);
	} else {
		v = knob(layout.v1[CG_V1_CPU], rel, "cpu.cfs_quota_us");
		assert_string_equal(v, "50000\n");
		free(v);
		v = knob(layout.v1[CG_V1_CPU], rel, "cpu.shares");
		assert_string_equal(v, "512\n");
		free(v);
		v = knob(layout.v1[CG_V1_MEMORY], rel, "memory.limit_in_bytes");
		assert_string_equal(v, "67108864\n");
		free(v);
	}
	/* A fresh cgroup has seen no OOM kill; its id is the cgroup2 directory's inode. */
	assert_int_equal(cgroup_oom_kills(&layout, rel, &ooms), 0);
	assert_int_equal(ooms, 0);
	assert_int_equal(cgroup_id(&layout, rel, &id), 0);
	assert_int_equal(cgroup_unified_dir(&layout, rel, dir, sizeof(dir)), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(id, (uint64_t)st.st_ino);
	assert_int_equal(cgroup_remove(&layout, rel, 5), 0);
	assert_false(cgroup_exists(&layout, rel));
	/* Removing what is not there is fine; signalling it is not. */
	assert_int_equal(cgroup_remove(&layout, rel, 1), 0);
	assert_int_equal(cgroup_signal(&layout, rel, SIGTERM), -ENOENT);
	assert_int_equal(cgroup_signal(&layout, rel, SIGKILL), -ENOENT);
}

static pid_t spawn_child(bool busy)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			if (!busy)
				pause();
	}
	return pid;
}

/* A child that, once told (after it was attached), touches 8 MiB and then spins. */
static pid_t spawn_hungry_child(int *go_fd)
{
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;

		close(fds[1]);
		if (read(fds[0], &c, 1) == 1) {
			volatile char *mem = malloc(8 << 20);

			for (size_t i = 0; mem && i < (8 << 20); i += 4096)
				mem[i] = 1;
		}
		for (;;)
			;
	}
	close(fds[0]);
	*go_fd = fds[1];
	return pid;
}

static bool has_pid(const char *rel, pid_t pid)
{
	pid_t *pids;
	size_t n;
	bool found = false;

	assert_int_equal(cgroup_pids(&layout, rel, &pids, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			found = true;
	free(pids);
	return found;
}

/* Attach puts the process in every hierarchy; remove of a populated cgroup kills it. */
static void test_attach_signal_remove(void **state)
{
	char rel[PATH_MAX], path[64], *text;
	pid_t a, b;
	int status;

	(void)state;
	rel_of(rel, sizeof(rel), "a");
	assert_int_equal(cgroup_create(&layout, rel), 0);
	a = spawn_child(false);
	b = spawn_child(false);
	assert_int_equal(cgroup_attach(&layout, rel, a), 0);
	assert_int_equal(cgroup_attach(&layout, rel, b), 0);
	assert_true(has_pid(rel, a));
	assert_true(has_pid(rel, b));
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)a);
	text = read_file(path, NULL);
	assert_non_null(text);
	/* One line per hierarchy ("N:ctrl:/<rel>"): every root the layout uses lists rel. */
	char line[PATH_MAX + 8];
	int lines = 0;

	assert_int_equal(path_join(line, sizeof(line), ":/%s\n", rel), 0);
	for (char *p = strstr(text, line); p; p = strstr(p + 1, line))
		lines++;
	assert_true(lines >= layout.nroots);
	free(text);
	/* SIGTERM to the cgroup reaches both. */
	assert_int_equal(cgroup_signal(&layout, rel, SIGTERM), 2);
	assert_int_equal(waitpid(a, &status, 0), a);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	assert_int_equal(waitpid(b, &status, 0), b);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

	a = spawn_child(false);
	assert_int_equal(cgroup_attach(&layout, rel, a), 0);
	assert_int_equal(cgroup_remove(&layout, rel, 5), 0);
	assert_int_equal(waitpid(a, &status, 0), a);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_false(cgroup_exists(&layout, rel));
}

static void test_children_and_usage(void **state)
{
	char rel_a[PATH_MAX], rel_b[PATH_MAX], **names;
	uint64_t ns = 0, mem = 0;
	size_t n;
	pid_t busy;
	int status, seen = 0, go;

	(void)state;
	rel_of(rel_a, sizeof(rel_a), "busy");
	rel_of(rel_b, sizeof(rel_b), "b");
	assert_int_equal(cgroup_create(&layout, rel_a), 0);
	assert_int_equal(cgroup_create(&layout, rel_b), 0);
	assert_int_equal(cgroup_children(&layout, base, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		seen += !strcmp(names[i], "busy") || !strcmp(names[i], "b");
	cgroup_free_names(names, n);
	assert_int_equal(seen, 2);

	busy = spawn_hungry_child(&go);
	assert_int_equal(cgroup_attach(&layout, rel_a, busy), 0);
	assert_int_equal(write(go, "g", 1), 1);
	close(go);
	for (double deadline = now_mono() + 5; ns < 20 * 1000 * 1000 || mem < (8 << 20);) {
		assert_int_equal(cgroup_cpu_ns(&layout, rel_a, &ns), 0);
		assert_int_equal(cgroup_mem_bytes(&layout, rel_a, &mem), 0);
		if (now_mono() > deadline)
			fail_msg("cpu %llu ns, memory %llu bytes", (unsigned long long)ns,
				 (unsigned long long)mem);
	}
	assert_int_equal(cgroup_signal(&layout, rel_a, SIGKILL), 1);
	assert_int_equal(waitpid(busy, &status, 0), busy);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_int_equal(cgroup_remove(&layout, rel_a, 5), 0);
	assert_int_equal(cgroup_remove(&layout, rel_b, 5), 0);
}

static void test_read_keyed(void **state)
{
	char path[] = "/tmp/pacer-keyed-XXXXXX";
	uint64_t v = 0;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n", 42), 42);
	close(fd);
	assert_int_equal(cgroup_read_keyed(path, "oom_kill", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(cgroup_read_keyed(path, "under_oom", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cgroup_read_keyed(path, "oom", &v), -ENOENT);
	unlink(path);
	assert_int_equal(cgroup_read_keyed(path, "oom_kill", &v), -ENOENT);
}

/* The pure v2 layout cannot run on a hybrid host (its controllers are bound to v1), so its
 * file formats are checked on a plain directory laid out like a v2 cgroup. */
static void test_v2_knob_formats(void **state)
{
	static const char *const files[] = { "cpu.weight", "cpu.max", "memory.max", "cgroup.procs" };
	struct cgroup_layout v2 = { .mode = CGROUP_MODE_V2 };
	char root[] = "/tmp/pacer-fakecg-XXXXXX", path[PATH_MAX], *v;
	uint64_t n = 0;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(v2.unified, sizeof(v2.unified), "%s", root);
	v2.roots[0] = v2.unified;
	v2.nroots = 1;
	assert_int_equal(path_join(path, sizeof(path), "%s/t", root), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		assert_int_equal(path_join(path, sizeof(path), "%s/t/%s", root, files[i]), 0);
		assert_int_equal(write_file_atomic(path, "", 0), 0);
	}
	assert_int_equal(path_join(path, sizeof(path), "%s/t/memory.events", root), 0);
	assert_int_equal(write_file_atomic(path, "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n", 36), 0);
	assert_int_equal(path_join(path, sizeof(path), "%s/t/cpu.stat", root), 0);
	assert_int_equal(write_file_atomic(path, "usage_usec 1500\nuser_usec 1000\n", 32), 0);

	/* memory.swap.max is absent (no swap): not an error. */
	assert_int_equal(cgroup_set_limits(&v2, "t", 1.5, 128ULL << 20), 0);
	v = knob(root, "t", "cpu.max");
	assert_string_equal(v, "150000 100000");
	free(v);
	v = knob(root, "t", "cpu.weight");
	assert_string_equal(v, "150");
	free(v);
	v = knob(root, "t", "memory.max");
	assert_string_equal(v, "134217728");
	free(v);
	assert_int_equal(cgroup_oom_kills(&v2, "t", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(cgroup_cpu_ns(&v2, "t", &n), 0);
	assert_int_equal(n, 1500000);
	assert_int_equal(cgroup_oom_file(&v2, "t", path, sizeof(path)), 0);
	assert_non_null(strstr(path, "/t/memory.events"));
	assert_int_equal(remove_tree(root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_matches_mounts),
		cmocka_unit_test(test_create_and_limits),
		cmocka_unit_test(test_attach_signal_remove),
		cmocka_unit_test(test_children_and_usage),
		cmocka_unit_test(test_read_keyed),
		cmocka_unit_test(test_v2_knob_formats),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_cgroup needs root; run it as root\n");
		return 1; /* never count a test that did not run as passed */
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
