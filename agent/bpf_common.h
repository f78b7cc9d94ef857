/* bpf_common.h - what every BPF feature of the agent needs before loading: libbpf's log
 * routed into lib/log.h, bpffs mounted, and the agent's pin folder <bpffs>/pacer/<agent-id>. */
#ifndef PACER_AGENT_BPF_COMMON_H
#define PACER_AGENT_BPF_COMMON_H

#include <stddef.h>

/* Idempotent; safe from any thread. */
void bpf_route_libbpf_logs(void);
/* Mounts bpffs at bpffs unless it already is one, then mkdir -p <bpffs>/pacer/<agent_id>
 * into dir. Returns 0 or -errno with a message. */
int bpf_agent_dir(const char *bpffs, const char *agent_id, char *dir, size_t dirlen,
		  char *err, size_t errlen);
/* Removes every pin in dir (recursively) and dir itself. */
int bpf_remove_pins(const char *dir);

#endif
