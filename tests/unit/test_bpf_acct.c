/* test_bpf_acct.c - exactness of the per-task BPF accounting (bpf/task_acct.bpf.c) against
 * the real kernel (root): tasks run through the containerizer and pacer-executor, their
 * counters are read from the pinned maps (as pacer-bpf does) and compared with what the
 * kernel itself says (TCP_INFO, the cgroup's cpu accounting) or with what the task did.
 * Everything is made under a fresh agent id and purged in the group teardown. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/containerizer.h"
#include "bpf/task_acct.skel.h"
#include "bpf/task_acct_read.h"
#include "lib/log.h"
#include "lib/util.h"

#define MiB (1024ULL * 1024ULL)

static struct containerizer *cz, *cz2;       /* cz2: a second agent on the same host */
static struct containerizer_config cfg;
static char work_dir[PATH_MAX];
static char agent_id[64];
static char bin_dir[PATH_MAX];
static char executor[PATH_MAX];
static char pin_dir[PATH_MAX];
static const char *bpffs = "/sys/fs/bpf";

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

static int group_setup(void **state)
{
	char err[512] = "", self[PATH_MAX], hex[9];
	ssize_t n;

	(void)state;
	log_init("test_bpf_acct", LOG_LVL_WARN);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	snprintf(bin_dir, sizeof(bin_dir), "%s/..", dirname(self));
	if (getenv("PACER_EXECUTOR"))
		snprintf(executor, sizeof(executor), "%s", getenv("PACER_EXECUTOR"));
	else
		path_join(executor, sizeof(executor), "%s/pacer-executor", bin_dir);
	if (access(executor, X_OK)) {
		fprintf(stderr, "pacer-executor not found at %s\n", executor);
		return -1;
	}
	snprintf(work_dir, sizeof(work_dir), "/tmp/pacer-acct-XXXXXX");
	if (!mkdtemp(work_dir))
		return -1;
	random_hex(hex, 8);
	snprintf(agent_id, sizeof(agent_id), "acct-%s", hex);
	snprintf(pin_dir, sizeof(pin_dir), "%s/pacer/%s", bpffs, agent_id);
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
	struct stat st;
	int rc = 0;

	(void)state;
	if (!cz && containerizer_create(&cfg, &cz, (char[256]){ 0 }, 256))
		fprintf(stderr, "cannot purge agent %s\n", agent_id);
	if (cz2) {
		containerizer_purge(cz2);
		containerizer_destroy(cz2);
		cz2 = NULL;
	}
	if (cz) {
		containerizer_purge(cz);
		containerizer_destroy(cz);
		cz = NULL;
	}
	if (stat(pin_dir, &st) == 0) {
		fprintf(stderr, "leftover pins in %s\n", pin_dir);
		rc = -1;
	}
	remove_tree(work_dir);
	return rc;
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

static pid_t launch(struct task_dirs *d, const char *cmd)
{
	struct container_spec spec = { .task_id = d->id, .sandbox_dir = d->sandbox,
				       .run_dir = d->run, .shell = true, .command = cmd,
				       .cpus = 2, .mem_bytes = 256 * MiB };
	char err[512] = "";
	pid_t pid = 0;

	if (containerizer_launch(cz, &spec, &pid, err, sizeof(err)))
		fail_msg("launch of %s failed: %s", d->id, err);
	return pid;
}

static void wait_exit(const char *id, double timeout)
{
	double deadline = now_mono() + timeout;
	struct container_exit e;

	for (;;) {
		int rc = containerizer_poll(cz, id, &e);

		assert_true(rc >= 0);
		if (rc == 1) {
			if (!e.exited || e.exit_code)
				fail_msg("task %s failed: %s", id, e.message);
			return;
		}
		if (now_mono() > deadline)
			fail_msg("task %s did not end within %.1f s", id, timeout);
		sleep_ms(10);
	}
}

static int pinned(const char *dir, const char *name)
{
	char path[PATH_MAX];

	assert_int_equal(path_join(path, sizeof(path), "%s/%s", dir, name), 0);
	return bpf_obj_get(path);
}

/* The task's counters in the maps pinned in dir, as pacer-bpf reads them: its cgroup id
 * from `tracked`, the sum over CPUs of its `task_acct` entry and of its cgroup's
 * `task_net` storage. -ENOENT if not tracked. */
static int read_acct_in(const char *dir, const char *task_id, struct task_acct *out)
{
	int tracked = pinned(dir, "tracked"), acct = pinned(dir, "task_acct");
	int net = pinned(dir, "task_net");
	uint64_t key, *prev = NULL, found = 0;
	struct tracked_task name;
	int rc;

	assert_true(tracked >= 0 && acct >= 0 && net >= 0);
	while (bpf_map_get_next_key(tracked, prev, &key) == 0) {
		if (bpf_map_lookup_elem(tracked, &key, &name) == 0 && !strcmp(name.task_id, task_id))
			found = key;
		prev = &key;
	}
	rc = found ? task_acct_read(acct, task_acct_map_percpu(acct), net, task_acct_map_percpu(net),
				    found, out) : -ENOENT;
	close(tracked);
	close(acct);
	close(net);
	return rc;
}

static void read_acct(const char *task_id, struct task_acct *out)
{
	assert_int_equal(read_acct_in(pin_dir, task_id, out), 0);
}

static void cleanup(const struct task_dirs *d)
{
	assert_int_equal(containerizer_cleanup(cz, d->id), 0);
}

/* A task command sending n UDP datagrams of size bytes to addr. */
static void udp_sender_cmd(char *cmd, size_t len, int n, int size,
			   const struct sockaddr_in *addr)
{
	snprintf(cmd, len,
		 "exec /usr/bin/python3 -c \"import socket\n"
		 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
		 "for i in range(%d): s.sendto(b'x' * %d, ('127.0.0.1', %d))\n\"",
		 n, size, ntohs(addr->sin_port));
}

static int bound_udp(struct sockaddr_in *addr)
{
	socklen_t alen = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	*addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &alen), 0);
	return fd;
}

