/* frame.h - length-prefixed frames for persistent binary-safe streams (the agents' usage
 * stream, issue 4): a 4-byte big-endian payload length, then the payload. Both ends of a
 * stream use these: the master's reader (master/usage_stream.c), the agent's and the bench's
 * writers and ack readers. */
#ifndef PACER_FRAME_H
#define PACER_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER 4

/* A growable byte buffer: bytes [off, len) are still to be used. */
struct frame_buf {
	char *p;
	size_t off, len, cap;
};

/* Appends one frame (header + len payload bytes). -ENOMEM, -EMSGSIZE (len above 4 GiB - 1). */
int frame_append(struct frame_buf *b, const void *payload, size_t len);
/* Appends raw bytes (no header). -ENOMEM. */
int frame_buf_put(struct frame_buf *b, const void *data, size_t len);
/* Makes room for n more bytes at the end and counts them in: the caller writes them at
 * the pointer returned (NULL without memory; b is then unchanged). */
void *frame_buf_extend(struct frame_buf *b, size_t n);
/* Writes the 4-byte header announcing len payload bytes at h. */
void frame_header_put(unsigned char *h, uint32_t len);
/* Drops n used bytes from the front (moves what is left down when that is cheap). */
void frame_buf_consume(struct frame_buf *b, size_t n);
void frame_buf_free(struct frame_buf *b);

/* Looks at buf[0..len): 1 with *payload, *plen and *used (header + payload) when a whole
 * frame is there; 0 when more bytes are needed (*plen is the announced length once the
 * header is in, else 0); -EMSGSIZE when the announced length is above max (*plen says
 * how long: the stream cannot go on). */
int frame_next(const char *buf, size_t len, size_t max, const char **payload, size_t *plen,
	       size_t *used);

#endif
