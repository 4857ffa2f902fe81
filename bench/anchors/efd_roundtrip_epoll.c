/* The same round trip on epoll: set the eventfd, epoll_wait() (two fds
 * registered, infinite timeout, returns at once), read it clear. */
#include "anchor.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int ep, efd;

static void loop(long iters)
{
    uint64_t v = 1;
    struct epoll_event evs[128];
    for (long i = 0; i < iters; i++) {
        if (write(efd, &v, 8) != 8) anchor_die("write");
        if (epoll_wait(ep, evs, 128, -1) != 1) anchor_die("epoll_wait");
        if (read(efd, &v, 8) != 8) anchor_die("read");
    }
}

int main(void)
{
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) anchor_die("epoll_create1");
    for (int i = 0; i < 2; i++) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) anchor_die("eventfd");
        struct epoll_event ev = { .events = EPOLLIN | EPOLLHUP | EPOLLERR, .data.fd = fd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) anchor_die("epoll_ctl");
        efd = fd;
    }
    anchor_run("c.efd_roundtrip_epoll", 2, loop);
    return 0;
}
