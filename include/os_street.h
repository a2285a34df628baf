/* os_street.h: the split of a one-line street address ("Main Street 12a") into street,
 * house number and house number extension, used for shipping_street_full and
 * billing_street_full (normalisation 3 in os_order.c). It owns the rule only: which fields
 * win and what a failure means for the order are os_order.c's.
 *
 * The rule: trim; the house number is the LAST whitespace-separated token that starts with
 * a digit and has something before it, skipping a token that directly follows a lone
 * separator token ("-" or "/": in "Hauptstr. 5 / 2" the 2 belongs to the extension). Its
 * leading digits are the house number; what precedes the token is the street (trailing
 * commas dropped); the rest of the token after the digits plus any following tokens form
 * the extension, minus one leading '-' or '/' ("Main Street 12a" -> "Main Street", "12",
 * "a"; "Hauptstr. 5 / 2" -> "Hauptstr.", "5", "2"). Failing that, a leading number is taken
 * ("450 Wallstreet" -> "Wallstreet", "450").
 *
 * Invariants: on success street and number are non-empty, number is ASCII digits only, and
 * every part is a trimmed substring of the input (nothing is invented or re-cased); on
 * failure all three are NULL. Works on bytes, so UTF-8 street names pass through intact. */
#ifndef OS_STREET_H
#define OS_STREET_H

#include <apr_pools.h>
#include <apr_errno.h>

/* *ext is NULL when there is no extension. All results from p. APR_EINVAL when no house
 * number or no street can be found. */
apr_status_t os_order_split_street(apr_pool_t *p, const char *full, const char **street,
                                   const char **number, const char **ext);

#endif
