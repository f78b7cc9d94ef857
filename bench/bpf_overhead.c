/* bpf_overhead.c - cost of Pacer's per-task accounting (bpf/task_acct.bpf.c) on the
 * workloads it charges: loopback TCP throughput, short TCP connections per second, and
 * small write(2) calls per second (the write syscall-exit program's hot path), each run from inside
 * one task cgroup with 2 threads on the 2 CPUs hitting the same task entry.
 *   bpf_overhead MODE SECONDS [stats]      MODE: none | percpu | atomic | host
 * "stats" turns on the kernel's per-program run-time statistics (ns per run, printed);
 * they cost time themselves, so throughput is measured in runs without them.
 * percpu = the per-CPU hash with plain adds (what the agent uses), atomic = one shared hash
 * with atomic adds, host = percpu loaded but the workload runs outside the task cgroup
 * (what every other process on the node pays). Prints one JSON line. Everything made (cgroup, pins) is removed. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/bpf_common.h"
#include "agent/bpf_net.h"
#include "agent/cgroup_fs.h"
#include "lib/log.h"
#include "lib/util.h"

static double secs;

struct tcp_arg {
	int fd;
	double bytes;
};

static void *tcp_sink(void *p)
{
	struct tcp_arg *a = p;
	static char buf[1 << 16];
	ssize_t r;

	while ((r = read(a->fd, buf, sizeof(buf))) > 0)
		a->bytes += (double)r;
	return NULL;
}

static int listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) ||
	    listen(fd, 1024) || getsockname(fd, (struct sockaddr *)addr, &len))
		return -1;
	return fd;
}

/* Gbit/s of one loopback TCP stream (writer here, reader in a thread). */
static double tcp_throughput(void)
{
	static char buf[1 << 16];
	struct sockaddr_in addr;
	struct tcp_arg a = { 0 };
	pthread_t th;
	double t0, end;
	int l = listener(&addr), c;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)))
		return -1;
	a.fd = accept(l, NULL, NULL);
	pthread_create(&th, NULL, tcp_sink, &a);
	t0 = now_mono();
	end = t0 + secs;
	while (now_mono() < end)
		if (write(c, buf, sizeof(buf)) < 0)
			break;
	shutdown(c, SHUT_WR);
	pthread_join(th, NULL);
	close(c);
	close(a.fd);
	close(l);
	return a.bytes * 8 / (now_mono() - t0) / 1e9;
}

static void *acceptor(void *p)
{
	int l = *(int *)p, fd;

	while ((fd = accept(l, NULL, NULL)) >= 0)
		close(fd);
	return NULL;
}

/* Connections per second: connect + accept + close, sequentially. */
static double conn_rate(void)
{
	struct sockaddr_in addr;
	struct linger lg = { 1, 0 };     /* RST on close: no TIME_WAIT exhaustion */
	pthread_t th;
	double t0, end, n = 0;
	int l = listener(&addr);

	if (l < 0)
		return -1;
	pthread_create(&th, NULL, acceptor, &l);
	t0 = now_mono();
	end = t0 + secs;
	while (now_mono() < end) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)))
			return -1;
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c);
		n++;
	}
	shutdown(l, SHUT_RDWR);
	pthread_join(th, NULL);
	close(l);
	return n / (now_mono() - t0);
}

static void *writer(void *p)
{
	double *n = p, end = now_mono() + secs;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	while (now_mono() < end) {
		for (int i = 0; i < 1000; i++)
			if (write(fd, "x", 1) != 1)
				return NULL;
		*n += 1000;
	}
	close(fd);
	return NULL;
}

