/* mod_ordersync_store.c: the store over mod_dbd. It owns the schema (versioned, migrated on
 * first use inside one write transaction), per-connection setup and lazily prepared
 * statements (mod_dbd prepares before any schema exists), and the group-commit writer: one
 * thread per process and hub, of which one (the committer, see "the board") takes the orders
 * of every process waiting at that moment and commits them in one transaction, so concurrent
 * requests share a commit instead of racing for SQLite's write lock. A request is answered
 * only after the transaction holding its order committed. */
#include "mod_ordersync_store.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"
#include "apr_thread_cond.h"
#include "apr_atomic.h"
#include "apr_general.h"
#include "apr_optional.h"
#include "apr_global_mutex.h"
#include "util_mutex.h"
#include "apr_shm.h"
#include "mod_watchdog.h"

#ifdef __linux__
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#define OS_HAVE_BOARD 1
#endif

#define OS_SCHEMA_VERSION 1

const char *const OS_STATE_STEPS[4] = { "intake", "delivery", "writeback", "shipment" };

/* Writers of all processes take turns through this lock rather than through SQLite's busy
 * handler, which sleeps and retries: while one process commits, the others' queues fill,
 * so under load each turn commits a larger batch. */
#define OS_MUTEX_TYPE "ordersync-store"
static apr_global_mutex_t *store_mutex;

static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

/* Set in post_config when a watchdog checkpoints the SQLite stores (see "checkpoints"). */
static int checkpoints_in_background;
#define OS_CKPT_SAFETY_PAGES 16384    /* SQLite's own checkpoint only past 32 MB of WAL */

/* ---- statements ------------------------------------------------------------------- */

enum {
    ST_ORDER_FIND, ST_ORDER_INSERT, ST_ORDER_NEW_VERSION, ST_VERSION_INSERT, ST_JOB_REQUEUE,
    ST_JOB_INSERT, ST_EVENT_INSERT, ST_QUEUE_DEPTH, ST_ORDER_GET, ST_VERSIONS_GET,
    ST_EVENTS_GET, ST_LATEST_BODY, ST_COUNT
};

/* One text for both drivers except where noted; apr_dbd turns %s/%d/%lld into each driver's
 * parameters (PostgreSQL needs the integer types said). */
static const char *const SQL[ST_COUNT] = {
    /* ST_ORDER_FIND */
    "SELECT id, latest_version, shipment_state, delivery_state, latest_digest "
    "FROM os_orders WHERE source_id = %s AND reference = %s",
    /* ST_ORDER_INSERT */
    "INSERT INTO os_orders (id, source_id, reference, sent_reference, origin, latest_version, "
    "latest_digest, delivered_version, intake_state, intake_at, intake_cause, delivery_state, "
    "delivery_at, delivery_cause, shipment_state, shipment_at, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, 1, %s, 0, %s, %lld, %s, 'queued', %lld, 'accepted', 'none', "
    "%lld, %lld, %lld)",
    /* ST_ORDER_NEW_VERSION */
    "UPDATE os_orders SET latest_version = %d, latest_digest = %s, intake_state = %s, intake_at = %lld, "
    "intake_cause = %s, delivery_state = 'queued', delivery_at = %lld, "
    "delivery_cause = 'new version', updated_at = %lld WHERE id = %s AND latest_version = %d",
    /* ST_VERSION_INSERT */
    "INSERT INTO os_order_versions (order_id, version, digest, body, received_at) "
    "VALUES (%s, %d, %s, %s, %lld)",
    /* ST_JOB_REQUEUE: a newer version replaces what the delivery job carries; the dispatcher
     * completes a job only if its version is unchanged, so the newest version lands last */
    "UPDATE os_jobs SET version = %d, state = 'queued', due_at = %lld, attempts = 0, "
    "last_error = NULL, updated_at = %lld WHERE order_id = %s AND kind = 'delivery'",
    /* ST_JOB_INSERT */
    "INSERT INTO os_jobs (order_id, kind, version, state, due_at, attempts, created_at, "
    "updated_at) VALUES (%s, 'delivery', %d, 'queued', %lld, 0, %lld, %lld)",
    /* ST_EVENT_INSERT */
    "INSERT INTO os_events (id, order_id, at, kind, detail) VALUES (%s, %s, %lld, %s, %s)",
    /* ST_QUEUE_DEPTH */
    "SELECT COUNT(*) FROM os_jobs WHERE state IN ('queued', 'retrying')",
    /* ST_ORDER_GET */
    "SELECT id, source_id, reference, sent_reference, origin, latest_version, delivered_version, "
    "intake_state, intake_at, intake_cause, delivery_state, delivery_at, delivery_cause, "
    "writeback_state, writeback_at, writeback_cause, shipment_state, shipment_at, shipment_cause, "
    "created_at, updated_at FROM os_orders WHERE source_id = %s AND reference = %s",
    /* ST_VERSIONS_GET */
    "SELECT version, received_at, digest FROM os_order_versions WHERE order_id = %s "
    "ORDER BY version",
    /* ST_EVENTS_GET */
    "SELECT at, kind, detail FROM os_events WHERE order_id = %s ORDER BY at, id",
    /* ST_LATEST_BODY */
    "SELECT body FROM os_order_versions WHERE order_id = %s AND version = %d",
};

/* PostgreSQL: lock the order row so two servers cannot both append the same version. */
static const char *const SQL_ORDER_FIND_PG =
    "SELECT id, latest_version, shipment_state, delivery_state, latest_digest "
    "FROM os_orders WHERE source_id = %s AND reference = %s FOR UPDATE";

static const char *const SCHEMA_V1[] = {
    "CREATE TABLE os_orders ("
    " id VARCHAR(40) PRIMARY KEY, source_id VARCHAR(64) NOT NULL, reference VARCHAR(255) NOT NULL,"
    " sent_reference VARCHAR(300) NOT NULL, origin VARCHAR(16) NOT NULL,"
    " latest_version INTEGER NOT NULL, latest_digest VARCHAR(64) NOT NULL,"
    " delivered_version INTEGER NOT NULL DEFAULT 0,"
    " intake_state VARCHAR(24) NOT NULL, intake_at BIGINT NOT NULL, intake_cause TEXT,"
    " delivery_state VARCHAR(24) NOT NULL, delivery_at BIGINT NOT NULL, delivery_cause TEXT,"
    " writeback_state VARCHAR(24), writeback_at BIGINT, writeback_cause TEXT,"
    " shipment_state VARCHAR(24) NOT NULL, shipment_at BIGINT NOT NULL, shipment_cause TEXT,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " UNIQUE (source_id, reference))",
    "CREATE INDEX os_orders_sent_ref ON os_orders (sent_reference)",
    "CREATE TABLE os_order_versions ("
    " order_id VARCHAR(40) NOT NULL, version INTEGER NOT NULL, digest VARCHAR(64) NOT NULL,"
    " body TEXT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (order_id, version))",
    /* a job is keyed by its order and kind ("delivery"; kinds that can repeat per order
     * carry their own key in the kind, e.g. one per shipment) */
    "CREATE TABLE os_jobs ("
    " order_id VARCHAR(40) NOT NULL, kind VARCHAR(64) NOT NULL,"
    " version INTEGER NOT NULL, state VARCHAR(24) NOT NULL, due_at BIGINT NOT NULL,"
    " lease_owner VARCHAR(128), lease_until BIGINT, attempts INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (order_id, kind))",
    "CREATE INDEX os_jobs_due ON os_jobs (state, due_at)",
    "CREATE TABLE os_events ("
    " id VARCHAR(40) NOT NULL, order_id VARCHAR(40), at BIGINT NOT NULL,"
    " kind VARCHAR(32) NOT NULL, detail TEXT)",
    "CREATE INDEX os_events_order ON os_events (order_id, at)",
    NULL
};

/* A database connection with our statements; hung off mod_dbd's connection so it lives as
 * long as the connection does. */
typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_pool_t *pool;
    int is_pg;
    int ready;                       /* setup done and schema current */
    apr_dbd_prepared_t *st[ST_COUNT];
} os_conn_t;

#define OS_CONN_KEY "ordersync:conn"

