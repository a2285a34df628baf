/* mod_ordersync_store_db.c: connections, pragmas, schema, statement text and transactions
 * (see mod_ordersync_store_db.h for the invariants). */
#include "mod_ordersync_store_db.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_atomic.h"
#include "apr_general.h"
#include "apr_thread_mutex.h"
#include "apr_allocator.h"

APLOG_USE_MODULE(ordersync);

const char *const OS_STATE_STEPS[4] = { "intake", "delivery", "writeback", "shipment" };

APR_OPTIONAL_FN_TYPE(ap_dbd_open) *os_dbd_open;
APR_OPTIONAL_FN_TYPE(ap_dbd_close) *os_dbd_close;
APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *os_dbd_acquire;
int os_checkpoints_in_background;

#define OS_CKPT_SAFETY_PAGES 16384    /* SQLite's own checkpoint only past 32 MB of WAL */

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
    "INSERT INTO os_order_versions (order_id, version, digest, body, received_at, intake_id) "
    "VALUES (%s, %d, %s, %s, %lld, %s)",
    /* ST_JOB_REQUEUE: a newer version replaces what the delivery job carries; the dispatcher
     * completes a job only if its version is unchanged, so the newest version lands last */
    "UPDATE os_jobs SET version = %d, state = 'queued', due_at = %lld, attempts = 0, "
    "deadline_at = NULL, last_error = NULL, updated_at = %lld "
    "WHERE order_id = %s AND kind = 'delivery'",
    /* ST_JOB_INSERT */
    "INSERT INTO os_jobs (order_id, kind, version, state, due_at, attempts, created_at, "
    "updated_at) VALUES (%s, 'delivery', %d, 'queued', %lld, 0, %lld, %lld)",
    /* ST_EVENT_INSERT */
    "INSERT INTO os_events (id, order_id, at, kind, detail) VALUES (%s, %s, %lld, %s, %s)",
    /* ST_QUEUE_DEPTH */
    "SELECT COUNT(*) FROM os_jobs WHERE state IN ('queued', 'retrying')",
    /* ST_SOURCE_DEPTH */
    "SELECT COUNT(*) FROM os_jobs j JOIN os_orders o ON o.id = j.order_id "
    "WHERE j.state IN ('queued', 'retrying') AND o.source_id = %s",
    /* ST_INTAKE_FIND: the version an intake id already made (a resend, a recommit) */
    "SELECT version FROM os_order_versions WHERE order_id = %s AND intake_id = %s",
    /* ST_ORDER_GET */
    "SELECT id, source_id, reference, sent_reference, origin, latest_version, delivered_version, "
    "intake_state, intake_at, intake_cause, delivery_state, delivery_at, delivery_cause, "
    "writeback_state, writeback_at, writeback_cause, shipment_state, shipment_at, shipment_cause, "
    "created_at, updated_at, clougistic_id FROM os_orders WHERE source_id = %s AND reference = %s",
    /* ST_VERSIONS_GET */
    "SELECT version, received_at, digest FROM os_order_versions WHERE order_id = %s "
    "ORDER BY version",
    /* ST_EVENTS_GET */
    "SELECT at, kind, detail FROM os_events WHERE order_id = %s ORDER BY at, id",
    /* ST_LATEST_BODY */
    "SELECT body FROM os_order_versions WHERE order_id = %s AND version = %d",
    /* ST_JOB_DUE: delivery jobs in one state that are due, oldest first, whose lease is
     * free or has run out (a job whose lease is held stays with its holder even when a
     * newer version requeued it, so two versions of one order are never in flight). One
     * state per query, so that the index (state, due_at) gives them in order without
     * sorting the whole queue. */
    "SELECT j.order_id, j.version, j.attempts, j.deadline_at, o.source_id, o.reference, "
    "o.sent_reference, v.body, j.due_at FROM os_jobs j JOIN os_orders o ON o.id = j.order_id "
    "JOIN os_order_versions v ON v.order_id = j.order_id AND v.version = j.version "
    "WHERE j.state = %s AND j.due_at <= %lld AND (j.lease_until IS NULL OR j.lease_until < %lld) "
    "AND j.kind = 'delivery' ORDER BY j.due_at LIMIT %d",
    /* ST_JOB_CLAIM */
    "UPDATE os_jobs SET state = 'delivering', lease_owner = %s, lease_until = %lld, "
    "deadline_at = COALESCE(deadline_at, %lld), updated_at = %lld "
    "WHERE order_id = %s AND kind = 'delivery' AND version = %d",
    /* ST_ORDER_STEP: the delivery state of an order, while the version is its newest */
    "UPDATE os_orders SET delivery_state = %s, delivery_at = %lld, delivery_cause = %s, "
    "updated_at = %lld WHERE id = %s AND latest_version = %d",
    /* ST_JOB_FINISH: only the lease's holder completes, and its outcome applies only where
     * no newer version requeued the job meanwhile (then the lease is just given back) */
    "UPDATE os_jobs SET state = CASE WHEN state = 'delivering' THEN %s ELSE state END, "
    "due_at = CASE WHEN state = 'delivering' THEN %lld ELSE due_at END, "
    "attempts = CASE WHEN state = 'delivering' THEN attempts + %d ELSE attempts END, "
    "last_error = CASE WHEN state = 'delivering' THEN %s ELSE last_error END, "
    "lease_owner = NULL, lease_until = NULL, updated_at = %lld "
    "WHERE order_id = %s AND kind = 'delivery' AND lease_owner = %s",
    /* ST_ORDER_DELIVERED */
    "UPDATE os_orders SET delivered_version = %d, clougistic_id = %s, "
    "delivery_state = CASE WHEN latest_version = %d THEN 'delivered' ELSE delivery_state END, "
    "delivery_at = %lld, delivery_cause = %s, updated_at = %lld "
    "WHERE id = %s AND delivered_version < %d",
    /* ST_JOB_OWNERS: who holds leases */
    "SELECT DISTINCT lease_owner FROM os_jobs WHERE state = 'delivering' AND lease_owner LIKE %s",
    /* ST_JOB_RELEASE: a holder's leases given back (it stopped, or its process is gone) */
    "UPDATE os_jobs SET state = CASE WHEN state = 'delivering' THEN 'retrying' ELSE state END, "
    "lease_owner = NULL, lease_until = NULL, updated_at = %lld WHERE lease_owner = %s",
    /* ST_JOB_SHIFT: time spent paused does not count against the jobs' horizon */
    "UPDATE os_jobs SET deadline_at = deadline_at + %lld WHERE deadline_at IS NOT NULL "
    "AND state IN ('queued', 'retrying', 'delivering')",
    /* ST_META_GET */
    "SELECT value FROM os_meta WHERE name = %s",
    /* ST_META_PUT */
    "INSERT INTO os_meta (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
    "SET value = excluded.value",
    /* ST_JOB_REPLAY: a dead order's newest version back in the queue */
    "UPDATE os_jobs SET version = %d, state = 'queued', due_at = %lld, attempts = 0, "
    "deadline_at = NULL, last_error = NULL, updated_at = %lld "
    "WHERE order_id = %s AND kind = 'delivery' AND state = 'dead'",
    /* ST_ORDER_REQUEUED */
    "UPDATE os_orders SET delivery_state = 'queued', delivery_at = %lld, delivery_cause = %s, "
    "updated_at = %lld WHERE id = %s",
    /* ST_JOB_GET */
    "SELECT kind, version, state, due_at, attempts, last_error FROM os_jobs "
    "WHERE order_id = %s ORDER BY kind",
};

