/* mod_ordersync_board.h: the board, through which a request of any process hands its order
 * to the hub's one committer and waits for the answer (Linux: process-shared futexes and a
 * robust mutex in anonymous shared memory made in post_config). It knows nothing of the
 * database: the writer commits what collect() gives it and calls answer().
 *
 * Each hub has a lease (a robust mutex: the kernel frees it when its holder dies) and
 * OS_BOARD_SLOTS slots. A slot's whole state is one 64-bit word, changed only by
 * compare-and-swap with acquire/release ordering:
 *     bits 0-3  state      bits 4-31  fill sequence      bits 32-63  pid of the holder
 * The sequence grows with each fill, so a step taken on an old fill never lands on a new one.
 *
 *   from       to         who            when
 *   FREE       FILLING    request        it claims the slot (sequence + 1, holder = itself)
 *   FILLING    FILLED     request        the order is copied in (release)
 *   FILLING    FREE       committer      sweep: the filling process is dead (the same word
 *                                        seen a second apart)
 *   FILLED     TAKEN      committer      collect (holder = committer)
 *   FILLED     FREE       request        its store timeout passed: never written (503), or,
 *                                        if a committer had taken it before, unknown
 *   TAKEN      DONE       committer      answer: the outcome is in the slot (holder = request)
 *   TAKEN      ABANDONED  request        timeout + margin with the committer alive but silent:
 *                                        the outcome is unknown (503 store-outcome-unknown)
 *   TAKEN      FILLED     new committer  takeover: the lease holder died before answering;
 *                                        collected again (the intake id makes it a replay)
 *   ABANDONED  FREE       committer      answer finds it abandoned, or sweep (taker dead)
 *   DONE       FREE       request        it read the answer; or sweep (request's process dead)
 *
 * Liveness of a pid is its /proc entry with the same start time, not a zombie, so neither a
 * reused pid nor a dead child still unreaped counts as alive. */
#ifndef MOD_ORDERSYNC_BOARD_H
#define MOD_ORDERSYNC_BOARD_H

#include "mod_ordersync_store.h"

#define OS_BOARD_SLOTS 128
#define OS_BOARD_SLOT_BYTES (32 * 1024)

/* What a request hands over (strings, copied into the slot) and gets back. */
typedef struct {
    os_intake_op_t *op;
    int slot;                     /* index, for answer() */
    apr_uint64_t word;            /* the TAKEN word it was collected with */
} os_board_item_t;

/* post_config: one board for `hubs` hubs of this generation of children. */
apr_status_t os_board_create(apr_pool_t *pconf, int hubs);
/* child_init: this process's pid and start time. */
void os_board_child_init(void);
int os_board_ready(int hub);

/* The writer: try for the lease (1 when held now; orphaned slots are re-taken then). */
int os_board_lease_try(int hub);
void os_board_lease_release(int hub);
/* The committer: collects up to max filled slots, starting where the last collect
 * stopped (so no slot starves), into items[] with ops made in p. Returns how many. */
int os_board_collect(int hub, apr_pool_t *p, os_board_item_t *items, int max);
/* The committer: writes the outcome of a collected item back and wakes its request. */
void os_board_answer(int hub, const os_board_item_t *it);
/* The committer: frees slots of dead processes (at most once a second). */
void os_board_sweep(int hub);
/* The committer: waits up to t for new work (woken by publish). */
void os_board_wait_work(int hub, apr_interval_time_t t);
void os_board_wake_committer(int hub);
/* A writer other than the committer committed delivery work (the dispatcher runs in the
 * committer's process): it says so here and wakes the committer, which passes it on. */
void os_board_jobs_added(int hub);
apr_uint32_t os_board_jobs(int hub);

/* A request: hands op over and waits for the answer, the store timeout for the committer to
 * take it and `margin` more for it to answer. Returns 0 when it could not hand it over (no
 * committer, the order too big for a slot, no free slot): the caller commits it otherwise. */
int os_board_submit(int hub, os_intake_op_t *op, apr_interval_time_t timeout,
                    apr_interval_time_t margin, void (*handed)(void *), void *baton);

/* A process's start time (0 when it does not exist), and whether the process with that pid
 * and start time still runs (not a zombie): a reused pid is another process. */
apr_uint64_t os_process_start(apr_uint32_t pid);
int os_process_alive(apr_uint32_t pid, apr_uint64_t start);

#endif
