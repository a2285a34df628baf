/* mod_ordersync_store_intake.c: the intake transaction (see mod_ordersync_store_intake.h). */
#include "mod_ordersync_store_intake.h"
#include "http_log.h"
#include "apr_strings.h"

APLOG_USE_MODULE(ordersync);

/* Counting the queue costs a scan of the waiting jobs (a join for a source's share), which
 * grows with the queue: at a million waiting orders a count every second would take most
 * of the committer's time (and each count holds up the commit it runs in: 80 ms at 900,000
 * waiting jobs), and counting every batch of a full queue made each refusal wait for a
 * count. So the writer adds what it commits itself and counts anew every ten minutes while
 * less than half the limit is used, once a minute up to nine tenths, once a second beyond,
 * and ten times a second at the limit; a source's share only when the whole queue could
 * exceed it. That is for the committer, which sees (nearly) every commit. A writer that
 * commits only its own process's orders (no board) misses the others' commits: it counts
 * every second, and every batch close to a limit, so the limits hold across processes. */
#define OS_QUEUE_RECOUNT_EDGE apr_time_from_msec(100)
#define OS_QUEUE_RECOUNT apr_time_from_sec(1)
#define OS_QUEUE_RECOUNT_NEAR apr_time_from_sec(60)
#define OS_QUEUE_RECOUNT_FAR apr_time_from_sec(600)

/* How stale a count of a queue with `room` left of `max` may be, for a batch of n. */
static apr_interval_time_t recount_every(const os_queue_count_t *qc, int room, int max, int n)
{
    if (!qc->sole) return room <= 2 * n ? 0 : OS_QUEUE_RECOUNT;
    if (room <= 2 * n) return OS_QUEUE_RECOUNT_EDGE;
    if (room <= max / 10 + 2 * n) return OS_QUEUE_RECOUNT;
    return room <= max / 2 ? OS_QUEUE_RECOUNT_NEAR : OS_QUEUE_RECOUNT_FAR;
}
#define OS_FULL_LOG_EVERY apr_time_from_sec(60)

typedef struct {
    int queued;
    apr_time_t counted_at;
    int room;                     /* within this transaction */
} os_source_count_t;

static void set_error(os_intake_op_t *op, const char *why)
{
    apr_cpystrn(op->error, why ? why : "", sizeof(op->error));
}

static int count_one(os_conn_t *c, apr_pool_t *p, int st, int nargs, const char **args,
                     int *out)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int rv = os_sel(c, p, st, &res, nargs, args);
    if (rv) return rv;
    if (apr_dbd_get_row(c->driver, p, res, &row, 1) == 0) {
        *out = atoi(apr_dbd_get_entry(c->driver, row, 0));
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0);
    }
    return 0;
}

/* The source's share of the queue, counted anew when stale or close to its limit. */
static os_source_count_t *source_count(os_conn_t *c, apr_pool_t *p, os_queue_count_t *qc,
                                       const os_store_conf_t *conf, const char *source_id,
                                       int n, int *rv)
{
    os_source_count_t *sc = apr_hash_get(qc->sources, source_id, APR_HASH_KEY_STRING);
    *rv = 0;
    if (!sc) {
        sc = apr_pcalloc(qc->pool, sizeof(*sc));
        apr_hash_set(qc->sources, apr_pstrdup(qc->pool, source_id), APR_HASH_KEY_STRING, sc);
    }
    if (qc->sole && qc->queued + n <= conf->source_queue_max) {
        /* the whole queue is within the share: so is the source (counted when it matters) */
        sc->counted_at = 0;
        sc->queued = 0;
        sc->room = conf->source_queue_max - qc->queued;
        return sc;
    }
    if (sc->counted_at == 0 || apr_time_now() - sc->counted_at
        >= recount_every(qc, conf->source_queue_max - sc->queued, conf->source_queue_max, n)) {
        const char *a[1] = { source_id };
        if ((*rv = count_one(c, p, ST_SOURCE_DEPTH, 1, a, &sc->queued))) return NULL;
        sc->counted_at = apr_time_now();
    }
    sc->room = conf->source_queue_max - sc->queued;
    return sc;
}

/* Applies one order inside the open transaction. Returns a driver error code (0 = fine, -1:
 * the order changed under us, another server's doing). */