static const char *conn_error(os_conn_t *c, int rv)
{
    const char *e = apr_dbd_error(c->driver, c->handle, rv);
    return e ? e : "unknown database error";
}

/* Runs a statement that may return a row (PRAGMA) and ignores the row. */
static int exec_any(os_conn_t *c, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv = apr_dbd_select(c->driver, p, c->handle, &res, sql, 0);
    if (rv == 0) {
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0);
    }
    return rv;
}

/* Runs a statement that returns one integer (a PRAGMA's value, a setting); -1 if no row. */
static int select_int(os_conn_t *c, apr_pool_t *p, const char *sql, apr_int64_t *out)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv = apr_dbd_select(c->driver, p, c->handle, &res, sql, 1);
    if (rv == 0 && apr_dbd_get_row(c->driver, p, res, &row, 1) == 0) {
        const char *v = apr_dbd_get_entry(c->driver, row, 0);
        *out = v ? apr_atoi64(v) : 0;
        return 0;
    }
    return rv ? rv : -1;
}

static int exec_sql(os_conn_t *c, const char *sql)
{
    int nrows;
    return apr_dbd_query(c->driver, c->handle, &nrows, sql);
}

static int schema_version(os_conn_t *c, apr_pool_t *p, int *version)
{
    apr_int64_t v = 0;
    int rv = select_int(c, p, "SELECT value FROM os_meta WHERE name = 'schema_version'", &v);
    *version = (int)v;
    return rv == -1 ? 0 : rv;       /* no row yet: an empty store, version 0 */
}

/* Brings the schema to OS_SCHEMA_VERSION inside one write transaction, so servers starting
 * together cannot both create it and a failure leaves nothing half-made. */
static apr_status_t migrate(server_rec *s, os_conn_t *c, apr_pool_t *p)
{
    apr_dbd_transaction_t *txn = NULL;
    int rv, version = 0, i;

    if (!c->is_pg) {
        /* Both are properties of the file, set before its first table: 2 KB pages, because
         * each order touches about a dozen b-trees and every touched page is written to the
         * WAL whole (measured: a third more orders per second than with 4 KB pages), and WAL,
         * so readers never wait for the writer. */
        exec_any(c, p, "PRAGMA page_size=2048");
        exec_any(c, p, "PRAGMA journal_mode=WAL");
    }
    rv = apr_dbd_transaction_start(c->driver, p, c->handle, &txn);
    if (rv) goto fail;
    if (c->is_pg) {
        /* servers starting together take turns: the first creates the schema, the others
         * then find it (a transaction-scoped advisory lock any database user may take) */
        if ((rv = exec_any(c, p, "SELECT pg_advisory_xact_lock(7320410)"))) goto fail_txn;
    }
    if ((rv = exec_sql(c, "CREATE TABLE IF NOT EXISTS os_meta (name VARCHAR(64) PRIMARY KEY, "
                          "value VARCHAR(255) NOT NULL)"))) goto fail_txn;
    if ((rv = schema_version(c, p, &version))) goto fail_txn;
    if (version > OS_SCHEMA_VERSION) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: the store's schema is version %d, "
                     "newer than this module's %d: refusing to write to it", version,
                     OS_SCHEMA_VERSION);
        apr_dbd_transaction_mode_set(c->driver, txn, APR_DBD_TRANSACTION_ROLLBACK);
        apr_dbd_transaction_end(c->driver, p, txn);
        return APR_EGENERAL;
    }
    if (version < 1) {
        for (i = 0; SCHEMA_V1[i]; i++) {
            if ((rv = exec_sql(c, SCHEMA_V1[i]))) goto fail_txn;
        }
        if ((rv = exec_sql(c, "INSERT INTO os_meta (name, value) VALUES ('schema_version', '1')")))
            goto fail_txn;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ordersync: created the store's schema "
                     "(version %d)", OS_SCHEMA_VERSION);
    }
    rv = apr_dbd_transaction_end(c->driver, p, txn);
    if (rv) goto fail;
    return APR_SUCCESS;

fail_txn:
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: migrating the store failed: %s",
                 conn_error(c, rv));
    apr_dbd_transaction_mode_set(c->driver, txn, APR_DBD_TRANSACTION_ROLLBACK);
    apr_dbd_transaction_end(c->driver, p, txn);
    return APR_EGENERAL;
fail:
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: migrating the store failed: %s",
                 conn_error(c, rv));
    return APR_EGENERAL;
}

/* Per-connection setup (SQLite pragmas), migration, and lazy statement preparation. */
static apr_status_t conn_ready(server_rec *s, os_conn_t *c, apr_pool_t *ptemp)
{
    os_srv_conf_t *sc = os_srv_conf(s);
    int i, rv;

    if (c->ready) return APR_SUCCESS;
    if (c->is_pg) {
        /* a lock held elsewhere (another server's long transaction, an operator's LOCK
         * TABLE) fails the commit after the store timeout instead of stalling the intake */
        exec_sql(c, apr_psprintf(ptemp, "SET lock_timeout = %d",
                                 OS_CONF_INT(sc->store_timeout_ms, OS_DEFAULT_STORE_TIMEOUT)));
    }
    else {
        /* apr-util's driver answers SQLITE_BUSY by sleeping 100 ms and trying again, 15
         * times, and every try waits SQLite's busy timeout anew: share the store timeout
         * among the 16 tries so the whole wait stays near it (never below the driver's
         * own 1.5 s of sleeps) */
        int ms = OS_CONF_INT(sc->store_timeout_ms, OS_DEFAULT_STORE_TIMEOUT);
        exec_any(c, ptemp, apr_psprintf(ptemp, "PRAGMA busy_timeout=%d",
                                        ms > 1500 + 16 ? (ms - 1500) / 16 : 1));
        /* statement journals in memory, not a temp file per transaction */
        exec_any(c, ptemp, "PRAGMA temp_store=MEMORY");
        exec_any(c, ptemp, OS_CONF_INT(sc->durability, 0) ? "PRAGMA synchronous=FULL"
                                                         : "PRAGMA synchronous=NORMAL");
        if (checkpoints_in_background) {
            exec_any(c, ptemp, apr_psprintf(ptemp, "PRAGMA wal_autocheckpoint=%d",
                                            OS_CKPT_SAFETY_PAGES));
        }
    }
    if (migrate(s, c, ptemp) != APR_SUCCESS) return APR_EGENERAL;
    if (!c->is_pg && sc->store_max_size != OS_UNSET) {
        /* a cap on the file rather than a full disk: SQLite answers "database or disk is
         * full" and the intake 503, as it would when the disk is really full */
        apr_int64_t page = 0;
        if (select_int(c, ptemp, "PRAGMA page_size", &page) != 0 || page <= 0) page = 4096;
        exec_any(c, ptemp, apr_psprintf(ptemp, "PRAGMA max_page_count=%" APR_INT64_T_FMT,
                                        sc->store_max_size / page));
    }
    for (i = 0; i < ST_COUNT; i++) {
        const char *sql = (c->is_pg && i == ST_ORDER_FIND) ? SQL_ORDER_FIND_PG : SQL[i];
        c->st[i] = NULL;
        rv = apr_dbd_prepare(c->driver, c->pool, c->handle, sql, NULL, &c->st[i]);
        if (rv) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: preparing statement %d "
                         "failed: %s", i, conn_error(c, rv));
            return APR_EGENERAL;
        }
    }
    c->ready = 1;
    return APR_SUCCESS;
}

static os_conn_t *conn_of(ap_dbd_t *dbd)
{
    os_conn_t *c = apr_hash_get(dbd->prepared, OS_CONN_KEY, APR_HASH_KEY_STRING);
    if (!c) {
        c = apr_pcalloc(dbd->pool, sizeof(*c));
        c->driver = dbd->driver;
        c->handle = dbd->handle;
        c->pool = dbd->pool;
        c->is_pg = !strcmp(apr_dbd_name(dbd->driver), "pgsql");
        apr_hash_set(dbd->prepared, OS_CONN_KEY, APR_HASH_KEY_STRING, c);
    }
    return c;
}

/* ---- statement helpers -------------------------------------------------------------- */

