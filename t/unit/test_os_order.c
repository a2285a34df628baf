/* test_os_order.c: the Demand order model: a full Demand document
 * (t/fixtures/demand-enqueue.json), every field rule (valid and invalid), violation
 * collection, the documented normalisations, canonical form and digest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/evp.h>

#include "os_json.h"
#include "os_order.h"
#include "tap.h"

static apr_pool_t *pool;

static const char *BASE =
    "{\"reference\":\"R1\",\"source_id\":\"shop1\",\"type\":0,\"currency\":\"EUR\","
    "\"shipping_firstname\":\"Ann\",\"shipping_lastname\":\"Bakker\","
    "\"shipping_street\":\"Main Street\",\"shipping_housenumber\":\"1\","
    "\"shipping_postcode\":\"1000 AA\",\"shipping_city\":\"Amsterdam\",\"shipping_country\":\"NL\","
    "\"items\":[{\"sku\":\"X\",\"qty\":1}]}";

static os_json_t *parse(const char *s)
{
    os_json_t *v = NULL;
    os_json_error_t err;
    if (os_json_parse(pool, s, strlen(s), 64, &v, &err) != APR_SUCCESS) {
        diag("test JSON does not parse: %s at %u:%u: %s", err.message, err.line, err.column, s);
        return NULL;
    }
    return v;
}

/* Sets (value JSON text) or removes (value NULL) a member of a test tree. */
static void set(os_json_t *obj, const char *key, const char *value)
{
    apr_size_t i;
    for (i = 0; i < obj->count; i++)
        if (!strcmp(obj->keys[i], key))
            break;
    if (!value) {
        if (i < obj->count) {
            for (; i + 1 < obj->count; i++) {
                obj->keys[i] = obj->keys[i + 1];
                obj->vals[i] = obj->vals[i + 1];
                obj->key_lens[i] = obj->key_lens[i + 1];
            }
            obj->count--;
        }
        return;
    }
    if (i < obj->count)
        obj->vals[i] = parse(value);
    else
        os_json_add(pool, obj, key, parse(value));
}

static os_json_t *first_item(os_json_t *payload)
{
    return ((os_json_t *)os_json_get(payload, "items"))->vals[0];
}

typedef struct {
    apr_status_t rv;
    os_order_t *o;
    apr_array_header_t *viol;
} result_t;

static result_t run_tree(const os_json_t *payload, const os_order_limits_t *lim)
{
    result_t r;
    r.viol = apr_array_make(pool, 4, sizeof(os_violation_t));
    r.o = NULL;
    r.rv = os_order_from_json(pool, payload, lim, &r.o, r.viol);
    return r;
}

static result_t run(const char *json)
{
    return run_tree(parse(json), NULL);
}

static const os_violation_t *find_viol(const result_t *r, const char *path, const char *rule)
{
    for (int i = 0; i < r->viol->nelts; i++) {
        const os_violation_t *v = &((os_violation_t *)r->viol->elts)[i];
        if (!strcmp(v->path, path) && (!rule || !strcmp(v->rule, rule)))
            return v;
    }
    return NULL;
}

static void dump_viol(const result_t *r)
{
    for (int i = 0; i < r->viol->nelts; i++) {
        const os_violation_t *v = &((os_violation_t *)r->viol->elts)[i];
        diag("  violation %s [%s] %s", v->path, v->rule, v->message);
    }
}

/* The normalised value of a top-level or first-item field as JSON text, or "-" if absent. */
static const char *norm(const os_order_t *o, int in_item, const char *key)
{
    const os_json_t *obj = o->payload, *v;
    if (in_item)
        obj = os_json_get(obj, "items")->vals[0];
    v = os_json_get(obj, key);
    return v ? os_json_serialize(pool, v, 1, 0, NULL) : "-";
}

/* The normalised value of a field of item i as JSON text, or "-" if absent. */
static const char *norm_item(const os_order_t *o, int i, const char *key)
{
    const os_json_t *v = os_json_get(os_json_get(o->payload, "items")->vals[i], key);
    return v ? os_json_serialize(pool, v, 1, 0, NULL) : "-";
}

/* ---------------------------------------------------------------- a full document */

/* t/fixtures/demand-enqueue.json (relative to the project's top, where `make test-unit`
 * runs this test): an enqueue envelope whose payload has every field of the Demand
 * document, written with the example's habits (numbers as strings, "" for not set,
 * shipping by street_full, top-level shipping_method, a lower-case country). */
#define DEMAND_DOC "t/fixtures/demand-enqueue.json"

