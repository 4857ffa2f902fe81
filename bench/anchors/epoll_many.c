/* epoll_wait() with N idle eventfds plus one ready one registered,
 * level-triggered, timeout 0 (argv[1] = N, default 10000). */
#include "anchor.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int ep;

static void loop(long iters)
{
    struct epoll_event evs[128];
    for (long i = 0; i < iters; i++) {
        if (epoll_wait(ep, evs, 128, 0) != 1) anchor_die("epoll_wait");
    }
}

int main(int argc, char **argv)
{
    long n = anchor_arg(argc, argv, 10000);
    anchor_need_fds(n + 64);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) anchor_die("epoll_create1");
    for (long i = 0; i <= n; i++) {
        int fd = eventfd(i == n / 2 ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) anchor_die("eventfd");
        struct epoll_event ev = { .events = EPOLLIN | EPOLLHUP | EPOLLERR, .data.fd = fd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) anchor_die("epoll_ctl");
    }
    anchor_run("c.epoll_many", n, loop);
    return 0;
}
