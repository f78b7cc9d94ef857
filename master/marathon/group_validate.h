/* group_validate.h - checks a group definition (the body of POST/PUT /v2/groups) the way
 * Marathon does and flattens it: every nested group and app with its id resolved (an id
 * in a group is relative to that group; an absolute one must name a direct child) and
 * every app definition through app_validate. Errors use Marathon's 422 shape with paths
 * such as "/groups(0)/apps(1)/cpus". */
#ifndef PACER_MARATHON_GROUP_VALIDATE_H
#define PACER_MARATHON_GROUP_VALIDATE_H

#include <stdbool.h>
#include <jansson.h>

/* The deepest group nesting accepted in one body. */
#define GROUP_MAX_DEPTH 16

/* Validates def (borrowed) as the group group_id (absolute, "/" for the root) when
 * group_id is given; otherwise def must carry "id", resolved against base_id (NULL: the
 * root). A body "id" next to group_id must name the same group. allow_scale: "scaleBy"
 * is accepted (PUT).
 * On success returns 0 and *out (new reference) is
 *   {"id": top group id,
 *    "groups": [{"id", "dependencies"?: [...], "apps_given": bool, "groups_given": bool}],
 *    "apps": [clean app definitions with absolute ids],
 *    "scaleBy"?: number}
 * where "groups" lists the top group first, then every nested one (parents before
 * children), "dependencies" is present when the body gave it (resolved against the
 * group's id), and *_given say whether the body listed the group's apps / subgroups.
 * On bad input returns -EINVAL and *details (new reference); -ENOMEM otherwise. */
int group_validate(json_t *def, const char *group_id, const char *base_id, bool allow_scale,
		   json_t **out, json_t **details);

/* "/a/b" -> "/a", "/a" -> "/", "a" -> "/" (out may be id: walks up in place; every walk
 * reaches "/"). */
void group_parent(const char *id, char *out, size_t outlen);

#endif
