/* http_client.c - blocking HTTP calls over libcurl with one reused handle per thread (see
 * http_client.h). */
#include "lib/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void handle_key_init(void)
{
	pthread_key_create(&handle_key, handle_free);
}

void http_client_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_once(&handle_once, handle_key_init);
}

void http_client_global_cleanup(void)
{
	CURL *h;

	pthread_once(&handle_once, handle_key_init);
	h = pthread_getspecific(handle_key);
	if (h) {
		pthread_setspecific(handle_key, NULL);
		curl_easy_cleanup(h);
	}
	curl_global_cleanup();
}

static CURL *thread_handle(void)
{
	CURL *h;

	pthread_once(&handle_once, handle_key_init);
	h = pthread_getspecific(handle_key);
	if (!h) {
		h = curl_easy_init();
		if (h)
			pthread_setspecific(handle_key, h);
	} else {
		curl_easy_reset(h);
	}
	return h;
}

static size_t collect(char *data, size_t size, size_t nmemb, void *cls)
{
	struct http_result *r = cls;
	size_t n = size * nmemb;
	char *grown = realloc(r->body, r->body_len + n + 1);

	if (!grown)
		return 0;
	memcpy(grown + r->body_len, data, n);
	r->body = grown;
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

int http_call(const char *method, const char *url, const char *body, size_t body_len,
	      const char *const *headers, long timeout_ms, struct http_result *out)
{
	struct curl_slist *list = NULL;
	CURL *h = thread_handle();
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	if (!h) {
		snprintf(out->error, sizeof(out->error), "cannot create an HTTP client handle");
		return -1;
	}
	for (const char *const *hp = headers; hp && *hp; hp++)
		list = curl_slist_append(list, *hp);
	list = curl_slist_append(list, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	rc = curl_easy_perform(h);
	curl_slist_free_all(list);
	if (rc != CURLE_OK) {
		snprintf(out->error, sizeof(out->error), "%s: %s", url, curl_easy_strerror(rc));
		free(out->body);
		out->body = NULL;
		out->body_len = 0;
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	return 0;
}

int http_call_json(const char *method, const char *url, json_t *body, long timeout_ms,
		   struct http_result *out)
{
	static const char *const headers[] = { "Content-Type: application/json",
					       "Accept: application/json", NULL };
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	if (body && !text) {
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "cannot encode the request body");
		return -1;
	}
	rc = http_call(method, url, text, text ? strlen(text) : 0, headers, timeout_ms, out);
	free(text);
	return rc;
}
