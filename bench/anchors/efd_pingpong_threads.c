/* A cross-thread round trip with both threads asleep in poll(): the main
 * thread rings the peer's eventfd and sleeps on its own; the peer, woken,
 * reads its eventfd and rings back. What two QEMU threads without adaptive
 * polling pay per request and reply (the aioloop IOThread round trips are
 * compared with it). */
#include "anchor.h"
#include <poll.h>
#include <sys/eventfd.h>

static int to_peer, to_main;

static void sleep_on(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    uint64_t v;
    while (poll(&p, 1, -1) < 1) {}
    if (read(fd, &v, sizeof v) != sizeof v) anchor_die("read");
}

static void ring(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) anchor_die("write");
}

static void *peer(void *arg)
{
    (void)arg;
    for (;;) {
        sleep_on(to_peer);
        ring(to_main);
    }
    return NULL;
}

static void loop(long iters)
{
    for (long i = 0; i < iters; i++) {
        ring(to_peer);
        sleep_on(to_main);
    }
}

int main(void)
{
    to_peer = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    to_main = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (to_peer < 0 || to_main < 0) anchor_die("eventfd");
    pthread_t t;
    if (pthread_create(&t, NULL, peer, NULL) != 0) anchor_die("pthread_create");
    anchor_pin_pair(t);
    /* The peer is a second thread already: the .mt line adds a third. */
    anchor_p50("c.efd_pingpong_threads", 2000, loop);
    anchor_run("c.efd_pingpong_threads", 1, loop);
    return 0;
}
