/* mod_ordersync.h: the httpd glue's shared declarations: configuration records, the
 * module record, logging and the helpers every handler uses (problem+json answers, auth).
 * Only glue files (mod_ordersync*.c) include this; the core (os_*.c) never does. */
#ifndef MOD_ORDERSYNC_H
#define MOD_ORDERSYNC_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "apr_strings.h"
#include "os_directives.h"
#include "mod_ordersync_store.h"
#include "os_json.h"

#include <yajl/yajl_gen.h>

extern module AP_MODULE_DECLARE_DATA ordersync_module;
#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(ordersync);
#endif

/* The module's version: the one place it is written. The start-up line, `make version`
 * and `make deb` (the package's version) read it from here. */
#define OS_VERSION "0.5.1"

#define OS_UNSET (-1)
#define OS_PROBLEM_TYPE_BASE "urn:ordersync:problem:"

/* A secret given in the configuration: either read from a file ("file:/path") or given
 * literally (normally as ${ENV}, expanded by httpd). `origin` names where it came from for
 * messages; the value itself is never logged. */
typedef struct {
    const char *value;
    const char *origin;
    int unexpanded;          /* still contains "${": the environment variable was unset */
    const char *var;         /* then the variable's name */
    const char *defn;        /* "file:line" of the directive that set it */
} os_secret_t;

typedef struct {
    const char *id;
    os_secret_t keys[2];     /* two keys so a source can rotate without downtime */
    int nkeys;
    const char *prefix;      /* reference prefix at the warehouse */
    const char *webhook_url;
    const char *entity;      /* entity= : this source's Clougistic entity, else the hub's */
    os_secret_t cg_key;      /* clougistic_key= : its access key for that entity */
    const char *defn_file;
    int defn_line;
} os_source_t;

typedef struct {
    apr_array_header_t *sources;     /* os_source_t */
    os_secret_t admin_key;
    os_secret_t webhook_secret;
    int durability;                  /* OS_UNSET, 0 = NORMAL, 1 = FULL */
    apr_int64_t max_body;
    int max_depth;
    int max_items;
    int max_string;
    int queue_max;
    int source_queue_max;            /* OS_UNSET: the queue shared evenly among the sources */
    int store_timeout_ms;
    int batch_max;
    apr_int64_t store_max_size;      /* SQLite: bytes the store file may grow to */
    /* Clougistic, where the dispatcher delivers (no URL: orders are stored, not sent) */
    const char *cg_url;
    os_secret_t cg_key;
    const char *cg_entity;
    apr_int64_t cg_connect_timeout;  /* microseconds, OS_UNSET */
    apr_int64_t cg_timeout;
    const char *cg_ca_file;
    int cg_http2;                    /* OS_UNSET, 0, 1 */
    int dispatch_concurrency;
    apr_int64_t retry_first, retry_max, retry_horizon;
    int pause_after;                 /* transient failures in a row that pause the upstream */
    apr_int64_t probe_every;
    /* filled at configtest: the <Location> paths that set "SetHandler ordersync" here */
    apr_array_header_t *mounts;
    const char *store_driver;        /* DBDriver, and for SQLite the file (DBDParams) */
    const char *store_file;
    const char *store_params;        /* other drivers: DBDParams without secrets */
    os_store_conf_t store_conf;      /* what the store needs, filled in post_config */
} os_srv_conf_t;

typedef struct {
    int admin_auth;                  /* OS_UNSET, 0 = admin key only, 1 = let Apache decide */
} os_dir_conf_t;

/* defaults */
#define OS_DEFAULT_MAX_BODY       (1024 * 1024)
#define OS_DEFAULT_MAX_DEPTH      32
/* OrderSyncMaxDepth's maximum: an accepted order (the payload object is level 1) is written
 * inside one wrapper, {"order": ...} in the status answer or Clougistic's envelope
 * {"payload": ...}, and the whole must stay within what the generator writes. */
