/* mod_ordersync_writer.c: the writer of each process and the path of an order to the hub's
 * committer (see mod_ordersync_writer.h for the invariants, mod_ordersync_board.h for the
 * board). A request hands its order to the committer through the board; what cannot go
 * that way (no board, no committer yet, an order bigger than a slot, every slot in use) is
 * queued for its own process's writer, which commits it under the store's write lock.
 * SQLite keeps a page cache per connection and drops it whenever another connection has
 * written, so one writer for every process commits larger batches for less CPU. */
#include "mod_ordersync_writer.h"
#include "mod_ordersync_store_intake.h"
#include "mod_ordersync_board.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"
#include "apr_thread_cond.h"
#include "apr_atomic.h"
#include "apr_global_mutex.h"
#include "apr_lib.h"
#include "util_mutex.h"

#include <stdlib.h>
#include <unistd.h>

APLOG_USE_MODULE(ordersync);

#define OS_MUTEX_TYPE "ordersync-store"
#define OS_LEASE_RETRY apr_time_from_msec(100)
/* How long the local writer waits for orders still on their way before it commits. */
#define OS_COMMIT_LINGER apr_time_from_msec(1)

/* An order queued for this process's writer: a copy (strings included, one allocation)
 * that the request and the writer each hold until they are done with it. */
typedef struct os_ticket_t {
    struct os_ticket_t *next;
    os_intake_op_t op;
    int refs;
    int done;                         /* the writer answered */
    int in_hand;                      /* the writer took it off the queue */
} os_ticket_t;

struct os_store_t {
    server_rec *s;
    os_store_conf_t conf;
    apr_pool_t *pool;
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *work;          /* the writer waits here for orders */
    apr_thread_cond_t *answered;      /* requests wait here for their ticket */
    os_ticket_t *head, *tail;
    int waiting;                      /* tickets in the queue */
    volatile apr_uint32_t coming;     /* requests of this process reading and checking one */
    int stopping;
    apr_thread_t *thread;
    ap_dbd_t *dbd;                    /* the writer's own connection */
    ap_dbd_t *ckpt_dbd;               /* lent to the checkpoint job */
    ap_dbd_t *ckpt_spare;             /* opened for it in child_init, set up by the writer */
    os_queue_count_t qc;
    int hub;                          /* this hub's number, the same in every process */
    volatile apr_uint32_t committing; /* this writer holds the hub's lease */
    apr_time_t lease_at;              /* when to try for it again */
    int failing;                      /* the last commit failed (logged once) */
    long refused;                     /* orders refused since it started failing */
    os_bg_op_t *bg_head, *bg_tail;    /* background writes waiting (under mu) */
    void (*on_jobs)(void *);          /* the dispatcher's wake-up */
    void *on_jobs_baton;
    apr_uint32_t jobs_seen;           /* the committer: the board's jobs count passed on */
};

typedef struct {
    server_rec *s;
    const os_store_conf_t *conf;
} os_hub_t;

static apr_global_mutex_t *store_mutex;
static apr_array_header_t *hubs;      /* os_hub_t, from post_config */
static os_store_t **stores;           /* per hub, this process */

/* ---- the hubs and the write lock ---------------------------------------------------- */

os_store_t *os_store_of(server_rec *s)
{
    int i;
    if (!hubs || !stores) return NULL;
    for (i = 0; i < hubs->nelts; i++) {
        if (APR_ARRAY_IDX(hubs, i, os_hub_t).s == s) return stores[i];
    }
    return NULL;
}

const os_store_conf_t *os_store_conf_get(os_store_t *st) { return &st->conf; }
int os_store_hub(os_store_t *st) { return st->hub; }

int os_store_committing(os_store_t *st)
{
    return apr_atomic_read32(&st->committing) != 0;
}

ap_dbd_t *os_store_ckpt_dbd(os_store_t *st)
{
    return apr_atomic_casptr((volatile void **)&st->ckpt_dbd, NULL, NULL);
}

const char *os_store_lock(apr_interval_time_t wait, int *locked)
{
    apr_status_t rv;
    *locked = 0;
    if (!store_mutex) return NULL;
    rv = apr_global_mutex_timedlock(store_mutex, wait);
    if (rv == APR_SUCCESS) {
        *locked = 1;
        return NULL;
    }
    return rv == APR_TIMEUP ? "timed out waiting for the store's write lock"
                            : "cannot take the store's write lock";
}

