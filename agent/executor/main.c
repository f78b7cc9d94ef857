/* main.c - pacer-executor: the per-task supervisor. Starts the container init in new
 * namespaces, puts it into the task's cgroups before the command runs, waits for it, and
 * records how the command ended (exit code, signal, OOM kill) in <run_dir>/exit.json.
 * Single-threaded, in its own session, no parent-death signal: it outlives the agent.
 *
 * The init is born in its cgroup2 cgroup (clone3 with CLONE_INTO_CGROUP): moving a process
 * between cgroups takes the kernel's global cgroup_threadgroup_rwsem for writing, which
 * waits for an RCU grace period (~10 ms) unless a move happened just before. On a pure
 * cgroup v2 host that is the only cgroup, so a launch makes no move at all; on a hybrid
 * host the v1 cpu/memory/pids hierarchies still need one (the flag is cgroup2-only). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/executor/executor.h"
#include "lib/log.h"
#include "lib/util.h"

static volatile sig_atomic_t init_pid;

void exec_report_error(int ready_fd, int errnum, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ready_fd >= 0)
		dprintf(ready_fd, "E %d %s\n", errnum, msg);
	fprintf(stderr, "pacer-executor: %s\n", msg);
}

static void forward_signal(int sig)
{
	if (init_pid > 0)
		kill(init_pid, sig);
}

/* Field 22 of /proc/<pid>/stat: lets the agent tell this process from a reused pid. */
static uint64_t own_start_time(void)
{
	char *text = read_file("/proc/self/stat", NULL);
	char *p = text ? strrchr(text, ')') : NULL;
	uint64_t v = 0;

	for (int field = 2; p && *p; p++) {
		if (*p != ' ')
			continue;
		if (++field == 22) {
			v = strtoull(p + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return v;
}

static int read_oom_count(const struct exec_spec *s, uint64_t *count)
{
	char *text, *line, *save = NULL;
	size_t klen;
	int rc = -ENOENT;

	*count = 0;
	if (!s->oom_file || !s->oom_key)
		return -ENOENT;
	text = read_file(s->oom_file, NULL);
	if (!text)
		return -errno;
	klen = strlen(s->oom_key);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, s->oom_key, klen) && line[klen] == ' ') {
			*count = strtoull(line + klen + 1, NULL, 10);
			rc = 0;
		}
	}
	free(text);
	return rc;
}

/* Index of the first cgroup2 directory in s->cgroups, or -1. */
static int cgroup2_index(const struct exec_spec *s)
{
	struct statfs st;

	for (int i = 0; s->cgroups[i]; i++)
		if (statfs(s->cgroups[i], &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
			return i;
	return -1;
}

/* Starts the init in new namespaces; *born_in is the index of the cgroup it was born in
 * (-1: none, the kernel or the cgroup refused CLONE_INTO_CGROUP; it is then moved). */
static pid_t clone_init(const struct exec_spec *s, int *born_in)
{
	int idx = cgroup2_index(s), fd = -1;
	pid_t pid;

	*born_in = -1;
	if (idx >= 0)
		fd = open(s->cgroups[idx], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		struct clone_args args = {
			.flags = (uint64_t)s->clone_flags | CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)fd,
		};

		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0) {
			if (pid > 0) {
				close(fd);
				*born_in = idx;
			}
			return pid;
		}
		log_warn("event=clone_into_cgroup_failed cgroup=%s error=\"%s\" fallback=move",
			 s->cgroups[idx], strerror(errno));
		close(fd);
	}
	return (pid_t)syscall(SYS_clone, (unsigned long)s->clone_flags | SIGCHLD, NULL, NULL, NULL, 0);
}