/* What PostgreSQL adds to a statement: row locks, which SQLite (one writer at a time) does
 * without. The order row is locked so that two servers cannot both append the same version;
 * due jobs are locked and those another server is claiming skipped rather than waited for. */
static const char *pg_suffix(int st)
{
    return st == ST_ORDER_FIND ? " FOR UPDATE"
         : st == ST_JOB_DUE ? " FOR UPDATE OF j SKIP LOCKED" : NULL;
}

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

/* Version 2: each version remembers the intake id it came with, so a resend (or a commit
 * tried again after its committer ended) is recognised as the same request. Looked up
 * within one order, so the primary key's (order_id, ...) prefix serves it. */
static const char *const SCHEMA_V2[] = {
    "ALTER TABLE os_order_versions ADD COLUMN intake_id VARCHAR(64)",
    NULL
};

/* Version 3: the dispatcher. The id Clougistic gave the order (the write-back needs it),
 * and each job's deadline: when it goes dead if it keeps failing (its first try plus the
 * horizon, moved on by the time its upstream spent paused). */
static const char *const SCHEMA_V3[] = {
    "ALTER TABLE os_orders ADD COLUMN clougistic_id VARCHAR(64)",
    "ALTER TABLE os_jobs ADD COLUMN deadline_at BIGINT",
    NULL
};

