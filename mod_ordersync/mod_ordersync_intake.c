/* mod_ordersync_intake.c: the push intake (POST /orders), the drop-in route for shops that
 * already speak Clougistic's enqueue, and the status route of one order. Order of checks:
 * who (401/403), what it sent (415, 413, 400), whether the order is valid (422), then the
 * store (202/200/409/503). Nothing is answered 2xx before the store committed it. */
#include "mod_ordersync.h"
#include "os_json.h"
#include "os_order.h"
#include "mod_ordersync_body.h"
#include "apr_lib.h"

#define OS_REALM "ordersync"

/* The source whose key the request carries as "Authorization: Bearer <key>". Without one,
 * answers 401 itself (dropping any body) and returns NULL. */
static const os_source_t *bearer_source(request_rec *r)
{
    int had = 0;
    const char *key = os_bearer_token(r, &had);
    const os_source_t *src = key ? os_source_by_key(os_srv_conf(r->server), key) : NULL;

    if (!src) {
        /* never read (or invite, with 100 Continue) the body of a request that is refused
         * anyway: the connection closes after the 401 instead */
        r->connection->keepalive = AP_CONN_CLOSE;
        os_unauthorized(r, OS_REALM, had ? "the Bearer key is not the key of any source"
                                         : "no Bearer key: send the source's key as "
                                           "Authorization: Bearer <key>",
                        had);
    }
    return src;
}

static int json_content_type(request_rec *r)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    apr_size_t n;
    if (!ct) return 0;
    n = strcspn(ct, "; \t");
    return (n == 16 && !strncasecmp(ct, "application/json", 16))
        || (n > 5 && !strncasecmp(ct + n - 5, "+json", 5) && !strncasecmp(ct, "application/", 12));
}

/* 400 for a body that is not JSON, saying where (err from os_json_parse). */
static int malformed(request_rec *r, apr_status_t rv, const os_json_error_t *err, int depth)
{
    yajl_gen g = os_problem_begin(r, HTTP_BAD_REQUEST,
                                  rv == APR_ENOSPC ? "too-deep" : "malformed-json",
                                  rv == APR_ENOSPC ? "JSON nested too deeply" : "Malformed JSON",
                                  apr_psprintf(r->pool, "%s at byte %" APR_SIZE_T_FMT
                                               " (line %u, column %u)",
                                               err->message, err->offset, err->line, err->column));
    os_jgen_kv_int(g, "offset", (apr_int64_t)err->offset);
    os_jgen_kv_int(g, "line", err->line);
    os_jgen_kv_int(g, "column", err->column);
    if (rv == APR_ENOSPC) os_jgen_kv_int(g, "max_depth", depth);
    return os_problem_send(r, HTTP_BAD_REQUEST, g);
}

static apr_int64_t max_body(request_rec *r)
{
    os_srv_conf_t *sc = os_srv_conf(r->server);
    return sc->max_body == OS_UNSET ? OS_DEFAULT_MAX_BODY : sc->max_body;
}

static int max_depth(request_rec *r)
{
    return OS_CONF_INT(os_srv_conf(r->server)->max_depth, OS_DEFAULT_MAX_DEPTH);
}

/* Reads and parses the JSON body; `peek` (may be NULL) sees it while it arrives. Returns OK
 * with *doc set, or DONE when it could not and has answered the request itself
 * (415/413/400, or whatever peek answered). */
