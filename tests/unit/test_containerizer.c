/* test_containerizer.c - the containerizer against the real kernel (root): tasks run
 * through pacer-executor in their namespaces and cgroups, with the BPF counters attached.
 * Everything is made under a fresh agent id and purged in the group teardown, also when a
 * test fails. The executor is $PACER_EXECUTOR or ../pacer-executor next to this binary. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/containerizer.h"
#include "lib/log.h"
#include "lib/util.h"

#define MiB (1024ULL * 1024ULL)

static struct containerizer *cz;
static struct containerizer_config cfg;
static char work_dir[PATH_MAX];
static char agent_id[64];
static char executor[PATH_MAX];
static char bpffs[PATH_MAX] = "/sys/fs/bpf";

struct task_dirs {
	char id[128];
	char sandbox[PATH_MAX];
	char run[PATH_MAX];
};

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void find_executor(void)
{
	const char *env = getenv("PACER_EXECUTOR");
	char self[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(executor, sizeof(executor), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(executor, sizeof(executor), "%s/../pacer-executor", dirname(self));
}

static int group_setup(void **state)
{
	char err[512] = "";
	char hex[9];

	(void)state;
	log_init("test_containerizer", LOG_LVL_WARN);
	find_executor();
	if (access(executor, X_OK)) {
		fprintf(stderr, "pacer-executor not found at %s (build it, or set PACER_EXECUTOR)\n",
			executor);
		return -1;
	}
	snprintf(work_dir, sizeof(work_dir), "/tmp/pacer-ctest-XXXXXX");
	if (!mkdtemp(work_dir))
		return -1;
	random_hex(hex, 8);
	snprintf(agent_id, sizeof(agent_id), "test-%s", hex);
	cfg = (struct containerizer_config){ .agent_id = agent_id, .work_dir = work_dir,
					     .executor_path = executor, .bpffs = bpffs };
	if (containerizer_create(&cfg, &cz, err, sizeof(err))) {
		fprintf(stderr, "containerizer_create: %s\n", err);
		remove_tree(work_dir);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	char path[PATH_MAX];
	struct stat st;
	int rc = 0;

	(void)state;
	/* A test that failed between destroy and create (a "restart") left no containerizer. */
	if (!cz && containerizer_create(&cfg, &cz, path, sizeof(path)))
		fprintf(stderr, "cannot purge agent %s: %s\n", agent_id, path);
	if (cz) {
		containerizer_purge(cz);
		containerizer_destroy(cz);
		cz = NULL;
	}
	path_join(path, sizeof(path), "%s/pacer/%s", bpffs, agent_id);
	if (stat(path, &st) == 0) {
		fprintf(stderr, "leftover pins in %s\n", path);
		rc = -1;
	}
	remove_tree(work_dir);
	return rc;
}

/* A test that failed in the middle of a "restart" must not fail the ones after it. */
static int ensure_containerizer(void **state)
{
	char err[512];

	(void)state;
	if (cz)
		return 0;
	if (containerizer_create(&cfg, &cz, err, sizeof(err))) {
		fprintf(stderr, "containerizer_create: %s\n", err);
		return -1;
	}
	return 0;
}

static void make_dirs(struct task_dirs *d, const char *name)
{
	char hex[9];

	random_hex(hex, 8);
	snprintf(d->id, sizeof(d->id), "%s.%s", name, hex);
	assert_int_equal(path_join(d->sandbox, sizeof(d->sandbox), "%s/sandboxes/%s", work_dir, d->id), 0);
	assert_int_equal(path_join(d->run, sizeof(d->run), "%s/run/%s", work_dir, d->id), 0);
	assert_int_equal(mkdir_p(d->sandbox, 0755), 0);
	assert_int_equal(mkdir_p(d->run, 0755), 0);
}

static struct container_spec shell_spec(const struct task_dirs *d, const char *cmd)
{
	return (struct container_spec){ .task_id = d->id, .sandbox_dir = d->sandbox,
					.run_dir = d->run, .shell = true, .command = cmd,
					.cpus = 0.5, .mem_bytes = 64 * MiB };
}

static pid_t launch(const struct container_spec *spec)
{
	char err[512] = "";
	pid_t pid = 0;
	int rc = containerizer_launch(cz, spec, &pid, err, sizeof(err));

	if (rc)
		fail_msg("launch of %s failed: %d %s", spec->task_id, rc, err);
	assert_true(pid > 0);
	return pid;
}

