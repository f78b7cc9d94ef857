/* usage_binary.c - the master's reader of the binary usage batch (lib/usage_frame.h), the
 * frames of pacer-usage/2 streams: bounds-checked loads into the same struct usage_batch
 * the JSON reader (usage_wire.c) fills, with the same verdicts on a reading (a task id of
 * 1..200 bytes, a finite time, counters that fit a signed 64-bit integer), plus what JSON
 * text guaranteed by itself: ids are UTF-8 without NUL. One allocation holds the readings
 * and their NUL-terminated ids. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "master/usage_wire.h"

struct reader {
	const unsigned char *p, *end, *start;
	char *arena;
};

static bool have(const struct reader *rd, size_t n)
{
	return (size_t)(rd->end - rd->p) >= n;
}

/* Copies n bytes to the arena, NUL-terminated. */
static const char *keep(struct reader *rd, const unsigned char *s, size_t n)
{
	char *out = rd->arena;

	memcpy(out, s, n);
	out[n] = '\0';
	rd->arena += n + 1;
	return out;
}

static int refuse(const struct reader *rd, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "binary usage batch: %s (at byte %zu)", what,
		 (size_t)(rd->p - rd->start));
	return -EINVAL;
}

/* One reading at rd->p (its fixed part known to be there); -EINVAL when the frame ends
 * inside it. */
static int reading(struct reader *rd, unsigned nfields, struct usage_reading *r)
{
	const unsigned char *p = rd->p, *tid, *aid;
	unsigned flags = p[0], tlen = p[1], alen = le16_load(p + 2);
	uint64_t at_bits = le64_load(p + 4);
	size_t fixed = USAGE_FRAME_READING_FIXED + 8 * (size_t)nfields;

	if (!have(rd, fixed + tlen + alen))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	p += USAGE_FRAME_READING_FIXED;
	for (unsigned f = 0; f < nfields; f++, p += 8) {
		uint64_t v = le64_load(p);

		if (f >= USAGE_NFIELDS)
			continue;       /* a newer sender's field */
		if (v > INT64_MAX && !r->bad_name) {
			r->bad_name = usage_frame_fields[f];
			r->bad_what = "must be a non-negative integer";
		}
		r->counters[f] = (int64_t)(v & INT64_MAX);
	}
	tid = p;
	aid = p + tlen;
	rd->p = aid + alen;
	r->final = flags & USAGE_FRAME_FINAL;
	if (flags & USAGE_FRAME_AT) {
		r->has_at = true;
		memcpy(&r->at, &at_bits, 8);
		if (!isfinite(r->at)) {
			r->has_at = false;
			r->at = 0;
			r->bad_name = "at";
			r->bad_what = "must be a number (wall seconds)";
		}
	}
	if ((flags & USAGE_FRAME_APP) && utf8_valid((const char *)aid, alen))
		r->app_id = keep(rd, aid, alen);
	else if ((flags & USAGE_FRAME_APP) && !r->bad_name) {
		r->bad_name = "app_id";
		r->bad_what = "must be UTF-8 without NUL";
	}
	if (tlen && tlen <= USAGE_TASK_ID_MAX && utf8_valid((const char *)tid, tlen)) {
		r->task_id = keep(rd, tid, tlen);
	} else {
		r->bad_name = "task_id";        /* the first verdict, as in the JSON reader */
		r->bad_what = "must be a task id";
	}
	return 0;
}

int usage_binary_parse(const char *payload, size_t len, struct usage_batch *b, char *err,
		       size_t errlen)
{
	struct reader rd = { .p = (const unsigned char *)payload,
			     .end = (const unsigned char *)payload + len,
			     .start = (const unsigned char *)payload };
	unsigned nfields, alen;
	size_t n, per;
	uint64_t seq;
	char *block;

	memset(b, 0, sizeof(*b));
	if (!have(&rd, USAGE_FRAME_HEAD))
		return refuse(&rd, err, errlen, "shorter than its header");
	if (le32_load(rd.p) != USAGE_FRAME_MAGIC)
		return refuse(&rd, err, errlen, "does not start with the magic \"PUB2\"");
	seq = le64_load(rd.p + 4);
	nfields = le16_load(rd.p + 12);
	alen = le16_load(rd.p + 14);
	n = le32_load(rd.p + 16);
	rd.p += USAGE_FRAME_HEAD;
	if (!seq || seq > INT64_MAX)
		return refuse(&rd, err, errlen, "seq must be an integer > 0");
	if (!alen || !have(&rd, alen) || !utf8_valid((const char *)rd.p, alen))
		return refuse(&rd, err, errlen, "agent_id must be a non-empty UTF-8 string");
	if (n > USAGE_WIRE_MAX_REPORTS) {
		snprintf(err, errlen, "reports: at most %d per batch", USAGE_WIRE_MAX_REPORTS);
		return -EINVAL;
	}
	per = USAGE_FRAME_READING_FIXED + 8 * (size_t)nfields;
	if ((size_t)(rd.end - rd.p) - alen < n * per)
		return refuse(&rd, err, errlen, "shorter than its readings");
	/* Readings, then every id with its NUL (ids are never longer than the payload). */
	block = malloc(n * sizeof(*b->reports) + len + 2 * n + 1);
	if (!block)
		return -ENOMEM;
	b->reports = (struct usage_reading *)block;
	rd.arena = block + n * sizeof(*b->reports);
	b->agent_id = keep(&rd, rd.p, alen);
	rd.p += alen;
	b->seq = seq;
	for (size_t i = 0; i < n; i++) {
		if (!have(&rd, per) || reading(&rd, nfields, &b->reports[i]) < 0) {
			usage_wire_free(b);
			return refuse(&rd, err, errlen, "ends inside a reading");
		}
	}
	b->nreports = n;
	if (rd.p != rd.end) {
		usage_wire_free(b);
		return refuse(&rd, err, errlen, "bytes after the last reading");
	}
	return 0;
}
