/* mod_ordersync_config.c: the directives, their range-checked parsers, server and directory
 * configuration with unset/merge, and the lookups the handlers use (a source by id or key,
 * secrets compared in constant time). The configtest checks live in
 * mod_ordersync_configtest.c. */
#include "mod_ordersync.h"
#include "http_core.h"
#include "util_cfgtree.h"
#include "apr_file_io.h"
#include "apr_lib.h"
#include "apr_crypto.h"
#include "os_retry.h"
#include "unixd.h"

#include <unistd.h>

os_srv_conf_t *os_srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &ordersync_module);
}

void *os_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    os_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));
    (void)s;
    sc->durability = OS_UNSET;
    sc->max_body = OS_UNSET;
    sc->max_depth = OS_UNSET;
    sc->max_items = OS_UNSET;
    sc->max_string = OS_UNSET;
    sc->queue_max = OS_UNSET;
    sc->source_queue_max = OS_UNSET;
    sc->store_timeout_ms = OS_UNSET;
    sc->batch_max = OS_UNSET;
    sc->store_max_size = OS_UNSET;
    sc->cg_connect_timeout = sc->cg_timeout = OS_UNSET;
    sc->dispatch_concurrency = OS_UNSET;
    sc->cg_http2 = OS_UNSET;
    sc->retry_first = sc->retry_max = sc->retry_horizon = OS_UNSET;
    sc->pause_after = OS_UNSET;
    sc->probe_every = OS_UNSET;
    sc->mounts = apr_array_make(p, 2, sizeof(const char *));
    return sc;
}

#define MERGE_VAL(f) mrg->f = (add->f != OS_UNSET) ? add->f : base->f
#define MERGE_PTR(f) mrg->f = add->f ? add->f : base->f

void *os_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    os_srv_conf_t *base = basev, *add = addv;
    os_srv_conf_t *mrg = apr_pcalloc(p, sizeof(*mrg));

    MERGE_PTR(sources);
    mrg->admin_key = add->admin_key.value ? add->admin_key : base->admin_key;
    mrg->webhook_secret = add->webhook_secret.value ? add->webhook_secret : base->webhook_secret;
    MERGE_VAL(durability);
    MERGE_VAL(max_body);
    MERGE_VAL(max_depth);
    MERGE_VAL(max_items);
    MERGE_VAL(max_string);
    MERGE_VAL(queue_max);
    MERGE_VAL(source_queue_max);
    MERGE_VAL(store_timeout_ms);
    MERGE_VAL(batch_max);
    MERGE_VAL(store_max_size);
    MERGE_PTR(cg_url);
    mrg->cg_key = add->cg_key.value ? add->cg_key : base->cg_key;
    MERGE_PTR(cg_entity);
    MERGE_VAL(cg_connect_timeout);
    MERGE_VAL(cg_timeout);
    MERGE_PTR(cg_ca_file);
    MERGE_VAL(dispatch_concurrency);
    MERGE_VAL(cg_http2);
    MERGE_VAL(retry_first);
    MERGE_VAL(retry_max);
    MERGE_VAL(retry_horizon);
    MERGE_VAL(pause_after);
    MERGE_VAL(probe_every);
    mrg->mounts = apr_array_make(p, 2, sizeof(const char *));
    return mrg;
}

void *os_create_dir_conf(apr_pool_t *p, char *dir)
{
    os_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));
    (void)dir;
    dc->admin_auth = OS_UNSET;
    return dc;
}

void *os_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    os_dir_conf_t *base = basev, *add = addv;
    os_dir_conf_t *mrg = apr_pcalloc(p, sizeof(*mrg));
    MERGE_VAL(admin_auth);
    return mrg;
}

/* ---- parsers ---------------------------------------------------------------------- */

static const char *parse_int_range(cmd_parms *cmd, const char *arg, apr_int64_t min,
                                   apr_int64_t max, apr_int64_t *out)
{
    char *end;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        return apr_psprintf(cmd->pool, "%s must be an integer in %" APR_INT64_T_FMT
                            "..%" APR_INT64_T_FMT ", got '%s'", cmd->cmd->name, min, max, arg);
    }
    *out = v;
    return NULL;
}

