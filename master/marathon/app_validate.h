/* app_validate.h - checks an app definition the way Marathon does and produces its 422
 * shape: {"message":"Object is not valid","details":[{"path":"/cpus","errors":[...]}]}.
 * Fields that would change behaviour but are not supported yet are rejected by name;
 * unknown fields are rejected; read-only fields of the served form (version, tasks...)
 * are accepted and dropped so that a GET can be sent back with PUT. */
#ifndef PACER_MARATHON_APP_VALIDATE_H
#define PACER_MARATHON_APP_VALIDATE_H

#include <jansson.h>

/* The most instances an app may have. */
#define APP_MAX_INSTANCES 10000

/* Validates def (borrowed). base_id resolves a relative "id" (NULL = root).
 * On success returns 0 and *out is the cleaned definition (new reference): id normalised,
 * read-only and default-valued unsupported fields removed.
 * On failure returns -EINVAL and *details is the details array (new reference). */
int app_validate(json_t *def, const char *base_id, json_t **out, json_t **details);

/* Appends msg under path in a details array (grouping errors by path). */
void validation_add(json_t *details, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* {"message":"Object is not valid","details":details} (details stolen). */
json_t *validation_body(json_t *details);

#endif
