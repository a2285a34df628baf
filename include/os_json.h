/* os_json.h: the JSON layer of the core: a strict RFC 8259 parser that builds a pool-allocated
 * tree over yajl's callback API (numbers kept as their source text, errors with offset, line and
 * column), tree construction helpers, and JSON generation helpers over yajl_gen. */
#ifndef OS_JSON_H
#define OS_JSON_H

#include <apr_pools.h>
#include <apr_errno.h>
#include <yajl/yajl_gen.h>

/* Used when os_json_parse is given max_depth <= 0. */
#define OS_JSON_DEFAULT_MAX_DEPTH 64

typedef enum {
    OS_JSON_NULL, OS_JSON_FALSE, OS_JSON_TRUE, OS_JSON_NUMBER, OS_JSON_STRING,
    OS_JSON_OBJECT, OS_JSON_ARRAY
} os_json_type_e;

typedef struct os_json_t os_json_t;
struct os_json_t {
    os_json_type_e type;
    const char *str;      /* STRING: value (NUL-terminated, may contain \0 -> use len);
                             NUMBER: the number's exact source text */
    apr_size_t len;
    apr_size_t count;     /* OBJECT/ARRAY: number of members */
    const char **keys;    /* OBJECT: member names (NUL-terminated), NULL for arrays */
    os_json_t **vals;     /* members, in document order */
    apr_size_t *key_lens; /* OBJECT: byte length of each key (keys may hold \0); NULL means
                             use strlen (trees built by hand) */
    apr_size_t cap;       /* OBJECT/ARRAY built with os_json_add/os_json_push: allocated slots */
};

typedef struct {
    apr_size_t offset;    /* byte offset into the input where the error was found */
    unsigned line, column; /* 1-based */
    const char *message;
} os_json_error_t;

/* Parses exactly one JSON text (RFC 8259 strict). All memory from pool p.
 * APR_SUCCESS: *out is the tree. APR_EGENERAL: malformed input, err filled.
 * APR_ENOSPC: nesting deeper than max_depth (<= 0: OS_JSON_DEFAULT_MAX_DEPTH), err filled.
 * Rejects duplicate object keys, invalid UTF-8, a UTF-16 surrogate escape that is not half
 * of a pair (\uD800-\uDBFF directly followed by \uDC00-\uDFFF; err at its backslash),
 * form feed / vertical tab / NUL outside strings, comments, trailing garbage and multiple
 * values. err may be NULL; out may be
 * NULL for a syntax check only. Scalars are accepted as the top-level value (RFC 8259). */
apr_status_t os_json_parse(apr_pool_t *p, const char *buf, apr_size_t len, int max_depth,
                           os_json_t **out, os_json_error_t *err);

/* NULL if absent or obj not an object. */
const os_json_t *os_json_get(const os_json_t *obj, const char *key);

/* Tree construction (all from pool p). Strings are copied. */
os_json_t *os_json_null(apr_pool_t *p);
os_json_t *os_json_bool(apr_pool_t *p, int v);
os_json_t *os_json_string(apr_pool_t *p, const char *s);
os_json_t *os_json_stringn(apr_pool_t *p, const char *s, apr_size_t len);
/* text must be a valid JSON number; it is written out verbatim. */
os_json_t *os_json_number(apr_pool_t *p, const char *text);
os_json_t *os_json_int(apr_pool_t *p, apr_int64_t v);
os_json_t *os_json_object(apr_pool_t *p);
os_json_t *os_json_array(apr_pool_t *p);
/* Appends a member (no duplicate check: callers build known key sets). */
void os_json_add(apr_pool_t *p, os_json_t *obj, const char *key, os_json_t *val);
void os_json_push(apr_pool_t *p, os_json_t *arr, os_json_t *val);
/* Deep copy into p, so a derived tree does not depend on the source's pool. */
os_json_t *os_json_copy(apr_pool_t *p, const os_json_t *v);

/* The most nesting levels yajl's generator writes (it refuses a container at its limit,
 * YAJL_MAX_DEPTH, 128): a value to be sent inside wrappers must leave them room. */
#define OS_JGEN_MAX_DEPTH 127

/* Generation: a yajl_gen whose free is registered as a cleanup of p. */
yajl_gen os_jgen_create(apr_pool_t *p, int beautify);
void os_jgen_str(yajl_gen g, const char *s);                 /* NULL -> null */
void os_jgen_kv_str(yajl_gen g, const char *k, const char *v);
void os_jgen_kv_int(yajl_gen g, const char *k, apr_int64_t v);
/* Numbers are written from their text (yajl_gen_number); sort_keys orders object members
 * bytewise by key, recursively. Returns yajl_gen_status_ok, or the first failure, after
 * which the generator's text is not JSON and must not be used: yajl_max_depth_exceeded
 * when v, together with the containers g has open, nests OS_JGEN_MAX_DEPTH + 1 or more
 * levels deep (yajl stops there). */
yajl_gen_status os_jgen_value(yajl_gen g, const os_json_t *v, int sort_keys);
/* Copy of the generated text into p, NUL-terminated; len may be NULL. It cannot tell
 * whether the generation succeeded: check the status of every os_jgen_value call. */
const char *os_jgen_finish(apr_pool_t *p, yajl_gen g, apr_size_t *len);

/* Convenience: v serialised in one call. NULL (and *len 0) when it cannot be generated,
 * which is when v nests deeper than OS_JGEN_MAX_DEPTH levels. */
const char *os_json_serialize(apr_pool_t *p, const os_json_t *v, int sort_keys, int beautify,
                              apr_size_t *len);

#endif
