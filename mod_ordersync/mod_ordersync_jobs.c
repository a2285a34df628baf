/* mod_ordersync_jobs.c: the delivery jobs in the store (see mod_ordersync_jobs.h for the
 * invariants). Each function runs inside the writer's transaction. */
#include "mod_ordersync_jobs.h"
#include "apr_strings.h"

#define ROW(i) apr_dbd_get_entry(c->driver, row, i)

typedef struct {
    os_job_t *job;
    apr_int64_t due;
} os_due_t;

static int due_cmp(const void *a, const void *b)
{
    const os_due_t *x = a, *y = b;
    return x->due < y->due ? -1 : x->due > y->due;
}

int os_jobs_claim(os_conn_t *c, apr_pool_t *p, void *baton)
{
    static const char *const STATES[] = { "queued", "retrying", "delivering" };
    os_claim_t *cl = baton;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *now = os_i64(p, cl->now), *a[7];
    os_due_t *due = apr_palloc(p, sizeof(*due) * (apr_size_t)cl->max * 3);
    os_job_t **spare = apr_palloc(p, sizeof(*spare) * (apr_size_t)cl->max * 3);
    int rv, i, s, n = 0;

    /* the oldest due of each state (new, retried, a lease run out), then the oldest of all;
     * every row of a result is read before the next statement */
    for (i = 0; i < cl->max * 3; i++) spare[i] = apr_pcalloc(p, sizeof(os_job_t));
    for (s = 0; s < 3; s++) {
        a[0] = STATES[s]; a[1] = now; a[2] = now; a[3] = apr_itoa(p, cl->max);
        if ((rv = os_sel(c, p, ST_JOB_DUE, &res, 4, a))) return rv;
        while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
            os_job_t *j = spare[n];
            due[n].job = j;
            due[n].due = apr_atoi64(ROW(8));
            apr_cpystrn(j->order_id, ROW(0), sizeof(j->order_id));
            j->version = atoi(ROW(1));
            j->attempts = atoi(ROW(2));
            j->deadline_at = ROW(3) && *ROW(3) ? apr_atoi64(ROW(3)) : cl->now + cl->horizon;
            /* copied now: apr-util's PostgreSQL driver frees a result once its last row
             * has been read, random access or not */
            j->source_id = apr_pstrdup(p, ROW(4));
            j->reference = apr_pstrdup(p, ROW(5));
            j->sent_reference = apr_pstrdup(p, ROW(6));
            j->body = apr_pstrdup(p, ROW(7));
            n++;
        }
    }
    qsort(due, (apr_size_t)n, sizeof(*due), due_cmp);
    cl->claimed = n < cl->max ? n : cl->max;
    cl->jobs = apr_pcalloc(cl->pool, sizeof(os_job_t) * (apr_size_t)(cl->claimed + 1));
    for (i = 0; i < cl->claimed; i++) {
        /* into the caller's pool: the driver's rows go with this transaction's pool */
        os_job_t *src = due[i].job, *j = &cl->jobs[i];
        *j = *src;
        j->pool = NULL;
        j->source_id = apr_pstrdup(cl->pool, src->source_id);
        j->reference = apr_pstrdup(cl->pool, src->reference);
        j->sent_reference = apr_pstrdup(cl->pool, src->sent_reference);
        j->body = apr_pstrdup(cl->pool, src->body);
    }
    for (i = 0; i < cl->claimed; i++) {
        os_job_t *j = &cl->jobs[i];
        a[0] = cl->owner; a[1] = os_i64(p, cl->lease_until); a[2] = os_i64(p, j->deadline_at);
        a[3] = now; a[4] = j->order_id; a[5] = apr_itoa(p, j->version);
        if ((rv = os_q(c, p, ST_JOB_CLAIM, NULL, 6, a))) return rv;
        a[0] = "delivering"; a[1] = now; a[2] = j->attempts ? "retry" : "first try";
        a[3] = now; a[4] = j->order_id; a[5] = apr_itoa(p, j->version);
        if ((rv = os_q(c, p, ST_ORDER_STEP, NULL, 6, a))) return rv;
    }
    return 0;
}

int os_jobs_finish(os_conn_t *c, apr_pool_t *p, void *baton)
{
    os_finish_t *f = baton;
    const char *a[8];
    int i, rv, n;

    for (i = 0; i < f->n; i++) {
        os_job_t *j = f->jobs[i];
        const char *at = os_i64(p, j->at), *ver = apr_itoa(p, j->version);
        a[0] = j->state; a[1] = os_i64(p, j->due_at); a[2] = j->counted ? "1" : "0";
        a[3] = j->error; a[4] = at; a[5] = j->order_id; a[6] = f->owner;
        if ((rv = os_q(c, p, ST_JOB_FINISH, &n, 7, a))) return rv;
        if (n == 0) {
            /* the lease ran out and another took the job: its outcome is the other's */
            if ((rv = os_event_insert(c, p, j->order_id, j->at, "late",
                                      apr_psprintf(p, "version %d: %s (the job had been "
                                                   "taken over; nothing changed)", j->version,
                                                   j->event_detail ? j->event_detail : ""))))
                return rv;
            continue;
        }
        if (j->upstream_id) {
            a[0] = ver; a[1] = j->upstream_id; a[2] = ver; a[3] = at; a[4] = j->cause;
            a[5] = at; a[6] = j->order_id; a[7] = ver;
            if ((rv = os_q(c, p, ST_ORDER_DELIVERED, NULL, 8, a))) return rv;
        }
        else if (j->order_state) {
            a[0] = j->order_state; a[1] = at; a[2] = j->cause; a[3] = at; a[4] = j->order_id;
            a[5] = ver;
            if ((rv = os_q(c, p, ST_ORDER_STEP, NULL, 6, a))) return rv;
        }
        if (j->event_kind
            && (rv = os_event_insert(c, p, j->order_id, j->at, j->event_kind, j->event_detail)))
            return rv;
    }
    return 0;
}

