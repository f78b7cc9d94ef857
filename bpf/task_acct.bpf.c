/* task_acct.bpf.c - exact per-task accounting (see task_acct.h for the maps):
 *   cgroup_skb ingress/egress (attached per task cgroup): bytes, packets, UDP datagrams;
 *   tracing programs (attached once per agent, filtered by the agent's own task_acct map):
 *   tp_btf/sched_switch (CPU ns), tp_btf/inet_sock_set_state (TCP connections opened and
 *   accepted), tracepoint/syscalls/sys_exit_{read,write,...} (bytes of successful read/write
 *   syscalls).
 * Counters are added with plain stores when the map is per-CPU (the default) and with
 * atomic adds when the loader made it a shared hash (percpu = false; see
 * docs/benchmarks.md for the measurement that chose per-CPU). Packets are never dropped
 * here (the skb programs always return 1). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpf/task_acct.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile bool percpu = true;
/* Level of the task cgroups in the cgroup2 hierarchy (0: do not look above the own cgroup
 * of a thread in the tracing programs). */
const volatile __u32 task_level = 0;
/* false: every program returns at once (the verifier drops the bodies): the kernel's cost
 * of the attach points alone, bench/acct_overhead.sh's `hooks` mode. */
const volatile bool count = true;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);   /* the loader may switch it to BPF_MAP_TYPE_HASH */
	/* Entries are made by the agent (never by a program): allocate them then, not
	 * max_entries x CPUs x 96 bytes up front (200 MB on a 128-CPU host). */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TASK_ACCT_MAX_TASKS);
	__type(key, __u64);
	__type(value, struct task_acct);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} task_acct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TASK_ACCT_MAX_TASKS);
	__type(key, __u64);
	__type(value, struct tracked_task);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);  /* or CGROUP_STORAGE (loader, percpu = false) */
	__type(key, __u64);
	__type(value, struct task_net);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} task_net SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cpu_seen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cpu_seen SEC(".maps");

#define ADD(c, field, v)                                        \
	do {                                                    \
		if (percpu)                                     \
			(c)->field += (v);                      \
		else                                            \
			__sync_fetch_and_add(&(c)->field, (v)); \
	} while (0)

/* ---- cgroup_skb ------------------------------------------------------------------ */

/* The network counters live in the storage of the cgroup the program is attached to (the
 * task cgroup; a socket in a sub-cgroup of the task runs its ancestors' programs, so it is
 * charged there too): bpf_get_local_storage reaches it without a lookup by cgroup id. */
static __always_inline __u64 udp_datagrams(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_UDP)
		return 0;
	return skb->gso_segs > 1 ? skb->gso_segs : 1;
}

/* One packet into (ingress) or out of the task cgroup's storage. */
static __always_inline int count_skb(struct __sk_buff *skb, bool ingress)
{
	struct task_net *c;
	__u64 d;

	if (!count)
		return 1;
	c = bpf_get_local_storage(&task_net, 0);
	d = udp_datagrams(skb);
	if (ingress) {
		ADD(c, rx_bytes, skb->len);
		ADD(c, rx_packets, 1);
		if (d)
			ADD(c, udp_rx_datagrams, d);
	} else {
		ADD(c, tx_bytes, skb->len);
		ADD(c, tx_packets, 1);
		if (d)
			ADD(c, udp_tx_datagrams, d);
	}
	return 1;
}

SEC("cgroup_skb/ingress")
int net_ingress(struct __sk_buff *skb)
{
	return count_skb(skb, true);
}

SEC("cgroup_skb/egress")
int net_egress(struct __sk_buff *skb)
{
	return count_skb(skb, false);
}

/* ---- tracing: charged to the current thread's task cgroup ------------------------- */

static __always_inline struct task_acct *current_acct(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	struct task_acct *c = bpf_map_lookup_elem(&task_acct, &id);

	if (c || !task_level)
		return c;
	id = bpf_get_current_ancestor_cgroup_id(task_level);
	return id ? bpf_map_lookup_elem(&task_acct, &id) : NULL;
}

