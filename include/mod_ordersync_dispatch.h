/* mod_ordersync_dispatch.h: the dispatcher, which delivers the store's delivery jobs to
 * Clougistic from inside httpd.
 *
 * It is a mod_watchdog job in every child, working only in the process whose writer holds
 * the hub's lease (the committer; without a board, in each process): its claims and
 * completions are background writes of that writer, batched, and the committer wakes it
 * the moment it commits a new order or version. Deliveries run several at once on one
 * libcurl multi handle per process (made after fork), whose connections are kept alive.
 *
 * Invariants:
 * - A job is delivered only while its lease is held: claimed in one transaction, completed
 *   in another only where the lease is still this dispatcher's (mod_ordersync_jobs.h).
 * - Work stopped at any moment resumes: leases of a process that is gone are given back by
 *   the next dispatcher on the same host, and any lease runs out on its own (the total
 *   timeout and a minute); the STOPPING callback is not relied on.
 * - A paused upstream costs its orders neither tries nor horizon; one failing order never
 *   holds up the others (each waits on its own due time).
 * - The access key is in no log line, event or status answer. */
#ifndef MOD_ORDERSYNC_DISPATCH_H
#define MOD_ORDERSYNC_DISPATCH_H

#include "httpd.h"
#include "apr_tables.h"

/* post_config: a dispatcher for each hub that has OrderSyncClougisticURL. */
int os_dispatch_post_config(apr_pool_t *pconf, server_rec *s, apr_array_header_t *hubs);
/* child_init, after the store's writers started. */
void os_dispatch_child_init(apr_pool_t *pchild, server_rec *s);

#endif