static void wait_exit(const char *id, double timeout, struct container_exit *e)
{
	double deadline = now_mono() + timeout;

	for (;;) {
		int rc = containerizer_poll(cz, id, e);

		assert_true(rc >= 0);
		if (rc == 1)
			return;
		if (now_mono() > deadline)
			fail_msg("task %s did not end within %.1f s", id, timeout);
		sleep_ms(10);
	}
}

static char *sandbox_file(const struct task_dirs *d, const char *name)
{
	char path[PATH_MAX];

	if (path_join(path, sizeof(path), "%s/%s", d->sandbox, name))
		return NULL;
	return read_file(path, NULL);
}

static bool listed(const char *id)
{
	json_t *ids = containerizer_list(cz), *v;
	bool found = false;
	size_t i;

	json_array_foreach(ids, i, v)
		if (!strcmp(json_string_value(v), id))
			found = true;
	json_decref(ids);
	return found;
}

static void cleanup_task(const struct task_dirs *d)
{
	assert_int_equal(containerizer_cleanup(cz, d->id), 0);
	assert_false(listed(d->id));
}

static void test_echo_to_stdout(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	char path[PATH_MAX], *out;
	json_t *j;

	(void)state;
	make_dirs(&d, "echo");
	spec = shell_spec(&d, "echo hello-pacer; echo oops >&2");
	launch(&spec);
	assert_true(listed(d.id));
	wait_exit(d.id, 10, &e);
	assert_true(e.exited);
	assert_int_equal(e.exit_code, 0);
	assert_int_equal(e.signal, 0);
	assert_false(e.oom_killed);
	out = sandbox_file(&d, "stdout");
	assert_non_null(out);
	assert_string_equal(out, "hello-pacer\n");
	free(out);
	out = sandbox_file(&d, "stderr");
	assert_non_null(out);
	assert_string_equal(out, "oops\n");
	free(out);
	assert_int_equal(path_join(path, sizeof(path), "%s/exit.json", d.run), 0);
	j = json_load_file(path, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 0);
	assert_true(json_is_true(json_object_get(j, "exited")));
	json_decref(j);
	cleanup_task(&d);
}

static void test_exit_code_env_and_argv(void **state)
{
	static const char *const envp[] = { "GREETING=hi there", NULL };
	static const char *const argv[] = { "/bin/sh", "-c", "echo \"$GREETING\" $0; exit 3", "zero", NULL };
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	char *out;

	(void)state;
	make_dirs(&d, "argv");
	spec = shell_spec(&d, "/bin/sh");
	spec.shell = false;
	spec.argv = argv;
	spec.envp = envp;
	launch(&spec);
	wait_exit(d.id, 10, &e);
	assert_true(e.exited);
	assert_int_equal(e.exit_code, 3);
	assert_non_null(strstr(e.message, "3"));
	out = sandbox_file(&d, "stdout");
	assert_non_null(out);
	assert_string_equal(out, "hi there zero\n");
	free(out);
	cleanup_task(&d);
}

static void test_exec_failure_is_reported(void **state)
{
	static const char *const argv[] = { "/nonexistent/pacer-prog", NULL };
	struct container_spec spec;
	struct task_dirs d;
	char err[512] = "";
	pid_t pid = 0;
	int rc;

	(void)state;
	make_dirs(&d, "noexec");
	spec = shell_spec(&d, argv[0]);
	spec.shell = false;
	spec.argv = argv;
	rc = containerizer_launch(cz, &spec, &pid, err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/pacer-prog"));
	/* A failed launch leaves nothing behind. */
	assert_false(listed(d.id));
	assert_int_equal(containerizer_poll(cz, d.id, &(struct container_exit){ 0 }), -ENOENT);
}

static void test_bad_task_id_rejected(void **state)
{
	struct task_dirs d;
	struct container_spec spec;
	char err[512] = "";
	pid_t pid;

	(void)state;
	make_dirs(&d, "badid");
	spec = shell_spec(&d, "true");
	spec.task_id = "../escape";
	assert_int_equal(containerizer_launch(cz, &spec, &pid, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "../escape"));
}

/* The task sees only its own processes (PID 1 = init, then the command), its own hostname,
 * and a private /tmp: host files there are hidden, its own files do not reach the host. */
static void test_namespaces(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	char *out, *line, *save = NULL;
	char marker[PATH_MAX], host_marker[PATH_MAX];
	int lines = 0;

	(void)state;
	make_dirs(&d, "ns");
	snprintf(marker, sizeof(marker), "/tmp/pacer-ns-marker-%s", d.id);
	snprintf(host_marker, sizeof(host_marker), "/tmp/pacer-host-marker-%s", d.id);
	assert_int_equal(write_file_atomic(host_marker, "x", 1), 0);
	char cmd[PATH_MAX + 1024];

	snprintf(cmd, sizeof(cmd), "hostname > hostname.txt; touch %s; ls %s > tmp.txt; "
		 "ps -e -o pid= -o comm=", marker, "/tmp");
	spec = shell_spec(&d, cmd);
	spec.hostname = "pacer-test-host";
	launch(&spec);
	wait_exit(d.id, 10, &e);
	assert_true(e.exited);
	assert_int_equal(e.exit_code, 0);
	out = sandbox_file(&d, "stdout");
	assert_non_null(out);
	/* Only init (PID 1), the shell and ps itself - none of the host's processes. */
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int pid = atoi(line);

		lines++;
		if (lines == 1 && (pid != 1 || !strstr(line, "pacer-executor")))
			fail_msg("PID 1 in the container is not its init: %s", line);
		if (lines > 3)
			fail_msg("the container sees a process besides init, sh and ps: %s", line);
	}
	assert_true(lines >= 2);
	free(out);
	out = sandbox_file(&d, "hostname.txt");
	assert_non_null(out);
	assert_string_equal(out, "pacer-test-host\n");
	free(out);
	/* The file went to the private /tmp, which started empty and is gone with the task. */
	out = sandbox_file(&d, "tmp.txt");
	assert_non_null(out);
	assert_non_null(strstr(out, "pacer-ns-marker"));
	assert_null(strstr(out, "pacer-host-marker"));
	free(out);
	assert_int_equal(access(marker, F_OK), -1);
	unlink(host_marker);
	cleanup_task(&d);
}