/* N datagrams of S bytes: each is S + 8 (UDP) + 20 (IPv4) bytes at the egress hook. */
static void test_udp_exact(void **state)
{
	enum { N = 40, S = 500 };
	struct sockaddr_in addr;
	struct task_dirs d;
	struct task_acct a;
	char cmd[1024];
	int fd = bound_udp(&addr);

	(void)state;
	make_dirs(&d, "udp");
	udp_sender_cmd(cmd, sizeof(cmd), N, S, &addr);
	launch(&d, cmd);
	wait_exit(d.id, 20);
	read_acct(d.id, &a);
	assert_int_equal(a.tx_packets, N);
	assert_int_equal(a.tx_bytes, (uint64_t)N * (S + 28));
	assert_int_equal(a.udp_tx_datagrams, N);
	assert_int_equal(a.rx_packets, 0);
	assert_int_equal(a.udp_rx_datagrams, 0);
	assert_int_equal(a.tcp_connects, 0);
	assert_int_equal(a.policy_denials, 0);
	close(fd);
	cleanup(&d);
}

static int accept_within(int lfd, double timeout)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, (int)(timeout * 1000)) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* The task first connects to a listener of its own (one connect, one accept), then
 * connects to the test, sends M bytes, receives R, prints its TCP_INFO byte counts and
 * closes. For the task's side:
 *   tx_bytes = tcpi_bytes_sent (payload sent, retransmissions included: a loaded machine
 *              does retransmit on loopback) + headers of its tx_packets skbs
 *   rx_bytes = tcpi_bytes_received + headers of its rx_packets skbs
 * with every header between 40 (IPv4 + bare TCP) and 80 bytes (TCP options of a SYN);
 * the self-connection adds only header-only skbs on both sides. */
