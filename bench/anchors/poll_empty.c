/* poll(NULL, 0, 0): the cost of entering the kernel once, which an empty
 * aio_poll(false) avoids altogether. */
#include "anchor.h"
#include <poll.h>

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        if (poll(NULL, 0, 0) < 0) anchor_die("poll");
    }
}

int main(void)
{
    anchor_run("c.poll_empty", 0, loop);
    return 0;
}