static int intake_apply(os_conn_t *c, apr_pool_t *p, os_intake_op_t *op, int *room,
                        os_source_count_t *src)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_time_t now = apr_time_now();
    const char *snow = os_i64(p, now);
    const char *intake_state = op->cancelled ? "cancelled" : "accepted";
    const char *a[13];
    int rv, n;

    a[0] = op->source_id; a[1] = op->reference;
    if ((rv = os_sel(c, p, ST_ORDER_FIND, &res, 2, a))) return rv;
    if (apr_dbd_get_row(c->driver, p, res, &row, 1) == 0) {
        /* copies: PostgreSQL's driver frees a result once its rows are read to the end */
        const char *id = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 0));
        int latest = atoi(apr_dbd_get_entry(c->driver, row, 1));
        const char *shipment = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 2));
        const char *delivery = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 3));
        const char *digest = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 4));
        apr_dbd_row_t *vrow = NULL;

        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0);
        apr_cpystrn(op->order_id, id, sizeof(op->order_id));
        apr_cpystrn(op->delivery_state, delivery, sizeof(op->delivery_state));
        /* this very request (a commit tried again, a resend with its Idempotency-Key) */
        a[0] = id; a[1] = op->id;
        if ((rv = os_sel(c, p, ST_INTAKE_FIND, &res, 2, a))) return rv;
        if (apr_dbd_get_row(c->driver, p, res, &vrow, 1) == 0) {
            op->result = OS_INTAKE_REPLAY;
            op->version = atoi(apr_dbd_get_entry(c->driver, vrow, 0));
            while (apr_dbd_get_row(c->driver, p, res, &vrow, -1) == 0);
            return 0;
        }
        if (!strcmp(digest, op->digest)) {
            op->result = OS_INTAKE_REPLAY;
            op->version = latest;
            return 0;
        }
        if (strcmp(shipment, "none")) {
            op->result = OS_INTAKE_SHIPPED;
            op->version = latest;
            return 0;
        }
        if (*room <= 0 || src->room <= 0) {
            op->result = OS_INTAKE_QUEUE_FULL;
            return 0;
        }
        op->version = latest + 1;
        {
            const char *va[6] = { id, apr_itoa(p, op->version), op->digest, op->body, snow,
                                  op->id };
            if ((rv = os_q(c, p, ST_VERSION_INSERT, NULL, 6, va))) return rv;
        }
        {
            const char *ua[9] = { apr_itoa(p, op->version), op->digest, intake_state, snow,
                                  op->cancelled ? "cancelled by the source" : "new version",
                                  snow, snow, id, apr_itoa(p, latest) };
            if ((rv = os_q(c, p, ST_ORDER_NEW_VERSION, &n, 9, ua))) return rv;
            if (n != 1) return -1;   /* raced by another server: the caller retries */
        }
        {
            const char *ja[4] = { apr_itoa(p, op->version), snow, snow, id };
            if ((rv = os_q(c, p, ST_JOB_REQUEUE, &n, 4, ja))) return rv;
        }
        if (n == 0) {
            const char *ja[5] = { id, apr_itoa(p, op->version), snow, snow, snow };
            if ((rv = os_q(c, p, ST_JOB_INSERT, NULL, 5, ja))) return rv;
        }
        if ((rv = os_event_insert(c, p, id, now, "version",
                               apr_psprintf(p, "version %d accepted (%s)", op->version,
                                            op->cancelled ? "cancel" : "changed content"))))
            return rv;
        op->result = OS_INTAKE_NEW_VERSION;
        apr_cpystrn(op->delivery_state, "queued", sizeof(op->delivery_state));
        (*room)--;
        src->room--;
        return 0;
    }

    if (*room <= 0 || src->room <= 0) {
        op->result = OS_INTAKE_QUEUE_FULL;
        return 0;
    }
    os_new_id(op->order_id);
    op->version = 1;
    a[0] = op->order_id; a[1] = op->source_id; a[2] = op->reference; a[3] = op->sent_reference;
    a[4] = op->origin; a[5] = op->digest; a[6] = intake_state; a[7] = snow;
    a[8] = op->cancelled ? "accepted as cancelled" : "accepted";
    a[9] = snow; a[10] = snow; a[11] = snow; a[12] = snow;
    if ((rv = os_q(c, p, ST_ORDER_INSERT, NULL, 13, a))) return rv;
    {
        const char *va[6] = { op->order_id, "1", op->digest, op->body, snow, op->id };
        if ((rv = os_q(c, p, ST_VERSION_INSERT, NULL, 6, va))) return rv;
    }
    {
        const char *ja[5] = { op->order_id, "1", snow, snow, snow };
        if ((rv = os_q(c, p, ST_JOB_INSERT, NULL, 5, ja))) return rv;
    }
    if ((rv = os_event_insert(c, p, op->order_id, now, "accepted",
                           apr_psprintf(p, "version 1 accepted from %s", op->origin)))) return rv;
    op->result = OS_INTAKE_CREATED;
    apr_cpystrn(op->delivery_state, "queued", sizeof(op->delivery_state));
    (*room)--;
    src->room--;
    return 0;
}