/* Million write(2) calls per second, 2 threads. */
static double write_rate(void)
{
	double n[2] = { 0 };
	pthread_t th[2];
	double t0 = now_mono();

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, writer, &n[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	return (n[0] + n[1]) / (now_mono() - t0) / 1e6;
}

/* Average ns per run of every program attached through a link pinned in <pins>/links,
 * from the kernel's own run-time statistics (enabled by main while it holds the fd); each
 * program once (the syscall-exit programs have five links each). */
static void print_prog_stats(const char *pins, FILE *f)
{
	char dir[4096], path[8192];
	uint32_t seen[32];
	int nseen = 0, first = 1;
	struct dirent *de;
	DIR *d;

	path_join(dir, sizeof(dir), "%s/links", pins);
	d = opendir(dir);
	fprintf(f, ",\"ns_per_run\":{");
	while (d && (de = readdir(d))) {
		struct bpf_link_info li = { 0 };
		struct bpf_prog_info pi = { 0 };
		uint32_t len = sizeof(li), plen = sizeof(pi);
		int lfd, pfd;

		if (de->d_name[0] == '.' || path_join(path, sizeof(path), "%s/%s", dir, de->d_name))
			continue;
		lfd = bpf_obj_get(path);
		if (lfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(lfd, &li, &len)) {
			int dup = nseen == (int)ARRAY_SIZE(seen);

			for (int i = 0; i < nseen; i++)
				dup |= seen[i] == li.prog_id;
			if (!dup)
				seen[nseen++] = li.prog_id;
			pfd = dup ? -1 : bpf_prog_get_fd_by_id(li.prog_id);
		} else {
			pfd = -1;
		}
		if (pfd >= 0) {
			if (!bpf_obj_get_info_by_fd(pfd, &pi, &plen) && pi.run_cnt)
				fprintf(f, "%s\"%s\":%.1f", first ? "" : ",", pi.name,
					(double)pi.run_time_ns / (double)pi.run_cnt);
			first = 0;
			close(pfd);
		}
		close(lfd);
	}
	if (d)
		closedir(d);
	fprintf(f, "}");
}

int main(int argc, char **argv)
{
	struct cgroup_layout cg;
	struct bpf_net *net = NULL;
	char err[512], rel[128], dir[4096], pins[4096], id[64];
	const char *mode = argc > 1 ? argv[1] : "";
	int fds[2], status, rc = 1, stats_fd = -1;
	uint64_t cgid;
	double res[3];
	pid_t pid;

	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "stats")) || (strcmp(mode, "none") && strcmp(mode, "percpu") && strcmp(mode, "atomic") &&
				strcmp(mode, "host"))) {
		fprintf(stderr, "usage: bpf_overhead none|percpu|atomic|host SECONDS [stats]\n");
		return 2;
	}
	secs = atof(argv[2]);
	log_init("bpf_overhead", LOG_LVL_WARN);
	if (cgroup_layout_detect(&cg, err, sizeof(err))) {
		fprintf(stderr, "bpf_overhead: %s\n", err);
		return 1;
	}
	snprintf(id, sizeof(id), "bench-%d", (int)getpid());
	snprintf(rel, sizeof(rel), "pacer-bench-bpf/%s", id);
	if (cgroup_create(&cg, rel) || cgroup_unified_dir(&cg, rel, dir, sizeof(dir)) ||
	    cgroup_id(&cg, rel, &cgid)) {
		fprintf(stderr, "bpf_overhead: cannot create cgroup %s\n", rel);
		goto out;
	}
	if (strcmp(mode, "none")) {
		struct bpf_net_opts o = { .shared_map = !strcmp(mode, "atomic") };

		if (bpf_agent_dir("/sys/fs/bpf", id, pins, sizeof(pins), err, sizeof(err)) ||
		    bpf_net_open(pins, &o, &net, err, sizeof(err)) ||
		    bpf_net_attach(net, "bench", dir, cgid, err, sizeof(err))) {
			fprintf(stderr, "bpf_overhead: %s\n", err);
			goto out;
		}
	}
	/* Per-program run time is counted while this fd is open (no global sysctl change). */
	if (argc == 4)
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (pipe(fds))
		goto out;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (strcmp(mode, "host") && cgroup_attach(&cg, rel, getpid()))
			_exit(1);
		res[0] = tcp_throughput();
		res[1] = conn_rate();
		res[2] = write_rate();
		_exit(write(fds[1], res, sizeof(res)) == sizeof(res) ? 0 : 1);
	}
	close(fds[1]);
	if (pid > 0 && read(fds[0], res, sizeof(res)) == sizeof(res)) {
		struct task_acct a = { 0 };

		if (net)
			bpf_net_read(net, cgid, &a);
		printf("{\"mode\":\"%s\",\"tcp_gbps\":%.3f,\"conn_per_s\":%.0f,\"write_mops\":%.3f,"
		       "\"counted_tx_bytes\":%llu,\"counted_connects\":%llu,\"counted_write_bytes\":%llu",
		       mode, res[0], res[1], res[2], (unsigned long long)a.tx_bytes,
		       (unsigned long long)a.tcp_connects, (unsigned long long)a.vfs_write_bytes);
		if (net && stats_fd >= 0)
			print_prog_stats(pins, stdout);
		printf("}\n");
		rc = 0;
	}
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
out:
	if (stats_fd >= 0)
		close(stats_fd);
	if (net) {
		bpf_net_detach(net, "bench", cgid);
		bpf_net_close(net);
	}
	if (strcmp(mode, "none")) {
		path_join(pins, sizeof(pins), "/sys/fs/bpf/pacer/%s", id);
		bpf_remove_pins(pins);
	}
	cgroup_remove(&cg, rel, 5);
	cgroup_remove(&cg, "pacer-bench-bpf", 5);
	return rc;
}
