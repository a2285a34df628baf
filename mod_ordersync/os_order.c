/* os_order.c: validation and normalisation of the Demand payload.
 *
 * Documented normalisations (the Demand document's own example relies on these habits):
 *
 * 1. Numbers sent as strings. Integer fields (status, type, flag_partial, priority,
 *    allocation_type) accept a JSON integer or a string holding one ("0"); decimal fields
 *    (cod_amount, weight, unit_price, qty, cost) accept a JSON number or a string matching
 *    ^-?[0-9]+(\.[0-9]+)?$ ("50.00"). No exponents, and no conversion through floating point
 *    ever: the decimal text is kept exactly, with only redundant leading zeros of the integer
 *    part removed ("050.5" -> 50.5) and the sign of a zero dropped ("-0.00" -> 0.00) so that
 *    it is a valid JSON number. In the normalised payload decimals are JSON numbers with that
 *    text ("50.00" -> 50.00) and integers are JSON integers ("0" -> 0).
 * 2. "" and null mean "not set" for every optional field ("flag_partial": "" is absent).
 *    For a required field they are a "required" violation, as is a string of only blanks.
 * 3. shipping_street_full / billing_street_full stand in for street + housenumber
 *    (+ housenumber_ext), split by the rule in os_street.h ("Main Street 12a" -> "Main
 *    Street", "12", "a"). Failing that: violation "street_full". Explicit street /
 *    housenumber / housenumber_ext fields, when given, win over the split. The *_street_full
 *    value itself is kept in the normalised payload beside the split fields.
 * 4. The printed nested items form "items": [[ {...} ]]: an element of items that is itself
 *    an array is flattened one level (its objects become items; violation paths keep the
 *    original position, "$.items[0][1].qty").
 * 5. Top-level shipping_method is the field shipping_ + method (no unknown_field).
 * 6. Case: currency and country codes are upper-cased ("usd" -> "USD", "nl" -> "NL").
 * 7. customer_id and items[].reference accept a JSON integer, kept as its text ("1").
 *    items[].is_kit accepts true/false, 0/1, "0"/"1", "true"/"false" and becomes a boolean.
 * 8. Passthrough objects (options, custom_options, packing) are copied unchanged, keys
 *    beginning with "@" included; they are only checked for being objects (and
 *    packing.additional_labels for being an array of objects).
 *
 * The normalised payload lists fields in the Demand document's order with unset fields
 * left out (status and priority are always present); the canonical form is that tree
 * serialised with sorted keys and no whitespace, so key order and "0" versus 0 in the
 * input do not change the digest.
 *
 * Note: the Demand document names no billing_method, so it is an unknown field.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "os_order.h"
#include "os_fields.h"
#include "os_street.h"

/* ---------------------------------------------------------------- violations */

typedef struct {
    apr_pool_t *p;
    apr_size_t max_items, max_string;
    apr_array_header_t *viol;
    int nviol;
} os_vctx_t;

/* The field as a reader names it: the path without its "$." root. */
static const char *field_name(const char *path)
{
    if (path[0] == '$' && path[1] == '.')
        return path + 2;
    if (path[0] == '$' && path[1] == '\0')
        return "payload";
    return path + (path[0] == '$');
}

