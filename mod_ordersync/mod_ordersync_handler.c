/* mod_ordersync_handler.c: the "ordersync" handler. It finds the route below the <Location>
 * that mounts the hub, answers 404/405 for paths and methods it does not serve, and writes
 * every error as an RFC 9457 problem document. */
#include "mod_ordersync.h"
#include "os_json.h"
#include "mod_ordersync_body.h"
#include "apr_lib.h"

typedef int os_route_fn(request_rec *r, const char *const *params);

typedef struct {
    const char *method;
    const char *pattern;     /* '*' matches one path segment, handed to the route as a param */
    os_route_fn *fn;         /* NULL: the route exists but is not built yet (501) */
} os_route_t;

#define OS_MAX_PARAMS 4

static const os_route_t ROUTES[] = {
    { "POST", "/orders",                   os_intake_orders },
    { "GET",  "/orders/*/*",               os_order_status },
    { "POST", "/api/v1/order/enqueue",     os_intake_enqueue },
    { "POST", "/webhooks/clougistic",      NULL },
    { "GET",  "/admin",                    NULL },
    { "GET",  "/admin/",                   NULL },
    { "GET",  "/admin/orders",             NULL },
    { "GET",  "/admin/orders/*/*",         NULL },
    { "POST", "/admin/orders/*/*/replay",  os_admin_replay },
    { "POST", "/admin/replay",             NULL },
    { "POST", "/admin/pause",              NULL },
    { "POST", "/admin/resume",             NULL },
    { "GET",  "/admin/metrics",            NULL },
};

/* Matches `path` against `pattern`, segment by segment; '*' takes one non-empty segment. */
static int route_match(apr_pool_t *p, const char *pattern, const char *path,
                       const char **params, int *nparams)
{
    *nparams = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            const char *end = strchr(path, '/');
            apr_size_t n = end ? (apr_size_t)(end - path) : strlen(path);
            if (!n || *nparams == OS_MAX_PARAMS) return 0;
            params[(*nparams)++] = apr_pstrmemdup(p, path, n);
            path += n;
            pattern++;
        }
        else if (*pattern++ != *path++) {
            return 0;
        }
    }
    return !*pattern && !*path;
}

/* The hub's routes are relative to the <Location> that set the handler (found at configtest). */
static const char *route_path(request_rec *r)
{
    os_srv_conf_t *sc = os_srv_conf(r->server);
    const char *best = NULL;
    apr_size_t best_len = 0;
    int i;

    for (i = 0; i < sc->mounts->nelts; i++) {
        const char *m = APR_ARRAY_IDX(sc->mounts, i, const char *);
        apr_size_t n = strlen(m);
        if (n == 1 && m[0] == '/') n = 0;
        if (!strncmp(r->uri, m, n) && (r->uri[n] == '/' || !r->uri[n]) && (!best || n > best_len)) {
            best = m;
            best_len = n;
        }
    }
    return best ? r->uri + best_len : NULL;
}

const char *os_hub_base(request_rec *r)
{
    const char *rel = route_path(r);
    return rel ? apr_pstrmemdup(r->pool, r->uri, (apr_size_t)(rel - r->uri)) : "";
}

/* The hub's URLs are not files: skip the filesystem walk (stat and .htaccess lookups of
 * every directory above DocumentRoot) for them, as mod_proxy does for proxied URLs. */
int os_map_to_storage(request_rec *r)
{
    return route_path(r) ? OK : DECLINED;
}

int os_handler(request_rec *r)
{
    const char *path, *params[OS_MAX_PARAMS + 1];
    const char *allow = NULL;
    int i, nparams;

    if (!r->handler || strcmp(r->handler, OS_HANDLER_NAME)) return DECLINED;

    path = route_path(r);
    if (!path) {
        return os_problem(r, HTTP_NOT_FOUND, "not-found", "Not Found",
                          "this URL is not below a <Location> that mounts the order hub");
    }
    for (i = 0; i < (int)(sizeof(ROUTES) / sizeof(ROUTES[0])); i++) {
        const os_route_t *rt = &ROUTES[i];
        if (!route_match(r->pool, rt->pattern, path, params, &nparams)) continue;
        params[nparams] = NULL;
        if (!strcmp(r->method, rt->method)
            || (r->header_only && !strcmp(rt->method, "GET"))) {
            if (!rt->fn) {
                return os_problem(r, HTTP_NOT_IMPLEMENTED, "not-implemented", "Not Implemented",
                                  apr_psprintf(r->pool, "%s %s is part of the hub's interface "
                                               "but not available in this version",
                                               rt->method, rt->pattern));
            }
            return rt->fn(r, params);
        }
        allow = allow ? apr_pstrcat(r->pool, allow, ", ", rt->method, NULL) : rt->method;
        if (!strcmp(rt->method, "GET")) allow = apr_pstrcat(r->pool, allow, ", HEAD", NULL);
    }
    if (allow) {
        apr_table_setn(r->headers_out, "Allow", allow);
        return os_problem(r, HTTP_METHOD_NOT_ALLOWED, "method-not-allowed", "Method Not Allowed",
                          apr_psprintf(r->pool, "%s is not allowed here; allowed: %s",
                                       r->method, allow));
    }
    return os_problem(r, HTTP_NOT_FOUND, "not-found", "Not Found",
                      apr_psprintf(r->pool, "the order hub has no route %s", path));
}

