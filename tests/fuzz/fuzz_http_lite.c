/* fuzz_http_lite.c - libFuzzer target for the agent's HTTP response parser (bytes that come
 * from the network). Invariants: a parsed response never claims more bytes than it was
 * given, its body is NUL-terminated at body_len, and feeding the same bytes in two pieces
 * (a split read) gives the same answer as feeding them at once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_lite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_lite_response whole, part;
	int rc = http_lite_parse(buf, size, true, &whole);

	if (rc == 1) {
		if (whole.consumed > size || whole.body[whole.body_len] != '\0')
			abort();
		/* any prefix that already holds the whole response parses to the same thing */
		if (http_lite_parse(buf, whole.consumed, false, &part) == 1) {
			if (part.status != whole.status || part.body_len != whole.body_len ||
			    memcmp(part.body, whole.body, whole.body_len) != 0)
				abort();
			free(part.body);
		}
		free(whole.body);
	}
	rc = http_lite_parse(buf, size, false, &part);
	if (rc == 1)
		free(part.body);
	return 0;
}