void os_store_unlock(int locked)
{
    if (locked) apr_global_mutex_unlock(store_mutex);
}

/* ---- committing ---------------------------------------------------------------------- */

/* The checkpoint job's connection, opened by the writer once the store is set up (the job
 * never asks mod_dbd for one: with DBDMax connections in use that would block for ever) and
 * published only when ready, since the job may look at any moment. */
static void ckpt_open(os_store_t *st, apr_pool_t *p)
{
    ap_dbd_t *ck = st->ckpt_spare;
    st->ckpt_spare = NULL;
    if (!ck && (ck = os_dbd_open(st->pool, st->s))) os_conn_of(ck);
    if (ck && os_conn_ready(st->s, &st->conf, os_conn_of(ck), p, 0, NULL) != APR_SUCCESS) {
        os_dbd_close(st->s, ck);
        ck = NULL;
    }
    if (ck) apr_atomic_casptr((volatile void **)&st->ckpt_dbd, ck, NULL);
}

/* The writer's connection, opened and set up (schema current) when needed; NULL with
 * *fail set when it cannot be. */
static os_conn_t *writer_conn(os_store_t *st, apr_pool_t *p, const char **fail)
{
    os_conn_t *c;
    int tries;
    /* mod_dbd, moments after a graceful restart under prefork, was seen answering no
     * connection once, without a word, and one a few milliseconds later: an order is not
     * refused for that */
    for (tries = 0; !st->dbd && tries < 5; tries++) {
        if (tries) apr_sleep(apr_time_from_msec(20));
        st->dbd = os_dbd_open(st->pool, st->s);
    }
    if (!st->dbd) {
        *fail = "cannot open the store (see mod_dbd's message above)";
        return NULL;
    }
    c = os_conn_of(st->dbd);
    if (os_conn_ready(st->s, &st->conf, c, p, 1, fail) != APR_SUCCESS) return NULL;
    if (!st->ckpt_dbd && !c->is_pg && os_checkpoints_in_background) ckpt_open(st, p);
    return c;
}

/* Delivery work was committed: the dispatcher of this process is woken when this process
 * commits for all (or there is no board and every process delivers); otherwise the
 * committer's process is told through the board. */
static void announce_jobs(os_store_t *st)
{
    if (apr_atomic_read32(&st->committing) || !os_board_ready(st->hub)) {
        if (st->on_jobs) st->on_jobs(st->on_jobs_baton);
    }
    else {
        os_board_jobs_added(st->hub);
    }
}

/* Commits ops[0..n) with the writer's connection (the write lock held, or lock_failed set),
 * and logs a failing store once per incident. An order refused while others of its batch
 * were committed is that order's problem (a constraint, a trigger), not the store's: it is
 * logged on its own, and never marks the orders committed after it as refused. */
static void writer_commit(os_store_t *st, apr_pool_t *p, os_intake_op_t **ops, int n,
                          const char *lock_failed)
{
    const char *fail = lock_failed, *first = NULL;
    os_conn_t *c = NULL;
    int i, bad = 0;

    if (!fail && (c = writer_conn(st, p, &fail))) {
        st->qc.sole = apr_atomic_read32(&st->committing) != 0;
        os_intake_commit(st->s, &st->conf, c, p, &st->qc, ops, n);
    }
    for (i = 0; i < n; i++) {
        if (!fail && (ops[i]->result == OS_INTAKE_CREATED
                      || ops[i]->result == OS_INTAKE_NEW_VERSION)) {
            announce_jobs(st);
            break;
        }
    }
    for (i = 0; i < n; i++) {
        if (fail) {
            ops[i]->result = OS_INTAKE_UNAVAILABLE;
            apr_cpystrn(ops[i]->error, fail, sizeof(ops[i]->error));
        }
        if (ops[i]->result == OS_INTAKE_UNAVAILABLE || ops[i]->result == OS_INTAKE_UNKNOWN) {
            if (!first) first = apr_pstrdup(p, ops[i]->error);
            bad++;
        }
    }
    if (bad && bad < n) {
        for (i = 0; i < n; i++) {
            if (ops[i]->result != OS_INTAKE_UNAVAILABLE && ops[i]->result != OS_INTAKE_UNKNOWN)
                continue;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, st->s, "ordersync: order %s/%s could "
                         "not be stored (503), the rest of its batch was: %s",
                         ops[i]->source_id, ops[i]->reference, ops[i]->error);
        }
    }
    if (bad == n && !st->failing) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, st->s, "ordersync: the store could not commit "
                     "orders (refused with 503 until it can): %s (the store: %s)", first,
                     st->conf.name);
        st->failing = 1;
    }
    else if (bad == n) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, st->s, "ordersync: the store still cannot "
                     "commit: %s", first);
    }
    else if (st->failing) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, st->s, "ordersync: the store commits again "
                     "(%ld orders were refused meanwhile)", st->refused);
        st->failing = 0;
        st->refused = 0;
    }
    st->refused += bad;
}

