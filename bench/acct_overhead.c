/* acct_overhead.c - the C half of bench/acct_overhead.sh (the cost of Pacer's per-task
 * accounting for a task on a node with N tasks, against no accounting and iptables):
 *   acct_overhead conn SECONDS
 *       short TCP connections over 127.0.0.1 from the calling process's cgroup: connect,
 *       accept (a second thread), close with RST, one at a time; prints
 *       {"conn_per_s":X,"connections":N,"loop_cpu_us":C} (C: the process's CPU during the
 *       loop, without its start-up).
 *   acct_overhead syscalls
 *       ns per getppid(2) (a syscall no program counts), per 1-byte write(2) to /dev/null
 *       (one the VFS-bytes program counts) and per 1-byte UDP datagram sent to and received
 *       from itself over 127.0.0.1 (an egress and an ingress skb hook, two syscalls), the
 *       best of 5 passes each: what the hooks cost a process; prints
 *       {"getppid_ns":X,"write1_ns":Y,"udp_ns":Z}.
 *   acct_overhead attach CGDIR N ID -- CMD [ARG...]
 *       loads bpf/task_acct.bpf.c through the agent's own loader (agent/bpf_net.c: tracing
 *       programs attached once, maps and links pinned in /sys/fs/bpf/pacer/ID, as an agent
 *       with that id would), attaches the cgroup_skb
 *       programs to CGDIR/t0001 .. CGDIR/tN as the agent does for each task, runs CMD,
 *       prints the counters of CGDIR/tN (the measured task) as one JSON line, then detaches
 *       everything and removes its pins, also when CMD fails or SIGINT/SIGTERM arrives.
 *       With ACCT_HOOKS_ONLY=1 the programs return at once (the attach points' own cost:
 *       the floor under Pacer's accounting). With ACCT_PROG_STATS=1 in the environment the kernel's per-program run-time
 *       statistics are on while CMD runs (they cost time themselves: a separate pass) and
 *       a second line gives each program's runs and ns.
 * The cgroup2 tree and the task cgroups are made by the script. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/bpf_common.h"
#include "agent/bpf_net.h"
#include "agent/cgroup_fs.h"
#include "lib/log.h"
#include "lib/util.h"

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	stop_sig = sig;
}

/* ---- conn ----------------------------------------------------------------------------- */

static void *acceptor(void *p)
{
	int l = *(int *)p, fd;

	while ((fd = accept(l, NULL, NULL)) >= 0)
		close(fd);
	return NULL;
}

static int loopback_listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) || listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)addr, &len)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* CPU time of the whole process (both threads; softirq work done in their context
 * included), in µs. */
static double rusage_us(const struct rusage *r)
{
	return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1e6 +
	       (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec);
}

/* SO_LINGER 0: the close sends a RST, so no TIME_WAIT socket is left per connection and
 * the run never exhausts the ephemeral ports. */
static int conn_rate(double secs)
{
	struct linger lg = { 1, 0 };
	struct sockaddr_in addr;
	struct rusage r0, r1;
	double t0, end, n = 0;
	pthread_t th;
	int l = loopback_listener(&addr), rc = 0;

	if (l < 0) {
		fprintf(stderr, "acct_overhead: listen on 127.0.0.1: %s\n", strerror(-l));
		return 1;
	}
	if (pthread_create(&th, NULL, acceptor, &l)) {
		close(l);
		return 1;
	}
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_mono();
	end = t0 + secs;
	while (now_mono() < end && !stop_sig) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr))) {
			fprintf(stderr, "acct_overhead: connect: %s\n", strerror(errno));
			if (c >= 0)
				close(c);
			rc = 1;
			break;
		}
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c);
		n++;
	}
	end = now_mono();
	shutdown(l, SHUT_RDWR);
	pthread_join(th, NULL);
	getrusage(RUSAGE_SELF, &r1);
	close(l);
	if (!rc)
		printf("{\"conn_per_s\":%.0f,\"connections\":%.0f,\"loop_cpu_us\":%.0f}\n",
		       n / (end - t0), n, rusage_us(&r1) - rusage_us(&r0));
	return rc;
}

/* ---- syscalls ------------------------------------------------------------------------ */

/* One 1-byte UDP datagram to ourselves over loopback, received: one egress and one
 * ingress skb hook run for the process's cgroup, plus two syscalls. */
static int udp_roundtrip(int s, const struct sockaddr_in *to)
{
	char c = 'u';

	if (sendto(s, &c, 1, 0, (const struct sockaddr *)to, sizeof(*to)) != 1)
		return -1;
	return recv(s, &c, 1, 0) == 1 ? 0 : -1;
}

