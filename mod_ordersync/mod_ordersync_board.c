/* mod_ordersync_board.c: the board (see mod_ordersync_board.h for its states and who moves
 * a slot between them). Linux only; elsewhere every process commits its own orders, and so
 * does a build with -DOS_BOARD_OFF (`make noboard`, for bench/store.sh's comparison). */
#include "mod_ordersync_board.h"
#include "apr_strings.h"
#include "apr_shm.h"

#if defined(__linux__) && !defined(OS_BOARD_OFF)
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

enum { SLOT_FREE, SLOT_FILLING, SLOT_FILLED, SLOT_TAKEN, SLOT_DONE, SLOT_ABANDONED };
enum { SS_SOURCE, SS_REFERENCE, SS_SENT, SS_ORIGIN, SS_BODY, SS_DIGEST, SS_ID, SS_COUNT };

#define W_STATE(w) ((unsigned)((w) & 0xf))
#define W_SEQ(w)   ((apr_uint32_t)(((w) >> 4) & 0x0fffffff))
#define W_PID(w)   ((apr_uint32_t)((w) >> 32))
#define W_MAKE(state, seq, pid) \
    (((apr_uint64_t)(pid) << 32) | ((apr_uint64_t)((seq) & 0x0fffffff) << 4) | (state))

typedef struct {
    apr_uint64_t word;                /* state, sequence, holder: see the header */
    apr_uint32_t bell;                /* bumped when the request has something to see (futex) */
    apr_uint32_t owner;               /* the request's process ... */
    apr_uint64_t owner_start;         /* ... and its start time (liveness) */
    apr_uint32_t off[SS_COUNT];       /* the order's strings, in data */
    int cancelled;
    apr_uint32_t taken;               /* a committer has had it: never "nothing stored" now */
    apr_uint64_t filling_seen;        /* the sweep: the FILLING word it saw a second ago */
    int result, version;              /* the answer */
    char order_id[40], delivery_state[24], error[200];
    char data[OS_BOARD_SLOT_BYTES];
} os_slot_t;

typedef struct {
    pthread_mutex_t lease;            /* held by the committer's writer (robust, shared) */
    apr_uint32_t committer;           /* its pid; 0 when there is none */
    apr_uint32_t work;                /* bumped for each order published (a futex) */
    apr_uint32_t sleeping;            /* the committer waits on work */
    apr_uint32_t scan;                /* where the next collect starts */
    apr_uint32_t jobs;                /* bumped when another process committed delivery work */
    apr_time_t swept_at;
} os_hub_board_t;

static os_hub_board_t *boards;
static os_slot_t *slots;              /* OS_BOARD_SLOTS per hub, hub after hub */
static int nhubs;
static apr_uint32_t my_pid;
static apr_uint64_t my_start;

#define LOAD(a)      __atomic_load_n((a), __ATOMIC_ACQUIRE)
#define CAS(a, e, d) __atomic_compare_exchange_n((a), &(e), (d), 0, __ATOMIC_ACQ_REL, \
                                                 __ATOMIC_ACQUIRE)
#define BUMP(a)      __atomic_add_fetch((a), 1, __ATOMIC_RELEASE)

