/* mod_ordersync_body.c: the request body, read into one buffer that grows with the bytes
 * received (a client that claims 64 MB and sends nothing costs one small block, not 64 MB),
 * the streaming scan the drop-in route uses to find the envelope's access_key before the
 * rest of the body is read, and the UTF-8 repair for text that goes into answers. */
#include "mod_ordersync.h"
#include "mod_ordersync_body.h"

#include <stdlib.h>
#include <yajl/yajl_parse.h>

/* ---- the body ------------------------------------------------------------------- */

/* The buffer lives outside the request pool so that growing it does not leave every
 * smaller copy behind in the pool; the pool's cleanup frees it. */
typedef struct {
    char *b;
} os_body_buf_t;

static apr_status_t body_buf_free(void *data)
{
    os_body_buf_t *bb = data;
    free(bb->b);
    bb->b = NULL;
    return APR_SUCCESS;
}

/* An answer that leaves the rest of the body unread must not keep the connection: what
 * follows on it would be taken for the next request. */
static int stop_reading(request_rec *r, int status)
{
    r->connection->keepalive = AP_CONN_CLOSE;
    return status;
}

int os_body_read(request_rec *r, apr_int64_t max, os_body_peek_fn *peek, void *baton,
                 char **buf, apr_size_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    /* room for the limit, one byte more (to see that there is more) and the NUL */
    apr_size_t limit = (apr_size_t)max + 2;
    apr_size_t cap, used = 0;
    os_body_buf_t *bb;
    long n;
    int rc;

    *buf = NULL;
    *len = 0;
    if (cl && apr_atoi64(cl) > max) return stop_reading(r, HTTP_REQUEST_ENTITY_TOO_LARGE);
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) return stop_reading(r, rc);
    cap = OS_BODY_FIRST_BLOCK < limit ? OS_BODY_FIRST_BLOCK : limit;
    bb = apr_palloc(r->pool, sizeof(*bb));
    if (!(bb->b = malloc(cap))) return stop_reading(r, HTTP_SERVICE_UNAVAILABLE);
    apr_pool_cleanup_register(r->pool, bb, body_buf_free, apr_pool_cleanup_null);
    if (ap_should_client_block(r)) {
        for (;;) {
            if (used + 1 >= cap) {
                apr_size_t ncap = cap * 2 < limit ? cap * 2 : limit;
                char *nb = realloc(bb->b, ncap);
                if (!nb) return stop_reading(r, HTTP_SERVICE_UNAVAILABLE);
                bb->b = nb;
                cap = ncap;
            }
            n = ap_get_client_block(r, bb->b + used, cap - used - 1);
            if (n < 0) return stop_reading(r, HTTP_BAD_REQUEST);
            if (n == 0) break;
            used += n;
            if ((apr_int64_t)used > max) return stop_reading(r, HTTP_REQUEST_ENTITY_TOO_LARGE);
            bb->b[used] = '\0';
            if (peek && peek(r, baton, bb->b, used - n, used) != OK) return stop_reading(r, DONE);
        }
    }
    bb->b[used] = '\0';
    *buf = bb->b;
    *len = used;
    return OK;
}

/* ---- the scan ------------------------------------------------------------------- */

struct os_scan_t {
    yajl_handle h;
    const char *name;
    apr_size_t name_len;
    apr_pool_t *p;
    int depth;           /* containers open around the current token */
    int want;            /* the next value at depth 1 is the member's */
    os_scan_e state;
    char *value;
    apr_size_t value_len;
};

/* A value of any kind at the current depth. Returns 0 (stop) once the answer is known. */
static int scan_value(os_scan_t *s, const unsigned char *str, size_t len, int is_string)
{
    if (s->depth == 0) {
        s->state = OS_SCAN_ABSENT;       /* a scalar document: not an object */
        return 0;
    }
    if (s->depth == 1 && s->want) {
        if (is_string) {
            s->value = apr_pstrmemdup(s->p, (const char *)str, len);
            s->value_len = len;
            s->state = OS_SCAN_STRING;
        }
        else {
            s->state = OS_SCAN_NOT_STRING;
        }
        return 0;
    }
    return 1;
}

