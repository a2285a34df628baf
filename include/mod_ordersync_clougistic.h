/* mod_ordersync_clougistic.h: Clougistic's Demand API as the dispatcher speaks it: the
 * upstreams (the hub's entity and key, and a source's own), the enqueue request and the
 * reading of its answer. One transfer is one delivery in flight on a libcurl easy handle;
 * the dispatcher owns the multi handle they share (and with it the connections, kept alive
 * and reused).
 *
 * Invariants:
 * - What Clougistic receives is the stored payload byte for byte inside the documented
 *   envelope {"access_key", "entity_id", "payload"}; the key and the entity come from the
 *   configuration, never from the order.
 * - TLS is always verified (against OrderSyncClougisticCAFile when given); the access key
 *   never leaves in anything but the request body: an answer's excerpt has it blanked. */
#ifndef MOD_ORDERSYNC_CLOUGISTIC_H
#define MOD_ORDERSYNC_CLOUGISTIC_H

#include "mod_ordersync.h"
#include "mod_ordersync_jobs.h"
#include "os_retry.h"
#include <curl/curl.h>

#define OS_ENQUEUE_PATH "/api/v1/order/enqueue"
#define OS_EXCERPT_MAX 300

/* An entity and key at one Clougistic: the hub's, or a source's own. Each pauses alone. */
typedef struct {
    const char *name;                 /* "clougistic" or "clougistic:<source_id>" */
    const char *url;                  /* the enqueue URL */
    const char *head;                 /* the envelope up to the payload (holds the key) */
    const char *key;                  /* to blank it in excerpts */
    os_breaker_t breaker;
} os_upstream_t;

typedef struct {
    CURL *easy;
    int busy;
    os_job_t job;
    os_upstream_t *up;
    struct curl_slist *headers;
    char *resp;                       /* the answer, up to OS_EXCERPT_MAX * 16 bytes */
    apr_size_t len;
    char retry_after[64];
    char errbuf[CURL_ERROR_SIZE];
    apr_time_t started;
    int probe;                        /* the one try a paused upstream lets through */
} os_transfer_t;

typedef struct {
    const char *ca_file;
    apr_interval_time_t connect_timeout, timeout;
    int http2;                        /* OrderSyncClougisticHTTP2 */
} os_cg_conf_t;

/* The upstreams of a hub: [0] the hub's (NULL members when it has none), then one per
 * source with its own entity; *by_source maps a source id to its upstream. */
apr_array_header_t *os_cg_upstreams(apr_pool_t *p, server_rec *s, apr_hash_t **by_source,
                                    int threshold, apr_interval_time_t probe_every);
/* Sets t's easy handle up for its job (t->job, t->up filled) and adds it to multi. */
CURLMcode os_cg_start(CURLM *multi, os_transfer_t *t, const os_cg_conf_t *conf);
/* Reads a finished transfer: what the answer means, and a one-line account of the try
 * for the order's events (p is the job's pool). */
void os_cg_answer(os_transfer_t *t, CURLcode code, apr_pool_t *p, apr_time_t now,
                  os_answer_t *ans, const char **account);

#endif