static int syscall_cost(void)
{
	enum { N = 1000000, NU = 200000, PASSES = 5 };
	double best_g = 1e9, best_w = 1e9, best_u = 1e9;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	char c = 'x';
	int rc = 1;

	if (fd < 0 || s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(s, (struct sockaddr *)&a, &alen))
		goto out;
	for (int p = 0; p < PASSES; p++) {
		double t0 = now_mono(), t1, t2, t3;

		for (int i = 0; i < N; i++)
			syscall(SYS_getppid);
		t1 = now_mono();
		for (int i = 0; i < N; i++)
			if (write(fd, &c, 1) != 1)
				goto out;
		t2 = now_mono();
		for (int i = 0; i < NU; i++)
			if (udp_roundtrip(s, &a))
				goto out;
		t3 = now_mono();
		best_g = t1 - t0 < best_g ? t1 - t0 : best_g;
		best_w = t2 - t1 < best_w ? t2 - t1 : best_w;
		best_u = t3 - t2 < best_u ? t3 - t2 : best_u;
	}
	printf("{\"getppid_ns\":%.1f,\"write1_ns\":%.1f,\"udp_ns\":%.1f}\n", best_g * 1e9 / N,
	       best_w * 1e9 / N, best_u * 1e9 / NU);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (s >= 0)
		close(s);
	return rc;
}

/* ---- attach --------------------------------------------------------------------------- */

/* The cgroup2 id of a directory is its inode number (what bpf_skb_cgroup_id returns). */
static int dir_cgroup_id(const char *dir, uint64_t *id)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return -errno;
	*id = st.st_ino;
	return 0;
}

static void task_name(char *out, size_t len, int i)
{
	snprintf(out, len, "t%04d", i);
}

/* Level of dir in the cgroup2 hierarchy (the agent's task_level: its task cgroups are
 * pacer/<agent-id>/<task-id>, level 3; the script uses the same depth). The cgroup2 mount
 * is found as the agent finds it (agent/cgroup_layout.c). 0 if dir is not under it. */
static uint32_t cgroup_level(const char *dir)
{
	struct cgroup_layout l;
	char err[256];
	size_t len;
	uint32_t level = 0;

	if (cgroup_layout_detect(&l, err, sizeof(err)))
		return 0;
	len = strlen(l.unified);
	if (strncmp(dir, l.unified, len) || dir[len] != '/')
		return 0;
	for (const char *p = dir + len; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			level++;
	return level;
}

/* Runs and run time of every program attached through a link pinned in <pindir>/links
 * (each program once: the N tasks' links share the two cgroup_skb programs). */
static void print_prog_stats(const char *pindir)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	uint32_t seen[16];
	int nseen = 0, first = 1;
	struct dirent *de;
	DIR *d;

	if (path_join(dir, sizeof(dir), "%s/links", pindir) || !(d = opendir(dir)))
		return;
	printf("{\"prog_stats\":{");
	while ((de = readdir(d)) && nseen < (int)ARRAY_SIZE(seen)) {
		struct bpf_link_info li = { 0 };
		struct bpf_prog_info pi = { 0 };
		uint32_t len = sizeof(li), plen = sizeof(pi);
		int lfd, pfd, dup = 0;

		if (de->d_name[0] == '.' || path_join(path, sizeof(path), "%s/%s", dir, de->d_name))
			continue;
		lfd = bpf_obj_get(path);
		if (lfd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(lfd, &li, &len)) {
			close(lfd);
			continue;
		}
		close(lfd);
		for (int i = 0; i < nseen; i++)
			dup |= seen[i] == li.prog_id;
		if (dup || (pfd = bpf_prog_get_fd_by_id(li.prog_id)) < 0)
			continue;
		seen[nseen++] = li.prog_id;
		if (!bpf_obj_get_info_by_fd(pfd, &pi, &plen))
			printf("%s\"%s\":{\"runs\":%llu,\"ns\":%llu}", first ? "" : ",", pi.name,
			       (unsigned long long)pi.run_cnt, (unsigned long long)pi.run_time_ns);
		first = 0;
		close(pfd);
	}
	closedir(d);
	printf("}}\n");
}