/* ---- background writes ------------------------------------------------------------ */

/* ops from `first`, all of them or only the first, in one transaction. */
static os_txn_outcome_e bg_txn(os_store_t *st, os_conn_t *c, apr_pool_t *p, os_bg_op_t *first,
                               int alone, const char **why)
{
    os_bg_op_t *op;
    int rv;
    if ((rv = os_txn_begin(c, p, &st->conf))) {
        *why = apr_pstrdup(p, os_conn_error(c, rv));
        return OS_TXN_FAILED;
    }
    for (op = first; op; op = alone ? NULL : op->next) {
        if ((rv = op->fn(c, p, op->baton))) {
            *why = apr_pstrdup(p, os_conn_error(c, rv));
            os_txn_rollback(c);
            return OS_TXN_FAILED;
        }
    }
    return os_txn_commit(c, p, why);
}

/* Runs the background writes waiting (the write lock held, or lock_failed set) and answers
 * them. */
static void run_background(os_store_t *st, apr_pool_t *p, const char *lock_failed)
{
    os_bg_op_t *list, *op;
    const char *why = lock_failed;
    os_conn_t *c = NULL;
    os_txn_outcome_e all = OS_TXN_FAILED;
    int wake = 0;

    apr_thread_mutex_lock(st->mu);
    list = st->bg_head;
    st->bg_head = st->bg_tail = NULL;
    apr_thread_mutex_unlock(st->mu);
    if (!list) return;
    if (!why && (c = writer_conn(st, p, &why))) all = bg_txn(st, c, p, list, 0, &why);
    for (op = list; op; op = op->next) {
        op->outcome = all;
        if (all == OS_TXN_FAILED && c && list->next) {
            /* one op's failure is its own: each runs again alone */
            why = NULL;
            op->outcome = bg_txn(st, c, p, op, 1, &why);
        }
        if (op->outcome != OS_TXN_COMMITTED)
            apr_cpystrn(op->error, why ? why : "the store failed", sizeof(op->error));
        else if (op->wake)
            wake = 1;
    }
    if (wake) announce_jobs(st);
    apr_thread_mutex_lock(st->mu);
    for (op = list; op; op = op->next) op->done = 1;
    apr_thread_cond_broadcast(st->answered);
    apr_thread_mutex_unlock(st->mu);
}

/* The writer stopped: what is still waiting was not written. */
static void fail_background(os_store_t *st)
{
    os_bg_op_t *op;
    apr_thread_mutex_lock(st->mu);
    for (op = st->bg_head; op; op = op->next) {
        op->outcome = OS_TXN_FAILED;
        apr_cpystrn(op->error, "the server is stopping", sizeof(op->error));
        op->done = 1;
    }
    st->bg_head = st->bg_tail = NULL;
    apr_thread_cond_broadcast(st->answered);
    apr_thread_mutex_unlock(st->mu);
}

os_txn_outcome_e os_store_background(os_store_t *st, os_bg_op_t *op)
{
    op->next = NULL;
    op->done = 0;
    op->error[0] = '\0';
    apr_thread_mutex_lock(st->mu);
    if (st->stopping) {
        apr_thread_mutex_unlock(st->mu);
        apr_cpystrn(op->error, "the server is stopping", sizeof(op->error));
        return op->outcome = OS_TXN_FAILED;
    }
    if (st->bg_tail) st->bg_tail->next = op; else st->bg_head = op;
    st->bg_tail = op;
    apr_thread_cond_signal(st->work);
    if (apr_atomic_read32(&st->committing)) os_board_wake_committer(st->hub);
    while (!op->done) apr_thread_cond_wait(st->answered, st->mu);
    apr_thread_mutex_unlock(st->mu);
    return op->outcome;
}