static const char *const *const MIGRATIONS[OS_SCHEMA_VERSION] = { SCHEMA_V1, SCHEMA_V2,
                                                                   SCHEMA_V3 };

#define OS_CONN_KEY "ordersync:conn"

const char *os_conn_error(os_conn_t *c, int rv)
{
    const char *e = apr_dbd_error(c->driver, c->handle, rv);
    return e && *e ? e : "unknown database error";
}

int os_exec_any(os_conn_t *c, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv = apr_dbd_select(c->driver, p, c->handle, &res, sql, 0);
    if (rv == 0) {
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0);
    }
    return rv;
}

/* Runs a statement that returns one text value; NULL if it failed or gave no row. */
static const char *select_text(os_conn_t *c, apr_pool_t *p, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v = NULL;
    if (apr_dbd_select(c->driver, p, c->handle, &res, sql, 1) == 0
        && apr_dbd_get_row(c->driver, p, res, &row, 1) == 0) {
        v = apr_pstrdup(p, apr_dbd_get_entry(c->driver, row, 0));
    }
    return v;
}

int os_select_int(os_conn_t *c, apr_pool_t *p, const char *sql, apr_int64_t *out)
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

const char *os_i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

int os_q(os_conn_t *c, apr_pool_t *p, int st, int *nrows, int nargs, const char **args)
{
    int n = 0, rv = apr_dbd_pquery(c->driver, p, c->handle, &n, c->st[st], nargs, args);
    if (nrows) *nrows = n;
    return rv;
}

int os_sel(os_conn_t *c, apr_pool_t *p, int st, apr_dbd_results_t **res, int nargs,
           const char **args)
{
    *res = NULL;
    return apr_dbd_pselect(c->driver, p, c->handle, res, c->st[st], 1, nargs, args);
}

int os_event_insert(os_conn_t *c, apr_pool_t *p, const char *order_id, apr_time_t now,
                    const char *kind, const char *detail)
{
    char id[OS_ID_LEN + 1];
    const char *a[5];
    os_new_id(id);
    a[0] = id; a[1] = order_id; a[2] = os_i64(p, now); a[3] = kind; a[4] = detail;
    return os_q(c, p, ST_EVENT_INSERT, NULL, 5, a);
}

/* Ids are unique across processes and servers and ordered by time, so a batch's inserts
 * land together at the end of each index instead of on random pages (as random UUIDs
 * would), which keeps the pages a commit writes few. */
void os_new_id(char *buf)
{
    static apr_uint32_t counter;
    unsigned char rnd[5];
    apr_uint32_t n = apr_atomic_inc32(&counter);
    apr_generate_random_bytes(rnd, sizeof(rnd));
    apr_snprintf(buf, OS_ID_LEN + 1, "%014" APR_UINT64_T_HEX_FMT "%04x%02x%02x%02x%02x%02x",
                 (apr_uint64_t)apr_time_now(), (unsigned)(n & 0xffff),
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4]);
}

/* ---- transactions ------------------------------------------------------------------- */

/* SQLite compiles a statement against the schema its connection last read, and apr-util's
 * driver prepares the legacy way, which never reloads it: after a change (an index or a
 * trigger added by hand, a VACUUM) every statement, old or newly prepared, fails with
 * "database schema has changed". A statement that reads the schema table fails once and
 * makes the connection read it anew. */
static void sqlite_schema_reload(os_conn_t *c, apr_pool_t *p)
{
    if (os_exec_any(c, p, "SELECT count(*) FROM sqlite_master"))
        os_exec_any(c, p, "SELECT count(*) FROM sqlite_master");
}

/* Prepares every statement and, on SQLite, notes the schema they were prepared on. 0, or
 * the driver's error with *which the statement that failed. */
