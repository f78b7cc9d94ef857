/* fuzz_usage_binary.c - libFuzzer target for the binary usage batch reader
 * (master/usage_binary.c: the frames of pacer-usage/2 streams, bytes from the network).
 * Invariants: a batch read is well formed (agent id and every good reading's ids are
 * NUL-terminated UTF-8 of allowed lengths, counters non-negative, times finite); and what
 * was read, encoded again (lib/usage_frame.c), reads back the same. */
/* fuzz-links: master/usage_binary.c master/usage_wire.c */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/frame.h"
#include "lib/usage_frame.h"
#include "lib/util.h"
#include "master/usage_wire.h"
#include "tests/fuzz/fuzz_common.h"

static void check_well_formed(const struct usage_batch *b)
{
	CHECK(b->agent_id && b->agent_id[0] && utf8_valid(b->agent_id, strlen(b->agent_id)));
	CHECK(b->seq > 0 && b->seq <= INT64_MAX);
	for (size_t i = 0; i < b->nreports; i++) {
		const struct usage_reading *r = &b->reports[i];

		if (r->bad_name)
			continue;
		CHECK(r->task_id && strlen(r->task_id) >= 1 &&
		      strlen(r->task_id) <= USAGE_TASK_ID_MAX);
		CHECK(utf8_valid(r->task_id, strlen(r->task_id)));
		CHECK(!r->app_id || utf8_valid(r->app_id, strlen(r->app_id)));
		CHECK(!r->has_at || isfinite(r->at));
		for (size_t f = 0; f < USAGE_NFIELDS; f++)
			CHECK(r->counters[f] >= 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage_frame_reading *enc;
	struct usage_batch b, again;
	struct frame_buf f = { 0 };
	char err[256];
	size_t n = 0;

	if (usage_binary_parse((const char *)data, size, &b, err, sizeof(err)) != 0) {
		CHECK(err[0]);
		return 0;
	}
	check_well_formed(&b);
	enc = calloc(b.nreports + 1, sizeof(*enc));
	CHECK(enc);
	for (size_t i = 0; i < b.nreports; i++) {
		const struct usage_reading *r = &b.reports[i];

		if (r->bad_name)
			continue;
		enc[n].task_id = r->task_id;
		enc[n].app_id = r->app_id;
		enc[n].final = r->final;
		enc[n].has_at = r->has_at;
		enc[n].at = r->at;
		for (size_t k = 0; k < USAGE_NFIELDS; k++)
			enc[n].counters[k] = (uint64_t)r->counters[k];
		n++;
	}
	CHECK(usage_frame_encode(&f, b.agent_id, b.seq, enc, n) == 0);
	CHECK(usage_binary_parse(f.p + FRAME_HEADER, f.len - FRAME_HEADER, &again, err,
				 sizeof(err)) == 0);
	CHECK(again.nreports == n && again.seq == b.seq && !strcmp(again.agent_id, b.agent_id));
	for (size_t i = 0; i < n; i++) {
		const struct usage_reading *r = &again.reports[i];

		CHECK(!r->bad_name && !strcmp(r->task_id, enc[i].task_id));
		CHECK(!r->app_id == !enc[i].app_id && (!r->app_id || !strcmp(r->app_id, enc[i].app_id)));
		CHECK(r->final == enc[i].final && r->has_at == enc[i].has_at);
		CHECK(!r->has_at || r->at == enc[i].at);
		for (size_t k = 0; k < USAGE_NFIELDS; k++)
			CHECK((uint64_t)r->counters[k] == enc[i].counters[k]);
	}
	usage_wire_free(&again);
	usage_wire_free(&b);
	frame_buf_free(&f);
	free(enc);
	return 0;
}