static void violate(os_vctx_t *c, const char *path, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void violate(os_vctx_t *c, const char *path, const char *rule, const char *fmt, ...)
{
    os_violation_t *v = apr_array_push(c->viol);
    va_list ap;
    va_start(ap, fmt);
    v->path = apr_pstrdup(c->p, path);   /* callers may build paths in their own buffers */
    v->rule = rule;
    v->message = apr_pstrcat(c->p, field_name(path), " ", apr_pvsprintf(c->p, fmt, ap), NULL);
    va_end(ap);
    c->nviol++;
}

/* The offending value as it appeared, short enough for a message. */
static const char *got(apr_pool_t *p, const os_json_t *v)
{
    switch (v->type) {
    case OS_JSON_NULL:   return "null";
    case OS_JSON_TRUE:   return "true";
    case OS_JSON_FALSE:  return "false";
    case OS_JSON_OBJECT: return "an object";
    case OS_JSON_ARRAY:  return "an array";
    case OS_JSON_NUMBER:
        return v->len > 40 ? apr_psprintf(p, "%.40s...", v->str) : v->str;
    case OS_JSON_STRING: {
        os_json_t s = *v;
        const char *q;
        if (s.len > 40) {
            /* cut on a character boundary so the message stays UTF-8 */
            apr_size_t n = 40;
            while (n > 0 && ((unsigned char)s.str[n] & 0xC0) == 0x80)
                n--;
            s.len = n;
        }
        q = os_json_serialize(p, &s, 0, 0, NULL);
        return s.len < v->len ? apr_pstrcat(p, q, "...", NULL) : q;
    }
    }
    return "?";
}

static const char *path_key(apr_pool_t *p, const char *parent, const char *key)
{
    const char *k;
    int plain = (*key != '\0');
    for (k = key; *k; k++) {
        if (!(apr_isalnum(*k) || *k == '_' || *k == '@' || *k == '-'))
            plain = 0;
    }
    if (plain)
        return apr_pstrcat(p, parent, ".", key, NULL);
    return apr_pstrcat(p, parent, "[", os_json_serialize(p, os_json_string(p, key), 0, 0, NULL),
                       "]", NULL);
}

/* a followed by b in buf (cut to fit, which the short names of this file never need): the
 * paths and keys of fields, built without allocating since nearly every field is valid */
static const char *join(char *buf, apr_size_t size, const char *a, const char *b)
{
    apr_size_t la = strlen(a), lb = strlen(b);
    if (la >= size)
        la = size - 1;
    if (lb >= size - la)
        lb = size - la - 1;
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    buf[la + lb] = '\0';
    return buf;
}

static int is_unset(const os_json_t *v)
{
    return !v || v->type == OS_JSON_NULL || (v->type == OS_JSON_STRING && v->len == 0);
}

static int is_blank(const os_json_t *v)
{
    for (apr_size_t i = 0; i < v->len; i++)
        if (!apr_isspace(v->str[i]))
            return 0;
    return 1;
}

static apr_size_t utf8_chars(const char *s, apr_size_t len)
{
    apr_size_t n = 0;
    for (apr_size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* ---------------------------------------------------------------- scalar rules */

enum { OS_STR_PLAIN = 0, OS_STR_IDENT = 1 };

/* A reference and a source id are path segments of the order's status URL,
 * <base>/orders/<source_id>/<reference>, where every other byte is percent-encoded. A '/'
 * would split the segment and "." or ".." would be resolved away (x/../WEB-1001 names order
 * WEB-1001), so the URL would reach another order or none. A backslash is refused with the
 * '/': clients, proxies and servers on Windows take it for one. 0 (violation appended)
 * when v cannot be such a segment. */
static int ident_in_url(os_vctx_t *c, const char *path, const os_json_t *v)
{
    int slash = memchr(v->str, '/', v->len) != NULL;
    int backslash = memchr(v->str, '\\', v->len) != NULL;
    const char *name = !strcmp(path, "$.source_id") ? "<source_id>" : "<reference>";
    if (slash || backslash) {
        violate(c, path, "format", "must not contain %s (the order's status URL is "
                "<base>/orders/<source_id>/<reference>, and %s is one segment of it), got %s",
                slash && backslash ? "'/' or '\\'" : slash ? "'/'" : "'\\'", name,
                got(c->p, v));
        return 0;
    }
    if (!strcmp(v->str, ".") || !strcmp(v->str, "..")) {
        violate(c, path, "format", "must not be '.' or '..' (the order's status URL is "
                "<base>/orders/<source_id>/<reference>, where %s would be resolved away), "
                "got %s", name, got(c->p, v));
        return 0;
    }
    return 1;
}

/* A string field. Returns the value, or NULL when unset or invalid (violation appended). */
static const char *want_string(os_vctx_t *c, const char *path, const os_json_t *v,
                               int required, int kind)
{
    if (is_unset(v)) {
        if (required)
            violate(c, path, "required", "is required");
        return NULL;
    }
    if (v->type != OS_JSON_STRING) {
        violate(c, path, "type", "must be a string, got %s", got(c->p, v));
        return NULL;
    }
    if (v->len > c->max_string) {
        violate(c, path, "max_length", "must be at most %" APR_SIZE_T_FMT " bytes long, got %"
                APR_SIZE_T_FMT, c->max_string, v->len);
        return NULL;
    }
    if (memchr(v->str, '\0', v->len)) {
        violate(c, path, "format", "must not contain a NUL character");
        return NULL;
    }
    if (required && is_blank(v)) {
        violate(c, path, "required", "is required, got only blanks");
        return NULL;
    }
    if (kind == OS_STR_IDENT) {
        apr_size_t n = utf8_chars(v->str, v->len);
        for (apr_size_t i = 0; i < v->len; i++) {
            unsigned char ch = (unsigned char)v->str[i];
            if (ch < 0x20 || ch == 0x7f) {
                violate(c, path, "format", "must not contain control characters, got %s",
                        got(c->p, v));
                return NULL;
            }
        }
        if (n > OS_ORDER_MAX_REFERENCE) {
            violate(c, path, "max_length", "must be at most %d characters long, got %"
                    APR_SIZE_T_FMT, OS_ORDER_MAX_REFERENCE, n);
            return NULL;
        }
        if (!ident_in_url(c, path, v))
            return NULL;
    }
    return v->str;
}

static int integer_text(const char *s, apr_size_t len)
{
    apr_size_t i = (len && s[0] == '-');
    if (i == len)
        return 0;
    for (; i < len; i++)
        if (!apr_isdigit(s[i]))
            return 0;
    return 1;
}

/* A string, or a JSON integer turned into its text (customer_id, items[].reference). */
static const char *want_string_or_int(os_vctx_t *c, const char *path, const os_json_t *v)
{
    if (v && v->type == OS_JSON_NUMBER) {
        if (!integer_text(v->str, v->len)) {
            violate(c, path, "type", "must be a string or an integer, got %s", got(c->p, v));
            return NULL;
        }
        return v->str;
    }
    if (v && v->type != OS_JSON_STRING && !is_unset(v)) {
        violate(c, path, "type", "must be a string or an integer, got %s", got(c->p, v));
        return NULL;
    }
    return want_string(c, path, v, 0, OS_STR_PLAIN);
}

/* Parses -?[0-9]+ into *out without overflow. */
static int parse_int64(const char *s, apr_size_t len, apr_int64_t *out)
{
    apr_size_t i = 0;
    int neg = 0;
    apr_uint64_t acc = 0, limit;
    if (!integer_text(s, len))
        return 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
    }
    limit = neg ? (apr_uint64_t)APR_INT64_MAX + 1 : (apr_uint64_t)APR_INT64_MAX;
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (limit - d) / 10)
            return 0;
        acc = acc * 10 + d;
    }
    *out = neg ? (apr_int64_t)(0 - acc) : (apr_int64_t)acc;
    return 1;
}

