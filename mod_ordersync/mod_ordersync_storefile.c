/* mod_ordersync_storefile.c: where a hub's store lives, as an admin sees it.
 *
 * At configtest (check_config) a SQLite store must be an absolute path whose directory
 * exists and which the configured User can write, as can its existing files: otherwise
 * Apache would start and answer every order with 503. The messages name the DBDParams line,
 * the path and the user. At start-up (post_config, as root) a store file that does not exist
 * yet is created with mode 0600 and owned by that user, so SQLite's journal files, which
 * take the main file's mode and owner, are never readable by other local users; then one
 * notice line per hub says where it is mounted, where its store is, how durable it is and
 * which version runs. The PostgreSQL parameters are shown without their password.
 *
 * Invariant: nothing here runs for a server without a hub, and configtest itself creates
 * nothing. */
#include "mod_ordersync.h"
#include "unixd.h"
#include "http_core.h"
#include "apr_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

/* The user the children run as: the configured User when Apache starts as root, else the
 * user starting it. */
typedef struct {
    const char *name;
    uid_t uid;
    gid_t groups[64];
    int ngroups;
} os_runas_t;

static void runas_of(apr_pool_t *p, os_runas_t *u)
{
    if (geteuid() == 0) {
        u->name = ap_unixd_config.user_name;
        u->uid = ap_unixd_config.user_id;
        u->ngroups = 64;
        if (getgrouplist(u->name, ap_unixd_config.group_id, u->groups, &u->ngroups) < 0) {
            u->groups[0] = ap_unixd_config.group_id;
            u->ngroups = 1;
        }
    }
    else {
        struct passwd *pw = getpwuid(geteuid());
        u->name = pw ? apr_pstrdup(p, pw->pw_name) : apr_psprintf(p, "uid %d", (int)geteuid());
        u->uid = geteuid();
        u->ngroups = getgroups(63, u->groups);
        if (u->ngroups < 0) u->ngroups = 0;
        u->groups[u->ngroups++] = getegid();
    }
}

/* Whether the user may do `want` (S_IROTH/S_IWOTH/S_IXOTH bits) on a file with `st`. */
static int may(const os_runas_t *u, const struct stat *st, mode_t want)
{
    int i;
    if (u->uid == 0) return 1;
    if (st->st_uid == u->uid) return ((st->st_mode >> 6) & want) == want;
    for (i = 0; i < u->ngroups; i++) {
        if (u->groups[i] == st->st_gid) return ((st->st_mode >> 3) & want) == want;
    }
    return (st->st_mode & want) == want;
}

/* The first directory above `dir` the user cannot enter, or NULL. */
static const char *unsearchable_parent(apr_pool_t *p, const os_runas_t *u, const char *dir)
{
    char *d = apr_pstrdup(p, dir), *slash;
    struct stat st;
    while ((slash = strrchr(d, '/')) && slash != d) {
        *slash = '\0';
        if (stat(d, &st) == 0 && !may(u, &st, S_IXOTH)) return d;
    }
    return NULL;
}

static int refuse(server_rec *s, const ap_directive_t *params, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(server_rec *s, const ap_directive_t *params, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    apr_vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s:%d: DBDParams %s: %s",
                 params->filename, params->line_num, params->args, msg);
    return 0;
}

/* PostgreSQL's "key=value ..." without password= (and without anything unknown). */
static const char *params_shown(apr_pool_t *p, const char *args)
{
    static const char *const shown[] = { "host=", "hostaddr=", "port=", "dbname=", "user=",
                                         "sslmode=", NULL };
    const char *out = "";
    char *copy = apr_pstrdup(p, args ? args : ""), *tok, *last;
    int i;
    for (tok = apr_strtok(copy, " \t\"", &last); tok; tok = apr_strtok(NULL, " \t\"", &last)) {
        for (i = 0; shown[i]; i++) {
            if (!strncasecmp(tok, shown[i], strlen(shown[i]))) {
                out = *out ? apr_pstrcat(p, out, " ", tok, NULL) : tok;
                break;
            }
        }
    }
    return out;
}

