/* init.c - the container's init (PID 1 in its own pid namespace) and the command it runs
 * as PID 2. Init holds the namespace open, forwards termination signals to the command,
 * reaps every orphan, and exits when the command does; the kernel then kills whatever the
 * command left behind in the namespace. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/executor/executor.h"
#include "lib/util.h"

static volatile sig_atomic_t command_pid;

static void forward_signal(int sig)
{
	if (command_pid > 0)
		kill(command_pid, sig);
}

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void set_oom_score_adj(const char *value)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, value, strlen(value)) < 0) {
		/* best effort: without it the OOM killer may pick init instead of the command */
	}
	close(fd);
}

static int open_output(const char *sandbox, const char *name, int target)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", sandbox, name);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (dup2(fd, target) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

static int switch_user(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw)
		return -ENOENT;
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		return -errno;
	return 0;
}

/* PID 2. Everything that can fail is reported on the ready pipe before exec. */
static void __attribute__((noreturn)) run_command(const struct exec_spec *s, int ready_fd)
{
	sigset_t none;
	int fd, rc;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	set_oom_score_adj("0");
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	if ((rc = open_output(s->sandbox, "stdout", 1)) || (rc = open_output(s->sandbox, "stderr", 2))) {
		exec_report_error(ready_fd, -rc, "cannot open stdout/stderr in sandbox %s: %s", s->sandbox,
				  strerror(-rc));
		_exit(127);
	}
	if (chdir(s->sandbox) < 0) {
		exec_report_error(ready_fd, errno, "cannot enter sandbox %s: %s", s->sandbox, strerror(errno));
		_exit(127);
	}
	if (s->user && (rc = switch_user(s->user))) {
		exec_report_error(ready_fd, -rc, "cannot run as user %s: %s", s->user,
				  rc == -ENOENT ? "no such user" : strerror(-rc));
		_exit(127);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		exec_report_error(ready_fd, errno, "cannot set no_new_privs: %s", strerror(errno));
		_exit(127);
	}
	fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	execvpe(s->argv[0], (char *const *)s->argv, (char *const *)s->env);
	rc = errno;
	dprintf(2, "pacer-executor: cannot execute %s: %s\n", s->argv[0], strerror(rc));
	exec_report_error(ready_fd, rc, "cannot execute %s: %s", s->argv[0], strerror(rc));
	_exit(rc == ENOENT ? 127 : 126);
}

/* A fresh tmpfs on /tmp. A sandbox below /tmp (a work dir there) would vanish under it, so
 * it is bind-mounted back to the same path inside the new /tmp. */
static int private_tmp(const char *sandbox, int ready_fd)
{
	char fdpath[64];
	int fd = -1;

	if (!strncmp(sandbox, "/tmp/", 5)) {
		fd = open(sandbox, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			exec_report_error(ready_fd, errno, "cannot open sandbox %s: %s", sandbox, strerror(errno));
			return -1;
		}
	}
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) {
		exec_report_error(ready_fd, errno, "cannot mount a private /tmp: %s", strerror(errno));
		goto err;
	}
	if (fd < 0)
		return 0;
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	if (mkdir_p(sandbox, 0755) || mount(fdpath, sandbox, NULL, MS_BIND, NULL) < 0) {
		exec_report_error(ready_fd, errno, "cannot keep sandbox %s visible under the private /tmp: %s",
				  sandbox, strerror(errno));
		goto err;
	}
	close(fd);
	return 0;
err:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* When the agent runs chrooted, "/" is not a mount point and cannot be made a slave (and a
 * mount under a shared parent we cannot see would leak back to the host). In this private
 * mount namespace only, step out to the real root, make everything a slave there, and come
 * back: chroot into a subdirectory while the cwd stays outside it, walk up, chroot("."). */
static int make_real_root_slave(void)
{
	int old_root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (old_root < 0)
		return -errno;
	if (chdir("/") < 0 || chroot("/proc") < 0) {
		rc = -errno;
		goto out;
	}
	for (int depth = 0; depth < 256; depth++)
		if (chdir("..") < 0)
			break;
	if (chroot(".") < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		rc = -errno;
	if (fchdir(old_root) < 0 || chroot(".") < 0 || chdir("/") < 0)
		rc = -EPERM; /* not back in the agent's root: the launch must fail */
out:
	close(old_root);
	return rc;
}

static int setup_mounts(const struct exec_spec *s, int ready_fd)
{
	if (s->clone_flags & CLONE_NEWNS) {
		/* Host mounts still propagate in; nothing mounted here leaks out. */
		if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 &&
		    (errno != EINVAL || make_real_root_slave() < 0)) {
			exec_report_error(ready_fd, errno, "cannot make / a slave mount: %s", strerror(errno));
			return -1;
		}
		if (s->mount_proc &&
		    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
			exec_report_error(ready_fd, errno, "cannot mount /proc: %s", strerror(errno));
			return -1;
		}
		if (s->private_tmp && private_tmp(s->sandbox, ready_fd))
			return -1;
	}
	if ((s->clone_flags & CLONE_NEWUTS) && s->hostname &&
	    sethostname(s->hostname, strlen(s->hostname)) < 0) {
		exec_report_error(ready_fd, errno, "cannot set hostname %s: %s", s->hostname, strerror(errno));
		return -1;
	}
	return 0;
}

void container_init(const struct exec_spec *s, int sync_fd, int status_fd, int ready_fd)
{
	struct sigaction sa = { .sa_handler = forward_signal };
	sigset_t all, none;
	char go;
	pid_t pid;
	int status;

	/* The mounts are private to this namespace: set them up while the executor moves
	 * this process into the rest of the task's cgroups. It writes one byte once this
	 * process is in all of them; the command is forked only after that. */
	if (setup_mounts(s, ready_fd))
		_exit(125);
	if (read(sync_fd, &go, 1) != 1)
		_exit(125);
	close(sync_fd);
	set_oom_score_adj("-1000");

	sigfillset(&all);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &all, NULL);
	pid = fork();
	if (pid < 0) {
		exec_report_error(ready_fd, errno, "cannot fork the command: %s", strerror(errno));
		_exit(125);
	}
	if (pid == 0) {
		close(status_fd);
		run_command(s, ready_fd);
	}
	close(ready_fd);
	command_pid = pid;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	sigprocmask(SIG_SETMASK, &none, NULL);

	for (;;) {
		pid_t w = waitpid(-1, &status, 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			_exit(125);
		if (w != pid)
			continue;       /* an orphan re-parented to us */
		if (write(status_fd, &status, sizeof(status)) != sizeof(status)) {
			/* the executor then falls back to our own exit status */
		}
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		_exit(128 + WTERMSIG(status));
	}
}