/* An integer field, optionally restricted to an enumeration. Returns 1 and sets *out when
 * given and valid, 0 when unset, -1 when invalid (violation appended). */
static int want_int(os_vctx_t *c, const char *path, const os_json_t *v, int required,
                    const int *allowed, const char *allowed_text, apr_int64_t *out)
{
    if (is_unset(v)) {
        if (required)
            violate(c, path, "required", "is required");
        return 0;
    }
    if ((v->type != OS_JSON_NUMBER && v->type != OS_JSON_STRING)
        || !integer_text(v->str, v->len)) {
        violate(c, path, "type", "must be an integer, got %s", got(c->p, v));
        return -1;
    }
    if (!parse_int64(v->str, v->len, out)) {
        violate(c, path, "type", "must be an integer within 64 bits, got %s", got(c->p, v));
        return -1;
    }
    if (allowed) {
        for (const int *a = allowed; *a >= 0; a++)
            if (*out == *a)
                return 1;
        violate(c, path, "enum", "must be one of %s, got %s", allowed_text, got(c->p, v));
        return -1;
    }
    return 1;
}

enum { OS_DEC_ANY, OS_DEC_NONNEG, OS_DEC_POSITIVE };

/* A decimal field. Returns its normalised text, or NULL when unset or invalid. The text
 * never passes through a double: an amount is exactly what the shop sent. */