/* Reads a secret: "file:/path" reads the file's first line; anything else is the literal
 * value (normally "${ENV}", which httpd has already expanded when it was set). */
static const char *parse_secret(cmd_parms *cmd, const char *what, const char *arg,
                                os_secret_t *out)
{
    out->defn = apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                             cmd->directive->line_num);
    if (!strncmp(arg, "file:", 5)) {
        const char *path = ap_server_root_relative(cmd->pool, arg + 5);
        apr_file_t *f;
        char buf[512];
        apr_size_t n = sizeof(buf) - 1;
        apr_status_t rv;
        char *v, *e;

        if (!path || !arg[5]) {
            return apr_psprintf(cmd->pool, "%s: %s needs a path after 'file:'", cmd->cmd->name, what);
        }
        rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, cmd->temp_pool);
        if (rv != APR_SUCCESS) {
            return apr_psprintf(cmd->pool, "%s: cannot read %s file '%s': %pm",
                                cmd->cmd->name, what, path, &rv);
        }
        rv = apr_file_read(f, buf, &n);
        apr_file_close(f);
        if (rv != APR_SUCCESS && rv != APR_EOF) {
            return apr_psprintf(cmd->pool, "%s: cannot read %s file '%s': %pm",
                                cmd->cmd->name, what, path, &rv);
        }
        buf[n] = '\0';
        for (v = buf; apr_isspace(*v); v++);
        for (e = v; *e && *e != '\n' && *e != '\r'; e++);
        while (e > v && apr_isspace(e[-1])) e--;
        *e = '\0';
        if (!*v) {
            return apr_psprintf(cmd->pool, "%s: %s file '%s' is empty", cmd->cmd->name, what, path);
        }
        out->value = apr_pstrdup(cmd->pool, v);
        out->origin = apr_psprintf(cmd->pool, "file %s", path);
        out->unexpanded = 0;
        memset(buf, 0, sizeof(buf));
        return NULL;
    }
    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s: %s is empty", cmd->cmd->name, what);
    }
    out->value = apr_pstrdup(cmd->pool, arg);
    out->origin = "a literal value";
    out->unexpanded = (ap_strstr_c(arg, "${") != NULL);
    if (out->unexpanded) {
        /* httpd leaves an undefined ${NAME} as it is */
        const char *v = ap_strstr_c(arg, "${") + 2, *e = strchr(v, '}');
        out->var = e ? apr_pstrmemdup(cmd->pool, v, e - v) : apr_pstrdup(cmd->pool, v);
    }
    return NULL;
}

static const char *check_server_context(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
}

/* A Clougistic entity id: what System > Settings shows, digits (or a short token). */
static const char *entity_check(cmd_parms *cmd, const char *arg)
{
    const char *c;
    for (c = arg; *c; c++) {
        if (!apr_isalnum(*c) && !strchr("-_", *c)) break;
    }
    if (!*arg || *c || c - arg > 64) {
        return apr_psprintf(cmd->pool, "%s: an entity id is 1-64 letters, digits, '-' or '_', "
                            "got '%s'", cmd->cmd->name, arg);
    }
    return NULL;
}

/* OrderSyncSource <id> key=<secret> [key=<secret>] [prefix=<p>] [webhook=<url>]
 *                 [entity=<id> clougistic_key=<secret>] */
