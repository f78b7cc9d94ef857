/* containerizer.c - runs tasks in containers: drives the isolators (isolator.h) in order,
 * starts one pacer-executor per task and watches it - as its parent after a launch, through
 * a pidfd after an agent restart (the executor is then not our child). The task table here
 * is only what is needed to poll, kill and clean up; the agent core owns the task records. */
#include "agent/containerizer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/bpf_common.h"
#include "agent/cgroup_fs.h"
#include "agent/container_exec.h"
#include "agent/isolator.h"
#include "lib/log.h"
#include "lib/util.h"

/* In prepare order; cleanup runs backwards. */
static const struct isolator_ops *const isolators[] = {
	&isolator_cgroups,
	&isolator_namespaces,
	&isolator_bpf_net,
};
#define NISOLATORS ARRAY_SIZE(isolators)

#define LAUNCH_TIMEOUT_SECONDS 30.0
#define REAP_TIMEOUT_SECONDS 5.0
#define TASK_ID_MAX 200

enum ctask_state { CT_LAUNCHING, CT_RUNNING, CT_ENDED };

struct ctask {
	struct ctask *next;
	char task_id[TASK_ID_MAX + 1];
	char run_dir[PATH_MAX];
	char cgroup_rel[PATH_MAX];
	enum ctask_state state;
	pid_t executor_pid;
	int pidfd;                      /* -1: none, or the executor is gone */
	bool own_child;                 /* we must reap it */
	bool gone;                      /* the executor has exited */
	double kill_deadline;           /* monotonic; 0: no kill pending */
	struct container_exit exit;
};

struct containerizer {
	pthread_mutex_t lock;
	char agent_id[128];
	char work_dir[PATH_MAX];
	char executor_path[PATH_MAX];
	char bpf_dir[PATH_MAX];
	char agent_cgroup[160];
	struct cgroup_layout cg;
	struct isolator_env env;
	void *iso_state[NISOLATORS];
	struct ctask *tasks;
};

/* ---- small helpers ---------------------------------------------------------------- */

static bool valid_name(const char *id, size_t max)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > max || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static int pidfd_open_pid(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static struct isolator_task iso_task(const struct ctask *t)
{
	return (struct isolator_task){ .task_id = t->task_id, .cgroup_rel = t->cgroup_rel };
}

static struct ctask *find_task(struct containerizer *c, const char *task_id)
{
	for (struct ctask *t = c->tasks; t; t = t->next)
		if (!strcmp(t->task_id, task_id))
			return t;
	return NULL;
}

static void unlink_task(struct containerizer *c, struct ctask *t)
{
	for (struct ctask **p = &c->tasks; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			return;
		}
	}
}

static void free_task(struct ctask *t)
{
	if (t->pidfd >= 0)
		close(t->pidfd);
	free(t);
}

static struct ctask *new_task(struct containerizer *c, const char *task_id, const char *run_dir)
{
	struct ctask *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->pidfd = -1;
	snprintf(t->task_id, sizeof(t->task_id), "%s", task_id);
	if (path_join(t->run_dir, sizeof(t->run_dir), "%s", run_dir) ||
	    path_join(t->cgroup_rel, sizeof(t->cgroup_rel), "%s/%s", c->agent_cgroup, task_id)) {
		free(t);
		return NULL;
	}
	return t;
}

static bool cgroup_empty(struct containerizer *c, const char *rel)
{
	pid_t *pids;
	size_t n;

	if (cgroup_pids(&c->cg, rel, &pids, &n))
		return true;            /* no cgroup: nothing can be running in it */
	free(pids);
	return n == 0;
}

static void mark_gone(struct ctask *t)
{
	t->gone = true;
	if (t->pidfd >= 0) {
		close(t->pidfd);
		t->pidfd = -1;
	}
}

/* Non-blocking: has the executor exited? Our own child is asked with waitpid (which also
 * reaps it); an adopted one through its pidfd. */
static bool executor_gone(struct ctask *t)
{
	struct pollfd p = { .fd = t->pidfd, .events = POLLIN };

	if (t->gone)
		return true;
	if (t->own_child) {
		if (waitpid(t->executor_pid, NULL, WNOHANG) == 0)
			return false;
		/* reaped now, or ECHILD: already reaped elsewhere (SIGCHLD ignored) */
	} else if (t->pidfd >= 0 && poll(&p, 1, 0) == 0) {
		return false;
	}
	mark_gone(t);
	return true;
}