static int parse_body(request_rec *r, os_body_peek_fn *peek, void *baton, os_json_t **doc)
{
    apr_int64_t max = max_body(r);
    int depth = max_depth(r);
    os_json_error_t err;
    apr_status_t rv;
    char *buf;
    apr_size_t len;
    int rc;

    *doc = NULL;
    if (!json_content_type(r)) {
        const char *ct = apr_table_get(r->headers_in, "Content-Type");
        /* the body is not read: the connection closes after the answer */
        r->connection->keepalive = AP_CONN_CLOSE;
        os_problem(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type",
                          "Unsupported Media Type",
                          apr_psprintf(r->pool, "the body must be JSON (Content-Type: "
                                       "application/json), got %s",
                                       ct ? ap_escape_logitem(r->pool, ct) : "no Content-Type"));
        return DONE;
    }
    os_store_expect(r);
    rc = os_body_read(r, max, peek, baton, &buf, &len);
    if (rc == DONE) return DONE;
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        os_problem(r, rc, "body-too-large", "Payload Too Large",
                   apr_psprintf(r->pool, "the body is larger than %" APR_INT64_T_FMT
                                " bytes (" OS_DIR_MAX_BODY ")", max));
        return DONE;
    }
    if (rc == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
        os_problem(r, rc, "no-memory", "Service Unavailable",
                   "the server could not hold the request body right now; retry later");
        return DONE;
    }
    if (rc != OK) {
        os_problem(r, HTTP_BAD_REQUEST, "unreadable-body", "Bad Request",
                   "the request body could not be read");
        return DONE;
    }
    rv = os_json_parse(r->pool, buf, len, depth, doc, &err);
    if (rv != APR_SUCCESS) {
        malformed(r, rv, &err, depth);
        return DONE;
    }
    return OK;
}

