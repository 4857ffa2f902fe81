/* g_main_context_iteration(ctx, FALSE) on a context with no sources. */
#include "anchor.h"
#include <glib.h>

static GMainContext *ctx;

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) g_main_context_iteration(ctx, FALSE);
}

int main(void)
{
    ctx = g_main_context_new();
    anchor_run("glib.empty_iteration", 0, loop);
    g_main_context_unref(ctx);
    return 0;
}