/* Waits until the executor is gone (on the pidfd when there is one), or the timeout. */
static bool wait_executor(struct ctask *t, double timeout)
{
	double deadline = now_mono() + timeout;

	while (!executor_gone(t)) {
		struct pollfd p = { .fd = t->pidfd, .events = POLLIN };
		double left = deadline - now_mono();

		if (left <= 0)
			return false;
		if (t->pidfd >= 0)
			poll(&p, 1, (int)(left * 1000) + 1);
		else
			usleep(2000);
	}
	return true;
}

/* Fills *e from an exit.json document (NULL: none); -EINVAL (and *e marked lost) if it is
 * not one the executor writes. Declared in containerizer.h for tests and fuzzing. */
int container_exit_from_json(json_t *j, struct container_exit *e)
{
	json_int_t code = 0, sig = 0;
	int exited = 0, oom = 0;
	const char *msg = NULL;

	memset(e, 0, sizeof(*e));
	/* "I" then a range check: "i" would silently truncate 4294967297 to 1. */
	if (!j || json_unpack(j, "{s:b, s:I, s:I, s:b, s?:s}", "exited", &exited, "exit_code",
			      &code, "signal", &sig, "oom_killed", &oom, "message", &msg) ||
	    code < INT_MIN || code > INT_MAX || sig < 0 || sig > INT_MAX) {
		e->exited = false;
		e->exit_code = -1;
		snprintf(e->message, sizeof(e->message),
			 "Executor terminated without recording the task's exit status");
		return -EINVAL;
	}
	e->exited = exited;
	e->exit_code = (int)code;
	e->signal = (int)sig;
	e->oom_killed = oom;
	snprintf(e->message, sizeof(e->message), "%s", msg ? msg : "");
	return 0;
}

/* Fills *e from <run_dir>/exit.json; a missing or unreadable file means the task was lost
 * (its executor was killed before it could record anything). */
static void read_exit(const char *run_dir, struct container_exit *e)
{
	char path[PATH_MAX];
	json_t *j = NULL;

	if (!path_join(path, sizeof(path), "%s/exit.json", run_dir))
		j = json_load_file(path, 0, NULL);
	container_exit_from_json(j, e);
	json_decref(j);
}

/* ---- create / destroy ------------------------------------------------------------ */