static int q(os_conn_t *c, apr_pool_t *p, int st, int *nrows, int nargs, const char **args)
{
    int n = 0, rv = apr_dbd_pquery(c->driver, p, c->handle, &n, c->st[st], nargs, args);
    if (nrows) *nrows = n;
    return rv;
}

static int sel(os_conn_t *c, apr_pool_t *p, int st, apr_dbd_results_t **res, int nargs,
               const char **args)
{
    *res = NULL;
    return apr_dbd_pselect(c->driver, p, c->handle, res, c->st[st], 1, nargs, args);
}

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

/* Ids are unique across processes and servers and ordered by time, so a batch's inserts
 * land together at the end of each index instead of on random pages (as random UUIDs
 * would), which keeps the pages a commit writes few. */
#define OS_ID_LEN 32
static void new_id(char *buf)
{
    static apr_uint32_t counter;
    unsigned char rnd[5];
    apr_uint32_t n = apr_atomic_inc32(&counter);
    apr_generate_random_bytes(rnd, sizeof(rnd));
    apr_snprintf(buf, OS_ID_LEN + 1, "%014" APR_UINT64_T_HEX_FMT "%04x%02x%02x%02x%02x%02x",
                 (apr_uint64_t)apr_time_now(), (unsigned)(n & 0xffff),
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4]);
}

/* ---- the intake transaction ---------------------------------------------------------- */

static int event_insert(os_conn_t *c, apr_pool_t *p, const char *order_id, apr_time_t now,
                        const char *kind, const char *detail)
{
    char id[OS_ID_LEN + 1];
    const char *a[5];
    new_id(id);
    a[0] = id; a[1] = order_id; a[2] = i64(p, now); a[3] = kind; a[4] = detail;
    return q(c, p, ST_EVENT_INSERT, NULL, 5, a);
}

/* Applies one order inside the open transaction. Returns a driver error code (0 = fine). */
static int intake_apply(os_conn_t *c, apr_pool_t *p, os_intake_op_t *op, int *queue_room)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_time_t now = apr_time_now();
    const char *snow = i64(p, now);
    const char *intake_state = op->cancelled ? "cancelled" : "accepted";
    const char *a[13];
    int rv, n;

    a[0] = op->source_id; a[1] = op->reference;
    if ((rv = sel(c, p, ST_ORDER_FIND, &res, 2, a))) return rv;
    if (apr_dbd_get_row(c->driver, p, res, &row, 1) == 0) {
        /* copies: PostgreSQL's driver frees a result once its rows are read to the end */
        const char *id = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 0));
        int latest = atoi(apr_dbd_get_entry(c->driver, row, 1));
        const char *shipment = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 2));
        const char *delivery = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 3));
        const char *digest = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 4));

        apr_cpystrn(op->order_id, id, sizeof(op->order_id));
        if (!strcmp(digest, op->digest)) {
            op->result = OS_INTAKE_REPLAY;
            op->version = latest;
            apr_cpystrn(op->delivery_state, delivery, sizeof(op->delivery_state));
            return 0;
        }
        if (strcmp(shipment, "none")) {
            op->result = OS_INTAKE_SHIPPED;
            op->version = latest;
            apr_cpystrn(op->delivery_state, delivery, sizeof(op->delivery_state));
            return 0;
        }
        if (*queue_room <= 0) {
            op->result = OS_INTAKE_QUEUE_FULL;
            return 0;
        }
        op->version = latest + 1;
        {
            const char *va[5] = { id, apr_itoa(p, op->version), op->digest, op->body, snow };
            if ((rv = q(c, p, ST_VERSION_INSERT, NULL, 5, va))) return rv;
        }
        {
            const char *ua[9] = { apr_itoa(p, op->version), op->digest, intake_state, snow,
                                  op->cancelled ? "cancelled by the source" : "new version",
                                  snow, snow, id, apr_itoa(p, latest) };
            if ((rv = q(c, p, ST_ORDER_NEW_VERSION, &n, 9, ua))) return rv;
            if (n != 1) return -1;   /* raced by another server: the caller retries */
        }
        {
            const char *ja[4] = { apr_itoa(p, op->version), snow, snow, id };
            if ((rv = q(c, p, ST_JOB_REQUEUE, &n, 4, ja))) return rv;
        }
        if (n == 0) {
            const char *ja[5] = { id, apr_itoa(p, op->version), snow, snow, snow };
            if ((rv = q(c, p, ST_JOB_INSERT, NULL, 5, ja))) return rv;
        }
        if ((rv = event_insert(c, p, id, now, "version",
                               apr_psprintf(p, "version %d accepted (%s)", op->version,
                                            op->cancelled ? "cancel" : "changed content"))))
            return rv;
        op->result = OS_INTAKE_NEW_VERSION;
        apr_cpystrn(op->delivery_state, "queued", sizeof(op->delivery_state));
        (*queue_room)--;
        return 0;
    }

    if (*queue_room <= 0) {
        op->result = OS_INTAKE_QUEUE_FULL;
        return 0;
    }
    new_id(op->order_id);
    op->version = 1;
    a[0] = op->order_id; a[1] = op->source_id; a[2] = op->reference; a[3] = op->sent_reference;
    a[4] = op->origin; a[5] = op->digest; a[6] = intake_state; a[7] = snow;
    a[8] = op->cancelled ? "accepted as cancelled" : "accepted";
    a[9] = snow; a[10] = snow; a[11] = snow; a[12] = snow;
    if ((rv = q(c, p, ST_ORDER_INSERT, NULL, 13, a))) return rv;
    {
        const char *va[5] = { op->order_id, "1", op->digest, op->body, snow };
        if ((rv = q(c, p, ST_VERSION_INSERT, NULL, 5, va))) return rv;
    }
    {
        const char *ja[5] = { op->order_id, "1", snow, snow, snow };
        if ((rv = q(c, p, ST_JOB_INSERT, NULL, 5, ja))) return rv;
    }
    if ((rv = event_insert(c, p, op->order_id, now, "accepted",
                           apr_psprintf(p, "version 1 accepted from %s", op->origin)))) return rv;
    op->result = OS_INTAKE_CREATED;
    apr_cpystrn(op->delivery_state, "queued", sizeof(op->delivery_state));
    (*queue_room)--;
    return 0;
}

/* ---- the writer ------------------------------------------------------------------------ */

/* How long the writer waits for orders still on their way before it commits (see
 * writer_main). */
#define OS_COMMIT_LINGER apr_time_from_msec(1)

typedef struct os_store_t {
    server_rec *s;
    apr_pool_t *pool;
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *work;      /* the writer waits here for orders */
    os_intake_op_t *head, *tail;
    int waiting;                  /* orders in the list */
    volatile apr_uint32_t coming; /* requests of this process reading and checking an order */
    int stopping;
    apr_thread_t *thread;
    ap_dbd_t *dbd;                /* the writer's own connection */
    int queued;                   /* jobs waiting, as last counted plus what we added since */
    apr_time_t counted_at;
    int hub;                      /* this hub's number, the same in every process */
    volatile apr_uint32_t committing; /* this writer commits for every process (see board) */
    apr_time_t lease_at;          /* when to try for that role again */
    apr_time_t sweep_at;          /* the committer: when to look for abandoned slots */
} os_store_t;

/* Counting the queue costs a scan of the waiting jobs, so the writer counts at most once a
 * second and adds what it commits in between; close to the limit it counts every batch, so
 * the limit holds across processes. */
#define OS_QUEUE_RECOUNT apr_time_from_sec(1)

/* Applies a list of orders in one transaction, all or nothing. Returns 0 when it committed;
 * otherwise nothing of it was written and *why says what failed. */
