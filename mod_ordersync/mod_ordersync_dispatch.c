/* mod_ordersync_dispatch.c: the dispatcher (see mod_ordersync_dispatch.h for the
 * invariants): the watchdog job, its loop, and what each answer does to its job. */
#include "mod_ordersync_dispatch.h"
#include "mod_ordersync_clougistic.h"
#include "mod_ordersync_writer.h"
#include "mod_ordersync_board.h"
#include "mod_watchdog.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_atomic.h"
#include "apr_thread_mutex.h"

#include <unistd.h>


#define OS_DISPATCH_WATCHDOG "ordersync-dispatch"
/* A call of the watchdog job works until it has been idle this long, then returns. */
#define OS_DISPATCH_SPELL apr_time_from_sec(1)
/* With nothing announced, the store is asked for due jobs this often (retries come due,
 * orders committed by a process that does not commit for all). */
#define OS_DISPATCH_POLL apr_time_from_msec(250)
#define OS_OWNERS_CHECK apr_time_from_sec(2)
#define OS_LEASE_MARGIN apr_time_from_sec(60)
#define OS_FINISH_RETRY apr_time_from_sec(1)
/* How long finished deliveries may wait for others before their outcomes are written (only
 * while every slot is taken; see gather()) */
#define OS_STEP_GATHER apr_time_from_msec(2)
#define OS_MAX_CONCURRENCY 256            /* OrderSyncDispatchConcurrency's maximum */

typedef struct {
    apr_thread_mutex_t *mu;
    int open;
} os_dgate_t;

typedef struct {
    server_rec *s;
    int hub;
    /* the settings */
    os_cg_conf_t cg;
    os_backoff_t backoff;
    int concurrency, pause_after;
    apr_interval_time_t probe_every;
    /* this process's */
    os_dgate_t *gate;
    apr_pool_t *pool;
    os_store_t *st;
    apr_array_header_t *ups;          /* os_upstream_t *, [0] the hub's (may be NULL) */
    apr_hash_t *by_source;
    CURLM *multi;
    os_transfer_t *slots;
    os_transfer_t **done;             /* judged, waiting for their completion to commit */
    int ndone;
    const char *owner, *host;         /* "<host>/<pid>/<start time>", "<host>/" */
    int active;
    volatile apr_uint32_t kick;       /* new work announced */
    volatile apr_uint32_t stopping;
    apr_time_t poll_at, owners_at, finish_at;
    apr_time_t first_done_at;         /* when the oldest of `done` was judged */
    int more;                         /* the last claim was full: claim again */
    int gather_min;                   /* outcomes written together (see gather()) */
    apr_uint64_t writes, recorded;    /* this spell's steps and the outcomes they wrote */
} os_dispatcher_t;

static apr_array_header_t *dispatchers;     /* os_dispatcher_t *, from post_config */

/* ---- the store, through the writer --------------------------------------------------- */

static int bg(os_dispatcher_t *d, os_bg_fn fn, void *baton, const char *what)
{
    os_bg_op_t op;
    memset(&op, 0, sizeof(op));
    op.fn = fn;
    op.baton = baton;
    if (os_store_background(d->st, &op) == OS_TXN_COMMITTED) return 1;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s, "ordersync: dispatcher: %s failed: %s",
                 what, op.error);
    return 0;
}

static void upstream_persist(os_dispatcher_t *d, os_upstream_t *u, apr_interval_time_t shift)
{
    os_upstream_state_t us;
    memset(&us, 0, sizeof(us));
    us.name = u->name;
    us.paused_at = u->breaker.paused ? u->breaker.paused_at : 0;
    us.cause = u->breaker.cause;
    us.shift = shift;
    bg(d, os_upstream_state, &us, "recording the upstream's state");
}