static int invalid(request_rec *r, apr_array_header_t *violations)
{
    yajl_gen g;
    int i;

    g = os_problem_begin(r, HTTP_UNPROCESSABLE_ENTITY, "invalid-order", "Invalid order",
                         apr_psprintf(r->pool, "%d field%s of the order %s invalid",
                                      violations->nelts, violations->nelts == 1 ? "" : "s",
                                      violations->nelts == 1 ? "is" : "are"));
    os_jgen_str(g, "errors");
    yajl_gen_array_open(g);
    for (i = 0; i < violations->nelts; i++) {
        const os_violation_t *v = &APR_ARRAY_IDX(violations, i, os_violation_t);
        yajl_gen_map_open(g);
        os_jgen_kv_str(g, "path", os_utf8_safe(r->pool, v->path));
        os_jgen_kv_str(g, "rule", v->rule);
        os_jgen_kv_str(g, "message", os_utf8_safe(r->pool, v->message));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    return os_problem_send(r, HTTP_UNPROCESSABLE_ENTITY, g);
}

/* 422 for one problem that is not a field rule of the order itself (the envelope's). */
static int invalid_one(request_rec *r, const char *path, const char *rule, const char *message)
{
    apr_array_header_t *violations = apr_array_make(r->pool, 1, sizeof(os_violation_t));
    os_violation_t *v = apr_array_push(violations);
    v->path = path;
    v->rule = rule;
    v->message = message;
    return invalid(r, violations);
}

static const char *status_url(request_rec *r, const char *source_id, const char *reference)
{
    return apr_pstrcat(r->pool, os_hub_base(r), "/orders/", ap_escape_uri(r->pool, source_id), "/",
                       ap_escape_uri(r->pool, reference), NULL);
}

/* Validates, then commits through the store; fills `op` and answers errors itself.
 * Returns OK when op holds a store result the caller should answer, or DONE. */
static int accept_order(request_rec *r, const os_source_t *src, const os_json_t *payload,
                        os_intake_op_t *op)
{
    os_srv_conf_t *sc = os_srv_conf(r->server);
    apr_array_header_t *violations = apr_array_make(r->pool, 8, sizeof(os_violation_t));
    os_order_limits_t lim;
    const os_json_t *sid;
    os_order_t *order;

    if (!payload || payload->type != OS_JSON_OBJECT) {
        invalid_one(r, "$", "type", "the order must be a JSON object");
        return DONE;
    }
    sid = os_json_get(payload, "source_id");
    if (sid && sid->type == OS_JSON_STRING && *sid->str && strcmp(sid->str, src->id)) {
        os_problem(r, HTTP_FORBIDDEN, "wrong-source", "Forbidden",
                   apr_psprintf(r->pool, "the key given is the key of source '%s', but the "
                                "order's source_id is '%s'", src->id,
                                ap_escape_logitem(r->pool, sid->str)));
        return DONE;
    }
    lim.max_items = OS_CONF_INT(sc->max_items, OS_DEFAULT_MAX_ITEMS);
    lim.max_string = OS_CONF_INT(sc->max_string, OS_DEFAULT_MAX_STRING);
    if (os_order_from_json(r->pool, payload, &lim, &order, violations) != APR_SUCCESS) {
        invalid(r, violations);
        return DONE;
    }
    memset(op, 0, sizeof(*op));
    op->source_id = src->id;
    op->reference = order->reference;
    op->sent_reference = apr_pstrcat(r->pool, src->prefix, order->reference, NULL);
    op->origin = "push";
    op->body = order->canonical;
    op->digest = order->digest;
    op->cancelled = order->status == 9;
    /* a client that resends after "outcome unknown" names the request it resends */
    op->intake_id = apr_table_get(r->headers_in, "Idempotency-Key");
    if (op->intake_id && !os_store_intake_id_ok(op->intake_id)) {
        os_problem(r, HTTP_BAD_REQUEST, "invalid-idempotency-key", "Bad Request",
                   "Idempotency-Key must be 1 to 64 of A-Z a-z 0-9 - _ . :");
        return DONE;
    }
    os_store_intake(r, op);
    return OK;
}

/* Answers the store's refusals; DECLINED when op was accepted or replayed. */
static int store_refusal(request_rec *r, const os_intake_op_t *op)
{
    switch (op->result) {
    case OS_INTAKE_SHIPPED:
        return os_problem(r, HTTP_CONFLICT, "already-shipped", "Conflict",
                          apr_psprintf(r->pool, "order %s/%s has shipped; version %d can no "
                                       "longer be changed", op->source_id, op->reference,
                                       op->version));
    case OS_INTAKE_QUEUE_FULL:
        apr_table_setn(r->headers_out, "Retry-After", "30");
        return os_problem(r, HTTP_SERVICE_UNAVAILABLE, "queue-full", "Service Unavailable",
                          "the delivery queue is over its limit (" OS_DIR_QUEUE_MAX "); "
                          "nothing was stored, retry later");
    case OS_INTAKE_UNAVAILABLE:
        /* the store logs a failing store once per incident; this is the order's own line */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "ordersync: order %s/%s not stored: %s",
                      op->source_id, op->reference, op->error[0] ? op->error : "store unavailable");
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return os_problem(r, HTTP_SERVICE_UNAVAILABLE, "store-unavailable", "Service Unavailable",
                          "the store could not commit the order; nothing was stored, retry later");
    case OS_INTAKE_UNKNOWN: {
        yajl_gen g;
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "ordersync: order %s/%s (intake id %s): "
                      "the store cannot tell whether it was committed: %s", op->source_id,
                      op->reference, op->id, op->error);
        apr_table_setn(r->headers_out, "Retry-After", "5");
        apr_table_setn(r->headers_out, "Idempotency-Key", apr_pstrdup(r->pool, op->id));
        g = os_problem_begin(r, HTTP_SERVICE_UNAVAILABLE, "store-outcome-unknown",
                             "Service Unavailable",
                             apr_psprintf(r->pool, "the store cannot tell whether order %s/%s "
                                          "was committed; send it again with the header "
                                          "Idempotency-Key: %s and it is recognised exactly",
                                          op->source_id, op->reference, op->id));
        os_jgen_kv_str(g, "idempotency_key", op->id);
        return os_problem_send(r, HTTP_SERVICE_UNAVAILABLE, g);
    }
    default:
        return DECLINED;
    }
}

