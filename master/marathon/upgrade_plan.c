/* upgrade_plan.c - see upgrade_plan.h. Kills come first in the step (they never raise the
 * total), launches fill the room left under the total bound; old tasks are killed only
 * while the healthy count stays at or above its floor. A scale within one version is the
 * same computation with no old tasks. */
#include <math.h>

#include "master/marathon/upgrade_plan.h"

#define EPS 1e-9

int upgrade_min_healthy(int instances, double min_health)
{
	return (int)ceil(instances * min_health - EPS);
}

int upgrade_max_total(int instances, double max_over)
{
	return (int)floor(instances * (1.0 + max_over) + EPS);
}

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

void upgrade_plan(const struct upgrade_state *s, struct upgrade_step *out)
{
	int min_healthy = upgrade_min_healthy(s->instances, s->min_health);
	int max_total = upgrade_max_total(s->instances, s->max_over);
	int new_active = s->new_running + s->new_other;
	int old_active = s->old_running + s->old_other;
	int healthy = s->old_running + s->new_running;
	int total, spare;

	*out = (struct upgrade_step){ 0 };
	/* Surplus of the current version (a scale down): not-running ones go first. */
	if (new_active > s->instances)
		out->kill_new = new_active - s->instances;
	/* Old tasks that are not running can go at once: health does not change. */
	out->kill_old_other = s->old_other;
	/* Old running ones while health stays at its floor. A surplus new task that is
	 * killed may be running: count it as lost health first. */
	spare = healthy - min_healthy - imax(0, out->kill_new - s->new_other);
	out->kill_old_running = imin(s->old_running, imax(0, spare));
	/* Launch into the room under the total bound (kills still count until they end). */
	total = old_active + new_active + s->killing;
	if (new_active < s->instances)
		out->launch = imax(0, imin(s->instances - new_active, max_total - total));
	/* minHealth 1 and maxOver 0 leave no legal move: replace one old task at a time. Not
	 * while a new task is on its way (not running, or not healthy yet): once it is, the
	 * health it adds lets an old task go within the bounds. */
	if (out->launch == 0 && out->kill_old_running == 0 && out->kill_old_other == 0 &&
	    out->kill_new == 0 && s->killing == 0 && s->old_running > 0 && s->new_other == 0 &&
	    new_active < s->instances && total >= max_total) {
		out->kill_old_running = 1;
		out->forced = true;
	}
}
