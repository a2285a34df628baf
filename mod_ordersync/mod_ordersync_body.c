/* mod_ordersync_body.c: the request body, read into one buffer that grows with the bytes
 * received: a client that claims 64 MB and sends nothing costs one small block, not 64 MB. */
#include "mod_ordersync.h"
#include "mod_ordersync_body.h"

#include <stdlib.h>

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