static int commit_list(os_store_t *st, os_conn_t *c, apr_pool_t *p, os_intake_op_t *list,
                       const char **why)
{
    os_srv_conf_t *sc = os_srv_conf(st->s);
    apr_dbd_transaction_t *txn = NULL;
    os_intake_op_t *op;
    int rv, n = 0, room, room_before;

    for (op = list; op; op = op->next) n++;
    if ((rv = apr_dbd_transaction_start(c->driver, p, c->handle, &txn))) {
        *why = apr_pstrdup(p, conn_error(c, rv));
        return rv;
    }
    room = OS_CONF_INT(sc->queue_max, OS_DEFAULT_QUEUE_MAX) - st->queued;
    if (apr_time_now() - st->counted_at >= OS_QUEUE_RECOUNT || room <= 2 * n) {
        apr_dbd_results_t *res;
        apr_dbd_row_t *row = NULL;
        if ((rv = sel(c, p, ST_QUEUE_DEPTH, &res, 0, NULL))) goto rollback;
        if (apr_dbd_get_row(c->driver, p, res, &row, 1) == 0) {
            st->queued = atoi(apr_dbd_get_entry(c->driver, row, 0));
        }
        st->counted_at = apr_time_now();
        room = OS_CONF_INT(sc->queue_max, OS_DEFAULT_QUEUE_MAX) - st->queued;
    }
    room_before = room;
    for (op = list; op; op = op->next) {
        op->error = NULL;
        if ((rv = intake_apply(c, p, op, &room))) goto rollback;
    }
    if ((rv = apr_dbd_transaction_end(c->driver, p, txn))) {
        *why = apr_pstrdup(p, conn_error(c, rv));
        return rv;
    }
    st->queued += room_before - room;
    return 0;

rollback:
    *why = apr_pstrdup(p, rv == -1 ? "the order was changed concurrently" : conn_error(c, rv));
    apr_dbd_transaction_mode_set(c->driver, txn, APR_DBD_TRANSACTION_ROLLBACK);
    apr_dbd_transaction_end(c->driver, p, txn);
    return rv;
}

/* Commits a batch in one transaction. If that fails, the orders are tried again one by one,
 * so one order that cannot be stored (a race lost to another server, a constraint) is
 * refused alone and the others still commit; a store that cannot write at all refuses all. */
static void writer_commit(os_store_t *st, os_intake_op_t *batch, apr_pool_t *p,
                          const char *lock_failed)
{
    os_conn_t *c = NULL;
    os_intake_op_t *op;
    const char *fail = NULL, *why = NULL;

    if (lock_failed) {
        fail = lock_failed;
        goto out;
    }
    if (!st->dbd) {
        st->dbd = dbd_open(st->pool, st->s);
        if (!st->dbd) { fail = "cannot open the store (see mod_dbd's message above)"; goto out; }
    }
    c = conn_of(st->dbd);
    if (conn_ready(st->s, c, p) != APR_SUCCESS) {
        fail = "the store is not usable (see the message above)";
        dbd_close(st->s, st->dbd);
        st->dbd = NULL;
        goto out;
    }
    if (commit_list(st, c, p, batch, &why) == 0) return;
    if (!batch->next && !c->is_pg) {
        fail = why;
        goto out;
    }
    for (op = batch; op; op = op->next) {
        os_intake_op_t *next = op->next;
        int attempt, rv = 0;
        op->next = NULL;
        /* PostgreSQL: another server may have changed the order in between; try again */
        for (attempt = 0; attempt < (c->is_pg ? 3 : 1); attempt++) {
            if ((rv = commit_list(st, c, p, op, &why)) == 0) break;
        }
        op->next = next;
        if (rv) {
            op->result = OS_INTAKE_UNAVAILABLE;
            op->error = why;
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, st->s, "ordersync: storing order %s/%s "
                         "failed: %s", op->source_id, op->reference, why);
        }
    }
    return;

out:
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, st->s, "ordersync: the store could not commit "
                 "%s: %s", batch->next ? "a batch of orders" : "an order", fail);
    for (op = batch; op; op = op->next) {
        op->result = OS_INTAKE_UNAVAILABLE;
        op->error = fail;
    }
    if (st->dbd && c && c->is_pg) {
        /* a broken PostgreSQL connection is not reused */
        dbd_close(st->s, st->dbd);
        st->dbd = NULL;
    }
}

/* Takes up to max orders off this process's list (the writer's mutex held). */
static os_intake_op_t *take_batch(os_store_t *st, int max, int *n)
{
    os_intake_op_t *batch = st->head, *last = st->head;
    int k;
    *n = 0;
    if (!batch) return NULL;
    for (k = 1; last->next && k < max; k++) last = last->next;
    st->head = last->next;
    if (!st->head) st->tail = NULL;
    st->waiting -= k;
    last->next = NULL;
    *n = k;
    return batch;
}

/* Takes the store's write lock for one commit: NULL, or why it could not. */
static const char *write_lock(os_store_t *st, int *locked)
{
    os_srv_conf_t *sc = os_srv_conf(st->s);
    apr_status_t rv;
    *locked = 0;
    if (!store_mutex) return NULL;
    rv = apr_global_mutex_timedlock(store_mutex, apr_time_from_msec(
        OS_CONF_INT(sc->store_timeout_ms, OS_DEFAULT_STORE_TIMEOUT)));
    if (rv == APR_SUCCESS) {
        *locked = 1;
        return NULL;
    }
    return rv == APR_TIMEUP ? "timed out waiting for the store's write lock"
                            : "cannot take the store's write lock";
}

/* ---- one committer for every process (the board) ------------------------------------
 *
 * SQLite keeps a page cache per connection and throws all of it away whenever another
 * connection has written, so writers in several processes taking turns each re-read the
 * pages of every b-tree they touch, and each commits smaller batches: an order cost ~95 us
 * of writer CPU with three processes against ~55 us with one. So one writer per hub (the
 * "committer", whichever process holds the hub's lease) commits for every process: a
 * request of another process copies its order into a slot in shared memory and waits on
 * that slot; the committer takes every filled slot and its own process's orders, commits
 * them in one transaction, and writes each answer back into its slot.
 *
 * A slot goes FREE -> FILLING -> FILLED (the request) -> TAKEN (the committer) -> DONE
 * (the committer, with the answer) -> FREE (the request, having read it). A request whose
 * slot is still FILLED at its store timeout takes it back (never written: 503). A TAKEN slot
 * is the committer's until it answers; if the committer's process dies first, the next
 * committer takes the lease (a robust mutex: the kernel releases it) and commits the slot
 * again, which answers as a replay if the order did reach the store. Without a committer,
 * for an order too big for a slot or with every slot in use, a request goes to its own
 * process's writer, which commits it under the store's write lock. Linux only
 * (process-shared futexes); elsewhere every process commits its own orders. */
#ifdef OS_HAVE_BOARD
#define OS_SLOTS 128
#define OS_SLOT_BYTES (32 * 1024)
#define OS_LEASE_RETRY apr_time_from_msec(100)

enum { SLOT_FREE, SLOT_FILLING, SLOT_FILLED, SLOT_TAKEN, SLOT_DONE };
enum { SS_SOURCE, SS_REFERENCE, SS_SENT, SS_ORIGIN, SS_BODY, SS_DIGEST, SS_COUNT };

typedef struct {
    volatile apr_uint32_t state;      /* SLOT_*; the request waits on it (a futex) */
    volatile apr_uint32_t taker;      /* pid of the committer that took it */
    volatile apr_uint32_t owner;      /* pid of the process whose request filled it */
    apr_uint32_t hub;
    apr_uint32_t off[SS_COUNT];       /* the order's strings, in data */
    int cancelled;
    int result, version;              /* the answer */
    char order_id[40], delivery_state[24], error[160];
    char data[OS_SLOT_BYTES];
} os_slot_t;

typedef struct {
    pthread_mutex_t lease;            /* held by the committer's writer (robust, shared) */
    volatile apr_uint32_t committer;  /* its pid; 0 when there is none */
    volatile apr_uint32_t work;       /* bumped for each order published (a futex) */
    volatile apr_uint32_t sleeping;   /* the committer waits on work */
} os_hub_board_t;

static apr_shm_t *board_shm;
static os_hub_board_t *hub_boards;
static os_slot_t *slots;
static int board_hubs;