static const char *want_decimal(os_vctx_t *c, const char *path, const os_json_t *v,
                                int required, int bound)
{
    const char *s, *digits, *dot;
    apr_size_t len, i;
    int neg, zero = 1;

    if (is_unset(v)) {
        if (required)
            violate(c, path, "required", "is required");
        return NULL;
    }
    if (v->type != OS_JSON_NUMBER && v->type != OS_JSON_STRING) {
        violate(c, path, "type", "must be a number, got %s", got(c->p, v));
        return NULL;
    }
    s = v->str;
    len = v->len;
    neg = (len && s[0] == '-');
    i = (apr_size_t)neg;
    digits = s + i;
    dot = NULL;
    if (i == len || !apr_isdigit(s[i]))
        goto bad;
    for (; i < len; i++) {
        if (apr_isdigit(s[i])) {
            if (s[i] != '0')
                zero = 0;
        }
        else if (s[i] == '.' && !dot && i + 1 < len)
            dot = s + i;
        else
            goto bad;
    }
    if (dot && !apr_isdigit(dot[1]))
        goto bad;

    if (bound == OS_DEC_POSITIVE && (neg || zero)) {
        violate(c, path, "min", "must be a number above 0, got %s", got(c->p, v));
        return NULL;
    }
    if (bound == OS_DEC_NONNEG && neg && !zero) {
        violate(c, path, "min", "must be a number of 0 or more, got %s", got(c->p, v));
        return NULL;
    }
    /* JSON numbers cannot carry leading zeros, and -0 would make two spellings of zero */
    while (digits[0] == '0' && apr_isdigit(digits[1]))
        digits++;
    if (neg && !zero)
        return apr_pstrcat(c->p, "-", apr_pstrmemdup(c->p, digits, (s + len) - digits), NULL);
    return apr_pstrmemdup(c->p, digits, (s + len) - digits);

bad:
    violate(c, path, "decimal", "must be a decimal number like 12 or 12.50 (no exponent), got %s",
            got(c->p, v));
    return NULL;
}

static const char *want_datetime(os_vctx_t *c, const char *path, const os_json_t *v)
{
    const char *s = want_string(c, path, v, 0, OS_STR_PLAIN);
    if (s && !os_order_datetime_valid(s)) {
        violate(c, path, "format", "must be a real date and time as Y-m-d H:i:s "
                "(e.g. \"2019-04-18 08:47:25\"), got %s", got(c->p, v));
        return NULL;
    }
    return s;
}

/* Upper-cases an all-letter code of exactly n characters; NULL when it is not one. */
static char *letters_upper(apr_pool_t *p, const os_json_t *v, apr_size_t n)
{
    char *u;
    if (v->len != n)
        return NULL;
    u = apr_pstrmemdup(p, v->str, n);
    for (apr_size_t i = 0; i < n; i++) {
        if (!((u[i] >= 'A' && u[i] <= 'Z') || (u[i] >= 'a' && u[i] <= 'z')))
            return NULL;
        u[i] = (char)apr_toupper(u[i]);
    }
    return u;
}

static const char *want_currency(os_vctx_t *c, const char *path, const os_json_t *v)
{
    const char *u;
    if (!want_string(c, path, v, 1, OS_STR_PLAIN))
        return NULL;
    if (!(u = letters_upper(c->p, v, 3))) {
        violate(c, path, "currency", "must be an ISO 4217 code of 3 letters (e.g. \"EUR\"), "
                "got %s", got(c->p, v));
        return NULL;
    }
    return u;
}

static const char *want_country(os_vctx_t *c, const char *path, const os_json_t *v,
                                int required)
{
    const char *u;
    if (!want_string(c, path, v, required, OS_STR_PLAIN))
        return NULL;
    if (!(u = letters_upper(c->p, v, 2)) || !os_order_country_known(u)) {
        violate(c, path, "country", "must be an assigned ISO 3166-1 alpha-2 country code "
                "(e.g. \"NL\"), got %s", got(c->p, v));
        return NULL;
    }
    return u;
}

static const char *want_email(os_vctx_t *c, const char *path, const os_json_t *v)
{
    const char *s = want_string(c, path, v, 0, OS_STR_PLAIN);
    const char *at, *dot;
    int okay;
    if (!s)
        return NULL;
    at = strchr(s, '@');
    okay = at && at != s && !strchr(at + 1, '@');
    if (okay) {
        dot = strchr(at + 1, '.');
        okay = dot && dot != at + 1 && dot[1] != '\0' && s[strlen(s) - 1] != '.';
    }
    for (const char *k = s; okay && *k; k++)
        if (apr_isspace(*k))
            okay = 0;
    if (!okay) {
        violate(c, path, "email", "must be an e-mail address (name@domain.tld), got %s",
                got(c->p, v));
        return NULL;
    }
    return s;
}