static void test_document(void)
{
    const char *path = DEMAND_DOC;
    FILE *f;
    char *buf;
    long n;
    os_json_t *doc;
    const os_json_t *payload, *it, *opt;
    result_t r;

    f = fopen(path, "rb");
    if (!ok(f != NULL, "open %s", path))
        return;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = apr_palloc(pool, (apr_size_t)n + 1);
    buf[fread(buf, 1, (size_t)n, f)] = '\0';
    fclose(f);
    doc = parse(buf);
    payload = os_json_get(doc, "payload");
    if (!ok(payload != NULL, "the document has a payload"))
        return;
    {
        /* every field the Demand document names is in the fixture, in one address block at
         * least (street, housenumber and housenumber_ext are billing's; shipping gives
         * street_full), and every item field in the first item */
        static const char *const top[] = {
            "reference", "source_id", "status", "type", "flag_partial", "priority",
            "cod_amount", "currency", "delivery_at", "created_at", "customer_id", "options",
            "shipping_method", "items", NULL };
        static const char *const addr[] = {
            "firstname", "lastname", "street", "housenumber", "postcode", "city", "country",
            "company", "housenumber_ext", "region", "phone", "email", NULL };
        static const char *const item[] = {
            "sku", "description", "weight", "reference", "unit_price", "qty", "custom_options",
            "allocation_type", "cost", "packing", "is_kit", NULL };
        const char *missing = NULL;
        const os_json_t *items = os_json_get(payload, "items");
        for (int i = 0; !missing && top[i]; i++)
            if (!os_json_get(payload, top[i]))
                missing = top[i];
        for (int i = 0; !missing && addr[i]; i++) {
            const char *b = apr_pstrcat(pool, "billing_", addr[i], NULL);
            const char *s = apr_pstrcat(pool, "shipping_", addr[i], NULL);
            if (!os_json_get(payload, b) && !os_json_get(payload, s))
                missing = addr[i];
        }
        for (int i = 0; !missing && item[i]; i++)
            if (!items || !items->count || !os_json_get(items->vals[0], item[i]))
                missing = item[i];
        ok(!missing && os_json_get(doc, "access_key") && os_json_get(doc, "entity_id"),
           "the document has every Demand field (missing: %s)", missing ? missing : "none");
    }
    r = run_tree(payload, NULL);
    if (!is_int(r.rv, APR_SUCCESS, "the document's payload validates"))
        dump_viol(&r);
    is_int(r.viol->nelts, 0, "no violations");
    if (!r.o)
        return;
    is_str(r.o->reference, "000020417", "reference kept as text with its zeros");
    is_str(r.o->source_id, "mage2", "source_id");
    is_str(r.o->currency, "EUR", "currency");
    is_int(r.o->status, 0, "status \"0\" -> 0");
    is_int(r.o->type, 0, "type 0");
    is_int(r.o->flag_partial, -1, "flag_partial \"\" -> not set");
    is_int(r.o->priority, -2, "priority \"-2\" -> -2");
    is_int(r.o->item_count, 2, "two items");
    is_str(norm(r.o, 0, "status"), "0", "normalised status is the integer 0");
    is_str(norm(r.o, 0, "type"), "0", "normalised type is the integer 0");
    is_str(norm(r.o, 0, "priority"), "-2", "normalised priority is the integer -2");
    is_str(norm(r.o, 0, "flag_partial"), "-", "flag_partial absent from the payload");
    is_str(norm(r.o, 0, "delivery_at"), "\"2026-03-02 07:30:00\"", "delivery_at kept");
    is_str(norm(r.o, 0, "created_at"), "\"2026-02-27 16:05:41\"", "created_at kept");
    is_str(norm(r.o, 0, "cod_amount"), "24.95", "cod_amount \"24.95\" -> number 24.95");
    is_str(norm(r.o, 0, "currency"), "\"EUR\"", "normalised currency");
    is_str(norm(r.o, 0, "customer_id"), "\"20931\"", "customer_id");
    is_str(norm(r.o, 0, "reference"), "\"000020417\"", "normalised reference");
    is_str(norm(r.o, 0, "source_id"), "\"mage2\"", "normalised source_id");
    is_str(norm(r.o, 0, "shipping_street"), "\"Keizersgracht\"", "shipping street split");
    is_str(norm(r.o, 0, "shipping_housenumber"), "\"221\"", "shipping house number split");
    is_str(norm(r.o, 0, "shipping_housenumber_ext"), "\"B\"",
           "shipping extension split, its \"-\" dropped");
    is_str(norm(r.o, 0, "shipping_street_full"), "\"Keizersgracht 221-B\"", "street_full kept");
    is_str(norm(r.o, 0, "shipping_firstname"), "\"Jorrit\"", "shipping firstname");
    is_str(norm(r.o, 0, "shipping_lastname"), "\"Hoekstra\"", "shipping lastname");
    is_str(norm(r.o, 0, "shipping_postcode"), "\"1016 DV\"", "shipping postcode");
    is_str(norm(r.o, 0, "shipping_city"), "\"Amsterdam\"", "shipping city");
    is_str(norm(r.o, 0, "shipping_region"), "\"Noord-Holland\"", "shipping region");
    is_str(norm(r.o, 0, "shipping_country"), "\"NL\"", "shipping country \"nl\" -> \"NL\"");
    is_str(norm(r.o, 0, "shipping_company"), "-", "empty shipping company absent");
    is_str(norm(r.o, 0, "shipping_phone"), "-", "empty shipping phone absent");
    is_str(norm(r.o, 0, "shipping_email"), "\"jorrit.hoekstra@mail.example\"", "shipping email");
    is_str(norm(r.o, 0, "shipping_method"), "\"dhl_parcel\"",
           "top-level shipping_method is the shipping method field");
    is_str(norm(r.o, 0, "billing_street"), "\"Lindelaan\"", "billing street as given");
    is_str(norm(r.o, 0, "billing_housenumber"), "\"7\"", "billing house number as given");
    is_str(norm(r.o, 0, "billing_housenumber_ext"), "\"bis\"", "billing extension as given");
    is_str(norm(r.o, 0, "billing_street_full"), "-", "no billing street_full");
    is_str(norm(r.o, 0, "billing_company"), "\"Tuinderij De Linde\"", "billing company");
    is_str(norm(r.o, 0, "billing_firstname"), "\"Fenna\"", "billing firstname");
    is_str(norm(r.o, 0, "billing_lastname"), "\"Hoekstra\"", "billing lastname");
    is_str(norm(r.o, 0, "billing_postcode"), "\"8911 AB\"", "billing postcode");
    is_str(norm(r.o, 0, "billing_city"), "\"Leeuwarden\"", "billing city");
    is_str(norm(r.o, 0, "billing_region"), "\"Friesland\"", "billing region");
    is_str(norm(r.o, 0, "billing_country"), "\"NL\"", "billing country");
    is_str(norm(r.o, 0, "billing_phone"), "\"+31 58 555 0147\"", "billing phone");
    is_str(norm(r.o, 0, "billing_email"), "\"administratie@delinde.example\"", "billing email");
    is_str(norm(r.o, 0, "billing_method"), "-", "no billing method");
    is_str(norm_item(r.o, 0, "sku"), "\"TLP-RED-10\"", "item 0 sku");
    is_str(norm_item(r.o, 0, "description"), "\"Tulip bulbs, red, pack of 10\"",
           "item 0 description");
    is_str(norm_item(r.o, 0, "qty"), "3", "item 0 qty 3");
    is_str(norm_item(r.o, 0, "unit_price"), "7.90", "unit_price text \"7.90\" kept as 7.90");
    is_str(norm_item(r.o, 0, "cost"), "4.10", "cost 4.10");
    is_str(norm_item(r.o, 0, "weight"), "0.350", "weight \"0.350\" kept as 0.350");
    is_str(norm_item(r.o, 0, "reference"), "\"1\"", "item reference");
    is_str(norm_item(r.o, 0, "allocation_type"), "2", "allocation_type 2");
    is_str(norm_item(r.o, 0, "is_kit"), "false", "is_kit false");
    is_str(norm_item(r.o, 0, "custom_options"),
           "{\"option_data\":[{\"label\":\"Gift card text\",\"value\":\"Happy spring!\"}]}",
           "custom_options passed through");
    is_str(norm_item(r.o, 0, "packing"), "{\"additional_labels\":[{\"care_instruction\":"
           "\"plant before the frost\",\"country_of_origin\":\"The Netherlands\"}]}",
           "packing passed through");
    is_str(norm_item(r.o, 1, "sku"), "\"KIT-SPRING\"", "item 1 sku");
    is_str(norm_item(r.o, 1, "description"), "\"Spring planting kit\"", "item 1 description");
    is_str(norm_item(r.o, 1, "qty"), "1", "item 1 qty \"1\" -> 1");
    is_str(norm_item(r.o, 1, "unit_price"), "19.00", "item 1 unit_price 19.00");
    is_str(norm_item(r.o, 1, "weight"), "-", "item 1 weight \"\" absent");
    is_str(norm_item(r.o, 1, "cost"), "-", "item 1 cost \"\" absent");
    is_str(norm_item(r.o, 1, "reference"), "\"2\"", "item 1 reference 2 -> \"2\"");
    is_str(norm_item(r.o, 1, "allocation_type"), "3", "item 1 allocation_type \"3\" -> 3");
    is_str(norm_item(r.o, 1, "is_kit"), "true", "item 1 is_kit \"1\" -> true");
    is_str(norm_item(r.o, 1, "custom_options"), "{}", "item 1 empty custom_options kept");
    is_str(norm_item(r.o, 1, "packing"), "{\"additional_labels\":[]}",
           "item 1 packing with no labels kept");
    opt = os_json_get(r.o->payload, "options");
    ok(opt && os_json_get(opt, "@pos_zone_id") && os_json_get(opt, "@consignment_zone_id"),
       "options passthrough keeps \"@\" keys");
    is_str(opt ? os_json_serialize(pool, opt, 0, 0, NULL) : NULL,
           "{\"info\":\"leave at the back door\",\"@pos_zone_id\":\"\",\"@consignment_zone_id\":\"\","
           "\"carrier\":{\"name\":\"dhl_parcel\",\"type\":\"0001\"},"
           "\"packing\":{\"ogc\":false,\"instruction\":\"no plastic filler\"},"
           "\"delivery_date_strict\":true}", "options unchanged, order kept");
    is_str(r.o->payload->keys[0], "reference", "payload starts with reference");
    is_str(r.o->payload->keys[r.o->payload->count - 1], "items", "payload ends with items");
    it = os_json_get(r.o->payload, "items");
    ok(it && it->type == OS_JSON_ARRAY && it->count == 2, "items is a flat array of two");
    is_str(it->vals[0]->keys[0], "sku", "item starts with sku");
    is_int(strlen(r.o->digest), 64, "digest is 64 hex digits");
    ok(strspn(r.o->digest, "0123456789abcdef") == 64, "digest is lowercase hex");
    {
        /* the digest is SHA-256 of the canonical text, computed here independently */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        ok(EVP_Digest(r.o->canonical, r.o->canonical_len, md, &mdlen, EVP_sha256(), NULL)
           && mdlen == 32, "SHA-256 of the canonical form computed");
        for (unsigned int i = 0; i < mdlen; i++)
            sprintf(hex + 2 * i, "%02x", md[i]);
        is_str(r.o->digest, hex, "digest is the hex SHA-256 of the canonical form");
    }
    ok(r.o->canonical_len == strlen(r.o->canonical) && r.o->canonical[0] == '{'
       && !strchr(r.o->canonical, '\n'), "canonical is one compact line");
    ok(!strncmp(r.o->canonical, "{\"billing_city\":", 16), "canonical keys sorted: %.30s",
       r.o->canonical);
    {
        os_json_t *again = parse(r.o->canonical);
        result_t r2 = run_tree(again, NULL);
        ok(r2.rv == APR_SUCCESS && !strcmp(r2.o->digest, r.o->digest),
           "normalising the normalised payload is idempotent (same digest)");
    }
}