/* Leases of dispatchers on this host whose process is gone are given back. */
static void recover_leases(os_dispatcher_t *d, apr_pool_t *p)
{
    os_owners_t ow;
    os_release_t rel;
    int i;

    d->owners_at = apr_time_now() + OS_OWNERS_CHECK;
    ow.prefix = d->host;
    ow.pool = p;
    ow.owners = apr_array_make(p, 4, sizeof(const char *));
    if (!bg(d, os_jobs_owners, &ow, "reading leases")) return;
    rel.owners = apr_palloc(p, sizeof(const char *) * (apr_size_t)(ow.owners->nelts + 1));
    rel.n = 0;
    rel.now = apr_time_now();
    for (i = 0; i < ow.owners->nelts; i++) {
        const char *w = APR_ARRAY_IDX(ow.owners, i, const char *);
        char *end;
        long pid = strtol(w + strlen(d->host), &end, 10);
        apr_uint64_t start = *end == '/' ? apr_strtoi64(end + 1, NULL, 10) : 0;
        if (!strcmp(w, d->owner) || pid <= 0 || !start) continue;
        if (os_process_alive((apr_uint32_t)pid, start)) continue;
        rel.owners[rel.n++] = w;
    }
    if (rel.n && bg(d, os_jobs_release, &rel, "giving back the leases of ended processes")) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, d->s, "ordersync: gave back the deliveries "
                     "in flight of %d ended process(es); they are sent again", rel.n);
    }
}

/* ---- becoming the dispatcher ------------------------------------------------------------ */

static int activate(os_dispatcher_t *d)
{
    char host[128];
    int i;

    if (!d->multi) {
        CURLM *multi;
        if (!d->slots) {
            d->slots = apr_pcalloc(d->pool, sizeof(*d->slots) * (apr_size_t)d->concurrency);
            d->done = apr_pcalloc(d->pool, sizeof(*d->done) * (apr_size_t)d->concurrency);
            d->ndone = 0;
        }
        for (i = 0; i < d->concurrency; i++) {
            if (!d->slots[i].easy && !(d->slots[i].easy = curl_easy_init())) return 0;
            if (!d->slots[i].job.pool) apr_pool_create(&d->slots[i].job.pool, d->pool);
        }
        /* published last: a multi handle means every slot is ready (a failed start is
         * tried again at the next tick) */
        if (!(multi = curl_multi_init())) return 0;
        curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)d->concurrency);
        /* idle connections are kept however few transfers are added at the moment
         * (libcurl's default keeps four per transfer added) */
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)d->concurrency * 2);
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        apr_atomic_casptr((volatile void **)&d->multi, multi, NULL);
    }
    if (gethostname(host, sizeof(host)) != 0) apr_cpystrn(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    /* the owner of leases: this host, pid and start time, so that another process on the
     * host can tell when it is gone (a reused pid has another start time) */
    d->host = apr_pstrcat(d->pool, host, "/", NULL);
    d->owner = apr_psprintf(d->pool, "%s%d/%" APR_UINT64_T_FMT, d->host, (int)getpid(),
                            os_process_start((apr_uint32_t)getpid()));
    /* a pause outlives the process that saw it: its time keeps counting for the orders */
    for (i = 0; i < d->ups->nelts; i++) {
        os_upstream_t *u = APR_ARRAY_IDX(d->ups, i, os_upstream_t *);
        os_upstream_state_t us;
        if (!u) continue;
        memset(&us, 0, sizeof(us));
        us.name = u->name;
        us.read = 1;
        us.pool = d->pool;
        if (bg(d, os_upstream_state, &us, "reading the upstream's state") && us.paused_at > 0) {
            u->breaker.paused = 1;
            u->breaker.paused_at = us.paused_at;
            u->breaker.probe_at = 0;
            apr_cpystrn(u->breaker.cause, us.cause ? us.cause : "", sizeof(u->breaker.cause));
        }
    }
    d->active = 1;
    d->owners_at = 0;
    apr_atomic_set32(&d->kick, 1);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, d->s, "ordersync: process %d delivers the hub's "
                 "orders to %s (%d at once)", (int)getpid(),
                 os_srv_conf(d->s)->cg_url, d->concurrency);
    return 1;
}

static void on_jobs(void *data)
{
    os_dispatcher_t *d = data;
    CURLM *multi = apr_atomic_casptr((volatile void **)&d->multi, NULL, NULL);
    apr_atomic_set32(&d->kick, 1);
    if (multi) curl_multi_wakeup(multi);
}

/* ---- claiming and delivering ------------------------------------------------------------ */

static os_upstream_t *upstream_of(os_dispatcher_t *d, const char *source_id)
{
    return apr_hash_get(d->by_source, source_id, APR_HASH_KEY_STRING);
}

/* Whether anything may be sent now: an upstream that is not paused, or a probe due. */
static int may_send(os_dispatcher_t *d, apr_time_t now, int *probe_only)
{
    int i, open = 0, probe = 0;
    for (i = 0; i < d->ups->nelts; i++) {
        os_upstream_t *u = APR_ARRAY_IDX(d->ups, i, os_upstream_t *);
        if (!u) continue;
        if (!u->breaker.paused) open = 1;
        else if (now >= u->breaker.probe_at) probe = 1;
    }
    *probe_only = !open;
    return open || probe;
}

