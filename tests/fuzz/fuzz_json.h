/* fuzz_json.h - what the differential targets of the JSON readers share: the nesting depth
 * of a jansson tree (the readers refuse documents nested deeper than jansson does). */
#ifndef PACER_FUZZ_JSON_H
#define PACER_FUZZ_JSON_H

#include <jansson.h>

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

#endif
