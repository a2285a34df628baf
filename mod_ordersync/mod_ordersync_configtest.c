/* mod_ordersync_configtest.c: the checks configtest runs (the check_config hook), which
 * refuse an incomplete or dangerous hub with the directive and the reason: where a
 * <Location> mounts the hub, its store, sources, prefixes, secrets, the store's lock, and
 * the delivery settings. A hub is "enabled" exactly where a <Location> sets
 * "SetHandler ordersync"; every check that could stop Apache from starting runs only for
 * those servers. */
#include "mod_ordersync.h"
#include "http_core.h"
#include "util_cfgtree.h"
#include "apr_lib.h"
#include "apr_strings.h"

/* ---- configtest ------------------------------------------------------------------- */

/* Strips the section's closing '>' and quotes: "<Location "/x">" has args "\"/x\">". */
static const char *section_arg(apr_pool_t *p, const char *args)
{
    char *a = apr_pstrdup(p, args ? args : "");
    apr_size_t n = strlen(a);
    if (n && a[n - 1] == '>') a[--n] = '\0';
    while (n && apr_isspace(a[n - 1])) a[--n] = '\0';
    if (n >= 2 && (a[0] == '"' || a[0] == '\'') && a[n - 1] == a[0]) {
        a[n - 1] = '\0';
        a++;
    }
    return a;
}

/* Conditional sections whose body httpd skipped must not count as enabling the hub. */
static int section_active(apr_pool_t *p, const ap_directive_t *d)
{
    const char *arg;
    int neg = 0;
    if (strcasecmp(d->directive, "<IfModule") && strcasecmp(d->directive, "<IfDefine")) return 1;
    arg = section_arg(p, d->args);
    if (*arg == '!') { neg = 1; arg++; }
    if (!strcasecmp(d->directive, "<IfDefine")) return ap_exists_config_define(arg) != neg;
    return (ap_find_linked_module(arg) != NULL
            || ap_find_linked_module(apr_pstrcat(p, "mod_", arg, ".c", NULL)) != NULL
            || (ap_strstr_c(arg, "_module") && ap_find_linked_module(apr_pstrcat(p, "mod_",
                apr_pstrmemdup(p, arg, ap_strstr_c(arg, "_module") - arg), ".c", NULL)))) != neg;
}

typedef struct {
    const ap_directive_t *vhost;     /* enclosing <VirtualHost>, NULL for the main server */
    const ap_directive_t *location;  /* the <Location> */
    const ap_directive_t *sethandler;
} os_mount_t;

static void find_mounts(apr_pool_t *p, const ap_directive_t *d, const ap_directive_t *vhost,
                        const ap_directive_t *loc, apr_array_header_t *out)
{
    for (; d; d = d->next) {
        if (d->first_child) {
            const ap_directive_t *v = vhost, *l = loc;
            if (!section_active(p, d)) continue;
            if (!strcasecmp(d->directive, "<VirtualHost")) v = d;
            if (!strcasecmp(d->directive, "<Location")
                || !strcasecmp(d->directive, "<LocationMatch")) l = d;
            find_mounts(p, d->first_child, v, l, out);
        }
        else if (!strcasecmp(d->directive, "SetHandler") && d->args
                 && !strcasecmp(section_arg(p, d->args), OS_HANDLER_NAME)) {
            os_mount_t *m = apr_array_push(out);
            m->vhost = vhost;
            m->location = loc;
            m->sethandler = d;
        }
    }
}

/* The last of a server-level directive that applies to a server: directly in its vhost (or
 * at top level for the main server, vhost NULL), or in an active <IfModule>/<IfDefine>
 * there. httpd keeps the last one, as do mod_dbd and this module. */
static const ap_directive_t *tree_last(const ap_directive_t *d, const ap_directive_t *vhost,
                                       const char *name, apr_pool_t *p)
{
    const ap_directive_t *found = NULL, *in;
    for (d = vhost ? vhost->first_child : d; d; d = d->next) {
        if (!strcasecmp(d->directive, name)) found = d;
        if (d->first_child && section_active(p, d)
            && (!strcasecmp(d->directive, "<IfModule") || !strcasecmp(d->directive, "<IfDefine"))
            && (in = tree_last(d->first_child, NULL, name, p))) found = in;
    }
    return found;
}

