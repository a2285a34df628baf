/* os_directives.h: every configuration directive name of mod_ordersync, defined once.
 * The directive table, the error messages and the configtest checks all use these macros,
 * so a misspelt name is a compile error rather than a silent mismatch. */
#ifndef OS_DIRECTIVES_H
#define OS_DIRECTIVES_H

#define OS_HANDLER_NAME          "ordersync"

/* server / virtual host */
#define OS_DIR_SOURCE            "OrderSyncSource"
#define OS_DIR_ADMIN_KEY         "OrderSyncAdminKey"
#define OS_DIR_WEBHOOK_SECRET    "OrderSyncWebhookSecret"
#define OS_DIR_DURABILITY        "OrderSyncDurability"
#define OS_DIR_MAX_BODY          "OrderSyncMaxBody"
#define OS_DIR_MAX_DEPTH         "OrderSyncMaxDepth"
#define OS_DIR_MAX_ITEMS         "OrderSyncMaxItems"
#define OS_DIR_MAX_STRING        "OrderSyncMaxString"
#define OS_DIR_QUEUE_MAX         "OrderSyncQueueMax"
#define OS_DIR_SOURCE_QUEUE_MAX  "OrderSyncSourceQueueMax"
#define OS_DIR_STORE_TIMEOUT     "OrderSyncStoreTimeout"
#define OS_DIR_BATCH_MAX         "OrderSyncBatchMax"
#define OS_DIR_STORE_MAX_SIZE    "OrderSyncStoreMaxSize"
#define OS_DIR_CG_URL            "OrderSyncClougisticURL"
#define OS_DIR_CG_KEY            "OrderSyncClougisticKey"
#define OS_DIR_CG_ENTITY         "OrderSyncClougisticEntity"
#define OS_DIR_CG_TIMEOUT        "OrderSyncClougisticTimeout"
#define OS_DIR_CG_CA_FILE        "OrderSyncClougisticCAFile"
#define OS_DIR_CG_HTTP2          "OrderSyncClougisticHTTP2"
#define OS_DIR_DISPATCH_CONC     "OrderSyncDispatchConcurrency"
#define OS_DIR_RETRY             "OrderSyncRetry"
#define OS_DIR_UPSTREAM_PAUSE    "OrderSyncUpstreamPause"

/* directory (<Location>) */
#define OS_DIR_ADMIN_AUTH        "OrderSyncAdminAuth"

/* httpd's Mutex directive: the name of the store's write lock (registered by the store) */
#define OS_MUTEX_NAME            "ordersync-store"

#endif