int os_intake_orders(request_rec *r, const char *const *params)
{
    const os_source_t *src;
    os_json_t *doc;
    os_intake_op_t op;
    yajl_gen g;
    int rc, status;
    const char *url;

    (void)params;
    if (!(src = bearer_source(r))) return OK;
    if (parse_body(r, NULL, NULL, &doc) != OK) return OK;
    if (accept_order(r, src, doc, &op) == DONE) return OK;
    if ((rc = store_refusal(r, &op)) != DECLINED) return rc;

    url = status_url(r, op.source_id, op.reference);
    status = op.result == OS_INTAKE_REPLAY ? HTTP_OK : HTTP_ACCEPTED;
    if (op.result == OS_INTAKE_REPLAY) apr_table_setn(r->headers_out, "Idempotent-Replayed", "true");
    apr_table_setn(r->headers_out, "Location", url);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "ordersync: order %s/%s version %d %s",
                  op.source_id, op.reference, op.version,
                  op.result == OS_INTAKE_REPLAY ? "replayed" : "accepted");
    g = os_jgen_create(r->pool, 0);
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "id", op.order_id);
    os_jgen_kv_str(g, "source_id", op.source_id);
    os_jgen_kv_str(g, "reference", op.reference);
    os_jgen_kv_int(g, "version", op.version);
    os_jgen_kv_str(g, "state", op.delivery_state);
    os_jgen_kv_str(g, "status_url", url);
    yajl_gen_map_close(g);
    return os_send_json(r, status, g);
}

/* The drop-in route's envelope is authenticated by a member of the body, so the body is
 * scanned while it arrives: the access_key is checked as soon as it is complete, and a
 * request is never read further than OS_PREAUTH_MAX bytes before that. A wrong key is
 * answered at once, without reading the rest. */
typedef struct {
    os_scan_t *scan;
    const os_source_t *src;      /* set once the access_key was found and is a source's */
    int done;                    /* the scan has its answer: no more feeding */
} os_preauth_t;

/* The whole string: a key with a NUL inside is no key (a comparison up to the NUL would
 * accept "<key>\u0000anything"). */
static const os_source_t *source_by_access_key(request_rec *r, const char *key, apr_size_t len)
{
    if (!key || !len || strlen(key) != len) return NULL;
    return os_source_by_key(os_srv_conf(r->server), key);
}

static int preauth_peek(request_rec *r, void *baton, const char *buf, apr_size_t old_len,
                        apr_size_t len)
{
    os_preauth_t *pa = baton;
    apr_size_t upto = len < OS_PREAUTH_MAX ? len : OS_PREAUTH_MAX;
    const char *key;
    apr_size_t key_len;
    os_json_error_t err;
    apr_status_t rv;

    if (pa->done) return OK;
    switch (os_scan_feed(pa->scan, buf + old_len, upto > old_len ? upto - old_len : 0)) {
    case OS_SCAN_STRING:
        pa->done = 1;
        key = os_scan_value(pa->scan, &key_len);
        if (!(pa->src = source_by_access_key(r, key, key_len))) {
            os_unauthorized(r, OS_REALM, "the access_key is not the key of any source", 1);
            return DONE;
        }
        return OK;
    case OS_SCAN_NOT_STRING:
    case OS_SCAN_ABSENT:
        pa->done = 1;
        os_unauthorized(r, OS_REALM, "the envelope has no access_key", 0);
        return DONE;
    case OS_SCAN_SYNTAX:
        pa->done = 1;
        /* the full parser over what arrived says where, as it would over the whole body */
        memset(&err, 0, sizeof(err));
        rv = os_json_parse(r->pool, buf, upto, max_depth(r), NULL, &err);
        if (rv == APR_SUCCESS || !err.message) {
            rv = APR_EGENERAL;
            err.message = "not JSON";
            err.offset = upto;
            err.line = err.column = 1;
        }
        malformed(r, rv, &err, max_depth(r));
        return DONE;
    default:
        break;
    }
    if (len >= OS_PREAUTH_MAX) {
        yajl_gen g;
        pa->done = 1;
        g = os_problem_begin(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "access-key-too-late",
                             "Payload Too Large",
                             apr_psprintf(r->pool, "the envelope's access_key must come within "
                                          "its first %d bytes (send it first); none was found "
                                          "there, the rest was not read", OS_PREAUTH_MAX));
        os_jgen_kv_int(g, "preauth_limit", OS_PREAUTH_MAX);
        os_problem_send(r, HTTP_REQUEST_ENTITY_TOO_LARGE, g);
        return DONE;
    }
    return OK;
}

