/* net_counters.bpf.c - cgroup_skb ingress/egress programs attached to every task cgroup:
 * count bytes (skb->len: the IP packet, headers included) and packets per task into the
 * pinned hash map net_counters. Packets are never dropped here (always return 1). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpf/net_counters.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NET_COUNTERS_MAX_TASKS);
	__type(key, __u64);
	__type(value, struct task_net_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net_counters SEC(".maps");

/* The socket's own cgroup is normally the task cgroup (the agent made its entry); a socket
 * in a sub-cgroup of the task is charged to the nearest ancestor that has an entry. */
static __always_inline struct task_net_counters *find_counters(struct __sk_buff *skb)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	struct task_net_counters *c = bpf_map_lookup_elem(&net_counters, &id);

	if (c)
		return c;
	for (int level = NET_COUNTERS_MAX_LEVEL; level > 0; level--) {
		id = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!id)
			continue;
		c = bpf_map_lookup_elem(&net_counters, &id);
		if (c)
			return c;
	}
	/* No entry (the map was emptied under a live task): start one for the own cgroup. */
	struct task_net_counters zero = {};

	id = bpf_skb_cgroup_id(skb);
	bpf_map_update_elem(&net_counters, &id, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&net_counters, &id);
}

SEC("cgroup_skb/ingress")
int net_ingress(struct __sk_buff *skb)
{
	struct task_net_counters *c = find_counters(skb);

	if (c) {
		__sync_fetch_and_add(&c->rx_bytes, skb->len);
		__sync_fetch_and_add(&c->rx_packets, 1);
	}
	return 1;
}

SEC("cgroup_skb/egress")
int net_egress(struct __sk_buff *skb)
{
	struct task_net_counters *c = find_counters(skb);

	if (c) {
		__sync_fetch_and_add(&c->tx_bytes, skb->len);
		__sync_fetch_and_add(&c->tx_packets, 1);
	}
	return 1;
}
