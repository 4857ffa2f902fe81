/* g_main_context_wakeup() then a blocking g_main_context_iteration(TRUE)
 * that returns on that wakeup alone: GLib's match for aio_notify() followed
 * by aio_poll(ctx, true). GLib always writes its wakeup eventfd here. */
#include "anchor.h"
#include <glib.h>

static GMainContext *ctx;

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        g_main_context_wakeup(ctx);
        g_main_context_iteration(ctx, TRUE);
    }
}

int main(void)
{
    ctx = g_main_context_new();
    g_main_context_acquire(ctx);
    anchor_run("glib.wakeup_iteration", 0, loop);
    g_main_context_release(ctx);
    g_main_context_unref(ctx);
    return 0;
}
