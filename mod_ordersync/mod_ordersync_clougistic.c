/* mod_ordersync_clougistic.c: the enqueue request and its answer (see
 * mod_ordersync_clougistic.h for the invariants). */
#include "mod_ordersync_clougistic.h"
#include "mod_ordersync_body.h"
#include "os_demand.h"
#include "apr_strings.h"
#include "apr_lib.h"

#define OS_ANSWER_KEEP (OS_EXCERPT_MAX * 16)

/* The envelope up to the payload: {"access_key":"...","entity_id":1,"payload": (an entity
 * id of digits is sent as a number, as Clougistic shows it; anything else as a string). */
static const char *envelope_head(apr_pool_t *p, const char *key, const char *entity)
{
    yajl_gen g = os_jgen_create(p, 0);
    const unsigned char *buf;
    size_t len;
    const char *c;
    int digits = *entity && *entity != '0' && strlen(entity) <= 15;

    for (c = entity; *c && digits; c++) digits = apr_isdigit(*c);
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "access_key", key);
    os_jgen_str(g, "entity_id");
    if (digits) yajl_gen_number(g, entity, strlen(entity));
    else os_jgen_str(g, entity);
    yajl_gen_get_buf(g, &buf, &len);
    return apr_pstrcat(p, apr_pstrmemdup(p, (const char *)buf, len), ",\"payload\":", NULL);
}

static os_upstream_t *upstream_make(apr_pool_t *p, const char *name, const char *base,
                                    const char *key, const char *entity, int threshold,
                                    apr_interval_time_t probe_every)
{
    os_upstream_t *u = apr_pcalloc(p, sizeof(*u));
    u->name = name;
    u->url = apr_pstrcat(p, base, OS_ENQUEUE_PATH, NULL);
    u->key = key;
    u->head = envelope_head(p, key, entity);
    os_breaker_init(&u->breaker, threshold, probe_every);
    return u;
}

apr_array_header_t *os_cg_upstreams(apr_pool_t *p, server_rec *s, apr_hash_t **by_source,
                                    int threshold, apr_interval_time_t probe_every)
{
    os_srv_conf_t *sc = os_srv_conf(s);
    apr_array_header_t *ups = apr_array_make(p, 2, sizeof(os_upstream_t *));
    os_upstream_t *hub = NULL;
    int i;

    *by_source = apr_hash_make(p);
    if (sc->cg_entity && sc->cg_key.value) {
        hub = upstream_make(p, "clougistic", sc->cg_url, sc->cg_key.value, sc->cg_entity,
                            threshold, probe_every);
    }
    APR_ARRAY_PUSH(ups, os_upstream_t *) = hub;
    for (i = 0; sc->sources && i < sc->sources->nelts; i++) {
        const os_source_t *src = &APR_ARRAY_IDX(sc->sources, i, os_source_t);
        os_upstream_t *u = hub;
        if (src->entity && src->cg_key.value) {
            u = upstream_make(p, apr_pstrcat(p, "clougistic:", src->id, NULL), sc->cg_url,
                              src->cg_key.value, src->entity, threshold, probe_every);
            APR_ARRAY_PUSH(ups, os_upstream_t *) = u;
        }
        if (u) apr_hash_set(*by_source, src->id, APR_HASH_KEY_STRING, u);
    }
    return ups;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *data)
{
    os_transfer_t *t = data;
    apr_size_t len = size * n, room = OS_ANSWER_KEEP - t->len;
    if (!t->resp) t->resp = apr_palloc(t->job.pool, OS_ANSWER_KEEP + 1);
    if (len > room) len = room;          /* the rest is read and dropped */
    memcpy(t->resp + t->len, ptr, len);
    t->len += len;
    return size * n;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *data)
{
    os_transfer_t *t = data;
    apr_size_t len = size * n;
    if (len > 12 && !strncasecmp(ptr, "Retry-After:", 12)) {
        apr_size_t v = len - 12;
        if (v >= sizeof(t->retry_after)) v = sizeof(t->retry_after) - 1;
        memcpy(t->retry_after, ptr + 12, v);
        t->retry_after[v] = '\0';
        while (v && apr_isspace(t->retry_after[v - 1])) t->retry_after[--v] = '\0';
    }
    else if (len > 5 && !strncmp(ptr, "HTTP/", 5)) {
        t->retry_after[0] = '\0';       /* a new response (after a 100 Continue) */
    }
    return len;
}

CURLMcode os_cg_start(CURLM *multi, os_transfer_t *t, const os_cg_conf_t *conf)
{
    CURL *e = t->easy;
    apr_size_t len;
    const char *body = os_demand_body(t->job.pool, t->up->head, t->job.body, t->job.reference,
                                      t->job.sent_reference, &len);

    t->len = 0;
    t->resp = NULL;
    t->retry_after[0] = t->errbuf[0] = '\0';
    if (!t->headers) {
        t->headers = curl_slist_append(NULL, "Content-Type: application/json");
        t->headers = curl_slist_append(t->headers, "Accept: application/json");
        t->headers = curl_slist_append(t->headers, "Expect:");
    }
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, t->up->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mod_ordersync");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)apr_time_as_msec(conf->connect_timeout));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)apr_time_as_msec(conf->timeout));
    if (conf->http2) {
        /* HTTP/2 where the server offers it over TLS; a new delivery waits for the
         * connection being set up to say whether it multiplexes rather than opening one of
         * its own beside it */
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    }
    else {
        /* HTTP/1.1 on kept-alive connections, one per delivery in flight: measured here
         * 2.8 times as fast as HTTP/2 multiplexed on one connection (BENCHMARKS.md) */
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (conf->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, conf->ca_file);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
#ifdef OS_NO_REUSE
    /* a build for the benchmark's comparison only (make bench-dispatch): every delivery on
     * a connection of its own */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
#endif
    t->started = apr_time_now();
    return curl_multi_add_handle(multi, e);
}

/* The answer's first bytes for the events: valid UTF-8, the access key blanked. */
static const char *excerpt(apr_pool_t *p, const os_transfer_t *t)
{
    char *x, *k;
    apr_size_t n = t->len < OS_EXCERPT_MAX ? t->len : OS_EXCERPT_MAX, klen = strlen(t->up->key);
    if (!t->resp || !n) return "";
    x = apr_pstrmemdup(p, t->resp, n);
    while (klen && (k = strstr(x, t->up->key))) memset(k, '*', klen);
    return os_utf8_safe(p, x);
}

void os_cg_answer(os_transfer_t *t, CURLcode code, apr_pool_t *p, apr_time_t now,
                  os_answer_t *ans, const char **account)
{
    long status = 0;
    apr_interval_time_t took = now - t->started;
    const char *net = NULL;

    if (code != CURLE_OK) {
        net = apr_psprintf(p, "%s%s%s", curl_easy_strerror(code), t->errbuf[0] ? ": " : "",
                           t->errbuf);
    }
    else {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    if (t->resp) t->resp[t->len] = '\0';
    os_clougistic_answer(p, net, (int)status, t->retry_after[0] ? t->retry_after : NULL,
                         t->resp, t->len, t->job.sent_reference, now, ans);
    *account = apr_psprintf(p, "version %d to %s: %s in %" APR_TIME_T_FMT " ms%s%s",
                            t->job.version, t->up->name, ans->reason, apr_time_as_msec(took),
                            ans->kind == OS_ANSWER_DELIVERED || net ? "" : ": ",
                            ans->kind == OS_ANSWER_DELIVERED || net ? "" : excerpt(p, t));
}