void os_store_on_jobs(os_store_t *st, void (*fn)(void *), void *baton)
{
    apr_thread_mutex_lock(st->mu);
    st->on_jobs_baton = baton;
    st->on_jobs = fn;
    apr_thread_mutex_unlock(st->mu);
}


static void ticket_release(os_ticket_t *t)
{
    if (--t->refs == 0) free(t);
}

/* Takes up to max tickets off the queue (the writer's mutex held). */
static int take_tickets(os_store_t *st, os_intake_op_t **ops, os_ticket_t **taken, int max)
{
    int n = 0;
    while (st->head && n < max) {
        os_ticket_t *t = st->head;
        st->head = t->next;
        if (!st->head) st->tail = NULL;
        st->waiting--;
        t->next = NULL;
        t->in_hand = 1;
        taken[n] = t;
        ops[n++] = &t->op;
    }
    return n;
}

static void finish_tickets(os_store_t *st, os_ticket_t **taken, int n)
{
    int i;
    apr_thread_mutex_lock(st->mu);
    for (i = 0; i < n; i++) {
        taken[i]->done = 1;
        ticket_release(taken[i]);
    }
    apr_thread_cond_broadcast(st->answered);
    apr_thread_mutex_unlock(st->mu);
}

/* The committer: its own process's queued orders and every filled slot, in one transaction
 * under the write lock (taken before the slots, so a slot is only taken when its commit can
 * start at once), or a short wait for work. */
static void committer_step(os_store_t *st, apr_pool_t *p, os_intake_op_t **ops,
                           os_ticket_t **taken, os_board_item_t *items)
{
    int max = st->conf.batch_max, nt, nb, i, locked;
    const char *lock_failed;

    os_board_sweep(st->hub);
    apr_thread_mutex_lock(st->mu);
    nt = st->head || st->bg_head ? 1 : 0;
    apr_thread_mutex_unlock(st->mu);
    if (!nt) os_board_wait_work(st->hub, OS_LEASE_RETRY);
    if (st->stopping) return;
    {
        /* delivery work another process committed: pass it on to this one's dispatcher */
        apr_uint32_t jobs = os_board_jobs(st->hub);
        if (jobs != st->jobs_seen) {
            st->jobs_seen = jobs;
            if (st->on_jobs) st->on_jobs(st->on_jobs_baton);
        }
    }
    lock_failed = os_store_lock(apr_time_from_msec(st->conf.timeout_ms), &locked);
    apr_thread_mutex_lock(st->mu);
    nt = take_tickets(st, ops, taken, max);
    apr_thread_mutex_unlock(st->mu);
    /* with the lock refused nothing is taken from the board: its requests time out and
     * answer that nothing was stored */
    nb = lock_failed ? 0 : os_board_collect(st->hub, p, items, max - nt);
    for (i = 0; i < nb; i++) ops[nt + i] = items[i].op;
    if (nt + nb) writer_commit(st, p, ops, nt + nb, lock_failed);
    for (i = 0; i < nb; i++) os_board_answer(st->hub, &items[i]);
    if (nt) finish_tickets(st, taken, nt);
    run_background(st, p, lock_failed);
    os_store_unlock(locked);
}

/* A writer without the lease: commits its own process's queue under the write lock. */
static void local_step(os_store_t *st, apr_pool_t *p, os_intake_op_t **ops, os_ticket_t **taken)
{
    int n, locked = 0;
    const char *lock_failed;

    /* A commit costs about what five orders cost (every b-tree page it touches goes to the
     * WAL whole), so committing orders one by one would spend the CPU the requests need.
     * While requests of this process are still reading and checking orders, wait a moment
     * for them to join this batch; never when none is on its way. */
    if (apr_atomic_read32(&st->coming) && st->waiting < st->conf.batch_max) {
        apr_time_t until = apr_time_now() + OS_COMMIT_LINGER;
        do {
            apr_interval_time_t left = until - apr_time_now();
            if (left <= 0) break;
            apr_thread_cond_timedwait(st->work, st->mu, left);
        } while (!st->stopping && st->head && apr_atomic_read32(&st->coming)
                 && st->waiting < st->conf.batch_max);
        if (!st->head && !st->bg_head) return;
    }
    /* Take the write lock first and the batch after: orders that arrive while another
     * process commits join this batch instead of waiting for the next turn. */
    apr_thread_mutex_unlock(st->mu);
    lock_failed = os_store_lock(apr_time_from_msec(st->conf.timeout_ms), &locked);
    apr_thread_mutex_lock(st->mu);
    n = take_tickets(st, ops, taken, st->conf.batch_max);
    apr_thread_mutex_unlock(st->mu);
    if (n) writer_commit(st, p, ops, n, lock_failed);
    if (n) finish_tickets(st, taken, n);
    run_background(st, p, lock_failed);
    os_store_unlock(locked);
    apr_thread_mutex_lock(st->mu);
}

