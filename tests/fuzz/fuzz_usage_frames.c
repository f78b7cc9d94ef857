/* fuzz_usage_frames.c - libFuzzer target for the usage stream's frame reader (lib/frame.c,
 * bytes from the network read by master/usage_stream.c and the agent's usage_link.c), fed
 * the way the master feeds it: chunks of the input (sizes taken from its first bytes), an
 * unfinished frame kept in a frame_buf and joined with the next chunk, each whole frame's
 * payload given to the batch parser (master/usage_wire.c). Invariants: a frame never claims
 * bytes it was not given; reading in chunks yields exactly the frames (and the same stop at
 * an oversized one) that reading the whole input at once yields. */
/* fuzz-links: master/usage_wire.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/frame.h"
#include "master/usage_wire.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_FRAME 2048          /* small, so the fuzzer reaches the limit */

struct seen {
	size_t n, bytes;
	uint32_t hash;
	bool over;
};

static void take(struct seen *s, const char *p, size_t len)
{
	struct usage_batch b;
	char err[128];
	bool syntax;

	s->n++;
	s->bytes += len;
	for (size_t i = 0; i < len; i++)
		s->hash = s->hash * 31 + (unsigned char)p[i];
	s->hash = s->hash * 31 + 0x100;
	if (usage_wire_parse(p, len, &b, &syntax, err, sizeof(err)) == 0)
		usage_wire_free(&b);
}

/* Whole frames of buf[0..len) into s; the bytes used. */
static size_t frames(struct seen *s, const char *buf, size_t len)
{
	size_t off = 0;

	while (!s->over) {
		const char *p;
		size_t plen, used;
		int rc = frame_next(buf + off, len - off, MAX_FRAME, &p, &plen, &used);

		if (rc == 0)
			break;
		if (rc < 0) {
			CHECK(plen > MAX_FRAME);
			s->over = true;
			break;
		}
		CHECK(used == FRAME_HEADER + plen && used <= len - off);
		CHECK(p == buf + off + FRAME_HEADER);
		take(s, p, plen);
		off += used;
	}
	return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen whole = { 0 }, parts = { 0 };
	struct frame_buf in = { 0 };
	size_t skip = size < 2 ? size : 2, off;
	const char *buf = (const char *)data + skip;
	size_t len = size - skip;
	unsigned step = size >= 2 ? (data[0] | data[1] << 8) % 97 + 1 : 1;

	frames(&whole, buf, len);
	for (off = 0; off < len && !parts.over;) {
		size_t n = len - off < step ? len - off : step, used;
		char *joined;

		CHECK(frame_buf_put(&in, buf + off, n) == 0);
		off += n;
		/* What the master does: the kept bytes, then the new ones, read as one. */
		joined = malloc(in.len - in.off + 1);
		CHECK(joined);
		memcpy(joined, in.p + in.off, in.len - in.off);
		used = frames(&parts, joined, in.len - in.off);
		frame_buf_consume(&in, used);
		free(joined);
	}
	CHECK(parts.n == whole.n && parts.bytes == whole.bytes && parts.hash == whole.hash &&
	      parts.over == whole.over);
	frame_buf_free(&in);
	return 0;
}