static void test_tcp_bytes_and_connections(void **state)
{
	enum { M = 3000000, R = 123457 };
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	struct task_dirs d;
	struct task_acct a;
	char cmd[2048], *buf, *out, path[PATH_MAX];
	unsigned long long acked = 0, received = 0, sent = 0;
	size_t got = 0;
	int lfd, cfd;
	ssize_t r;

	(void)state;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr, &alen), 0);
	make_dirs(&d, "tcp");
	snprintf(cmd, sizeof(cmd),
		 "exec /usr/bin/python3 -c \"import socket, struct\n"
		 "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n"
		 "c0 = socket.create_connection(l.getsockname()); a0, _ = l.accept()\n"
		 "a0.close(); c0.close(); l.close()\n"
		 "s = socket.create_connection(('127.0.0.1', %d))\n"
		 "s.sendall(b'm' * %d)\n"
		 "n = 0\n"
		 "while n < %d:\n"
		 "    b = s.recv(65536)\n"
		 "    assert b\n"
		 "    n += len(b)\n"
		 "i = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)\n"
		 "print(*struct.unpack_from('QQ', i, 120), *struct.unpack_from('Q', i, 200))\n"
		 "s.close()\n\"",
		 ntohs(addr.sin_port), M, R);
	launch(&d, cmd);
	cfd = accept_within(lfd, 20);
	assert_true(cfd >= 0);
	buf = calloc(1, 1 << 16);
	assert_non_null(buf);
	while (got < M) {
		r = read(cfd, buf, 1 << 16);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(got, M);
	memset(buf, 'r', 1 << 16);
	for (size_t sent = 0; sent < R; sent += (size_t)r) {
		r = write(cfd, buf, R - sent < (1 << 16) ? R - sent : (1 << 16));
		assert_true(r > 0);
	}
	wait_exit(d.id, 30);
	close(cfd);
	close(lfd);
	free(buf);
	assert_int_equal(path_join(path, sizeof(path), "%s/stdout", d.sandbox), 0);
	out = read_file(path, NULL);
	assert_non_null(out);
	assert_int_equal(sscanf(out, "%llu %llu %llu", &acked, &received, &sent), 3);
	free(out);
	assert_int_equal(acked, M + 1);
	assert_int_equal(received, R);
	read_acct(d.id, &a);
	print_message("tcp: acked %llu sent %llu received %llu; tx %llu B / %llu pkts, rx %llu B / %llu pkts\n",
		      acked, sent, received, (unsigned long long)a.tx_bytes, (unsigned long long)a.tx_packets,
		      (unsigned long long)a.rx_bytes, (unsigned long long)a.rx_packets);
	assert_int_equal(a.tcp_connects, 2);
	assert_int_equal(a.tcp_accepts, 1);
	assert_int_equal(a.udp_tx_datagrams, 0);
	assert_true(sent >= acked - 1);
	assert_true(a.tx_bytes >= sent + 40 * a.tx_packets);
	assert_true(a.tx_bytes <= sent + 80 * a.tx_packets);
	assert_true(a.rx_bytes >= received + 40 * a.rx_packets);
	assert_true(a.rx_bytes <= received + 80 * a.rx_packets);
	cleanup(&d);
}

/* A CPU burner: the BPF cpu_ns (sched_switch) is within 1% of the cgroup's own cpu
 * accounting (cpuacct.usage on hybrid, cpu.stat usage_usec on v2). */
static void test_cpu_within_one_percent(void **state)
{
	struct container_usage u;
	struct task_dirs d;
	struct task_acct a;
	double diff;

	(void)state;
	make_dirs(&d, "cpu");
	launch(&d, "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done");
	wait_exit(d.id, 60);
	assert_int_equal(containerizer_usage(cz, d.id, &u), 0);
	read_acct(d.id, &a);
	assert_true(u.cpu_ns > 100000000ULL);        /* the burner ran > 100 ms */
	diff = (double)a.cpu_ns - (double)u.cpu_ns;
	if (diff < 0)
		diff = -diff;
	print_message("cpu: bpf %llu ns, cgroup %llu ns (%.3f%% apart)\n",
		      (unsigned long long)a.cpu_ns, (unsigned long long)u.cpu_ns,
		      100.0 * diff / (double)u.cpu_ns);
	if (diff > 0.01 * (double)u.cpu_ns)
		fail_msg("bpf cpu_ns %llu vs cgroup %llu: %.3f%% apart", (unsigned long long)a.cpu_ns,
			 (unsigned long long)u.cpu_ns, 100.0 * diff / (double)u.cpu_ns);
	cleanup(&d);
}

/* An agent restart in the middle of a CPU burner: the pinned tracing links kept counting
 * while no agent ran, the new agent reuses them (no second copy attached), so the total
 * still matches the cgroup's own accounting within 1%. */
