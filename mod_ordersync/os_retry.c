/* os_retry.c: the delivery policy (see os_retry.h). */
#include "os_retry.h"
#include "os_json.h"
#include <apr_strings.h>
#include <apr_date.h>
#include <apr_lib.h>
#include <string.h>

static void set(os_answer_t *out, os_answer_kind_e kind, const char *reason)
{
    out->kind = kind;
    out->reason = reason;
}

int os_retry_after_parse(const char *value, apr_time_t now, apr_interval_time_t *out)
{
    const char *s = value;
    apr_int64_t secs = 0;
    apr_time_t at;

    if (!value) return 0;
    while (apr_isspace(*s)) s++;
    if (apr_isdigit(*s)) {
        for (; apr_isdigit(*s); s++) {
            if (secs > 100000000) return 0;         /* years: not an answer to honour */
            secs = secs * 10 + (*s - '0');
        }
        while (apr_isspace(*s)) s++;
        if (*s) return 0;
        *out = apr_time_from_sec(secs);
        return 1;
    }
    at = apr_date_parse_http(s);
    if (at == APR_DATE_BAD) return 0;
    *out = at > now ? at - now : 0;
    return 1;
}

/* A 2xx: delivered only with the documented answer, {id, reference, entity_id} for the
 * reference sent; anything else means the order's fate is unknown to us, and sending it
 * again blindly could not make it known either. */
static void documented(apr_pool_t *p, int status, const char *body, apr_size_t len,
                       const char *reference, os_answer_t *out)
{
    os_json_t *doc = NULL;
    const os_json_t *id, *ref;

    if (status != 200) {
        set(out, OS_ANSWER_PERMANENT, apr_psprintf(p, "HTTP %d is not the documented answer "
                                                   "(200)", status));
        return;
    }
    if (!body || os_json_parse(p, body, len, 16, &doc, NULL) != APR_SUCCESS
        || doc->type != OS_JSON_OBJECT) {
        set(out, OS_ANSWER_PERMANENT, "the answer is not a JSON object");
        return;
    }
    id = os_json_get(doc, "id");
    ref = os_json_get(doc, "reference");
    if (!id || (id->type != OS_JSON_STRING && id->type != OS_JSON_NUMBER) || !id->len) {
        set(out, OS_ANSWER_PERMANENT, "the answer has no id");
        return;
    }
    if (ref && ref->type == OS_JSON_STRING && strcmp(ref->str, reference)) {
        set(out, OS_ANSWER_PERMANENT, "the answer is for another reference");
        return;
    }
    set(out, OS_ANSWER_DELIVERED, "HTTP 200");
    out->upstream_id = apr_pstrmemdup(p, id->str, id->len);
}

void os_clougistic_answer(apr_pool_t *p, const char *net_error, int status,
                          const char *retry_after, const char *body, apr_size_t len,
                          const char *reference, apr_time_t now, os_answer_t *out)
{
    memset(out, 0, sizeof(*out));
    if (net_error) {
        set(out, OS_ANSWER_TRANSIENT, apr_pstrdup(p, net_error));
        return;
    }
    if (status >= 200 && status < 300) {
        documented(p, status, body, len, reference, out);
        return;
    }
    if (status == 401 || status == 403) {
        set(out, OS_ANSWER_UPSTREAM, apr_psprintf(p, "HTTP %d: the access key or entity id "
                                                  "is refused", status));
        return;
    }
    if (status == 408 || status == 429 || status >= 500) {
        set(out, OS_ANSWER_TRANSIENT, apr_psprintf(p, "HTTP %d", status));
        if (retry_after) os_retry_after_parse(retry_after, now, &out->retry_after);
        return;
    }
    set(out, OS_ANSWER_PERMANENT, apr_psprintf(p, "HTTP %d", status));
}

apr_interval_time_t os_backoff_wait(const os_backoff_t *b, int failed, apr_uint32_t rnd,
                                    apr_interval_time_t retry_after)
{
    apr_interval_time_t ceiling = b->first, wait;
    int i;

    for (i = 1; i < failed && ceiling < b->max; i++) ceiling *= 2;
    if (ceiling > b->max) ceiling = b->max;
    /* full jitter: anywhere between now and the ceiling, so that orders failed together
     * do not come back together */
    wait = (apr_interval_time_t)((double)ceiling * ((double)rnd / 4294967296.0));
    return wait < retry_after ? retry_after : wait;
}

int os_backoff_expired(const os_backoff_t *b, apr_time_t first_try, apr_interval_time_t paused,
                       apr_time_t now)
{
    return now - first_try - paused > b->horizon;
}

void os_breaker_init(os_breaker_t *b, int threshold, apr_interval_time_t probe_every)
{
    memset(b, 0, sizeof(*b));
    b->threshold = threshold > 0 ? threshold : 1;
    b->probe_every = probe_every;
}

static int pause_for(os_breaker_t *b, const char *cause, apr_time_t now)
{
    apr_cpystrn(b->cause, cause ? cause : "", sizeof(b->cause));
    b->probe_at = now + b->probe_every;
    if (b->paused) return 0;
    b->paused = 1;
    b->paused_at = now;
    return 1;
}

int os_breaker_record(os_breaker_t *b, const os_answer_t *a, apr_time_t now)
{
    switch (a->kind) {
    case OS_ANSWER_UPSTREAM:
        return pause_for(b, a->reason, now);
    case OS_ANSWER_TRANSIENT:
        if (++b->failures >= b->threshold) return pause_for(b, a->reason, now);
        return 0;
    default:                         /* the upstream answered about the order: it works */
        b->failures = 0;
        if (!b->paused) return 0;
        b->paused = 0;
        b->cause[0] = '\0';
        return -1;
    }
}

int os_breaker_allow(os_breaker_t *b, apr_time_t now)
{
    if (!b->paused) return 1;
    if (now < b->probe_at) return 0;
    b->probe_at = now + b->probe_every;
    return 1;
}

int os_duration_parse(const char *text, apr_interval_time_t *out)
{
    static const struct { const char *unit; apr_int64_t usec; } UNITS[] = {
        { "ms", 1000 }, { "s", APR_USEC_PER_SEC }, { "", APR_USEC_PER_SEC },
        { "m", 60 * APR_USEC_PER_SEC }, { "h", 3600 * APR_USEC_PER_SEC },
        { "d", 86400 * APR_USEC_PER_SEC }
    };
    apr_int64_t v = 0;
    const char *c = text;
    apr_size_t i;

    if (!c || *c < '0' || *c > '9') return 0;
    for (; *c >= '0' && *c <= '9'; c++) {
        v = v * 10 + (*c - '0');
        if (v > APR_INT64_C(1000000000000)) return 0;
    }
    for (i = 0; i < sizeof(UNITS) / sizeof(UNITS[0]); i++) {
        if (!strcmp(c, UNITS[i].unit)) {
            *out = v * UNITS[i].usec;
            return 1;
        }
    }
    return 0;
}