/* The command runs in the task's cgroup in every hierarchy, and the init was born in its
 * cgroup2 cgroup (clone3 CLONE_INTO_CGROUP) instead of being moved there. */
static void test_born_in_its_cgroups(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	char want[PATH_MAX], path[PATH_MAX], *out, *log, *line, *save = NULL;
	int v2 = 0, v1 = 0;

	(void)state;
	make_dirs(&d, "cg");
	spec = shell_spec(&d, "cat /proc/self/cgroup");
	launch(&spec);
	wait_exit(d.id, 10, &e);
	assert_true(e.exited);
	assert_int_equal(e.exit_code, 0);
	snprintf(want, sizeof(want), "/pacer/%s/%s", agent_id, d.id);
	out = sandbox_file(&d, "stdout");
	assert_non_null(out);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *cg = strchr(strchr(line, ':') + 1, ':') + 1;
		bool in_task = !strcmp(cg, want);

		if (!strncmp(line, "0::", 3)) {
			v2++;
			if (!in_task)
				fail_msg("cgroup2: %s, want %s", cg, want);
		} else if (strstr(line, ":memory:") || strstr(line, ":cpu,") || strstr(line, ":cpu:") ||
			   strstr(line, ":pids:")) {
			v1++;
			if (!in_task)
				fail_msg("v1 %s, want %s", line, want);
		}
	}
	assert_int_equal(v2, 1);
	assert_true(v1 == 0 || v1 >= 3);        /* hybrid: cpu, memory, pids */
	free(out);
	assert_int_equal(path_join(path, sizeof(path), "%s/executor.log", d.run), 0);
	log = read_file(path, NULL);
	assert_non_null(log);
	if (strstr(log, "clone_into_cgroup_failed"))
		fail_msg("the init was moved, not born in its cgroup: %s", log);
	free(log);
	cleanup_task(&d);
}

static void test_kill_sigterm(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	double t0;

	(void)state;
	make_dirs(&d, "term");
	spec = shell_spec(&d, "sleep 100; echo not-reached");
	launch(&spec);
	assert_int_equal(containerizer_poll(cz, d.id, &e), 0);
	t0 = now_mono();
	assert_int_equal(containerizer_kill(cz, d.id, 5.0), 0);
	wait_exit(d.id, 4, &e);
	assert_true(now_mono() - t0 < 4.0);
	assert_false(e.exited && e.exit_code == 0);
	/* sh dies of SIGTERM directly, or reports its child's death as 128+15. */
	assert_true(e.signal == SIGTERM || (e.exited && e.exit_code == 128 + SIGTERM));
	cleanup_task(&d);
}