static void test_cpu_continues_across_restart(void **state)
{
	struct container_usage u;
	struct container_exit e;
	struct task_dirs d;
	struct task_acct a = { 0 };
	char err[512];
	double deadline, diff;
	pid_t pid;

	(void)state;
	make_dirs(&d, "cpurestart");
	pid = launch(&d, "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done");
	deadline = now_mono() + 20;
	while (a.cpu_ns < 50000000ULL && now_mono() < deadline) {
		sleep_ms(10);
		read_acct(d.id, &a);
	}
	assert_true(a.cpu_ns >= 50000000ULL);
	containerizer_destroy(cz);
	cz = NULL;
	sleep_ms(100);                                 /* the task runs with no agent */
	if (containerizer_create(&cfg, &cz, err, sizeof(err)))
		fail_msg("containerizer_create after restart: %s", err);
	assert_true(containerizer_recover(cz, d.id, d.run, pid, &e) >= 0);
	wait_exit(d.id, 60);
	assert_int_equal(containerizer_usage(cz, d.id, &u), 0);
	read_acct(d.id, &a);
	diff = (double)a.cpu_ns - (double)u.cpu_ns;
	if (diff < 0)
		diff = -diff;
	print_message("cpu across restart: bpf %llu ns, cgroup %llu ns (%.3f%% apart)\n",
		      (unsigned long long)a.cpu_ns, (unsigned long long)u.cpu_ns,
		      100.0 * diff / (double)u.cpu_ns);
	if (diff > 0.01 * (double)u.cpu_ns)
		fail_msg("cpu_ns drifted across the restart");
	cleanup(&d);
}

/* A task writing K bytes to a file: vfs_write_bytes >= K and within 1% of it. */
static void test_vfs_write_bytes(void **state)
{
	enum { K = 8 * 1024 * 1024 };
	struct task_dirs d;
	struct task_acct a;
	char cmd[512];

	(void)state;
	make_dirs(&d, "vfs");
	assert_int_equal(path_join(cmd, sizeof(cmd), "head -c %d /dev/zero > %s/out.bin", K, d.sandbox), 0);
	launch(&d, cmd);
	wait_exit(d.id, 30);
	read_acct(d.id, &a);
	print_message("vfs: wrote %llu read %llu for K=%d\n", (unsigned long long)a.vfs_write_bytes,
		      (unsigned long long)a.vfs_read_bytes, K);
	assert_true(a.vfs_write_bytes >= K);
	assert_true(a.vfs_write_bytes <= K + K / 100);
	assert_true(a.vfs_read_bytes >= K);
	cleanup(&d);
}

/* The network counters live in the task cgroup's storage, which lasts as long as the skb
 * programs' pinned links: they are all there after the task ended (its cgroup empty) and
 * after an agent restart, and go with the task's cleanup. */
static void test_net_counters_survive_restart(void **state)
{
	enum { N = 7, S = 100 };
	struct sockaddr_in addr;
	struct task_dirs d;
	struct task_acct a;
	char cmd[1024], err[512];
	int fd = bound_udp(&addr);

	(void)state;
	make_dirs(&d, "netrestart");
	udp_sender_cmd(cmd, sizeof(cmd), N, S, &addr);
	launch(&d, cmd);
	wait_exit(d.id, 20);
	containerizer_destroy(cz);
	cz = NULL;
	read_acct(d.id, &a);                           /* no agent: the pins hold the counts */
	assert_int_equal(a.tx_packets, N);
	if (containerizer_create(&cfg, &cz, err, sizeof(err)))
		fail_msg("containerizer_create after restart: %s", err);
	read_acct(d.id, &a);
	assert_int_equal(a.tx_packets, N);
	assert_int_equal(a.udp_tx_datagrams, N);
	assert_int_equal(a.tx_bytes, (uint64_t)N * (S + 28));
	close(fd);
	cleanup(&d);
	assert_int_equal(read_acct_in(pin_dir, d.id, &a), -ENOENT);
}

static int pinned_prog_name(const char *link_pin, char *name, size_t len)
{
	struct bpf_link_info li = { 0 };
	struct bpf_prog_info pi = { 0 };
	uint32_t llen = sizeof(li), plen = sizeof(pi);
	int lfd = bpf_obj_get(link_pin), pfd, rc;

	if (lfd < 0)
		return -errno;
	rc = bpf_obj_get_info_by_fd(lfd, &li, &llen);
	close(lfd);
	if (rc)
		return -errno;
	pfd = bpf_prog_get_fd_by_id(li.prog_id);
	if (pfd < 0)
		return -errno;
	rc = bpf_obj_get_info_by_fd(pfd, &pi, &plen) ? -errno : 0;
	close(pfd);
	snprintf(name, len, "%s", pi.name);
	return rc;
}

