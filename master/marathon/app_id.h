/* app_id.h - Marathon app ids (PathId): normalisation of relative ids, "." and "..",
 * segment validation, and the task-id prefix derived from an app id. */
#ifndef PACER_MARATHON_APP_ID_H
#define PACER_MARATHON_APP_ID_H

#include <stdbool.h>
#include <stddef.h>

/* Longest normalised app id: the task id "<path without leading />.<uuid>" must fit
 * task_record.task_id[160]. */
#define APP_ID_MAX 122

/* The regular expression every id segment must match (Marathon's). */
extern const char APP_ID_SEGMENT_REGEX[];

/* True if seg (one path segment, no '/') is a valid Marathon id segment. */
bool app_id_segment_valid(const char *seg);

/* Normalises in (absolute "/a/b" or relative "a/b", resolved against base, which must be
 * absolute or NULL for the root): empty segments dropped, "." skipped, ".." goes up (not
 * above the root), trailing slash dropped. Writes "/a/b" to out (size >= APP_ID_MAX + 1).
 * Returns 0, or -EINVAL with a message in err (bad segment, root id, too long). */
int app_id_normalize(const char *in, const char *base, char *out, size_t outlen,
		     char *err, size_t errlen);

/* "/team-a/web" -> "team-a_web" (the part of a task id before the dot). */
void app_id_task_prefix(const char *app_id, char *out, size_t outlen);

/* The app id a task id belongs to is not recoverable in general ("_" is not allowed in
 * ids, so this one is): "team-a_web.<uuid>" -> "/team-a/web". Returns -EINVAL if the
 * task id has no dot. */
int app_id_from_task_id(const char *task_id, char *out, size_t outlen);

#endif