static pid_t spawn(char **argv)
{
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "acct_overhead: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Waits for pid; a signal to us is passed on to it (the script's trap does the rest). */
static int wait_child(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 1;
		if (stop_sig)
			kill(pid, SIGTERM);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int attach_run(const char *cgdir, int n, const char *id, char **cmd)
{
	struct bpf_net_opts opts = { .task_level = 0 };
	struct bpf_net *net = NULL;
	uint64_t *ids = calloc((size_t)n + 1, sizeof(*ids));
	char err[512] = "", dir[PATH_MAX], pindir[PATH_MAX] = "", name[16];
	struct task_acct a = { 0 };
	int attached = 0, rc = 1, stats_fd = -1;
	double t0 = now_mono(), t_attach;
	pid_t pid;

	if (!ids)
		return 1;
	path_join(dir, sizeof(dir), "%s/%s", cgdir, "t0001");
	opts.task_level = cgroup_level(dir);
	opts.hooks_only = getenv("ACCT_HOOKS_ONLY") && !strcmp(getenv("ACCT_HOOKS_ONLY"), "1");
	if (bpf_agent_dir("/sys/fs/bpf", id, pindir, sizeof(pindir), err, sizeof(err)) ||
	    bpf_net_open(pindir, &opts, &net, err, sizeof(err))) {
		fprintf(stderr, "acct_overhead: %s\n", err);
		goto out;
	}
	for (int i = 1; i <= n && !stop_sig; i++) {
		task_name(name, sizeof(name), i);
		if (path_join(dir, sizeof(dir), "%s/%s", cgdir, name) || dir_cgroup_id(dir, &ids[i])) {
			fprintf(stderr, "acct_overhead: no cgroup %s/%s\n", cgdir, name);
			goto out;
		}
		if (bpf_net_attach(net, name, dir, ids[i], err, sizeof(err))) {
			fprintf(stderr, "acct_overhead: %s\n", err);
			goto out;
		}
		attached = i;
	}
	if (stop_sig)
		goto out;
	t_attach = now_mono() - t0;
	/* Counted while this fd is open: no global sysctl change, nothing to undo. */
	if (getenv("ACCT_PROG_STATS") && !strcmp(getenv("ACCT_PROG_STATS"), "1"))
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	pid = spawn(cmd);
	if (pid < 0)
		goto out;
	rc = wait_child(pid);
	if (bpf_net_read(net, ids[n], &a) == 0)
		printf("{\"tasks\":%d,\"task_level\":%u,\"attach_s\":%.3f,\"tx_bytes\":%llu,"
		       "\"rx_bytes\":%llu,\"tx_packets\":%llu,\"rx_packets\":%llu,"
		       "\"tcp_connects\":%llu,\"tcp_accepts\":%llu,\"cpu_ns\":%llu}\n",
		       n, opts.task_level, t_attach, (unsigned long long)a.tx_bytes,
		       (unsigned long long)a.rx_bytes, (unsigned long long)a.tx_packets,
		       (unsigned long long)a.rx_packets, (unsigned long long)a.tcp_connects,
		       (unsigned long long)a.tcp_accepts, (unsigned long long)a.cpu_ns);
	if (stats_fd >= 0)
		print_prog_stats(pindir);
out:
	if (stats_fd >= 0)
		close(stats_fd);
	for (int i = 1; i <= attached; i++) {
		task_name(name, sizeof(name), i);
		bpf_net_detach(net, name, ids[i]);
	}
	bpf_net_close(net);
	if (pindir[0] && bpf_remove_pins(pindir) && !rc) {
		fprintf(stderr, "acct_overhead: cannot remove the pins in %s\n", pindir);
		rc = 1;
	}
	free(ids);
	return stop_sig ? 128 + stop_sig : rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: acct_overhead conn SECONDS\n"
			"       acct_overhead syscalls\n"
			"       acct_overhead attach CGDIR N ID -- CMD [ARG...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };   /* no SA_RESTART: waits return */
	char *end;
	long n;

	log_init("acct_overhead", LOG_LVL_WARN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (argc == 3 && !strcmp(argv[1], "conn")) {
		double secs = strtod(argv[2], &end);

		if (*end || secs <= 0)
			return usage();
		return conn_rate(secs);
	}
	if (argc == 2 && !strcmp(argv[1], "syscalls"))
		return syscall_cost();
	if (argc < 7 || strcmp(argv[1], "attach") || strcmp(argv[5], "--"))
		return usage();
	n = strtol(argv[3], &end, 10);
	if (*end || n < 1 || n > 9999 || !argv[4][0] || strchr(argv[4], '/'))
		return usage();
	return attach_run(argv[2], (int)n, argv[4], argv + 6);
}