int containerizer_create(const struct containerizer_config *cfg, struct containerizer **out,
			 char *err, size_t errlen)
{
	const char *bpffs = cfg->bpffs ? cfg->bpffs : "/sys/fs/bpf";
	struct containerizer *c;
	size_t created = 0;
	int rc;

	/* No '.': bpffs refuses dots in the pin folder's name. */
	if (!valid_name(cfg->agent_id, 100) || strchr(cfg->agent_id, '.')) {
		snprintf(err, errlen, "invalid agent id '%s' (letters, digits, '_', '-')",
			 cfg->agent_id ? cfg->agent_id : "");
		return -EINVAL;
	}
	if (!cfg->executor_path || access(cfg->executor_path, X_OK) < 0) {
		snprintf(err, errlen, "executor '%s' is not an executable file",
			 cfg->executor_path ? cfg->executor_path : "(none)");
		return -ENOENT;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	snprintf(c->agent_id, sizeof(c->agent_id), "%s", cfg->agent_id);
	snprintf(c->work_dir, sizeof(c->work_dir), "%s", cfg->work_dir ? cfg->work_dir : "");
	snprintf(c->agent_cgroup, sizeof(c->agent_cgroup), "pacer/%s", cfg->agent_id);
	if ((rc = path_join(c->executor_path, sizeof(c->executor_path), "%s", cfg->executor_path)))
		goto err_free;
	if ((rc = cgroup_layout_detect(&c->cg, err, errlen)))
		goto err_free;
	if ((rc = bpf_agent_dir(bpffs, cfg->agent_id, c->bpf_dir, sizeof(c->bpf_dir), err, errlen)))
		goto err_free;
	c->env = (struct isolator_env){ .agent_id = c->agent_id, .cgroups = &c->cg,
					.bpf_dir = c->bpf_dir, .agent_cgroup = c->agent_cgroup };
	for (; created < NISOLATORS; created++) {
		if (!isolators[created]->create)
			continue;
		rc = isolators[created]->create(&c->env, &c->iso_state[created], err, errlen);
		if (rc)
			goto err_isolators;
	}
	log_info("event=containerizer_ready agent_id=%s cgroups=%s unified=%s bpf_dir=%s",
		 c->agent_id, cgroup_mode_name(c->cg.mode), c->cg.unified, c->bpf_dir);
	*out = c;
	return 0;
err_isolators:
	while (created-- > 0)
		if (isolators[created]->destroy)
			isolators[created]->destroy(c->iso_state[created]);
err_free:
	pthread_mutex_destroy(&c->lock);
	free(c);
	return rc;
}

void containerizer_destroy(struct containerizer *c)
{
	if (!c)
		return;
	while (c->tasks) {
		struct ctask *t = c->tasks;

		c->tasks = t->next;
		free_task(t);
	}
	for (size_t i = NISOLATORS; i-- > 0;)
		if (isolators[i]->destroy)
			isolators[i]->destroy(c->iso_state[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *containerizer_cgroup_mode(struct containerizer *c)
{
	return cgroup_mode_name(c->cg.mode);
}

/* ---- launch ---------------------------------------------------------------------- */

static json_t *base_launch_spec(const struct container_spec *spec)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s?}", "task_id", spec->task_id, "sandbox",
			      spec->sandbox_dir, "run_dir", spec->run_dir, "shell", spec->shell,
			      "command", spec->command, "user", spec->user);
	json_t *argv = json_array(), *env = json_array();

	if (!j || !argv || !env) {
		json_decref(j);
		json_decref(argv);
		json_decref(env);
		return NULL;
	}
	for (size_t i = 0; !spec->shell && spec->argv && spec->argv[i]; i++)
		json_array_append_new(argv, json_string(spec->argv[i]));
	if (!spec->shell && json_array_size(argv) == 0)
		json_array_append_new(argv, json_string(spec->command));
	for (size_t i = 0; spec->envp && spec->envp[i]; i++)
		json_array_append_new(env, json_string(spec->envp[i]));
	json_object_set_new(j, "argv", argv);
	json_object_set_new(j, "env", env);
	return j;
}

/* posix_spawn (vfork-safe in a threaded agent) with the ready pipe as fd 3, stdio to
 * <run_dir>/executor.log, default signal dispositions and an empty mask. */
static int spawn_executor(struct containerizer *c, const char *run_dir, int ready_w, pid_t *pid)
{
	static char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				      NULL };
	char spec_path[PATH_MAX], log_path[PATH_MAX];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc;

	if ((rc = path_join(spec_path, sizeof(spec_path), "%s/spec.json", run_dir)) ||
	    (rc = path_join(log_path, sizeof(log_path), "%s/executor.log", run_dir)))
		return rc;
	char *const argv[] = { c->executor_path, "--spec", spec_path, "--ready-fd", "3", NULL };

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, ready_w, 3);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETSID);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	rc = -posix_spawn(pid, c->executor_path, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/* Reads the ready pipe until EOF (see agent/executor/executor.h for the protocol). */
static int wait_ready(int fd, const char *run_dir, pid_t *init_pid, char *err, size_t errlen)
{
	double deadline = now_mono() + LAUNCH_TIMEOUT_SECONDS;
	char buf[2048];
	size_t len = 0;
	char *line, *save = NULL;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = deadline - now_mono();
		ssize_t n;
		int rc;

		if (left <= 0) {
			snprintf(err, errlen, "the task did not start within %.0f s", LAUNCH_TIMEOUT_SECONDS);
			return -ETIMEDOUT;
		}
		rc = poll(&p, 1, (int)(left * 1000) + 1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	*init_pid = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == 'E' && line[1] == ' ') {
			char *msg;
			long errnum = strtol(line + 2, &msg, 10);

			snprintf(err, errlen, "%s", *msg == ' ' ? msg + 1 : msg);
			return errnum > 0 ? -(int)errnum : -EIO;
		}
		if (line[0] == 'P' && line[1] == ' ')
			*init_pid = (pid_t)atoi(line + 2);
	}
	if (*init_pid > 0)
		return 0;
	snprintf(err, errlen, "pacer-executor exited before starting the task (see %s/executor.log)",
		 run_dir);
	return -ECHILD;
}

