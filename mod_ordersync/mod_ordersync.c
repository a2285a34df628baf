/* mod_ordersync.c: the module record and its hooks. The hub's parts live in their own files:
 * configuration (mod_ordersync_config.c), routing and answers (mod_ordersync_handler.c); the
 * order model and JSON in the httpd-free core (os_*.c). */
#include "mod_ordersync.h"
#include "http_request.h"
#include "mod_ordersync_store.h"
#include "mod_ordersync_dispatch.h"

static int os_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *hubs = apr_array_make(ptemp, 2, sizeof(server_rec *));
    server_rec *vs;
    int rv;
    (void)plog;
    /* the servers that mount the hub, in the same order in every process */
    for (vs = s; vs; vs = vs->next) {
        if (!os_srv_conf(vs)->mounts->nelts) continue;
        APR_ARRAY_PUSH(hubs, server_rec *) = vs;
        os_storefile_prepare(ptemp, vs);
    }
    /* optional functions are only retrievable from here on (not in register_hooks) */
    rv = os_store_post_config(pconf, s, hubs, os_store_conf_of);
    return rv != OK ? rv : os_dispatch_post_config(pconf, s, hubs);
}

static int os_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog; (void)ptemp;
    os_store_pre_config(pconf);
    return OK;
}

static void os_child_init(apr_pool_t *pchild, server_rec *s)
{
    os_store_child_init(pchild, s);
    /* after the writers: its cleanup runs before theirs, while they can still write */
    os_dispatch_child_init(pchild, s);
}

static void os_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(os_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(os_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(os_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };
    ap_hook_child_init(os_child_init, NULL, after_dbd, APR_HOOK_MIDDLE);
    ap_hook_map_to_storage(os_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(os_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

module AP_MODULE_DECLARE_DATA ordersync_module = {
    STANDARD20_MODULE_STUFF,
    os_create_dir_conf,
    os_merge_dir_conf,
    os_create_srv_conf,
    os_merge_srv_conf,
    os_cmds,
    os_register_hooks
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    , AP_MODULE_FLAG_NONE
#endif
};
