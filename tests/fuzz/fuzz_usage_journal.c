/* fuzz_usage_journal.c - libFuzzer target for the usage journal reader
 * (master/usage_journal.c), which reads back a file a crash may have left torn or a disk
 * may have garbled: the input is a journal file's content. Invariants: no crash, leak or
 * out-of-bounds read; every record handed out is well formed (a non-empty agent id and
 * task ids, seq > 0, counters >= 0, a wall time) and encodes back to exactly the bytes it
 * was read from, so replay consumed whole records only, in order. */
/* fuzz-links: master/usage_journal.c master/usage_wire.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/log.h"
#include "master/usage_journal.h"
#include "tests/fuzz/fuzz_common.h"

static int reencode(void *arg, const struct usage_batch *b)
{
	struct ujbuf *out = arg;
	const struct usage_reading **v = calloc(b->nreports + 1, sizeof(*v));

	CHECK(v);
	CHECK(b->agent_id && *b->agent_id && b->seq > 0);
	for (size_t i = 0; i < b->nreports; i++) {
		const struct usage_reading *r = &b->reports[i];

		CHECK(r->task_id && *r->task_id && strlen(r->task_id) <= 255 && r->has_at && !r->bad_name);
		for (int f = 0; f < USAGE_NFIELDS; f++)
			CHECK(r->counters[f] >= 0);
		v[i] = r;
	}
	CHECK(usage_journal_encode(out, b->agent_id, b->seq, v, b->nreports) == 0);
	free(v);
	return 0;
}

static void check(const char *data, size_t size)
{
	struct ujbuf out = { 0 };
	size_t records = 0, used;
	int rc;

	used = usage_journal_replay_buf(data, size, reencode, &out, &records, &rc);
	CHECK(rc == 0 && used <= size);
	CHECK(out.len == used && (used == 0 || memcmp(out.p, data, used) == 0));
	free(out.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *fixed = malloc(size ? size : 1);
	size_t off = 0;

	CHECK(fixed);
	log_init("fuzz", LOG_LVL_ERROR + 1);
	check((const char *)data, size);
	/* The same bytes with every record's CRC made right (where its header says it fits),
	 * so that mutations reach the payload decoder rather than stop at the checksum. */
	if (size)
		memcpy(fixed, data, size);
	while (size - off >= 12) {
		uint32_t plen, crc;

		memcpy(fixed + off, "PUJ1", 4);
		memcpy(&plen, fixed + off + 4, 4);
		if (plen > size - off - 12)
			break;
		crc = (uint32_t)crc32(0, (const Bytef *)fixed + off + 12, plen);
		memcpy(fixed + off + 8, &crc, 4);
		off += 12 + plen;
	}
	check(fixed, size);
	free(fixed);
	return 0;
}
