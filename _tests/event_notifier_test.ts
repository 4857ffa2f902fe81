// EventNotifier (util/event_notifier-posix.c): eventfd and pipe backings.
import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertNotEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { EventNotifier } from "../aio/event_notifier.ts";
import { SysError } from "../sys/errno.ts";
import { close, eventfd, isOpenFd, pipe, write } from "../sys/fd.ts";
import { PollFdArray, POLLIN, pollNs } from "../sys/poll.ts";
import { assertNoFdLeak, openFdCount } from "./_fd_leak.ts";

/** Whether the notifier's read side polls readable right now. */
function readable(n: EventNotifier): boolean {
  const fds = new PollFdArray(1);
  fds.push(n.fd, POLLIN);
  return pollNs(fds, 0) === 1 && (fds.revents(0) & POLLIN) !== 0;
}

const BACKINGS = [
  { name: "eventfd", forcePipe: false },
  { name: "pipe", forcePipe: true },
] as const;

for (const { name, forcePipe } of BACKINGS) {
  const make = (active = false) => EventNotifier.create(active, { forcePipe });

  Deno.test(`EventNotifier (${name}): an inactive notifier is not readable and clears to false`, async () => {
    await assertNoFdLeak(() => {
      using n = make();
      assertFalse(n.closed);
      assert(n.fd >= 0);
      if (forcePipe) assertNotEquals(n.fd, n.wfd);
      else assertStrictEquals(n.fd, n.wfd);
      assertFalse(readable(n));
      assertFalse(n.testAndClear());
    });
  });

  Deno.test(`EventNotifier (${name}): an active notifier starts set`, async () => {
    await assertNoFdLeak(() => {
      using n = make(true);
      assert(readable(n));
      assert(n.testAndClear());
      assertFalse(readable(n));
      assertFalse(n.testAndClear());
    });
  });

  Deno.test(`EventNotifier (${name}): set is level-triggered until testAndClear`, async () => {
    await assertNoFdLeak(() => {
      using n = make();
      n.set();
      // Polling does not consume it: readable on every poll until cleared.
      for (let i = 0; i < 3; i++) assert(readable(n), `poll ${i} should see the notifier set`);
      assert(n.testAndClear());
      assertFalse(readable(n));
      n.set();
      assert(readable(n));
      assert(n.testAndClear());
    });
  });

  Deno.test(`EventNotifier (${name}): many sets are drained by one testAndClear`, async () => {
    await assertNoFdLeak(() => {
      using n = make();
      // 10000 pipe writes of 8 bytes overflow a 64 KiB pipe: EAGAIN is success.
      for (let i = 0; i < 10_000; i++) n.set();
      assert(readable(n));
      assert(n.testAndClear());
      assertFalse(readable(n));
      assertFalse(n.testAndClear());
    });
  });

  Deno.test(`EventNotifier (${name}): a raw 8-byte write to wfd rings it`, async () => {
    await assertNoFdLeak(() => {
      using n = make();
      assertEquals(write(n.wfd, new Uint8Array(new BigUint64Array([1n]).buffer)), 8);
      assert(readable(n));
      assert(n.testAndClear());
    });
  });

  Deno.test(`EventNotifier (${name}): close is idempotent and closes every fd`, () => {
    const before = openFdCount();
    const n = make(true);
    const { fd, wfd } = n;
    n.close();
    assert(n.closed);
    assertFalse(isOpenFd(fd));
    assertFalse(isOpenFd(wfd));
    assertStrictEquals(n.fd, -1);
    assertStrictEquals(n.wfd, -1);
    n.close();
    n[Symbol.dispose]();
    assertEquals(openFdCount(), before);
  });

  Deno.test(`EventNotifier (${name}): set after close throws BadResource, testAndClear is false`, () => {
    const n = make();
    n.close();
    assertThrows(() => n.set(), Deno.errors.BadResource, "closed");
    assertFalse(n.testAndClear());
  });
}

Deno.test("EventNotifier.create: the default backing is an eventfd", () => {
  using n = EventNotifier.create();
  assertStrictEquals(n.fd, n.wfd);
});

Deno.test("EventNotifier.fromFd: adopts an eventfd and closes it on close", () => {
  const before = openFdCount();
  const fd = eventfd(0);
  const n = EventNotifier.fromFd(fd);
  assertStrictEquals(n.fd, fd);
  assertStrictEquals(n.wfd, fd);
  assertFalse(n.testAndClear());
  n.set();
  assert(readable(n));
  assert(n.testAndClear());
  n.close();
  assertFalse(isOpenFd(fd));
  assertEquals(openFdCount(), before);
});

Deno.test("EventNotifier.fromFd: an eventfd's initial counter counts as set", async () => {
  await assertNoFdLeak(() => {
    using n = EventNotifier.fromFd(eventfd(3));
    assert(n.testAndClear());
    assertFalse(n.testAndClear());
  });
});

Deno.test("EventNotifier.fromFd: bad fds get typed errors", () => {
  assertThrows(() => EventNotifier.fromFd(1.5), TypeError);
  assertThrows(() => EventNotifier.fromFd(Number.NaN), TypeError);
  assertThrows(() => EventNotifier.fromFd(-1), RangeError);
  const [r, w] = pipe();
  close(r);
  close(w);
  const err = assertThrows(() => EventNotifier.fromFd(r), SysError);
  assertInstanceOf(err, SysError);
  assertEquals(err.code, "EBADF");
});

Deno.test("EventNotifier: an fd closed behind its back fails loudly, and close stays consistent", () => {
  const before = openFdCount();
  const n = EventNotifier.create();
  close(n.fd);
  const err = assertThrows(() => n.set(), SysError);
  assertEquals((err as SysError).code, "EBADF");
  assertThrows(() => n.close(), SysError);
  assert(n.closed);
  n.close(); // Already closed: nothing more to do.
  assertEquals(openFdCount(), before);
});

Deno.test("EventNotifier: 1000 create/close cycles leak no fd", async () => {
  await assertNoFdLeak(() => {
    for (let i = 0; i < 1000; i++) {
      const n = EventNotifier.create(i % 2 === 0, { forcePipe: i % 3 === 0 });
      if (i % 2 === 0) assert(n.testAndClear());
      n.close();
    }
  });
});