/* Passthrough object: copied unchanged. Returns NULL when unset or invalid. */
static os_json_t *want_object(os_vctx_t *c, const char *path, const os_json_t *v)
{
    if (is_unset(v))
        return NULL;
    if (v->type != OS_JSON_OBJECT) {
        violate(c, path, "type", "must be an object, got %s", got(c->p, v));
        return NULL;
    }
    return os_json_copy(c->p, v);
}

/* ---------------------------------------------------------------- address */

static void put_str(apr_pool_t *p, os_json_t *obj, const char *key, const char *v)
{
    if (v)
        os_json_add(p, obj, key, os_json_string(p, v));
}

static void address(os_vctx_t *c, const os_json_t *in, os_json_t *out, const char *prefix,
                    int required)
{
    apr_pool_t *p = c->p;
    const char *f[14] = { 0 };   /* indexed like os_order_addr_fields */
    const char *split_street = NULL, *split_number = NULL, *split_ext = NULL;
    int split_failed = 0;
    char pre[16], pbuf[64], kbuf[64];   /* "$.shipping_", a field's path, a field's key */
#define A_PATH(name) join(pbuf, sizeof(pbuf), pre, name)
#define A_VAL(name) os_json_get(in, join(kbuf, sizeof(kbuf), pre + 2, name))

    join(pre, sizeof(pre) - 1, "$.", prefix);
    strcat(pre, "_");

    f[0] = want_string(c, A_PATH("firstname"), A_VAL("firstname"), required, OS_STR_PLAIN);
    f[1] = want_string(c, A_PATH("lastname"), A_VAL("lastname"), required, OS_STR_PLAIN);
    f[2] = want_string(c, A_PATH("street_full"), A_VAL("street_full"), 0, OS_STR_PLAIN);
    f[3] = want_string(c, A_PATH("street"), A_VAL("street"), 0, OS_STR_PLAIN);
    f[4] = want_string(c, A_PATH("housenumber"), A_VAL("housenumber"), 0, OS_STR_PLAIN);
    f[5] = want_string(c, A_PATH("postcode"), A_VAL("postcode"), required, OS_STR_PLAIN);
    f[6] = want_string(c, A_PATH("city"), A_VAL("city"), required, OS_STR_PLAIN);
    f[7] = want_country(c, A_PATH("country"), A_VAL("country"), required);
    f[8] = want_string(c, A_PATH("company"), A_VAL("company"), 0, OS_STR_PLAIN);
    f[9] = want_string(c, A_PATH("housenumber_ext"), A_VAL("housenumber_ext"), 0, OS_STR_PLAIN);
    f[10] = want_string(c, A_PATH("region"), A_VAL("region"), 0, OS_STR_PLAIN);
    f[11] = want_string(c, A_PATH("phone"), A_VAL("phone"), 0, OS_STR_PLAIN);
    f[12] = want_email(c, A_PATH("email"), A_VAL("email"));
    if (!strcmp(prefix, "shipping"))
        f[13] = want_string(c, A_PATH("method"), A_VAL("method"), 0, OS_STR_PLAIN);

    /* explicit fields win, so the split only matters when one of them is missing */
    if (f[2] && (!f[3] || !f[4])) {
        if (os_order_split_street(p, f[2], &split_street, &split_number, &split_ext)
            == APR_SUCCESS) {
            if (!f[3])
                f[3] = split_street;
            if (!f[4])
                f[4] = split_number;
            if (!f[9])
                f[9] = split_ext;
        }
        else {
            split_failed = 1;
            violate(c, A_PATH("street_full"), "street_full", "must be a street followed by a "
                    "house number (e.g. \"Main Street 12a\"), got %s",
                    got(p, A_VAL("street_full")));
        }
    }
    if (required && !split_failed) {
        if (!f[3] && is_unset(A_VAL("street")))
            violate(c, A_PATH("street"), "required", "is required (or give %s_street_full)",
                    prefix);
        if (!f[4] && is_unset(A_VAL("housenumber")))
            violate(c, A_PATH("housenumber"), "required", "is required (or give "
                    "%s_street_full)", prefix);
    }
    for (int i = 0; os_order_addr_fields[i]; i++)
        put_str(p, out, join(kbuf, sizeof(kbuf), pre + 2, os_order_addr_fields[i]), f[i]);
#undef A_PATH
#undef A_VAL
}