/* An agent upgraded over the pins of an older build: a pinned tracing link running another
 * program is replaced, not kept, and the link of a program the new build no longer has
 * (tp_btf/sys_exit before the per-syscall tracepoints) is removed. The old build's links
 * are played by acct_tcp_state attached twice (pinned as trace:acct_sched_switch and
 * trace:acct_sys_exit): one left behind would count every connection twice. The links of
 * a task of an app called /trace (pins trace:<uuid>:{ingress,egress}) are not touched. */
static void test_upgrade_replaces_tracing_links(void **state)
{
	struct task_acct_bpf *old;
	struct bpf_link *l1, *l2;
	struct container_usage u;
	struct sockaddr_in addr;
	struct task_dirs d, t;
	struct task_acct a;
	char err[512], sw[PATH_MAX], stale[PATH_MAX], name[BPF_OBJ_NAME_LEN], cmd[1024];
	int fd = bound_udp(&addr);
	double diff;

	(void)state;
	make_dirs(&t, "trace");
	snprintf(cmd, sizeof(cmd),
		 "exec /usr/bin/python3 -c \"import socket\n"
		 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
		 "for i in range(4): s.sendto(b't', ('127.0.0.1', %d))\n\"", ntohs(addr.sin_port));
	launch(&t, cmd);
	wait_exit(t.id, 20);
	containerizer_destroy(cz);
	cz = NULL;
	assert_int_equal(path_join(sw, sizeof(sw), "%s/links/trace:acct_sched_switch", pin_dir), 0);
	assert_int_equal(path_join(stale, sizeof(stale), "%s/links/trace:acct_sys_exit", pin_dir), 0);
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_dir);
	old = task_acct_bpf__open_opts(&oo);
	assert_non_null(old);
	assert_int_equal(task_acct_bpf__load(old), 0);
	l1 = bpf_program__attach(old->progs.acct_tcp_state);
	l2 = bpf_program__attach(old->progs.acct_tcp_state);
	assert_true(l1 && l2);
	assert_int_equal(unlink(sw), 0);
	assert_int_equal(bpf_link__pin(l1, sw), 0);
	assert_int_equal(bpf_link__pin(l2, stale), 0);
	bpf_link__destroy(l1);
	bpf_link__destroy(l2);
	task_acct_bpf__destroy(old);
	assert_int_equal(pinned_prog_name(sw, name, sizeof(name)), 0);
	assert_string_equal(name, "acct_tcp_state");

	if (containerizer_create(&cfg, &cz, err, sizeof(err)))
		fail_msg("containerizer_create over the old pins: %s", err);
	assert_true(access(stale, F_OK) != 0);
	assert_int_equal(pinned_prog_name(sw, name, sizeof(name)), 0);
	assert_string_equal(name, "acct_sched_swit");  /* BPF_OBJ_NAME_LEN - 1 characters */
	for (const char *dir = "ingress"; dir; dir = strcmp(dir, "ingress") ? NULL : "egress") {
		char pin[PATH_MAX];

		assert_int_equal(path_join(pin, sizeof(pin), "%s/links/trace:%s:%s", pin_dir,
					   strchr(t.id, '.') + 1, dir), 0);
		if (access(pin, F_OK))
			fail_msg("the /trace task's link %s was removed", pin);
	}
	read_acct(t.id, &a);
	assert_int_equal(a.tx_packets, 4);
	cleanup(&t);
	close(fd);

	make_dirs(&d, "upgrade");
	launch(&d, "exec /usr/bin/python3 -c \"import socket\n"
		   "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n"
		   "c = socket.create_connection(l.getsockname()); a, _ = l.accept()\n"
		   "a.close(); c.close(); l.close()\n"
		   "i = 0\n"
		   "while i < 3000000: i += 1\n\"");
	wait_exit(d.id, 60);
	read_acct(d.id, &a);
	assert_int_equal(a.tcp_connects, 1);
	assert_int_equal(a.tcp_accepts, 1);
	assert_int_equal(containerizer_usage(cz, d.id, &u), 0);
	diff = (double)a.cpu_ns - (double)u.cpu_ns;
	if (diff < 0)
		diff = -diff;
	if (diff > 0.01 * (double)u.cpu_ns)
		fail_msg("after the upgrade: bpf cpu_ns %llu vs cgroup %llu", (unsigned long long)a.cpu_ns,
			 (unsigned long long)u.cpu_ns);
	cleanup(&d);
}

