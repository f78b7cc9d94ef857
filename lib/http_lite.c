/* http_lite.c - a small HTTP/1.1 client over plain sockets with one keep-alive connection
 * per thread, and its response parser (see http_lite.h for why it exists). */
#include "lib/http_lite.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"

#define MAX_HEADER_BYTES (64 * 1024)

/* ---- response parser ---- */

static int parse_fail(struct http_lite_response *r, const char *why)
{
	snprintf(r->error, sizeof(r->error), "%s", why);
	return -EINVAL;
}

/* Finds the end of the header block; returns the offset just past it, or 0. */
static size_t header_end(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n')
			return i + 1;
	return 0;
}

struct head {
	int status;
	bool http10, chunked, has_length, close, keep_alive_header;
	size_t length;
};

static bool header_is(const char *line, size_t n, const char *name, const char **value)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	*value = line + k + 1;
	while (*value < line + n && (**value == ' ' || **value == '\t'))
		(*value)++;
	return true;
}

static bool value_has_token(const char *v, const char *end, const char *token)
{
	size_t k = strlen(token);

	for (const char *p = v; p + k <= end; p++)
		if (strncasecmp(p, token, k) == 0)
			return true;
	return false;
}

static int parse_head(const char *buf, size_t hend, struct head *h, struct http_lite_response *r)
{
	const char *line = buf, *end = buf + hend - 2; /* up to the final CRLF */
	int first = 1;

	memset(h, 0, sizeof(*h));
	while (line < end) {
		const char *eol = memchr(line, '\r', (size_t)(end - line));
		size_t n;
		const char *v;

		if (!eol || eol + 1 >= buf + hend || eol[1] != '\n')
			return parse_fail(r, "header line not ended by CRLF");
		n = (size_t)(eol - line);
		if (memchr(line, '\n', n))
			return parse_fail(r, "bare LF inside a header line");
		if (first) {
			if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0 ||
			    (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
			    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
			    !isdigit((unsigned char)line[11]) || (n > 12 && line[12] != ' '))
				return parse_fail(r, "not an HTTP/1.x status line");
			h->http10 = line[7] == '0';
			h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
			if (h->status < 100)
				return parse_fail(r, "status code below 100");
			first = 0;
		} else if (header_is(line, n, "Content-Length", &v)) {
			size_t len = 0;
			const char *p = v;

			if (p == eol || h->has_length)
				return parse_fail(r, "bad or repeated Content-Length");
			for (; p < eol && isdigit((unsigned char)*p); p++) {
				len = len * 10 + (size_t)(*p - '0');
				if (len > HTTP_LITE_MAX_RESPONSE)
					return parse_fail(r, "response body too large");
			}
			while (p < eol && (*p == ' ' || *p == '\t'))
				p++;
			if (p != eol)
				return parse_fail(r, "bad Content-Length");
			h->length = len;
			h->has_length = true;
		} else if (header_is(line, n, "Transfer-Encoding", &v)) {
			h->chunked = value_has_token(v, eol, "chunked");
		} else if (header_is(line, n, "Connection", &v)) {
			h->close = value_has_token(v, eol, "close");
			h->keep_alive_header = value_has_token(v, eol, "keep-alive");
		}
		line = eol + 2;
	}
	if (first)
		return parse_fail(r, "empty header block");
	return 0;
}