/* spec.json is the executor's input, read once when it starts; recovery never reads it
 * (it only looks for its path in an executor's command line). No fsync then: after a
 * host crash no executor is left to read it. */
static int prepare_run_dir(const struct container_spec *spec, json_t *launch, char *err, size_t errlen)
{
	static const char *const stale[] = { "exit.json", "executor.json" };
	char path[PATH_MAX];
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(stale); i++)
		if (!path_join(path, sizeof(path), "%s/%s", spec->run_dir, stale[i]))
			unlink(path);
	rc = path_join(path, sizeof(path), "%s/spec.json", spec->run_dir);
	if (!rc)
		rc = json_replace_file(path, launch);
	if (rc)
		snprintf(err, errlen, "cannot write %s/spec.json: %s", spec->run_dir, strerror(-rc));
	return rc;
}

/* The executor failed to start the command: make sure nothing is left running. */
static void abort_launch(struct containerizer *c, struct ctask *t)
{
	cgroup_signal(&c->cg, t->cgroup_rel, SIGKILL);
	if (!wait_executor(t, REAP_TIMEOUT_SECONDS)) {
		kill(t->executor_pid, SIGKILL);
		wait_executor(t, REAP_TIMEOUT_SECONDS);
	}
}

int containerizer_launch(struct containerizer *c, const struct container_spec *spec,
			 pid_t *executor_pid, char *err, size_t errlen)
{
	int ready[2] = { -1, -1 };
	size_t prepared = 0;
	struct ctask *t, *old;
	json_t *launch = NULL;
	pid_t init_pid = 0, pid;
	int rc;

	if (errlen)
		err[0] = '\0';
	if (!valid_name(spec->task_id, TASK_ID_MAX)) {
		snprintf(err, errlen, "invalid task id '%s'", spec->task_id ? spec->task_id : "");
		return -EINVAL;
	}
	if (!spec->sandbox_dir || !spec->run_dir || !spec->command) {
		snprintf(err, errlen, "task %s: sandbox_dir, run_dir and command are required", spec->task_id);
		return -EINVAL;
	}
	t = new_task(c, spec->task_id, spec->run_dir);
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	old = find_task(c, spec->task_id);
	if (old && old->state != CT_ENDED) {
		pthread_mutex_unlock(&c->lock);
		free_task(t);
		snprintf(err, errlen, "task %s is already running", spec->task_id);
		return -EEXIST;
	}
	if (old) {
		unlink_task(c, old);
		free_task(old);
	}
	t->next = c->tasks;
	c->tasks = t;
	pthread_mutex_unlock(&c->lock);

	struct isolator_task it = iso_task(t);

	launch = base_launch_spec(spec);
	if (!launch) {
		rc = -ENOMEM;
		goto err_isolators;
	}
	for (; prepared < NISOLATORS; prepared++) {
		if (!isolators[prepared]->prepare)
			continue;
		rc = isolators[prepared]->prepare(c->iso_state[prepared], &it, spec, launch, err, errlen);
		if (rc) {
			prepared++;     /* a failed prepare still gets its cleanup */
			goto err_isolators;
		}
	}
	if ((rc = prepare_run_dir(spec, launch, err, errlen)))
		goto err_isolators;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(-rc));
		goto err_isolators;
	}
	rc = spawn_executor(c, spec->run_dir, ready[1], &pid);
	close(ready[1]);
	if (rc) {
		snprintf(err, errlen, "cannot start %s: %s", c->executor_path, strerror(-rc));
		goto err_isolators;
	}
	t->executor_pid = pid;
	t->own_child = true;
	t->pidfd = pidfd_open_pid(pid);
	rc = wait_ready(ready[0], spec->run_dir, &init_pid, err, errlen);
	if (rc) {
		abort_launch(c, t);
		goto err_isolators;
	}
	close(ready[0]);
	json_decref(launch);
	for (size_t i = 0; i < NISOLATORS; i++)
		if (isolators[i]->isolate)
			isolators[i]->isolate(c->iso_state[i], &it, init_pid);
	pthread_mutex_lock(&c->lock);
	t->state = CT_RUNNING;
	pthread_mutex_unlock(&c->lock);
	log_info("event=container_started task=%s executor_pid=%d init_pid=%d", spec->task_id, (int)pid,
		 (int)init_pid);
	*executor_pid = pid;
	return 0;