static char *run_capture(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	size_t cap = 1 << 20, n = 0;
	char *out = calloc(1, cap);

	assert_non_null(p);
	assert_non_null(out);
	while (n < cap - 1) {
		size_t r = fread(out + n, 1, cap - 1 - n, p);

		if (!r)
			break;
		n += r;
	}
	*status = pclose(p);
	return out;
}

/* bpftool prints the BTF field names; pacer-bpf -j is valid JSON with the task in it. */
static void test_bpftool_and_pacer_bpf(void **state)
{
	struct sockaddr_in addr;
	struct task_dirs d;
	char cmd[2048], *out;
	json_t *j, *t;
	json_error_t jerr;
	size_t i;
	int status, fd = bound_udp(&addr), found = 0;

	(void)state;
	make_dirs(&d, "tool");
	snprintf(cmd, sizeof(cmd),
		 "exec /usr/bin/python3 -c \"import socket\n"
		 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
		 "for i in range(3): s.sendto(b'z' * 100, ('127.0.0.1', %d))\n\"", ntohs(addr.sin_port));
	launch(&d, cmd);
	wait_exit(d.id, 20);

	assert_int_equal(path_join(cmd, sizeof(cmd), "bpftool map dump pinned %s/task_acct 2>&1", pin_dir), 0);
	out = run_capture(cmd, &status);
	assert_int_equal(status, 0);
	for (const char *f = "rx_bytes tx_packets tcp_connects tcp_accepts udp_tx_datagrams "
			     "policy_denials cpu_ns vfs_read_bytes vfs_write_bytes"; *f;) {
		char field[64];
		size_t len = strcspn(f, " ");

		snprintf(field, sizeof(field), "\"%.*s\"", (int)len, f);
		if (!strstr(out, field))
			fail_msg("bpftool output lacks %s:\n%.2000s", field, out);
		f += len + (f[len] == ' ');
	}
	free(out);

	assert_int_equal(path_join(cmd, sizeof(cmd), "%s/pacer-bpf --agent %s --work-dir %s -j task show",
				   bin_dir, agent_id, work_dir), 0);
	out = run_capture(cmd, &status);
	assert_int_equal(status, 0);
	j = json_loads(out, 0, &jerr);
	if (!j)
		fail_msg("pacer-bpf -j is not JSON (%s): %.2000s", jerr.text, out);
	assert_true(json_is_array(j));
	json_array_foreach(j, i, t) {
		if (strcmp(json_string_value(json_object_get(t, "task_id")) ?: "", d.id))
			continue;
		found = 1;
		assert_int_equal(json_integer_value(json_object_get(t, "tx_packets")), 3);
		assert_int_equal(json_integer_value(json_object_get(t, "udp_tx_datagrams")), 3);
		assert_int_equal(json_integer_value(json_object_get(t, "tx_bytes")), 3 * 128);
	}
	assert_true(found);
	json_decref(j);
	free(out);

	/* tenant = first segment of the app id in the agent's checkpoint (task.json). */
	assert_int_equal(path_join(cmd, sizeof(cmd), "%s/meta/tasks/%s", work_dir, d.id), 0);
	assert_int_equal(mkdir_p(cmd, 0700), 0);
	assert_int_equal(path_join(cmd, sizeof(cmd), "%s/meta/tasks/%s/task.json", work_dir, d.id), 0);
	j = json_pack("{s:{s:s, s:s}}", "task", "task_id", d.id, "app_id", "/acme/web");
	assert_int_equal(json_dump_file(j, cmd, 0), 0);
	json_decref(j);
	assert_int_equal(path_join(cmd, sizeof(cmd), "%s/pacer-bpf --agent %s --work-dir %s -p tenant show",
				   bin_dir, agent_id, work_dir), 0);
	out = run_capture(cmd, &status);
	assert_int_equal(status, 0);
	j = json_loads(out, 0, &jerr);
	if (!j)
		fail_msg("pacer-bpf tenant show -p is not JSON (%s): %.2000s", jerr.text, out);
	found = 0;
	json_array_foreach(j, i, t) {
		if (strcmp(json_string_value(json_object_get(t, "tenant")) ?: "", "acme"))
			continue;
		found = 1;
		assert_int_equal(json_integer_value(json_object_get(t, "tasks")), 1);
		assert_int_equal(json_integer_value(json_object_get(t, "udp_tx_datagrams")), 3);
	}
	assert_true(found);
	json_decref(j);
	free(out);

	assert_int_equal(path_join(cmd, sizeof(cmd), "%s/pacer-bpf --agent %s top --once -d 0.1 -j",
				   bin_dir, agent_id), 0);
	out = run_capture(cmd, &status);
	assert_int_equal(status, 0);
	j = json_loads(out, 0, &jerr);
	if (!j || !json_is_array(j) || json_array_size(j) < 1)
		fail_msg("pacer-bpf top -j: %.2000s", out);
	json_decref(j);
	free(out);

	assert_int_equal(path_join(cmd, sizeof(cmd), "%s/pacer-bpf --agent no-such-agent-x task show "
				   "2>/dev/null", bin_dir), 0);
	out = run_capture(cmd, &status);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	free(out);
	close(fd);
	cleanup(&d);
}