static void futex_wait(volatile apr_uint32_t *addr, apr_uint32_t val, apr_interval_time_t t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)apr_time_sec(t);
    ts.tv_nsec = (long)apr_time_usec(t) * 1000;
    syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake(volatile apr_uint32_t *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

static int pid_alive(apr_uint32_t pid)
{
    return pid && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int board_ready(os_store_t *st)
{
    return hub_boards && st->hub < board_hubs;
}

/* In post_config: one board for this generation of children (anonymous shared memory,
 * inherited; the pages are zero, so every slot starts FREE). */
static apr_status_t board_create(apr_pool_t *pconf, int hubs)
{
    apr_size_t head = APR_ALIGN_DEFAULT(sizeof(os_hub_board_t) * hubs);
    pthread_mutexattr_t ma;
    apr_status_t rv;
    int i;

    hub_boards = NULL;
    slots = NULL;
    board_hubs = 0;
    rv = apr_shm_create(&board_shm, head + sizeof(os_slot_t) * OS_SLOTS, NULL, pconf);
    if (rv != APR_SUCCESS) return rv;
    hub_boards = apr_shm_baseaddr_get(board_shm);
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    for (i = 0; i < hubs; i++) {
        if (pthread_mutex_init(&hub_boards[i].lease, &ma) != 0) {
            pthread_mutexattr_destroy(&ma);
            hub_boards = NULL;
            return APR_EGENERAL;
        }
    }
    pthread_mutexattr_destroy(&ma);
    slots = (os_slot_t *)((char *)hub_boards + head);
    board_hubs = hubs;
    return APR_SUCCESS;
}

/* The writer's thread tries for the hub's lease; the winner commits for every process
 * until its process ends. */
static void lease_try(os_store_t *st)
{
    os_hub_board_t *hb = &hub_boards[st->hub];
    apr_uint32_t me = (apr_uint32_t)getpid();
    int rc = pthread_mutex_trylock(&hb->lease), i;

    if (rc == EOWNERDEAD) rc = pthread_mutex_consistent(&hb->lease);
    if (rc != 0) return;
    /* slots taken by a committer that died before answering: commit them again */
    for (i = 0; i < OS_SLOTS; i++) {
        os_slot_t *sl = &slots[i];
        if (sl->hub == (apr_uint32_t)st->hub && sl->taker != me)
            apr_atomic_cas32(&sl->state, SLOT_FILLED, SLOT_TAKEN);
    }
    apr_atomic_set32(&hb->committer, me);
    apr_atomic_set32(&st->committing, 1);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, st->s, "ordersync: process %d now commits the "
                 "orders of every process", (int)me);
}

static void lease_release(os_store_t *st)
{
    os_hub_board_t *hb = &hub_boards[st->hub];
    apr_atomic_cas32(&hb->committer, 0, (apr_uint32_t)getpid());
    apr_atomic_set32(&st->committing, 0);
    pthread_mutex_unlock(&hb->lease);
}

/* The committer, now and then: answered slots whose request's process died while waiting
 * are nobody's; free them. (A filled one is committed first, like any other. A slot whose
 * process died in the microseconds of filling it stays lost: 128 are plenty.) */
static void slots_sweep(os_store_t *st)
{
    int i;
    for (i = 0; i < OS_SLOTS; i++) {
        os_slot_t *sl = &slots[i];
        apr_uint32_t state = apr_atomic_read32(&sl->state);
        if (state == SLOT_DONE && sl->hub == (apr_uint32_t)st->hub && !pid_alive(sl->owner))
            apr_atomic_cas32(&sl->state, SLOT_FREE, state);
    }
}

/* The committer: one batch of this process's orders and every filled slot, committed in
 * one transaction, or a short wait for work. */
static void committer_step(os_store_t *st, apr_pool_t *p, int batch_max)
{
    os_hub_board_t *hb = &hub_boards[st->hub];
    apr_uint32_t seq = apr_atomic_read32(&hb->work), me = (apr_uint32_t)getpid();
    os_intake_op_t *list, **tail, *op;
    const char *lock_failed;
    int n, locked, i;

    if (apr_time_now() >= st->sweep_at) {
        slots_sweep(st);
        st->sweep_at = apr_time_now() + apr_time_from_sec(1);
    }
    apr_thread_mutex_lock(st->mu);
    list = take_batch(st, batch_max, &n);
    apr_thread_mutex_unlock(st->mu);
    for (tail = &list; *tail; tail = &(*tail)->next);
    for (i = 0; i < OS_SLOTS && n < batch_max; i++) {
        os_slot_t *sl = &slots[i];
        if (apr_atomic_read32(&sl->state) != SLOT_FILLED || sl->hub != (apr_uint32_t)st->hub)
            continue;
        sl->taker = me;
        if (apr_atomic_cas32(&sl->state, SLOT_TAKEN, SLOT_FILLED) != SLOT_FILLED) continue;
        if (sl->hub != (apr_uint32_t)st->hub) {     /* refilled for another hub meanwhile */
            apr_atomic_set32(&sl->state, SLOT_FILLED);
            continue;
        }
        op = apr_pcalloc(p, sizeof(*op));
        op->source_id = sl->data + sl->off[SS_SOURCE];
        op->reference = sl->data + sl->off[SS_REFERENCE];
        op->sent_reference = sl->data + sl->off[SS_SENT];
        op->origin = sl->data + sl->off[SS_ORIGIN];
        op->body = sl->data + sl->off[SS_BODY];
        op->digest = sl->data + sl->off[SS_DIGEST];
        op->cancelled = sl->cancelled;
        op->slot = sl;
        *tail = op;
        tail = &op->next;
        n++;
    }
    if (!list) {
        apr_atomic_set32(&hb->sleeping, 1);
        if (apr_atomic_read32(&hb->work) == seq && !st->stopping)
            futex_wait(&hb->work, seq, OS_LEASE_RETRY);
        apr_atomic_set32(&hb->sleeping, 0);
        return;
    }
    lock_failed = write_lock(st, &locked);
    writer_commit(st, list, p, lock_failed);
    if (locked) apr_global_mutex_unlock(store_mutex);

    for (op = list; op; op = op->next) {
        os_slot_t *sl = op->slot;
        if (!sl) continue;
        sl->result = op->result;
        sl->version = op->version;
        apr_cpystrn(sl->order_id, op->order_id, sizeof(sl->order_id));
        apr_cpystrn(sl->delivery_state, op->delivery_state, sizeof(sl->delivery_state));
        apr_cpystrn(sl->error, op->error ? op->error : "", sizeof(sl->error));
        apr_atomic_set32(&sl->state, SLOT_DONE);
        futex_wake(&sl->state, 1);
    }
    apr_thread_mutex_lock(st->mu);
    for (op = list; op; op = op->next) {
        if (op->slot) continue;
        op->done = 1;
        apr_thread_cond_signal(op->wake);
    }
    apr_thread_mutex_unlock(st->mu);
}

static void coming_arrived(request_rec *r);

/* A request hands its order to the committer through a slot and waits for the answer.
 * Returns 0 when it could not (no committer, the order too big, no free slot). */
static int commit_shared(os_store_t *st, request_rec *r, os_intake_op_t *op)
{
    static volatile apr_uint32_t next_slot;
    os_hub_board_t *hb;
    os_srv_conf_t *sc = os_srv_conf(st->s);
    const char *str[SS_COUNT];
    apr_size_t len[SS_COUNT], used = 0;
    apr_uint32_t start;
    os_slot_t *sl = NULL;
    apr_interval_time_t timeout = apr_time_from_msec(
        OS_CONF_INT(sc->store_timeout_ms, OS_DEFAULT_STORE_TIMEOUT));
    apr_time_t deadline, dead_since = 0;
    int i;

    if (!board_ready(st)) return 0;
    hb = &hub_boards[st->hub];
    if (!apr_atomic_read32(&hb->committer)) return 0;
    str[SS_SOURCE] = op->source_id; str[SS_REFERENCE] = op->reference;
    str[SS_SENT] = op->sent_reference; str[SS_ORIGIN] = op->origin;
    str[SS_BODY] = op->body; str[SS_DIGEST] = op->digest;
    for (i = 0; i < SS_COUNT; i++) {
        len[i] = strlen(str[i]) + 1;
        used += len[i];
    }
    if (used > OS_SLOT_BYTES) return 0;
    start = apr_atomic_inc32(&next_slot) + (apr_uint32_t)getpid();
    for (i = 0; i < OS_SLOTS && !sl; i++) {
        os_slot_t *c = &slots[(start + (apr_uint32_t)i) % OS_SLOTS];
        if (apr_atomic_cas32(&c->state, SLOT_FILLING, SLOT_FREE) == SLOT_FREE) sl = c;
    }
    if (!sl) return 0;
    for (i = 0, used = 0; i < SS_COUNT; i++) {
        memcpy(sl->data + used, str[i], len[i]);
        sl->off[i] = (apr_uint32_t)used;
        used += len[i];
    }
    sl->cancelled = op->cancelled;
    sl->hub = (apr_uint32_t)st->hub;
    sl->taker = 0;
    sl->owner = (apr_uint32_t)getpid();
    coming_arrived(r);
    apr_atomic_set32(&sl->state, SLOT_FILLED);
    apr_atomic_inc32(&hb->work);
    if (apr_atomic_read32(&hb->sleeping)) futex_wake(&hb->work, 1);

    deadline = apr_time_now() + timeout;
    for (;;) {
        apr_uint32_t state = apr_atomic_read32(&sl->state);
        apr_time_t now;
        if (state == SLOT_DONE) break;
        now = apr_time_now();
        if (now < deadline) {
            apr_interval_time_t left = deadline - now;
            futex_wait(&sl->state, state, left < OS_LEASE_RETRY ? left : OS_LEASE_RETRY);
            continue;
        }
        if (state == SLOT_FILLED) {
            /* nobody took it: take it back, it was never written */
            if (apr_atomic_cas32(&sl->state, SLOT_FREE, SLOT_FILLED) == SLOT_FILLED) {
                op->result = OS_INTAKE_UNAVAILABLE;
                op->error = "timed out waiting for the store";
                return 1;
            }
            continue;
        }
        /* taken: the committer's answer is the truth while its process lives; if it died,
         * the next committer commits the slot again (see lease_try), so wait on, but not
         * for ever when no process takes over */
        if (pid_alive(sl->taker)) dead_since = 0;
        else if (!dead_since) dead_since = now;
        else if (now - dead_since > timeout
                 && apr_atomic_cas32(&sl->state, SLOT_FREE, SLOT_TAKEN) == SLOT_TAKEN) {
            op->result = OS_INTAKE_UNAVAILABLE;
            op->error = "the process committing the order ended before answering";
            return 1;
        }
        deadline = now + OS_LEASE_RETRY;
    }
    op->result = (os_intake_result_e)sl->result;
    op->version = sl->version;
    apr_cpystrn(op->order_id, sl->order_id, sizeof(op->order_id));
    apr_cpystrn(op->delivery_state, sl->delivery_state, sizeof(op->delivery_state));
    op->error = sl->error[0] ? apr_pstrdup(r->pool, sl->error) : NULL;
    apr_atomic_set32(&sl->state, SLOT_FREE);
    return 1;
}
#else
static int board_ready(os_store_t *st) { (void)st; return 0; }
static void lease_try(os_store_t *st) { (void)st; }
static void lease_release(os_store_t *st) { (void)st; }
static void committer_step(os_store_t *st, apr_pool_t *p, int batch_max)
{ (void)st; (void)p; (void)batch_max; }
static int commit_shared(os_store_t *st, request_rec *r, os_intake_op_t *op)
{ (void)st; (void)r; (void)op; return 0; }
#endif

static void *APR_THREAD_FUNC writer_main(apr_thread_t *thd, void *data)
{
    os_store_t *st = data;
    os_srv_conf_t *sc = os_srv_conf(st->s);
    int batch_max = OS_CONF_INT(sc->batch_max, OS_DEFAULT_BATCH_MAX);
    apr_pool_t *p;

    apr_pool_create(&p, st->pool);
    apr_thread_mutex_lock(st->mu);
    while (!st->stopping) {
        os_intake_op_t *batch;
        int n;

        const char *lock_failed = NULL;
        int locked = 0;

        if (board_ready(st) && !st->committing && apr_time_now() >= st->lease_at) {
            st->lease_at = apr_time_now() + OS_LEASE_RETRY;
            apr_thread_mutex_unlock(st->mu);
            lease_try(st);
            apr_thread_mutex_lock(st->mu);
        }
        if (st->committing) {
            apr_thread_mutex_unlock(st->mu);
            committer_step(st, p, batch_max);
            apr_pool_clear(p);
            apr_thread_mutex_lock(st->mu);
            continue;
        }
        if (!st->head) {
            if (board_ready(st))      /* wake up to try for the committer's role again */
                apr_thread_cond_timedwait(st->work, st->mu, OS_LEASE_RETRY);
            else
                apr_thread_cond_wait(st->work, st->mu);
            continue;
        }
        /* A commit costs about what five orders cost (every b-tree page it touches goes to
         * the WAL whole), so committing orders one by one would spend the CPU the requests
         * need. While requests of this process are still reading and checking orders, wait
         * a moment for them to join this batch; never when none is on its way. */
        if (apr_atomic_read32(&st->coming) && st->waiting < batch_max) {
            apr_time_t until = apr_time_now() + OS_COMMIT_LINGER;
            do {
                apr_interval_time_t left = until - apr_time_now();
                if (left <= 0) break;
                apr_thread_cond_timedwait(st->work, st->mu, left);
            } while (!st->stopping && st->head && apr_atomic_read32(&st->coming)
                     && st->waiting < batch_max);
            if (!st->head) continue;
        }
        /* Take the write lock first and the batch after: orders that arrive while another
         * process commits join this batch instead of waiting for the next turn. */
        if (store_mutex) {
            apr_thread_mutex_unlock(st->mu);
            lock_failed = write_lock(st, &locked);
            apr_thread_mutex_lock(st->mu);
            if (!st->head) {          /* every waiting request gave up meanwhile */
                if (locked) apr_global_mutex_unlock(store_mutex);
                continue;
            }
        }
        batch = take_batch(st, batch_max, &n);
        apr_thread_mutex_unlock(st->mu);

        writer_commit(st, batch, p, lock_failed);
        if (locked) apr_global_mutex_unlock(store_mutex);
        apr_pool_clear(p);

        apr_thread_mutex_lock(st->mu);
        /* wake exactly the requests of this batch, not every request waiting in the process */
        for (; batch; batch = batch->next) {
            batch->done = 1;
            apr_thread_cond_signal(batch->wake);
        }
    }
    apr_thread_mutex_unlock(st->mu);
    if (st->committing) lease_release(st);
    apr_pool_destroy(p);
    /* a plain return rather than apr_thread_exit(): pthread_exit's forced unwinding leaves
     * the stack poisoned for AddressSanitizer, and nothing reads an exit status here */
    (void)thd;
    return NULL;
}

static apr_status_t store_stop(void *data)
{
    os_store_t *st = data;
    apr_status_t rv;
    apr_thread_mutex_lock(st->mu);
    st->stopping = 1;
    apr_thread_cond_broadcast(st->work);
    apr_thread_mutex_unlock(st->mu);
#ifdef OS_HAVE_BOARD
    if (st->committing) futex_wake(&hub_boards[st->hub].work, INT_MAX);
#endif
    apr_thread_join(&rv, st->thread);
    /* give the connection back before mod_dbd destroys its pool of connections */
    if (st->dbd) {
        dbd_close(st->s, st->dbd);
        st->dbd = NULL;
    }
    return APR_SUCCESS;
}

/* ---- checkpoints (SQLite) ------------------------------------------------------------- */

/* SQLite copies the WAL back into the database file (a checkpoint) by default inside the
 * commit that takes the WAL past 1,000 pages: that commit's requests wait for the copy and
 * two fsyncs while the writers of every process wait for the write lock (measured: the
 * intake ran a third slower). Instead a singleton watchdog checkpoints every tick (100 ms),
 * outside the write lock, and writers only append. What was appended during that copy is
 * copied once more holding the write lock, briefly: SQLite starts the WAL over only at a
 * commit that finds all of it copied, and under load that moment never comes otherwise.
 * SQLite's own checkpoint stays on at 32 MB of WAL, for the seconds in which no watchdog
 * runs (its process being replaced). */
#define OS_WATCHDOG "ordersync-store"
#define OS_CKPT_LOCK_WAIT apr_time_from_sec(1)
#define OS_CKPT_BACKOFF_MAX apr_time_from_sec(60)

typedef struct {
    server_rec *s;
    apr_time_t retry_at;              /* after a failure: not before then */
    apr_interval_time_t backoff;
    apr_int64_t last_log;             /* the WAL's frames after the last tick */
} os_ckpt_t;

/* mod_watchdog's thread outlives this process's pool, and mod_dbd's connections go with that
 * pool: background work runs only while the gate is open, and the pool's pre-cleanup closes
 * it after waiting for the work in progress. */
typedef struct {
    apr_thread_mutex_t *mu;
    int open;
} os_gate_t;
static volatile void *bg_gate;

static apr_status_t gate_close(void *data)
{
    os_gate_t *g = data;
    apr_thread_mutex_lock(g->mu);
    g->open = 0;
    apr_thread_mutex_unlock(g->mu);
    return APR_SUCCESS;
}

/* One PASSIVE checkpoint: never waits for readers or the writer. *log and *done are the
 * WAL's frames and those now in the database file (-1 each when the store is not in WAL). */
static int wal_checkpoint(os_conn_t *c, apr_pool_t *p, apr_int64_t *log, apr_int64_t *done)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv = apr_dbd_select(c->driver, p, c->handle, &res, "PRAGMA wal_checkpoint(PASSIVE)", 1);
    if (rv) return rv;
    if (apr_dbd_get_row(c->driver, p, res, &row, 1) != 0) return -1;
    *log = apr_atoi64(apr_dbd_get_entry(c->driver, row, 1));
    *done = apr_atoi64(apr_dbd_get_entry(c->driver, row, 2));
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0);
    return 0;
}