static void test_kill_after_grace(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	double t0;

	(void)state;
	make_dirs(&d, "grace");
	spec = shell_spec(&d, "trap '' TERM; echo ready; sleep 100");
	launch(&spec);
	/* Wait until the trap is installed (the shell printed), so SIGTERM is really ignored. */
	for (double deadline = now_mono() + 5;;) {
		char *out = sandbox_file(&d, "stdout");
		bool ready = out && strstr(out, "ready");

		free(out);
		if (ready)
			break;
		assert_true(now_mono() < deadline);
		sleep_ms(5);
	}
	t0 = now_mono();
	assert_int_equal(containerizer_kill(cz, d.id, 0.5), 0);
	sleep_ms(200);
	assert_int_equal(containerizer_poll(cz, d.id, &e), 0);    /* ignored SIGTERM */
	wait_exit(d.id, 5, &e);
	assert_true(now_mono() - t0 >= 0.5);
	assert_false(e.exited);
	assert_int_equal(e.signal, SIGKILL);
	assert_false(e.oom_killed);
	cleanup_task(&d);
}

static void test_memory_hog_is_oom_killed(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;

	(void)state;
	make_dirs(&d, "hog");
	spec = shell_spec(&d, "dd if=/dev/zero of=/dev/null bs=200M count=1");
	spec.mem_bytes = 32 * MiB;
	launch(&spec);
	wait_exit(d.id, 20, &e);
	assert_true(e.oom_killed);
	assert_false(e.exited && e.exit_code == 0);
	assert_string_equal(e.message, "memory limit exceeded");
	cleanup_task(&d);
}

/* Receives up to n datagrams within timeout; returns how many, and the sender. */
static int recv_datagrams(int fd, int n, size_t size, struct sockaddr_in *from, double timeout)
{
	double deadline = now_mono() + timeout;
	char buf[65536];
	int got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		socklen_t flen = sizeof(*from);
		double left = deadline - now_mono();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			break;
		r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)from, &flen);
		if (r < 0)
			break;
		assert_int_equal((size_t)r, size);
		got++;
	}
	return got;
}

/* N datagrams of S bytes to 127.0.0.1, one reply of R bytes back, N more after an agent
 * "restart" (a new containerizer on the same agent id): the counters are exact (each UDP
 * datagram is S + 8 (UDP) + 20 (IPv4) bytes at the cgroup_skb hooks) and they continue
 * across the restart. */
static void test_udp_counters_exact_across_restart(void **state)
{
	enum { N = 25, S = 300, R = 77 };
	struct sockaddr_in addr = { .sin_family = AF_INET }, from;
	socklen_t alen = sizeof(addr);
	struct container_usage u;
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	char cmd[1024], reply[R], err[512];
	pid_t pid;
	int fd;

	(void)state;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
	make_dirs(&d, "udp");
	snprintf(cmd, sizeof(cmd),
		 "exec /usr/bin/python3 -c \"import socket\n"
		 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
		 "s.settimeout(20)\n"
		 "for i in range(%d): s.sendto(b'x' * %d, ('127.0.0.1', %d))\n"
		 "s.recvfrom(4096)\n"
		 "for i in range(%d): s.sendto(b'y' * %d, ('127.0.0.1', %d))\n\"",
		 N, S, ntohs(addr.sin_port), N, S, ntohs(addr.sin_port));
	spec = shell_spec(&d, cmd);
	spec.mem_bytes = 256 * MiB;
	pid = launch(&spec);
	assert_int_equal(recv_datagrams(fd, N, S, &from, 15), N);
	assert_int_equal(containerizer_usage(cz, d.id, &u), 0);
	assert_int_equal(u.tx_packets, N);
	assert_int_equal(u.tx_bytes, (uint64_t)N * (S + 28));
	assert_int_equal(u.rx_packets, 0);

	/* Agent restart: a new containerizer adopts the running task. */
	containerizer_destroy(cz);
	cz = NULL;
	assert_int_equal(containerizer_create(&cfg, &cz, err, sizeof(err)), 0);
	assert_int_equal(containerizer_recover(cz, d.id, d.run, pid, &e), 1);

	memset(reply, 'r', sizeof(reply));
	assert_int_equal(sendto(fd, reply, sizeof(reply), 0, (struct sockaddr *)&from, sizeof(from)), R);
	assert_int_equal(recv_datagrams(fd, N, S, &from, 15), N);
	wait_exit(d.id, 15, &e);
	assert_true(e.exited);
	assert_int_equal(e.exit_code, 0);
	assert_int_equal(containerizer_usage(cz, d.id, &u), 0);
	assert_int_equal(u.tx_packets, 2 * N);
	assert_int_equal(u.tx_bytes, (uint64_t)2 * N * (S + 28));
	assert_int_equal(u.rx_packets, 1);
	assert_int_equal(u.rx_bytes, R + 28);
	assert_true(u.cpu_ns > 0);
	close(fd);
	cleanup_task(&d);
	assert_int_equal(containerizer_usage(cz, d.id, &u), -ENOENT);
}

/* After a restart, a task whose executor finished while the agent was away reports its
 * real exit status; one without any record is reported as lost. */
