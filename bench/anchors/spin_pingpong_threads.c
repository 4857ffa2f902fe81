/* The floor of a cross-thread round trip: two pthreads that never sleep,
 * ping-ponging a sequence number through one shared word (the main thread
 * stores an odd value, the peer answers with the next even one). What
 * adaptive polling on both sides approaches when both threads have a CPU. */
#include "anchor.h"
#include <sched.h>

static _Atomic long word;

static void *peer(void *arg)
{
    (void)arg;
    long seen = 0;
    for (;;) {
        long v;
        while ((v = __atomic_load_n(&word, __ATOMIC_ACQUIRE)) == seen || (v & 1) == 0) {}
        seen = v + 1;
        __atomic_store_n(&word, seen, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        long next = __atomic_load_n(&word, __ATOMIC_RELAXED) + 1;
        __atomic_store_n(&word, next, __ATOMIC_RELEASE);
        while (__atomic_load_n(&word, __ATOMIC_ACQUIRE) != next + 1) {}
    }
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, peer, NULL) != 0) anchor_die("pthread_create");
    anchor_pin_pair(t);
    anchor_p50("c.spin_pingpong_threads", 2000, loop);
    anchor_run("c.spin_pingpong_threads", 1, loop);
    return 0;
}
