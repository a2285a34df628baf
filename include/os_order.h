/* os_order.h: the Demand order model: every field rule of Clougistic's Demand payload, the
 * documented normalisations (see the comment block at the top of os_order.c), the normalised
 * payload tree, its canonical serialisation and the SHA-256 content digest used for
 * idempotency. */
#ifndef OS_ORDER_H
#define OS_ORDER_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "os_json.h"
#include "os_fields.h"   /* country and date checks */
#include "os_street.h"   /* the street split */

#define OS_ORDER_DEFAULT_MAX_ITEMS   1000
#define OS_ORDER_DEFAULT_MAX_STRING  1024
#define OS_ORDER_MAX_REFERENCE       64     /* characters, for reference and source_id */

/* path is a JSON path like "$.items[0].qty" (relative to the payload: "$" is the payload
 * object); rule is a short stable token ("required", "type", "enum", "format", "min",
 * "max_length", "max_items", "unknown_field", "country", "currency", "decimal", "email",
 * "street_full", "max_depth"); message is plain English naming the field and the rule. */
typedef struct { const char *path; const char *rule; const char *message; } os_violation_t;

/* A zero member means its default (1000 items, 1024 bytes per string value). */
typedef struct { apr_size_t max_items; apr_size_t max_string; } os_order_limits_t;

typedef struct os_order_t {
    const char *source_id, *reference, *currency;
    int status, type, flag_partial;   /* normalised integers; flag_partial -1 when not set */
    apr_int64_t priority;             /* default 0 */
    apr_size_t item_count;
    const os_json_t *payload;         /* the NORMALISED Demand payload (what Clougistic gets) */
    const char *canonical;            /* deterministic serialisation of the normalised payload */
    apr_size_t canonical_len;
    const char *digest;               /* hex SHA-256 of canonical: the idempotency content key */
} os_order_t;

/* Validates and normalises one Demand `payload` object. Appends EVERY problem found to
 * `violations` (an array of os_violation_t), never stopping at the first. Returns
 * APR_SUCCESS with *out set when valid, APR_EINVAL when any violation was appended.
 * lim may be NULL (defaults). The result is allocated from p and shares nothing with
 * the input tree. */
apr_status_t os_order_from_json(apr_pool_t *p, const os_json_t *payload,
                                const os_order_limits_t *lim, os_order_t **out,
                                apr_array_header_t *violations);

#endif
