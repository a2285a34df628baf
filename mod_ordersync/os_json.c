/* os_json.c: strict JSON parsing into a pool tree, and generation helpers over yajl_gen. */
#include <stdlib.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <yajl/yajl_parse.h>

#include "os_json.h"

/* ---------------------------------------------------------------- parsing */

/* One open container. Members are collected in scratch arrays and copied into an exact-size
 * vector in the result pool when the container closes, so the tree carries no slack. */
typedef struct {
    os_json_t *node;
    apr_array_header_t *keys;   /* const char * */
    apr_array_header_t *klens;  /* apr_size_t */
    apr_array_header_t *vals;   /* os_json_t * */
    apr_hash_t *seen;           /* a large object's keys so far (see cb_map_key) */
    int hashed;                 /* seen holds this object's keys */
} os_frame_t;

/* Duplicate keys make an order ambiguous, so every key is checked against those before it:
 * by a scan while the object is small (the keys of a Demand order or item), by a hash once
 * it grows past this many keys, so a huge object stays linear. */
#define OS_JSON_SCAN_KEYS 32

typedef struct {
    apr_pool_t *p;              /* result */
    apr_pool_t *scratch;        /* frames, hashes; destroyed when the parse ends */
    os_frame_t *frames;
    int nframes, depth, max_depth;
    os_json_t *root;
    const char *fail_msg;       /* set by a callback that cancels the parse */
    apr_status_t fail_status;
} os_parse_ctx_t;

/* yajl checks only the shape of multi-byte sequences; JSON text must be UTF-8 proper, so
 * overlong forms, surrogates and code points above U+10FFFF are refused here. */
