/* mod_ordersync_checkpoint.c: SQLite checkpoints in the background.
 *
 * SQLite copies the WAL back into the database file (a checkpoint) by default inside the
 * commit that takes the WAL past 1,000 pages: that commit's requests wait for the copy and
 * two fsyncs while every writer waits for the write lock (measured: the intake ran a third
 * slower). Instead a singleton watchdog job checkpoints every tick (100 ms), outside the
 * write lock, and writers only append. What was appended during that copy is copied once
 * more holding the write lock, briefly: SQLite starts the WAL over only at a commit that
 * finds all of it copied, and under load that moment never comes otherwise. SQLite's own
 * checkpoint stays on at 32 MB of WAL, for the seconds in which no watchdog runs.
 *
 * Invariants: the job runs in every child but works only in the one whose writer commits
 * for all (on a board; elsewhere in each), with the connection that writer lent it (it never asks
 * mod_dbd for one, which could block for ever with DBDMax connections in use), only while
 * the gate is open (mod_watchdog's thread outlives the child's pool, and mod_dbd's
 * connections go with it), and never waits for the write lock longer than a second. */
#include "mod_ordersync_writer.h"
#include "mod_ordersync_board.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_atomic.h"
#include "apr_thread_mutex.h"
#include "mod_watchdog.h"
#include <sqlite3.h>

APLOG_USE_MODULE(ordersync);

#define OS_WATCHDOG "ordersync-store"
#define OS_CKPT_LOCK_WAIT apr_time_from_sec(1)
#define OS_CKPT_BACKOFF_MAX apr_time_from_sec(60)

typedef struct {
    server_rec *s;
    apr_time_t retry_at;              /* after a failure: not before then */
    apr_interval_time_t backoff;
    apr_int64_t last_log;             /* the WAL's frames after the last tick */
} os_ckpt_t;

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
 * WAL's frames and those now in the database file. Called through SQLite itself, not
 * apr_dbd: apr-util's SQLite driver holds one mutex for the whole process around every
 * statement of every connection, so a checkpoint run through it (a few milliseconds of
 * copying and two fsyncs, every tick) held up the committer's statements in the same
 * process: measured, one request in sixteen took over 5 ms at 2,700 orders/s, p99 18 ms. */
static int wal_checkpoint(os_conn_t *c, apr_int64_t *log, apr_int64_t *done)
{
    sqlite3 *db = apr_dbd_native_handle(c->driver, c->handle);
    int nlog = 0, ndone = 0, rv;
    if (!db) return -1;
    rv = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &ndone);
    *log = nlog;
    *done = ndone;
    return rv == SQLITE_OK ? 0 : rv;
}

static apr_status_t checkpoint(os_ckpt_t *ck, apr_pool_t *p)
{
    os_store_t *st = os_store_of(ck->s);
    ap_dbd_t *dbd = st ? os_store_ckpt_dbd(st) : NULL;
    apr_int64_t log = 0, done = 0;
    const char *lock_failed;
    os_conn_t *c;
    int rv, locked;

    /* PostgreSQL, or no store set up in this process yet; and on a board only the process
     * that commits for all checkpoints, with the connection its writer lent it */
    if (!dbd || (os_board_ready(os_store_hub(st)) && !os_store_committing(st)))
        return APR_SUCCESS;
    c = os_conn_of(dbd);
    rv = wal_checkpoint(c, &log, &done);
    /* a second pass without the lock catches up on what came in during the first, so the
     * pass that holds the writers off has only the last moment's frames to copy */
    if (rv == 0 && done < log) rv = wal_checkpoint(c, &log, &done);
    /* frames appended since the last tick (a WAL that starts over is new as well): copy
     * what came in during that pass with the writers held off */
    if (rv == 0 && log > 0 && log != ck->last_log) {
        lock_failed = os_store_lock(OS_CKPT_LOCK_WAIT, &locked);
        if (!lock_failed) rv = wal_checkpoint(c, &log, &done);
        os_store_unlock(locked);
    }
    ck->last_log = log;
    if (rv == 0) {
        ck->backoff = 0;
        return APR_SUCCESS;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, ck->s, "ordersync: checkpoint failed: %s",
                 os_conn_error(c, rv));
    /* a store that cannot be written is the writer's to report; here it is tried again at
     * growing intervals rather than every tick */
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

/* post_config: the checkpoint job of each server with a hub; 0 when there is no watchdog. */
int os_checkpoints_register(apr_pool_t *pconf, apr_array_header_t *servers);
int os_checkpoints_register(apr_pool_t *pconf, apr_array_header_t *servers)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    ap_watchdog_t *wd = NULL;
    int i;

    if (!get_instance || !register_callback) return 0;
    /* in every child (not a singleton): the one whose writer commits for all does the work,
     * so the job moves with the lease at once rather than after a watchdog takeover */
    if (get_instance(&wd, OS_WATCHDOG, 0, 0, pconf) != APR_SUCCESS || !wd) return 0;
    for (i = 0; i < servers->nelts; i++) {
        os_ckpt_t *ck = apr_pcalloc(pconf, sizeof(*ck));
        ck->s = APR_ARRAY_IDX(servers, i, server_rec *);
        if (register_callback(wd, AP_WD_TM_SLICE, ck, checkpoint_tick) != APR_SUCCESS) return 0;
    }
    return 1;
}

/* child_init, after the writers started: opens the gate. */
void os_checkpoints_child_init(apr_pool_t *pchild, server_rec *s);
void os_checkpoints_child_init(apr_pool_t *pchild, server_rec *s)
{
    os_gate_t *g;
    if (!os_checkpoints_in_background) return;
    /* from the process's pool, which outlives pchild as mod_watchdog's thread does */
    g = apr_pcalloc(s->process->pool, sizeof(*g));
    apr_thread_mutex_create(&g->mu, APR_THREAD_MUTEX_DEFAULT, s->process->pool);
    g->open = 1;
    apr_pool_pre_cleanup_register(pchild, g, gate_close);
    apr_atomic_xchgptr(&bg_gate, g);
}
