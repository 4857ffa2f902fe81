/* g_idle_add() of a one-shot callback then g_main_context_iteration(FALSE):
 * GLib's match for aio_bh_schedule_oneshot() plus a non-blocking poll. The
 * idle source is attached to a private context, as an AioContext is. */
#include "anchor.h"
#include <glib.h>

static GMainContext *ctx;

static gboolean once(gpointer data)
{
    (*(long *)data)++;
    return G_SOURCE_REMOVE;
}

static long calls;

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        GSource *s = g_idle_source_new();
        g_source_set_callback(s, once, &calls, NULL);
        g_source_attach(s, ctx);
        g_source_unref(s);
        g_main_context_iteration(ctx, FALSE);
    }
}

int main(void)
{
    ctx = g_main_context_new();
    anchor_run("glib.idle_oneshot", 0, loop);
    g_main_context_unref(ctx);
    return calls > 0 ? 0 : 1;
}