static int prepare_all(os_conn_t *c, apr_pool_t *p, int *which)
{
    int i, rv;
    if (!c->is_pg) sqlite_schema_reload(c, p);
    for (i = 0; i < ST_COUNT; i++) {
        const char *sql = c->is_pg && pg_suffix(i) ? apr_pstrcat(c->pool, SQL[i], pg_suffix(i), NULL)
                                                   : SQL[i];
        c->st[i] = NULL;
        /* no label: PostgreSQL runs each as a parameterised statement rather than a
         * server-side PREPARE, so a reconnected session needs nothing prepared again */
        if ((rv = apr_dbd_prepare(c->driver, c->pool, c->handle, sql, NULL, &c->st[i]))) {
            *which = i;
            return rv;
        }
    }
    if (!c->is_pg && os_select_int(c, p, "PRAGMA schema_version", &c->schema_cookie) != 0)
        c->schema_cookie = -1;
    return 0;
}

int os_txn_begin(os_conn_t *c, apr_pool_t *p, const os_store_conf_t *conf)
{
    int rv, which;
    /* PostgreSQL: a lock held elsewhere (another server's long transaction, an operator's
     * LOCK TABLE) fails the commit after the store timeout instead of stalling the intake;
     * SET LOCAL lasts for this transaction, so a reconnect cannot lose it. SQLite: take the
     * write lock now, where its busy timeout applies, not at the first write. */
    rv = exec_sql(c, c->is_pg ? apr_psprintf(p, "BEGIN; SET LOCAL lock_timeout = %d",
                                             conf->timeout_ms)
                              : "BEGIN IMMEDIATE");
    if (rv) {
        c->failed = 1;
        if (c->is_pg) exec_sql(c, "ROLLBACK");
        return rv;
    }
    /* SQLite: a statement prepared before the schema changed (an index or a trigger added
     * by hand, a VACUUM) fails for good; with the write lock held nobody can change it
     * now, so this is the moment to look, and to prepare them again */
    if (!c->is_pg && c->ready) {
        apr_int64_t cookie = 0;
        if ((rv = os_select_int(c, p, "PRAGMA schema_version", &cookie)) == 0
            && cookie != c->schema_cookie) {
            rv = prepare_all(c, p, &which);
        }
        if (rv) {
            c->failed = 1;
            exec_sql(c, "ROLLBACK");
        }
    }
    return rv;
}

os_txn_outcome_e os_txn_commit(os_conn_t *c, apr_pool_t *p, const char **why)
{
    int rv = exec_sql(c, "COMMIT");
    if (rv == 0) return OS_TXN_COMMITTED;
    *why = apr_pstrdup(p, os_conn_error(c, rv));
    c->failed = 1;
    /* SQLite: a COMMIT that failed left the transaction open or rolled back: either way
     * nothing is written once it is rolled back. PostgreSQL: the reply may have been lost
     * after the server committed (a dropped connection): nobody here can tell. */
    exec_sql(c, "ROLLBACK");
    return c->is_pg ? OS_TXN_UNKNOWN : OS_TXN_FAILED;
}

void os_txn_rollback(os_conn_t *c)
{
    if (exec_sql(c, "ROLLBACK")) c->failed = 1;
}

/* ---- setup and migration -------------------------------------------------------------- */

static int schema_version(os_conn_t *c, apr_pool_t *p, int *version)
{
    apr_int64_t v = 0;
    int rv = os_select_int(c, p, "SELECT value FROM os_meta WHERE name = 'schema_version'", &v);
    *version = (int)v;
    return rv == -1 ? 0 : rv;       /* no row yet: an empty store, version 0 */
}

static void migrate_failed(server_rec *s, const os_store_conf_t *conf, const char *e)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: migrating the store failed: %s "
                 "(the store: %s)", e, conf->name ? conf->name : "?");
}

/* Brings the schema to OS_SCHEMA_VERSION inside one write transaction, so servers starting
 * together cannot both create it and a failure leaves nothing half-made. */