/* sched_switch runs in prev's context (current == prev), after the scheduler updated
 * prev->se.sum_exec_runtime: the cgroup is charged what the thread ran since it was last
 * charged. A thread seen for the first time is charged its whole runtime (task threads
 * are born in the task cgroup). */
SEC("tp_btf/sched_switch")
int BPF_PROG(acct_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_acct *c;
	struct cpu_seen *seen;
	__u64 sum;

	/* The idle thread (pid 0, about every other switch of a CPU that waits) is in no
	 * task: leave before the cgroup lookups. */
	if (!count || !prev->pid)
		return 0;
	c = current_acct();
	if (!c)
		return 0;
	seen = bpf_task_storage_get(&cpu_seen, prev, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!seen)
		return 0;
	sum = prev->se.sum_exec_runtime;
	if (sum > seen->charged_ns) {
		ADD(c, cpu_ns, sum - seen->charged_ns);
		seen->charged_ns = sum;
	}
	return 0;
}

/* The socket's cgroup (the task's own, or an ancestor with an entry at task_level). */
static __always_inline struct task_acct *sock_acct(const struct sock *sk)
{
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	struct cgroup *anc = NULL;
	struct task_acct *c;
	__u64 id;

	if (!cg)
		return NULL;
	id = cg->kn->id;
	c = bpf_map_lookup_elem(&task_acct, &id);
	if (c || !task_level || cg->level <= (int)task_level)
		return c;
	bpf_probe_read_kernel(&anc, sizeof(anc), &cg->ancestors[task_level]);
	if (!anc)
		return NULL;
	id = BPF_CORE_READ(anc, kn, id);
	return bpf_map_lookup_elem(&task_acct, &id);
}

/* TCP state changes: CLOSE -> SYN_SENT is a connect() that sent its SYN (an opened
 * connection), SYN_RECV -> ESTABLISHED a passively opened one completing its handshake
 * (it is then in the listener's accept queue; the child socket inherits the listener's
 * cgroup). Tracepoints, not fexit on tcp_connect/inet_csk_accept: fentry/fexit need
 * ftrace trampolines, which some hosts refuse (EPERM here); tracepoints always work. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(acct_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	bool opened = oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT;
	bool accepted = oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED;
	struct task_acct *c;

	/* Five of the seven transitions of a connection count nothing: leave before reading
	 * the socket. */
	if (!count || (!opened && !accepted))
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	c = sock_acct(sk);
	if (!c)
		return 0;
	if (opened)
		ADD(c, tcp_connects, 1);
	else
		ADD(c, tcp_accepts, 1);
	return 0;
}

/* The record of the syscalls:sys_exit_<call> tracepoints (tracefs events/syscalls/
 * sys_exit_read/format): the common header, the syscall number, its return value. */
struct syscall_exit {
	__u64 common;
	int nr;
	long ret;
};

/* Bytes read and written through the VFS, at the syscall boundary: what read(2),
 * write(2) and their vector/positional forms returned (only successful bytes; io_uring,
 * splice, sendfile and copy_file_range are not counted). Each program is attached by the
 * loader to the per-syscall exit tracepoints of its family (agent/bpf_net.c), which test
 * the syscall number before any BPF runs: other syscalls never enter a program. */
SEC("tracepoint")
int acct_read_exit(struct syscall_exit *ctx)
{
	long ret = ctx->ret;
	struct task_acct *c;

	if (!count || ret <= 0)
		return 0;
	c = current_acct();
	if (c)
		ADD(c, vfs_read_bytes, ret);
	return 0;
}

SEC("tracepoint")
int acct_write_exit(struct syscall_exit *ctx)
{
	long ret = ctx->ret;
	struct task_acct *c;

	if (!count || ret <= 0)
		return 0;
	c = current_acct();
	if (c)
		ADD(c, vfs_write_bytes, ret);
	return 0;
}
