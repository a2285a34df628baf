/* Unit tests of the enqueue body (os_demand.c): the payload byte for byte, the top-level
 * reference alone replaced by the reference sent to the warehouse. */
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <string.h>
#include "tap.h"
#include "os_demand.h"

static apr_pool_t *pool;
static const char *HEAD = "{\"access_key\":\"K\",\"entity_id\":1,\"payload\":";

static const char *body(const char *payload, const char *ref, const char *sent)
{
    apr_size_t len;
    const char *b = os_demand_body(pool, HEAD, payload, ref, sent, &len);
    is_int((long long)len, (long long)strlen(b), "the length given is the body's (%s)", payload);
    return b;
}

static void test_member(void)
{
    apr_size_t s = 0, e = 0;
    const char *j = "{\"items\":[{\"reference\":\"inner\"}],\"note\":\"\\\"reference\\\":\\\"x\\\"\","
                    "\"reference\":\"R-1\",\"z\":{\"reference\":\"deep\"}}";
    ok(os_demand_member(j, "reference", &s, &e), "the top-level reference is found");
    is_str(apr_pstrmemdup(pool, j + s, e - s), "\"R-1\"",
           "not the one inside items, nor the text inside another string");
    ok(!os_demand_member("{\"reference\":12}", "reference", &s, &e), "a number: not a string");
    ok(!os_demand_member("{\"a\":{\"reference\":\"x\"}}", "reference", &s, &e),
       "only nested: not found");
    j = "{\"a\":\"\\\\\",\"reference\" : \"x\\\"y\"}";
    ok(os_demand_member(j, "reference", &s, &e)
       && !strcmp(apr_pstrmemdup(pool, j + s, e - s), "\"x\\\"y\""),
       "escaped backslashes and quotes, spaces around the colon");
}

static void test_body(void)
{
    const char *p = "{\"currency\":\"EUR\",\"items\":[{\"qty\":2,\"unit_price\":9.950}],"
                    "\"reference\":\"W-1\",\"x\":\"\\u00e9\\\"\"}";
    is_str(body(p, "W-1", "W-1"), apr_pstrcat(pool, HEAD, p, "}", NULL),
           "no prefix: the payload goes out byte for byte");
    is_str(body(p, "W-1", "DEMO-W-1"),
           apr_pstrcat(pool, HEAD, "{\"currency\":\"EUR\",\"items\":[{\"qty\":2,\"unit_price\":"
                       "9.950}],\"reference\":\"DEMO-W-1\",\"x\":\"\\u00e9\\\"\"}}", NULL),
           "a prefix: only the reference's text changes; decimals and escapes stay");
    is_str(body("{\"reference\":\"a\"}", "a", "P/\"q\""),
           apr_pstrcat(pool, HEAD, "{\"reference\":\"P/\\\"q\\\"\"}}", NULL),
           "the reference sent is written as a JSON string");
}

int main(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
    test_member();
    test_body();
    apr_pool_destroy(pool);
    done();
}