/* ---------------------------------------------------------------- items */

static const int os_alloc_types[] = { 1, 2, 3, -1 };

static void unknown_fields(os_vctx_t *c, const os_json_t *obj, const char *parent,
                           int (*known)(const char *))
{
    for (apr_size_t i = 0; i < obj->count; i++) {
        const char *k = obj->keys[i];
        if ((obj->key_lens && obj->key_lens[i] != strlen(k)) || !known(k))
            violate(c, path_key(c->p, parent, k), "unknown_field", "is not a field of the "
                    "Demand payload");
    }
}

static int want_bool(os_vctx_t *c, const char *path, const os_json_t *v, int *out)
{
    if (is_unset(v))
        return 0;
    if (v->type == OS_JSON_TRUE || v->type == OS_JSON_FALSE) {
        *out = v->type == OS_JSON_TRUE;
        return 1;
    }
    if ((v->type == OS_JSON_NUMBER || v->type == OS_JSON_STRING)
        && (!strcmp(v->str, "0") || !strcmp(v->str, "1")) && v->len == 1) {
        *out = v->str[0] == '1';
        return 1;
    }
    if (v->type == OS_JSON_STRING && (!strcmp(v->str, "true") || !strcmp(v->str, "false"))
        && v->len == strlen(v->str)) {
        *out = v->str[0] == 't';
        return 1;
    }
    violate(c, path, "type", "must be a boolean (true, false, 0 or 1), got %s", got(c->p, v));
    return -1;
}

static os_json_t *item(os_vctx_t *c, const os_json_t *in, const char *path)
{
    apr_pool_t *p = c->p;
    os_json_t *out = os_json_object(p);
    const char *s;
    apr_int64_t n;
    int b;
    os_json_t *o;
    char pre[64], ibuf[96], lbuf[96];   /* "$.items[0].", a field's path, the labels' path */
#define I_PATH(name) join(ibuf, sizeof(ibuf), pre, name)

    join(pre, sizeof(pre), path, ".");

    unknown_fields(c, in, path, os_order_known_item_field);
    put_str(p, out, "sku", want_string(c, I_PATH("sku"), os_json_get(in, "sku"), 1,
                                       OS_STR_PLAIN));
    put_str(p, out, "description", want_string(c, I_PATH("description"),
                                               os_json_get(in, "description"), 0, OS_STR_PLAIN));
    if ((s = want_decimal(c, I_PATH("weight"), os_json_get(in, "weight"), 0, OS_DEC_NONNEG)))
        os_json_add(p, out, "weight", os_json_number(p, s));
    put_str(p, out, "reference", want_string_or_int(c, I_PATH("reference"),
                                                    os_json_get(in, "reference")));
    if ((s = want_decimal(c, I_PATH("unit_price"), os_json_get(in, "unit_price"), 0, OS_DEC_ANY)))
        os_json_add(p, out, "unit_price", os_json_number(p, s));
    if ((s = want_decimal(c, I_PATH("qty"), os_json_get(in, "qty"), 1, OS_DEC_POSITIVE)))
        os_json_add(p, out, "qty", os_json_number(p, s));
    if ((o = want_object(c, I_PATH("custom_options"), os_json_get(in, "custom_options"))))
        os_json_add(p, out, "custom_options", o);
    if (want_int(c, I_PATH("allocation_type"), os_json_get(in, "allocation_type"), 0,
                 os_alloc_types, "1 (reservation), 2 (direct), 3 (kit)", &n) == 1)
        os_json_add(p, out, "allocation_type", os_json_int(p, n));
    if ((s = want_decimal(c, I_PATH("cost"), os_json_get(in, "cost"), 0, OS_DEC_NONNEG)))
        os_json_add(p, out, "cost", os_json_number(p, s));
    if ((o = want_object(c, I_PATH("packing"), os_json_get(in, "packing")))) {
        const os_json_t *labels = os_json_get(o, "additional_labels");
        const char *lpath = join(lbuf, sizeof(lbuf), pre, "packing.additional_labels");
        if (!is_unset(labels) && labels->type != OS_JSON_ARRAY)
            violate(c, lpath, "type", "must be an array of objects, got %s", got(p, labels));
        else if (!is_unset(labels)) {
            for (apr_size_t i = 0; i < labels->count; i++)
                if (labels->vals[i]->type != OS_JSON_OBJECT)
                    violate(c, apr_psprintf(p, "%s[%" APR_SIZE_T_FMT "]", lpath, i), "type",
                            "must be an object, got %s", got(p, labels->vals[i]));
        }
        os_json_add(p, out, "packing", o);
    }
    if (want_bool(c, I_PATH("is_kit"), os_json_get(in, "is_kit"), &b) == 1)
        os_json_add(p, out, "is_kit", os_json_bool(p, b));
    return out;
#undef I_PATH
}