/* The job's outcome when it was not sent: held while its upstream is paused, or no
 * upstream serves its source any more. */
static void hold(os_dispatcher_t *d, os_transfer_t *t, os_upstream_t *u, apr_time_t now)
{
    os_job_t *j = &t->job;
    j->at = now;
    j->state = "retrying";
    j->counted = 0;
    j->upstream_id = NULL;
    j->event_kind = NULL;
    if (u) {
        j->due_at = u->breaker.probe_at > now ? u->breaker.probe_at : now + d->probe_every;
        j->error = apr_pstrcat(j->pool, "held: ", u->name, " is paused: ", u->breaker.cause,
                               NULL);
        j->order_state = "paused";
    }
    else {
        j->due_at = now + d->backoff.max;
        j->error = "held: no Clougistic entity and key serve this order's source "
                   "(OrderSyncClougisticEntity/Key, or the source's entity=)";
        j->order_state = "retrying";
    }
    j->cause = j->error;
}

/* Puts claimed jobs into free slots and starts their deliveries (or holds them). */
static void start(os_dispatcher_t *d, const os_claim_t *cl, apr_time_t now)
{
    int i, k = 0;
    for (i = 0; i < cl->claimed; i++) {
        const os_job_t *src = &cl->jobs[i];
        os_transfer_t *t;
        os_upstream_t *u;
        while (k < d->concurrency && d->slots[k].busy) k++;
        if (k == d->concurrency) break;          /* cannot happen: claimed <= free */
        t = &d->slots[k];
        apr_pool_clear(t->job.pool);
        {
            apr_pool_t *keep = t->job.pool;
            t->job = *src;
            t->job.pool = keep;
        }
        t->job.source_id = apr_pstrdup(t->job.pool, src->source_id);
        t->job.reference = apr_pstrdup(t->job.pool, src->reference);
        t->job.sent_reference = apr_pstrdup(t->job.pool, src->sent_reference);
        t->job.body = apr_pstrdup(t->job.pool, src->body);
        t->job.at = 0;
        u = upstream_of(d, t->job.source_id);
        t->busy = 1;
        t->up = u;
        t->probe = 0;
        if (u && u->breaker.paused) t->probe = os_breaker_allow(&u->breaker, now);
        if (!u || (u->breaker.paused && !t->probe)) {
            hold(d, t, u, now);
            d->done[d->ndone++] = t;
            continue;
        }
        if (os_cg_start(d->multi, t, &d->cg) != CURLM_OK) {
            hold(d, t, NULL, now);
            t->job.error = t->job.cause = "the delivery could not be started (libcurl)";
            t->job.due_at = now + d->backoff.first;
            d->done[d->ndone++] = t;
        }
    }
}

typedef struct {
    os_finish_t finish;
    os_claim_t claim;
    int do_claim;
} os_step_t;

/* One transaction: the outcomes of the finished deliveries, then new claims for the slots
 * they and the idle ones leave. */
static int step_fn(os_conn_t *c, apr_pool_t *p, void *baton)
{
    os_step_t *st = baton;
    int rv;
    if (st->finish.n && (rv = os_jobs_finish(c, p, &st->finish))) return rv;
    if (st->do_claim && (rv = os_jobs_claim(c, p, &st->claim))) return rv;
    return 0;
}

/* Records what finished and claims what is due, in one write of the committer's writer.
 * Finished slots stay busy (their leases held) until their outcome commits. */
