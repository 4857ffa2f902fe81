/* GLib's closest match to qemu_bh_schedule() on an existing BH plus one
 * non-blocking iteration: a persistent GSource made ready with
 * g_source_set_ready_time(src, 0), dispatched by
 * g_main_context_iteration(ctx, FALSE); its dispatch disarms it again. */
#include "anchor.h"
#include <glib.h>

static GMainContext *ctx;
static GSource *src;
static long calls;

static gboolean dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    g_source_set_ready_time(s, -1);
    calls++;
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs funcs = { NULL, NULL, dispatch, NULL, NULL, NULL };

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        g_source_set_ready_time(src, 0);
        g_main_context_iteration(ctx, FALSE);
    }
}

int main(void)
{
    ctx = g_main_context_new();
    src = g_source_new(&funcs, sizeof(GSource));
    g_source_set_ready_time(src, -1);
    g_source_attach(src, ctx);
    anchor_run("glib.source_ready", 0, loop);
    if (calls == 0) {
        fprintf(stderr, "the source never dispatched\n");
        return 1;
    }
    g_source_destroy(src);
    g_source_unref(src);
    g_main_context_unref(ctx);
    return 0;
}
