/* os_fields.c: the Demand document's reference data: its field names, the ISO 3166-1
 * alpha-2 country codes and the shape of its dates (see os_fields.h). */
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>

#include "os_fields.h"

/* ISO 3166-1 alpha-2, every officially assigned code (249), sorted for bsearch. */
static const char os_countries[][3] = {
    "AD","AE","AF","AG","AI","AL","AM","AO","AQ","AR","AS","AT","AU","AW","AX","AZ",
    "BA","BB","BD","BE","BF","BG","BH","BI","BJ","BL","BM","BN","BO","BQ","BR","BS",
    "BT","BV","BW","BY","BZ","CA","CC","CD","CF","CG","CH","CI","CK","CL","CM","CN",
    "CO","CR","CU","CV","CW","CX","CY","CZ","DE","DJ","DK","DM","DO","DZ","EC","EE",
    "EG","EH","ER","ES","ET","FI","FJ","FK","FM","FO","FR","GA","GB","GD","GE","GF",
    "GG","GH","GI","GL","GM","GN","GP","GQ","GR","GS","GT","GU","GW","GY","HK","HM",
    "HN","HR","HT","HU","ID","IE","IL","IM","IN","IO","IQ","IR","IS","IT","JE","JM",
    "JO","JP","KE","KG","KH","KI","KM","KN","KP","KR","KW","KY","KZ","LA","LB","LC",
    "LI","LK","LR","LS","LT","LU","LV","LY","MA","MC","MD","ME","MF","MG","MH","MK",
    "ML","MM","MN","MO","MP","MQ","MR","MS","MT","MU","MV","MW","MX","MY","MZ","NA",
    "NC","NE","NF","NG","NI","NL","NO","NP","NR","NU","NZ","OM","PA","PE","PF","PG",
    "PH","PK","PL","PM","PN","PR","PS","PT","PW","PY","QA","RE","RO","RS","RU","RW",
    "SA","SB","SC","SD","SE","SG","SH","SI","SJ","SK","SL","SM","SN","SO","SR","SS",
    "ST","SV","SX","SY","SZ","TC","TD","TF","TG","TH","TJ","TK","TL","TM","TN","TO",
    "TR","TT","TV","TW","TZ","UA","UG","UM","US","UY","UZ","VA","VC","VE","VG","VI",
    "VN","VU","WF","WS","YE","YT","ZA","ZM","ZW"
};

static int country_cmp(const void *k, const void *e)
{
    return strncmp(k, e, 2);
}

int os_order_country_known(const char *code)
{
    if (!code || strlen(code) != 2)
        return 0;
    return bsearch(code, os_countries, sizeof(os_countries) / sizeof(os_countries[0]),
                   sizeof(os_countries[0]), country_cmp) != NULL;
}

/* Field names, in the Demand document's order: the normalised payload follows it. */
static const char *const os_top_fields[] = {
    "reference", "source_id", "status", "type", "flag_partial", "priority", "cod_amount",
    "currency", "delivery_at", "created_at", "customer_id", "options", "items", NULL
};
const char *const os_order_addr_fields[] = {
    "firstname", "lastname", "street_full", "street", "housenumber", "postcode", "city",
    "country", "company", "housenumber_ext", "region", "phone", "email", "method", NULL
};
static const char *const os_item_fields[] = {
    "sku", "description", "weight", "reference", "unit_price", "qty", "custom_options",
    "allocation_type", "cost", "packing", "is_kit", NULL
};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (**list == *s && !strcmp(*list, s))   /* the first byte rules most out */
            return 1;
    return 0;
}

int os_order_known_top_field(const char *k)
{
    const char *suffix = NULL;
    if (in_list(os_top_fields, k))
        return 1;
    if (!strncmp(k, "shipping_", 9))
        suffix = k + 9;
    else if (!strncmp(k, "billing_", 8)) {
        suffix = k + 8;
        if (!strcmp(suffix, "method"))
            return 0;
    }
    return suffix && in_list(os_order_addr_fields, suffix);
}

int os_order_known_item_field(const char *k) { return in_list(os_item_fields, k); }

static int two(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

int os_order_datetime_valid(const char *s)
{
    static const char shape[] = "dddd-dd-dd dd:dd:dd";
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, m, d, dim;
    if (!s || strlen(s) != sizeof(shape) - 1)
        return 0;
    for (int i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? !apr_isdigit(s[i]) : s[i] != shape[i])
            return 0;
    }
    y = two(s) * 100 + two(s + 2);
    m = two(s + 5);
    d = two(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    dim = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        dim = 29;
    return d <= dim && two(s + 11) <= 23 && two(s + 14) <= 59 && two(s + 17) <= 59;
}