static int scan_null(void *ctx) { return scan_value(ctx, NULL, 0, 0); }
static int scan_bool(void *ctx, int b) { (void)b; return scan_value(ctx, NULL, 0, 0); }
static int scan_number(void *ctx, const char *t, size_t l) { (void)t; (void)l; return scan_value(ctx, NULL, 0, 0); }
static int scan_string(void *ctx, const unsigned char *str, size_t len)
{
    return scan_value(ctx, str, len, 1);
}

static int scan_open(os_scan_t *s, int is_map)
{
    if ((s->depth == 0 && !is_map) || (s->depth == 1 && s->want)) {
        s->state = s->depth == 0 ? OS_SCAN_ABSENT : OS_SCAN_NOT_STRING;
        return 0;
    }
    s->depth++;
    return 1;
}

static int scan_start_map(void *ctx) { return scan_open(ctx, 1); }
static int scan_start_array(void *ctx) { return scan_open(ctx, 0); }

static int scan_key(void *ctx, const unsigned char *key, size_t len)
{
    os_scan_t *s = ctx;
    if (s->depth == 1) s->want = len == s->name_len && !memcmp(key, s->name, len);
    return 1;
}

static int scan_close(void *ctx)
{
    os_scan_t *s = ctx;
    if (--s->depth == 0) {
        s->state = OS_SCAN_ABSENT;       /* the object ended without the member */
        return 0;
    }
    return 1;
}

static const yajl_callbacks scan_callbacks = {
    scan_null, scan_bool, NULL, NULL, scan_number, scan_string,
    scan_start_map, scan_key, scan_close, scan_start_array, scan_close
};

static apr_status_t scan_free(void *data)
{
    os_scan_t *s = data;
    if (s->h) yajl_free(s->h);
    s->h = NULL;
    return APR_SUCCESS;
}

os_scan_t *os_scan_create(apr_pool_t *p, const char *name)
{
    os_scan_t *s = apr_pcalloc(p, sizeof(*s));
    s->p = p;
    s->name = name;
    s->name_len = strlen(name);
    s->state = OS_SCAN_MORE;
    s->h = yajl_alloc(&scan_callbacks, NULL, s);
    if (!s->h) {
        s->state = OS_SCAN_SYNTAX;
        return s;
    }
    /* the same grammar as the full parse (os_json_parse): strict RFC 8259 */
    yajl_config(s->h, yajl_allow_comments, 0);
    yajl_config(s->h, yajl_dont_validate_strings, 0);
    apr_pool_cleanup_register(p, s, scan_free, apr_pool_cleanup_null);
    return s;
}

os_scan_e os_scan_feed(os_scan_t *s, const char *data, apr_size_t len)
{
    yajl_status ys;
    if (s->state != OS_SCAN_MORE || !len) return s->state;
    ys = yajl_parse(s->h, (const unsigned char *)data, len);
    if (ys == yajl_status_error && s->state == OS_SCAN_MORE) s->state = OS_SCAN_SYNTAX;
    return s->state;
}

const char *os_scan_value(const os_scan_t *s, apr_size_t *len)
{
    if (len) *len = s->value_len;
    return s->value;
}

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0. */
static apr_size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80
            ? 4 : 0;
    }
    return 0;
}

const char *os_utf8_safe(apr_pool_t *p, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t i, n, bad = 0, len;
    char *out, *o;

    if (!s) return NULL;
    for (i = 0; u[i]; i += n ? n : 1) {
        n = utf8_seq(u + i);
        if (!n) bad++;
    }
    if (!bad) return s;
    len = i;
    o = out = apr_palloc(p, len + bad * 2 + 1);
    for (i = 0; u[i]; ) {
        n = utf8_seq(u + i);
        if (n) {
            memcpy(o, u + i, n);
            o += n;
            i += n;
        }
        else {
            memcpy(o, "\xEF\xBF\xBD", 3);    /* U+FFFD REPLACEMENT CHARACTER */
            o += 3;
            i++;
        }
    }
    *o = '\0';
    return out;
}
