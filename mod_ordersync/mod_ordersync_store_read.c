/* mod_ordersync_store_read.c: the reads behind the status route. A reader never writes:
 * it uses the request's mod_dbd connection, sets it up without migrating, and reads one
 * order with its versions and events. */
#include "mod_ordersync_writer.h"
#include "mod_ordersync_jobs.h"
#include "http_log.h"
#include "apr_strings.h"

APLOG_USE_MODULE(ordersync);

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
    ap_dbd_t *dbd = os_dbd_acquire ? os_dbd_acquire(r) : NULL;
    os_store_t *st = os_store_of(r->server);
    const char *why = NULL;
    os_conn_t *c;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    os_order_view_t *v;
    const char *a[2];
    int rv, i;

    if (!dbd || !st) return APR_EGENERAL;
    c = os_conn_of(dbd);
    if ((rv = os_conn_ready(r->server, os_store_conf_get(st), c, r->pool, 0, &why))
        == APR_NOTFOUND) {
        return APR_NOTFOUND;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ordersync: reading order failed: %s", why);
        return APR_EGENERAL;
    }
    a[0] = source_id; a[1] = reference;
    rv = os_sel(c, r->pool, ST_ORDER_GET, &res, 2, a);
    if (rv) {
        /* a pooled PostgreSQL session that ended (a restart, a terminated backend), or a
         * SQLite connection whose schema changed since it prepared (a trigger or index
         * added by hand), is found out by its first query: reconnect or prepare again, and
         * ask once more */
        c->failed = 1;
        if (os_conn_ready(r->server, os_store_conf_get(st), c, r->pool, 0, &why) == APR_SUCCESS)
            rv = os_sel(c, r->pool, ST_ORDER_GET, &res, 2, a);
    }
    if (rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ordersync: reading order failed: %s",
                      os_conn_error(c, rv));
        c->failed = 1;
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
    v->clougistic_id = apr_dbd_get_entry(c->driver, row, 21) ? E(21) : NULL;
    if (v->clougistic_id && !*v->clougistic_id) v->clougistic_id = NULL;
#undef E
    while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0);

    v->versions = apr_array_make(r->pool, 4, sizeof(os_version_view_t));
    a[0] = v->id;
    if ((rv = os_sel(c, r->pool, ST_VERSIONS_GET, &res, 1, a)) == 0) {
        while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            os_version_view_t *vv = apr_array_push(v->versions);
            vv->version = atoi(apr_dbd_get_entry(c->driver, row, 0));
            vv->received_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 1));
            vv->digest = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 2));
        }
    }
    v->events = apr_array_make(r->pool, 8, sizeof(os_event_view_t));
    if ((rv = os_sel(c, r->pool, ST_EVENTS_GET, &res, 1, a)) == 0) {
        while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            os_event_view_t *ev = apr_array_push(v->events);
            ev->event_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 0));
            ev->kind = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 1));
            ev->detail = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 2));
        }
    }
    v->jobs = apr_array_make(r->pool, 2, sizeof(os_job_view_t));
    if ((rv = os_sel(c, r->pool, ST_JOB_GET, &res, 1, a)) == 0) {
        while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            os_job_view_t *j = apr_array_push(v->jobs);
            const char *err = apr_dbd_get_entry(c->driver, row, 5);
            j->kind = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 0));
            j->version = atoi(apr_dbd_get_entry(c->driver, row, 1));
            j->state = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 2));
            j->due_at = fmt_time(r->pool, apr_dbd_get_entry(c->driver, row, 3));
            j->attempts = atoi(apr_dbd_get_entry(c->driver, row, 4));
            j->last_error = err && *err ? apr_pstrdup(r->pool, err) : NULL;
        }
    }
    {
        /* the source's own upstream (its own entity and key) when it has paused, else the
         * hub's */
        const char *names[2] = { apr_pstrcat(r->pool, "clougistic:", source_id, NULL), "clougistic" };
        apr_time_t since = 0;
        const char *cause = NULL;
        int k;
        for (k = 0; k < 2 && !since; k++) {
            if (os_upstream_read(c, r->pool, names[k], &since, &cause) == 0 && since > 0) {
                v->paused = apr_pcalloc(r->pool, sizeof(*v->paused));
                v->paused->name = names[k];
                v->paused->since = fmt_time(r->pool, os_i64(r->pool, since));
                v->paused->cause = cause;
            }
        }
    }
    {
        const char *b[2] = { v->id, apr_itoa(r->pool, v->latest_version) };
        if ((rv = os_sel(c, r->pool, ST_LATEST_BODY, &res, 2, b)) == 0
            && apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0) {
            v->latest_body = apr_pstrdup(r->pool, apr_dbd_get_entry(c->driver, row, 0));
            while (apr_dbd_get_row(c->driver, r->pool, res, &row, -1) == 0);
        }
    }
    *out = v;
    return APR_SUCCESS;
}