/* ---------------------------------------------------------------- field rules */

typedef struct {
    int in_item;
    const char *key;
    const char *value;     /* JSON text; NULL removes the field */
    const char *rule;      /* expected violation rule, NULL for valid */
    const char *expect;    /* valid: normalised JSON text, "-" absent, NULL unchecked */
} field_case_t;

static const char S65[] = "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"";
static const char S64[] = "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"";

static const field_case_t cases[] = {
    /* reference / source_id */
    {0, "reference", NULL, "required", NULL},
    {0, "reference", "\"\"", "required", NULL},
    {0, "reference", "null", "required", NULL},
    {0, "reference", "\"   \"", "required", NULL},
    {0, "reference", "12", "type", NULL},
    {0, "reference", "\"a\\tb\"", "format", NULL},
    {0, "reference", "\"a\\u007fb\"", "format", NULL},
    {0, "reference", S65, "max_length", NULL},
    {0, "reference", S64, NULL, S64},
    {0, "reference", "\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
                     "\\u00e9\\u00e9\\u00e9\\u00e9\"", NULL, NULL},   /* 64 chars, 128 bytes */
    {0, "reference", "\"a\\u0000b\"", "format", NULL},
    {0, "source_id", NULL, "required", NULL},
    {0, "source_id", "\"\"", "required", NULL},
    {0, "source_id", "[]", "type", NULL},
    {0, "source_id", S65, "max_length", NULL},
    {0, "source_id", "\"web\\nshop\"", "format", NULL},
    /* reference / source_id are segments of the status URL */
    {0, "reference", "\"a/b\"", "format", NULL},
    {0, "reference", "\"/\"", "format", NULL},
    {0, "reference", "\"x/../WEB-1001\"", "format", NULL},
    {0, "reference", "\"../../../../evil\"", "format", NULL},
    {0, "reference", "\".\"", "format", NULL},
    {0, "reference", "\"..\"", "format", NULL},
    {0, "reference", "\"a\\\\b\"", "format", NULL},
    {0, "reference", "\"..\\\\x\"", "format", NULL},
    {0, "reference", "\".hidden\"", NULL, "\".hidden\""},
    {0, "reference", "\"...\"", NULL, "\"...\""},
    {0, "reference", "\"a..b\"", NULL, "\"a..b\""},
    {0, "reference", "\"a b?c#d%e+f;g\"", NULL, "\"a b?c#d%e+f;g\""},
    {0, "reference", "\"WEB%2F1001\"", NULL, "\"WEB%2F1001\""},
    {0, "reference", "\"Bestellung-\\u00c4\\u00d6\\u00dc-\\u4e2d\\u6587\"", NULL, NULL},
    {0, "source_id", "\"web/shop\"", "format", NULL},
    {0, "source_id", "\"..\"", "format", NULL},
    {0, "source_id", "\".\"", "format", NULL},
    /* status */
    {0, "status", "\"0\"", NULL, "0"},
    {0, "status", "1", NULL, "1"},
    {0, "status", "\"8\"", NULL, "8"},
    {0, "status", "9", NULL, "9"},
    {0, "status", "\"\"", NULL, "0"},
    {0, "status", "null", NULL, "0"},
    {0, "status", NULL, NULL, "0"},
    {0, "status", "2", "enum", NULL},
    {0, "status", "\"7\"", "enum", NULL},
    {0, "status", "-1", "enum", NULL},
    {0, "status", "\"x\"", "type", NULL},
    {0, "status", "1.0", "type", NULL},
    {0, "status", "true", "type", NULL},
    {0, "status", "\" 1\"", "type", NULL},
    /* type */
    {0, "type", "0", NULL, "0"},
    {0, "type", "\"1\"", NULL, "1"},
    {0, "type", "2", "enum", NULL},
    {0, "type", NULL, "required", NULL},
    {0, "type", "\"\"", "required", NULL},
    {0, "type", "{}", "type", NULL},
    /* flag_partial */
    {0, "flag_partial", "\"\"", NULL, "-"},
    {0, "flag_partial", "0", NULL, "0"},
    {0, "flag_partial", "\"1\"", NULL, "1"},
    {0, "flag_partial", "2", NULL, "2"},
    {0, "flag_partial", "3", "enum", NULL},
    {0, "flag_partial", "\"no\"", "type", NULL},
    /* priority */
    {0, "priority", NULL, NULL, "0"},     /* "If not added, an order will receive priority: 0" */
    {0, "priority", "-5", NULL, "-5"},
    {0, "priority", "\"10\"", NULL, "10"},
    {0, "priority", "\"007\"", NULL, "7"},
    {0, "priority", "\"-9223372036854775808\"", NULL, "-9223372036854775808"},
    {0, "priority", "9223372036854775807", NULL, "9223372036854775807"},
    {0, "priority", "9223372036854775808", "type", NULL},
    {0, "priority", "\"99999999999999999999\"", "type", NULL},
    {0, "priority", "1.5", "type", NULL},
    {0, "priority", "1e2", "type", NULL},
    {0, "priority", "\"\"", NULL, "0"},
    /* cod_amount */
    {0, "cod_amount", "\"0\"", NULL, "0"},
    {0, "cod_amount", "0", NULL, "0"},
    {0, "cod_amount", "\"12.50\"", NULL, "12.50"},
    {0, "cod_amount", "12.5", NULL, "12.5"},
    {0, "cod_amount", "\"007.10\"", NULL, "7.10"},
    {0, "cod_amount", "\"-0.00\"", NULL, "0.00"},
    {0, "cod_amount", "\"123456789012345678901234567890.123456789\"", NULL,
                      "123456789012345678901234567890.123456789"},
    {0, "cod_amount", "\"\"", NULL, "-"},
    {0, "cod_amount", "-1", "min", NULL},
    {0, "cod_amount", "\"-0.01\"", "min", NULL},
    {0, "cod_amount", "\"1e3\"", "decimal", NULL},
    {0, "cod_amount", "1E3", "decimal", NULL},
    {0, "cod_amount", "\"1.\"", "decimal", NULL},
    {0, "cod_amount", "\".5\"", "decimal", NULL},
    {0, "cod_amount", "\"1,50\"", "decimal", NULL},
    {0, "cod_amount", "\"abc\"", "decimal", NULL},
    {0, "cod_amount", "\"+1\"", "decimal", NULL},
    {0, "cod_amount", "\"1.2.3\"", "decimal", NULL},
    {0, "cod_amount", "true", "type", NULL},
    /* currency */
    {0, "currency", "\"usd\"", NULL, "\"USD\""},
    {0, "currency", "\"Gbp\"", NULL, "\"GBP\""},
    {0, "currency", "\"EURO\"", "currency", NULL},
    {0, "currency", "\"EU\"", "currency", NULL},
    {0, "currency", "\"E1R\"", "currency", NULL},
    {0, "currency", "978", "type", NULL},
    {0, "currency", NULL, "required", NULL},
    {0, "currency", "\"\"", "required", NULL},
    /* dates */
    {0, "delivery_at", "\"2019-04-18 08:47:25\"", NULL, "\"2019-04-18 08:47:25\""},
    {0, "delivery_at", "\"2020-02-29 00:00:00\"", NULL, NULL},
    {0, "delivery_at", "\"2000-02-29 23:59:59\"", NULL, NULL},
    {0, "delivery_at", "\"2021-02-30 10:00:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-02-29 00:00:00\"", "format", NULL},
    {0, "delivery_at", "\"1900-02-29 00:00:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-31 00:00:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-13-01 00:00:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-00-01 00:00:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-18 24:00:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-18 23:60:00\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-18 23:59:60\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-18T08:47:25\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-18\"", "format", NULL},
    {0, "delivery_at", "\"2019-04-18 08:47:25Z\"", "format", NULL},
    {0, "delivery_at", "\"0000-01-01 00:00:00\"", "format", NULL},
    {0, "delivery_at", "\"\"", NULL, "-"},
    {0, "delivery_at", "1555577245", "type", NULL},
    {0, "created_at", "\"2019-04-18 08:47:25\"", NULL, "\"2019-04-18 08:47:25\""},
    {0, "created_at", "\"2021-02-30 08:47:25\"", "format", NULL},
    {0, "created_at", "\"18-04-2019 08:47:25\"", "format", NULL},
    /* customer_id */
    {0, "customer_id", "1", NULL, "\"1\""},
    {0, "customer_id", "\"C-1\"", NULL, "\"C-1\""},
    {0, "customer_id", "\"\"", NULL, "-"},
    {0, "customer_id", "1.5", "type", NULL},
    {0, "customer_id", "{}", "type", NULL},
    /* options */
    {0, "options", "{\"@pos_zone_id\":\"\",\"x\":[1,{\"y\":null}]}", NULL,
                   "{\"@pos_zone_id\":\"\",\"x\":[1,{\"y\":null}]}"},
    {0, "options", "{}", NULL, "{}"},
    {0, "options", "\"\"", NULL, "-"},
    {0, "options", "\"x\"", "type", NULL},
    {0, "options", "[]", "type", NULL},
    /* shipping */
    {0, "shipping_firstname", NULL, "required", NULL},
    {0, "shipping_lastname", "\"\"", "required", NULL},
    {0, "shipping_street", NULL, "required", NULL},
    {0, "shipping_housenumber", NULL, "required", NULL},
    {0, "shipping_postcode", NULL, "required", NULL},
    {0, "shipping_city", NULL, "required", NULL},
    {0, "shipping_country", NULL, "required", NULL},
    {0, "shipping_country", "\"nl\"", NULL, "\"NL\""},
    {0, "shipping_country", "\"DE\"", NULL, "\"DE\""},
    {0, "shipping_country", "\"XX\"", "country", NULL},
    {0, "shipping_country", "\"UK\"", "country", NULL},
    {0, "shipping_country", "\"NLD\"", "country", NULL},
    {0, "shipping_country", "\"N\"", "country", NULL},
    {0, "shipping_country", "\"N1\"", "country", NULL},
    {0, "shipping_country", "31", "type", NULL},
    {0, "shipping_housenumber", "12", "type", NULL},
    {0, "shipping_company", "\"Shoe Shop\"", NULL, "\"Shoe Shop\""},
    {0, "shipping_company", "\"\"", NULL, "-"},
    {0, "shipping_housenumber_ext", "\"bis\"", NULL, "\"bis\""},
    {0, "shipping_region", "\"NH\"", NULL, "\"NH\""},
    {0, "shipping_phone", "\"+31 20 123\"", NULL, "\"+31 20 123\""},
    {0, "shipping_method", "\"flatrate\"", NULL, "\"flatrate\""},
    {0, "shipping_email", "\"a@b.nl\"", NULL, "\"a@b.nl\""},
    {0, "shipping_email", "\"first.last+tag@mail.example.com\"", NULL, NULL},
    {0, "shipping_email", "\"\"", NULL, "-"},
    {0, "shipping_email", "\"ab.nl\"", "email", NULL},
    {0, "shipping_email", "\"a@b\"", "email", NULL},
    {0, "shipping_email", "\"@b.nl\"", "email", NULL},
    {0, "shipping_email", "\"a@@b.nl\"", "email", NULL},
    {0, "shipping_email", "\"a@b@c.nl\"", "email", NULL},
    {0, "shipping_email", "\"a b@c.nl\"", "email", NULL},
    {0, "shipping_email", "\"a@b.\"", "email", NULL},
    {0, "shipping_email", "\"a@.nl\"", "email", NULL},
    /* billing: all optional, same rules */
    {0, "billing_firstname", "\"David\"", NULL, "\"David\""},
    {0, "billing_country", "\"us\"", NULL, "\"US\""},
    {0, "billing_country", "\"ZZ\"", "country", NULL},
    {0, "billing_email", "\"nope\"", "email", NULL},
    {0, "billing_street_full", "\"Kerkstraat 7\"", NULL, "\"Kerkstraat 7\""},
    {0, "billing_street_full", "\"Nowhere\"", "street_full", NULL},
    {0, "billing_city", "5", "type", NULL},
    {0, "billing_method", "\"x\"", "unknown_field", NULL},
    /* unknown fields */
    {0, "refrence", "\"R1\"", "unknown_field", NULL},
    {0, "shipping_nme", "\"x\"", "unknown_field", NULL},
    {0, "access_key", "\"secret\"", "unknown_field", NULL},
    {0, "payload", "{}", "unknown_field", NULL},
    /* items */
    {0, "items", NULL, "required", NULL},
    {0, "items", "[]", "min", NULL},
    {0, "items", "\"x\"", "type", NULL},
    {0, "items", "{}", "type", NULL},
    /* item fields */
    {1, "sku", NULL, "required", NULL},
    {1, "sku", "\"\"", "required", NULL},
    {1, "sku", "5", "type", NULL},
    {1, "sku", "\"MUG-33\"", NULL, "\"MUG-33\""},
    {1, "description", "\"Shoes\"", NULL, "\"Shoes\""},
    {1, "description", "[]", "type", NULL},
    {1, "qty", "0", "min", NULL},
    {1, "qty", "-1", "min", NULL},
    {1, "qty", "\"0\"", "min", NULL},
    {1, "qty", "\"0.000\"", "min", NULL},
    {1, "qty", "\"-0\"", "min", NULL},
    {1, "qty", "\"0.5\"", NULL, "0.5"},
    {1, "qty", "\"2\"", NULL, "2"},
    {1, "qty", "3.0000", NULL, "3.0000"},
    {1, "qty", NULL, "required", NULL},
    {1, "qty", "\"\"", "required", NULL},
    {1, "qty", "\"1e2\"", "decimal", NULL},
    {1, "qty", "1e2", "decimal", NULL},
    {1, "qty", "\"two\"", "decimal", NULL},
    {1, "weight", "\"\"", NULL, "-"},
    {1, "weight", "\"1.25\"", NULL, "1.25"},
    {1, "weight", "0", NULL, "0"},
    {1, "weight", "-1", "min", NULL},
    {1, "weight", "\"1kg\"", "decimal", NULL},
    {1, "unit_price", "\"50.00\"", NULL, "50.00"},
    {1, "unit_price", "-3.5", NULL, "-3.5"},
    {1, "unit_price", "\"5O.00\"", "decimal", NULL},
    {1, "cost", "\"40.12\"", NULL, "40.12"},
    {1, "cost", "0", NULL, "0"},
    {1, "cost", "-1", "min", NULL},
    {1, "allocation_type", "1", NULL, "1"},
    {1, "allocation_type", "\"2\"", NULL, "2"},
    {1, "allocation_type", "3", NULL, "3"},
    {1, "allocation_type", "\"\"", NULL, "-"},
    {1, "allocation_type", "0", "enum", NULL},
    {1, "allocation_type", "4", "enum", NULL},
    {1, "allocation_type", "\"direct\"", "type", NULL},
    {1, "is_kit", "false", NULL, "false"},
    {1, "is_kit", "true", NULL, "true"},
    {1, "is_kit", "1", NULL, "true"},
    {1, "is_kit", "0", NULL, "false"},
    {1, "is_kit", "\"1\"", NULL, "true"},
    {1, "is_kit", "\"0\"", NULL, "false"},
    {1, "is_kit", "\"true\"", NULL, "true"},
    {1, "is_kit", "\"false\"", NULL, "false"},
    {1, "is_kit", "\"\"", NULL, "-"},
    {1, "is_kit", "\"yes\"", "type", NULL},
    {1, "is_kit", "2", "type", NULL},
    {1, "is_kit", "{}", "type", NULL},
    {1, "reference", "17", NULL, "\"17\""},
    {1, "reference", "\"17\"", NULL, "\"17\""},
    {1, "reference", "1.7", "type", NULL},
    {1, "custom_options", "{\"a\":1}", NULL, "{\"a\":1}"},
    {1, "custom_options", "\"x\"", "type", NULL},
    {1, "custom_options", "[1]", "type", NULL},
    {1, "packing", "{\"additional_labels\":[{\"a\":\"b\"}],\"other\":1}", NULL,
                   "{\"additional_labels\":[{\"a\":\"b\"}],\"other\":1}"},
    {1, "packing", "{}", NULL, "{}"},
    {1, "packing", "\"x\"", "type", NULL},
    {1, "colour", "\"red\"", "unknown_field", NULL},
    {1, "qty ", "1", "unknown_field", NULL},
};

