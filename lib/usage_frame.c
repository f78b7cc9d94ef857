/* usage_frame.c - encoding the binary usage batch (see usage_frame.h) straight into a frame
 * buffer: one reservation for the whole frame, then stores. */
#include "lib/usage_frame.h"

#include <errno.h>
#include <string.h>

const char *const usage_frame_fields[USAGE_FRAME_NFIELDS] = {
	"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "tcp_connects", "tcp_accepts",
	"udp_rx_datagrams", "udp_tx_datagrams", "policy_denials", "cpu_ns", "vfs_read_bytes",
	"vfs_write_bytes", "oom_kills", "mem_bytes", "mem_peak_bytes",
};

static unsigned char *put_bytes(unsigned char *p, const char *s, size_t n)
{
	if (n)
		memcpy(p, s, n);
	return p + n;
}

int usage_frame_encode(struct frame_buf *b, const char *agent_id, uint64_t seq,
		       const struct usage_frame_reading *r, size_t n)
{
	size_t alen = strlen(agent_id), need = USAGE_FRAME_HEAD + alen;
	unsigned char *p, *start;

	if (!alen || alen > UINT16_MAX || n > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t tl = strlen(r[i].task_id), al = r[i].app_id ? strlen(r[i].app_id) : 0;

		if (!tl || tl > UINT8_MAX || al > UINT16_MAX)
			return -EINVAL;
		need += USAGE_FRAME_READING_FIXED + 8 * USAGE_FRAME_NFIELDS + tl + al;
	}
	if (need > UINT32_MAX)
		return -EMSGSIZE;
	if (!(start = frame_buf_extend(b, FRAME_HEADER + need)))
		return -ENOMEM;
	frame_header_put(start, (uint32_t)need);
	p = start + FRAME_HEADER;
	p = le32_store(p, USAGE_FRAME_MAGIC);
	p = le64_store(p, seq);
	p = le16_store(p, USAGE_FRAME_NFIELDS);
	p = le16_store(p, (uint16_t)alen);
	p = le32_store(p, (uint32_t)n);
	p = put_bytes(p, agent_id, alen);
	for (size_t i = 0; i < n; i++) {
		size_t tl = strlen(r[i].task_id), al = r[i].app_id ? strlen(r[i].app_id) : 0;
		uint64_t at_bits = 0;

		*p++ = (unsigned char)((r[i].final ? USAGE_FRAME_FINAL : 0) |
				       (r[i].app_id ? USAGE_FRAME_APP : 0) |
				       (r[i].has_at ? USAGE_FRAME_AT : 0));
		*p++ = (unsigned char)tl;
		p = le16_store(p, (uint16_t)al);
		if (r[i].has_at)
			memcpy(&at_bits, &r[i].at, 8);
		p = le64_store(p, at_bits);
		for (size_t f = 0; f < USAGE_FRAME_NFIELDS; f++)
			p = le64_store(p, r[i].counters[f]);
		p = put_bytes(p, r[i].task_id, tl);
		p = put_bytes(p, r[i].app_id, al);
	}
	return 0;
}