/* A second agent on the same host loads its own programs and maps: its task is counted
 * once, in its own maps only, and the first agent does not see it. */
static void test_second_agent_isolated(void **state)
{
	struct containerizer_config cfg2 = cfg;
	struct container_spec spec;
	struct container_exit e;
	struct sockaddr_in addr;
	struct task_dirs d;
	struct task_acct a;
	char err[512], id2[80], dir2[PATH_MAX], cmd[1024];
	int fd = bound_udp(&addr);
	double deadline;
	pid_t pid;

	(void)state;
	snprintf(id2, sizeof(id2), "%s-b", agent_id);
	cfg2.agent_id = id2;
	assert_int_equal(path_join(dir2, sizeof(dir2), "%s/pacer/%s", bpffs, id2), 0);
	if (containerizer_create(&cfg2, &cz2, err, sizeof(err)))
		fail_msg("second containerizer: %s", err);
	make_dirs(&d, "other");
	snprintf(cmd, sizeof(cmd),
		 "exec /usr/bin/python3 -c \"import socket\n"
		 "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
		 "for i in range(5): s.sendto(b'o' * 10, ('127.0.0.1', %d))\n\"", ntohs(addr.sin_port));
	spec = (struct container_spec){ .task_id = d.id, .sandbox_dir = d.sandbox, .run_dir = d.run,
					.shell = true, .command = cmd, .cpus = 1, .mem_bytes = 256 * MiB };
	assert_int_equal(containerizer_launch(cz2, &spec, &pid, err, sizeof(err)), 0);
	deadline = now_mono() + 20;
	while (containerizer_poll(cz2, d.id, &e) == 0 && now_mono() < deadline)
		sleep_ms(10);
	assert_true(e.exited && e.exit_code == 0);
	assert_int_equal(read_acct_in(dir2, d.id, &a), 0);
	assert_int_equal(a.tx_packets, 5);
	assert_int_equal(a.udp_tx_datagrams, 5);
	assert_true(a.cpu_ns > 0);
	assert_int_equal(read_acct_in(pin_dir, d.id, &a), -ENOENT);
	assert_int_equal(containerizer_cleanup(cz2, d.id), 0);
	assert_int_equal(containerizer_purge(cz2), 0);
	containerizer_destroy(cz2);
	cz2 = NULL;
	assert_true(access(dir2, F_OK) != 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_exact),
		cmocka_unit_test(test_tcp_bytes_and_connections),
		cmocka_unit_test(test_cpu_within_one_percent),
		cmocka_unit_test(test_cpu_continues_across_restart),
		cmocka_unit_test(test_vfs_write_bytes),
		cmocka_unit_test(test_net_counters_survive_restart),
		cmocka_unit_test(test_upgrade_replaces_tracing_links),
		cmocka_unit_test(test_bpftool_and_pacer_bpf),
		cmocka_unit_test(test_second_agent_isolated),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_bpf_acct: needs root (cgroups, BPF); skipped\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
