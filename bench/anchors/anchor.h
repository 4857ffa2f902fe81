/*
 * The timing harness shared by aioloop's C anchor programs: each program
 * defines one operation loop, and this header calibrates it to about
 * ANCHOR_TARGET_NS per repetition, runs ANCHOR_REPS repetitions and prints
 * one JSON line with the median, min and max ns per operation. bench/run.ts
 * builds and runs the programs and reads those lines.
 *
 * Every loop is measured twice: in a single-threaded process, then again
 * with one idle extra thread. The second figure is the comparable one: a
 * Deno process always has several threads, and so does QEMU, and once the
 * fd table is shared the kernel takes a reference on every fd a syscall
 * touches (poll() over 10 000 fds gets about 1.7 times slower).
 */
#ifndef AIOLOOP_ANCHOR_H
#define AIOLOOP_ANCHOR_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define ANCHOR_REPS 7
#define ANCHOR_TARGET_NS 40000000ull

static inline uint64_t anchor_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void anchor_die(const char *what)
{
    perror(what);
    exit(1);
}

/* Room for `want` fds: raise the soft limit toward the hard one. */
static inline void anchor_need_fds(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) anchor_die("getrlimit");
    if ((long)rl.rlim_cur >= want) return;
    rl.rlim_cur = (rlim_t)want <= rl.rlim_max ? (rlim_t)want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) anchor_die("setrlimit");
    if ((long)rl.rlim_cur < want) {
        fprintf(stderr, "fd limit %ld is below the %ld wanted\n", (long)rl.rlim_cur, want);
        exit(2);
    }
}

/* Count from argv[1], or `def`. */
static inline long anchor_arg(int argc, char **argv, long def)
{
    return argc > 1 ? strtol(argv[1], NULL, 10) : def;
}

static inline int anchor_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline void anchor_measure(const char *name, const char *suffix, long size,
                                  void (*loop)(long iters))
{
    long iters = 1;
    for (;;) {
        uint64_t t0 = anchor_now_ns();
        loop(iters);
        uint64_t dt = anchor_now_ns() - t0;
        if (dt >= ANCHOR_TARGET_NS / 8) {
            iters = (long)((double)iters * ANCHOR_TARGET_NS / (double)dt) + 1;
            break;
        }
        iters *= 4;
    }
    double per[ANCHOR_REPS];
    for (int r = 0; r < ANCHOR_REPS; r++) {
        uint64_t t0 = anchor_now_ns();
        loop(iters);
        per[r] = (double)(anchor_now_ns() - t0) / (double)iters;
    }
    qsort(per, ANCHOR_REPS, sizeof(double), anchor_cmp);
    printf("{\"anchor\":\"%s%s\",\"size\":%ld,\"ns\":%.2f,\"min\":%.2f,\"max\":%.2f,"
           "\"iters\":%ld,\"reps\":%d}\n",
           name, suffix, size, per[ANCHOR_REPS / 2], per[0], per[ANCHOR_REPS - 1], iters,
           ANCHOR_REPS);
    fflush(stdout);
}

/*
 * With AIOLOOP_PIN set (bench/iothread_bench.ts --pin), the calling thread
 * goes to CPU 0 and `peer` to CPU 1, as the bench pins its two threads.
 */
static inline void anchor_pin_pair(pthread_t peer)
{
    if (getenv("AIOLOOP_PIN") == NULL) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) anchor_die("setaffinity");
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    if (pthread_setaffinity_np(peer, sizeof set, &set) != 0) anchor_die("setaffinity");
}

/*
 * Times `n` single operations one by one and prints `name` + ".p50": the
 * median (ns), with min and max. For operations whose average a few long
 * stalls of a busy machine would dominate (cross-thread round trips).
 */
static inline void anchor_p50(const char *name, long n, void (*loop)(long iters))
{
    double *per = malloc(sizeof(double) * (size_t)n);
    if (per == NULL) anchor_die("malloc");
    loop(n / 10 + 1); /* warm-up */
    for (long i = 0; i < n; i++) {
        uint64_t t0 = anchor_now_ns();
        loop(1);
        per[i] = (double)(anchor_now_ns() - t0);
    }
    qsort(per, (size_t)n, sizeof(double), anchor_cmp);
    printf("{\"anchor\":\"%s.p50\",\"size\":1,\"ns\":%.2f,\"min\":%.2f,\"max\":%.2f,"
           "\"iters\":%ld,\"reps\":1}\n",
           name, per[n / 2], per[0], per[n - 1], n);
    fflush(stdout);
    free(per);
}

static inline void *anchor_idle_thread(void *arg)
{
    (void)arg;
    for (;;) pause();
    return NULL;
}

/*
 * Measures `loop` single-threaded (printed as `name`), then with an idle
 * second thread (printed as `name.mt`). Call it once, last: the thread
 * stays until the process exits.
 */
static inline void anchor_run(const char *name, long size, void (*loop)(long iters))
{
    anchor_measure(name, "", size, loop);
    pthread_t t;
    if (pthread_create(&t, NULL, anchor_idle_thread, NULL) != 0) anchor_die("pthread_create");
    anchor_measure(name, ".mt", size, loop);
}

#endif