/* One transaction for ops[0..n). Returns the outcome; *why says what failed. */
static os_txn_outcome_e commit_list(const os_store_conf_t *conf, os_conn_t *c, apr_pool_t *p,
                                    os_queue_count_t *qc, os_intake_op_t **ops, int n,
                                    const char **why)
{
    os_source_count_t **src = apr_pcalloc(p, sizeof(*src) * n);
    os_txn_outcome_e out;
    int rv, i, room, room_before;

    if ((rv = os_txn_begin(c, p, conf))) {
        *why = apr_pstrdup(p, os_conn_error(c, rv));
        return OS_TXN_FAILED;
    }
    room = conf->queue_max - qc->queued;
    if (apr_time_now() - qc->counted_at >= recount_every(qc, room, conf->queue_max, n)) {
        if ((rv = count_one(c, p, ST_QUEUE_DEPTH, 0, NULL, &qc->queued))) goto rollback;
        qc->counted_at = apr_time_now();
        room = conf->queue_max - qc->queued;
    }
    room_before = room;
    for (i = 0; i < n; i++) {
        src[i] = source_count(c, p, qc, conf, ops[i]->source_id, n, &rv);
        if (!src[i]) goto rollback;
    }
    for (i = 0; i < n; i++) {
        if ((rv = intake_apply(c, p, ops[i], &room, src[i]))) goto rollback;
    }
    out = os_txn_commit(c, p, why);
    if (out != OS_TXN_COMMITTED) return out;
    qc->queued += room_before - room;
    for (i = 0; i < n; i++) {
        if (ops[i]->result == OS_INTAKE_CREATED || ops[i]->result == OS_INTAKE_NEW_VERSION)
            src[i]->queued++;
    }
    return OS_TXN_COMMITTED;

rollback:
    *why = apr_pstrdup(p, rv == -1 ? "the order was changed concurrently" : os_conn_error(c, rv));
    c->failed = 1;
    os_txn_rollback(c);
    return OS_TXN_FAILED;
}

/* Commits a batch in one transaction. If that fails, the orders are tried again one by one
 * (after the connection is checked, so a PostgreSQL session that ended is reconnected), so
 * one order that cannot be stored (a race lost to another server, a constraint) is refused
 * alone and the others still commit; a store that cannot write at all refuses all. */
void os_intake_commit(server_rec *s, const os_store_conf_t *conf, os_conn_t *c, apr_pool_t *p,
                      os_queue_count_t *qc, os_intake_op_t **ops, int n)
{
    const char *why = NULL;
    os_txn_outcome_e out;
    int i, attempt, full = 0;

    out = commit_list(conf, c, p, qc, ops, n, &why);
    if (out == OS_TXN_FAILED && (n > 1 || c->is_pg)) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ordersync: a batch of %d orders could not "
                     "be committed (%s); committing them one by one", n, why);
        for (i = 0; i < n; i++) {
            /* PostgreSQL: another server may have changed the order in between; try again */
            for (attempt = 0; attempt < (c->is_pg ? 3 : 1); attempt++) {
                if (os_conn_ready(s, conf, c, p, 1, &why) != APR_SUCCESS) {
                    out = OS_TXN_FAILED;
                    break;
                }
                if ((out = commit_list(conf, c, p, qc, ops + i, 1, &why)) != OS_TXN_FAILED)
                    break;
            }
            if (out != OS_TXN_COMMITTED) {
                ops[i]->result = out == OS_TXN_UNKNOWN ? OS_INTAKE_UNKNOWN : OS_INTAKE_UNAVAILABLE;
                set_error(ops[i], why);
            }
        }
    }
    else if (out != OS_TXN_COMMITTED) {
        for (i = 0; i < n; i++) {
            ops[i]->result = out == OS_TXN_UNKNOWN ? OS_INTAKE_UNKNOWN : OS_INTAKE_UNAVAILABLE;
            set_error(ops[i], why);
        }
    }
    for (i = 0; i < n; i++) {
        if (ops[i]->result == OS_INTAKE_QUEUE_FULL) full++;
    }
    /* a full queue refuses many orders: one line when it starts refusing, then at most one
     * a minute with the count refused meanwhile */
    if (full) {
        apr_time_t now = apr_time_now();
        qc->refused += full;
        if (!qc->logged_at || now - qc->logged_at >= OS_FULL_LOG_EVERY) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ordersync: the delivery queue is "
                         "full (%d jobs waiting; %s %d, %s %d per source): %ld orders refused "
                         "with 503 %s", qc->queued, "OrderSyncQueueMax", conf->queue_max,
                         "OrderSyncSourceQueueMax", conf->source_queue_max, qc->refused,
                         qc->logged_at ? "in the last minute" : "so far");
            qc->logged_at = now;
            qc->refused = 0;
        }
    }
}