static const char *cmd_source(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    os_srv_conf_t *sc = os_srv_conf(cmd->server);
    os_source_t *src;
    const char *err;
    int i;

    (void)dconf;
    if ((err = check_server_context(cmd))) return err;
    if (argc < 2) {
        return apr_psprintf(cmd->pool, "%s needs a source id and at least one key=...: "
                            "%s <source_id> key=file:/path [key=...] [prefix=...] [webhook=URL]",
                            cmd->cmd->name, cmd->cmd->name);
    }
    for (i = 0; argv[0][i]; i++) {
        if (!apr_isalnum(argv[0][i]) && !strchr("-_.", argv[0][i])) {
            return apr_psprintf(cmd->pool, "%s: source id '%s' may use only letters, digits, "
                                "'-', '_' and '.'", cmd->cmd->name, argv[0]);
        }
    }
    if (i > 64) {
        return apr_psprintf(cmd->pool, "%s: source id is longer than 64 characters", cmd->cmd->name);
    }
    if (!sc->sources) sc->sources = apr_array_make(cmd->pool, 4, sizeof(os_source_t));
    for (i = 0; i < sc->sources->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(sc->sources, i, os_source_t).id, argv[0])) {
            return apr_psprintf(cmd->pool, "%s: source '%s' is declared twice", cmd->cmd->name, argv[0]);
        }
    }
    src = apr_array_push(sc->sources);
    memset(src, 0, sizeof(*src));
    src->id = apr_pstrdup(cmd->pool, argv[0]);
    src->prefix = "";
    src->defn_file = cmd->directive->filename;
    src->defn_line = cmd->directive->line_num;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncasecmp(a, "key=", 4)) {
            if (src->nkeys == 2) {
                return apr_psprintf(cmd->pool, "%s %s: at most two keys (the current one and "
                                    "the next, for rotation)", cmd->cmd->name, src->id);
            }
            if ((err = parse_secret(cmd, "key", a + 4, &src->keys[src->nkeys]))) return err;
            src->nkeys++;
        }
        else if (!strncasecmp(a, "prefix=", 7)) {
            const char *c;
            for (c = a + 7; *c; c++) {
                if (!apr_isalnum(*c) && !strchr("-_./:", *c)) {
                    return apr_psprintf(cmd->pool, "%s %s: prefix '%s' may use only letters, "
                                        "digits and -_./:", cmd->cmd->name, src->id, a + 7);
                }
            }
            if (c - (a + 7) > 16) {
                return apr_psprintf(cmd->pool, "%s %s: prefix is longer than 16 characters",
                                    cmd->cmd->name, src->id);
            }
            src->prefix = apr_pstrdup(cmd->pool, a + 7);
        }
        else if (!strncasecmp(a, "webhook=", 8)) {
            if (strncasecmp(a + 8, "http://", 7) && strncasecmp(a + 8, "https://", 8)) {
                return apr_psprintf(cmd->pool, "%s %s: webhook must be an http:// or https:// "
                                    "URL, got '%s'", cmd->cmd->name, src->id, a + 8);
            }
            src->webhook_url = apr_pstrdup(cmd->pool, a + 8);
        }
        else if (!strncasecmp(a, "entity=", 7)) {
            if ((err = entity_check(cmd, a + 7))) return err;
            src->entity = apr_pstrdup(cmd->pool, a + 7);
        }
        else if (!strncasecmp(a, "clougistic_key=", 15)) {
            if ((err = parse_secret(cmd, "clougistic_key", a + 15, &src->cg_key))) return err;
        }
        else {
            const char *eq = strchr(a, '=');
            return apr_psprintf(cmd->pool, "%s %s: unknown option '%s' (known: key=, prefix=, "
                                "webhook=, entity=, clougistic_key=)", cmd->cmd->name, src->id,
                                eq ? apr_pstrmemdup(cmd->pool, a, eq - a) : a);
        }
    }
    if (!src->nkeys) {
        return apr_psprintf(cmd->pool, "%s %s: no key=... given; every source needs an intake key",
                            cmd->cmd->name, src->id);
    }
    return NULL;
}

static const char *cmd_admin_key(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = check_server_context(cmd);
    (void)dconf;
    return err ? err : parse_secret(cmd, "admin key", arg, &os_srv_conf(cmd->server)->admin_key);
}

static const char *cmd_webhook_secret(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = check_server_context(cmd);
    (void)dconf;
    return err ? err : parse_secret(cmd, "webhook secret", arg,
                                    &os_srv_conf(cmd->server)->webhook_secret);
}