static apr_status_t migrate(server_rec *s, const os_store_conf_t *conf, os_conn_t *c,
                            apr_pool_t *p, const char **why)
{
    const char *e;
    int rv, version = 0, i, v;

    if ((rv = os_txn_begin(c, p, conf))) goto fail;
    if (c->is_pg) {
        /* servers starting together take turns: the first creates the schema, the others
         * then find it (a transaction-scoped advisory lock any database user may take) */
        if ((rv = os_exec_any(c, p, "SELECT pg_advisory_xact_lock(7320410)"))) goto fail_txn;
    }
    if ((rv = exec_sql(c, "CREATE TABLE IF NOT EXISTS os_meta (name VARCHAR(64) PRIMARY KEY, "
                          "value VARCHAR(255) NOT NULL)"))) goto fail_txn;
    if ((rv = schema_version(c, p, &version))) goto fail_txn;
    if (version > OS_SCHEMA_VERSION) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: the store's schema is version %d, "
                     "newer than this module's %d: refusing to write to it", version,
                     OS_SCHEMA_VERSION);
        os_txn_rollback(c);
        *why = "the store's schema is newer than this module";
        return APR_EGENERAL;
    }
    for (v = version; v < OS_SCHEMA_VERSION; v++) {
        for (i = 0; MIGRATIONS[v][i]; i++) {
            if ((rv = exec_sql(c, MIGRATIONS[v][i]))) goto fail_txn;
        }
    }
    if (version < OS_SCHEMA_VERSION) {
        const char *sql = version == 0
            ? apr_psprintf(p, "INSERT INTO os_meta (name, value) VALUES ('schema_version', "
                              "'%d')", OS_SCHEMA_VERSION)
            : apr_psprintf(p, "UPDATE os_meta SET value = '%d' WHERE name = 'schema_version'",
                           OS_SCHEMA_VERSION);
        if ((rv = exec_sql(c, sql))) goto fail_txn;
    }
    if (os_txn_commit(c, p, &e) != OS_TXN_COMMITTED) {
        migrate_failed(s, conf, e);
        *why = "the store's schema could not be made (see the error log)";
        return APR_EGENERAL;
    }
    if (version < OS_SCHEMA_VERSION) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ordersync: brought the store's schema from "
                     "version %d to %d", version, OS_SCHEMA_VERSION);
    }
    return APR_SUCCESS;

fail_txn:
    e = os_conn_error(c, rv);
    os_txn_rollback(c);
    migrate_failed(s, conf, e);
    *why = "the store's schema could not be made (see the error log)";
    return APR_EGENERAL;
fail:
    migrate_failed(s, conf, os_conn_error(c, rv));
    *why = "the store cannot be written (see the error log)";
    return APR_EGENERAL;
}

/* SQLite properties of the file, set before its first table: 2 KB pages, because each order
 * touches about a dozen b-trees and every touched page is written to the WAL whole
 * (measured: a third more orders per second than with 4 KB pages), and WAL, so readers
 * never wait for the writer. SQLite answers the journal mode it got: on a filesystem
 * without shared memory that is not WAL, and the store is refused rather than run with
 * other guarantees than the ones documented. */