/* Clougistic's envelope: {"access_key", "entity_id", "payload"}. The access key is the
 * source's intake key; it is checked and dropped, never stored or forwarded. */
int os_intake_enqueue(request_rec *r, const char *const *params)
{
    const os_source_t *src = NULL;
    const os_json_t *key, *entity, *payload;
    os_preauth_t pa;
    os_json_t *doc;
    os_intake_op_t op;
    yajl_gen g;
    int rc;

    (void)params;
    memset(&pa, 0, sizeof(pa));
    pa.scan = os_scan_create(r->pool, "access_key");
    if (parse_body(r, preauth_peek, &pa, &doc) != OK) return OK;
    /* the scan saw the whole body (shorter than OS_PREAUTH_MAX) without an answer, or
     * found the key: the parsed document decides, as the scan would have */
    key = os_json_get(doc, "access_key");
    if (!key || key->type != OS_JSON_STRING || !*key->str) {
        return os_unauthorized(r, OS_REALM, "the envelope has no access_key", 0);
    }
    if (!(src = source_by_access_key(r, key->str, key->len))) {
        return os_unauthorized(r, OS_REALM, "the access_key is not the key of any source", 1);
    }
    entity = os_json_get(doc, "entity_id");
    payload = os_json_get(doc, "payload");
    if (!payload) {
        return invalid_one(r, "$.payload", "required", "the envelope has no payload object");
    }
    if (accept_order(r, src, payload, &op) == DONE) return OK;
    if ((rc = store_refusal(r, &op)) != DECLINED) return rc;

    if (op.result == OS_INTAKE_REPLAY) apr_table_setn(r->headers_out, "Idempotent-Replayed", "true");
    apr_table_setn(r->headers_out, "Location", status_url(r, op.source_id, op.reference));
    g = os_jgen_create(r->pool, 0);
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "id", op.order_id);
    os_jgen_kv_str(g, "reference", op.reference);
    if (entity && (entity->type == OS_JSON_STRING || entity->type == OS_JSON_NUMBER)) {
        os_jgen_str(g, "entity_id");
        os_jgen_value(g, entity, 0);
    }
    else {
        os_jgen_kv_str(g, "entity_id", NULL);
    }
    os_jgen_kv_int(g, "version", op.version);
    yajl_gen_map_close(g);
    return os_send_json(r, HTTP_OK, g);
}