static const char *cmd_durability(cmd_parms *cmd, void *dconf, const char *arg)
{
    os_srv_conf_t *sc = os_srv_conf(cmd->server);
    const char *err = check_server_context(cmd);
    (void)dconf;
    if (err) return err;
    if (!strcasecmp(arg, "normal")) sc->durability = 0;
    else if (!strcasecmp(arg, "full")) sc->durability = 1;
    else return apr_psprintf(cmd->pool, "%s must be 'normal' or 'full', got '%s'", cmd->cmd->name, arg);
    return NULL;
}

/* Integer directives share one parser; the range lives in the table below. */
typedef struct { apr_size_t offset; apr_int64_t min, max; int is64; } os_int_spec_t;

static const os_int_spec_t SPEC_MAX_BODY  = { APR_OFFSETOF(os_srv_conf_t, max_body), 256, 64 * 1024 * 1024, 1 };
static const os_int_spec_t SPEC_MAX_DEPTH = { APR_OFFSETOF(os_srv_conf_t, max_depth), 4, OS_MAX_DEPTH_LIMIT, 0 };
static const os_int_spec_t SPEC_MAX_ITEMS = { APR_OFFSETOF(os_srv_conf_t, max_items), 1, 100000, 0 };
static const os_int_spec_t SPEC_MAX_STR   = { APR_OFFSETOF(os_srv_conf_t, max_string), 16, 1024 * 1024, 0 };
static const os_int_spec_t SPEC_QUEUE_MAX = { APR_OFFSETOF(os_srv_conf_t, queue_max), 1, 100000000, 0 };
static const os_int_spec_t SPEC_SRC_QUEUE = { APR_OFFSETOF(os_srv_conf_t, source_queue_max), 1, 100000000, 0 };
static const os_int_spec_t SPEC_STORE_TO  = { APR_OFFSETOF(os_srv_conf_t, store_timeout_ms), 10, 600000, 0 };
static const os_int_spec_t SPEC_BATCH_MAX = { APR_OFFSETOF(os_srv_conf_t, batch_max), 1, 1024, 0 };
static const os_int_spec_t SPEC_CONC      = { APR_OFFSETOF(os_srv_conf_t, dispatch_concurrency), 1, 256, 0 };
static const os_int_spec_t SPEC_MAX_SIZE  = { APR_OFFSETOF(os_srv_conf_t, store_max_size), 65536, APR_INT64_C(1) << 50, 1 };

static const char *cmd_int(cmd_parms *cmd, void *dconf, const char *arg)
{
    const os_int_spec_t *spec = cmd->info;
    char *base = (char *)os_srv_conf(cmd->server);
    const char *err = check_server_context(cmd);
    apr_int64_t v = 0;

    (void)dconf;
    if (err) return err;
    if ((err = parse_int_range(cmd, arg, spec->min, spec->max, &v))) return err;
    if (spec->is64) *(apr_int64_t *)(base + spec->offset) = v;
    else *(int *)(base + spec->offset) = (int)v;
    return NULL;
}

/* ---- Clougistic and the dispatcher ------------------------------------------------- */

static const char *cmd_cg_url(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = check_server_context(cmd);
    apr_size_t n = strlen(arg);
    (void)dconf;
    if (err) return err;
    if ((strncasecmp(arg, "http://", 7) && strncasecmp(arg, "https://", 8)) || n < 9
        || strchr(arg, '?') || strchr(arg, '#')) {
        return apr_psprintf(cmd->pool, "%s must be Clougistic's base URL, http:// or https:// "
                            "without query (e.g. https://acme.clougistic.com), got '%s'",
                            cmd->cmd->name, arg);
    }
    while (n > 8 && arg[n - 1] == '/') n--;
    os_srv_conf(cmd->server)->cg_url = apr_pstrmemdup(cmd->pool, arg, n);
    return NULL;
}

static const char *cmd_cg_key(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = check_server_context(cmd);
    (void)dconf;
    return err ? err : parse_secret(cmd, "access key", arg, &os_srv_conf(cmd->server)->cg_key);
}

