/* mod_ordersync_store.h: the store every flow shares, over mod_dbd (SQLite by default,
 * PostgreSQL for several servers): the versioned schema, the group-commit writer that
 * commits accepted orders, and the reads behind the status route. */
#ifndef MOD_ORDERSYNC_STORE_H
#define MOD_ORDERSYNC_STORE_H

#include "mod_ordersync.h"

typedef enum {
    OS_INTAKE_CREATED,       /* a new order, version 1, committed */
    OS_INTAKE_NEW_VERSION,   /* changed content: a new version, committed */
    OS_INTAKE_REPLAY,        /* the same content again: nothing written */
    OS_INTAKE_SHIPPED,       /* changed content after shipment: refused */
    OS_INTAKE_QUEUE_FULL,    /* too many jobs waiting: refused */
    OS_INTAKE_UNAVAILABLE    /* the store could not commit (locked, read-only, full, down) */
} os_intake_result_e;

/* One accepted order on its way into the store. The caller fills the inputs and waits in
 * os_store_intake(); the writer fills the outputs. */
typedef struct os_intake_op_t {
    const char *source_id;
    const char *reference;
    const char *sent_reference;   /* reference as sent to the warehouse (with the prefix) */
    const char *origin;           /* "push" */
    const char *body;             /* canonical normalised payload */
    const char *digest;
    int cancelled;                /* status 9 */
    /* outputs */
    os_intake_result_e result;
    char order_id[40];
    int version;
    char delivery_state[24];
    const char *error;            /* why the store failed, for the log (never secrets) */
    /* writer bookkeeping */
    struct os_intake_op_t *next;
    struct apr_thread_cond_t *wake;   /* signalled when this order's commit is over */
    int done;
    void *slot;                       /* shared-memory slot it came through, if any */
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
    const char *id, *source_id, *reference, *sent_reference, *origin;
    int latest_version, delivered_version;
    const char *state[4], *state_at[4], *state_cause[4];   /* intake, delivery, writeback, shipment */
    const char *created_at, *updated_at;
    apr_array_header_t *versions;   /* os_version_view_t */
    apr_array_header_t *events;     /* os_event_view_t */
    const char *latest_body;
} os_order_view_t;

extern const char *const OS_STATE_STEPS[4];

void os_store_pre_config(apr_pool_t *pconf);
int os_store_post_config(apr_pool_t *pconf, server_rec *s);
void os_store_child_init(apr_pool_t *pchild, server_rec *s);
/* An order is on its way: its body is being read and checked (the writer may wait a moment
 * for it to join a batch; over when it reaches os_store_intake() or the request ends). */
void os_store_expect(request_rec *r);
/* Commits (or replays) one order through the server's writer; waits for the answer. */
void os_store_intake(request_rec *r, os_intake_op_t *op);

/* Reads one order. Returns APR_SUCCESS, APR_NOTFOUND, or an error when the store fails. */
apr_status_t os_store_order_get(request_rec *r, const char *source_id, const char *reference,
                                os_order_view_t **out);

#endif
