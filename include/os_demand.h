/* os_demand.h: the body of a Demand API enqueue, built from a stored order (core: no httpd,
 * no I/O). The stored payload goes out byte for byte, except its top-level "reference",
 * which carries the source's prefix at the warehouse (DESIGN.md "References at the
 * warehouse"): only that string's text is replaced, so every decimal, every other string
 * and the members' order stay as stored.
 *
 * Invariant: the result is the envelope head (access key and entity, made by the caller),
 * then the payload, then "}"; never anything taken from the order outside "payload". */
#ifndef OS_DEMAND_H
#define OS_DEMAND_H

#include <apr_pools.h>

/* The span of the value of top-level member `key` of the JSON object in `json` (which is
 * valid JSON, as every stored order is): 1 and [*start, *end) when it is a string (quotes
 * included), else 0. */
int os_demand_member(const char *json, const char *key, apr_size_t *start, apr_size_t *end);

/* head + payload (its top-level "reference" set to sent_reference when that differs) +
 * "}". *len is the length. */
char *os_demand_body(apr_pool_t *p, const char *head, const char *payload,
                     const char *reference, const char *sent_reference, apr_size_t *len);

#endif
