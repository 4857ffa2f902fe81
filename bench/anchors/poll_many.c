/* poll() over N idle eventfds plus one ready one, timeout 0 (argv[1] = N,
 * default 10000): the cost that makes fdmon-poll hand over to epoll. */
#include "anchor.h"
#include <poll.h>
#include <sys/eventfd.h>

static struct pollfd *pfd;
static long n;

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        if (poll(pfd, (nfds_t)(n + 1), 0) != 1) anchor_die("poll");
    }
}

int main(int argc, char **argv)
{
    n = anchor_arg(argc, argv, 10000);
    anchor_need_fds(n + 64);
    pfd = calloc((size_t)n + 1, sizeof(*pfd));
    if (pfd == NULL) anchor_die("calloc");
    for (long i = 0; i <= n; i++) {
        pfd[i].fd = eventfd(i == n / 2 ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (pfd[i].fd < 0) anchor_die("eventfd");
        pfd[i].events = POLLIN | POLLHUP | POLLERR;
    }
    anchor_run("c.poll_many", n, loop);
    return 0;
}
