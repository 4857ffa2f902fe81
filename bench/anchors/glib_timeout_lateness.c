/* How late GLib runs a 1 ms timeout: g_timeout_add(1, ...) on the default
 * context, then blocking g_main_context_iteration() calls until it fires.
 * Lateness = fire time - (arm time + 1 ms), both read from CLOCK_MONOTONIC
 * (QEMU's REALTIME clock). The timer slack is set explicitly, since a
 * child inherits its parent thread's: argv[2] ns, default 50000 (the
 * kernel's default, what a plain GLib program runs with); QEMU sets 1.
 *
 * Unlike the other anchors this one reports a distribution, not ns per
 * operation: "ns" is the median lateness, plus "mean" and "p99" fields.
 * argv[1]: the number of samples (default 300); argv[3]: the interval in
 * ms (default 1); argv[4] "raw": print the samples (ns, one JSON array)
 * instead. The anchor name gets ".slack1" when the slack is 1 ns. */
#include "anchor.h"
#include <glib.h>
#include <sys/prctl.h>

static uint64_t fired_at;

static gboolean on_timeout(gpointer data)
{
    (void)data;
    fired_at = anchor_now_ns();
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    long n = anchor_arg(argc, argv, 300);
    if (n < 1) n = 1;
    long slack = argc > 2 ? strtol(argv[2], NULL, 10) : 50000;
    if (slack < 1) slack = 1;
    if (prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0) < 0) anchor_die("prctl");
    long interval = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
    if (interval < 1) interval = 1;
    double *late = malloc(sizeof(double) * (size_t)n);
    if (late == NULL) anchor_die("malloc");
    GMainContext *ctx = g_main_context_default();
    /* Warm up: the first iterations fault pages in. */
    for (long i = -20; i < n; i++) {
        fired_at = 0;
        uint64_t t0 = anchor_now_ns();
        g_timeout_add((guint)interval, on_timeout, NULL);
        while (fired_at == 0) g_main_context_iteration(ctx, TRUE);
        if (i >= 0) late[i] = (double)(fired_at - t0) - 1e6 * (double)interval;
    }
    if (argc > 4 && strcmp(argv[4], "raw") == 0) {
        putchar('[');
        for (long i = 0; i < n; i++) printf(i ? ",%.0f" : "%.0f", late[i]);
        puts("]");
        free(late);
        return 0;
    }
    double sum = 0;
    for (long i = 0; i < n; i++) sum += late[i];
    qsort(late, (size_t)n, sizeof(double), anchor_cmp);
    long p99 = (long)((double)(n - 1) * 0.99);
    printf("{\"anchor\":\"glib.timeout_lateness%s\",\"size\":0,\"ns\":%.0f,\"min\":%.0f,"
           "\"max\":%.0f,\"iters\":%ld,\"reps\":1,\"mean\":%.0f,\"p99\":%.0f}\n",
           slack == 1 ? ".slack1" : "", late[n / 2], late[0], late[n - 1], n,
           sum / (double)n, late[p99]);
    free(late);
    return 0;
}
