/* http_lite.h - a small blocking HTTP/1.1 client for plain-HTTP JSON calls on the cluster
 * network (the agent's calls to the master). Same result type as http_client.h.
 *
 * Why not libcurl here: loading libcurl and its dependency chain (TLS, Kerberos, LDAP, ...)
 * costs about 8 MiB of resident memory, most of the agent's 10 MiB budget, for calls that
 * never need any of it. The master and pacerctl keep libcurl.
 *
 * Each thread keeps one keep-alive connection (to the last host it talked to). */
#ifndef PACER_HTTP_LITE_H
#define PACER_HTTP_LITE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "lib/http_client.h"

#define HTTP_LITE_MAX_RESPONSE (16 * 1024 * 1024)

/* Returns 0 when a response arrived (any status), -1 on a transport error (out->error). */
int http_lite_call(const char *method, const char *url, const char *body, size_t body_len,
		   const char *content_type, long timeout_ms, struct http_result *out);
int http_lite_call_json(const char *method, const char *url, json_t *body, long timeout_ms,
			struct http_result *out);
/* Closes the calling thread's connection (at thread or process exit). */
void http_lite_thread_cleanup(void);

/* Protocol upgrade on a new connection of its own (not the thread's keep-alive one):
 * GET url with "Connection: Upgrade" and "Upgrade: protocol". Returns the socket
 * (non-blocking; the caller closes it) once the server answered 101; bytes that came
 * right behind the 101 go to extra (*extra_len, at most cap). Else -1 with out->status the
 * server's answer (its body in out->body) or 0 for a transport error (out->error). */
int http_lite_upgrade(const char *url, const char *protocol, long timeout_ms, char *extra,
		      size_t cap, size_t *extra_len, struct http_result *out);
/* On such a socket: sends all of data (0, or -errno; -ETIMEDOUT) / receives at most len
 * bytes (> 0, 0 when the peer closed, or -errno) within timeout_ms. */
int http_lite_send_all(int fd, const void *data, size_t len, long timeout_ms);
long http_lite_recv(int fd, void *buf, size_t len, long timeout_ms);

/* The response parser, separate so it can be tested and fuzzed on its own.
 * Looks at buf[0..len): returns 1 with *r filled when a whole response is there, 0 when more
 * bytes are needed, -EINVAL (r->error says why) when it is not HTTP. at_eof: the peer closed
 * the connection after these bytes (ends a response without length). */
struct http_lite_response {
	int status;
	bool keep_alive;
	char *body;          /* malloc'd, NUL-terminated (decoded if chunked) */
	size_t body_len;
	size_t consumed;     /* bytes of buf that made up the response */
	char error[128];
};
int http_lite_parse(const char *buf, size_t len, bool at_eof, struct http_lite_response *r);

#endif
