/* Unit tests of the delivery policy (os_retry.c): answers, Retry-After, backoff, breaker. */
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <string.h>
#include "tap.h"
#include "os_retry.h"

static apr_pool_t *pool;
static const apr_time_t NOW = APR_INT64_C(1764000000) * APR_USEC_PER_SEC;

static os_answer_t answer(const char *net, int status, const char *retry_after, const char *body)
{
    os_answer_t a;
    os_clougistic_answer(pool, net, status, retry_after, body, body ? strlen(body) : 0,
                         "DEMO-1001", NOW, &a);
    return a;
}

static void test_answers(void)
{
    os_answer_t a;

    a = answer(NULL, 200, NULL, "{\"id\": 42, \"reference\": \"DEMO-1001\", \"entity_id\": \"7\"}");
    ok(a.kind == OS_ANSWER_DELIVERED, "200 with the documented answer: delivered");
    is_str(a.upstream_id, "42", "the upstream's id is kept as its text");
    a = answer(NULL, 200, NULL, "{\"id\": \"c-9\", \"entity_id\": 7}");
    ok(a.kind == OS_ANSWER_DELIVERED && !strcmp(a.upstream_id, "c-9"),
       "an id as a string, no reference echoed: delivered");
    a = answer(NULL, 200, NULL, "<html>ok</html>");
    ok(a.kind == OS_ANSWER_PERMANENT, "200 with a body that is not JSON: permanent (%s)", a.reason);
    a = answer(NULL, 200, NULL, "{\"status\": \"ok\"}");
    ok(a.kind == OS_ANSWER_PERMANENT, "200 without an id: permanent (%s)", a.reason);
    a = answer(NULL, 200, NULL, "{\"id\": 1, \"reference\": \"OTHER\"}");
    ok(a.kind == OS_ANSWER_PERMANENT, "200 for another reference: permanent (%s)", a.reason);
    a = answer(NULL, 204, NULL, NULL);
    ok(a.kind == OS_ANSWER_PERMANENT, "204: not the documented answer (%s)", a.reason);
    a = answer(NULL, 200, NULL, "");
    ok(a.kind == OS_ANSWER_PERMANENT, "200 with an empty body: permanent");

    a = answer("Connection refused", 0, NULL, NULL);
    ok(a.kind == OS_ANSWER_TRANSIENT && !strcmp(a.reason, "Connection refused"),
       "a transport failure: transient, with its text");
    for (int st = 500; st <= 504; st++) {
        a = answer(NULL, st, NULL, "oops");
        ok(a.kind == OS_ANSWER_TRANSIENT, "HTTP %d: transient", st);
    }
    a = answer(NULL, 408, NULL, NULL);
    ok(a.kind == OS_ANSWER_TRANSIENT, "408: transient");
    a = answer(NULL, 429, "2", NULL);
    ok(a.kind == OS_ANSWER_TRANSIENT && a.retry_after == apr_time_from_sec(2),
       "429 with Retry-After: 2: transient, come back in 2 s");
    {
        char date[APR_RFC822_DATE_LEN];
        apr_rfc822_date(date, NOW + apr_time_from_sec(30));
        a = answer(NULL, 503, date, NULL);
        ok(a.kind == OS_ANSWER_TRANSIENT && a.retry_after == apr_time_from_sec(30),
           "503 with an HTTP date 30 s ahead: transient, come back then (%" APR_TIME_T_FMT
           " s)", apr_time_sec(a.retry_after));
    }

    a = answer(NULL, 401, NULL, "{\"error\": \"bad key\"}");
    ok(a.kind == OS_ANSWER_UPSTREAM, "401: the upstream refuses our credentials (%s)", a.reason);
    a = answer(NULL, 403, NULL, NULL);
    ok(a.kind == OS_ANSWER_UPSTREAM, "403: the upstream refuses our entity");
    for (int st = 400; st <= 422; st += 22) {
        a = answer(NULL, st, NULL, "{\"message\": \"reference is required\"}");
        ok(a.kind == OS_ANSWER_PERMANENT, "HTTP %d: permanent for the order", st);
    }
    a = answer(NULL, 404, NULL, NULL);
    ok(a.kind == OS_ANSWER_PERMANENT, "404: permanent");
}

static void test_retry_after(void)
{
    apr_interval_time_t t = -1;
    ok(os_retry_after_parse("120", NOW, &t) && t == apr_time_from_sec(120), "delta-seconds");
    ok(os_retry_after_parse(" 0 ", NOW, &t) && t == 0, "zero, with blanks");
    ok(!os_retry_after_parse("12s", NOW, &t), "not a number: refused");
    ok(!os_retry_after_parse("-5", NOW, &t), "negative: refused");
    ok(!os_retry_after_parse("", NOW, &t), "empty: refused");
    ok(!os_retry_after_parse(NULL, NOW, &t), "absent: refused");
    ok(!os_retry_after_parse("99999999999999999999", NOW, &t), "absurdly far: refused");
    {
        char date[APR_RFC822_DATE_LEN];
        apr_rfc822_date(date, NOW + apr_time_from_sec(90));
        ok(os_retry_after_parse(date, NOW, &t) && t == apr_time_from_sec(90),
           "an HTTP date 90 s ahead (%s)", date);
        apr_rfc822_date(date, NOW - apr_time_from_sec(90));
        ok(os_retry_after_parse(date, NOW, &t) && t == 0, "an HTTP date in the past: now");
    }
    ok(!os_retry_after_parse("tomorrow", NOW, &t), "not a date: refused");
}