static int join_cgroups(const struct exec_spec *s, pid_t pid, int born_in, int ready_fd)
{
	char path[4096], value[32];

	snprintf(value, sizeof(value), "%d", (int)pid);
	for (int i = 0; s->cgroups[i]; i++) {
		if (i == born_in)
			continue;
		int rc = path_join(path, sizeof(path), "%s/cgroup.procs", s->cgroups[i]);

		if (!rc)
			rc = write_string_file(path, value);
		if (rc) {
			exec_report_error(ready_fd, -rc, "cannot move the container into cgroup %s: %s",
					  s->cgroups[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int write_exit(const char *run_dir, int status, bool oom, const char *why)
{
	char path[4096], msg[256];
	bool exited = WIFEXITED(status);
	int code = exited ? WEXITSTATUS(status) : 0;
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	json_t *j;
	int rc;

	if (why)
		snprintf(msg, sizeof(msg), "%s", why);
	else if (oom)
		snprintf(msg, sizeof(msg), "memory limit exceeded");
	else if (exited)
		snprintf(msg, sizeof(msg), "Command exited with status %d", code);
	else
		snprintf(msg, sizeof(msg), "Command terminated by signal %s (%s)",
			 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", strsignal(sig));
	j = json_pack("{sb si si sb ss sf}", "exited", exited, "exit_code", code, "signal", sig,
		      "oom_killed", oom, "message", msg, "finished_at", now_wall());
	if (!j)
		return -ENOMEM;
	rc = path_join(path, sizeof(path), "%s/exit.json", run_dir);
	if (!rc)
		rc = json_write_file_atomic(path, j);
	json_decref(j);
	log_info("event=task_exited task_dir=%s exited=%d code=%d signal=%d oom=%d", run_dir, exited,
		 code, sig, oom);
	return rc;
}

/* executor.json tells a restarted agent which process supervises the task. It is only
 * true while this process lives, so it needs no fsync: after a host crash it names a
 * process that is gone either way (and a reused pid fails the start_time check). */
static int write_executor_info(const struct exec_spec *s, pid_t child)
{
	char path[4096];
	json_t *j = json_pack("{si sI si}", "pid", (int)getpid(), "start_time",
			      (json_int_t)own_start_time(), "init_pid", (int)child);
	int rc;

	if (!j)
		return -ENOMEM;
	rc = path_join(path, sizeof(path), "%s/executor.json", s->run_dir);
	if (!rc)
		rc = json_replace_file(path, j);
	json_decref(j);
	return rc;
}

static int supervise(const struct exec_spec *s, int ready_fd)
{
	struct sigaction sa = { .sa_handler = forward_signal };
	int sync_fds[2], status_fds[2], status = 0, cmd_status, born_in;
	uint64_t oom_before = 0, oom_after = 0;
	pid_t pid;

	read_oom_count(s, &oom_before);
	if (pipe2(sync_fds, O_CLOEXEC) < 0 || pipe2(status_fds, O_CLOEXEC) < 0) {
		exec_report_error(ready_fd, errno, "cannot create pipes: %s", strerror(errno));
		return 1;
	}
	pid = clone_init(s, &born_in);
	if (pid < 0) {
		exec_report_error(ready_fd, errno, "cannot create the container namespaces: %s",
				  strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(sync_fds[1]);
		close(status_fds[0]);
		container_init(s, sync_fds[0], status_fds[1], ready_fd);
	}
	close(sync_fds[0]);
	close(status_fds[1]);
	init_pid = pid;
	/* An agent that died before reading the ready pipe must not take the task with it. */
	signal(SIGPIPE, SIG_IGN);
	if (join_cgroups(s, pid, born_in, ready_fd)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		write_exit(s->run_dir, status, false, "the container could not join its cgroups");
		return 1;
	}
	write_executor_info(s, pid);
	dprintf(ready_fd, "P %d\n", (int)pid);
	close(ready_fd);
	if (write(sync_fds[1], "g", 1) != 1)
		log_warn("event=sync_failed error=\"%s\"", strerror(errno));
	close(sync_fds[1]);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("event=waitpid_failed error=\"%s\"", strerror(errno));
			return 1;
		}
	}
	/* The command's own status; if init died first (killed), init's status is the answer. */
	if (read(status_fds[0], &cmd_status, sizeof(cmd_status)) == sizeof(cmd_status))
		status = cmd_status;
	read_oom_count(s, &oom_after);
	return write_exit(s->run_dir, status, oom_after > oom_before, NULL) ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: pacer-executor --spec <run_dir>/spec.json [--ready-fd N]\n"
			"Started by pacer-agent: runs one task in its container and records its exit.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spec", required_argument, NULL, 's' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec_path = NULL;
	struct exec_spec spec;
	int ready_fd = -1, c, rc;
	char err[512];

	while ((c = getopt_long(argc, argv, "s:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': spec_path = optarg; break;
		case 'r': ready_fd = atoi(optarg); break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (!spec_path) {
		usage();
		return 2;
	}
	log_init("pacer-executor", LOG_LVL_INFO);
	setsid();
	if (chdir("/") < 0)
		return 1;
	/* Only stdio and the ready pipe: nothing of the agent's leaks into the task. */
	if (ready_fd > 3)
		close_range(3, (unsigned)ready_fd - 1, 0);
	close_range(ready_fd >= 3 ? (unsigned)ready_fd + 1 : 3, ~0U, 0);

	rc = exec_spec_load(spec_path, &spec, err, sizeof(err));
	if (rc) {
		exec_report_error(ready_fd, -rc, "%s", err);
		return 1;
	}
	log_info("event=executor_started task=%s pid=%d", spec.task_id, (int)getpid());
	rc = supervise(&spec, ready_fd);
	exec_spec_free(&spec);
	return rc;
}
