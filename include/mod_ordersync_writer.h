/* mod_ordersync_writer.h: the store's writer in each process, shared by the store's files.
 * It owns the hubs' list (made in post_config, the same in every process), each process's
 * writer thread and its connection, the store's write lock (httpd's Mutex "ordersync-store"),
 * and the connection lent to the checkpoint job.
 *
 * Invariants:
 * - On a board (Linux) exactly one writer per hub commits, the one holding the hub's lease;
 *   the others commit only what cannot go through the board, under the write lock.
 * - A request is answered within its store timeout plus a short margin, whatever the writer
 *   does: an order still queued is taken back (nothing stored), one in the writer's hands is
 *   answered "outcome unknown" and the writer's later answer lands on nobody's memory (the
 *   queued order is a copy the request and the writer share until both are done).
 * - A store that fails is logged once when it starts failing and once when it recovers. */
#ifndef MOD_ORDERSYNC_WRITER_H
#define MOD_ORDERSYNC_WRITER_H

#include "mod_ordersync_store_db.h"

/* How long past its store timeout a request waits for an answer the committer owes it. */
#define OS_ANSWER_MARGIN apr_time_from_msec(500)

typedef struct os_store_t os_store_t;

/* The store of a server with a hub (NULL for the others, or before child_init). */
os_store_t *os_store_of(server_rec *s);
const os_store_conf_t *os_store_conf_get(os_store_t *st);
/* The store's write lock, taken for at most `wait`: NULL, or why it could not. */
const char *os_store_lock(apr_interval_time_t wait, int *locked);
void os_store_unlock(int locked);
/* Whether this process's writer holds the hub's lease (commits for every process). */
int os_store_committing(os_store_t *st);
int os_store_hub(os_store_t *st);
/* The connection the checkpoint job uses (opened by the writer with its own; SQLite only). */
ap_dbd_t *os_store_ckpt_dbd(os_store_t *st);

#endif