static apr_status_t checkpoint(os_ckpt_t *ck, apr_pool_t *p)
{
    ap_dbd_t *dbd = dbd_open(p, ck->s);
    os_conn_t *c;
    apr_int64_t log = 0, done = 0;
    int rv;

    if (!dbd) {
        rv = -1;                      /* mod_dbd said why */
        goto retry_later;
    }
    c = conn_of(dbd);
    if (c->is_pg) {                   /* PostgreSQL checkpoints on its own: stop calling */
        dbd_close(ck->s, dbd);
        return APR_ENOTIMPL;
    }
    if (!c->ready) {
        /* set up (and the schema made) as by the writers, taking turns with them: a
         * connection that met the file before its schema must not go to a writer */
        if (store_mutex && apr_global_mutex_timedlock(store_mutex, OS_CKPT_LOCK_WAIT)
                           != APR_SUCCESS) {
            dbd_close(ck->s, dbd);
            return APR_SUCCESS;
        }
        rv = conn_ready(ck->s, c, p) == APR_SUCCESS ? 0 : -1;
        if (store_mutex) apr_global_mutex_unlock(store_mutex);
        if (rv) {
            dbd_close(ck->s, dbd);
            goto retry_later;
        }
    }
    rv = wal_checkpoint(c, p, &log, &done);
    /* frames appended since the last tick (a WAL that starts over is new as well): copy
     * what came in during that pass with the writers held off */
    if (rv == 0 && log > 0 && log != ck->last_log && store_mutex
        && apr_global_mutex_timedlock(store_mutex, OS_CKPT_LOCK_WAIT) == APR_SUCCESS) {
        rv = wal_checkpoint(c, p, &log, &done);
        apr_global_mutex_unlock(store_mutex);
    }
    ck->last_log = log;
    if (rv) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, ck->s, "ordersync: checkpoint failed: %s",
                     conn_error(c, rv));
    }
    dbd_close(ck->s, dbd);
    if (rv == 0) {
        ck->backoff = 0;
        return APR_SUCCESS;
    }