static void test_field_rules(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const field_case_t *fc = &cases[i];
        os_json_t *payload = parse(BASE);
        os_json_t *target = fc->in_item ? first_item(payload) : payload;
        const char *path, *label;
        result_t r;

        set(target, fc->key, fc->value);
        r = run_tree(payload, NULL);
        path = apr_pstrcat(pool, fc->in_item ? "$.items[0]." : "$.", fc->key, NULL);
        if (!strcmp(fc->key, "qty "))
            path = "$.items[0][\"qty \"]";
        label = apr_psprintf(pool, "%s = %.40s", path + 2, fc->value ? fc->value : "(absent)");
        if (!fc->rule) {
            int good = ok(r.rv == APR_SUCCESS && r.viol->nelts == 0, "%s is valid", label);
            if (!good)
                dump_viol(&r);
            else if (fc->expect)
                is_str(norm(r.o, fc->in_item, fc->key), fc->expect, "%s normalised", label);
        }
        else {
            const os_violation_t *v = find_viol(&r, path, fc->rule);
            int good = ok(r.rv == APR_EINVAL && r.o == NULL && v != NULL && r.viol->nelts == 1,
                          "%s -> %s at %s", label, fc->rule, path);
            if (!good)
                dump_viol(&r);
            else if (v && (!v->message || !strstr(v->message, path + 2)))
                ok(0, "message names the field: %s", v->message);
        }
    }
}