static const char *cmd_cg_entity(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = check_server_context(cmd);
    (void)dconf;
    if (err || (err = entity_check(cmd, arg))) return err;
    os_srv_conf(cmd->server)->cg_entity = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

static const char *parse_duration(cmd_parms *cmd, const char *arg, apr_int64_t min,
                                  apr_int64_t max, apr_int64_t *out)
{
    apr_interval_time_t v;
    if (!os_duration_parse(arg, &v) || v < min || v > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a duration from %" APR_INT64_T_FMT
                            " ms to %" APR_INT64_T_FMT " s (a number with ms, s, m, h or d)",
                            cmd->cmd->name, arg, min / 1000, max / APR_USEC_PER_SEC);
    }
    *out = v;
    return NULL;
}

static const char *cmd_cg_timeout(cmd_parms *cmd, void *dconf, const char *conn,
                                  const char *total)
{
    os_srv_conf_t *sc = os_srv_conf(cmd->server);
    const char *err = check_server_context(cmd);
    (void)dconf;
    if (err || (err = parse_duration(cmd, conn, 1000, apr_time_from_sec(300),
                                     &sc->cg_connect_timeout))) return err;
    return parse_duration(cmd, total ? total : conn, 1000, apr_time_from_sec(3600),
                          &sc->cg_timeout);
}

static const char *cmd_cg_ca_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = check_server_context(cmd);
    const char *path;
    apr_finfo_t fi;
    (void)dconf;
    if (err) return err;
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS
        || fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a readable file of CA certificates "
                            "(PEM)", cmd->cmd->name, arg);
    }
    os_srv_conf(cmd->server)->cg_ca_file = path;
    return NULL;
}

static const char *cmd_cg_http2(cmd_parms *cmd, void *dconf, int on)
{
    const char *err = check_server_context(cmd);
    (void)dconf;
    if (err) return err;
    os_srv_conf(cmd->server)->cg_http2 = on;
    return NULL;
}

static const char *cmd_retry(cmd_parms *cmd, void *dconf, const char *first, const char *max,
                             const char *horizon)
{
    os_srv_conf_t *sc = os_srv_conf(cmd->server);
    const char *err = check_server_context(cmd);
    (void)dconf;
    if (err || (err = parse_duration(cmd, first, 1000, apr_time_from_sec(86400),
                                     &sc->retry_first))) return err;
    if (max && (err = parse_duration(cmd, max, 1000, apr_time_from_sec(7 * 86400),
                                     &sc->retry_max))) return err;
    if (horizon && (err = parse_duration(cmd, horizon, 1000, apr_time_from_sec(365 * 86400),
                                         &sc->retry_horizon))) return err;
    if (max && sc->retry_max < sc->retry_first) {
        return apr_psprintf(cmd->pool, "%s: the longest wait (%s) is shorter than the first "
                            "(%s)", cmd->cmd->name, max, first);
    }
    return NULL;
}

static const char *cmd_pause(cmd_parms *cmd, void *dconf, const char *after, const char *probe)
{
    os_srv_conf_t *sc = os_srv_conf(cmd->server);
    const char *err = check_server_context(cmd);
    apr_int64_t n;
    (void)dconf;
    if (err || (err = parse_int_range(cmd, after, 1, 100000, &n))) return err;
    sc->pause_after = (int)n;
    return probe ? parse_duration(cmd, probe, 100000, apr_time_from_sec(3600), &sc->probe_every)
                 : NULL;
}

static const char *cmd_admin_auth(cmd_parms *cmd, void *dconf, const char *arg)
{
    os_dir_conf_t *dc = dconf;
    if (!strcasecmp(arg, "key")) dc->admin_auth = 0;
    else if (!strcasecmp(arg, "apache")) dc->admin_auth = 1;
    else return apr_psprintf(cmd->pool, "%s must be 'key' or 'apache', got '%s'", cmd->cmd->name, arg);
    return NULL;
}

