/* mod_ordersync_admin.c: the admin routes below <base>/admin and who may use them
 * (DESIGN.md "Admin means"): the admin Bearer key (OrderSyncAdminKey, compared in constant
 * time), or, where the admin's <Location> says "OrderSyncAdminAuth apache", whoever Apache's
 * own authentication and Require rules for that <Location> let through.
 *
 * Routes so far: POST <base>/admin/orders/{source_id}/{reference}/replay, which puts a dead
 * order's newest version back in the delivery queue (a write through the store's writer,
 * like every other). */
#include "mod_ordersync.h"
#include "mod_ordersync_writer.h"
#include "mod_ordersync_jobs.h"
#include "mod_ordersync_body.h"

#define OS_ADMIN_REALM "ordersync-admin"

/* Who the admin is (for the order's events), or NULL after answering 401 or 403. */
static const char *admin_actor(request_rec *r)
{
    os_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &ordersync_module);
    os_srv_conf_t *sc = os_srv_conf(r->server);
    const char *token;
    int had;

    if (dc && dc->admin_auth == 1) {
        /* Apache's authentication and authorization for this <Location> already ran */
        return r->user ? apr_pstrcat(r->pool, "user ", r->user, NULL) : "an admin (Apache)";
    }
    token = os_bearer_token(r, &had);
    if (!sc->admin_key.value) {
        os_problem(r, HTTP_FORBIDDEN, "admin-disabled", "Forbidden", "this hub has no "
                   OS_DIR_ADMIN_KEY " (or use " OS_DIR_ADMIN_AUTH " apache in its admin "
                   "<Location>)");
        return NULL;
    }
    if (!token || !os_secret_equals(&sc->admin_key, token)) {
        r->connection->keepalive = AP_CONN_CLOSE;
        os_unauthorized(r, OS_ADMIN_REALM, had ? "the Bearer key is not the admin key"
                                               : "no Bearer key: send the admin key as "
                                                 "Authorization: Bearer <key>",
                        had);
        return NULL;
    }
    return "the admin key";
}

int os_admin_replay(request_rec *r, const char *const *params)
{
    os_store_t *st = os_store_of(r->server);
    const char *actor = admin_actor(r);
    os_replay_t rp;
    os_bg_op_t op;
    yajl_gen g;

    if (!actor) return OK;
    if (os_utf8_safe(r->pool, params[1]) != params[1]) {
        return os_problem(r, HTTP_NOT_FOUND, "order-not-found", "Not Found",
                          "no order has that reference");
    }
    if (!st) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return os_problem(r, HTTP_SERVICE_UNAVAILABLE, "store-unavailable",
                          "Service Unavailable", "this process has no store writer");
    }
    memset(&rp, 0, sizeof(rp));
    rp.source_id = params[0];
    rp.reference = params[1];
    rp.actor = actor;
    rp.now = apr_time_now();
    memset(&op, 0, sizeof(op));
    op.fn = os_jobs_replay;
    op.baton = &rp;
    op.wake = 1;
    if (os_store_background(st, &op) != OS_TXN_COMMITTED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "ordersync: replay of %s/%s failed: %s",
                      params[0], ap_escape_logitem(r->pool, params[1]), op.error);
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return os_problem(r, HTTP_SERVICE_UNAVAILABLE, "store-unavailable",
                          "Service Unavailable", "the store cannot be written right now; "
                          "nothing was changed");
    }
    if (!rp.found) {
        return os_problem(r, HTTP_NOT_FOUND, "order-not-found", "Not Found",
                          apr_psprintf(r->pool, "source '%s' has no order '%s'",
                                       ap_escape_logitem(r->pool, params[0]),
                                       ap_escape_logitem(r->pool, params[1])));
    }
    if (!rp.replayed) {
        return os_problem(r, HTTP_CONFLICT, "not-dead", "Conflict",
                          apr_psprintf(r->pool, "only a dead delivery is replayed; this "
                                       "order's delivery is %s", rp.state));
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "ordersync: %s replayed order %s/%s "
                  "(version %d)", actor, params[0], ap_escape_logitem(r->pool, params[1]),
                  rp.version);
    g = os_jgen_create(r->pool, 0);
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "source_id", params[0]);
    os_jgen_kv_str(g, "reference", params[1]);
    os_jgen_kv_int(g, "version", rp.version);
    os_jgen_kv_str(g, "delivery", "queued");
    os_jgen_kv_str(g, "status_url", apr_pstrcat(r->pool, os_hub_base(r), "/orders/",
                                                ap_escape_uri(r->pool, params[0]), "/",
                                                ap_escape_uri(r->pool, params[1]), NULL));
    yajl_gen_map_close(g);
    return os_send_json(r, HTTP_OK, g);
}