#define OS_MAX_DEPTH_LIMIT        (OS_JGEN_MAX_DEPTH - 1)
#define OS_DEFAULT_MAX_ITEMS      1000
#define OS_DEFAULT_MAX_STRING     1024
#define OS_DEFAULT_QUEUE_MAX      100000
#define OS_DEFAULT_STORE_TIMEOUT  5000
#define OS_DEFAULT_BATCH_MAX      64
#define OS_DEFAULT_CG_CONNECT     apr_time_from_sec(5)
#define OS_DEFAULT_CG_TIMEOUT     apr_time_from_sec(30)
#define OS_DEFAULT_CONCURRENCY    16
#define OS_DEFAULT_RETRY_FIRST    apr_time_from_sec(5)
#define OS_DEFAULT_RETRY_MAX      apr_time_from_sec(3600)
#define OS_DEFAULT_RETRY_HORIZON  apr_time_from_sec(72 * 3600)
#define OS_DEFAULT_PAUSE_AFTER    10
#define OS_DEFAULT_PROBE_EVERY    apr_time_from_sec(30)

#define OS_CONF_INT(v, def) ((v) == OS_UNSET ? (def) : (v))

os_srv_conf_t *os_srv_conf(server_rec *s);
/* The store's settings of a server with a hub (the defaults applied). */
const os_store_conf_t *os_store_conf_of(server_rec *s);

/* mod_ordersync_config.c */
extern const command_rec os_cmds[];
void *os_create_srv_conf(apr_pool_t *p, server_rec *s);
void *os_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);
void *os_create_dir_conf(apr_pool_t *p, char *dir);
void *os_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
int os_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);

/* mod_ordersync_storefile.c: where the store lives, checked at configtest (an absolute
 * SQLite path whose directory and files the configured User can write), its files created
 * readable by that user only, and the start-up line that says where each hub keeps it. */
int os_storefile_check(apr_pool_t *p, server_rec *s, os_srv_conf_t *sc,
                       const ap_directive_t *driver, const ap_directive_t *params);
void os_storefile_prepare(apr_pool_t *p, server_rec *s);
/* The store as messages show it: "sqlite3 /path", or the driver and its parameters
 * without secrets (known after configtest). */
const char *os_storefile_shown(apr_pool_t *p, const os_srv_conf_t *sc);
const os_source_t *os_source_find(const os_srv_conf_t *sc, const char *id);
const os_source_t *os_source_by_key(const os_srv_conf_t *sc, const char *key);
int os_secret_equals(const os_secret_t *secret, const char *given);

/* mod_ordersync_handler.c */
int os_handler(request_rec *r);
int os_map_to_storage(request_rec *r);
/* The <Location> path that mounts the hub for this request ("" when the hub is at "/"). */
const char *os_hub_base(request_rec *r);
/* Answers an RFC 9457 problem; `slug` becomes the stable type URI. Returns DONE. */
int os_problem(request_rec *r, int status, const char *slug, const char *title, const char *detail);
/* Starts a problem document for callers that add members (e.g. "errors"); finish with
 * os_problem_send(). */
yajl_gen os_problem_begin(request_rec *r, int status, const char *slug, const char *title,
                          const char *detail);
int os_problem_send(request_rec *r, int status, yajl_gen g);
int os_send_json(request_rec *r, int status, yajl_gen g);
/* The token of "Authorization: Bearer <token>", or NULL; *had says whether the request
 * carried a Bearer credential at all. */
const char *os_bearer_token(request_rec *r, int *had);
/* 401 with WWW-Authenticate: Bearer for `realm`. Returns DONE. */
int os_unauthorized(request_rec *r, const char *realm, const char *detail, int had_credentials);

/* mod_ordersync_admin.c */
int os_admin_replay(request_rec *r, const char *const *params);

/* mod_ordersync_intake.c */
int os_intake_orders(request_rec *r, const char *const *params);
int os_intake_enqueue(request_rec *r, const char *const *params);
int os_order_status(request_rec *r, const char *const *params);

#endif
