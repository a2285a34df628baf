/* mod_ordersync_jobs.h: the delivery jobs in the store, as the dispatcher and the admin
 * routes change them. Every function here is a background write (os_bg_fn): it runs inside
 * the writer's transaction, in the writer's thread, while its caller waits.
 *
 * Invariants:
 * - A claim takes a job only when it is due and its lease is free or ran out; the lease
 *   holder keeps the job even when a newer version requeues it meanwhile, so two versions
 *   of one order are never in flight, and the newer one is sent after the older ended.
 * - A completion counts only where the lease is still the completer's: a late worker whose
 *   lease was taken over changes nothing. Its outcome applies to the job only where no newer
 *   version requeued it (then the lease is just given back and the new version goes next).
 * - The order's delivery state follows its newest version only: an outcome for an older
 *   version never overwrites the state of a newer one. delivered_version only grows.
 * - Results are copied into memory the caller owns (each job's own pool). */
#ifndef MOD_ORDERSYNC_JOBS_H
#define MOD_ORDERSYNC_JOBS_H

#include "mod_ordersync_store_db.h"

/* One delivery job between its claim and its completion. */
typedef struct {
    apr_pool_t *pool;                 /* the job's: strings below, cleared after completion */
    char order_id[OS_ID_LEN + 8];
    int version;
    int attempts;                     /* counted tries before this one */
    apr_time_t deadline_at;           /* when it goes dead if it keeps failing */
    const char *source_id, *reference, *sent_reference, *body;
    /* the outcome, set by the dispatcher before os_jobs_finish */
    const char *state;                /* "done", "retrying", "dead" */
    apr_time_t due_at;                /* retrying: the next try */
    int counted;                      /* this try counts (not a held probe) */
    const char *error;                /* last_error, NULL when delivered */
    const char *order_state;          /* the order's delivery state for this outcome */
    const char *cause;
    const char *upstream_id;          /* delivered: Clougistic's id */
    const char *event_kind, *event_detail;   /* NULL: no event */
    apr_time_t at;
} os_job_t;

/* os_jobs_claim's baton: claims up to `max` due jobs, oldest first, into jobs[0..claimed)
 * (made in `pool`, strings too; each job's own pool is the caller's to set). */
typedef struct {
    const char *owner;
    apr_time_t now, lease_until, horizon;
    int max;
    apr_pool_t *pool;
    os_job_t *jobs;
    int claimed;
} os_claim_t;
int os_jobs_claim(os_conn_t *c, apr_pool_t *p, void *baton);

/* os_jobs_finish's baton: the outcomes of n jobs claimed by owner. */
typedef struct {
    const char *owner;
    os_job_t **jobs;
    int n;
} os_finish_t;
int os_jobs_finish(os_conn_t *c, apr_pool_t *p, void *baton);

/* os_jobs_release's baton: the leases of owners[0..n) given back (their jobs due again). */
typedef struct {
    const char **owners;
    int n;
    apr_time_t now;
} os_release_t;
int os_jobs_release(os_conn_t *c, apr_pool_t *p, void *baton);

/* os_jobs_owners' baton: the lease holders whose name starts with `prefix` (a host's). */
typedef struct {
    const char *prefix;
    apr_pool_t *pool;                 /* for owners */
    apr_array_header_t *owners;       /* const char * */
} os_owners_t;
int os_jobs_owners(os_conn_t *c, apr_pool_t *p, void *baton);

/* os_upstream_state's baton: an upstream paused (paused_at > 0, cause) or resumed
 * (paused_at 0, and every waiting job's deadline moves on by `shift`). `read` instead
 * reads what is stored into paused_at and cause (from pool). */
typedef struct {
    const char *name;                 /* "clougistic", or "clougistic:<source>" */
    int read;
    apr_time_t paused_at;
    const char *cause;
    apr_interval_time_t shift;
    apr_pool_t *pool;
} os_upstream_state_t;
int os_upstream_state(os_conn_t *c, apr_pool_t *p, void *baton);
/* What is stored of upstream `name` (any connection, a reader's too): *paused_at 0 while it
 * works, else since when, with *cause; strings from p. 0 or the driver's error. */
int os_upstream_read(os_conn_t *c, apr_pool_t *p, const char *name, apr_time_t *paused_at,
                     const char **cause);

/* os_jobs_replay's baton: a dead order's newest version queued again. `found` is 0 when the
 * order does not exist, `replayed` 0 when its delivery was not dead. */
typedef struct {
    const char *source_id, *reference, *actor;
    apr_time_t now;
    int found, replayed, version;
    char state[24];
} os_replay_t;
int os_jobs_replay(os_conn_t *c, apr_pool_t *p, void *baton);

#endif