static void test_recover_ended_and_lost(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d, lost;
	char err[512];
	pid_t pid;

	(void)state;
	make_dirs(&d, "ended");
	spec = shell_spec(&d, "exit 7");
	pid = launch(&spec);
	wait_exit(d.id, 10, &e);
	containerizer_destroy(cz);
	cz = NULL;
	assert_int_equal(containerizer_create(&cfg, &cz, err, sizeof(err)), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(containerizer_recover(cz, d.id, d.run, pid, &e), 0);
	assert_true(e.exited);
	assert_int_equal(e.exit_code, 7);
	assert_int_equal(containerizer_poll(cz, d.id, &e), 1);
	cleanup_task(&d);

	make_dirs(&lost, "lost");
	memset(&e, 0, sizeof(e));
	/* pid 1 is alive but is not our executor: must not be adopted. */
	assert_int_equal(containerizer_recover(cz, lost.id, lost.run, 1, &e), 0);
	assert_false(e.exited);
	assert_non_null(strstr(e.message, "without recording"));
	assert_int_equal(containerizer_cleanup(cz, lost.id), 0);
}

/* The executor survives its supervisor being killed -9? The agent's equivalent: the
 * executor is in its own session, so killing the agent's process group spares it. */
static void test_executor_own_session(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	pid_t pid;

	(void)state;
	make_dirs(&d, "session");
	spec = shell_spec(&d, "sleep 100");
	pid = launch(&spec);
	assert_int_equal(getsid(pid), pid);
	assert_true(getpgid(pid) != getpgid(0));
	assert_int_equal(containerizer_kill(cz, d.id, 0), 0);
	wait_exit(d.id, 5, &e);
	assert_int_equal(e.signal, SIGKILL);
	cleanup_task(&d);
}

/* A separate "agent" process launches a task and is killed -9: the executor and the task
 * live on, and a new containerizer adopts the executor (not its child: watched through a
 * pidfd) and still gets its real exit status. */
static void test_task_survives_agent_kill9(void **state)
{
	struct container_spec spec;
	struct container_exit e;
	struct task_dirs d;
	int fds[2], status;
	pid_t agent, pid = 0;

	(void)state;
	make_dirs(&d, "kill9");
	spec = shell_spec(&d, "sleep 100");
	assert_int_equal(pipe(fds), 0);
	agent = fork();
	assert_true(agent >= 0);
	if (agent == 0) {
		struct containerizer *mine;
		char err[512];

		close(fds[0]);
		if (containerizer_create(&cfg, &mine, err, sizeof(err)) ||
		    containerizer_launch(mine, &spec, &pid, err, sizeof(err)))
			pid = -1;
		if (write(fds[1], &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &pid, sizeof(pid)), sizeof(pid));
	close(fds[0]);
	kill(agent, SIGKILL);
	assert_int_equal(waitpid(agent, &status, 0), agent);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);             /* the executor outlived its agent */
	assert_int_equal(containerizer_recover(cz, d.id, d.run, pid, &e), 1);
	assert_int_equal(containerizer_poll(cz, d.id, &e), 0);
	assert_int_equal(containerizer_kill(cz, d.id, 3), 0);
	wait_exit(d.id, 5, &e);
	assert_true(e.signal == SIGTERM || (e.exited && e.exit_code == 128 + SIGTERM));
	cleanup_task(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_echo_to_stdout, ensure_containerizer),
		cmocka_unit_test_setup(test_exit_code_env_and_argv, ensure_containerizer),
		cmocka_unit_test_setup(test_exec_failure_is_reported, ensure_containerizer),
		cmocka_unit_test_setup(test_bad_task_id_rejected, ensure_containerizer),
		cmocka_unit_test_setup(test_namespaces, ensure_containerizer),
		cmocka_unit_test_setup(test_born_in_its_cgroups, ensure_containerizer),
		cmocka_unit_test_setup(test_kill_sigterm, ensure_containerizer),
		cmocka_unit_test_setup(test_kill_after_grace, ensure_containerizer),
		cmocka_unit_test_setup(test_memory_hog_is_oom_killed, ensure_containerizer),
		cmocka_unit_test_setup(test_udp_counters_exact_across_restart, ensure_containerizer),
		cmocka_unit_test_setup(test_recover_ended_and_lost, ensure_containerizer),
		cmocka_unit_test_setup(test_executor_own_session, ensure_containerizer),
		cmocka_unit_test_setup(test_task_survives_agent_kill9, ensure_containerizer),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_containerizer needs root (cgroups, namespaces, BPF); run it as root\n");
		return 1; /* never count a test that did not run as passed */
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