/* Decodes a chunked body starting at p; 1 done (sets *used), 0 more needed, <0 bad. */
static int parse_chunked(const char *p, size_t len, char **body, size_t *body_len,
			 size_t *used, struct http_lite_response *r)
{
	size_t pos = 0, out_len = 0, cap = 0;
	char *out = NULL;

	for (;;) {
		size_t size = 0, digits = 0, lend;
		const char *nl;

		nl = memchr(p + pos, '\n', len - pos);
		if (!nl)
			goto more;
		lend = (size_t)(nl - p);
		if (lend == pos || p[lend - 1] != '\r')
			goto bad_line;
		for (size_t i = pos; i < lend - 1 && isxdigit((unsigned char)p[i]); i++, digits++) {
			size = size * 16 + (size_t)(isdigit((unsigned char)p[i]) ? p[i] - '0'
									  : (tolower((unsigned char)p[i]) - 'a' + 10));
			if (size > HTTP_LITE_MAX_RESPONSE)
				goto too_large;
		}
		if (digits == 0 || (pos + digits < lend - 1 && p[pos + digits] != ';'))
			goto bad_line;
		pos = lend + 1;
		if (size == 0)
			break;
		if (len - pos < size + 2)
			goto more;
		if (p[pos + size] != '\r' || p[pos + size + 1] != '\n')
			goto bad_line;
		if (out_len + size > HTTP_LITE_MAX_RESPONSE)
			goto too_large;
		if (out_len + size + 1 > cap) {
			char *grown;

			cap = (out_len + size + 1) * 2;
			grown = realloc(out, cap);
			if (!grown) {
				free(out);
				return parse_fail(r, "out of memory");
			}
			out = grown;
		}
		memcpy(out + out_len, p + pos, size);
		out_len += size;
		pos += size + 2;
	}
	/* trailers, then an empty line */
	for (;;) {
		const char *nl = memchr(p + pos, '\n', len - pos);
		size_t lend;
		bool empty;

		if (!nl)
			goto more;
		lend = (size_t)(nl - p);
		if (lend == pos || p[lend - 1] != '\r')
			goto bad_line;
		empty = lend - 1 == pos;
		pos = lend + 1;
		if (empty)
			break;
	}
	if (!out)
		out = malloc(1);
	if (!out)
		return parse_fail(r, "out of memory");
	out[out_len] = '\0';
	*body = out;
	*body_len = out_len;
	*used = pos;
	return 1;
more:
	free(out);
	return 0;
bad_line:
	free(out);
	return parse_fail(r, "bad chunk framing");
too_large:
	free(out);
	return parse_fail(r, "response body too large");
}

int http_lite_parse(const char *buf, size_t len, bool at_eof, struct http_lite_response *r)
{
	size_t start = 0;

	memset(r, 0, sizeof(*r));
	for (;;) {
		struct head h;
		size_t hend = header_end(buf + start, len - start), body_at, used = 0;
		int rc;

		if (!hend) {
			if (len - start > MAX_HEADER_BYTES)
				return parse_fail(r, "response headers too long");
			return at_eof ? parse_fail(r, "connection closed before a whole response") : 0;
		}
		rc = parse_head(buf + start, hend, &h, r);
		if (rc < 0)
			return rc;
		body_at = start + hend;
		if (h.status < 200) {          /* 100 Continue and friends: the answer follows */
			start = body_at;
			continue;
		}
		r->status = h.status;
		r->keep_alive = h.http10 ? h.keep_alive_header && !h.close : !h.close;
		if (h.status == 204 || h.status == 304) {
			r->body = calloc(1, 1);
			r->consumed = body_at;
		} else if (h.chunked) {
			rc = parse_chunked(buf + body_at, len - body_at, &r->body, &r->body_len, &used, r);
			if (rc <= 0)
				return rc < 0 ? rc : (at_eof ? parse_fail(r, "connection closed inside the body") : 0);
			r->consumed = body_at + used;
		} else if (h.has_length) {
			if (len - body_at < h.length)
				return at_eof ? parse_fail(r, "connection closed inside the body") : 0;
			r->body = malloc(h.length + 1);
			if (r->body) {
				memcpy(r->body, buf + body_at, h.length);
				r->body[h.length] = '\0';
			}
			r->body_len = h.length;
			r->consumed = body_at + h.length;
		} else {                       /* the body runs to the end of the connection */
			if (!at_eof)
				return len - body_at > HTTP_LITE_MAX_RESPONSE
					       ? parse_fail(r, "response body too large") : 0;
			r->body_len = len - body_at;
			r->body = malloc(r->body_len + 1);
			if (r->body) {
				memcpy(r->body, buf + body_at, r->body_len);
				r->body[r->body_len] = '\0';
			}
			r->keep_alive = false;
			r->consumed = len;
		}
		if (!r->body)
			return parse_fail(r, "out of memory");
		return 1;
	}
}

/* ---- client ---- */

struct conn {
	int fd;
	char host[256];
	char port[8];
};

static __thread struct conn tl_conn = { .fd = -1 };

void http_lite_thread_cleanup(void)
{
	if (tl_conn.fd >= 0)
		close(tl_conn.fd);
	tl_conn.fd = -1;
}

/* "http://host[:port]/path" -> parts. */
static int parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen,
		     const char **path)
{
	const char *p, *h, *hend, *slash;

	if (strncmp(url, "http://", 7) != 0)
		return -EINVAL;
	h = url + 7;
	slash = strchr(h, '/');
	*path = slash ? slash : "/";
	if (!slash)
		slash = h + strlen(h);
	if (*h == '[') {                       /* [v6]:port */
		hend = memchr(h, ']', (size_t)(slash - h));
		if (!hend)
			return -EINVAL;
		h++;
		p = hend + 1;
	} else {
		hend = memchr(h, ':', (size_t)(slash - h));
		if (!hend)
			hend = slash;
		p = hend;
	}
	if (hend == h || (size_t)(hend - h) >= hostlen)
		return -EINVAL;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (p < slash && *p == ':') {
		p++;
		if (slash == p || (size_t)(slash - p) >= portlen)
			return -EINVAL;
		memcpy(port, p, (size_t)(slash - p));
		port[slash - p] = '\0';
	} else if (p == slash) {
		snprintf(port, portlen, "80");
	} else {
		return -EINVAL;
	}
	return 0;
}

