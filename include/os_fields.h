/* os_fields.h: the reference data of Clougistic's Demand document that the order model
 * checks against: the field names of the payload, of an address (after "shipping_" /
 * "billing_") and of an item; the officially assigned ISO 3166-1 alpha-2 country codes;
 * the "Y-m-d H:i:s" date format. Pure lookups: no allocation, no state.
 *
 * Invariants: the address field list is NULL-terminated and in the Demand document's order
 * (the normalised payload lists an address in that order, and os_order.c indexes its fields
 * by it); the country table is sorted for bsearch; a known field is matched exactly (a key
 * with a NUL inside is the caller's to refuse). */
#ifndef OS_FIELDS_H
#define OS_FIELDS_H

/* firstname, lastname, street_full, street, housenumber, postcode, city, country, company,
 * housenumber_ext, region, phone, email, method; NULL-terminated. */
extern const char *const os_order_addr_fields[];

/* 1 when k is a top-level field of the payload: one of its own fields, or "shipping_" /
 * "billing_" + an address field (billing_method excepted: the document names none). */
int os_order_known_top_field(const char *k);

/* 1 when k is a field of an item. */
int os_order_known_item_field(const char *k);

/* 1 when code is an officially assigned ISO 3166-1 alpha-2 code (uppercase, exactly 2). */
int os_order_country_known(const char *code);

/* 1 when s is a real date and time in the Demand format "Y-m-d H:i:s". */
int os_order_datetime_valid(const char *s);

#endif
