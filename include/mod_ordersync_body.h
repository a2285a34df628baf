/* mod_ordersync_body.h: reading a request body into one buffer that grows with the bytes
 * that arrived (never with what Content-Length claims). */
#ifndef MOD_ORDERSYNC_BODY_H
#define MOD_ORDERSYNC_BODY_H

#include "httpd.h"

/* The buffer starts this large and doubles as bytes arrive (up to the body's limit). */
#define OS_BODY_FIRST_BLOCK   (16 * 1024)

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

#endif
