/* floor.c - the launch-latency floor for `make bench`: what it costs the kernel alone to
 * start a command, measured the same way the benchmark measures Pacer (start -> the
 * command has been exec'd), so Pacer's POST->TASK_RUNNING latency can be read as a
 * multiple of it.
 *
 *   floor [-w] [-p MS] fork N OUT cmd [args...]
 *       plain fork + exec, N times
 *   floor [-w] [-p MS] ns N OUT cmd [args...]
 *       per launch: a cgroup (v1 cpu + memory and a v2 dir on a hybrid host; cpu + memory
 *       controllers on pure v2) with cpu and memory limits, then clone into new PID, mount,
 *       UTS and IPC namespaces, private mounts, a fresh /proc, a hostname, join the
 *       cgroups, exec
 *
 * After WARMUP uncounted launches, one sample per line (nanoseconds) goes to OUT. "Exec'd"
 * is observed as EOF on a close-on-exec pipe held by the child, so nothing the command
 * does afterwards counts. After each sample the command's process tree is killed and its
 * cgroups removed (not timed); with -w the command is instead left to exit by itself (to
 * check what it sees: its cgroups, PID namespace, hostname). -p MS idles MS milliseconds
 * between launches: moving a task into a cgroup can wait for an RCU grace period when no
 * other move happened just before, which back-to-back launches never show. Needs root for
 * the ns mode. Exit status 0 only if every launch succeeded. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#define CG_ROOT "/sys/fs/cgroup"
#define CG_PARENT "pacer-bench-floor"
#define CPUS 0.1                 /* limits like a small Marathon app: 0.1 cpus, 32 MiB */
#define MEM_BYTES (32ull << 20)
#define CFS_PERIOD_US 100000
#define WARMUP 3                 /* uncounted first launches, as the Pacer case has */

/* The cgroup directories of one launch; an empty string means "not used". */
struct cgroups {
	char v2[256];                  /* the cgroup2 dir (pure v2: with cpu+memory limits) */
	char cpu[256];                 /* hybrid: v1 cpu hierarchy */
	char mem[256];                 /* hybrid: v1 memory hierarchy */
};

/* Where the hierarchies are; found once by detect_layout(). */
static bool pure_v2;
static char v2_root[64];
static bool wait_exit;          /* -w: let the command finish instead of killing it */
static long pause_ms;           /* -p MS: idle time between launches (not timed) */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fs_type(const char *path, long magic)
{
	struct statfs s;

	if (statfs(path, &s) < 0)
		return -errno;
	return s.f_type == magic ? 1 : 0;
}

static int write_file(const char *dir, const char *name, const char *fmt, ...)
{
	char path[512], buf[64];
	va_list ap;
	int fd, len, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != len)
		rc = -errno;
	close(fd);
	return rc;
}

