/* master.h - the master's in-memory model and its lock. The public part below is what the
 * rest of the master (including master/marathon/) may use; the model itself is private to
 * the master core (agents.c, allocator.c, tasks.c, ...). */
#ifndef PACER_MASTER_MASTER_H
#define PACER_MASTER_MASTER_H

#include <stdint.h>
#include "master/framework.h"
#include "master/store.h"

struct master_config {
	uint16_t port;                  /* --port, default 5050 */
	const char *bind;               /* --bind, default all addresses */
	const char *work_dir;           /* --work-dir, default /var/lib/pacer/master */
	double agent_timeout;           /* --agent-timeout seconds, default 15 */
	double offer_timeout;           /* --offer-timeout seconds, default 5 */
	double allocation_interval;     /* --allocation-interval seconds, default 1 */
	const char *hostname;
};

struct master;

void master_lock(struct master *m);
void master_unlock(struct master *m);
const struct master_config *master_get_config(struct master *m);
struct store *master_store(struct master *m);
/* Master start time (wall seconds), its leader url, for /v2/info. */
double master_started_at(struct master *m);

#endif