static void step(os_dispatcher_t *d, apr_pool_t *p, int want_claim)
{
    os_job_t *jobs[OS_MAX_CONCURRENCY];
    apr_time_t now = apr_time_now();
    os_step_t st;
    int i, idle = 0, probe_only = 0;

    memset(&st, 0, sizeof(st));
    if (d->ndone && now >= d->finish_at) {
        for (i = 0; i < d->ndone; i++) jobs[i] = &d->done[i]->job;
        st.finish.owner = d->owner;
        st.finish.n = d->ndone;
        st.finish.jobs = jobs;
    }
    for (i = 0; i < d->concurrency; i++) idle += !d->slots[i].busy;
    if (want_claim && may_send(d, now, &probe_only) && idle + st.finish.n > 0) {
        st.do_claim = 1;
        st.claim.owner = d->owner;
        st.claim.now = now;
        st.claim.lease_until = now + d->cg.timeout + OS_LEASE_MARGIN;
        st.claim.horizon = d->backoff.horizon;
        st.claim.max = probe_only ? 1 : idle + st.finish.n;
        st.claim.pool = p;
    }
    if (!st.finish.n && !st.do_claim) return;
    d->writes++;
    if (!bg(d, step_fn, &st, st.do_claim ? "claiming jobs" : "recording deliveries")) {
        if (st.finish.n) d->finish_at = apr_time_now() + OS_FINISH_RETRY;
        return;
    }
    for (i = 0; i < st.finish.n; i++) {
        d->done[i]->busy = 0;
        apr_pool_clear(d->done[i]->job.pool);
    }
    if (st.finish.n) {
        d->recorded += (apr_uint64_t)st.finish.n;
        d->ndone = 0;
        d->finish_at = 0;
    }
    if (st.do_claim) {
        d->more = st.claim.claimed == st.claim.max && !probe_only;
        start(d, &st.claim, now);
    }
}

/* What an answer does to its job, its order's events and its upstream. */
static void judge(os_dispatcher_t *d, os_transfer_t *t, CURLcode code, apr_time_t now)
{
    os_job_t *j = &t->job;
    os_upstream_t *u = t->up;
    os_answer_t a;
    const char *account;
    apr_uint32_t rnd;
    int turned;

    curl_multi_remove_handle(d->multi, t->easy);
    os_cg_answer(t, code, j->pool, now, &a, &account);
    j->at = now;
    j->due_at = now;
    j->upstream_id = NULL;
    j->counted = 1;
    j->event_kind = "attempt";
    j->event_detail = account;
    turned = os_breaker_record(&u->breaker, &a, now);
    if (turned > 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->s, "ordersync: %s paused: %s; its orders "
                     "wait (their tries and deadlines do not run down), one probe every %"
                     APR_TIME_T_FMT " ms", u->name, u->breaker.cause,
                     apr_time_as_msec(d->probe_every));
        upstream_persist(d, u, 0);
    }
    else if (turned < 0) {
        apr_interval_time_t paused = now - u->breaker.paused_at;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->s, "ordersync: %s works again after %"
                     APR_TIME_T_FMT " s paused; its waiting orders go now", u->name,
                     apr_time_sec(paused));
        upstream_persist(d, u, paused);
        apr_atomic_set32(&d->kick, 1);
    }
    switch (a.kind) {
    case OS_ANSWER_DELIVERED:
        j->state = "done";
        j->error = NULL;
        j->upstream_id = a.upstream_id;
        j->cause = apr_psprintf(j->pool, "version %d delivered", j->version);
        j->event_kind = "delivered";
        return;
    case OS_ANSWER_PERMANENT:
        j->state = "dead";
        j->error = account;
        j->order_state = "dead";
        j->cause = apr_pstrcat(j->pool, "refused: ", a.reason, NULL);
        j->event_kind = "dead";
        return;
    case OS_ANSWER_UPSTREAM:
    case OS_ANSWER_TRANSIENT:
        j->error = account;
        if (u->breaker.paused) {
            /* the upstream's fault, not the order's: the try is not counted */
            j->counted = 0;
            j->state = "retrying";
            j->order_state = "paused";
            j->due_at = u->breaker.probe_at;
            j->cause = apr_pstrcat(j->pool, u->name, " is paused: ", u->breaker.cause, NULL);
            return;
        }
        if (now >= j->deadline_at) {
            j->state = "dead";
            j->order_state = "dead";
            j->cause = apr_pstrcat(j->pool, "tried until its deadline; last: ", a.reason, NULL);
            j->event_kind = "dead";
            return;
        }
        apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
        j->state = "retrying";
        j->order_state = "retrying";
        j->due_at = now + os_backoff_wait(&d->backoff, j->attempts + 1, rnd, a.retry_after);
        if (j->due_at > j->deadline_at) j->due_at = j->deadline_at;
        j->cause = apr_psprintf(j->pool, "%s; next try in %" APR_TIME_T_FMT " s", a.reason,
                                apr_time_sec(j->due_at - now + APR_USEC_PER_SEC / 2));
        return;
    }
}

/* Stopping with deliveries in flight: they are dropped and their leases given back, so
 * the next dispatcher sends them at once (an identical resend if one had arrived). */