static void *APR_THREAD_FUNC writer_main(apr_thread_t *thd, void *data)
{
    os_store_t *st = data;
    int max = st->conf.batch_max;
    os_intake_op_t **ops = apr_palloc(st->pool, sizeof(*ops) * (apr_size_t)max);
    os_ticket_t **taken = apr_palloc(st->pool, sizeof(*taken) * (apr_size_t)max);
    os_board_item_t *items = apr_palloc(st->pool, sizeof(*items) * (apr_size_t)max);
    apr_pool_t *p;

    apr_pool_create(&p, st->pool);
    apr_thread_mutex_lock(st->mu);
    while (!st->stopping) {
        if (os_board_ready(st->hub) && !st->committing && apr_time_now() >= st->lease_at) {
            st->lease_at = apr_time_now() + OS_LEASE_RETRY;
            apr_thread_mutex_unlock(st->mu);
            if (os_board_lease_try(st->hub)) {
                apr_atomic_set32(&st->committing, 1);
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, st->s, "ordersync: process %d now "
                             "commits the orders of every process", (int)getpid());
            }
            apr_thread_mutex_lock(st->mu);
        }
        if (st->committing) {
            apr_thread_mutex_unlock(st->mu);
            committer_step(st, p, ops, taken, items);
            apr_pool_clear(p);
            apr_thread_mutex_lock(st->mu);
            continue;
        }
        if (!st->head && !st->bg_head) {
            if (os_board_ready(st->hub))  /* wake up to try for the lease again */
                apr_thread_cond_timedwait(st->work, st->mu, OS_LEASE_RETRY);
            else
                apr_thread_cond_wait(st->work, st->mu);
            continue;
        }
        local_step(st, p, ops, taken);
        apr_pool_clear(p);
    }
    apr_thread_mutex_unlock(st->mu);
    if (st->committing) os_board_lease_release(st->hub);
    fail_background(st);
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
    if (st->committing) os_board_wake_committer(st->hub);
    apr_thread_join(&rv, st->thread);
    /* give the connections back before mod_dbd destroys its pool of connections (the
     * checkpoint job's gate closed before this ran) */
    if (st->dbd) os_dbd_close(st->s, st->dbd);
    if (st->ckpt_dbd) os_dbd_close(st->s, st->ckpt_dbd);
    if (st->ckpt_spare) os_dbd_close(st->s, st->ckpt_spare);
    st->dbd = st->ckpt_dbd = st->ckpt_spare = NULL;
    return APR_SUCCESS;
}

/* ---- hooks ----------------------------------------------------------------------------- */

void os_store_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, OS_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

int os_checkpoints_register(apr_pool_t *pconf, apr_array_header_t *servers);

int os_store_post_config(apr_pool_t *pconf, server_rec *s, apr_array_header_t *servers,
                         os_store_conf_fn conf)
{
    apr_status_t rv;
    int i;

    os_dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    os_dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    os_dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    store_mutex = NULL;
    os_checkpoints_in_background = 0;
    hubs = apr_array_make(pconf, servers->nelts, sizeof(os_hub_t));
    for (i = 0; i < servers->nelts; i++) {
        os_hub_t *h = apr_array_push(hubs);
        h->s = APR_ARRAY_IDX(servers, i, server_rec *);
        h->conf = conf(h->s);
    }
    if (!hubs->nelts) return OK;
    rv = ap_global_mutex_create(&store_mutex, NULL, OS_MUTEX_TYPE, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) return HTTP_INTERNAL_SERVER_ERROR;
    if ((rv = os_board_create(pconf, hubs->nelts)) != APR_SUCCESS && rv != APR_ENOTIMPL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "ordersync: no shared memory for the "
                     "committer: every process commits its own orders, which is slower");
    }
    os_checkpoints_in_background = os_checkpoints_register(pconf, servers);
    if (!os_checkpoints_in_background) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ordersync: no mod_watchdog: SQLite "
                     "stores checkpoint inside commits, which slows the intake");
    }
    return OK;
}