/* The directive in effect for a hub's server: its own, else the main server's. */
static const ap_directive_t *server_last(const ap_directive_t *vhost, const char *name,
                                         apr_pool_t *p)
{
    const ap_directive_t *d = tree_last(ap_conftree, vhost, name, p);
    return d || !vhost ? d : tree_last(ap_conftree, NULL, name, p);
}

/* A directive's first argument, unquoted ("" when it has none). */
static const char *first_arg(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args = d && d->args ? d->args : "";
    return ap_getword_conf(p, &args);
}

/* The Mutex directive that chooses the mechanism of the store's lock: the last one naming
 * OS_MUTEX_NAME, else the last one for "default" (or naming no mutex), as util_mutex.c
 * decides; NULL when none does. Mutex is allowed at top level only. */
static void find_mutex(apr_pool_t *p, const ap_directive_t *d, const ap_directive_t **own,
                       const ap_directive_t **dflt)
{
    for (; d; d = d->next) {
        if (d->first_child) {
            if ((!strcasecmp(d->directive, "<IfModule") || !strcasecmp(d->directive, "<IfDefine"))
                && section_active(p, d)) find_mutex(p, d->first_child, own, dflt);
            continue;
        }
        if (!strcasecmp(d->directive, "Mutex")) {
            const char *args = d->args ? d->args : "";
            int types = 0;
            ap_getword_conf(p, &args);    /* the mechanism */
            while (*args) {
                const char *t = ap_getword_conf(p, &args);
                if (!strcasecmp(t, "omitpid")) continue;
                types++;
                if (!strcmp(t, OS_MUTEX_NAME)) *own = d;
                else if (!strcmp(t, "default")) *dflt = d;
            }
            if (!types) *dflt = d;
        }
    }
}

/* A killed or crashed process that holds the store's lock must not wedge every writer: the
 * kernel releases fcntl and flock locks, undoes SysV semaphores (APR takes them with
 * SEM_UNDO), and APR recovers robust pthread mutexes; a POSIX semaphore stays taken. Returns
 * why the mechanism is refused, or NULL. */
static const char *mutex_not_robust(apr_pool_t *p, const char *mechdir)
{
    const char *colon = strchr(mechdir, ':');
    const char *mech = colon ? apr_pstrmemdup(p, mechdir, colon - mechdir) : mechdir;
    int posix = !strcasecmp(mech, "posixsem");
#if APR_HAS_POSIXSEM_SERIALIZE
    posix |= !strcasecmp(mech, "sem");       /* httpd's "sem" is the POSIX one where it exists */
#endif
#if APR_USE_POSIXSEM_SERIALIZE
    posix |= !strcasecmp(mech, "default") || !strcasecmp(mech, "yes");   /* APR's default here */
#endif
    if (!posix) return NULL;
    return apr_psprintf(p, "'%s' is a POSIX semaphore, which stays taken when the process "
                        "holding it is killed or crashes: every writer would then wait for the "
                        "store forever (until a restart); use pthread, fcntl, flock or sysvsem",
                        mech);
}

static server_rec *server_for(server_rec *s, const ap_directive_t *vhost)
{
    for (; vhost && s; s = s->next) {
        if (s->is_virtual && s->defn_line_number == (unsigned)vhost->line_num
            && s->defn_name && !strcmp(s->defn_name, vhost->filename)) return s;
    }
    return vhost ? NULL : s;
}

/* A secret is reported at the directive that set it (`where` is the hub's mount for a
 * secret that was never set). */
static int check_secret(server_rec *s, const char *where, const char *what,
                        const os_secret_t *sec, int min_len)
{
    if (sec->defn) where = sec->defn;
    if (sec->unexpanded) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: %s still contains "
                     "'${...}': the environment variable %s is not set (Apache reads "
                     "/etc/apache2/envvars when it starts: set it there and restart, not "
                     "graceful; or read the key from a file with file:/path)", where, what,
                     sec->var ? sec->var : "?");
        return 0;
    }
    if (sec->value && (int)strlen(sec->value) < min_len) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: %s from %s is shorter than "
                     "%d characters", where, what, sec->origin, min_len);
        return 0;
    }
    return 1;
}