static long ms_left(double deadline)
{
	double left = deadline - now_mono();

	return left <= 0 ? 0 : (long)(left * 1000.0) + 1;
}

static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		long ms = ms_left(deadline);
		int n;

		if (ms == 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int open_conn(const char *host, const char *port, double deadline)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	int rc = -EHOSTUNREACH, fd = -1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1, soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			rc = -errno;
		} else if ((rc = wait_fd(fd, POLLOUT, deadline)) == 0 &&
			   getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			break;
		} else if (rc == 0) {
			rc = -(soerr ? soerr : ECONNREFUSED);
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : rc;
}

static int send_all(int fd, const char *data, size_t len, double deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = wait_fd(fd, POLLOUT, deadline);

			if (rc < 0)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until one whole response is parsed. Returns 1 done, <0 error; *got_any tells if
 * any byte arrived (a reused connection closed by the server sends nothing). */
static int receive(int fd, double deadline, struct http_lite_response *r, bool *got_any,
		   char *err, size_t errlen)
{
	size_t len = 0, cap = 16 * 1024;
	char *buf = malloc(cap);
	int rc = 0;

	*got_any = false;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown = cap >= HTTP_LITE_MAX_RESPONSE + MAX_HEADER_BYTES ? NULL
										 : realloc(buf, cap * 2);

			if (!grown) {
				snprintf(err, errlen, "response too large");
				rc = -EMSGSIZE;
				break;
			}
			buf = grown;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = wait_fd(fd, POLLIN, deadline);
			if (rc < 0) {
				snprintf(err, errlen, "no answer in time");
				break;
			}
			continue;
		}
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s", strerror(errno));
			break;
		}
		if (n > 0)
			*got_any = true;
		len += (size_t)n;
		rc = http_lite_parse(buf, len, n == 0, r);
		if (rc == 1)
			break;
		if (rc < 0) {
			snprintf(err, errlen, "bad response: %s", r->error);
			break;
		}
		if (n == 0) {
			snprintf(err, errlen, "connection closed");
			rc = -ECONNRESET;
			break;
		}
	}
	free(buf);
	return rc;
}

static int call_once(const char *host, const char *port, const char *req, size_t req_len,
		     const char *body, size_t body_len, double deadline,
		     struct http_lite_response *r, bool *reused, bool *got_any, char *err,
		     size_t errlen)
{
	int rc;

	*reused = tl_conn.fd >= 0 && strcmp(tl_conn.host, host) == 0 &&
		  strcmp(tl_conn.port, port) == 0;
	*got_any = false;
	if (!*reused) {
		http_lite_thread_cleanup();
		rc = open_conn(host, port, deadline);
		if (rc < 0) {
			snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(-rc));
			return rc;
		}
		tl_conn.fd = rc;
		snprintf(tl_conn.host, sizeof(tl_conn.host), "%s", host);
		snprintf(tl_conn.port, sizeof(tl_conn.port), "%s", port);
	}
	rc = send_all(tl_conn.fd, req, req_len, deadline);
	if (rc == 0 && body_len)
		rc = send_all(tl_conn.fd, body, body_len, deadline);
	if (rc < 0)
		snprintf(err, errlen, "cannot send to %s:%s: %s", host, port, strerror(-rc));
	else
		rc = receive(tl_conn.fd, deadline, r, got_any, err, errlen);
	if (rc < 0 || !r->keep_alive)
		http_lite_thread_cleanup();
	return rc < 0 ? rc : 0;
}

