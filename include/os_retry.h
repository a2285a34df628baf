/* os_retry.h: the delivery policy of the core, with no httpd and no I/O: what an upstream's
 * answer means (delivered, try again later, give up on this order, or a fault of the
 * upstream as a whole), how long to wait before the next try (exponential backoff with full
 * jitter, never sooner than the upstream's Retry-After), when an order has been retried for
 * long enough, and when an upstream is paused as a whole rather than every order failing on
 * its own (a circuit breaker with one probe now and then).
 *
 * Invariants:
 * - Only a 2xx answer of the documented shape is "delivered"; anything else that arrived
 *   over HTTP is a decision about the order (transient, permanent) or the upstream.
 * - A transport failure (no HTTP answer: refused, reset, timeout, TLS) is transient.
 * - Time an upstream spends paused is not counted against an order's horizon. */
#ifndef OS_RETRY_H
#define OS_RETRY_H

#include <apr_pools.h>
#include <apr_time.h>

typedef enum {
    OS_ANSWER_DELIVERED,   /* accepted: the order is at the upstream */
    OS_ANSWER_TRANSIENT,   /* try again later: network, timeout, 408, 429, 5xx */
    OS_ANSWER_PERMANENT,   /* this order will not be taken as it is: other 4xx, a 2xx that
                              is not the documented answer; the job goes dead */
    OS_ANSWER_UPSTREAM     /* the upstream refuses our credentials (401, 403): pause it */
} os_answer_kind_e;

typedef struct {
    os_answer_kind_e kind;
    const char *reason;              /* short, for events and logs: "HTTP 503", the
                                        transport error, "the answer is not JSON", ... */
    const char *upstream_id;         /* DELIVERED: the id the upstream gave the order */
    apr_interval_time_t retry_after; /* > 0 when the upstream said when to come back */
} os_answer_t;

/* Classifies Clougistic's answer to an enqueue of `reference`. net_error is NULL when an
 * HTTP answer arrived, else the transport failure. retry_after is the Retry-After header
 * (or NULL). The documented answer is 200 with a JSON object {id, reference, entity_id}
 * whose reference is the one sent. Strings in *out are from p. */
void os_clougistic_answer(apr_pool_t *p, const char *net_error, int status,
                          const char *retry_after, const char *body, apr_size_t len,
                          const char *reference, apr_time_t now, os_answer_t *out);

/* Retry-After as delta-seconds or an HTTP date, relative to now. 1 and *out (>= 0) when
 * it parses, else 0. */
int os_retry_after_parse(const char *value, apr_time_t now, apr_interval_time_t *out);

typedef struct {
    apr_interval_time_t first;       /* the longest wait after the first failed try */
    apr_interval_time_t max;         /* the longest wait between two tries */
    apr_interval_time_t horizon;     /* how long an order is tried before it goes dead */
} os_backoff_t;

/* The wait after `failed` (>= 1) failed tries: uniform in [0, min(max, first * 2^(failed-1))]
 * drawn from rnd (a 32-bit random number), and never less than retry_after. */
apr_interval_time_t os_backoff_wait(const os_backoff_t *b, int failed, apr_uint32_t rnd,
                                    apr_interval_time_t retry_after);
/* Whether an order first tried at first_try, with `paused` spent while its upstream was
 * paused, has been tried past the horizon at `now`. */
int os_backoff_expired(const os_backoff_t *b, apr_time_t first_try, apr_interval_time_t paused,
                       apr_time_t now);

/* The upstream's breaker: `threshold` transient failures in a row (of any orders), or one
 * refusal of our credentials, pause it; while paused one probe is let through every
 * probe_every; a delivered or permanent answer (the upstream works) closes it again. */
typedef struct {
    int threshold;
    apr_interval_time_t probe_every;
    int failures;                    /* transient failures in a row */
    int paused;
    apr_time_t paused_at;            /* when it paused (for the time spent paused) */
    apr_time_t probe_at;             /* paused: when the next probe may go */
    char cause[160];                 /* paused: why, for the status route and the log */
} os_breaker_t;

void os_breaker_init(os_breaker_t *b, int threshold, apr_interval_time_t probe_every);
/* Records an answer. Returns +1 when the upstream has just paused, -1 when it has just
 * resumed (each to be logged once), else 0. */
int os_breaker_record(os_breaker_t *b, const os_answer_t *a, apr_time_t now);
/* Whether a delivery may go now: always while closed; while paused, the one probe when it
 * is due (the call takes it: the next probe is probe_every later). */
int os_breaker_allow(os_breaker_t *b, apr_time_t now);

/* A duration as the directives take it: a number with a unit, ms, s, m, h or d ("500ms",
 * "5s", "72h"); a bare number is seconds. 1 and *out when it parses, else 0. */
int os_duration_parse(const char *text, apr_interval_time_t *out);

#endif
