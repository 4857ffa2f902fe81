/* poll() of one eventfd that is ready (count > 0), timeout 0. */
#include "anchor.h"
#include <poll.h>
#include <sys/eventfd.h>

static struct pollfd pfd;

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        if (poll(&pfd, 1, 0) != 1) anchor_die("poll");
    }
}

int main(void)
{
    pfd.fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pfd.fd < 0) anchor_die("eventfd");
    pfd.events = POLLIN;
    anchor_run("c.poll_1ready", 1, loop);
    return 0;
}