int os_order_status(request_rec *r, const char *const *params)
{
    const os_source_t *src;
    os_order_view_t *v;
    apr_status_t rv;
    yajl_gen g;
    int i;

    if (!(src = bearer_source(r))) return OK;
    if (strcmp(src->id, params[0])) {
        return os_problem(r, HTTP_FORBIDDEN, "wrong-source", "Forbidden",
                          apr_psprintf(r->pool, "the key given belongs to source '%s', not '%s'",
                                       src->id, ap_escape_logitem(r->pool, params[0])));
    }
    /* a reference that is not UTF-8 was never accepted (and PostgreSQL refuses to be asked) */
    rv = os_utf8_safe(r->pool, params[1]) == params[1]
         ? os_store_order_get(r, params[0], params[1], &v) : APR_NOTFOUND;
    if (rv == APR_NOTFOUND) {
        return os_problem(r, HTTP_NOT_FOUND, "order-not-found", "Not Found",
                          apr_psprintf(r->pool, "source '%s' has no order '%s'", src->id,
                                       ap_escape_logitem(r->pool, params[1])));
    }
    if (rv != APR_SUCCESS) {
        apr_table_setn(r->headers_out, "Retry-After", "5");
        return os_problem(r, HTTP_SERVICE_UNAVAILABLE, "store-unavailable", "Service Unavailable",
                          "the store cannot be read right now");
    }
    g = os_jgen_create(r->pool, 0);
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "id", v->id);
    os_jgen_kv_str(g, "source_id", v->source_id);
    os_jgen_kv_str(g, "reference", v->reference);
    os_jgen_kv_str(g, "sent_reference", v->sent_reference);
    os_jgen_kv_str(g, "origin", v->origin);
    os_jgen_kv_int(g, "latest_version", v->latest_version);
    os_jgen_kv_int(g, "delivered_version", v->delivered_version);
    os_jgen_str(g, "clougistic_id");
    if (v->clougistic_id) os_jgen_str(g, v->clougistic_id); else yajl_gen_null(g);
    os_jgen_kv_str(g, "created_at", v->created_at);
    os_jgen_kv_str(g, "updated_at", v->updated_at);
    os_jgen_str(g, "states");
    yajl_gen_map_open(g);
    for (i = 0; i < 4; i++) {
        if (!v->state[i]) continue;
        os_jgen_str(g, OS_STATE_STEPS[i]);
        yajl_gen_map_open(g);
        os_jgen_kv_str(g, "state", v->state[i]);
        os_jgen_kv_str(g, "at", v->state_at[i]);
        os_jgen_kv_str(g, "cause", v->state_cause[i]);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    os_jgen_str(g, "versions");
    yajl_gen_array_open(g);
    for (i = 0; i < v->versions->nelts; i++) {
        const os_version_view_t *vv = &APR_ARRAY_IDX(v->versions, i, os_version_view_t);
        yajl_gen_map_open(g);
        os_jgen_kv_int(g, "version", vv->version);
        os_jgen_kv_str(g, "received_at", vv->received_at);
        os_jgen_kv_str(g, "digest", vv->digest);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    os_jgen_str(g, "shipments");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    os_jgen_str(g, "events");
    yajl_gen_array_open(g);
    for (i = 0; i < v->events->nelts; i++) {
        const os_event_view_t *ev = &APR_ARRAY_IDX(v->events, i, os_event_view_t);
        yajl_gen_map_open(g);
        os_jgen_kv_str(g, "at", ev->event_at);
        os_jgen_kv_str(g, "kind", ev->kind);
        os_jgen_kv_str(g, "detail", ev->detail);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    os_jgen_str(g, "jobs");
    yajl_gen_array_open(g);
    for (i = 0; i < v->jobs->nelts; i++) {
        const os_job_view_t *j = &APR_ARRAY_IDX(v->jobs, i, os_job_view_t);
        yajl_gen_map_open(g);
        os_jgen_kv_str(g, "kind", j->kind);
        os_jgen_kv_int(g, "version", j->version);
        os_jgen_kv_str(g, "state", j->state);
        os_jgen_kv_int(g, "attempts", j->attempts);
        os_jgen_kv_str(g, "next_try_at", j->due_at);
        os_jgen_str(g, "last_error");
        if (j->last_error) os_jgen_str(g, j->last_error); else yajl_gen_null(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    /* the upstream as a whole: paused while it refuses our credentials or fails for all */
    os_jgen_str(g, "upstream");
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "name", v->paused ? v->paused->name : "clougistic");
    os_jgen_kv_str(g, "state", v->paused ? "paused" : "active");
    if (v->paused) {
        os_jgen_kv_str(g, "since", v->paused->since);
        os_jgen_kv_str(g, "cause", v->paused->cause ? v->paused->cause : "");
    }
    yajl_gen_map_close(g);
    if (v->latest_body) {
        os_json_t *body;
        /* an order stored deeper than the answer can nest (under an older, higher
         * OrderSyncMaxDepth) is left out rather than written as broken JSON */
        if (os_json_parse(r->pool, v->latest_body, strlen(v->latest_body), OS_MAX_DEPTH_LIMIT,
                          &body, NULL) == APR_SUCCESS) {
            os_jgen_str(g, "order");
            os_jgen_value(g, body, 0);
        }
    }
    yajl_gen_map_close(g);
    return os_send_json(r, HTTP_OK, g);
}