/* ---- answers ---------------------------------------------------------------------- */

static int send_body(request_rec *r, int status, const char *ctype, yajl_gen g)
{
    apr_size_t len;
    const char *body = os_jgen_finish(r->pool, g, &len);

    r->status = status;
    ap_set_content_type(r, ctype);
    ap_set_content_length(r, len + 1);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
        ap_rputs("\n", r);
    }
    return OK;
}

int os_send_json(request_rec *r, int status, yajl_gen g)
{
    return send_body(r, status, "application/json", g);
}

/* The problem's "instance": the request's path as it was sent (a URI reference, still
 * percent-encoded), with any byte that is not printable ASCII percent-encoded too, so that
 * the answer is valid UTF-8 whatever bytes the request line held. */
static const char *problem_instance(request_rec *r)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)(r->parsed_uri.path ? r->parsed_uri.path
                                                                        : r->uri);
    apr_size_t i, odd = 0;
    char *out, *o;

    if (!u) return NULL;
    for (i = 0; u[i]; i++) odd += u[i] < 0x21 || u[i] > 0x7E;
    if (!odd) return (const char *)u;
    o = out = apr_palloc(r->pool, i + odd * 2 + 1);
    for (i = 0; u[i]; i++) {
        if (u[i] < 0x21 || u[i] > 0x7E) {
            *o++ = '%';
            *o++ = hex[u[i] >> 4];
            *o++ = hex[u[i] & 15];
        }
        else {
            *o++ = (char)u[i];
        }
    }
    *o = '\0';
    return out;
}

/* Every string a problem carries is valid UTF-8: a detail that quotes the request's bytes
 * (a path, a header) has invalid sequences replaced by U+FFFD. */
yajl_gen os_problem_begin(request_rec *r, int status, const char *slug, const char *title,
                          const char *detail)
{
    yajl_gen g = os_jgen_create(r->pool, 0);
    /* at LogLevel ordersync:debug every refusal says why (the detail never holds a secret) */
    if (status < 500) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "ordersync: %s %s: %d %s: %s", r->method,
                      r->uri, status, slug, detail ? detail : title);
    }
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "type", apr_pstrcat(r->pool, OS_PROBLEM_TYPE_BASE, slug, NULL));
    os_jgen_kv_str(g, "title", title);
    os_jgen_kv_int(g, "status", status);
    if (detail) os_jgen_kv_str(g, "detail", os_utf8_safe(r->pool, detail));
    os_jgen_kv_str(g, "instance", problem_instance(r));
    return g;
}

int os_problem_send(request_rec *r, int status, yajl_gen g)
{
    yajl_gen_map_close(g);
    /* the client's problem is not the server's: debug level keeps the error log for faults */
    ap_log_rerror(APLOG_MARK, (status >= 500 && status != HTTP_NOT_IMPLEMENTED) ? APLOG_WARNING : APLOG_DEBUG, 0, r,
                  "ordersync: answered %d to %s %s", status, r->method, r->uri);
    return send_body(r, status, "application/problem+json", g);
}

int os_problem(request_rec *r, int status, const char *slug, const char *title, const char *detail)
{
    return os_problem_send(r, status, os_problem_begin(r, status, slug, title, detail));
}

const char *os_bearer_token(request_rec *r, int *had)
{
    const char *h = apr_table_get(r->headers_in, "Authorization");
    *had = 0;
    if (!h) return NULL;
    while (apr_isspace(*h)) h++;
    if (strncasecmp(h, "Bearer ", 7)) return NULL;
    *had = 1;
    for (h += 7; apr_isspace(*h); h++);
    return h;
}

int os_unauthorized(request_rec *r, const char *realm, const char *detail, int had_credentials)
{
    apr_table_setn(r->headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, "Bearer realm=\"%s\"%s", realm,
                                had_credentials ? ", error=\"invalid_token\"" : ""));
    return os_problem(r, HTTP_UNAUTHORIZED, "unauthorized", "Unauthorized", detail);
}