static apr_status_t sqlite_file_setup(server_rec *s, os_conn_t *c, apr_pool_t *p,
                                      const char **why)
{
    const char *mode;
    os_exec_any(c, p, "PRAGMA page_size=2048");
    mode = select_text(c, p, "PRAGMA journal_mode=WAL");
    /* no answer at all: a file that cannot be written, which the migration reports */
    if (mode && strcasecmp(mode, "wal")) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: the SQLite store cannot use WAL "
                     "(journal mode \"%s\"; a filesystem without shared memory or locking, "
                     "e.g. NFS?): move DBDParams to a local filesystem", mode);
        *why = "the SQLite store cannot use WAL (see the error log)";
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t os_conn_ready(server_rec *s, const os_store_conf_t *conf, os_conn_t *c,
                           apr_pool_t *p, int writer, const char **why)
{
    const char *dummy;
    int i, rv;

    if (!why) why = &dummy;
    if (c->failed) {
        /* a failure may have been the session's end: apr_dbd_check_conn reconnects
         * (PostgreSQL) or answers that the connection is unusable */
        if ((rv = apr_dbd_check_conn(c->driver, p, c->handle)) != APR_SUCCESS) {
            *why = "the store's connection is lost";
            return APR_EGENERAL;
        }
        c->failed = 0;
        /* SQLite: a prepared statement fails for good once the schema changed under it
         * (an index or trigger added by hand, a VACUUM): prepare them again */
        if (!c->is_pg && c->ready) {
            apr_int64_t cookie = 0;
            if (os_select_int(c, p, "PRAGMA schema_version", &cookie) == 0
                && cookie != c->schema_cookie) {
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ordersync: the store's schema "
                             "changed: preparing its statements again");
                sqlite_schema_reload(c, p);
                c->ready = 0;
            }
        }
    }
    if (c->ready == 2 || (c->ready == 1 && !writer)) return APR_SUCCESS;
    if (!c->is_pg) {
        /* apr-util's driver answers SQLITE_BUSY by sleeping 100 ms and trying again, 15
         * times, and every try waits SQLite's busy timeout anew: share the store timeout
         * among the 16 tries so the whole wait stays near it (never below the driver's
         * own 1.5 s of sleeps) */
        int ms = conf->timeout_ms;
        os_exec_any(c, p, apr_psprintf(p, "PRAGMA busy_timeout=%d",
                                       ms > 1500 + 16 ? (ms - 1500) / 16 : 1));
        /* statement journals in memory, not a temp file per transaction */
        os_exec_any(c, p, "PRAGMA temp_store=MEMORY");
        os_exec_any(c, p, conf->durability ? "PRAGMA synchronous=FULL"
                                           : "PRAGMA synchronous=NORMAL");
        if (os_checkpoints_in_background) {
            os_exec_any(c, p, apr_psprintf(p, "PRAGMA wal_autocheckpoint=%d",
                                           OS_CKPT_SAFETY_PAGES));
        }
        if (writer && sqlite_file_setup(s, c, p, why) != APR_SUCCESS) return APR_EGENERAL;
    }
    if (writer) {
        if (migrate(s, conf, c, p, why) != APR_SUCCESS) return APR_EGENERAL;
    }
    else {
        int version = 0;
        /* a reader never writes: a store without its schema yet (no order was ever
         * committed) is one without orders */
        if (schema_version(c, p, &version) != 0 || version < OS_SCHEMA_VERSION) {
            *why = "the store has no orders yet";
            return APR_NOTFOUND;
        }
        if (version > OS_SCHEMA_VERSION) {
            *why = "the store's schema is newer than this module";
            return APR_EGENERAL;
        }
    }
    if (!c->is_pg && conf->max_size > 0) {
        /* a cap on the file rather than a full disk: SQLite answers "database or disk is
         * full" and the intake 503, as it would when the disk is really full */
        apr_int64_t page = 0;
        if (os_select_int(c, p, "PRAGMA page_size", &page) != 0 || page <= 0) page = 4096;
        os_exec_any(c, p, apr_psprintf(p, "PRAGMA max_page_count=%" APR_INT64_T_FMT,
                                       conf->max_size / page));
    }
    if (!c->ready && (rv = prepare_all(c, p, &i))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "ordersync: preparing statement %d "
                     "failed: %s", i, os_conn_error(c, rv));
        *why = "the store's statements cannot be prepared (see the error log)";
        return APR_EGENERAL;
    }
    c->ready = writer ? 2 : 1;
    return APR_SUCCESS;
}

apr_status_t os_thread_pool(apr_pool_t **out, apr_pool_t *parent)
{
    apr_allocator_t *a;
    apr_thread_mutex_t *m;
    apr_status_t rv;

    if ((rv = apr_allocator_create(&a)) != APR_SUCCESS) return rv;
    if ((rv = apr_pool_create_ex(out, parent, NULL, a)) != APR_SUCCESS) {
        apr_allocator_destroy(a);
        return rv;
    }
    apr_allocator_owner_set(a, *out);
    if (apr_thread_mutex_create(&m, APR_THREAD_MUTEX_DEFAULT, *out) == APR_SUCCESS)
        apr_allocator_mutex_set(a, m);
    return APR_SUCCESS;
}

os_conn_t *os_conn_of(ap_dbd_t *dbd)
{
    os_conn_t *c = apr_hash_get(dbd->prepared, OS_CONN_KEY, APR_HASH_KEY_STRING);
    if (!c) {
        c = apr_pcalloc(dbd->pool, sizeof(*c));
        c->driver = dbd->driver;
        c->handle = dbd->handle;
        /* the statements in a pool of their own: the writer prepares them in its thread,
         * and under prefork the connection's pool shares the child's allocator, which has
         * no lock */
        if (os_thread_pool(&c->pool, dbd->pool) != APR_SUCCESS) c->pool = dbd->pool;
        c->is_pg = !strcmp(apr_dbd_name(dbd->driver), "pgsql");
        apr_hash_set(dbd->prepared, OS_CONN_KEY, APR_HASH_KEY_STRING, c);
    }
    return c;
}
