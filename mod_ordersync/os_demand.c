/* os_demand.c: the enqueue body (see os_demand.h). */
#include "os_demand.h"
#include "os_json.h"
#include <apr_strings.h>
#include <string.h>

/* The end of the string whose opening quote is at s[i]: the index after its closing quote. */
static apr_size_t string_end(const char *s, apr_size_t i)
{
    for (i++; s[i] && s[i] != '"'; i++) {
        if (s[i] == '\\' && s[i + 1]) i++;
    }
    return s[i] ? i + 1 : i;
}

int os_demand_member(const char *json, const char *key, apr_size_t *start, apr_size_t *end)
{
    apr_size_t i = 0, klen = strlen(key);
    int depth = 0, expect_key = 0;

    for (; json[i]; i++) {
        char ch = json[i];
        if (ch == '"') {
            apr_size_t e = string_end(json, i);
            if (depth == 1 && expect_key) {
                int match = e - i - 2 == klen && !memcmp(json + i + 1, key, klen);
                apr_size_t v = e;
                while (json[v] == ' ' || json[v] == '\t' || json[v] == '\n' || json[v] == '\r'
                       || json[v] == ':') v++;
                if (match) {
                    if (json[v] != '"') return 0;
                    *start = v;
                    *end = string_end(json, v);
                    return 1;
                }
                expect_key = 0;
            }
            i = e - 1;
            continue;
        }
        if (ch == '{' || ch == '[') {
            depth++;
            expect_key = depth == 1 && ch == '{';
        }
        else if (ch == '}' || ch == ']') depth--;
        else if (ch == ',' && depth == 1) expect_key = 1;
    }
    return 0;
}

char *os_demand_body(apr_pool_t *p, const char *head, const char *payload,
                     const char *reference, const char *sent_reference, apr_size_t *len)
{
    apr_size_t hl = strlen(head), pl = strlen(payload), s, e;
    char *out, *at;

    if (strcmp(reference, sent_reference) && os_demand_member(payload, "reference", &s, &e)) {
        yajl_gen g = os_jgen_create(p, 0);
        const unsigned char *q;
        size_t ql;
        os_jgen_str(g, sent_reference);
        yajl_gen_get_buf(g, &q, &ql);
        *len = hl + s + ql + (pl - e) + 1;
        at = out = apr_palloc(p, *len + 1);
        memcpy(at, head, hl); at += hl;
        memcpy(at, payload, s); at += s;
        memcpy(at, q, ql); at += ql;
        memcpy(at, payload + e, pl - e); at += pl - e;
    }
    else {
        *len = hl + pl + 1;
        at = out = apr_palloc(p, *len + 1);
        memcpy(at, head, hl); at += hl;
        memcpy(at, payload, pl); at += pl;
    }
    *at++ = '}';
    *at = '\0';
    return out;
}