static void stop_all(os_dispatcher_t *d, apr_pool_t *p)
{
    os_release_t rel;
    int i;
    /* what already has its answer is recorded first (the writer still runs) */
    if (d->ndone) {
        d->finish_at = 0;
        step(d, p, 0);
    }
    for (i = 0; i < d->concurrency; i++) {
        if (d->slots[i].busy) curl_multi_remove_handle(d->multi, d->slots[i].easy);
    }
    rel.owners = &d->owner;
    rel.n = 1;
    rel.now = apr_time_now();
    bg(d, os_jobs_release, &rel, "giving back leases");
    for (i = 0; i < d->concurrency; i++) {
        if (d->slots[i].busy) apr_pool_clear(d->slots[i].job.pool);
        d->slots[i].busy = 0;
    }
    d->ndone = 0;
    d->active = 0;
}

/* Whether to let finished deliveries wait for a few more before their outcomes are
 * written: every write is a hand-over to the writer's thread, which costs more than a
 * delivery, so while every slot is taken and most are still in flight, outcomes gather
 * (for OS_STEP_GATHER at the most) and are written, and their slots refilled, together. */
static int gather(os_dispatcher_t *d, int inflight, apr_time_t now)
{
    return d->ndone > 0 && d->ndone < d->gather_min && inflight == d->concurrency
           && inflight > d->ndone && now < d->first_done_at + OS_STEP_GATHER
           && !apr_atomic_read32(&d->stopping);
}

/* One spell of work: until idle for OS_DISPATCH_SPELL, or stopping. */
static void run(os_dispatcher_t *d, apr_pool_t *p)
{
    apr_time_t idle_until = apr_time_now() + OS_DISPATCH_SPELL, began = apr_time_now();

    d->writes = d->recorded = 0;
    while (!apr_atomic_read32(&d->stopping)) {
        apr_time_t now = apr_time_now();
        int running = 0, left, inflight, i, gathering;
        CURLMsg *m;
        long wait_ms;

        apr_pool_clear(p);
        if (now >= d->owners_at) recover_leases(d, p);
        curl_multi_perform(d->multi, &running);
        now = apr_time_now();
        while ((m = curl_multi_info_read(d->multi, &left))) {
            char *priv = NULL;
            if (m->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            judge(d, (os_transfer_t *)priv, m->data.result, now);
            if (!d->ndone) d->first_done_at = now;
            d->done[d->ndone++] = (os_transfer_t *)priv;
        }
        for (inflight = 0, i = 0; i < d->concurrency; i++) inflight += d->slots[i].busy;
        gathering = gather(d, inflight, now);
        if (!gathering) {
            int want = apr_atomic_xchg32(&d->kick, 0) || d->more || now >= d->poll_at;
            if (want) d->poll_at = now + OS_DISPATCH_POLL;
            step(d, p, want);
            /* deliveries just started: let libcurl send them before anything else */
            curl_multi_perform(d->multi, &running);
            for (inflight = 0, i = 0; i < d->concurrency; i++) inflight += d->slots[i].busy;
        }
        if (inflight) idle_until = now + OS_DISPATCH_SPELL;
        else if (now >= idle_until) break;
        if (!gathering && d->more && inflight < d->concurrency) continue;
        wait_ms = (long)apr_time_as_msec(d->poll_at - now);
        if (gathering) wait_ms = 1;
        if (wait_ms < 1) wait_ms = 1;
        if (d->ndone && wait_ms > 100) wait_ms = 100;
        curl_multi_poll(d->multi, NULL, 0, (int)wait_ms, NULL);
    }
    if (apr_atomic_read32(&d->stopping)) stop_all(d, p);
    if (d->recorded) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, d->s, "ordersync: dispatcher: %" APR_UINT64_T_FMT
                     " outcomes recorded in %" APR_UINT64_T_FMT " writes over %" APR_TIME_T_FMT
                     " ms", d->recorded, d->writes, apr_time_as_msec(apr_time_now() - began));
    }
}

static apr_status_t dispatch_tick(int state, void *data, apr_pool_t *p)
{
    os_dispatcher_t *d = data;
    os_dgate_t *g = d->gate;

    if (state != AP_WATCHDOG_STATE_RUNNING || !g) return APR_SUCCESS;
    apr_thread_mutex_lock(g->mu);
    if (g->open && !apr_atomic_read32(&d->stopping)) {
        if (!d->st) d->st = os_store_of(d->s);
        if (d->st && (!os_board_ready(d->hub) || os_store_committing(d->st))
            && (d->active || activate(d))) {
            run(d, p);
        }
    }
    apr_thread_mutex_unlock(g->mu);
    return APR_SUCCESS;
}

