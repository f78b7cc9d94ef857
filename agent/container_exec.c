/* container_exec.c - a process inside a running container (container_exec.h). The agent
 * is multi-threaded and setns(CLONE_NEWNS) needs a single-threaded caller, so everything
 * that allocates (namespace fds, the user's ids, the argv) is prepared before fork(); the
 * child only makes async-signal-safe calls. The parent moves the child into the task's
 * cgroups before letting it go on (a sync pipe), so the command never runs outside them. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/container_exec.h"

#define MAX_GROUPS 64

static const char *const ns_names[] = { "ipc", "uts", "pid", "mnt" };
#define NNS (sizeof(ns_names) / sizeof(ns_names[0]))

struct exec_ids {
	bool set;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
};

static int resolve_user(const char *user, struct exec_ids *ids)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	ids->set = false;
	if (!user)
		return 0;
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	ids->set = true;
	ids->uid = pw.pw_uid;
	ids->gid = pw.pw_gid;
	ids->ngroups = MAX_GROUPS;
	if (getgrouplist(user, pw.pw_gid, ids->groups, &ids->ngroups) < 0) {
		ids->groups[0] = pw.pw_gid;
		ids->ngroups = 1;
	}
	return 0;
}

/* The command: PID n of the task's pid namespace. Never returns. */
static void run_command(const struct container_exec *x, const struct exec_ids *ids)
{
	char *const argv[] = { "sh", "-c", (char *)x->command, NULL };
	int null = open("/dev/null", O_RDWR);

	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		_exit(126);
	if (null > 2)
		close(null);
	if (!x->cwd || chdir(x->cwd) < 0)
		(void)!chdir("/");
	if (ids->set && (setgroups((size_t)ids->ngroups, ids->groups) < 0 ||
			 setgid(ids->gid) < 0 || setuid(ids->uid) < 0))
		_exit(126);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(126);
	execve("/bin/sh", argv, (char *const *)x->envp);
	_exit(127);
}

/* The leader: waits to be in the cgroups, enters the namespaces, runs the command as its
 * child and exits with its status. Never returns. */
static void leader(int sync_fd, const int *nsfd, int root_fd, const struct container_exec *x,
		   const struct exec_ids *ids)
{
	sigset_t none;
	char go;
	pid_t pid;
	int status;

	setsid();               /* first: the agent may kill(-pid) at any time */
	/* A fork of the agent without exec keeps the agent's handlers: SIGTERM sent to the
	 * task's cgroup (a kill) would run the agent's own handler here and write to its
	 * signal pipe, which stops the agent. This process dies of it instead. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (read(sync_fd, &go, 1) != 1)
		_exit(126);
	close(sync_fd);
	for (size_t i = 0; i < NNS; i++)
		if (setns(nsfd[i], 0) < 0)
			_exit(125);
	/* setns(CLONE_NEWNS) puts us at the namespace's root mount, which is not the task's
	 * root when the agent itself runs under chroot: take init's root as ours (nsenter's
	 * --root does the same). */
	if (fchdir(root_fd) < 0 || chroot(".") < 0)
		_exit(125);
	close(root_fd);
	pid = fork();
	if (pid < 0)
		_exit(126);
	if (pid == 0)
		run_command(x, ids);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			_exit(126);
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}

int container_exec_spawn(const struct cgroup_layout *cg, const char *cgroup_rel, pid_t init_pid,
			 const struct container_exec *x, pid_t *pid, char *err, size_t errlen)
{
	int nsfd[NNS], sync_fd[2] = { -1, -1 }, root_fd = -1;
	struct exec_ids ids;
	char path[64];
	pid_t child;
	int rc = 0;

	for (size_t i = 0; i < NNS; i++)
		nsfd[i] = -1;
	rc = resolve_user(x->user, &ids);
	if (rc) {
		snprintf(err, errlen, "no such user %s", x->user);
		goto out;
	}
	for (size_t i = 0; i < NNS; i++) {
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init_pid, ns_names[i]);
		nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
			goto out;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/root", (int)init_pid);
	root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (pipe2(sync_fd, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	child = fork();
	if (child < 0) {
		rc = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		close(sync_fd[1]);
		leader(sync_fd[0], nsfd, root_fd, x, &ids);
	}
	rc = cgroup_attach(cg, cgroup_rel, child);
	if (rc || write(sync_fd[1], "g", 1) != 1) {
		rc = rc ? rc : -EIO;
		snprintf(err, errlen, "cannot move the check into the task's cgroups: %s",
			 strerror(-rc));
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		goto out;
	}
	*pid = child;
out:
	for (size_t i = 0; i < NNS; i++)
		if (nsfd[i] >= 0)
			close(nsfd[i]);
	if (root_fd >= 0)
		close(root_fd);
	if (sync_fd[0] >= 0)
		close(sync_fd[0]);
	if (sync_fd[1] >= 0)
		close(sync_fd[1]);
	return rc;
}