retry_later:
    /* a store that cannot be opened is the writer's to report, once per request; here
     * it is tried again at growing intervals rather than every tick */
    ck->backoff = ck->backoff ? ck->backoff * 2 : apr_time_from_sec(1);
    if (ck->backoff > OS_CKPT_BACKOFF_MAX) ck->backoff = OS_CKPT_BACKOFF_MAX;
    ck->retry_at = apr_time_now() + ck->backoff;
    return APR_SUCCESS;
}

static apr_status_t checkpoint_tick(int state, void *data, apr_pool_t *p)
{
    os_ckpt_t *ck = data;
    os_gate_t *g = apr_atomic_casptr(&bg_gate, NULL, NULL);
    apr_status_t rv = APR_SUCCESS;

    if (state != AP_WATCHDOG_STATE_RUNNING || !g) return APR_SUCCESS;
    apr_thread_mutex_lock(g->mu);
    if (g->open && apr_time_now() >= ck->retry_at) rv = checkpoint(ck, p);
    apr_thread_mutex_unlock(g->mu);
    return rv;
}

/* Registers the checkpoint job of each server with a hub; 0 when there is no watchdog. */
static int checkpoints_register(apr_pool_t *pconf, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    ap_watchdog_t *wd = NULL;
    server_rec *vs;

    if (!get_instance || !register_callback) return 0;
    if (get_instance(&wd, OS_WATCHDOG, 0, 1, pconf) != APR_SUCCESS || !wd) return 0;
    for (vs = s; vs; vs = vs->next) {
        os_ckpt_t *ck;
        if (!os_srv_conf(vs)->mounts->nelts) continue;
        ck = apr_pcalloc(pconf, sizeof(*ck));
        ck->s = vs;
        if (register_callback(wd, AP_WD_TM_SLICE, ck, checkpoint_tick) != APR_SUCCESS) return 0;
    }
    return 1;
}

void os_store_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, OS_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

int os_store_post_config(apr_pool_t *pconf, server_rec *s)
{
    server_rec *vs;
    apr_status_t rv;
    int hubs = 0;

    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    store_mutex = NULL;
    checkpoints_in_background = 0;
    for (vs = s; vs; vs = vs->next) {
        if (os_srv_conf(vs)->mounts->nelts) hubs++;
    }
    if (!hubs) return OK;
    rv = ap_global_mutex_create(&store_mutex, NULL, OS_MUTEX_TYPE, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) return HTTP_INTERNAL_SERVER_ERROR;
#ifdef OS_HAVE_BOARD
    if ((rv = board_create(pconf, hubs)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ordersync: no shared memory for the "
                     "committer: every process commits its own orders, which is slower");
    }
#endif
    checkpoints_in_background = checkpoints_register(pconf, s);
    if (!checkpoints_in_background) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ordersync: no mod_watchdog: SQLite "
                     "stores checkpoint inside commits, which slows the intake");
    }
    return OK;
}

void os_store_child_init(apr_pool_t *pchild, server_rec *s)
{
    int hub = 0;

    if (store_mutex) {
        apr_status_t rv = apr_global_mutex_child_init(&store_mutex,
                                                      apr_global_mutex_lockfile(store_mutex), pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "ordersync: cannot attach the store's "
                         "write lock in this process; writers will rely on the store's own locking");
            store_mutex = NULL;
        }
    }
    if (checkpoints_in_background) {
        /* from the process's pool, which outlives pchild as mod_watchdog's thread does */
        os_gate_t *g = apr_pcalloc(s->process->pool, sizeof(*g));
        apr_thread_mutex_create(&g->mu, APR_THREAD_MUTEX_DEFAULT, s->process->pool);
        g->open = 1;
        apr_pool_pre_cleanup_register(pchild, g, gate_close);
        apr_atomic_xchgptr(&bg_gate, g);
    }
    for (; s; s = s->next) {
        os_srv_conf_t *sc = os_srv_conf(s);
        os_store_t *st;
        apr_status_t rv;

        if (!sc->mounts->nelts) continue;
        hub++;                        /* numbered as in post_config */
        if (!dbd_open) continue;
        st = apr_pcalloc(pchild, sizeof(*st));
        st->s = s;
        st->hub = hub - 1;
        apr_pool_create(&st->pool, pchild);
        apr_thread_mutex_create(&st->mu, APR_THREAD_MUTEX_DEFAULT, pchild);
        apr_thread_cond_create(&st->work, pchild);
        rv = apr_thread_create(&st->thread, NULL, writer_main, st, pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "ordersync: cannot start the store writer");
            continue;
        }
        apr_pool_pre_cleanup_register(pchild, st, store_stop);
        sc->store = st;
    }
}

