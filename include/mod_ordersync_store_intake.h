/* mod_ordersync_store_intake.h: the intake transaction. It owns what one accepted order
 * writes (the order row, its version with the intake id, its delivery job, an event) and the
 * queue limits (the hub's and each source's share).
 *
 * Invariants:
 * - A batch commits whole or not at all; when it cannot, its orders are tried one by one, so
 *   an order that cannot be stored is refused alone.
 * - An op's result says CREATED/NEW_VERSION only if os_txn_commit() said committed; a commit
 *   whose outcome nobody knows makes every op of it UNKNOWN, never a retry.
 * - An intake id already stored for the order answers as a replay of the version it made, so
 *   a recommit or a resend never stores its content a second time (or as a stale newest). */
#ifndef MOD_ORDERSYNC_STORE_INTAKE_H
#define MOD_ORDERSYNC_STORE_INTAKE_H

#include "mod_ordersync_store_db.h"

/* Jobs waiting, as last counted plus what this writer added since; per hub and per source. */
typedef struct {
    int queued;
    apr_time_t counted_at;
    apr_hash_t *sources;          /* source_id -> os_source_count_t (the writer's pool) */
    apr_pool_t *pool;
    apr_time_t logged_at;         /* a full queue was last logged then */
    long refused;                 /* orders refused for a full queue since */
    int sole;                     /* this writer commits (nearly) every order: the
                                     committer. Others count every batch at a limit */
} os_queue_count_t;

/* Commits n orders (one transaction, then one by one if that fails). Fills each op. */
void os_intake_commit(server_rec *s, const os_store_conf_t *conf, os_conn_t *c, apr_pool_t *p,
                      os_queue_count_t *qc, os_intake_op_t **ops, int n);

#endif