err_isolators:
	if (!err[0])
		snprintf(err, errlen, "cannot launch task %s: %s", spec->task_id, strerror(-rc));
	if (ready[0] >= 0)
		close(ready[0]);
	json_decref(launch);
	while (prepared-- > 0)
		if (isolators[prepared]->cleanup)
			isolators[prepared]->cleanup(c->iso_state[prepared], &it);
	pthread_mutex_lock(&c->lock);
	unlink_task(c, t);
	pthread_mutex_unlock(&c->lock);
	free_task(t);
	log_warn("event=container_launch_failed task=%s error=\"%s\"", spec->task_id, err);
	return rc;
}

/* ---- recover ---------------------------------------------------------------------- */

/* /proc/<pid>/stat field 22 (start time) and field 4 (ppid). */
static int proc_stat(pid_t pid, unsigned long long *start, pid_t *ppid)
{
	char path[64], *text, *p;
	int field = 2;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	text = read_file(path, NULL);
	p = text ? strrchr(text, ')') : NULL;
	if (!p) {
		free(text);
		return -ENOENT;
	}
	for (; *p; p++) {
		if (*p != ' ')
			continue;
		field++;
		if (field == 4)
			*ppid = (pid_t)atoi(p + 1);
		if (field == 22) {
			*start = strtoull(p + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return field == 22 ? 0 : -EINVAL;
}

/* Is pid the pacer-executor of this run dir (and not a process that reused its pid)? */
static bool is_our_executor(pid_t pid, const char *run_dir, bool *own_child)
{
	char path[PATH_MAX], spec[PATH_MAX], *cmd;
	unsigned long long start = 0;
	json_int_t saved = 0;
	bool found = false;
	size_t len;
	pid_t ppid = 0;
	json_t *info;

	if (proc_stat(pid, &start, &ppid))
		return false;
	if (!path_join(path, sizeof(path), "%s/executor.json", run_dir) &&
	    (info = json_load_file(path, 0, NULL))) {
		json_unpack(info, "{s?I}", "start_time", &saved);
		json_decref(info);
		if (saved && (unsigned long long)saved != start)
			return false;
	}
	if (path_join(spec, sizeof(spec), "%s/spec.json", run_dir))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	cmd = read_file(path, &len);
	for (size_t off = 0; cmd && off < len; off += strlen(cmd + off) + 1)
		if (!strcmp(cmd + off, spec))
			found = true;
	free(cmd);
	*own_child = ppid == getpid();
	return found;
}

int containerizer_recover(struct containerizer *c, const char *task_id, const char *run_dir,
			  pid_t executor_pid, struct container_exit *exit)
{
	struct ctask *t, *known;
	double deadline;

	if (!valid_name(task_id, TASK_ID_MAX) || !run_dir)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	known = find_task(c, task_id);
	if (known) {
		int ended = known->state == CT_ENDED;

		if (ended)
			*exit = known->exit;
		pthread_mutex_unlock(&c->lock);
		return ended ? 0 : 1;
	}
	pthread_mutex_unlock(&c->lock);

	t = new_task(c, task_id, run_dir);
	if (!t)
		return -ENOMEM;
	if (executor_pid > 0) {
		t->executor_pid = executor_pid;
		t->pidfd = pidfd_open_pid(executor_pid);
		/* Verify after opening the pidfd: the pidfd cannot be recycled. */
		if (t->pidfd >= 0 && !is_our_executor(executor_pid, run_dir, &t->own_child)) {
			close(t->pidfd);
			t->pidfd = -1;
			t->own_child = false;
		}
	}
	if (t->pidfd < 0 && !t->own_child)
		t->gone = true;
	struct isolator_task it = iso_task(t);

	for (size_t i = 0; i < NISOLATORS; i++)
		if (isolators[i]->recover)
			isolators[i]->recover(c->iso_state[i], &it);
	if (!executor_gone(t)) {
		t->state = CT_RUNNING;
		log_info("event=container_recovered task=%s executor_pid=%d", task_id, (int)executor_pid);
	} else {
		/* Nobody supervises what is left in the cgroup: it must not outlive the record. */
		deadline = now_mono() + REAP_TIMEOUT_SECONDS;
		while (!cgroup_empty(c, t->cgroup_rel) && now_mono() < deadline) {
			cgroup_signal(&c->cg, t->cgroup_rel, SIGKILL);
			usleep(5000);
		}
		read_exit(run_dir, &t->exit);
		t->state = CT_ENDED;
		*exit = t->exit;
		log_info("event=container_ended_while_away task=%s message=\"%s\"", task_id, t->exit.message);
	}
	pthread_mutex_lock(&c->lock);
	known = find_task(c, task_id);
	if (known) {            /* raced with another recover of the same id */
		pthread_mutex_unlock(&c->lock);
		free_task(t);
		return containerizer_recover(c, task_id, run_dir, executor_pid, exit);
	}
	t->next = c->tasks;
	c->tasks = t;
	int running = t->state == CT_RUNNING;

	pthread_mutex_unlock(&c->lock);
	return running;
}

/* ---- poll / kill / usage / cleanup ------------------------------------------------ */

int containerizer_poll(struct containerizer *c, const char *task_id, struct container_exit *exit)
{
	struct ctask *t;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	t = find_task(c, task_id);
	if (!t) {
		rc = -ENOENT;
		goto out;
	}
	if (t->state == CT_LAUNCHING)
		goto out;
	if (t->state == CT_ENDED) {
		*exit = t->exit;
		rc = 1;
		goto out;
	}
	if (t->kill_deadline > 0 && now_mono() >= t->kill_deadline)
		cgroup_signal(&c->cg, t->cgroup_rel, SIGKILL);
	if (!executor_gone(t))
		goto out;
	/* Init's exit empties the pid namespace; only a killed executor leaves processes. */
	if (!cgroup_empty(c, t->cgroup_rel)) {
		cgroup_signal(&c->cg, t->cgroup_rel, SIGKILL);
		goto out;
	}
	read_exit(t->run_dir, &t->exit);
	t->state = CT_ENDED;
	*exit = t->exit;
	rc = 1;
	log_info("event=container_ended task=%s exited=%d code=%d signal=%d oom=%d", task_id,
		 t->exit.exited, t->exit.exit_code, t->exit.signal, t->exit.oom_killed);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int containerizer_kill(struct containerizer *c, const char *task_id, double grace_seconds)
{
	char rel[PATH_MAX];
	struct ctask *t;
	int rc;

	if (!valid_name(task_id, TASK_ID_MAX))
		return -EINVAL;
	if ((rc = path_join(rel, sizeof(rel), "%s/%s", c->agent_cgroup, task_id)))
		return rc;
	pthread_mutex_lock(&c->lock);
	t = find_task(c, task_id);
	if (t && t->state == CT_ENDED) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (t) {
		double deadline = now_mono() + (grace_seconds > 0 ? grace_seconds : 0);

		if (!t->kill_deadline || deadline < t->kill_deadline)
			t->kill_deadline = deadline;
	}
	rc = cgroup_signal(&c->cg, rel, grace_seconds > 0 ? SIGTERM : SIGKILL);
	pthread_mutex_unlock(&c->lock);
	log_info("event=container_kill task=%s grace=%.1f signalled=%d", task_id, grace_seconds, rc);
	if (rc == -ENOENT && t)
		return 0;       /* no cgroup left: the task is already gone */
	return rc < 0 ? rc : 0;
}

int containerizer_usage(struct containerizer *c, const char *task_id, struct container_usage *u)
{
	struct ctask tmp = { 0 };
	int rc = 0;

	memset(u, 0, sizeof(*u));
	if (!valid_name(task_id, TASK_ID_MAX))
		return -EINVAL;
	snprintf(tmp.task_id, sizeof(tmp.task_id), "%s", task_id);
	if (path_join(tmp.cgroup_rel, sizeof(tmp.cgroup_rel), "%s/%s", c->agent_cgroup, task_id))
		return -ENAMETOOLONG;
	if (!cgroup_exists(&c->cg, tmp.cgroup_rel))
		return -ENOENT;
	struct isolator_task it = iso_task(&tmp);

	for (size_t i = 0; i < NISOLATORS; i++) {
		int r = isolators[i]->usage ? isolators[i]->usage(c->iso_state[i], &it, u) : 0;

		if (r && !rc)
			rc = r;
	}
	return rc;
}

/* The task's init from executor.json, checked to be in the task's cgroup (a recycled pid
 * would be somewhere else). 0 if there is none. */
static pid_t container_init(const char *run_dir, const char *cgroup_rel)
{
	char path[PATH_MAX + 32];
	json_t *j;
	pid_t init = 0;
	char *cg;

	if (path_join(path, sizeof(path), "%s/executor.json", run_dir))
		return 0;
	j = json_load_file(path, 0, NULL);
	if (json_is_integer(json_object_get(j, "init_pid")))
		init = (pid_t)json_integer_value(json_object_get(j, "init_pid"));
	json_decref(j);
	if (init <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)init);
	cg = read_file(path, NULL);
	if (!cg || !strstr(cg, cgroup_rel))
		init = 0;
	free(cg);
	return init;
}

int containerizer_exec(struct containerizer *c, const char *task_id,
		       const struct container_exec *x, pid_t *pid, char *err, size_t errlen)
{
	char run_dir[PATH_MAX], rel[PATH_MAX];
	struct ctask *t;
	pid_t init;

	pthread_mutex_lock(&c->lock);
	t = find_task(c, task_id);
	if (!t || t->state != CT_RUNNING || t->kill_deadline > 0) {
		pthread_mutex_unlock(&c->lock);
		snprintf(err, errlen, "the container is not running");
		return -ESRCH;
	}
	memcpy(run_dir, t->run_dir, sizeof(run_dir));
	memcpy(rel, t->cgroup_rel, sizeof(rel));
	pthread_mutex_unlock(&c->lock);
	init = container_init(run_dir, rel);
	if (!init) {
		snprintf(err, errlen, "the container's init is gone");
		return -ESRCH;
	}
	return container_exec_spawn(&c->cg, rel, init, x, pid, err, errlen);
}

int containerizer_cleanup(struct containerizer *c, const char *task_id)
{
	struct ctask *t;
	int rc = 0;

	if (!valid_name(task_id, TASK_ID_MAX))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	t = find_task(c, task_id);
	if (t)
		unlink_task(c, t);
	pthread_mutex_unlock(&c->lock);
	if (!t) {               /* an orphan found by containerizer_list */
		t = new_task(c, task_id, "");
		if (!t)
			return -ENOMEM;
		t->state = CT_ENDED;
	}
	if (t->state != CT_ENDED) {
		cgroup_signal(&c->cg, t->cgroup_rel, SIGKILL);
		wait_executor(t, REAP_TIMEOUT_SECONDS);
	}
	struct isolator_task it = iso_task(t);

	for (size_t i = NISOLATORS; i-- > 0;) {
		int r = isolators[i]->cleanup ? isolators[i]->cleanup(c->iso_state[i], &it) : 0;

		if (r && !rc)
			rc = r;
	}
	free_task(t);
	return rc;
}

json_t *containerizer_list(struct containerizer *c)
{
	json_t *arr = json_array();
	char **names;
	size_t n;

	if (!arr || cgroup_children(&c->cg, c->agent_cgroup, &names, &n))
		return arr;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_string(names[i]));
	cgroup_free_names(names, n);
	return arr;
}

int containerizer_purge(struct containerizer *c)
{
	json_t *ids = containerizer_list(c), *v;
	size_t i;
	int rc = 0;

	json_array_foreach(ids, i, v) {
		int r = containerizer_cleanup(c, json_string_value(v));

		if (r && !rc)
			rc = r;
	}
	json_decref(ids);
	pthread_mutex_lock(&c->lock);
	while (c->tasks) {
		struct ctask *t = c->tasks;

		c->tasks = t->next;
		free_task(t);
	}
	pthread_mutex_unlock(&c->lock);
	for (size_t k = NISOLATORS; k-- > 0;) {
		int r = isolators[k]->purge ? isolators[k]->purge(c->iso_state[k]) : 0;

		if (r && !rc)
			rc = r;
	}
	log_info("event=containerizer_purged agent_id=%s rc=%d", c->agent_id, rc);
	return rc;
}