static int utf8_valid(const unsigned char *s, apr_size_t len)
{
    apr_size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        apr_size_t n;
        unsigned cp, min;
        if (c < 0x80) {
            /* plain ASCII, the usual case: eight bytes at a time */
            apr_uint64_t w;
            while (len - i >= sizeof(w)) {
                memcpy(&w, s + i, sizeof(w));
                if (w & APR_UINT64_C(0x8080808080808080))
                    break;
                i += sizeof(w);
            }
            while (i < len && s[i] < 0x80)
                i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)      { n = 1; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (len - i <= n) return 0;
        for (apr_size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += n + 1;
    }
    return 1;
}

static int fail(os_parse_ctx_t *c, apr_status_t st, const char *msg)
{
    c->fail_status = st;
    c->fail_msg = msg;
    return 0;   /* cancels the yajl parse */
}

static int add_value(os_parse_ctx_t *c, os_json_t *v)
{
    os_frame_t *f;
    if (c->depth == 0) {
        c->root = v;
        return 1;
    }
    f = &c->frames[c->depth - 1];
    *(os_json_t **)apr_array_push(f->vals) = v;
    return 1;
}

static os_json_t *new_node(apr_pool_t *p, os_json_type_e type)
{
    os_json_t *v = apr_pcalloc(p, sizeof(*v));
    v->type = type;
    return v;
}

static int cb_null(void *ctx)
{
    os_parse_ctx_t *c = ctx;
    return add_value(c, new_node(c->p, OS_JSON_NULL));
}

static int cb_boolean(void *ctx, int b)
{
    os_parse_ctx_t *c = ctx;
    return add_value(c, new_node(c->p, b ? OS_JSON_TRUE : OS_JSON_FALSE));
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    os_parse_ctx_t *c = ctx;
    os_json_t *v = new_node(c->p, OS_JSON_NUMBER);
    v->str = apr_pstrmemdup(c->p, s, len);
    v->len = len;
    return add_value(c, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    os_parse_ctx_t *c = ctx;
    os_json_t *v;
    if (!utf8_valid(s, len))
        return fail(c, APR_EGENERAL, "invalid UTF-8 in string");
    v = new_node(c->p, OS_JSON_STRING);
    v->str = apr_pstrmemdup(c->p, (const char *)s, len);
    v->len = len;
    return add_value(c, v);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    os_parse_ctx_t *c = ctx;
    os_frame_t *f = &c->frames[c->depth - 1];
    const char *k;
    if (!utf8_valid(s, len))
        return fail(c, APR_EGENERAL, "invalid UTF-8 in object key");
    k = apr_pstrmemdup(c->p, (const char *)s, len);
    if (f->keys->nelts < OS_JSON_SCAN_KEYS) {
        const char **ks = (const char **)f->keys->elts;
        const apr_size_t *ls = (const apr_size_t *)f->klens->elts;
        for (int i = 0; i < f->keys->nelts; i++)
            if (ls[i] == len && !memcmp(ks[i], k, len))
                return fail(c, APR_EGENERAL,
                            apr_psprintf(c->p, "duplicate object key \"%.64s\"", k));
    }
    else {
        if (!f->hashed) {
            const char **ks = (const char **)f->keys->elts;
            const apr_size_t *ls = (const apr_size_t *)f->klens->elts;
            if (f->seen)
                apr_hash_clear(f->seen);
            else
                f->seen = apr_hash_make(c->scratch);
            for (int i = 0; i < f->keys->nelts; i++)
                apr_hash_set(f->seen, ks[i], (apr_ssize_t)ls[i], ks[i]);
            f->hashed = 1;
        }
        if (apr_hash_get(f->seen, k, (apr_ssize_t)len))
            return fail(c, APR_EGENERAL,
                        apr_psprintf(c->p, "duplicate object key \"%.64s\"", k));
        apr_hash_set(f->seen, k, (apr_ssize_t)len, k);
    }
    *(const char **)apr_array_push(f->keys) = k;
    *(apr_size_t *)apr_array_push(f->klens) = len;
    return 1;
}

static int open_container(os_parse_ctx_t *c, os_json_type_e type)
{
    os_json_t *node = new_node(c->p, type);
    os_frame_t *f;
    add_value(c, node);
    if (c->depth >= c->max_depth)
        return fail(c, APR_ENOSPC,
                    apr_psprintf(c->p, "nesting deeper than %d levels", c->max_depth));
    if (c->depth == c->nframes) {
        /* frames are reused across siblings, so memory follows depth, not document size */
        int n = c->nframes ? c->nframes * 2 : 8;
        os_frame_t *nf = apr_pcalloc(c->scratch, sizeof(*nf) * n);
        if (c->nframes)
            memcpy(nf, c->frames, sizeof(*nf) * c->nframes);
        c->frames = nf;
        c->nframes = n;
    }
    f = &c->frames[c->depth++];
    if (!f->vals) {
        f->keys = apr_array_make(c->scratch, 8, sizeof(const char *));
        f->klens = apr_array_make(c->scratch, 8, sizeof(apr_size_t));
        f->vals = apr_array_make(c->scratch, 8, sizeof(os_json_t *));
    }
    else {
        apr_array_clear(f->keys);
        apr_array_clear(f->klens);
        apr_array_clear(f->vals);
    }
    f->hashed = 0;              /* the hash, if any, is cleared when next needed */
    f->node = node;
    return 1;
}

static int close_container(os_parse_ctx_t *c)
{
    os_frame_t *f = &c->frames[--c->depth];
    os_json_t *node = f->node;
    node->count = (apr_size_t)f->vals->nelts;
    node->cap = node->count;
    if (node->count) {
        node->vals = apr_pmemdup(c->p, f->vals->elts, sizeof(os_json_t *) * node->count);
        if (node->type == OS_JSON_OBJECT) {
            node->keys = apr_pmemdup(c->p, f->keys->elts, sizeof(const char *) * node->count);
            node->key_lens = apr_pmemdup(c->p, f->klens->elts, sizeof(apr_size_t) * node->count);
        }
    }
    return 1;
}

static int cb_start_map(void *ctx) { return open_container(ctx, OS_JSON_OBJECT); }
static int cb_start_array(void *ctx) { return open_container(ctx, OS_JSON_ARRAY); }
static int cb_end(void *ctx) { return close_container(ctx); }

static const yajl_callbacks os_callbacks = {
    cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end
};

static apr_status_t free_yajl_handle(void *h)
{
    yajl_free(h);
    return APR_SUCCESS;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char ch = s[k];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* A \u escape that starts a UTF-16 surrogate: "\uD" followed by 8..F, either case. */
static int surrogate_escape_at(const char *buf, apr_size_t len, apr_size_t i)
{
    char h;
    if (len - i < 4 || buf[i + 1] != 'u' || (buf[i + 2] != 'd' && buf[i + 2] != 'D'))
        return 0;
    h = buf[i + 3];
    return (h >= '8' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
}

/* Bytes and escapes yajl would take although they are not JSON as the hub reads it:
 * - \f, \v and NUL between tokens: yajl's lexer takes \f and \v as whitespace and reports a
 *   NUL only as a generic bad character. Inside strings raw control characters are already
 *   yajl errors.
 * - a UTF-16 surrogate escape that is not part of a pair: yajl turns a lone high surrogate
 *   into '?' or merges it with whatever escape follows ("\uD800\u0041" becomes U+10041),
 *   silently changing the text. A \uD800-\uDBFF escape must be directly followed by a
 *   \uDC00-\uDFFF escape, and a low one must directly follow a high one.
 * Returns the offset of the first such byte or escape (its backslash) and sets *msg, or
 * returns len. The scan tracks strings only as far as the text before the offset is JSON,
 * which the caller makes sure of by letting yajl parse that part first. */
static apr_size_t find_not_json(apr_pool_t *p, const char *buf, apr_size_t len,
                                const char **msg)
{
    int in_str = 0, look = 0;
    const char *b;
    /* the usual case, none of them anywhere: vectorised searches, no scan; a body without
     * a surrogate escape costs one memchr per backslash */
    if (memchr(buf, '\f', len) || memchr(buf, '\v', len) || memchr(buf, '\0', len))
        look = 1;
    for (b = buf; !look && (b = memchr(b, '\\', len - (apr_size_t)(b - buf))); b++)
        if (surrogate_escape_at(buf, len, (apr_size_t)(b - buf)))
            look = 1;
    if (!look)
        return len;
    for (apr_size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_str) {
            unsigned u, lo;
            if (ch == '"') {
                in_str = 0;
                continue;
            }
            if (ch != '\\')
                continue;
            if (i + 1 < len && buf[i + 1] == 'u' && len - i >= 6 && hex4(buf + i + 2, &u)
                && u >= 0xD800 && u <= 0xDFFF) {
                if (u >= 0xDC00) {
                    *msg = apr_psprintf(p, "a lone UTF-16 surrogate escape \\u%.4s (a low "
                                        "surrogate must follow a high one)", buf + i + 2);
                    return i;
                }
                if (!(len - i >= 12 && buf[i + 6] == '\\' && buf[i + 7] == 'u'
                      && hex4(buf + i + 8, &lo) && lo >= 0xDC00 && lo <= 0xDFFF)) {
                    *msg = apr_psprintf(p, "a lone UTF-16 surrogate escape \\u%.4s (a high "
                                        "surrogate must be followed by a low one)", buf + i + 2);
                    return i;
                }
                i += 11;   /* the pair */
            }
            else {
                i++;       /* the escaped character */
            }
        }
        else if (ch == '"')
            in_str = 1;
        else if (ch == '\f' || ch == '\v' || ch == '\0') {
            *msg = ch == '\f' ? "form feed is not JSON whitespace"
                 : ch == '\v' ? "vertical tab is not JSON whitespace"
                 : "NUL byte outside a string";
            return i;
        }
    }
    return len;
}

static void locate(const char *buf, apr_size_t len, apr_size_t off, os_json_error_t *err)
{
    apr_size_t line_start = 0;
    unsigned line = 1;
    if (off > len)
        off = len;
    for (apr_size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    err->offset = off;
    err->line = line;
    err->column = (unsigned)(off - line_start) + 1;
}

static const char *yajl_message(apr_pool_t *p, yajl_handle h)
{
    unsigned char *raw = yajl_get_error(h, 0, NULL, 0);
    char *msg = apr_pstrdup(p, raw ? (const char *)raw : "parse error");
    apr_size_t n = strlen(msg);
    if (raw)
        yajl_free_error(h, raw);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    while (*msg == ' ' || *msg == '\n')
        msg++;
    return msg;
}

apr_status_t os_json_parse(apr_pool_t *p, const char *buf, apr_size_t len, int max_depth,
                           os_json_t **out, os_json_error_t *err)
{
    os_parse_ctx_t c;
    os_json_error_t dummy;
    os_json_t *unused;
    yajl_handle h;
    yajl_status ys;
    apr_size_t bad, err_off = 0;
    apr_status_t rv = APR_SUCCESS;
    const char *msg = NULL, *bad_msg = NULL;

    if (!err)
        err = &dummy;
    if (!out)
        out = &unused;   /* a syntax check only */
    memset(err, 0, sizeof(*err));
    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.p = p;
    c.max_depth = max_depth > 0 ? max_depth : OS_JSON_DEFAULT_MAX_DEPTH;
    if (apr_pool_create(&c.scratch, p) != APR_SUCCESS)
        return APR_ENOMEM;

    h = yajl_alloc(&os_callbacks, NULL, &c);
    if (!h) {
        apr_pool_destroy(c.scratch);
        return APR_ENOMEM;
    }
    /* a cleanup, so the handle is freed even if the caller's pool goes away mid-error */
    apr_pool_cleanup_register(c.scratch, h, free_yajl_handle, apr_pool_cleanup_null);
    /* state the strict settings rather than rely on yajl's defaults */
    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_dont_validate_strings, 0);
    yajl_config(h, yajl_allow_trailing_garbage, 0);
    yajl_config(h, yajl_allow_multiple_values, 0);
    yajl_config(h, yajl_allow_partial_values, 0);

    /* Parse only up to the first byte yajl would wrongly skip, so that a genuine error
     * before it is still reported where it is. */
    bad = find_not_json(p, buf, len, &bad_msg);
    ys = yajl_parse(h, (const unsigned char *)buf, bad);
    if (ys != yajl_status_ok) {
        err_off = yajl_get_bytes_consumed(h);
    }
    else if (bad < len) {
        err_off = bad;
        msg = bad_msg;
        rv = APR_EGENERAL;
    }
    else {
        ys = yajl_complete_parse(h);
        /* completion re-lexes a synthetic byte, so its byte count says nothing: the
         * problem is at the end of the input */
        err_off = len;
    }

    if (ys == yajl_status_client_canceled) {
        rv = c.fail_status;
        msg = c.fail_msg;
    }
    else if (ys == yajl_status_error) {
        rv = APR_EGENERAL;
        msg = yajl_message(p, h);
    }
    else if (rv == APR_SUCCESS && !c.root) {
        rv = APR_EGENERAL;
        msg = "no JSON value";
        err_off = len;
    }

    if (rv == APR_SUCCESS) {
        *out = c.root;
    }
    else {
        locate(buf, len, err_off, err);
        err->message = msg;
    }
    apr_pool_destroy(c.scratch);
    return rv;
}

const os_json_t *os_json_get(const os_json_t *obj, const char *key)
{
    apr_size_t klen;
    if (!obj || obj->type != OS_JSON_OBJECT || !key)
        return NULL;
    klen = strlen(key);
    for (apr_size_t i = 0; i < obj->count; i++) {
        apr_size_t l = obj->key_lens ? obj->key_lens[i] : strlen(obj->keys[i]);
        /* the length and the first byte rule out nearly every other key */
        if (l == klen && (!klen || obj->keys[i][0] == key[0])
            && memcmp(obj->keys[i], key, klen) == 0)
            return obj->vals[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------- construction */

os_json_t *os_json_null(apr_pool_t *p) { return new_node(p, OS_JSON_NULL); }

os_json_t *os_json_bool(apr_pool_t *p, int v)
{
    return new_node(p, v ? OS_JSON_TRUE : OS_JSON_FALSE);
}

os_json_t *os_json_stringn(apr_pool_t *p, const char *s, apr_size_t len)
{
    os_json_t *v = new_node(p, OS_JSON_STRING);
    v->str = apr_pstrmemdup(p, s, len);
    v->len = len;
    return v;
}

os_json_t *os_json_string(apr_pool_t *p, const char *s)
{
    return os_json_stringn(p, s, strlen(s));
}

os_json_t *os_json_number(apr_pool_t *p, const char *text)
{
    os_json_t *v = new_node(p, OS_JSON_NUMBER);
    v->str = apr_pstrdup(p, text);
    v->len = strlen(text);
    return v;
}

os_json_t *os_json_int(apr_pool_t *p, apr_int64_t n)
{
    return os_json_number(p, apr_psprintf(p, "%" APR_INT64_T_FMT, n));
}

os_json_t *os_json_object(apr_pool_t *p) { return new_node(p, OS_JSON_OBJECT); }
os_json_t *os_json_array(apr_pool_t *p) { return new_node(p, OS_JSON_ARRAY); }

/* Grows the member vectors; parsed nodes have cap == count, so they grow on first add. */
static void reserve(apr_pool_t *p, os_json_t *c)
{
    apr_size_t ncap;
    /* a hand-made object may lack key_lens: reallocate so os_json_add can fill them */
    if (c->count < c->cap && (c->type != OS_JSON_OBJECT || c->key_lens))
        return;
    ncap = c->cap > c->count ? c->cap : c->count ? c->count * 2 : 8;
    {
        os_json_t **nv = apr_palloc(p, sizeof(*nv) * ncap);
        if (c->count)
            memcpy(nv, c->vals, sizeof(*nv) * c->count);
        c->vals = nv;
    }
    if (c->type == OS_JSON_OBJECT) {
        const char **nk = apr_palloc(p, sizeof(*nk) * ncap);
        apr_size_t *nl = apr_palloc(p, sizeof(*nl) * ncap);
        for (apr_size_t i = 0; i < c->count; i++) {
            nk[i] = c->keys[i];
            nl[i] = c->key_lens ? c->key_lens[i] : strlen(c->keys[i]);
        }
        c->keys = nk;
        c->key_lens = nl;
    }
    c->cap = ncap;
}

void os_json_add(apr_pool_t *p, os_json_t *obj, const char *key, os_json_t *val)
{
    reserve(p, obj);
    obj->keys[obj->count] = apr_pstrdup(p, key);
    obj->key_lens[obj->count] = strlen(key);
    obj->vals[obj->count++] = val;
}

void os_json_push(apr_pool_t *p, os_json_t *arr, os_json_t *val)
{
    reserve(p, arr);
    arr->vals[arr->count++] = val;
}

os_json_t *os_json_copy(apr_pool_t *p, const os_json_t *v)
{
    os_json_t *c = new_node(p, v->type);
    switch (v->type) {
    case OS_JSON_STRING:
    case OS_JSON_NUMBER:
        c->str = apr_pstrmemdup(p, v->str, v->len);
        c->len = v->len;
        break;
    case OS_JSON_OBJECT:
    case OS_JSON_ARRAY:
        c->count = c->cap = v->count;
        if (!v->count)
            break;
        c->vals = apr_palloc(p, sizeof(*c->vals) * v->count);
        if (v->type == OS_JSON_OBJECT) {
            c->keys = apr_palloc(p, sizeof(*c->keys) * v->count);
            c->key_lens = apr_palloc(p, sizeof(*c->key_lens) * v->count);
        }
        for (apr_size_t i = 0; i < v->count; i++) {
            c->vals[i] = os_json_copy(p, v->vals[i]);
            if (v->type == OS_JSON_OBJECT) {
                apr_size_t l = v->key_lens ? v->key_lens[i] : strlen(v->keys[i]);
                c->keys[i] = apr_pstrmemdup(p, v->keys[i], l);
                c->key_lens[i] = l;
            }
        }
        break;
    default:
        break;
    }
    return c;
}

/* ---------------------------------------------------------------- generation */

static apr_status_t free_gen(void *g)
{
    yajl_gen_free(g);
    return APR_SUCCESS;
}

yajl_gen os_jgen_create(apr_pool_t *p, int beautify)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    yajl_gen_config(g, yajl_gen_beautify, beautify ? 1 : 0);
    apr_pool_cleanup_register(p, g, free_gen, apr_pool_cleanup_null);
    return g;
}

void os_jgen_str(yajl_gen g, const char *s)
{
    if (s)
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    else
        yajl_gen_null(g);
}

void os_jgen_kv_str(yajl_gen g, const char *k, const char *v)
{
    os_jgen_str(g, k);
    os_jgen_str(g, v);
}

void os_jgen_kv_int(yajl_gen g, const char *k, apr_int64_t v)
{
    char buf[32];
    int n = apr_snprintf(buf, sizeof(buf), "%" APR_INT64_T_FMT, v);
    os_jgen_str(g, k);
    yajl_gen_number(g, buf, (size_t)n);
}

typedef struct {
    const char *key;
    apr_size_t klen;
    const os_json_t *val;
} os_member_t;

static int member_cmp(const void *a, const void *b)
{
    const os_member_t *x = a, *y = b;
    apr_size_t n = x->klen < y->klen ? x->klen : y->klen;
    int r = memcmp(x->key, y->key, n);
    if (r)
        return r;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* The first failure of a, b: generation goes on after one (the text is dropped then), so
 * the status kept is the one that explains it. */
static yajl_gen_status first_failure(yajl_gen_status a, yajl_gen_status b)
{
    return a != yajl_gen_status_ok ? a : b;
}

yajl_gen_status os_jgen_value(yajl_gen g, const os_json_t *v, int sort_keys)
{
    yajl_gen_status st = yajl_gen_status_ok;
    if (!v)
        return yajl_gen_null(g);
    switch (v->type) {
    case OS_JSON_NULL:   return yajl_gen_null(g);
    case OS_JSON_FALSE:  return yajl_gen_bool(g, 0);
    case OS_JSON_TRUE:   return yajl_gen_bool(g, 1);
    case OS_JSON_NUMBER: return yajl_gen_number(g, v->str, v->len);
    case OS_JSON_STRING:
        return yajl_gen_string(g, (const unsigned char *)v->str, v->len);
    case OS_JSON_ARRAY:
        /* past yajl's depth limit the open fails and writes nothing: stop there rather than
         * write members into the enclosing container */
        if ((st = yajl_gen_array_open(g)) != yajl_gen_status_ok)
            return st;
        for (apr_size_t i = 0; i < v->count && st == yajl_gen_status_ok; i++)
            st = os_jgen_value(g, v->vals[i], sort_keys);
        return first_failure(st, yajl_gen_array_close(g));
    case OS_JSON_OBJECT: {
        /* malloc: the generator has no pool, and this scratch dies with the call */
        os_member_t *m;
        if ((st = yajl_gen_map_open(g)) != yajl_gen_status_ok)
            return st;
        m = v->count ? malloc(sizeof(*m) * v->count) : NULL;
        if (v->count && !m)
            abort();
        for (apr_size_t i = 0; i < v->count; i++) {
            m[i].key = v->keys[i];
            m[i].klen = v->key_lens ? v->key_lens[i] : strlen(v->keys[i]);
            m[i].val = v->vals[i];
        }
        if (sort_keys && v->count > 1)
            qsort(m, v->count, sizeof(*m), member_cmp);
        for (apr_size_t i = 0; i < v->count && st == yajl_gen_status_ok; i++) {
            st = yajl_gen_string(g, (const unsigned char *)m[i].key, m[i].klen);
            if (st == yajl_gen_status_ok)
                st = os_jgen_value(g, m[i].val, sort_keys);
        }
        free(m);
        return first_failure(st, yajl_gen_map_close(g));
    }
    }
    return yajl_gen_status_ok;
}

const char *os_jgen_finish(apr_pool_t *p, yajl_gen g, apr_size_t *len)
{
    const unsigned char *buf = NULL;
    size_t n = 0;
    if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok || !buf) {
        buf = (const unsigned char *)"";
        n = 0;
    }
    if (len)
        *len = n;
    return apr_pstrmemdup(p, (const char *)buf, n);
}

const char *os_json_serialize(apr_pool_t *p, const os_json_t *v, int sort_keys, int beautify,
                              apr_size_t *len)
{
    apr_pool_t *tmp;
    yajl_gen g;
    const char *out;
    /* a subpool frees the generator's buffer now instead of at the end of p's life */
    if (apr_pool_create(&tmp, p) != APR_SUCCESS)
        return NULL;
    g = os_jgen_create(tmp, beautify);
    if (!g || os_jgen_value(g, v, sort_keys) != yajl_gen_status_ok) {
        /* broken text is worse than none: callers refuse what cannot be written */
        apr_pool_destroy(tmp);
        if (len)
            *len = 0;
        return NULL;
    }
    out = os_jgen_finish(p, g, len);
    apr_pool_destroy(tmp);
    return out;
}