/* ---------------------------------------------------------------- structure */

static void test_messages_and_multi(void)
{
    os_json_t *payload = parse(BASE);
    const os_violation_t *v;
    result_t r;

    set(payload, "reference", NULL);
    set(payload, "currency", "\"EURO\"");
    set(payload, "shipping_city", NULL);
    set(payload, "shiping_city", "\"x\"");
    set(first_item(payload), "qty", "\"0\"");
    set(first_item(payload), "sku", NULL);
    r = run_tree(payload, NULL);
    is_int(r.rv, APR_EINVAL, "several problems -> APR_EINVAL");
    ok(r.o == NULL, "no order on failure");
    is_int(r.viol->nelts, 6, "all six problems reported at once");
    ok(find_viol(&r, "$.reference", "required") != NULL, "missing reference reported");
    ok(find_viol(&r, "$.currency", "currency") != NULL, "bad currency reported");
    ok(find_viol(&r, "$.shipping_city", "required") != NULL, "missing city reported");
    ok(find_viol(&r, "$.shiping_city", "unknown_field") != NULL, "typo reported");
    ok(find_viol(&r, "$.items[0].sku", "required") != NULL, "missing sku reported");
    v = find_viol(&r, "$.items[0].qty", "min");
    is_str(v ? v->message : NULL, "items[0].qty must be a number above 0, got \"0\"",
           "qty message names field, rule and value");
    v = find_viol(&r, "$.reference", NULL);
    is_str(v ? v->message : NULL, "reference is required", "required message");
    v = find_viol(&r, "$.currency", NULL);
    ok(v && strstr(v->message, "currency") && strstr(v->message, "\"EURO\""),
       "currency message: %s", v ? v->message : "");

    r = run("[1,2]");
    ok(r.rv == APR_EINVAL && find_viol(&r, "$", "type"), "payload that is not an object");
    v = find_viol(&r, "$", "type");
    is_str(v ? v->message : NULL, "payload must be a JSON object, got an array",
           "message for a non-object payload");
    r = run_tree(NULL, NULL);
    ok(r.rv == APR_EINVAL && r.viol->nelts == 1, "NULL payload");

    /* every required field missing at once */
    r = run("{}");
    is_int(r.rv, APR_EINVAL, "empty object rejected");
    {
        static const char *const req[] = { "$.reference", "$.source_id", "$.type",
            "$.currency", "$.shipping_firstname", "$.shipping_lastname", "$.shipping_street",
            "$.shipping_housenumber", "$.shipping_postcode", "$.shipping_city",
            "$.shipping_country", "$.items", NULL };
        int all = 1;
        for (int i = 0; req[i]; i++)
            if (!find_viol(&r, req[i], "required")) {
                diag("missing violation for %s", req[i]);
                all = 0;
            }
        ok(all, "each missing required field reported with its path");
        is_int(r.viol->nelts, 12, "exactly the 12 required fields");
    }

    /* a long value in a message is cut */
    payload = parse(BASE);
    set(payload, "currency", "\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz\"");
    r = run_tree(payload, NULL);
    v = find_viol(&r, "$.currency", "currency");
    ok(v && strstr(v->message, "...") && strlen(v->message) < 160, "long value shortened: %s",
       v ? v->message : "");
    /* odd keys are quoted in paths */
    payload = parse(BASE);
    set(payload, "a\"b c", "1");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$[\"a\\\"b c\"]", "unknown_field") != NULL,
       "unknown key with quote and space gets a bracketed path");
}