int http_lite_call(const char *method, const char *url, const char *body, size_t body_len,
		   const char *content_type, long timeout_ms, struct http_result *out)
{
	char host[256], port[8], req[2048];
	const char *path;
	double deadline = now_mono() + (double)timeout_ms / 1000.0;
	struct http_lite_response r;
	bool reused, got_any;
	int n, rc;

	memset(out, 0, sizeof(*out));
	if (parse_url(url, host, sizeof(host), port, sizeof(port), &path) < 0) {
		snprintf(out->error, sizeof(out->error), "%s: not an http://host[:port]/path URL", url);
		return -1;
	}
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\n"
		     "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
		     method, path, host, port, content_type ? content_type : "application/json",
		     body ? body_len : 0);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(out->error, sizeof(out->error), "%s: URL too long", url);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	rc = call_once(host, port, req, (size_t)n, body, body ? body_len : 0, deadline, &r,
		       &reused, &got_any, out->error, sizeof(out->error));
	if (rc < 0 && reused && !got_any) {
		/* the server closed our idle keep-alive connection: one fresh attempt */
		free(r.body);
		memset(&r, 0, sizeof(r));
		out->error[0] = '\0';
		rc = call_once(host, port, req, (size_t)n, body, body ? body_len : 0, deadline, &r,
			       &reused, &got_any, out->error, sizeof(out->error));
	}
	if (rc < 0) {
		free(r.body);
		return -1;
	}
	out->status = r.status;
	out->body = r.body;
	out->body_len = r.body_len;
	return 0;
}

int http_lite_call_json(const char *method, const char *url, json_t *body, long timeout_ms,
			struct http_result *out)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;

	if (body && !text) {
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "cannot encode the request body");
		return -1;
	}
	rc = http_lite_call(method, url, text, text ? strlen(text) : 0, "application/json",
			    timeout_ms, out);
	free(text);
	return rc;
}

/* ---- upgraded connections ---- */

int http_lite_send_all(int fd, const void *data, size_t len, long timeout_ms)
{
	return send_all(fd, data, len, now_mono() + (double)timeout_ms / 1000.0);
}

long http_lite_recv(int fd, void *buf, size_t len, long timeout_ms)
{
	double deadline = now_mono() + (double)timeout_ms / 1000.0;

	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);
		int rc;

		if (n >= 0)
			return (long)n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
}

int http_lite_upgrade(const char *url, const char *protocol, long timeout_ms, char *extra,
		      size_t cap, size_t *extra_len, struct http_result *out)
{
	char host[256], port[8], req[2048], buf[4096];
	const char *path;
	double deadline = now_mono() + (double)timeout_ms / 1000.0;
	struct http_lite_response r;
	struct head h;
	size_t len = 0, hend = 0;
	int fd, n, rc;

	memset(out, 0, sizeof(*out));
	*extra_len = 0;
	if (parse_url(url, host, sizeof(host), port, sizeof(port), &path) < 0) {
		snprintf(out->error, sizeof(out->error), "%s: not an http://host[:port]/path URL", url);
		return -1;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: Upgrade\r\n"
		     "Upgrade: %s\r\n\r\n", path, host, port, protocol);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(out->error, sizeof(out->error), "%s: URL too long", url);
		return -1;
	}
	fd = open_conn(host, port, deadline);
	if (fd < 0) {
		snprintf(out->error, sizeof(out->error), "cannot connect to %.200s:%s: %s", host,
			 port, strerror(-fd));
		return -1;
	}
	rc = send_all(fd, req, (size_t)n, deadline);
	if (rc < 0) {
		snprintf(out->error, sizeof(out->error), "cannot send to %.200s:%s: %s", host, port,
			 strerror(-rc));
		goto fail;
	}
	/* The answer's head (a 101 has no body; frames may follow it at once). */
	while (!(hend = header_end(buf, len))) {
		ssize_t got;

		if (len == sizeof(buf)) {
			snprintf(out->error, sizeof(out->error), "answer headers too long");
			goto fail;
		}
		got = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLIN, deadline) < 0) {
				snprintf(out->error, sizeof(out->error), "no answer in time");
				goto fail;
			}
			continue;
		}
		if (got <= 0) {
			snprintf(out->error, sizeof(out->error), "connection closed before an answer");
			goto fail;
		}
		len += (size_t)got;
	}
	memset(&r, 0, sizeof(r));
	if (parse_head(buf, hend, &h, &r) < 0) {
		snprintf(out->error, sizeof(out->error), "bad answer: %s", r.error);
		goto fail;
	}
	if (h.status != 101) {
		/* Another answer (an older server: 404): its body, when it is all here. */
		out->status = h.status;
		if (h.has_length && len - hend >= h.length && (out->body = malloc(h.length + 1))) {
			memcpy(out->body, buf + hend, h.length);
			out->body[h.length] = '\0';
			out->body_len = h.length;
		}
		close(fd);
		return -1;
	}
	if (len - hend > cap) {
		snprintf(out->error, sizeof(out->error), "too many bytes behind the 101");
		goto fail;
	}
	memcpy(extra, buf + hend, len - hend);
	*extra_len = len - hend;
	out->status = 101;
	return fd;
fail:
	close(fd);
	return -1;
}
