/* The eventfd round trip of one event loop iteration on poll(): set the
 * eventfd, poll() two fds (an idle "notifier" and the set one) with an
 * infinite timeout, which returns at once, then read it clear. */
#include "anchor.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct pollfd pfd[2];

static void loop(long iters)
{
    uint64_t v = 1;
    for (long i = 0; i < iters; i++) {
        if (write(pfd[1].fd, &v, 8) != 8) anchor_die("write");
        if (poll(pfd, 2, -1) != 1) anchor_die("poll");
        if (read(pfd[1].fd, &v, 8) != 8) anchor_die("read");
    }
}

int main(void)
{
    for (int i = 0; i < 2; i++) {
        pfd[i].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (pfd[i].fd < 0) anchor_die("eventfd");
        pfd[i].events = POLLIN;
    }
    anchor_run("c.efd_roundtrip_poll", 2, loop);
    return 0;
}
