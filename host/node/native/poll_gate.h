/*
 * The busy poll's gate: whether the next window opens, from how the last windows ended.
 *
 * A busy-poll window (after a received batch, the datapath polls its socket; after a forwarded
 * request, the relay polls for the answer) saves a wake-up when what it waits for comes in time,
 * and is a window of CPU thrown away when it does not (sparse traffic, one-way streams, a peer that
 * answers much later). The gate keeps the hit rate of the last windows as an EWMA (weight 1/8, in
 * 1/POLL_GATE_ONE): while it is at least POLL_GATE_MIN every window opens; under it only every
 * POLL_GATE_PROBE-th does, to notice when answers come back in time again (one hit lifts a closed
 * gate back over the threshold). From open, POLL_GATE_CLOSE_MISSES misses in a row close it.
 *
 * One home for the gate: the native datapath (datapath.c, one gate per socket) and the relay's
 * answer and request polls (relay.c, one per session and kind) use it; callers count what they count.
 */
#ifndef SOFTROCE_POLL_GATE_H
#define SOFTROCE_POLL_GATE_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#define POLL_GATE_ONE 256u
#define POLL_GATE_MIN 96u
#define POLL_GATE_PROBE 16u
/* from POLL_GATE_ONE, the misses in a row that take the rate under POLL_GATE_MIN (224, 196, 171, 149,
 * 130, 113, 98, 85); one probe's hit lifts 85 to 106 */
#define POLL_GATE_CLOSE_MISSES 8u

typedef struct {
  uint32_t rate;  /* the windows' hit rate, an EWMA in 1/POLL_GATE_ONE */
  uint32_t skips; /* windows held back since the last probe */
} poll_gate;

/* A new gate is open: the first windows find out whether answers come in time. */
static inline void poll_gate_init(poll_gate *g) {
  g->rate = POLL_GATE_ONE;
  g->skips = 0;
}

/* A window ended: with what it waited for (hit) or with its time run out. */
static inline void poll_gate_note(poll_gate *g, int hit) {
  g->rate = (g->rate * 7 + (hit ? POLL_GATE_ONE : 0)) / 8;
}

/*
 * A window's wait ended with what it waited for. A hit only when the window had looked in vain (and
 * yielded) at least once before (`waited`): the gate (NULL: a fixed window, no gate) is told. Found at
 * the window's first look instead, it came while the caller was busy with what opened the window (the
 * datapath's batch in JS, the relay's turn): a thread asleep in epoll would not have slept either, so
 * the window saved nothing and says nothing of whether waiting pays — "ready", neither a hit nor a
 * miss, and the gate is not told (counted as a hit, such finds held a gate open under load while the
 * windows that did wait missed). Returns 1 for a hit, 0 for ready; the caller counts which.
 */
static inline int poll_gate_found(poll_gate *g, int waited) {
  if (!waited) return 0;
  if (g) poll_gate_note(g, 1);
  return 1;
}

/* Whether the gate is open (the hit rate at least POLL_GATE_MIN), without counting a chance as poll_gate_open does. */
static inline int poll_gate_is_open(const poll_gate *g) {
  return g->rate >= POLL_GATE_MIN;
}

/* Whether the next window opens: always while the hit rate is at least POLL_GATE_MIN, else every
 * POLL_GATE_PROBE-th (a probe). 0: held back (the caller counts it as gated). */
static inline int poll_gate_open(poll_gate *g) {
  if (poll_gate_is_open(g)) return 1;
  if (++g->skips < POLL_GATE_PROBE) return 0;
  g->skips = 0;
  return 1;
}

/* The windows' clock: µs on CLOCK_MONOTONIC. */
static inline uint64_t poll_now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* A fault injection's sleep (tests): the whole `us`, whatever signal cuts a sleep short (a test's
 * premise: the thread was away this long). */
static inline void poll_sleep(uint32_t us) {
  struct timespec d = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
  while (nanosleep(&d, &d) != 0 && errno == EINTR) {
  }
}

/* The yield between two polls of a window: this CPU to any other runnable thread on it (on a busy
 * machine, typically the one whose datagram the window waits for). `slow_us` (fault injection, tests:
 * slowYield) sleeps that long more, as a yield beside CPU hogs can last a scheduler tick. */
static inline void poll_yield(uint32_t slow_us) {
  sched_yield();
  if (slow_us) poll_sleep(slow_us);
}

/*
 * poll_yield, then whether it came back late: `window_us` or more after `since_us` (poll_now_us when
 * the caller last polled). A yield that lasts a whole window means threads that do not sleep wanted
 * this CPU (CPU hogs, a build), and whatever arrived meanwhile waited for the scheduler's tick (ms),
 * where a thread asleep in epoll is woken at once: the caller ends the window as a miss (its gate
 * then closes under such load) and opens no more in this wake-up. Without the rule, beside two CPU
 * hogs, the datapath's poll measured 12.5x a raw dgram round trip and the relay's 2.9x the round trip
 * without it (docs/PERFORMANCE.md).
 */
static inline int poll_yield_late(uint32_t slow_us, uint64_t since_us, uint64_t window_us) {
  poll_yield(slow_us);
  return poll_now_us() - since_us >= window_us;
}

#endif