const command_rec os_cmds[] = {
    AP_INIT_TAKE_ARGV(OS_DIR_SOURCE, cmd_source, NULL, RSRC_CONF,
        "<source_id> key=<secret> [key=<secret>] [prefix=<p>] [webhook=<url>]: a webshop that pushes orders"),
    AP_INIT_TAKE1(OS_DIR_ADMIN_KEY, cmd_admin_key, NULL, RSRC_CONF,
        "the admin area's Bearer key: file:/path or ${ENV}"),
    AP_INIT_TAKE1(OS_DIR_WEBHOOK_SECRET, cmd_webhook_secret, NULL, RSRC_CONF,
        "shared secret Clougistic sends with its webhooks: file:/path or ${ENV}"),
    AP_INIT_TAKE1(OS_DIR_DURABILITY, cmd_durability, NULL, RSRC_CONF,
        "normal (default: survives a killed server) or full (fsync per commit: survives power loss)"),
    AP_INIT_TAKE1(OS_DIR_MAX_BODY, cmd_int, (void *)&SPEC_MAX_BODY, RSRC_CONF,
        "largest accepted request body in bytes (default 1048576)"),
    AP_INIT_TAKE1(OS_DIR_MAX_DEPTH, cmd_int, (void *)&SPEC_MAX_DEPTH, RSRC_CONF,
        "deepest accepted JSON nesting (default 32)"),
    AP_INIT_TAKE1(OS_DIR_MAX_ITEMS, cmd_int, (void *)&SPEC_MAX_ITEMS, RSRC_CONF,
        "most items in one order (default 1000)"),
    AP_INIT_TAKE1(OS_DIR_MAX_STRING, cmd_int, (void *)&SPEC_MAX_STR, RSRC_CONF,
        "longest accepted string value in bytes (default 1024)"),
    AP_INIT_TAKE1(OS_DIR_QUEUE_MAX, cmd_int, (void *)&SPEC_QUEUE_MAX, RSRC_CONF,
        "queued jobs above which the intake answers 503 (default 100000)"),
    AP_INIT_TAKE1(OS_DIR_SOURCE_QUEUE_MAX, cmd_int, (void *)&SPEC_SRC_QUEUE, RSRC_CONF,
        "queued jobs of one source above which its orders are answered 503 (default: "
        OS_DIR_QUEUE_MAX " divided among the sources)"),
    AP_INIT_TAKE1(OS_DIR_STORE_TIMEOUT, cmd_int, (void *)&SPEC_STORE_TO, RSRC_CONF,
        "milliseconds to wait for the store's write lock before answering 503 (default 5000)"),
    AP_INIT_TAKE1(OS_DIR_BATCH_MAX, cmd_int, (void *)&SPEC_BATCH_MAX, RSRC_CONF,
        "most orders committed in one transaction by the group-commit writer (default 64)"),
    AP_INIT_TAKE1(OS_DIR_STORE_MAX_SIZE, cmd_int, (void *)&SPEC_MAX_SIZE, RSRC_CONF,
        "SQLite: bytes the store may grow to; beyond it the intake answers 503 (default: no limit)"),
    AP_INIT_TAKE1(OS_DIR_CG_URL, cmd_cg_url, NULL, RSRC_CONF,
        "Clougistic's base URL (https://...); orders are delivered to <URL>/api/v1/order/enqueue"),
    AP_INIT_TAKE1(OS_DIR_CG_KEY, cmd_cg_key, NULL, RSRC_CONF,
        "Clougistic's API access key: file:/path or ${ENV}"),
    AP_INIT_TAKE1(OS_DIR_CG_ENTITY, cmd_cg_entity, NULL, RSRC_CONF,
        "Clougistic's entity id (System > Settings)"),
    AP_INIT_TAKE12(OS_DIR_CG_TIMEOUT, cmd_cg_timeout, NULL, RSRC_CONF,
        "<connect> [<total>]: timeouts of a delivery (default 5s 30s)"),
    AP_INIT_TAKE1(OS_DIR_CG_CA_FILE, cmd_cg_ca_file, NULL, RSRC_CONF,
        "CA certificates (PEM) that Clougistic's TLS certificate is checked against, instead "
        "of the system's"),
    AP_INIT_FLAG(OS_DIR_CG_HTTP2, cmd_cg_http2, NULL, RSRC_CONF,
        "On: HTTP/2 multiplexed on one connection where Clougistic offers it over TLS; Off "
        "(default): HTTP/1.1 on kept-alive connections"),
    AP_INIT_TAKE1(OS_DIR_DISPATCH_CONC, cmd_int, (void *)&SPEC_CONC, RSRC_CONF,
        "deliveries in flight at once (default 16)"),
    AP_INIT_TAKE123(OS_DIR_RETRY, cmd_retry, NULL, RSRC_CONF,
        "<first> [<max> [<horizon>]]: waits between tries of a failing delivery and how long "
        "to try before it goes dead (default 5s 1h 72h)"),
    AP_INIT_TAKE12(OS_DIR_UPSTREAM_PAUSE, cmd_pause, NULL, RSRC_CONF,
        "<failures> [<probe>]: failures in a row that pause Clougistic as a whole, and how "
        "often a paused Clougistic is probed (default 10 30s)"),
    AP_INIT_TAKE1(OS_DIR_ADMIN_AUTH, cmd_admin_auth, NULL, ACCESS_CONF,
        "key (default: the admin Bearer key is required) or apache (Apache's Require rules decide)"),
    { NULL }
};