static void test_backoff(void)
{
    os_backoff_t b = { apr_time_from_sec(5), apr_time_from_sec(3600), apr_time_from_sec(72 * 3600) };
    apr_interval_time_t w;
    int i;

    is_int(os_backoff_wait(&b, 1, 0, 0), 0, "full jitter: the lowest draw waits not at all");
    w = os_backoff_wait(&b, 1, 0xFFFFFFFFu, 0);
    ok(w < apr_time_from_sec(5) && w > apr_time_from_sec(4), "after one failure at most 5 s");
    w = os_backoff_wait(&b, 4, 0xFFFFFFFFu, 0);
    ok(w <= apr_time_from_sec(40) && w > apr_time_from_sec(39), "after four at most 40 s");
    w = os_backoff_wait(&b, 30, 0xFFFFFFFFu, 0);
    ok(w <= apr_time_from_sec(3600) && w > apr_time_from_sec(3599), "capped at an hour");
    w = os_backoff_wait(&b, 1000000, 0x80000000u, 0);
    ok(w == apr_time_from_sec(1800), "no overflow for a huge count: half the cap at half the draw");
    ok(os_backoff_wait(&b, 1, 0, apr_time_from_sec(30)) == apr_time_from_sec(30),
       "never sooner than Retry-After");
    {
        apr_interval_time_t lo = apr_time_from_sec(3600), hi = 0;
        for (i = 0; i < 1000; i++) {
            w = os_backoff_wait(&b, 3, (apr_uint32_t)(i * 4294967u), 0);
            if (w < lo) lo = w;
            if (w > hi) hi = w;
        }
        ok(lo < apr_time_from_sec(1) && hi > apr_time_from_sec(19) && hi <= apr_time_from_sec(20),
           "draws spread over [0, 20 s] after three failures");
    }
    ok(!os_backoff_expired(&b, NOW, 0, NOW + apr_time_from_sec(71 * 3600)), "71 h: still tried");
    ok(os_backoff_expired(&b, NOW, 0, NOW + apr_time_from_sec(73 * 3600)), "73 h: dead");
    ok(!os_backoff_expired(&b, NOW, apr_time_from_sec(48 * 3600), NOW + apr_time_from_sec(100 * 3600)),
       "100 h of which 48 paused: still tried (a two-day outage kills no order)");
}

static void test_breaker(void)
{
    os_breaker_t b;
    os_answer_t fail = { OS_ANSWER_TRANSIENT, "HTTP 503", NULL, 0 };
    os_answer_t refused = { OS_ANSWER_UPSTREAM, "HTTP 401: refused", NULL, 0 };
    os_answer_t good = { OS_ANSWER_DELIVERED, "HTTP 200", "1", 0 };
    os_answer_t bad_order = { OS_ANSWER_PERMANENT, "HTTP 422", NULL, 0 };
    apr_time_t t = NOW;
    int i, r = 0;

    os_breaker_init(&b, 5, apr_time_from_sec(10));
    for (i = 0; i < 4; i++) r |= os_breaker_record(&b, &fail, t);
    ok(r == 0 && !b.paused && os_breaker_allow(&b, t), "four failures in a row: still open");
    ok(os_breaker_record(&b, &bad_order, t) == 0 && b.failures == 0,
       "an answer about the order resets the count");
    for (i = 0; i < 4; i++) os_breaker_record(&b, &fail, t);
    ok(os_breaker_record(&b, &fail, t) == 1 && b.paused, "the fifth in a row pauses it (once)");
    is_str(b.cause, "HTTP 503", "with its cause");
    ok(os_breaker_record(&b, &fail, t) == 0, "more failures while paused: no second message");
    ok(!os_breaker_allow(&b, t + apr_time_from_sec(1)), "paused: nothing goes");
    ok(os_breaker_allow(&b, t + apr_time_from_sec(11)), "one probe after probe_every");
    ok(!os_breaker_allow(&b, t + apr_time_from_sec(12)), "and only one");
    ok(os_breaker_record(&b, &good, t + apr_time_from_sec(12)) == -1 && !b.paused,
       "a delivered probe resumes it (once)");
    ok(os_breaker_allow(&b, t + apr_time_from_sec(12)), "open again");
    ok(os_breaker_record(&b, &refused, t) == 1 && b.paused, "one refusal of our credentials pauses it");
    ok(os_breaker_record(&b, &bad_order, t) == -1, "an order refused on its own merits proves the credentials work");
}

static void test_durations(void)
{
    apr_interval_time_t d = 0;
    ok(os_duration_parse("500ms", &d) && d == 500000, "500ms");
    ok(os_duration_parse("5s", &d) && d == apr_time_from_sec(5), "5s");
    ok(os_duration_parse("7", &d) && d == apr_time_from_sec(7), "a bare number is seconds");
    ok(os_duration_parse("10m", &d) && d == apr_time_from_sec(600), "10m");
    ok(os_duration_parse("72h", &d) && d == apr_time_from_sec(72 * 3600), "72h");
    ok(os_duration_parse("3d", &d) && d == apr_time_from_sec(3 * 86400), "3d");
    ok(!os_duration_parse("", &d) && !os_duration_parse("s", &d) && !os_duration_parse("-5s", &d)
       && !os_duration_parse("5 s", &d) && !os_duration_parse("5w", &d)
       && !os_duration_parse("99999999999999s", &d), "empty, no number, negative, a space, "
       "an unknown unit, too large: refused");
}

int main(void)
{
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    test_answers();
    test_retry_after();
    test_backoff();
    test_breaker();
    test_durations();
    apr_pool_destroy(pool);
    done();
}
