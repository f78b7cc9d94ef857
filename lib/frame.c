/* frame.c - length-prefixed frames (see frame.h): encoding into a growable buffer and a
 * reader that never looks past the bytes it is given. */
#include "lib/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int reserve(struct frame_buf *b, size_t more)
{
	size_t cap;
	char *grown;

	if (b->len + more <= b->cap)
		return 0;
	if (b->off) {                   /* room at the front first */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return 0;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	grown = realloc(b->p, cap);
	if (!grown)
		return -ENOMEM;
	b->p = grown;
	b->cap = cap;
	return 0;
}

int frame_buf_put(struct frame_buf *b, const void *data, size_t len)
{
	if (!len)
		return 0;               /* nothing to copy (and b->p may still be NULL) */
	if (reserve(b, len))
		return -ENOMEM;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

void *frame_buf_extend(struct frame_buf *b, size_t n)
{
	char *at;

	if (reserve(b, n))
		return NULL;
	at = b->p + b->len;
	b->len += n;
	return at;
}

void frame_header_put(unsigned char *h, uint32_t len)
{
	h[0] = (unsigned char)(len >> 24);
	h[1] = (unsigned char)(len >> 16);
	h[2] = (unsigned char)(len >> 8);
	h[3] = (unsigned char)len;
}

int frame_append(struct frame_buf *b, const void *payload, size_t len)
{
	unsigned char *at;

	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (!(at = frame_buf_extend(b, FRAME_HEADER + len)))
		return -ENOMEM;
	frame_header_put(at, (uint32_t)len);
	if (len)
		memcpy(at + FRAME_HEADER, payload, len);
	return 0;
}

void frame_buf_consume(struct frame_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void frame_buf_free(struct frame_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int frame_next(const char *buf, size_t len, size_t max, const char **payload, size_t *plen,
	       size_t *used)
{
	const unsigned char *u = (const unsigned char *)buf;
	size_t n;

	*payload = NULL;
	*plen = *used = 0;
	if (len < FRAME_HEADER)
		return 0;
	n = (size_t)u[0] << 24 | (size_t)u[1] << 16 | (size_t)u[2] << 8 | (size_t)u[3];
	*plen = n;
	if (n > max)
		return -EMSGSIZE;
	if (len - FRAME_HEADER < n)
		return 0;
	*payload = buf + FRAME_HEADER;
	*used = FRAME_HEADER + n;
	return 1;
}