static apr_status_t dispatch_stop(void *data)
{
    os_dispatcher_t *d = data;
    apr_atomic_set32(&d->stopping, 1);
    if (d->multi) curl_multi_wakeup(d->multi);
    apr_thread_mutex_lock(d->gate->mu);     /* the job's spell ends first */
    d->gate->open = 0;
    apr_thread_mutex_unlock(d->gate->mu);
    return APR_SUCCESS;
}

/* ---- hooks ------------------------------------------------------------------------------ */

int os_dispatch_post_config(apr_pool_t *pconf, server_rec *s, apr_array_header_t *hubs)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *get_instance =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_callback =
        APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    ap_watchdog_t *wd = NULL;
    int i;

    dispatchers = apr_array_make(pconf, 2, sizeof(os_dispatcher_t *));
    for (i = 0; i < hubs->nelts; i++) {
        server_rec *hs = APR_ARRAY_IDX(hubs, i, server_rec *);
        os_srv_conf_t *sc = os_srv_conf(hs);
        os_dispatcher_t *d;

        if (!sc->cg_url) continue;    /* the start-up line says it delivers none */
        if (!get_instance || !register_callback) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, hs, "ordersync: no mod_watchdog: orders "
                         "cannot be delivered");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!wd && get_instance(&wd, OS_DISPATCH_WATCHDOG, 0, 0, pconf) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, hs, "ordersync: cannot start the "
                         "dispatcher's watchdog");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        d = apr_pcalloc(pconf, sizeof(*d));
        d->s = hs;
        d->hub = i;
        d->cg.ca_file = sc->cg_ca_file;
        d->cg.http2 = OS_CONF_INT(sc->cg_http2, 0);
        d->cg.connect_timeout = OS_CONF_INT(sc->cg_connect_timeout, OS_DEFAULT_CG_CONNECT);
        d->cg.timeout = OS_CONF_INT(sc->cg_timeout, OS_DEFAULT_CG_TIMEOUT);
        d->backoff.first = OS_CONF_INT(sc->retry_first, OS_DEFAULT_RETRY_FIRST);
        d->backoff.max = OS_CONF_INT(sc->retry_max, OS_DEFAULT_RETRY_MAX);
        if (d->backoff.max < d->backoff.first) d->backoff.max = d->backoff.first;
        d->backoff.horizon = OS_CONF_INT(sc->retry_horizon, OS_DEFAULT_RETRY_HORIZON);
        d->concurrency = OS_CONF_INT(sc->dispatch_concurrency, OS_DEFAULT_CONCURRENCY);
        d->gather_min = d->concurrency / 2;
        d->pause_after = OS_CONF_INT(sc->pause_after, OS_DEFAULT_PAUSE_AFTER);
        d->probe_every = OS_CONF_INT(sc->probe_every, OS_DEFAULT_PROBE_EVERY);
        d->ups = os_cg_upstreams(pconf, hs, &d->by_source, d->pause_after, d->probe_every);
        if (register_callback(wd, AP_WD_TM_SLICE, d, dispatch_tick) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, hs, "ordersync: cannot register the "
                         "dispatcher with mod_watchdog");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        APR_ARRAY_PUSH(dispatchers, os_dispatcher_t *) = d;
    }
    if (dispatchers->nelts) curl_global_init(CURL_GLOBAL_DEFAULT);
    return OK;
}

void os_dispatch_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i;
    (void)s;
    for (i = 0; dispatchers && i < dispatchers->nelts; i++) {
        os_dispatcher_t *d = APR_ARRAY_IDX(dispatchers, i, os_dispatcher_t *);
        os_store_t *st = os_store_of(d->s);
        /* the gate from the process's pool, which outlives pchild as the watchdog's
         * thread does */
        d->gate = apr_pcalloc(d->s->process->pool, sizeof(*d->gate));
        apr_thread_mutex_create(&d->gate->mu, APR_THREAD_MUTEX_DEFAULT, d->s->process->pool);
        /* the dispatcher's memory has an allocator of its own (prefork's has no lock) */
        if (os_thread_pool(&d->pool, pchild) != APR_SUCCESS) continue;
        d->multi = NULL;
        d->slots = NULL;
        d->done = NULL;
        d->active = 0;
        d->st = st;
        d->gate->open = 1;
        if (st) os_store_on_jobs(st, on_jobs, d);
        apr_pool_pre_cleanup_register(pchild, d, dispatch_stop);
    }
}
