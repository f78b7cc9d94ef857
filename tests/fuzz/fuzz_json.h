/* fuzz_json.h - what the differential targets of the JSON readers share: the nesting depth
 * of a jansson tree (the readers refuse documents nested deeper than jansson does), and the
 * verdicts every reader owes jansson before the fields are compared. */
#ifndef PACER_FUZZ_JSON_H
#define PACER_FUZZ_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>
#include "tests/fuzz/fuzz_common.h"

static inline int depth_of(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	int d = 0;

	int c;

	/* Each child once: asking twice per level doubles the work per level. */
	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
			if ((c = depth_of(v)) > d)
				d = c;
		return d + 1;
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			if ((c = depth_of(v)) > d)
				d = c;
		return d + 1;
	}
	return 0;
}

/* A reader's answer (rc, syntax, err) to data against jansson's tree j (loaded with
 * JSON_REJECT_DUPLICATES, NULL if refused): a body with a NUL byte, one that is not JSON
 * even with repeated keys, or one nested deeper than max_depth must be refused as syntax.
 * True when j is a document the caller compares field by field. */
static inline bool same_screen(const uint8_t *data, size_t size, json_t *j, int rc,
			       bool syntax, const char *err, int max_depth)
{
	json_t *lax;

	CHECK(rc == 0 || rc == -EINVAL);
	CHECK(rc == 0 || err[0]);
	if (memchr(data, 0, size)) {
		CHECK(rc == -EINVAL && syntax);
		return false;
	}
	if (!j) {
		lax = json_loadb((const char *)data, size, 0, NULL);
		if (!lax)
			CHECK(rc == -EINVAL && syntax);
		json_decref(lax);
		return false;
	}
	if (depth_of(j) > max_depth) {
		CHECK(rc == -EINVAL && syntax);
		return false;
	}
	return true;
}

#endif