static os_json_t *items(os_vctx_t *c, const os_json_t *v, apr_size_t *count)
{
    apr_pool_t *p = c->p;
    os_json_t *out = os_json_array(p);
    apr_size_t seen = 0;
    int too_many = 0;

    *count = 0;
    if (is_unset(v)) {
        violate(c, "$.items", "required", "is required (at least one item)");
        return out;
    }
    if (v->type != OS_JSON_ARRAY) {
        violate(c, "$.items", "type", "must be an array of items, got %s", got(p, v));
        return out;
    }
    for (apr_size_t i = 0; i < v->count; i++) {
        const os_json_t *e = v->vals[i];
        const char *epath = apr_psprintf(p, "$.items[%" APR_SIZE_T_FMT "]", i);
        /* one level of nesting is the printed example's [[ {...} ]] form */
        apr_size_t n = e->type == OS_JSON_ARRAY ? e->count : 1;
        for (apr_size_t j = 0; j < n; j++) {
            const os_json_t *it = e->type == OS_JSON_ARRAY ? e->vals[j] : e;
            const char *ipath = e->type == OS_JSON_ARRAY
                ? apr_psprintf(p, "%s[%" APR_SIZE_T_FMT "]", epath, j) : epath;
            if (it->type != OS_JSON_OBJECT) {
                violate(c, ipath, "type", "must be an item object, got %s", got(p, it));
                continue;
            }
            /* past the limit, count but do not validate: the order is refused anyway and
             * a huge list should not produce a huge list of violations */
            if (++seen > c->max_items) {
                too_many = 1;
                continue;
            }
            os_json_push(p, out, item(c, it, ipath));
        }
    }
    *count = seen;
    if (too_many)
        violate(c, "$.items", "max_items", "must hold at most %" APR_SIZE_T_FMT " items, got %"
                APR_SIZE_T_FMT, c->max_items, seen);
    else if (seen == 0 && v->count == 0)
        violate(c, "$.items", "min", "must hold at least one item");
    else if (seen == 0)
        violate(c, "$.items", "min", "must hold at least one item object");
    return out;
}

/* ---------------------------------------------------------------- the order */

static const int os_statuses[] = { 0, 1, 8, 9, -1 };
static const int os_types[] = { 0, 1, -1 };
static const int os_flags[] = { 0, 1, 2, -1 };

