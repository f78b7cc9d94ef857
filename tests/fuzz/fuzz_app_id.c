/* fuzz_app_id.c - libFuzzer target for Marathon app id normalisation (PathId rules).
 * Input: "<id>" or "<id>\n<base>". Invariants: a normalised id is absolute, short
 * enough, made of valid segments, a fixed point of normalisation; a relative id against
 * a base means the same as base + "/" + id; the task-id prefix maps back to the app id. */
/* fuzz-links: master/marathon/app_id.c */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/marathon/app_id.h"
#include "tests/fuzz/fuzz_common.h"

static void check_normalised(const char *id)
{
	char again[APP_ID_MAX + 1], err[512], copy[APP_ID_MAX + 1], prefix[APP_ID_MAX + 1];
	char task_id[APP_ID_MAX + 64], back[APP_ID_MAX + 64];
	size_t n = strlen(id);

	CHECK(id[0] == '/' && n >= 2 && n <= APP_ID_MAX && id[n - 1] != '/' && !strstr(id, "//"));
	snprintf(copy, sizeof(copy), "%s", id);
	for (char *save = NULL, *seg = strtok_r(copy, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
		CHECK(app_id_segment_valid(seg) && strcmp(seg, ".") && strcmp(seg, ".."));
	/* normalising twice = once; an absolute id ignores the base */
	CHECK(app_id_normalize(id, NULL, again, sizeof(again), err, sizeof(err)) == 0);
	CHECK(strcmp(again, id) == 0);
	CHECK(app_id_normalize(id, "/other/base", again, sizeof(again), err, sizeof(err)) == 0);
	CHECK(strcmp(again, id) == 0);
	/* task id "<prefix>.<uuid>" -> the app id */
	app_id_task_prefix(id, prefix, sizeof(prefix));
	CHECK(strlen(prefix) == n - 1 && !strchr(prefix, '/'));
	snprintf(task_id, sizeof(task_id), "%s.3f0c2a4e-0000-4000-8000-000000000000", prefix);
	CHECK(app_id_from_task_id(task_id, back, sizeof(back)) == 0);
	CHECK(strcmp(back, id) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *in, *base, *nl;
	char out[APP_ID_MAX + 1], joined_out[APP_ID_MAX + 1], err[512] = "", err2[512];
	char joined[2100];
	int rc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	in = text;
	nl = strchr(text, '\n');
	base = nl ? nl + 1 : NULL;
	if (nl)
		*nl = '\0';

	rc = app_id_normalize(in, base, out, sizeof(out), err, sizeof(err));
	if (rc) {
		CHECK(rc == -EINVAL && err[0]);
	} else {
		check_normalised(out);
	}
	/* relative against a base == the joined path */
	if (base && in[0] != '/' && strlen(base) + strlen(in) + 2 < 1024) {
		snprintf(joined, sizeof(joined), "%s/%s", base, in);
		int rc2 = app_id_normalize(joined, NULL, joined_out, sizeof(joined_out), err2,
					   sizeof(err2));

		/* the joined path is absolute only if base is; a relative base resolves from root */
		CHECK((rc == 0) == (rc2 == 0));
		if (rc == 0)
			CHECK(strcmp(out, joined_out) == 0);
	}
	/* any task id: never overflows, and the result looks like an id */
	if (app_id_from_task_id(in, joined_out, sizeof(joined_out)) == 0)
		CHECK(joined_out[0] == '/');
	app_id_task_prefix(in, out, sizeof(out));
	CHECK(strlen(out) < sizeof(out));
	free(text);
	return 0;
}