static void test_items_structure(void)
{
    os_json_t *payload;
    result_t r;
    os_order_limits_t lim = { 2, 12 };   /* "Main Street" is 11 bytes */
    const os_json_t *its;

    payload = parse(BASE);
    set(payload, "items", "[[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":\"2\"}],"
                          "{\"sku\":\"C\",\"qty\":3}]");
    r = run_tree(payload, NULL);
    is_int(r.rv, APR_SUCCESS, "nested [[...]] items accepted");
    if (r.o) {
        its = os_json_get(r.o->payload, "items");
        is_int(r.o->item_count, 3, "three items after flattening");
        ok(its->count == 3 && its->vals[0]->type == OS_JSON_OBJECT
           && its->vals[2]->type == OS_JSON_OBJECT, "flat array of objects");
        is_str(os_json_serialize(pool, its, 0, 0, NULL),
               "[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":2},{\"sku\":\"C\",\"qty\":3}]",
               "flattened in order, qty normalised");
    }
    else
        dump_viol(&r);

    payload = parse(BASE);
    set(payload, "items", "[[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":0}]]");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.items[0][1].qty", "min") != NULL,
       "a nested item's violation keeps its original path");
    payload = parse(BASE);
    set(payload, "items", "[[{\"sku\":\"A\",\"qty\":1}, 5]]");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.items[0][1]", "type") != NULL, "non-object inside nested items");
    payload = parse(BASE);
    set(payload, "items", "[{\"sku\":\"A\",\"qty\":1}, \"x\", null]");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.items[1]", "type") && find_viol(&r, "$.items[2]", "type")
       && r.viol->nelts == 2, "non-object items reported each");
    payload = parse(BASE);
    set(payload, "items", "[[]]");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.items", "min") != NULL, "[[]] holds no item");

    /* max_items */
    payload = parse(BASE);
    set(payload, "items", "[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":1}]");
    r = run_tree(payload, &lim);
    is_int(r.rv, APR_SUCCESS, "2 items at max_items 2");
    set(payload, "items", "[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":1},"
                          "{\"sku\":\"C\",\"qty\":0}]");
    r = run_tree(payload, &lim);
    ok(r.rv == APR_EINVAL && find_viol(&r, "$.items", "max_items") && r.viol->nelts == 1,
       "3 items over max_items 2 (items past the limit not validated)");
    set(payload, "items", "[[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":1}],"
                          "[{\"sku\":\"C\",\"qty\":1}]]");
    r = run_tree(payload, &lim);
    ok(find_viol(&r, "$.items", "max_items") != NULL, "max_items counts flattened items");
    {
        /* default limit: 1000 */
        apr_array_header_t *parts = apr_array_make(pool, 1001, sizeof(char *));
        for (int i = 0; i < 1001; i++)
            *(const char **)apr_array_push(parts) = "{\"sku\":\"A\",\"qty\":1}";
        payload = parse(BASE);
        set(payload, "items", apr_pstrcat(pool, "[", apr_array_pstrcat(pool, parts, ','), "]",
                                          NULL));
        r = run_tree(payload, NULL);
        ok(find_viol(&r, "$.items", "max_items") != NULL, "1001 items over the default 1000");
        apr_array_pop(parts);
        payload = parse(BASE);
        set(payload, "items", apr_pstrcat(pool, "[", apr_array_pstrcat(pool, parts, ','), "]",
                                          NULL));
        r = run_tree(payload, NULL);
        ok(r.rv == APR_SUCCESS && r.o->item_count == 1000, "1000 items at the default limit");
    }

    /* max_length */
    payload = parse(BASE);
    set(payload, "shipping_city", "\"Amsterdam!!!\"");
    r = run_tree(payload, &lim);
    is_int(r.rv, APR_SUCCESS, "12-byte city at max_string 12");
    set(payload, "shipping_city", "\"Amsterdam!!!!\"");
    set(first_item(payload), "description", "\"0123456789012\"");
    r = run_tree(payload, &lim);
    ok(find_viol(&r, "$.shipping_city", "max_length")
       && find_viol(&r, "$.items[0].description", "max_length") && r.viol->nelts == 2,
       "13-byte strings over max_string 12 (top level and item)");
    payload = parse(BASE);
    set(payload, "options", "{\"note\":\"far longer than twelve bytes\"}");
    r = run_tree(payload, &lim);
    is_int(r.rv, APR_SUCCESS, "passthrough objects are not length-checked");
    {
        char *big = apr_palloc(pool, 1030);
        big[0] = '"';
        memset(big + 1, 'x', 1025);
        strcpy(big + 1026, "\"");
        payload = parse(BASE);
        set(payload, "shipping_company", big);
        r = run_tree(payload, NULL);
        ok(find_viol(&r, "$.shipping_company", "max_length") != NULL,
           "1025 bytes over the default 1024");
        big[1025] = '"';
        big[1026] = '\0';
        set(payload, "shipping_company", big);
        r = run_tree(payload, NULL);
        is_int(r.rv, APR_SUCCESS, "1024 bytes at the default limit");
    }

    /* packing.additional_labels */
    payload = parse(BASE);
    set(first_item(payload), "packing", "{\"additional_labels\":{}}");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.items[0].packing.additional_labels", "type") != NULL,
       "additional_labels must be an array");
    set(first_item(payload), "packing", "{\"additional_labels\":[{},1,\"x\"]}");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.items[0].packing.additional_labels[1]", "type")
       && find_viol(&r, "$.items[0].packing.additional_labels[2]", "type")
       && r.viol->nelts == 2, "additional_labels members must be objects");
}

