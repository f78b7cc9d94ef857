/* http_client.h - blocking HTTP/JSON calls over libcurl (agent -> master, master -> agent,
 * pacerctl -> master). Each thread keeps one curl handle so connections are reused. */
#ifndef PACER_HTTP_CLIENT_H
#define PACER_HTTP_CLIENT_H

#include <stddef.h>
#include <jansson.h>

struct http_result {
	long status;        /* HTTP status, 0 if no response */
	char *body;         /* NUL-terminated response body (may be NULL) */
	size_t body_len;
	char error[256];    /* transport error text when status == 0 */
};

/* Call once per process before threads start (curl_global_init). */
void http_client_global_init(void);
/* Frees the calling thread's handle and curl's globals (at exit, for leak checkers). */
void http_client_global_cleanup(void);

/* body may be NULL. headers: NULL-terminated list of "Name: value" or NULL.
 * Returns 0 when a response arrived (any status), -1 on a transport error (see error). */
int http_call(const char *method, const char *url, const char *body, size_t body_len,
	      const char *const *headers, long timeout_ms, struct http_result *out);
/* Same with a JSON body (borrowed, may be NULL) and Content-Type: application/json. */
int http_call_json(const char *method, const char *url, json_t *body, long timeout_ms,
		   struct http_result *out);
/* Parses out->body as JSON; NULL if absent or not JSON. */
json_t *http_result_json(const struct http_result *r);
void http_result_free(struct http_result *r);

#endif