/* ---- orders on their way ------------------------------------------------------------- */

typedef struct {
    os_store_t *st;
    int pending;
} os_coming_t;

static void coming_done(os_coming_t *c)
{
    c->pending = 0;
    if (!apr_atomic_dec32(&c->st->coming)) {
        /* the last one on its way: a lingering writer need not wait any longer */
        apr_thread_mutex_lock(c->st->mu);
        apr_thread_cond_signal(c->st->work);
        apr_thread_mutex_unlock(c->st->mu);
    }
}

static apr_status_t coming_cleanup(void *data)
{
    os_coming_t *c = data;
    if (c->pending) coming_done(c);
    return APR_SUCCESS;
}

void os_store_expect(request_rec *r)
{
    os_store_t *st = os_srv_conf(r->server)->store;
    os_coming_t *c;

    if (!st || ap_get_module_config(r->request_config, &ordersync_module)) return;
    c = apr_palloc(r->pool, sizeof(*c));
    c->st = st;
    c->pending = 1;
    apr_atomic_inc32(&st->coming);
    ap_set_module_config(r->request_config, &ordersync_module, c);
    apr_pool_cleanup_register(r->pool, c, coming_cleanup, apr_pool_cleanup_null);
}

/* The order is in the list (called with the writer's mutex held). */
static void coming_arrived(request_rec *r)
{
    os_coming_t *c = ap_get_module_config(r->request_config, &ordersync_module);
    if (c && c->pending) {
        c->pending = 0;
        apr_atomic_dec32(&c->st->coming);
    }
}

/* Queues the order for this process's writer and waits for its commit, at most the store
 * timeout while it is still queued. */
static void commit_local(os_store_t *st, request_rec *r, os_intake_op_t *op)
{
    apr_pool_t *p = r->pool;
    os_srv_conf_t *sc = os_srv_conf(st->s);
    apr_time_t deadline;

    op->next = NULL;
    op->done = 0;
    op->error = NULL;
    op->wake = NULL;
    deadline = apr_time_now()
               + apr_time_from_msec(OS_CONF_INT(sc->store_timeout_ms, OS_DEFAULT_STORE_TIMEOUT));
    if (apr_thread_cond_create(&op->wake, p) != APR_SUCCESS) {
        op->result = OS_INTAKE_UNAVAILABLE;
        op->error = "cannot wait for the store";
        return;
    }
    apr_thread_mutex_lock(st->mu);
    coming_arrived(r);
    if (st->tail) st->tail->next = op; else st->head = op;
    st->tail = op;
    st->waiting++;
    /* the writer waits for the first order, then (lingering) for the last one on its way */
    if (st->waiting == 1 || !apr_atomic_read32(&st->coming)
        || st->waiting >= OS_CONF_INT(sc->batch_max, OS_DEFAULT_BATCH_MAX)) {
        apr_thread_cond_signal(st->work);
    }
#ifdef OS_HAVE_BOARD
    if (apr_atomic_read32(&st->committing)) {   /* the committer waits on the board */
        apr_atomic_inc32(&hub_boards[st->hub].work);
        futex_wake(&hub_boards[st->hub].work, 1);
    }
#endif
    while (!op->done) {
        apr_time_t left = deadline - apr_time_now();
        if (left <= 0) {
            /* still waiting in the queue: take it out, it was never written */
            os_intake_op_t **pp, *prev = NULL;
            for (pp = &st->head; *pp; prev = *pp, pp = &(*pp)->next) {
                if (*pp == op) {
                    *pp = op->next;
                    if (st->tail == op) st->tail = prev;
                    st->waiting--;
                    op->result = OS_INTAKE_UNAVAILABLE;
                    op->error = "timed out waiting for the store";
                    op->done = 1;
                    break;
                }
            }
            if (op->done) break;
            /* in the writer's hands: its answer is the truth, wait for it */
            apr_thread_cond_wait(op->wake, st->mu);
            continue;
        }
        apr_thread_cond_timedwait(op->wake, st->mu, left);
    }
    apr_thread_mutex_unlock(st->mu);
}

void os_store_intake(request_rec *r, os_intake_op_t *op)
{
    os_store_t *st = os_srv_conf(r->server)->store;

    if (!st) {
        op->result = OS_INTAKE_UNAVAILABLE;
        op->error = "no store for this server (mod_dbd missing?)";
        return;
    }
    op->slot = NULL;
    if (!commit_shared(st, r, op)) commit_local(st, r, op);
}

/* ---- reads -------------------------------------------------------------------------- */

static const char *fmt_time(apr_pool_t *p, const char *usec)
{
    char buf[APR_RFC822_DATE_LEN + 8];
    apr_time_exp_t t;
    apr_size_t n;
    if (!usec) return NULL;
    apr_time_exp_gmt(&t, (apr_time_t)apr_atoi64(usec));
    apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
    return apr_psprintf(p, "%s.%03dZ", buf, t.tm_usec / 1000);
}

apr_status_t os_store_order_get(request_rec *r, const char *source_id, const char *reference,
                                os_order_view_t **out)
{
    ap_dbd_t *dbd = dbd_acquire ? dbd_acquire(r) : NULL;
    os_conn_t *c;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    os_order_view_t *v;
    const char *a[2];
    int rv, i;

    if (!dbd) return APR_EGENERAL;
    c = conn_of(dbd);
    if (conn_ready(r->server, c, r->pool) != APR_SUCCESS) return APR_EGENERAL;
    a[0] = source_id; a[1] = reference;
    if ((rv = sel(c, r->pool, ST_ORDER_GET, &res, 2, a))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ordersync: reading order failed: %s",
                      conn_error(c, rv));
        return APR_EGENERAL;
    }
    if (apr_dbd_get_row(c->driver, r->pool, res, &row, 1) != 0) return APR_NOTFOUND;
    v = apr_pcalloc(r->pool, sizeof(*v));
#define E(n) apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, n))
    v->id = E(0); v->source_id = E(1); v->reference = E(2); v->sent_reference = E(3);
    v->origin = E(4);
    v->latest_version = atoi(apr_dbd_get_entry(c->driver, row, 5));
    v->delivered_version = atoi(apr_dbd_get_entry(c->driver, row, 6));
    for (i = 0; i < 4; i++) {
        const char *at = apr_dbd_get_entry(c->driver, row, 8 + 3 * i);
        v->state[i] = E(7 + 3 * i);
        v->state_at[i] = fmt_time(r->pool, at && *at ? at : NULL);
        v->state_cause[i] = E(9 + 3 * i);
    }
    v->created_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 19));
    v->updated_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 20));
#undef E
    while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0);

    v->versions = apr_array_make(r->pool, 4, sizeof(os_version_view_t));
    a[0] = v->id;
    if ((rv = sel(c, r->pool, ST_VERSIONS_GET, &res, 1, a)) == 0) {
        while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            os_version_view_t *vv = apr_array_push(v->versions);
            vv->version = atoi(apr_dbd_get_entry(c->driver, row, 0));
            vv->received_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 1));
            vv->digest = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 2));
        }
    }
    v->events = apr_array_make(r->pool, 8, sizeof(os_event_view_t));
    if ((rv = sel(c, r->pool, ST_EVENTS_GET, &res, 1, a)) == 0) {
        while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            os_event_view_t *ev = apr_array_push(v->events);
            ev->event_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 0));
            ev->kind = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 1));
            ev->detail = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 2));
        }
    }
    {
        const char *b[2] = { v->id, apr_itoa(r->pool, v->latest_version) };
        if ((rv = sel(c, r->pool, ST_LATEST_BODY, &res, 2, b)) == 0
            && apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            v->latest_body = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 0));
            while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0);
        }
    }
    *out = v;
    return APR_SUCCESS;
}
