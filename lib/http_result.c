/* http_result.c - what both HTTP clients (http_client over libcurl, http_lite over plain
 * sockets) hand back; kept apart so a program using only http_lite does not load libcurl. */
#include <stdlib.h>

#include "lib/http_client.h"

json_t *http_result_json(const struct http_result *r)
{
	if (!r->body || r->body_len == 0)
		return NULL;
	return json_loadb(r->body, r->body_len, 0, NULL);
}

void http_result_free(struct http_result *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}
