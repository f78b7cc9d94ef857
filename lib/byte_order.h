/* byte_order.h - little-endian loads and stores for the binary frames of the agents' streams
 * (lib/usage_frame.h, lib/agent_frame.h): the wire's byte order on any host. A store returns
 * the byte after what it wrote. */
#ifndef PACER_BYTE_ORDER_H
#define PACER_BYTE_ORDER_H

#include <stdint.h>

static inline uint16_t le16_load(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32_load(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64_load(const unsigned char *p)
{
	return (uint64_t)le32_load(p) | (uint64_t)le32_load(p + 4) << 32;
}

static inline unsigned char *le16_store(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	return p + 2;
}

static inline unsigned char *le32_store(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + 4;
}

static inline unsigned char *le64_store(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return p + 8;
}

#endif