int os_storefile_check(apr_pool_t *p, server_rec *s, os_srv_conf_t *sc,
                       const ap_directive_t *driver, const ap_directive_t *params)
{
    const char *args, *file, *slash, *dir, *blocked;
    static const char *const suffix[] = { "", "-wal", "-shm", NULL };
    os_runas_t u;
    struct stat st;
    int i;

    args = driver->args;
    sc->store_driver = apr_pstrdup(s->process->pconf, ap_getword_conf(p, &args));
    if (strcasecmp(sc->store_driver, "sqlite3")) {
        sc->store_params = params ? params_shown(s->process->pconf, params->args) : "";
        return 1;
    }
    if (!params) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "ordersync: %s:%d: DBDriver sqlite3 "
                     "without DBDParams: give the store's file, e.g. DBDParams "
                     "/var/lib/ordersync/ordersync.db", driver->filename, driver->line_num);
        return 0;
    }
    args = params->args;
    file = ap_getword_conf(p, &args);
    if (file[0] != '/') {
        return refuse(s, params, "the SQLite store must be an absolute path: '%s' would be "
                      "opened relative to the server's working directory (/ when started "
                      "by apachectl), e.g. /var/lib/ordersync/%s", file,
                      *file && !strchr(file, '/') && *file != ':' ? file : "ordersync.db");
    }
    sc->store_file = apr_pstrdup(s->process->pconf, file);
    slash = strrchr(file, '/');
    dir = slash == file ? "/" : apr_pstrmemdup(p, file, slash - file);
    runas_of(p, &u);
    if (stat(dir, &st) != 0) {
        return refuse(s, params, "the store's directory %s does not exist: create it, "
                      "writable by %s (install -d -o %s -m 0750 %s)", dir, u.name, u.name, dir);
    }
    if (!S_ISDIR(st.st_mode)) {
        return refuse(s, params, "%s, the store's directory, is not a directory", dir);
    }
    if ((blocked = unsearchable_parent(p, &u, dir))) {
        return refuse(s, params, "the user Apache runs as (%s) cannot enter %s, on the way "
                      "to the store", u.name, blocked);
    }
    if (!may(&u, &st, S_IWOTH | S_IXOTH)) {
        return refuse(s, params, "the store's directory %s is not writable by the user "
                      "Apache runs as (%s; the directory is owned by uid %d, mode %04o): "
                      "chown %s %s", dir, u.name, (int)st.st_uid,
                      (unsigned)(st.st_mode & 07777), u.name, dir);
    }
    for (i = 0; suffix[i]; i++) {
        const char *f = apr_pstrcat(p, file, suffix[i], NULL);
        if (stat(f, &st) == 0 && !may(&u, &st, S_IROTH | S_IWOTH)) {
            return refuse(s, params, "the store's file %s is not readable and writable by "
                          "the user Apache runs as (%s; owned by uid %d, mode %04o): chown "
                          "%s %s", f, u.name, (int)st.st_uid, (unsigned)(st.st_mode & 07777),
                          u.name, f);
        }
    }
    return 1;
}

/* Creates a SQLite store that does not exist yet, 0600 and owned by the children's user. */
static void create_store_file(server_rec *s, const char *file)
{
    struct stat st;
    int fd;
    if (stat(file, &st) == 0) {
        if (st.st_mode & 077) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ordersync: the store %s has mode "
                         "%04o: other local users can read the orders in it (chmod 600 %s "
                         "and its -wal and -shm files)", file, (unsigned)(st.st_mode & 07777),
                         file);
        }
        return;
    }
    fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return;    /* configtest said why, or a child will */
    if (geteuid() == 0 && fchown(fd, ap_unixd_config.user_id, ap_unixd_config.group_id)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, "ordersync: cannot give the new "
                     "store %s to %s", file, ap_unixd_config.user_name);
    }
    close(fd);
}

const char *os_storefile_shown(apr_pool_t *p, const os_srv_conf_t *sc)
{
    if (sc->store_file) return apr_pstrcat(p, "sqlite3 ", sc->store_file, NULL);
    return apr_pstrcat(p, sc->store_driver ? sc->store_driver : "?",
                       sc->store_params && *sc->store_params ? " " : "",
                       sc->store_params ? sc->store_params : "", NULL);
}

void os_storefile_prepare(apr_pool_t *p, server_rec *s)
{
    os_srv_conf_t *sc = os_srv_conf(s);
    const os_store_conf_t *st = os_store_conf_of(s);
    const char *where = "";
    int i;

    if (sc->store_file) create_store_file(s, sc->store_file);
    /* one line per hub, when the server really starts (not in the first of httpd's two
     * configuration passes) */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return;
    for (i = 0; i < sc->mounts->nelts; i++) {
        where = apr_pstrcat(p, where, i ? ", " : "", "<Location ",
                            APR_ARRAY_IDX(sc->mounts, i, const char *), ">", NULL);
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "ordersync %s: hub at %s of %s%s: store "
                 "%s, durability %s; %s", OS_VERSION, where, s->server_hostname,
                 s->is_virtual && s->addrs && s->addrs->host_port
                     ? apr_psprintf(p, ":%u", (unsigned)s->addrs->host_port) : "",
                 os_storefile_shown(p, sc), st->durability ? "full" : "normal",
                 sc->cg_url ? apr_pstrcat(p, "delivers to ", sc->cg_url, NULL)
                            : "stores orders, delivers none (no OrderSyncClougisticURL)");
}
