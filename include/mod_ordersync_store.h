/* mod_ordersync_store.h: the store every flow shares, over mod_dbd (SQLite by default,
 * PostgreSQL for several servers), as the rest of the module sees it: commit one accepted
 * order (and wait for the answer), read one order, and the hooks that start the store.
 *
 * The store's rooms (each file says what it owns):
 *   mod_ordersync_store_db.c     connections, pragmas, schema and migration, statement text,
 *                                transactions (the one place that decides "committed")
 *   mod_ordersync_store_intake.c the intake transaction: an order, its version and its job
 *   mod_ordersync_writer.c       the writer thread of each process and its queue, and the
 *                                way a request reaches the committer
 *   mod_ordersync_board.c        the shared-memory slots through which every process hands
 *                                its orders to the one committer (Linux)
 *   mod_ordersync_checkpoint.c   the SQLite checkpoint job (mod_watchdog)
 *   mod_ordersync_store_read.c   the reads of the status route
 *
 * Promises kept here: an order is answered CREATED or NEW_VERSION only after the transaction
 * holding it committed; UNAVAILABLE means nothing of it was written; UNKNOWN means the store
 * cannot tell (a commit whose reply was lost, a committer that stopped mid-commit), and a
 * resend carrying the same intake id is recognised exactly.
 *
 * Background writes (the dispatcher's claims and completions, which come next) are writes
 * like the intake's: on SQLite a second writing connection in another process would make
 * every writer re-read its pages. So background jobs run their store writes through the
 * writer of the process that holds the hub's lease (the committer), as batched items of the
 * same queue; they never open a writing connection of their own. On PostgreSQL the same path
 * is used, and leases in rows (FOR UPDATE SKIP LOCKED) keep several servers apart. */
#ifndef MOD_ORDERSYNC_STORE_H
#define MOD_ORDERSYNC_STORE_H

#include "httpd.h"
#include "http_config.h"

typedef enum {
    OS_INTAKE_CREATED,       /* a new order, version 1, committed */
    OS_INTAKE_NEW_VERSION,   /* changed content: a new version, committed */
    OS_INTAKE_REPLAY,        /* the same content again (or the same intake id): nothing written */
    OS_INTAKE_SHIPPED,       /* changed content after shipment: refused */
    OS_INTAKE_QUEUE_FULL,    /* too many jobs waiting (the hub's or the source's share) */
    OS_INTAKE_UNAVAILABLE,   /* the store could not commit; nothing of the order was written */
    OS_INTAKE_UNKNOWN        /* the store cannot tell whether it committed */
} os_intake_result_e;

#define OS_INTAKE_ID_MAX 64

/* What the store needs from the configuration of one hub; the glue fills it. */
typedef struct {
    int timeout_ms;              /* OrderSyncStoreTimeout */
    int durability;              /* 0 = NORMAL, 1 = FULL */
    int batch_max;               /* OrderSyncBatchMax */
    int queue_max;               /* OrderSyncQueueMax: jobs waiting, the whole hub */
    int source_queue_max;        /* OrderSyncSourceQueueMax: jobs waiting, one source */
    apr_int64_t max_size;        /* OrderSyncStoreMaxSize (SQLite), -1 = none */
    const char *name;            /* "sqlite3 /path, as www-data": the store, for messages */
} os_store_conf_t;

/* One accepted order on its way into the store. The caller fills the inputs and waits in
 * os_store_intake(); the store fills the outputs. */
typedef struct os_intake_op_t {
    const char *source_id;
    const char *reference;
    const char *sent_reference;   /* reference as sent to the warehouse (with the prefix) */
    const char *origin;           /* "push" */
    const char *body;             /* canonical normalised payload */
    const char *digest;
    const char *intake_id;        /* the client's Idempotency-Key, or NULL: one is made */
    int cancelled;                /* status 9 */
    /* outputs */
    os_intake_result_e result;
    char order_id[40];
    int version;
    char delivery_state[24];
    char id[OS_INTAKE_ID_MAX + 1];/* the intake id this request went in with */
    char error[200];              /* why the store failed, for the log (never secrets) */
} os_intake_op_t;

typedef struct {
    int version;
    const char *received_at;
    const char *digest;
} os_version_view_t;

typedef struct {
    const char *event_at;
    const char *kind;
    const char *detail;
} os_event_view_t;

typedef struct {
    const char *kind, *state, *due_at, *last_error;
    int version, attempts;
} os_job_view_t;

/* An upstream the dispatcher paused (it refuses our credentials, or fails for every
 * order): since when and why; NULL while it works. */
typedef struct {
    const char *name, *since, *cause;
} os_pause_view_t;

typedef struct {
    const char *id, *source_id, *reference, *sent_reference, *origin;
    const char *clougistic_id;      /* the id Clougistic gave the order, or NULL */
    apr_array_header_t *jobs;       /* os_job_view_t */
    os_pause_view_t *paused;        /* the Clougistic upstream, when paused */
    int latest_version, delivered_version;
    const char *state[4], *state_at[4], *state_cause[4];   /* intake, delivery, writeback, shipment */
    const char *created_at, *updated_at;
    apr_array_header_t *versions;   /* os_version_view_t */
    apr_array_header_t *events;     /* os_event_view_t */
    const char *latest_body;
} os_order_view_t;

extern const char *const OS_STATE_STEPS[4];

/* Hooks. `hubs` lists the servers that mount the hub, in the same order in every process;
 * `conf` gives each one's settings (the glue's os_store_conf_of). */
typedef const os_store_conf_t *(*os_store_conf_fn)(server_rec *s);
void os_store_pre_config(apr_pool_t *pconf);
int os_store_post_config(apr_pool_t *pconf, server_rec *s, apr_array_header_t *hubs,
                         os_store_conf_fn conf);
void os_store_child_init(apr_pool_t *pchild, server_rec *s);
/* An order is on its way: its body is being read and checked (the writer may wait a moment
 * for it to join a batch; over when it reaches os_store_intake() or the request ends). */
void os_store_expect(request_rec *r);
/* Commits (or replays) one order through the hub's committer; waits for the answer, at
 * most about the store timeout. */
void os_store_intake(request_rec *r, os_intake_op_t *op);
/* Whether an Idempotency-Key is acceptable as an intake id (1-64 of A-Za-z0-9-_.:). */
int os_store_intake_id_ok(const char *id);

/* Reads one order. Returns APR_SUCCESS, APR_NOTFOUND, or an error when the store fails. */
apr_status_t os_store_order_get(request_rec *r, const char *source_id, const char *reference,
                                os_order_view_t **out);

#endif