void os_checkpoints_child_init(apr_pool_t *pchild, server_rec *s);

void os_store_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i;

    stores = NULL;
    if (!hubs || !hubs->nelts) return;
    if (store_mutex) {
        apr_status_t rv = apr_global_mutex_child_init(&store_mutex,
                                                      apr_global_mutex_lockfile(store_mutex), pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "ordersync: cannot attach the store's "
                         "write lock in this process; writers will rely on the store's own locking");
            store_mutex = NULL;
        }
    }
    os_board_child_init();
    stores = apr_pcalloc(pchild, sizeof(*stores) * (apr_size_t)hubs->nelts);
    for (i = 0; i < hubs->nelts; i++) {
        os_hub_t *h = &APR_ARRAY_IDX(hubs, i, os_hub_t);
        os_store_t *st;
        apr_status_t rv;

        if (!os_dbd_open) continue;
        st = apr_pcalloc(pchild, sizeof(*st));
        st->s = h->s;
        st->conf = *h->conf;
        st->hub = i;
        /* the writer's memory has an allocator of its own: under prefork the child's has
         * no lock, and the main thread allocates from it while the writer works */
        if (os_thread_pool(&st->pool, pchild) != APR_SUCCESS) continue;
        /* the connections are opened here, in the main thread, for the same reason:
         * mod_dbd makes a new connection in the pool of its connection list */
        if ((st->dbd = os_dbd_open(st->pool, h->s))) {
            os_conn_t *c = os_conn_of(st->dbd);
            if (!c->is_pg && os_checkpoints_in_background
                && (st->ckpt_spare = os_dbd_open(st->pool, h->s)))
                os_conn_of(st->ckpt_spare);
        }
        st->qc.pool = st->pool;
        st->qc.sources = apr_hash_make(st->pool);
        apr_thread_mutex_create(&st->mu, APR_THREAD_MUTEX_DEFAULT, pchild);
        apr_thread_cond_create(&st->work, pchild);
        apr_thread_cond_create(&st->answered, pchild);
        rv = apr_thread_create(&st->thread, NULL, writer_main, st, pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, h->s, "ordersync: cannot start the store's "
                         "writer thread in this process: its orders are refused with 503");
            continue;
        }
        apr_pool_pre_cleanup_register(pchild, st, store_stop);
        stores[i] = st;
    }
    /* after the writers: pre-cleanups run last registered first, so the checkpoint job's
     * gate closes before the writers give their connections back */
    os_checkpoints_child_init(pchild, s);
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

extern module AP_MODULE_DECLARE_DATA ordersync_module;

void os_store_expect(request_rec *r)
{
    os_store_t *st = os_store_of(r->server);
    os_coming_t *c;

    if (!st || ap_get_module_config(r->request_config, &ordersync_module)) return;
    c = apr_palloc(r->pool, sizeof(*c));
    c->st = st;
    c->pending = 1;
    apr_atomic_inc32(&st->coming);
    ap_set_module_config(r->request_config, &ordersync_module, c);
    apr_pool_cleanup_register(r->pool, c, coming_cleanup, apr_pool_cleanup_null);
}

static void coming_arrived(void *baton)
{
    request_rec *r = baton;
    os_coming_t *c = ap_get_module_config(r->request_config, &ordersync_module);
    if (c && c->pending) {
        c->pending = 0;
        apr_atomic_dec32(&c->st->coming);
    }
}

/* Queues a copy of the order for this process's writer and waits for its answer: at most
 * the store timeout while it is queued, and the margin more once the writer has it. */
static apr_interval_time_t answer_margin(os_store_t *st);