/* ---- lookups ---------------------------------------------------------------------- */

const os_store_conf_t *os_store_conf_of(server_rec *s)
{
    os_srv_conf_t *sc = os_srv_conf(s);
    os_store_conf_t *c = &sc->store_conf;
    int nsources = sc->sources && sc->sources->nelts ? sc->sources->nelts : 1;

    c->timeout_ms = OS_CONF_INT(sc->store_timeout_ms, OS_DEFAULT_STORE_TIMEOUT);
    c->durability = OS_CONF_INT(sc->durability, 0);
    c->batch_max = OS_CONF_INT(sc->batch_max, OS_DEFAULT_BATCH_MAX);
    c->queue_max = OS_CONF_INT(sc->queue_max, OS_DEFAULT_QUEUE_MAX);
    /* by default each source may fill its even share of the queue, so one source's backlog
     * never blocks the others' intake */
    c->source_queue_max = sc->source_queue_max != OS_UNSET ? sc->source_queue_max
                          : (c->queue_max + nsources - 1) / nsources;
    c->max_size = sc->store_max_size;
    if (!c->name) {
        const char *who = geteuid() == 0 ? ap_unixd_config.user_name : NULL;
        c->name = apr_pstrcat(s->process->pconf, os_storefile_shown(s->process->pconf, sc),
                              who ? ", written as " : "", who ? who : "", NULL);
    }
    return c;
}

const os_source_t *os_source_find(const os_srv_conf_t *sc, const char *id)
{
    int i;
    for (i = 0; sc->sources && i < sc->sources->nelts; i++) {
        const os_source_t *src = &APR_ARRAY_IDX(sc->sources, i, os_source_t);
        if (!strcmp(src->id, id)) return src;
    }
    return NULL;
}

int os_secret_equals(const os_secret_t *secret, const char *given)
{
    apr_size_t n;
    if (!secret->value || !given) return 0;
    n = strlen(secret->value);
    if (strlen(given) != n) return 0;
    return apr_crypto_equals(secret->value, given, n);
}

/* Every key of every source is tried (constant time per key) so the answer time does not say
 * which source a near-miss belongs to. */
const os_source_t *os_source_by_key(const os_srv_conf_t *sc, const char *key)
{
    const os_source_t *found = NULL;
    int i, k;
    for (i = 0; sc->sources && i < sc->sources->nelts; i++) {
        const os_source_t *src = &APR_ARRAY_IDX(sc->sources, i, os_source_t);
        for (k = 0; k < src->nkeys; k++) {
            if (os_secret_equals(&src->keys[k], key) && !found) found = src;
        }
    }
    return found;
}
