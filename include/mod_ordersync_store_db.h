/* mod_ordersync_store_db.h: the store's database layer, shared by the store's files only.
 * It owns one connection's state (os_conn_t, hung off mod_dbd's connection), its setup
 * (SQLite pragmas, whose answers are checked), the schema and its migration, the text of
 * every statement, and transactions.
 *
 * Invariants:
 * - Transactions are plain SQL (BEGIN IMMEDIATE / BEGIN; COMMIT), never apr_dbd's transaction
 *   calls (apr-util's pgsql driver dereferences a NULL transaction when BEGIN fails, and its
 *   transaction end answers 0 after an implicit rollback). os_txn_commit() is the one place
 *   that says committed, failed (nothing written) or unknown, and it is reached only when
 *   every statement of the transaction succeeded.
 * - A connection that failed is checked (and on PostgreSQL reconnected) before its next use;
 *   nothing it needs lives in the session: the lock timeout is set per transaction. On
 *   SQLite its statements are prepared again when the schema changed since they were.
 * - Only writers migrate (under the store's write lock); readers only read the version. */
#ifndef MOD_ORDERSYNC_STORE_DB_H
#define MOD_ORDERSYNC_STORE_DB_H

#include "mod_ordersync_store.h"
#include "apr_dbd.h"
#include "mod_dbd.h"

#define OS_SCHEMA_VERSION 3

enum {
    ST_ORDER_FIND, ST_ORDER_INSERT, ST_ORDER_NEW_VERSION, ST_VERSION_INSERT, ST_JOB_REQUEUE,
    ST_JOB_INSERT, ST_EVENT_INSERT, ST_QUEUE_DEPTH, ST_SOURCE_DEPTH, ST_INTAKE_FIND,
    ST_ORDER_GET, ST_VERSIONS_GET, ST_EVENTS_GET, ST_LATEST_BODY,
    /* the delivery jobs (mod_ordersync_jobs.c) */
    ST_JOB_DUE, ST_JOB_CLAIM, ST_ORDER_STEP, ST_JOB_FINISH, ST_ORDER_DELIVERED, ST_JOB_OWNERS,
    ST_JOB_RELEASE, ST_JOB_SHIFT, ST_META_GET, ST_META_PUT, ST_JOB_REPLAY, ST_ORDER_REQUEUED,
    ST_JOB_GET, ST_COUNT
};

typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_pool_t *pool;
    int is_pg;
    int ready;                       /* set up (and, for a writer, the schema current) */
    int failed;                      /* the last use failed: check before the next */
    apr_dbd_prepared_t *st[ST_COUNT];
    apr_int64_t schema_cookie;       /* SQLite: the schema the statements were prepared on */
} os_conn_t;

typedef enum { OS_TXN_COMMITTED, OS_TXN_FAILED, OS_TXN_UNKNOWN } os_txn_outcome_e;

extern APR_OPTIONAL_FN_TYPE(ap_dbd_open) *os_dbd_open;
extern APR_OPTIONAL_FN_TYPE(ap_dbd_close) *os_dbd_close;
extern APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *os_dbd_acquire;
/* Set in post_config when a watchdog checkpoints the SQLite stores. */
extern int os_checkpoints_in_background;

/* A pool with an allocator of its own (and a lock), for memory a thread of the module uses:
 * under prefork the child's allocator has no lock, so the module's threads must never
 * allocate from pools that share it while the main thread serves requests. */
apr_status_t os_thread_pool(apr_pool_t **out, apr_pool_t *parent);

/* The os_conn_t of a mod_dbd connection (made on first use; for a connection a thread of
 * the module will use, make it in the main thread). */
os_conn_t *os_conn_of(ap_dbd_t *dbd);
/* Sets the connection up; `writer` also brings the schema to OS_SCHEMA_VERSION (call it
 * holding the store's write lock). APR_SUCCESS; APR_NOTFOUND for a reader of a store that
 * has no schema yet; or an error already logged, *why (if not NULL) a short reason. */
apr_status_t os_conn_ready(server_rec *s, const os_store_conf_t *conf, os_conn_t *c,
                           apr_pool_t *p, int writer, const char **why);
const char *os_conn_error(os_conn_t *c, int rv);

/* Transactions: begin (0 or a driver error), commit (the outcome), roll back. A failed
 * begin or commit marks the connection failed. */
int os_txn_begin(os_conn_t *c, apr_pool_t *p, const os_store_conf_t *conf);
os_txn_outcome_e os_txn_commit(os_conn_t *c, apr_pool_t *p, const char **why);
void os_txn_rollback(os_conn_t *c);

/* Prepared statements: a write (rows changed in *nrows) and a select (random access). */
int os_q(os_conn_t *c, apr_pool_t *p, int st, int *nrows, int nargs, const char **args);
int os_sel(os_conn_t *c, apr_pool_t *p, int st, apr_dbd_results_t **res, int nargs,
           const char **args);
/* Runs a statement that returns one integer; -1 if no row. */
int os_select_int(os_conn_t *c, apr_pool_t *p, const char *sql, apr_int64_t *out);
int os_exec_any(os_conn_t *c, apr_pool_t *p, const char *sql);
const char *os_i64(apr_pool_t *p, apr_int64_t v);

/* An event of an order (its history in the status route). */
int os_event_insert(os_conn_t *c, apr_pool_t *p, const char *order_id, apr_time_t now,
                    const char *kind, const char *detail);

/* Ids unique across processes and servers, ordered by time (32 hex digits). */
#define OS_ID_LEN 32
void os_new_id(char *buf);

#endif