int os_jobs_release(os_conn_t *c, apr_pool_t *p, void *baton)
{
    os_release_t *r = baton;
    const char *a[2];
    int i, rv;
    a[0] = os_i64(p, r->now);
    for (i = 0; i < r->n; i++) {
        a[1] = r->owners[i];
        if ((rv = os_q(c, p, ST_JOB_RELEASE, NULL, 2, a))) return rv;
    }
    return 0;
}

int os_jobs_owners(os_conn_t *c, apr_pool_t *p, void *baton)
{
    os_owners_t *o = baton;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *a[1];
    int rv;
    a[0] = apr_pstrcat(p, o->prefix, "%", NULL);
    if ((rv = os_sel(c, p, ST_JOB_OWNERS, &res, 1, a))) return rv;
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        const char *w = ROW(0);
        if (w) APR_ARRAY_PUSH(o->owners, const char *) = apr_pstrdup(o->pool, w);
    }
    return 0;
}

static int meta_get(os_conn_t *c, apr_pool_t *p, const char *name, const char **out)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *a[1] = { name };
    int rv;
    *out = NULL;
    if ((rv = os_sel(c, p, ST_META_GET, &res, 1, a))) return rv;
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0)
        *out = apr_pstrdup(p, ROW(0));
    return 0;
}

int os_upstream_read(os_conn_t *c, apr_pool_t *p, const char *name, apr_time_t *paused_at,
                     const char **cause)
{
    const char *v;
    int rv;
    *paused_at = 0;
    *cause = NULL;
    if ((rv = meta_get(c, p, apr_pstrcat(p, name, ".paused_at", NULL), &v))) return rv;
    if (v) *paused_at = apr_atoi64(v);
    return *paused_at > 0 ? meta_get(c, p, apr_pstrcat(p, name, ".paused_cause", NULL), cause) : 0;
}

int os_upstream_state(os_conn_t *c, apr_pool_t *p, void *baton)
{
    os_upstream_state_t *u = baton;
    const char *a[2];
    int rv;

    if (u->read) {
        if ((rv = os_upstream_read(c, p, u->name, &u->paused_at, &u->cause))) return rv;
        if (u->cause) u->cause = apr_pstrdup(u->pool, u->cause);
        return 0;
    }
    a[0] = apr_pstrcat(p, u->name, ".paused_at", NULL);
    a[1] = os_i64(p, u->paused_at);
    if ((rv = os_q(c, p, ST_META_PUT, NULL, 2, a))) return rv;
    a[0] = apr_pstrcat(p, u->name, ".paused_cause", NULL);
    a[1] = u->cause ? apr_pstrndup(p, u->cause, 250) : "";
    if ((rv = os_q(c, p, ST_META_PUT, NULL, 2, a))) return rv;
    if (u->shift > 0) {
        a[0] = os_i64(p, u->shift);
        if ((rv = os_q(c, p, ST_JOB_SHIFT, NULL, 1, a))) return rv;
    }
    return 0;
}

int os_jobs_replay(os_conn_t *c, apr_pool_t *p, void *baton)
{
    os_replay_t *r = baton;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    const char *a[4], *id = NULL, *now = os_i64(p, r->now);
    int rv, n;

    r->found = r->replayed = 0;
    a[0] = r->source_id; a[1] = r->reference;
    if ((rv = os_sel(c, p, ST_ORDER_FIND, &res, 2, a))) return rv;
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        if (!id) {
            id = apr_pstrdup(p, ROW(0));
            r->version = atoi(ROW(1));
            apr_cpystrn(r->state, ROW(3), sizeof(r->state));
        }
    }
    if (!id) return 0;
    r->found = 1;
    a[0] = apr_itoa(p, r->version); a[1] = now; a[2] = now; a[3] = id;
    if ((rv = os_q(c, p, ST_JOB_REPLAY, &n, 4, a))) return rv;
    if (!n) return 0;
    r->replayed = 1;
    apr_cpystrn(r->state, "queued", sizeof(r->state));
    a[0] = now; a[1] = "replayed"; a[2] = now; a[3] = id;
    if ((rv = os_q(c, p, ST_ORDER_REQUEUED, NULL, 4, a))) return rv;
    return os_event_insert(c, p, id, r->now, "replay",
                           apr_psprintf(p, "version %d queued again by %s", r->version,
                                        r->actor));
}
