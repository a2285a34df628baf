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

/* Background writes (the dispatcher's claims and completions, the admin's replay) go
 * through the writer of their process like orders do, in its next transaction: fn runs the
 * op's statements there (the write lock held) and answers 0 or the driver's error. When one
 * op fails, the transaction is rolled back and each op runs again alone, so a failure is
 * the op's own. os_store_background() waits for the outcome: OS_TXN_COMMITTED, or FAILED
 * (nothing of it written; `error` says why), or UNKNOWN (a commit whose reply was lost). */
typedef struct os_bg_op_t os_bg_op_t;
typedef int (*os_bg_fn)(os_conn_t *c, apr_pool_t *p, void *baton);
struct os_bg_op_t {
    os_bg_fn fn;
    void *baton;
    int wake;                         /* committed work for the dispatcher: wake it */
    os_txn_outcome_e outcome;
    char error[200];
    os_bg_op_t *next;                 /* the writer's */
    int done;
};
os_txn_outcome_e os_store_background(os_store_t *st, os_bg_op_t *op);
/* The dispatcher's wake-up: called in the writer's thread after a commit that made
 * delivery work due (a new order or version, a replay). */
void os_store_on_jobs(os_store_t *st, void (*fn)(void *), void *baton);

#endif
