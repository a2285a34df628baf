/* mod_ordersync_body.h: reading a request body into one buffer that grows with the bytes
 * that arrived (never with what Content-Length claims), a streaming scan that finds one
 * top-level string member of a JSON object before the whole body is there, and text that
 * may safely go into an answer (valid UTF-8). */
#ifndef MOD_ORDERSYNC_BODY_H
#define MOD_ORDERSYNC_BODY_H

#include "httpd.h"

/* The buffer starts this large and doubles as bytes arrive (up to the body's limit). */
#define OS_BODY_FIRST_BLOCK   (16 * 1024)

/* The drop-in route reads at most this many bytes of an envelope before it has seen (and
 * checked) its access_key: an unauthenticated request costs no more than this. */
#define OS_PREAUTH_MAX        (64 * 1024)

/* Called after each read with the whole body so far (buf, NUL-terminated at len) and the
 * length before this read. Returns OK to read on, or DONE when it has answered the request
 * itself: reading stops there and the rest of the body is never read. */
typedef int os_body_peek_fn(request_rec *r, void *baton, const char *buf, apr_size_t old_len,
                            apr_size_t len);

/* Reads the body (Content-Length or chunked), refusing more than `max` bytes. Returns OK
 * with *buf (NUL-terminated, freed with r->pool) and *len; HTTP_REQUEST_ENTITY_TOO_LARGE;
 * HTTP_BAD_REQUEST when it could not be read; HTTP_SERVICE_UNAVAILABLE when no memory
 * could be had; DONE when `peek` answered. Unless OK, the connection is closed after the
 * answer instead of reading the rest. */
int os_body_read(request_rec *r, apr_int64_t max, os_body_peek_fn *peek, void *baton,
                 char **buf, apr_size_t *len);

/* A streaming scan for one member of the top-level JSON object. */
typedef enum {
    OS_SCAN_MORE,        /* not seen yet: feed more */
    OS_SCAN_STRING,      /* found, a string: value/len */
    OS_SCAN_NOT_STRING,  /* found, but not a string */
    OS_SCAN_ABSENT,      /* the top-level value ended, or is not an object: no such member */
    OS_SCAN_SYNTAX       /* the text so far is not JSON */
} os_scan_e;

typedef struct os_scan_t os_scan_t;

/* A scan for the top-level member `name`, freed with p. */
os_scan_t *os_scan_create(apr_pool_t *p, const char *name);
/* Feeds the next bytes of the text; once the answer is not OS_SCAN_MORE it stays. */
os_scan_e os_scan_feed(os_scan_t *s, const char *data, apr_size_t len);
/* The member's value (OS_SCAN_STRING): NUL-terminated, len bytes (may hold a NUL). */
const char *os_scan_value(const os_scan_t *s, apr_size_t *len);

/* s itself when it is valid UTF-8 (or NULL), else a copy in p in which each byte that
 * does not belong to a valid sequence is replaced by U+FFFD. */
const char *os_utf8_safe(apr_pool_t *p, const char *s);

#endif