static int mkdir_ok(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Pure v2 when /sys/fs/cgroup itself is cgroup2; hybrid when cgroup2 sits at
 * /sys/fs/cgroup/unified and cpu/memory are v1 hierarchies. */
static int detect_layout(void)
{
	if (fs_type(CG_ROOT, CGROUP2_SUPER_MAGIC) == 1) {
		pure_v2 = true;
		snprintf(v2_root, sizeof(v2_root), "%s", CG_ROOT);
		return 0;
	}
	if (fs_type(CG_ROOT "/unified", CGROUP2_SUPER_MAGIC) != 1 ||
	    fs_type(CG_ROOT "/cpu", CGROUP_SUPER_MAGIC) != 1 ||
	    fs_type(CG_ROOT "/memory", CGROUP_SUPER_MAGIC) != 1) {
		fprintf(stderr, "floor: no cgroup2 at %s or %s/unified with v1 cpu+memory\n",
			CG_ROOT, CG_ROOT);
		return -ENOENT;
	}
	snprintf(v2_root, sizeof(v2_root), "%s/unified", CG_ROOT);
	return 0;
}

/* The per-run parent dirs; on pure v2 the parent hands cpu+memory down to its children. */
static int make_parents(void)
{
	char path[256];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", v2_root, CG_PARENT);
	rc = mkdir_ok(path);
	if (rc == 0 && pure_v2)
		rc = write_file(path, "cgroup.subtree_control", "+cpu +memory");
	if (rc == 0 && !pure_v2)
		rc = mkdir_ok(CG_ROOT "/cpu/" CG_PARENT);
	if (rc == 0 && !pure_v2)
		rc = mkdir_ok(CG_ROOT "/memory/" CG_PARENT);
	if (rc < 0)
		fprintf(stderr, "floor: cannot prepare %s cgroups: %s\n", CG_PARENT, strerror(-rc));
	return rc;
}

static void remove_parents(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", v2_root, CG_PARENT);
	rmdir(path);
	if (!pure_v2) {
		rmdir(CG_ROOT "/cpu/" CG_PARENT);
		rmdir(CG_ROOT "/memory/" CG_PARENT);
	}
}

/* The timed part of cgroup work: create the dirs and set the limits. */
static int cgroups_create(struct cgroups *cg, int i)
{
	long quota = (long)(CPUS * CFS_PERIOD_US);
	int rc;

	memset(cg, 0, sizeof(*cg));
	snprintf(cg->v2, sizeof(cg->v2), "%s/%s/l%d-%d", v2_root, CG_PARENT, (int)getpid(), i);
	rc = mkdir_ok(cg->v2);
	if (rc < 0)
		return rc;
	if (pure_v2) {
		rc = write_file(cg->v2, "cpu.max", "%ld %d", quota, CFS_PERIOD_US);
		if (rc == 0)
			rc = write_file(cg->v2, "memory.max", "%llu", MEM_BYTES);
		return rc;
	}
	snprintf(cg->cpu, sizeof(cg->cpu), CG_ROOT "/cpu/%s/l%d-%d", CG_PARENT, (int)getpid(), i);
	snprintf(cg->mem, sizeof(cg->mem), CG_ROOT "/memory/%s/l%d-%d", CG_PARENT, (int)getpid(), i);
	rc = mkdir_ok(cg->cpu);
	if (rc == 0)
		rc = write_file(cg->cpu, "cpu.shares", "%d", (int)(CPUS * 1024));
	if (rc == 0)
		rc = write_file(cg->cpu, "cpu.cfs_quota_us", "%ld", quota);
	if (rc == 0)
		rc = mkdir_ok(cg->mem);
	if (rc == 0)
		rc = write_file(cg->mem, "memory.limit_in_bytes", "%llu", MEM_BYTES);
	return rc;
}

static void cgroups_remove(const struct cgroups *cg)
{
	const char *dirs[] = { cg->v2, cg->cpu, cg->mem };

	for (size_t i = 0; i < 3; i++)
		if (dirs[i][0] && rmdir(dirs[i]) < 0 && errno != ENOENT)
			fprintf(stderr, "floor: rmdir %s: %s\n", dirs[i], strerror(errno));
}

/* In the child: join every cgroup ("0" = the writer itself). */
static int cgroups_join(const struct cgroups *cg)
{
	const char *dirs[] = { cg->v2, cg->cpu, cg->mem };
	int rc;

	for (size_t i = 0; i < 3; i++) {
		if (!dirs[i][0])
			continue;
		rc = write_file(dirs[i], "cgroup.procs", "0");
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* In the child, inside its new namespaces: mounts private, own /proc, own hostname. */
static int container_setup(void)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	if (sethostname("floor", 5) < 0)
		return -errno;
	return 0;
}

/* The child's last words before exec fails: the error travels over the exec pipe. */
static _Noreturn void child_fail(int fd, int err)
{
	if (write(fd, &err, sizeof(err)) < 0)
		_exit(126);
	_exit(127);
}

/* One launch. Returns the ns from start until the command was exec'd, or -errno. */
static int64_t launch(bool ns, char **argv, int i)
{
	struct cgroups cg = { 0 };
	int pfd[2], err = 0, rc;
	uint64_t t0, t1 = 0;
	ssize_t n;
	pid_t pid;

	t0 = now_ns();
	if (ns) {
		rc = cgroups_create(&cg, i);
		if (rc < 0)
			goto out_cg;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out_cg;
	}
	if (ns)
		pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
			      SIGCHLD, NULL, NULL, NULL, NULL);
	else
		pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		goto out_cg;
	}
	if (pid == 0) {
		close(pfd[0]);
		if (!ns && setpgid(0, 0) < 0)
			child_fail(pfd[1], errno);
		if (ns) {
			rc = cgroups_join(&cg);
			if (rc == 0)
				rc = container_setup();
			if (rc < 0)
				child_fail(pfd[1], -rc);
		}
		execv(argv[0], argv);
		child_fail(pfd[1], errno);
	}
	close(pfd[1]);
	n = read(pfd[0], &err, sizeof(err));
	t1 = now_ns();
	close(pfd[0]);
	rc = n == 0 ? 0 : (n == sizeof(err) ? -err : -EIO);

	/* Not timed: end the tree (PID 1 of a PID namespace takes all with it) and reap. */
	if (!wait_exit)
		kill(ns ? pid : -pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
out_cg:
	if (ns)
		cgroups_remove(&cg);
	return rc < 0 ? rc : (int64_t)(t1 - t0);
}

static int usage(void)
{
	fprintf(stderr, "usage: floor [-w] [-p MS] fork|ns N OUT /abs/cmd [args...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int64_t dt;
	bool ns;
	FILE *out;
	long n;
	int rc = 0;

	while (argc > 1 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "-w")) {
			wait_exit = true;
		} else if (!strcmp(argv[1], "-p") && argc > 2) {
			pause_ms = strtol(argv[2], NULL, 10);
			argv++;
			argc--;
		} else {
			return usage();
		}
		argv++;
		argc--;
	}
	if (argc < 5 || argv[4][0] != '/')
		return usage();
	if (strcmp(argv[1], "fork") && strcmp(argv[1], "ns"))
		return usage();
	ns = !strcmp(argv[1], "ns");
	n = strtol(argv[2], NULL, 10);
	if (n <= 0)
		return usage();
	out = fopen(argv[3], "we");
	if (!out) {
		fprintf(stderr, "floor: %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	if (ns && (detect_layout() < 0 || make_parents() < 0)) {
		rc = 1;
		goto out;
	}
	for (long i = -WARMUP; i < n; i++) {
		dt = launch(ns, argv + 4, (int)(i + WARMUP));
		if (dt < 0) {
			fprintf(stderr, "floor: %s launch %ld of %s: %s\n", argv[1], i, argv[4],
				strerror((int)-dt));
			rc = 1;
			break;
		}
		if (i >= 0)
			fprintf(out, "%lld\n", (long long)dt);
		if (pause_ms > 0)
			nanosleep(&(struct timespec){ pause_ms / 1000, (pause_ms % 1000) * 1000000 }, NULL);
	}
	if (ns)
		remove_parents();
	if (ns)
		printf("floor: cgroup layout %s (v2 at %s)\n", pure_v2 ? "pure v2" : "hybrid", v2_root);
out:
	if (fclose(out) != 0)
		rc = 1;
	return rc;
}
