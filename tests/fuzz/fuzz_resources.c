/* fuzz_resources.c - libFuzzer target for the resource, port-range and attribute parsers
 * (agent flags) and the resources JSON form (protocol messages). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/resources.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct resources r;
	struct port_ranges p;
	char err[256];
	json_t *j;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	resources_init(&r);
	port_ranges_init(&p);
	if (resources_parse(text, &r, err, sizeof(err)) == 0) {
		struct resources copy;

		resources_init(&copy);
		resources_copy(&copy, &r);
		resources_subtract(&copy, &r);
		resources_add(&copy, &r);
		if (!resources_contains(&copy, &r))
			abort(); /* adding back what was subtracted must restore containment */
		resources_free(&copy);
	}
	if (port_ranges_parse(text, &p) == 0) {
		char buf[65536];
		struct port_ranges again;

		port_ranges_init(&again);
		if (port_ranges_format(&p, buf, sizeof(buf)) == 0 &&
		    (port_ranges_parse(buf, &again) != 0 || again.count != p.count))
			abort(); /* the printed form must parse back to the same set */
		port_ranges_free(&again);
	}
	json_decref(attributes_parse(text, err, sizeof(err)));
	j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		resources_from_json(j, &r, err, sizeof(err));
		json_decref(j);
	}
	resources_free(&r);
	port_ranges_free(&p);
	free(text);
	return 0;
}