/* ---------------------------------------------------------------- street split */

static void split_case(const char *full, const char *street, const char *number,
                       const char *ext)
{
    const char *s, *n, *e;
    apr_status_t rv = os_order_split_street(pool, full, &s, &n, &e);
    if (!street) {
        ok(rv == APR_EINVAL && !s && !n && !e, "split \"%s\" fails", full);
        return;
    }
    ok(rv == APR_SUCCESS && s && !strcmp(s, street) && n && !strcmp(n, number)
       && ((!ext && !e) || (ext && e && !strcmp(e, ext))),
       "split \"%s\" -> \"%s\" | \"%s\" | \"%s\"  (got \"%s\" | \"%s\" | \"%s\")", full, street,
       number, ext ? ext : "", s ? s : "NULL", n ? n : "NULL", e ? e : "");
}

static void test_street_split(void)
{
    os_json_t *payload;
    result_t r;

    split_case("Main Street 12a", "Main Street", "12", "a");
    split_case("Main Street 12-b", "Main Street", "12", "b");
    split_case("Main Street 12 b", "Main Street", "12", "b");
    split_case("Hauptstr. 5 / 2", "Hauptstr.", "5", "2");
    split_case("Hauptstr. 5/2", "Hauptstr.", "5", "2");
    split_case("Hauptstr. 5 /2", "Hauptstr.", "5", "2");
    split_case("Main Street 12 - 14", "Main Street", "12", "14");
    split_case("450 Wallstreet", "Wallstreet", "450", NULL);
    split_case("12a Long Road", "Long Road", "12", "a");
    split_case("Wallstreet 450", "Wallstreet", "450", NULL);
    split_case("  Kerkstraat   7 A  ", "Kerkstraat", "7", "A");
    split_case("Rue du 8 Mai 1945 12", "Rue du 8 Mai 1945", "12", NULL);
    split_case("Stra\xc3\x9f" "e des 17. Juni 135", "Stra\xc3\x9f" "e des 17. Juni", "135", NULL);
    split_case("Main Street, 12", "Main Street", "12", NULL);
    split_case("Nowhere", NULL, NULL, NULL);
    split_case("Two Words", NULL, NULL, NULL);
    split_case("12", NULL, NULL, NULL);
    split_case("   ", NULL, NULL, NULL);
    split_case("", NULL, NULL, NULL);

    payload = parse(BASE);
    set(payload, "shipping_street", NULL);
    set(payload, "shipping_housenumber", NULL);
    set(payload, "shipping_street_full", "\"Main Street 12a\"");
    r = run_tree(payload, NULL);
    if (ok(r.rv == APR_SUCCESS, "street_full instead of street + housenumber")) {
        is_str(norm(r.o, 0, "shipping_street"), "\"Main Street\"", "street from split");
        is_str(norm(r.o, 0, "shipping_housenumber"), "\"12\"", "number from split");
        is_str(norm(r.o, 0, "shipping_housenumber_ext"), "\"a\"", "extension from split");
        is_str(norm(r.o, 0, "shipping_street_full"), "\"Main Street 12a\"", "original kept");
    }
    set(payload, "shipping_street", "\"Explicit Road\"");
    set(payload, "shipping_housenumber_ext", "\"bis\"");
    r = run_tree(payload, NULL);
    if (ok(r.rv == APR_SUCCESS, "explicit street with street_full")) {
        is_str(norm(r.o, 0, "shipping_street"), "\"Explicit Road\"", "explicit street wins");
        is_str(norm(r.o, 0, "shipping_housenumber"), "\"12\"", "number still from split");
        is_str(norm(r.o, 0, "shipping_housenumber_ext"), "\"bis\"", "explicit extension wins");
    }
    set(payload, "shipping_street_full", "\"Nowhere\"");
    set(payload, "shipping_housenumber", "\"3\"");
    r = run_tree(payload, NULL);
    ok(r.rv == APR_SUCCESS, "unsplittable street_full is fine when both explicit fields given");
    set(payload, "shipping_street", NULL);
    set(payload, "shipping_housenumber", NULL);
    r = run_tree(payload, NULL);
    ok(r.rv == APR_EINVAL && find_viol(&r, "$.shipping_street_full", "street_full")
       && r.viol->nelts == 1, "\"Nowhere\" -> street_full violation only");
    set(payload, "shipping_street_full", "\"450 Wallstreet\"");
    r = run_tree(payload, NULL);
    ok(r.rv == APR_SUCCESS && !strcmp(norm(r.o, 0, "shipping_street"), "\"Wallstreet\"")
       && !strcmp(norm(r.o, 0, "shipping_housenumber"), "\"450\""), "leading number form");
    set(payload, "shipping_street_full", "\"\"");
    r = run_tree(payload, NULL);
    ok(find_viol(&r, "$.shipping_street", "required")
       && find_viol(&r, "$.shipping_housenumber", "required") && r.viol->nelts == 2,
       "empty street_full: street and housenumber required");
}

/* ---------------------------------------------------------------- canonical form */

