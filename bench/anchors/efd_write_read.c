/* An 8-byte write then read on a non-blocking eventfd: the two syscalls of
 * event_notifier_set() + event_notifier_test_and_clear(). */
#include "anchor.h"
#include <sys/eventfd.h>
#include <unistd.h>

static int efd;

static void loop(long iters)
{
    uint64_t v = 1;
    for (long i = 0; i < iters; i++) {
        if (write(efd, &v, 8) != 8) anchor_die("write");
        if (read(efd, &v, 8) != 8) anchor_die("read");
    }
}

int main(void)
{
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) anchor_die("eventfd");
    anchor_run("c.efd_write_read", 1, loop);
    return 0;
}