static void futex_wait(apr_uint32_t *addr, apr_uint32_t val, apr_interval_time_t t)
{
    struct timespec ts;
    if (t <= 0) return;
    ts.tv_sec = (time_t)apr_time_sec(t);
    ts.tv_nsec = (long)apr_time_usec(t) * 1000;
    syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake(apr_uint32_t *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* A process's start time (clock ticks since boot, field 22 of /proc/PID/stat) and whether it
 * is a zombie; 0 when it does not exist. */
static apr_uint64_t proc_start(apr_uint32_t pid, int *zombie)
{
    char path[64], buf[1024], *p;
    FILE *f;
    size_t n;
    int field;
    unsigned long long start = 0;

    *zombie = 0;
    snprintf(path, sizeof(path), "/proc/%u/stat", (unsigned)pid);
    if (!(f = fopen(path, "r"))) return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: fields count from the last ')' */
    if (!(p = strrchr(buf, ')'))) return 0;
    p += 2;
    *zombie = (*p == 'Z' || *p == 'X');
    for (field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (p) start = strtoull(p, NULL, 10);
    return start;
}

static int alive(apr_uint32_t pid, apr_uint64_t start)
{
    int zombie;
    apr_uint64_t s;
    if (!pid) return 0;
    if (pid == my_pid) return 1;
    s = proc_start(pid, &zombie);
    return s != 0 && !zombie && s == start;
}

apr_uint64_t os_process_start(apr_uint32_t pid)
{
    int zombie;
    return proc_start(pid, &zombie);
}

int os_process_alive(apr_uint32_t pid, apr_uint64_t start)
{
    return alive(pid, start);
}

static os_slot_t *slot_at(int hub, int i)
{
    return &slots[(apr_size_t)hub * OS_BOARD_SLOTS + (apr_size_t)i];
}

apr_status_t os_board_create(apr_pool_t *pconf, int hubs)
{
    apr_size_t head = APR_ALIGN(sizeof(os_hub_board_t) * (apr_size_t)hubs, 64);
    pthread_mutexattr_t ma;
    apr_shm_t *shm;
    apr_status_t rv;
    int i;

    boards = NULL;
    slots = NULL;
    nhubs = 0;
    /* anonymous, inherited by the children; the pages are zero, so every slot starts FREE */
    rv = apr_shm_create(&shm, head + sizeof(os_slot_t) * OS_BOARD_SLOTS * (apr_size_t)hubs,
                        NULL, pconf);
    if (rv != APR_SUCCESS) return rv;
    boards = apr_shm_baseaddr_get(shm);
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    for (i = 0; i < hubs; i++) {
        if (pthread_mutex_init(&boards[i].lease, &ma) != 0) {
            pthread_mutexattr_destroy(&ma);
            boards = NULL;
            return APR_EGENERAL;
        }
    }
    pthread_mutexattr_destroy(&ma);
    slots = (os_slot_t *)((char *)boards + head);
    nhubs = hubs;
    return APR_SUCCESS;
}

void os_board_child_init(void)
{
    int zombie;
    my_pid = (apr_uint32_t)getpid();
    my_start = proc_start(my_pid, &zombie);
}

int os_board_ready(int hub)
{
    return boards && hub >= 0 && hub < nhubs && my_pid;
}

int os_board_lease_try(int hub)
{
    os_hub_board_t *hb = &boards[hub];
    int rc = pthread_mutex_trylock(&hb->lease), i;

    if (rc == EOWNERDEAD) rc = pthread_mutex_consistent(&hb->lease);
    if (rc != 0) return 0;
    /* the previous committer ended: what it had taken and not answered is committed again
     * (its intake id makes it a replay if it had reached the store); what was abandoned
     * while it held it is nobody's */
    for (i = 0; i < OS_BOARD_SLOTS; i++) {
        os_slot_t *sl = slot_at(hub, i);
        apr_uint64_t w = LOAD(&sl->word);
        if (W_PID(w) == my_pid) continue;
        if (W_STATE(w) == SLOT_TAKEN) {
            apr_uint64_t d = W_MAKE(SLOT_FILLED, W_SEQ(w), sl->owner);
            CAS(&sl->word, w, d);
        }
        else if (W_STATE(w) == SLOT_ABANDONED) {
            CAS(&sl->word, w, W_MAKE(SLOT_FREE, W_SEQ(w), 0));
        }
    }
    __atomic_store_n(&hb->committer, my_pid, __ATOMIC_RELEASE);
    return 1;
}

void os_board_lease_release(int hub)
{
    os_hub_board_t *hb = &boards[hub];
    apr_uint32_t me = my_pid;
    __atomic_compare_exchange_n(&hb->committer, &me, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&hb->lease);
}

int os_board_collect(int hub, apr_pool_t *p, os_board_item_t *items, int max)
{
    os_hub_board_t *hb = &boards[hub];
    apr_uint32_t start = LOAD(&hb->scan);
    int n = 0, k;

    for (k = 0; k < OS_BOARD_SLOTS && n < max; k++) {
        int i = (int)((start + (apr_uint32_t)k) % OS_BOARD_SLOTS);
        os_slot_t *sl = slot_at(hub, i);
        apr_uint64_t w = LOAD(&sl->word), t;
        os_intake_op_t *op;

        if (W_STATE(w) != SLOT_FILLED) continue;
        t = W_MAKE(SLOT_TAKEN, W_SEQ(w), my_pid);
        if (!CAS(&sl->word, w, t)) continue;    /* taken back by its request meanwhile */
        /* before anything is written: a request that later takes its slot back (after a
         * takeover made it FILLED again) knows it may have been committed */
        __atomic_store_n(&sl->taken, 1, __ATOMIC_RELEASE);
        op = apr_pcalloc(p, sizeof(*op));
        op->source_id = sl->data + sl->off[SS_SOURCE];
        op->reference = sl->data + sl->off[SS_REFERENCE];
        op->sent_reference = sl->data + sl->off[SS_SENT];
        op->origin = sl->data + sl->off[SS_ORIGIN];
        op->body = sl->data + sl->off[SS_BODY];
        op->digest = sl->data + sl->off[SS_DIGEST];
        apr_cpystrn(op->id, sl->data + sl->off[SS_ID], sizeof(op->id));
        op->cancelled = sl->cancelled;
        items[n].op = op;
        items[n].slot = i;
        items[n].word = t;
        n++;
        /* the next collect starts after the last slot taken, so with more filled slots than
         * a batch holds every slot has its turn */
        __atomic_store_n(&hb->scan, (apr_uint32_t)(i + 1), __ATOMIC_RELAXED);
    }
    return n;
}

void os_board_answer(int hub, const os_board_item_t *it)
{
    os_slot_t *sl = slot_at(hub, it->slot);
    const os_intake_op_t *op = it->op;
    apr_uint64_t w = it->word;

    sl->result = op->result;
    sl->version = op->version;
    apr_cpystrn(sl->order_id, op->order_id, sizeof(sl->order_id));
    apr_cpystrn(sl->delivery_state, op->delivery_state, sizeof(sl->delivery_state));
    apr_cpystrn(sl->error, op->error, sizeof(sl->error));
    if (CAS(&sl->word, w, W_MAKE(SLOT_DONE, W_SEQ(it->word), sl->owner))) {
        BUMP(&sl->bell);
        futex_wake(&sl->bell, 1);
        return;
    }
    /* the request gave up waiting (it answered "outcome unknown"): the slot is free now */
    w = W_MAKE(SLOT_ABANDONED, W_SEQ(it->word), my_pid);
    CAS(&sl->word, w, W_MAKE(SLOT_FREE, W_SEQ(it->word), 0));
}

void os_board_sweep(int hub)
{
    os_hub_board_t *hb = &boards[hub];
    apr_time_t now = apr_time_now();
    int i;

    if (now - hb->swept_at < apr_time_from_sec(1)) return;
    hb->swept_at = now;
    for (i = 0; i < OS_BOARD_SLOTS; i++) {
        os_slot_t *sl = slot_at(hub, i);
        apr_uint64_t w = LOAD(&sl->word);
        unsigned s = W_STATE(w);
        /* answered for a process that died waiting, or filled by a process that died before
         * it finished (the same FILLING word a second later: its start time is written by
         * then): nobody will ever free them otherwise */
        if (s == SLOT_FILLING) {
            if (sl->filling_seen == w && !alive(W_PID(w), sl->owner_start))
                CAS(&sl->word, w, W_MAKE(SLOT_FREE, W_SEQ(w), 0));
            sl->filling_seen = w;
        }
        else if (s == SLOT_DONE && !alive(W_PID(w), sl->owner_start))
            CAS(&sl->word, w, W_MAKE(SLOT_FREE, W_SEQ(w), 0));
        else if (s == SLOT_ABANDONED && W_PID(w) != my_pid)
            CAS(&sl->word, w, W_MAKE(SLOT_FREE, W_SEQ(w), 0));
    }
}

void os_board_wait_work(int hub, apr_interval_time_t t)
{
    os_hub_board_t *hb = &boards[hub];
    apr_uint32_t seq = LOAD(&hb->work);
    int i;
    for (i = 0; i < OS_BOARD_SLOTS; i++) {
        if (W_STATE(LOAD(&slot_at(hub, i)->word)) == SLOT_FILLED) return;
    }
    __atomic_store_n(&hb->sleeping, 1, __ATOMIC_SEQ_CST);
    if (LOAD(&hb->work) == seq) futex_wait(&hb->work, seq, t);
    __atomic_store_n(&hb->sleeping, 0, __ATOMIC_SEQ_CST);
}

void os_board_wake_committer(int hub)
{
    os_hub_board_t *hb = &boards[hub];
    __atomic_add_fetch(&hb->work, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&hb->sleeping, __ATOMIC_SEQ_CST)) futex_wake(&hb->work, 1);
}

void os_board_jobs_added(int hub)
{
    __atomic_add_fetch(&boards[hub].jobs, 1, __ATOMIC_SEQ_CST);
    os_board_wake_committer(hub);
}

apr_uint32_t os_board_jobs(int hub)
{
    return __atomic_load_n(&boards[hub].jobs, __ATOMIC_SEQ_CST);
}

int os_board_submit(int hub, os_intake_op_t *op, apr_interval_time_t timeout,
                    apr_interval_time_t margin, void (*handed)(void *), void *baton)
{
    static apr_uint32_t next_slot;
    os_hub_board_t *hb;
    const char *str[SS_COUNT];
    apr_size_t len[SS_COUNT], used = 0;
    apr_uint32_t start;
    apr_uint64_t w = 0;
    os_slot_t *sl = NULL;
    apr_time_t deadline;
    int i;

    if (!os_board_ready(hub)) return 0;
    hb = &boards[hub];
    if (!LOAD(&hb->committer)) return 0;
    str[SS_SOURCE] = op->source_id; str[SS_REFERENCE] = op->reference;
    str[SS_SENT] = op->sent_reference; str[SS_ORIGIN] = op->origin;
    str[SS_BODY] = op->body; str[SS_DIGEST] = op->digest; str[SS_ID] = op->id;
    for (i = 0; i < SS_COUNT; i++) {
        len[i] = strlen(str[i]) + 1;
        used += len[i];
    }
    if (used > OS_BOARD_SLOT_BYTES) return 0;
    start = __atomic_add_fetch(&next_slot, 1, __ATOMIC_RELAXED) + my_pid;
    for (i = 0; i < OS_BOARD_SLOTS && !sl; i++) {
        os_slot_t *c = slot_at(hub, (int)((start + (apr_uint32_t)i) % OS_BOARD_SLOTS));
        w = LOAD(&c->word);
        if (W_STATE(w) != SLOT_FREE) continue;
        if (CAS(&c->word, w, W_MAKE(SLOT_FILLING, W_SEQ(w) + 1, my_pid))) sl = c;
    }
    if (!sl) return 0;
    w = W_MAKE(SLOT_FILLING, W_SEQ(w) + 1, my_pid);
    sl->owner = my_pid;
    sl->owner_start = my_start;
    for (i = 0, used = 0; i < SS_COUNT; i++) {
        memcpy(sl->data + used, str[i], len[i]);
        sl->off[i] = (apr_uint32_t)used;
        used += len[i];
    }
    sl->cancelled = op->cancelled;
    sl->taken = 0;
    if (handed) handed(baton);
    {
        apr_uint64_t f = W_MAKE(SLOT_FILLED, W_SEQ(w), my_pid);
        __atomic_store_n(&sl->word, f, __ATOMIC_RELEASE);   /* only we move a FILLING slot */
        w = f;
    }
    os_board_wake_committer(hub);

    deadline = apr_time_now() + timeout;
    for (;;) {
        apr_uint32_t bell = LOAD(&sl->bell);
        apr_uint64_t cur = LOAD(&sl->word);
        apr_time_t now;

        if (W_STATE(cur) == SLOT_DONE && W_SEQ(cur) == W_SEQ(w)) break;
        now = apr_time_now();
        if (now < deadline) {
            apr_interval_time_t left = deadline - now;
            futex_wait(&sl->bell, bell, left < apr_time_from_msec(100) ? left
                                                                     : apr_time_from_msec(100));
            continue;
        }
        if (W_STATE(cur) == SLOT_FILLED) {
            /* nobody took it: take it back, it was never written; unless a committer that
             * ended had taken it, which may have committed it */
            if (CAS(&sl->word, cur, W_MAKE(SLOT_FREE, W_SEQ(cur), 0))) {
                int taken = (int)LOAD(&sl->taken);
                op->result = taken ? OS_INTAKE_UNKNOWN : OS_INTAKE_UNAVAILABLE;
                apr_cpystrn(op->error, taken ? "the committer ended before answering"
                                             : "timed out waiting for the store",
                            sizeof(op->error));
                return 1;
            }
            continue;
        }
        if (W_STATE(cur) == SLOT_TAKEN) {
            if (margin > 0) {
                /* in the committer's hands: a short while more for its answer */
                deadline = now + margin;
                margin = 0;
                continue;
            }
            /* the committer neither answers nor ends (stopped, a stalled disk, a lock
             * held elsewhere): it may still commit, so the outcome is unknown */
            if (CAS(&sl->word, cur, W_MAKE(SLOT_ABANDONED, W_SEQ(cur), W_PID(cur)))) {
                op->result = OS_INTAKE_UNKNOWN;
                apr_cpystrn(op->error, "the committer did not answer in time",
                            sizeof(op->error));
                return 1;
            }
            continue;
        }
        /* between states (re-taken after a takeover): look again shortly */
        deadline = now + apr_time_from_msec(10);
    }
    op->result = (os_intake_result_e)sl->result;
    op->version = sl->version;
    apr_cpystrn(op->order_id, sl->order_id, sizeof(op->order_id));
    apr_cpystrn(op->delivery_state, sl->delivery_state, sizeof(op->delivery_state));
    apr_cpystrn(op->error, sl->error, sizeof(op->error));
    {
        apr_uint64_t d = LOAD(&sl->word);
        CAS(&sl->word, d, W_MAKE(SLOT_FREE, W_SEQ(d), 0));
    }
    return 1;
}

#else   /* no board: every process commits its own orders */
apr_status_t os_board_create(apr_pool_t *pconf, int hubs) { (void)pconf; (void)hubs; return APR_ENOTIMPL; }
void os_board_child_init(void) {}
int os_board_ready(int hub) { (void)hub; return 0; }
int os_board_lease_try(int hub) { (void)hub; return 0; }
void os_board_lease_release(int hub) { (void)hub; }
int os_board_collect(int hub, apr_pool_t *p, os_board_item_t *items, int max)
{ (void)hub; (void)p; (void)items; (void)max; return 0; }
void os_board_answer(int hub, const os_board_item_t *it) { (void)hub; (void)it; }
void os_board_sweep(int hub) { (void)hub; }
void os_board_wait_work(int hub, apr_interval_time_t t) { (void)hub; (void)t; }
void os_board_wake_committer(int hub) { (void)hub; }
void os_board_jobs_added(int hub) { (void)hub; }
apr_uint32_t os_board_jobs(int hub) { (void)hub; return 0; }
apr_uint64_t os_process_start(apr_uint32_t pid) { (void)pid; return 0; }
int os_process_alive(apr_uint32_t pid, apr_uint64_t start) { (void)pid; (void)start; return 1; }
int os_board_submit(int hub, os_intake_op_t *op, apr_interval_time_t timeout,
                    apr_interval_time_t margin, void (*handed)(void *), void *baton)
{ (void)hub; (void)op; (void)timeout; (void)margin; (void)handed; (void)baton; return 0; }
#endif