static void test_canonical(void)
{
    const char *a =
        "{\"reference\":\"R1\",\"source_id\":\"shop1\",\"status\":\"0\",\"type\":\"0\","
        "\"currency\":\"eur\",\"cod_amount\":\"12.50\",\"flag_partial\":\"\",\"priority\":\"3\","
        "\"shipping_firstname\":\"Ann\",\"shipping_lastname\":\"Bakker\","
        "\"shipping_street_full\":\"Main Street 1\","
        "\"shipping_postcode\":\"1000 AA\",\"shipping_city\":\"Amsterdam\","
        "\"shipping_country\":\"nl\",\"options\":{\"b\":1,\"a\":{\"y\":2,\"x\":1}},"
        "\"items\":[[{\"sku\":\"X\",\"qty\":\"1\",\"unit_price\":\"50.00\",\"is_kit\":\"0\"}]]}";
    const char *b =
        "{\"items\":[{\"is_kit\":false,\"unit_price\":50.00,\"qty\":1,\"sku\":\"X\"}],"
        "\"options\":{\"a\":{\"x\":1,\"y\":2},\"b\":1},\"shipping_country\":\"NL\","
        "\"shipping_city\":\"Amsterdam\",\"shipping_postcode\":\"1000 AA\","
        "\"shipping_street_full\":\"Main Street 1\","
        "\"shipping_lastname\":\"Bakker\",\"shipping_firstname\":\"Ann\",\"priority\":3,"
        "\"cod_amount\":12.50,\"currency\":\"EUR\",\"type\":0,\"status\":0,"
        "\"source_id\":\"shop1\",\"reference\":\"R1\",\"delivery_at\":null}";
    result_t ra = run(a), rb = run(b), rc;
    os_json_t *changed;

    if (!ok(ra.rv == APR_SUCCESS && rb.rv == APR_SUCCESS, "both spellings validate")) {
        dump_viol(&ra);
        dump_viol(&rb);
        return;
    }
    is_str(rb.o->canonical, ra.o->canonical, "canonical identical for reordered keys, "
           "\"0\" vs 0, case, nesting and \"\" vs null vs absent");
    is_str(rb.o->digest, ra.o->digest, "digest identical");
    is_str(ra.o->canonical,
           "{\"cod_amount\":12.50,\"currency\":\"EUR\",\"items\":[{\"is_kit\":false,"
           "\"qty\":1,\"sku\":\"X\",\"unit_price\":50.00}],\"options\":{\"a\":{\"x\":1,"
           "\"y\":2},\"b\":1},\"priority\":3,\"reference\":\"R1\",\"shipping_city\":"
           "\"Amsterdam\",\"shipping_country\":\"NL\",\"shipping_firstname\":\"Ann\","
           "\"shipping_housenumber\":\"1\",\"shipping_lastname\":\"Bakker\","
           "\"shipping_postcode\":\"1000 AA\",\"shipping_street\":\"Main Street\","
           "\"shipping_street_full\":\"Main Street 1\",\"source_id\":\"shop1\",\"status\":0,"
           "\"type\":0}", "canonical text exactly");
    is_int(ra.o->canonical_len, strlen(ra.o->canonical), "canonical_len");
    is_str(ra.o->payload->keys[0], "reference", "payload itself keeps document order");
    is_int(ra.o->priority, 3, "priority 3");

    changed = parse(b);
    set(((os_json_t *)os_json_get(changed, "items"))->vals[0], "qty", "2");
    rc = run_tree(changed, NULL);
    ok(rc.rv == APR_SUCCESS && strcmp(rc.o->digest, ra.o->digest) != 0,
       "digest differs when qty changes");
    changed = parse(b);
    set(changed, "cod_amount", "12.5");
    rc = run_tree(changed, NULL);
    ok(rc.rv == APR_SUCCESS && strcmp(rc.o->digest, ra.o->digest) != 0,
       "digest differs for 12.5 vs 12.50 (decimal text is kept exactly)");
    changed = parse(b);
    set((os_json_t *)os_json_get(changed, "options"), "b", "2");
    rc = run_tree(changed, NULL);
    ok(rc.rv == APR_SUCCESS && strcmp(rc.o->digest, ra.o->digest) != 0,
       "digest differs when a passthrough option changes");
    changed = parse(b);
    set(changed, "status", "1");
    rc = run_tree(changed, NULL);
    ok(rc.rv == APR_SUCCESS && strcmp(rc.o->digest, ra.o->digest) != 0 && rc.o->status == 1,
       "digest differs when status changes");
}

/* The payload with options nested so that the whole order is `levels` deep (the payload
 * object is level 1, options level 2). */
static os_json_t *deep_order(int levels)
{
    os_json_t *pl = parse(BASE), *v = os_json_int(pool, 1);
    for (int i = 0; i < levels - 1; i++) {
        os_json_t *c = os_json_object(pool);
        os_json_add(pool, c, "k", v);
        v = c;
    }
    os_json_add(pool, pl, "options", v);
    return pl;
}

static void test_depth(void)
{
    result_t r = run_tree(deep_order(OS_JGEN_MAX_DEPTH), NULL);
    const os_violation_t *v;
    os_json_t *back;
    os_json_error_t err;

    ok(r.rv == APR_SUCCESS && r.o->canonical
       && os_json_parse(pool, r.o->canonical, r.o->canonical_len, OS_JGEN_MAX_DEPTH, &back,
                        &err) == APR_SUCCESS,
       "an order %d levels deep has a valid canonical text", OS_JGEN_MAX_DEPTH);
    r = run_tree(deep_order(OS_JGEN_MAX_DEPTH + 1), NULL);
    v = find_viol(&r, "$", "max_depth");
    ok(r.rv == APR_EINVAL && r.o == NULL && r.viol->nelts == 1 && v
       && strstr(v->message, "nested too deeply") && strstr(v->message, "127"),
       "an order %d levels deep is refused, not stored as broken JSON: %s",
       OS_JGEN_MAX_DEPTH + 1, v ? v->message : "no violation");
}

static void test_reference_messages(void)
{
    os_json_t *pl = parse(BASE);
    result_t r;
    const os_violation_t *v;

    set(pl, "reference", "\"x/../WEB-1001\"");
    r = run_tree(pl, NULL);
    v = find_viol(&r, "$.reference", "format");
    is_str(v ? v->message : NULL, "reference must not contain '/' (the order's status URL is "
           "<base>/orders/<source_id>/<reference>, and <reference> is one segment of it), got "
           "\"x/../WEB-1001\"", "a '/' in the reference is named");
    set(pl, "reference", "\"..\"");
    r = run_tree(pl, NULL);
    v = find_viol(&r, "$.reference", "format");
    is_str(v ? v->message : NULL, "reference must not be '.' or '..' (the order's status URL is "
           "<base>/orders/<source_id>/<reference>, where <reference> would be resolved away), "
           "got \"..\"", "'..' as the reference is named");
    set(pl, "reference", "\"a\\\\b/c\"");
    r = run_tree(pl, NULL);
    v = find_viol(&r, "$.reference", "format");
    ok(v && strstr(v->message, "must not contain '/' or '\\'"), "both separators named: %s",
       v ? v->message : "none");
    set(pl, "reference", "\"R1\"");
    set(pl, "source_id", "\".\"");
    r = run_tree(pl, NULL);
    v = find_viol(&r, "$.source_id", "format");
    ok(v && strstr(v->message, "source_id must not be '.' or '..'")
       && strstr(v->message, "where <source_id> would"), "source_id '.' is named: %s",
       v ? v->message : "none");
}

int main(void)
{
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);

    ok(os_order_country_known("NL") && os_order_country_known("AD")
       && os_order_country_known("ZW") && !os_order_country_known("UK")
       && !os_order_country_known("nl") && !os_order_country_known("N"),
       "country list lookup (first, last, reserved UK)");
    ok(os_order_datetime_valid("2024-02-29 12:00:00") && !os_order_datetime_valid("2023-02-29 12:00:00"),
       "leap years");

    test_document();
    test_field_rules();
    test_messages_and_multi();
    test_items_structure();
    test_street_split();
    test_canonical();
    test_depth();
    test_reference_messages();

    apr_pool_destroy(pool);
    done();
}