apr_status_t os_order_from_json(apr_pool_t *p, const os_json_t *in,
                                const os_order_limits_t *lim, os_order_t **out,
                                apr_array_header_t *violations)
{
    os_vctx_t c;
    os_order_t *o;
    os_json_t *pl, *opt, *its;
    const char *s;
    apr_int64_t n;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dglen = 0;
    char *hex;

    c.p = p;
    c.viol = violations;
    c.nviol = 0;
    c.max_items = lim && lim->max_items ? lim->max_items : OS_ORDER_DEFAULT_MAX_ITEMS;
    c.max_string = lim && lim->max_string ? lim->max_string : OS_ORDER_DEFAULT_MAX_STRING;
    *out = NULL;

    if (!in || in->type != OS_JSON_OBJECT) {
        violate(&c, "$", "type", "must be a JSON object, got %s",
                in ? got(p, in) : "nothing");
        return APR_EINVAL;
    }
    o = apr_pcalloc(p, sizeof(*o));
    pl = os_json_object(p);
    unknown_fields(&c, in, "$", os_order_known_top_field);

    o->reference = want_string(&c, "$.reference", os_json_get(in, "reference"), 1, OS_STR_IDENT);
    put_str(p, pl, "reference", o->reference);
    o->source_id = want_string(&c, "$.source_id", os_json_get(in, "source_id"), 1, OS_STR_IDENT);
    put_str(p, pl, "source_id", o->source_id);

    o->status = 0;
    if (want_int(&c, "$.status", os_json_get(in, "status"), 0, os_statuses,
                 "0 (new), 1 (process), 8 (hold), 9 (cancel)", &n) == 1)
        o->status = (int)n;
    os_json_add(p, pl, "status", os_json_int(p, o->status));

    o->type = 0;
    if (want_int(&c, "$.type", os_json_get(in, "type"), 1, os_types,
                 "0 (normal), 1 (POS)", &n) == 1) {
        o->type = (int)n;
        os_json_add(p, pl, "type", os_json_int(p, o->type));
    }

    o->flag_partial = -1;
    if (want_int(&c, "$.flag_partial", os_json_get(in, "flag_partial"), 0, os_flags,
                 "0 (ship complete), 1 (ship any allocated stock), 2 (ship allocated once)",
                 &n) == 1) {
        o->flag_partial = (int)n;
        os_json_add(p, pl, "flag_partial", os_json_int(p, o->flag_partial));
    }

    o->priority = 0;
    if (want_int(&c, "$.priority", os_json_get(in, "priority"), 0, NULL, NULL, &n) == 1)
        o->priority = n;
    os_json_add(p, pl, "priority", os_json_int(p, o->priority));

    if ((s = want_decimal(&c, "$.cod_amount", os_json_get(in, "cod_amount"), 0, OS_DEC_NONNEG)))
        os_json_add(p, pl, "cod_amount", os_json_number(p, s));

    o->currency = want_currency(&c, "$.currency", os_json_get(in, "currency"));
    put_str(p, pl, "currency", o->currency);

    put_str(p, pl, "delivery_at", want_datetime(&c, "$.delivery_at", os_json_get(in, "delivery_at")));
    put_str(p, pl, "created_at", want_datetime(&c, "$.created_at", os_json_get(in, "created_at")));
    put_str(p, pl, "customer_id", want_string_or_int(&c, "$.customer_id",
                                                     os_json_get(in, "customer_id")));
    if ((opt = want_object(&c, "$.options", os_json_get(in, "options"))))
        os_json_add(p, pl, "options", opt);

    address(&c, in, pl, "shipping", 1);
    address(&c, in, pl, "billing", 0);

    its = items(&c, os_json_get(in, "items"), &o->item_count);
    os_json_add(p, pl, "items", its);

    if (c.nviol)
        return APR_EINVAL;

    o->payload = pl;
    o->canonical = os_json_serialize(p, pl, 1, 0, &o->canonical_len);
    if (!o->canonical) {
        /* only a payload nested deeper than the generator writes: never store broken text
         * (OrderSyncMaxDepth keeps every accepted order well inside that limit) */
        violate(&c, "$", "max_depth", "is nested too deeply to be written as JSON (at most %d "
                "levels, the payload object counting as one)", OS_JGEN_MAX_DEPTH);
        return APR_EINVAL;
    }
    /* OpenSSL's SHA-256 (the module links libcrypto already): several times faster than
     * APR's SHA-1 on a 2 KB order, and no weaker */
    if (!EVP_Digest(o->canonical, o->canonical_len, dg, &dglen, EVP_sha256(), NULL))
        abort();   /* only when OpenSSL cannot allocate */
    hex = apr_palloc(p, dglen * 2 + 1);
    for (unsigned int i = 0; i < dglen; i++) {
        static const char xd[] = "0123456789abcdef";
        hex[2 * i] = xd[dg[i] >> 4];
        hex[2 * i + 1] = xd[dg[i] & 0xF];
    }
    hex[dglen * 2] = '\0';
    o->digest = hex;
    *out = o;
    return APR_SUCCESS;
}