int os_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *mounts = apr_array_make(ptemp, 4, sizeof(os_mount_t));
    int i, j, ok = 1;
    (void)plog;

    find_mounts(ptemp, ap_conftree, NULL, NULL, mounts);
    if (mounts->nelts) {
        const ap_directive_t *own = NULL, *dflt = NULL, *mx;
        const char *why;
        find_mutex(ptemp, ap_conftree, &own, &dflt);
        mx = own ? own : dflt;
        if (mx && (why = mutex_not_robust(ptemp, first_arg(ptemp, mx)))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s:%d: Mutex %s: the "
                         "mechanism of the store's lock (%s) %s", mx->filename, mx->line_num,
                         mx->args, OS_MUTEX_NAME, why);
            ok = 0;
        }
    }
    for (i = 0; i < mounts->nelts; i++) {
        os_mount_t *m = &APR_ARRAY_IDX(mounts, i, os_mount_t);
        server_rec *vs = server_for(s, m->vhost);
        os_srv_conf_t *sc;
        const char *where = apr_psprintf(ptemp, "%s:%d", m->sethandler->filename,
                                         m->sethandler->line_num);
        const char *path;
        const ap_directive_t *driver;

        if (!vs) continue;
        sc = os_srv_conf(vs);
        if (!m->location) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: SetHandler %s must be "
                         "inside a <Location> (the routes are relative to it)", where, OS_HANDLER_NAME);
            ok = 0;
            continue;
        }
        path = section_arg(pconf, m->location->args);
        if (*path == '~' || !strcasecmp(m->location->directive, "<LocationMatch")) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: SetHandler %s needs a "
                         "plain <Location /path>, not a regular expression", where, OS_HANDLER_NAME);
            ok = 0;
            continue;
        }
        {
            char *cp = apr_pstrdup(pconf, path);
            apr_size_t n = strlen(cp);
            while (n > 1 && cp[n - 1] == '/') cp[--n] = '\0';
            APR_ARRAY_PUSH(sc->mounts, const char *) = cp;
        }
        if (!ap_find_linked_module("mod_dbd.c")) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: mod_ordersync needs "
                         "mod_dbd for its store (LoadModule dbd_module modules/mod_dbd.so, or "
                         "a2enmod dbd)", where);
            ok = 0;
            continue;
        }
        if (!ap_find_linked_module("mod_watchdog.c")) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: mod_ordersync needs "
                         "mod_watchdog for its background jobs (LoadModule watchdog_module "
                         "modules/mod_watchdog.so)", where);
            ok = 0;
            continue;
        }
        driver = server_last(m->vhost, "DBDriver", ptemp);
        if (!driver) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: the hub at %s has no "
                         "store: set DBDriver sqlite3 and DBDParams /path/to/ordersync.db in "
                         "this server", where, path);
            ok = 0;
        }
        else {
            ok &= os_storefile_check(ptemp, s, sc, driver,
                                     server_last(m->vhost, "DBDParams", ptemp));
        }
        if (driver && sc->store_max_size != OS_UNSET
                 && strcasecmp(first_arg(ptemp, driver), "sqlite3")) {
            /* the cap is SQLite's (max_page_count); elsewhere it would be silently ignored */
            const ap_directive_t *ms = server_last(m->vhost, OS_DIR_STORE_MAX_SIZE, ptemp);
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s:%d: %s applies to a "
                         "SQLite store only, and the hub at %s uses DBDriver %s (%s:%d), where "
                         "it would be ignored: remove it (limit the database's size in %s "
                         "itself)", ms ? ms->filename : "?", ms ? ms->line_num : 0,
                         OS_DIR_STORE_MAX_SIZE, path, first_arg(ptemp, driver),
                         driver->filename, driver->line_num, first_arg(ptemp, driver));
            ok = 0;
        }
        if (!sc->sources || !sc->sources->nelts) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: the hub at %s has no "
                         "%s: declare at least one webshop", where, path, OS_DIR_SOURCE);
            ok = 0;
        }
        for (j = 0; sc->sources && j < sc->sources->nelts; j++) {
            const os_source_t *src = &APR_ARRAY_IDX(sc->sources, j, os_source_t);
            const char *sw = apr_psprintf(ptemp, "%s:%d", src->defn_file, src->defn_line);
            int k, l;
            for (k = 0; k < src->nkeys; k++) {
                ok &= check_secret(s, sw, apr_psprintf(ptemp, "%s %s: key", OS_DIR_SOURCE,
                                   src->id), &src->keys[k], 16);
            }
            for (l = 0; l < j; l++) {
                const os_source_t *o = &APR_ARRAY_IDX(sc->sources, l, os_source_t);
                /* the warehouse sees prefix + reference: when one prefix starts another,
                 * "DEMO-" + "W1" and "DEMO-W" + "1" are the same order there */
                const os_source_t *sh = strlen(o->prefix) <= strlen(src->prefix) ? o : src;
                const os_source_t *lg = sh == o ? src : o;
                if (!strcmp(o->prefix, src->prefix)) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: sources '%s' "
                                 "(%s:%d) and '%s' have the same reference prefix '%s': their "
                                 "orders could collide at the warehouse; give each a distinct "
                                 "prefix=", sw, o->id, o->defn_file, o->defn_line, src->id,
                                 src->prefix);
                    ok = 0;
                }
                else if (!strncmp(lg->prefix, sh->prefix, strlen(sh->prefix))) {
                    const char *rest = lg->prefix + strlen(sh->prefix);
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: the reference "
                                 "prefix '%s' of source '%s' (%s:%d) starts the prefix '%s' of "
                                 "source '%s' (%s:%d): reference '%s1' of '%s' and '1' of '%s' "
                                 "would both reach the warehouse as '%s1'; give each a prefix "
                                 "that does not start another", sw, sh->prefix, sh->id,
                                 sh->defn_file, sh->defn_line, lg->prefix, lg->id,
                                 lg->defn_file, lg->defn_line, rest, sh->id, lg->id, lg->prefix);
                    ok = 0;
                }
            }
        }
        if (sc->cg_url) {
            int all_own = sc->sources && sc->sources->nelts;
            for (j = 0; sc->sources && j < sc->sources->nelts; j++) {
                const os_source_t *src = &APR_ARRAY_IDX(sc->sources, j, os_source_t);
                const char *sw = apr_psprintf(ptemp, "%s:%d", src->defn_file, src->defn_line);
                if (!src->entity != !src->cg_key.value) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: %s %s: entity= "
                                 "and clougistic_key= go together (a source's own entity "
                                 "needs its own access key)", sw, OS_DIR_SOURCE, src->id);
                    ok = 0;
                }
                if (!src->entity) all_own = 0;
                ok &= check_secret(s, sw, apr_psprintf(ptemp, "%s %s: clougistic_key",
                                   OS_DIR_SOURCE, src->id), &src->cg_key, 1);
            }
            if (!all_own && (!sc->cg_entity || !sc->cg_key.value)) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s: the hub at %s "
                             "delivers to %s but has no %s%s%s: set them in this server (or "
                             "give every %s its own entity= and clougistic_key=)", where, path,
                             sc->cg_url, !sc->cg_entity ? OS_DIR_CG_ENTITY : "",
                             !sc->cg_entity && !sc->cg_key.value ? " and no " : "",
                             !sc->cg_key.value ? OS_DIR_CG_KEY : "", OS_DIR_SOURCE);
                ok = 0;
            }
            ok &= check_secret(s, where, OS_DIR_CG_KEY, &sc->cg_key, 1);
        }
        ok &= check_secret(s, where, OS_DIR_ADMIN_KEY, &sc->admin_key, 16);
        ok &= check_secret(s, where, OS_DIR_WEBHOOK_SECRET, &sc->webhook_secret, 16);
    }
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}
