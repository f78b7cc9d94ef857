/* app_id.c - Marathon PathId rules: ids are slash-separated paths whose segments match
 * APP_ID_SEGMENT_REGEX; relative ids are resolved against a base, "." and ".." are
 * resolved like a file system path (".." at the root stays at the root), and the result
 * is written without a trailing slash. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "master/marathon/app_id.h"

const char APP_ID_SEGMENT_REGEX[] =
	"^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])$";

static regex_t segment_re;
static bool segment_re_ok;
static pthread_once_t segment_re_once = PTHREAD_ONCE_INIT;

static void compile_segment_re(void)
{
	/* POSIX ERE has no "\-": inside a bracket expression a trailing '-' is literal. */
	segment_re_ok = regcomp(&segment_re,
		"^(([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$",
		REG_EXTENDED | REG_NOSUB) == 0;
}

bool app_id_segment_valid(const char *seg)
{
	pthread_once(&segment_re_once, compile_segment_re);
	if (!segment_re_ok || !seg[0])
		return false;
	return regexec(&segment_re, seg, 0, NULL, 0) == 0;
}

#define MAX_SEGMENTS 64

/* Splits s (modified in place) on '/', appending non-empty segments to segs. */
static int split(char *s, char **segs, int n)
{
	for (char *save = NULL, *tok = strtok_r(s, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (n >= MAX_SEGMENTS)
			return -E2BIG;
		segs[n++] = tok;
	}
	return n;
}

int app_id_normalize(const char *in, const char *base, char *out, size_t outlen,
		     char *err, size_t errlen)
{
	char buf[1024], basebuf[1024];
	char *raw[2 * MAX_SEGMENTS], *res[2 * MAX_SEGMENTS];
	int nraw = 0, nres = 0;
	size_t len = 0;

	if (strlen(in) >= sizeof(buf) || (base && strlen(base) >= sizeof(basebuf))) {
		snprintf(err, errlen, "id is too long (at most %d characters)", APP_ID_MAX);
		return -EINVAL;
	}
	if (in[0] != '/' && base) {
		snprintf(basebuf, sizeof(basebuf), "%s", base);
		nraw = split(basebuf, raw, 0);
		if (nraw < 0)
			goto too_many;
	}
	snprintf(buf, sizeof(buf), "%s", in);
	nraw = split(buf, raw, nraw);
	if (nraw < 0)
		goto too_many;

	for (int i = 0; i < nraw; i++) {
		if (strcmp(raw[i], ".") == 0)
			continue;
		if (strcmp(raw[i], "..") == 0) {
			if (nres > 0)
				nres--;
			continue;
		}
		if (!app_id_segment_valid(raw[i])) {
			snprintf(err, errlen, "'%s' must fully match regular expression '%s'", raw[i],
				 APP_ID_SEGMENT_REGEX);
			return -EINVAL;
		}
		res[nres++] = raw[i];
	}
	if (nres == 0) {
		snprintf(err, errlen, "Path must contain at least one path element");
		return -EINVAL;
	}
	for (int i = 0; i < nres; i++) {
		size_t l = strlen(res[i]);

		if (len + 1 + l > APP_ID_MAX || len + 1 + l >= outlen) {
			snprintf(err, errlen, "id is too long (at most %d characters)", APP_ID_MAX);
			return -EINVAL;
		}
		out[len++] = '/';
		memcpy(out + len, res[i], l);
		len += l;
	}
	out[len] = '\0';
	return 0;

too_many:
	snprintf(err, errlen, "id has too many path elements (at most %d)", MAX_SEGMENTS);
	return -EINVAL;
}

void app_id_task_prefix(const char *app_id, char *out, size_t outlen)
{
	size_t j = 0;

	if (outlen == 0)
		return;
	if (*app_id == '/')
		app_id++;
	for (; *app_id && j + 1 < outlen; app_id++)
		out[j++] = *app_id == '/' ? '_' : *app_id;
	out[j] = '\0';
}

int app_id_from_task_id(const char *task_id, char *out, size_t outlen)
{
	const char *dot = strrchr(task_id, '.');
	size_t j = 0;

	/* The uuid after the last dot has no dots; app segments may contain dots. */
	if (!dot || dot == task_id || outlen < 2)
		return -EINVAL;
	out[j++] = '/';
	for (const char *p = task_id; p < dot; p++) {
		if (j + 1 >= outlen)
			return -ENAMETOOLONG;
		out[j++] = *p == '_' ? '/' : *p;
	}
	out[j] = '\0';
	return 0;
}