static void commit_local(os_store_t *st, request_rec *r, os_intake_op_t *op)
{
    const char *str[7] = { op->source_id, op->reference, op->sent_reference, op->origin,
                           op->body, op->digest, NULL };
    const char **dst[6];
    apr_size_t len[6], total = sizeof(os_ticket_t);
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(st->conf.timeout_ms);
    int i, margin_used = 0;
    os_ticket_t *t;
    char *at;

    for (i = 0; i < 6; i++) total += (len[i] = strlen(str[i]) + 1);
    if (!(t = calloc(1, total))) {
        op->result = OS_INTAKE_UNAVAILABLE;
        apr_cpystrn(op->error, "out of memory", sizeof(op->error));
        return;
    }
    t->op = *op;
    dst[0] = &t->op.source_id; dst[1] = &t->op.reference; dst[2] = &t->op.sent_reference;
    dst[3] = &t->op.origin; dst[4] = &t->op.body; dst[5] = &t->op.digest;
    at = (char *)(t + 1);
    for (i = 0; i < 6; i++) {
        memcpy(at, str[i], len[i]);
        *dst[i] = at;
        at += len[i];
    }
    t->refs = 2;

    apr_thread_mutex_lock(st->mu);
    coming_arrived(r);
    if (st->tail) st->tail->next = t; else st->head = t;
    st->tail = t;
    st->waiting++;
    /* the writer waits for the first order, then (lingering) for the last one on its way */
    if (st->waiting == 1 || !apr_atomic_read32(&st->coming)
        || st->waiting >= st->conf.batch_max) {
        apr_thread_cond_signal(st->work);
    }
    if (apr_atomic_read32(&st->committing)) os_board_wake_committer(st->hub);
    while (!t->done) {
        apr_interval_time_t left = deadline - apr_time_now();
        if (left > 0) {
            apr_thread_cond_timedwait(st->answered, st->mu, left);
            continue;
        }
        if (!t->in_hand) {
            /* still queued: take it out, it was never written */
            os_ticket_t **pp, *prev = NULL;
            for (pp = &st->head; *pp; prev = *pp, pp = &(*pp)->next) {
                if (*pp == t) {
                    *pp = t->next;
                    if (st->tail == t) st->tail = prev;
                    st->waiting--;
                    t->refs--;        /* the writer will never see it */
                    break;
                }
            }
            t->op.result = OS_INTAKE_UNAVAILABLE;
            apr_cpystrn(t->op.error, "timed out waiting for the store", sizeof(t->op.error));
            break;
        }
        if (!margin_used) {
            deadline += answer_margin(st);
            margin_used = 1;
            continue;
        }
        /* in the writer's hands and no answer: it may still commit */
        t->op.result = OS_INTAKE_UNKNOWN;
        apr_cpystrn(t->op.error, "the writer did not answer in time", sizeof(t->op.error));
        break;
    }
    op->result = t->op.result;
    op->version = t->op.version;
    memcpy(op->order_id, t->op.order_id, sizeof(op->order_id));
    memcpy(op->delivery_state, t->op.delivery_state, sizeof(op->delivery_state));
    memcpy(op->error, t->op.error, sizeof(op->error));
    ticket_release(t);
    apr_thread_mutex_unlock(st->mu);
}

/* How long past the store timeout a request waits for the writer's answer: a moment, and on
 * SQLite at least the ~1.6 s that apr-util's driver spends sleeping between busy retries
 * whatever the timeout, so that a lock held elsewhere answers "nothing stored" rather than
 * "unknown". */
static apr_interval_time_t answer_margin(os_store_t *st)
{
    apr_interval_time_t floor = apr_time_from_msec(1700) - apr_time_from_msec(st->conf.timeout_ms);
    return OS_ANSWER_MARGIN + (floor > 0 ? floor : 0);
}

int os_store_intake_id_ok(const char *id)
{
    apr_size_t n = 0;
    for (; id[n]; n++) {
        if (!apr_isalnum(id[n]) && !strchr("-_.:", id[n])) return 0;
    }
    return n > 0 && n <= OS_INTAKE_ID_MAX;
}

void os_store_intake(request_rec *r, os_intake_op_t *op)
{
    os_store_t *st = os_store_of(r->server);

    op->error[0] = '\0';
    op->order_id[0] = op->delivery_state[0] = '\0';
    op->version = 0;
    if (op->intake_id && os_store_intake_id_ok(op->intake_id))
        apr_cpystrn(op->id, op->intake_id, sizeof(op->id));
    else
        os_new_id(op->id);
    if (!st) {
        op->result = OS_INTAKE_UNAVAILABLE;
        apr_cpystrn(op->error, "this process has no store writer (see the error log)",
                    sizeof(op->error));
        return;
    }
    if (!os_board_submit(st->hub, op, apr_time_from_msec(st->conf.timeout_ms),
                         answer_margin(st), coming_arrived, r))
        commit_local(st, r, op);
}
