/* fuzz_task_log.c - libFuzzer target for the task log's replay (master/task_log.c,
 * task_log_replay_buf), which reads back a tasks.log a crash may have left torn or a disk
 * may have garbled: the input is the file's content. Invariants: no crash, leak or
 * out-of-bounds read; the valid length is 0 (no file header) or ends exactly on a record
 * boundary; the live records come in strictly increasing key order, with keys > 0, and
 * their texts lie inside the valid part; replaying just the valid part gives the same
 * records and the same length (a replay consumed whole records only). */
/* fuzz-links: master/task_log.c */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/log.h"
#include "master/task_log.h"
#include "tests/fuzz/fuzz_common.h"

#define FILE_HEADER 8
#define REC_HEADER 24

/* The records one replay handed out: key, offset in the image and length of the put's
 * text, of its update's (0, 0: none), then both texts, back to back. */
#define ENTRY 40
struct seen {
	const char *data;
	unsigned char *p;
	size_t len, cap, n;
	uint64_t last_key;
};

static int record(uint64_t key, const char *text, size_t len, const char *update,
		  size_t update_len, void *arg)
{
	struct seen *s = arg;
	size_t off = (size_t)(text - s->data), uoff = 0, need;

	CHECK(key > s->last_key);
	s->last_key = key;
	CHECK(text >= s->data + FILE_HEADER + REC_HEADER);
	/* An update lies after its put (a put drops the key's update). */
	if (update) {
		CHECK(update >= text + len + REC_HEADER);
		uoff = (size_t)(update - s->data);
	} else {
		update_len = 0;
	}
	need = ENTRY + len + update_len;
	if (s->len + need > s->cap) {
		s->cap = (s->len + need) * 2;
		s->p = realloc(s->p, s->cap);
		CHECK(s->p);
	}
	memcpy(s->p + s->len, &key, 8);
	memcpy(s->p + s->len + 8, &off, 8);
	memcpy(s->p + s->len + 16, &len, 8);
	memcpy(s->p + s->len + 24, &uoff, 8);
	memcpy(s->p + s->len + 32, &update_len, 8);
	if (len)
		memcpy(s->p + s->len + ENTRY, text, len);
	if (update_len)
		memcpy(s->p + s->len + ENTRY + len, update, update_len);
	s->len += need;
	s->n++;
	return 0;
}

static uint32_t le32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* True if [FILE_HEADER, end) is a chain of whole records by their length fields. */
static bool on_boundary(const char *data, size_t end)
{
	size_t off = FILE_HEADER;

	while (off < end) {
		if (end - off < REC_HEADER)
			return false;
		off += REC_HEADER + (size_t)le32(data + off + 4);
	}
	return off == end;
}

static void check(const char *data, size_t size)
{
	struct seen a = { .data = data }, b = { 0 };
	char *prefix;
	size_t used, again;
	int rc = -1;

	used = task_log_replay_buf(data, size, record, &a, &rc);
	CHECK(rc == 0 && used <= size);
	if (!used) {
		CHECK(a.n == 0);
		return;
	}
	CHECK(used >= FILE_HEADER && memcmp(data, "PACERTL1", FILE_HEADER) == 0);
	CHECK(on_boundary(data, used));
	/* Every text handed out lies inside the valid part (checked after the replay, which
	 * is what says how long that is). */
	for (size_t at = 0; at < a.len;) {
		size_t off, len, uoff, ulen;

		memcpy(&off, a.p + at + 8, 8);
		memcpy(&len, a.p + at + 16, 8);
		memcpy(&uoff, a.p + at + 24, 8);
		memcpy(&ulen, a.p + at + 32, 8);
		CHECK(off <= used && len <= used - off);
		CHECK(uoff <= used && ulen <= used - uoff);
		at += ENTRY + len + ulen;
	}

	/* The valid part alone, in a buffer of exactly its size: same records, same length. */
	prefix = malloc(used);
	CHECK(prefix);
	memcpy(prefix, data, used);
	b.data = prefix;
	rc = -1;
	again = task_log_replay_buf(prefix, used, record, &b, &rc);
	CHECK(rc == 0 && again == used);
	CHECK(a.n == b.n && a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0));
	free(prefix);
	free(a.p);
	free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *fixed = malloc(size ? size : 1);
	size_t off = FILE_HEADER;

	CHECK(fixed);
	log_init("fuzz", LOG_LVL_ERROR + 1);
	check((const char *)data, size);
	/* The same bytes with the file header and every record's magic and CRC made right
	 * (where its length says it fits), so that mutations reach the type, key and index
	 * logic rather than stop at the checksum. */
	if (size)
		memcpy(fixed, data, size);
	if (size >= FILE_HEADER)
		memcpy(fixed, "PACERTL1", FILE_HEADER);
	while (size >= FILE_HEADER && size - off >= REC_HEADER) {
		uint32_t plen = le32(fixed + off + 4), crc;

		memcpy(fixed + off, "PTLR", 4);
		if (plen > size - off - REC_HEADER)
			break;
		crc = (uint32_t)crc32(0, (const Bytef *)fixed + off + 12, REC_HEADER - 12);
		if (plen)
			crc = (uint32_t)crc32(crc, (const Bytef *)fixed + off + REC_HEADER, plen);
		for (int i = 0; i < 4; i++)
			fixed[off + 8 + i] = (char)(crc >> (8 * i));
		off += REC_HEADER + plen;
	}
	check(fixed, size);
	free(fixed);
	return 0;
}
