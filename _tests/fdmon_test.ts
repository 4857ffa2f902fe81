// The fd monitors (util/fdmon-poll.c, util/fdmon-epoll.c) against a small
// fake context that plays aio_set_fd_handler's part of the contract.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertGreaterOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { LateEventfdWriter } from "./_harness.ts";
import { AioHandler, ReadyList } from "../fdmon/aio_handler.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import {
  EPOLL_ENABLE_THRESHOLD,
  type FdMon,
  fdmonEpoll,
  type FdMonHost,
  fdmonIoUring,
  type FdMonOps,
  fdmonPoll,
  resolveFdMon,
  supportedFdMons,
} from "../fdmon/mod.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { dup2 } from "../sys/dup.ts";
import { close, eventfd, pipe, read, socketpair, write } from "../sys/fd.ts";
import { O_RDWR, open } from "../sys/open.ts";
import { POLLERR, PollFdArray, POLLHUP, POLLIN, pollNs, POLLOUT } from "../sys/poll.ts";
import { assertNoFdLeak, openFdCount } from "./_fd_leak.ts";

const READ_EVENTS = POLLIN | POLLHUP | POLLERR;
const WRITE_EVENTS = POLLOUT | POLLERR;
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const noop = (): void => {};

/** A fake AioContext: a handler list, an upgrade switch and a GSource fd set. */
class FakeHost implements FdMonHost {
  /** Live handlers, newest first. */
  nodes: AioHandler[] = [];
  allowUpgrade = true;
  disabled = true;
  /** The GSource's polled records. */
  gsource = new Set<GPollFD>();
  /** Every backend handed over through replaceFdMon. */
  replaced: FdMon[] = [];
  mon: FdMon;
  /** How often a backend walked the handler list. */
  walks = 0;

  constructor(ops: FdMonOps) {
    this.mon = ops.create(this);
  }

  liveHandlers(): Iterable<AioHandler> {
    this.walks++;
    return this.nodes.filter((n) => !n.deleted);
  }
  get liveCount(): number {
    return this.nodes.filter((n) => !n.deleted && n.pfd.events !== 0).length;
  }
  canUpgrade(): boolean {
    return this.allowUpgrade;
  }
  replaceFdMon(next: FdMon): void {
    this.replaced.push(next);
    this.mon = next;
  }
  pollDisabled(): boolean {
    return this.disabled;
  }
  gsourceAddPoll(pfd: GPollFD): void {
    assertFalse(this.gsource.has(pfd), "a pfd was added to the GSource twice");
    this.gsource.add(pfd);
  }
  gsourceRemovePoll(pfd: GPollFD): void {
    this.gsource.delete(pfd);
  }

  /** aio_set_fd_handler: a new node every time, old one marked deleted after update. */
  set(fd: number, read: boolean, writeCb = false): AioHandler | null {
    const old = this.nodes.find((n) => n.pfd.fd === fd && !n.deleted) ?? null;
    if (!read && !writeCb) {
      if (old === null) return null;
      old.pfd.events = 0;
      this.mon.update(old, null);
      this.#drop(old);
      return null;
    }
    const events = (read ? READ_EVENTS : 0) | (writeCb ? WRITE_EVENTS : 0);
    const node = new AioHandler(
      fd,
      events,
      read ? noop : null,
      writeCb ? noop : null,
      null,
      null,
      false,
    );
    this.nodes.unshift(node);
    this.mon.update(old, node);
    if (old !== null) this.#drop(old);
    return node;
  }

  #drop(node: AioHandler): void {
    node.pfd.revents = 0;
    node.deleted = true;
    this.nodes.splice(this.nodes.indexOf(node), 1);
  }

  wait(timeoutNs = 0): { n: number; ready: Map<AioHandler, number>; order: AioHandler[] } {
    const list = new ReadyList();
    const n = this.mon.wait(list, timeoutNs);
    return { n, ...drain(list) };
  }
}

function drain(list: ReadyList): { ready: Map<AioHandler, number>; order: AioHandler[] } {
  const ready = new Map<AioHandler, number>();
  const order: AioHandler[] = [];
  for (let node = list.pop(); node !== null; node = list.pop()) {
    assertFalse(ready.has(node), "a node came off the ready list twice");
    ready.set(node, node.pfd.revents);
    order.push(node);
  }
  return { ready, order };
}

/** Collects fds to close at the end of a test. */
class Fds {
  #fds: number[] = [];
  pipe(): [number, number] {
    const p = pipe();
    this.#fds.push(...p);
    return p;
  }
  socketpair(): [number, number] {
    const p = socketpair();
    this.#fds.push(...p);
    return p;
  }
  eventfd(): number {
    const fd = eventfd(0);
    this.#fds.push(fd);
    return fd;
  }
  take(fd: number): number {
    this.#fds.push(fd);
    return fd;
  }
  close(fd: number): void {
    close(fd);
    this.#fds.splice(this.#fds.indexOf(fd), 1);
  }
  [Symbol.dispose](): void {
    for (const fd of this.#fds) close(fd);
    this.#fds.length = 0;
  }
}

/** Runs fn with a fresh host and checks that nothing leaks. */
function withHost(ops: FdMonOps, fn: (host: FakeHost, fds: Fds) => void): () => Promise<void> {
  return () =>
    assertNoFdLeak(() => {
      using fds = new Fds();
      const host = new FakeHost(ops);
      try {
        fn(host, fds);
      } finally {
        host.mon.destroy();
      }
      assertEquals(host.gsource.size, 0, "destroy left records in the GSource");
    });
}

const BACKENDS: FdMonOps[] = [fdmonPoll, fdmonEpoll, fdmonIoUring].filter((ops) => ops.supported());

for (const ops of BACKENDS) {
  const name = `fdmon-${ops.name}`;

  Deno.test(
    `${name}: a zero-timeout wait on idle fds reports nothing`,
    withHost(ops, (host, fds) => {
      for (let i = 0; i < 3; i++) host.set(fds.pipe()[0], true);
      const { n, ready } = host.wait(0);
      assertEquals(n, 0);
      assertEquals(ready.size, 0);
      assertStrictEquals(host.mon.name, ops.name);
    }),
  );

  Deno.test(
    `${name}: a written pipe reports POLLIN on its own node only`,
    withHost(ops, (host, fds) => {
      const pipes = [fds.pipe(), fds.pipe(), fds.pipe()];
      const nodes = pipes.map(([r]) => host.set(r, true)!);
      write(pipes[1][1], ONE);
      const { n, ready } = host.wait(0);
      assertEquals(n, 1);
      assertEquals([...ready.keys()], [nodes[1]]);
      assertEquals(ready.get(nodes[1])! & POLLIN, POLLIN);
      // Level-triggered: still readable on the next wait.
      assertEquals([...host.wait(0).ready.keys()], [nodes[1]]);
    }),
  );

  Deno.test(
    `${name}: a write handler sees POLLOUT`,
    withHost(ops, (host, fds) => {
      const [a] = fds.socketpair();
      const node = host.set(a, false, true)!;
      const { ready } = host.wait(0);
      assertEquals([...ready.keys()], [node]);
      assertEquals(ready.get(node)! & POLLOUT, POLLOUT);
      assertEquals(ready.get(node)! & POLLIN, 0);
    }),
  );

  Deno.test(
    `${name}: a closed pipe writer reports POLLHUP to the reader`,
    withHost(ops, (host, fds) => {
      const [r, w] = fds.pipe();
      const node = host.set(r, true)!;
      assertEquals(host.wait(0).ready.size, 0);
      fds.close(w);
      const { ready } = host.wait(0);
      assertEquals([...ready.keys()], [node]);
      assertEquals(ready.get(node)! & POLLHUP, POLLHUP);
    }),
  );

  Deno.test(
    `${name}: a closed socket peer reports POLLIN and POLLHUP`,
    withHost(ops, (host, fds) => {
      const [a, b] = fds.socketpair();
      const node = host.set(a, true)!;
      fds.close(b);
      const revents = host.wait(0).ready.get(node)!;
      assertEquals(revents & (POLLIN | POLLHUP), POLLIN | POLLHUP);
    }),
  );

  Deno.test(
    `${name}: a pipe writer whose reader closed reports POLLERR`,
    withHost(ops, (host, fds) => {
      const [r, w] = fds.pipe();
      const node = host.set(w, false, true)!;
      fds.close(r);
      const revents = host.wait(0).ready.get(node)!;
      assertEquals(revents & POLLERR, POLLERR);
      // Only poll's four bits come back (no EPOLLRDHUP or the like).
      assertEquals(revents & ~(POLLIN | POLLOUT | POLLHUP | POLLERR), 0);
    }),
  );

  Deno.test(
    `${name}: a replaced node takes over, the old one is never reported`,
    withHost(ops, (host, fds) => {
      const [a, b] = fds.socketpair();
      const first = host.set(a, true)!;
      const second = host.set(a, true)!;
      write(b, ONE);
      let { ready } = host.wait(0);
      assertEquals([...ready.keys()], [second]);
      // From read to write interest on the same fd.
      const third = host.set(a, false, true)!;
      ({ ready } = host.wait(0));
      assertEquals([...ready.keys()], [third]);
      assertEquals(ready.get(third)! & POLLOUT, POLLOUT);
      assertFalse(ready.has(first) || ready.has(second));
      // poll: the live node's record; epoll: its own fd's.
      assertEquals(host.gsource.size, 1);
    }),
  );

  Deno.test(
    `${name}: a removed handler is no longer reported`,
    withHost(ops, (host, fds) => {
      const [r1, w1] = fds.pipe();
      const [r2, w2] = fds.pipe();
      host.set(r1, true);
      const keep = host.set(r2, true)!;
      host.set(r1, false);
      write(w1, ONE);
      write(w2, ONE);
      const { ready } = host.wait(0);
      assertEquals([...ready.keys()], [keep]);
      host.set(r2, false);
      assertEquals(host.wait(0).ready.size, 0);
    }),
  );

  Deno.test(
    `${name}: a timed wait with nothing ready returns 0, not early`,
    withHost(ops, (host, fds) => {
      host.set(fds.pipe()[0], true);
      const timeoutNs = 15_000_000;
      const t0 = clockGettimeNs();
      const { n, ready } = host.wait(timeoutNs);
      const elapsed = clockGettimeNs() - t0;
      assertEquals(n, 0);
      assertEquals(ready.size, 0);
      assertGreaterOrEqual(elapsed, timeoutNs);
    }),
  );

  Deno.test(
    `${name}: a timed wait returns what is ready`,
    withHost(ops, (host, fds) => {
      const [r, w] = fds.pipe();
      const node = host.set(r, true)!;
      write(w, ONE);
      const { n, ready } = host.wait(5_000_000_000);
      assertEquals(n, 1);
      assertEquals([...ready.keys()], [node]);
    }),
  );

  Deno.test(
    `${name}: needWait follows the host's poll_disable_cnt`,
    // io_uring's need_wait looks at its rings instead (tested below).
    { ignore: ops === fdmonIoUring },
    withHost(ops, (host) => {
      host.disabled = true;
      assert(host.mon.needWait());
      host.disabled = false;
      assertFalse(host.mon.needWait());
      assertFalse(host.mon.supportsUserspacePolling);
    }),
  );

  Deno.test(
    `${name}: GSource check and dispatch`,
    withHost(ops, (host, fds) => {
      const [r, w] = fds.pipe();
      const [a] = fds.socketpair();
      const reader = host.set(r, true)!;
      const writer = host.set(a, false, true)!;
      // Play GLib: poll the GSource's records, then check and dispatch.
      const glibPoll = (): void => {
        const recs = [...host.gsource];
        const arr = new PollFdArray();
        for (const p of recs) arr.push(p.fd, p.events);
        pollNs(arr, 0);
        recs.forEach((p, i) => p.revents = arr.revents(i));
      };
      host.mon.gsourcePrepare();
      if (ops === fdmonPoll) {
        assertEquals(new Set([...host.gsource].map((p) => p.fd)), new Set([r, a]));
        // A socket that is only writable matters to its write handler.
        glibPoll();
        assert(host.mon.gsourceCheck());
        writer.pfd.revents = 0;
        assertFalse(host.mon.gsourceCheck());
        // POLLIN on a node without a read handler does not count.
        writer.pfd.revents = POLLIN;
        assertFalse(host.mon.gsourceCheck());
        writer.pfd.revents = 0;
      } else {
        assertEquals(host.gsource.size, 1);
        assertEquals([...host.gsource][0].events, POLLIN);
        glibPoll(); // The writable socket makes the epoll fd readable.
        assert(host.mon.gsourceCheck());
        host.mon.gsourceDispatch(new ReadyList()); // Consumes nothing: level-triggered.
        host.set(a, false); // Leave only the pipe.
        glibPoll();
        assertFalse(host.mon.gsourceCheck());
      }
      write(w, ONE);
      glibPoll();
      assert(host.mon.gsourceCheck());
      const list = new ReadyList();
      host.mon.gsourceDispatch(list);
      const { ready } = drain(list);
      assert(ready.has(reader));
      assertEquals(ready.get(reader)! & POLLIN, POLLIN);
    }),
  );

  Deno.test(`${name}: a destroyed monitor throws BadResource and frees its fds`, async () => {
    await assertNoFdLeak(() => {
      const host = new FakeHost(ops);
      host.mon.destroy();
      host.mon.destroy(); // Idempotent.
      assertThrows(() => host.mon.wait(new ReadyList(), 0), Deno.errors.BadResource);
      assertThrows(() => host.mon.update(null, null), Deno.errors.BadResource);
      assertEquals(host.gsource.size, 0);
    });
  });
}

Deno.test(
  "fdmon-poll: ready handlers pop oldest registration first",
  withHost(fdmonPoll, (host, fds) => {
    const pipes = Array.from({ length: 5 }, () => fds.pipe());
    const nodes = pipes.map(([r]) => host.set(r, true)!);
    for (const [, w] of pipes) write(w, ONE);
    assertEquals(host.wait(0).order, nodes);
    // Re-registering the first one makes it the newest: it now pops last.
    const again = host.set(pipes[0][0], true)!;
    assertEquals(host.wait(0).order, [...nodes.slice(1), again]);
  }),
);

Deno.test(
  "fdmon-poll: steady-state waits reuse the fd array",
  withHost(fdmonPoll, (host, fds) => {
    const [r, w] = fds.pipe();
    const node = host.set(r, true)!;
    host.set(fds.pipe()[0], true);
    host.wait(0);
    const walks = host.walks;
    write(w, ONE);
    for (let i = 0; i < 5; i++) assertEquals([...host.wait(0).ready.keys()], [node]);
    assertEquals(host.walks, walks, "a wait with no handler change rebuilt the array");
    host.set(r, false);
    assertEquals(host.wait(0).ready.size, 0);
    assertEquals(host.walks, walks + 1);
  }),
);

Deno.test(
  "fdmon-poll: update keeps the GSource's records in step",
  withHost(fdmonPoll, (host, fds) => {
    const [r] = fds.pipe();
    const a = host.set(r, true)!;
    assertEquals([...host.gsource], [a.pfd]);
    const b = host.set(r, false, true)!;
    assertEquals([...host.gsource], [b.pfd]);
    host.set(r, false);
    assertEquals(host.gsource.size, 0);
  }),
);

function registerPipes(host: FakeHost, fds: Fds, count: number): [number, number][] {
  const pipes: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const p = fds.pipe();
    host.set(p[0], true);
    pipes.push(p);
  }
  return pipes;
}

Deno.test(
  "fdmon-poll: 64 fds upgrade the context to epoll through replaceFdMon",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonPoll, (host, fds) => {
    const pipes = registerPipes(host, fds, EPOLL_ENABLE_THRESHOLD - 1);
    assertEquals(host.wait(0).n, 0);
    assertEquals(host.replaced.length, 0, "63 fds must not upgrade");
    const [r, w] = fds.pipe();
    const last = host.set(r, true)!;
    write(w, ONE);
    write(pipes[0][1], ONE);
    const first = host.nodes[host.nodes.length - 1];
    // This wait upgrades and is answered by epoll.
    const { ready } = host.wait(0);
    assertEquals(host.replaced.length, 1);
    assertEquals(host.mon.name, "epoll");
    assertEquals(new Set(ready.keys()), new Set([last, first]));
    // Poll's per-node records left the GSource; epoll's one fd replaced them.
    assertEquals(host.gsource.size, 1);
    assertEquals([...host.gsource][0].events, POLLIN);
    // Handler changes now go to epoll, and there is no way back.
    host.set(r, false);
    for (let i = 0; i < 60; i++) host.set(pipes[i][0], false);
    assertEquals(host.wait(0).ready.size, 0);
    assertEquals(host.mon.name, "epoll");
    assertEquals(host.replaced.length, 1);
  }),
);

Deno.test(
  "fdmon-poll: no upgrade while canUpgrade() is false (nested poll)",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonPoll, (host, fds) => {
    host.allowUpgrade = false;
    const pipes = registerPipes(host, fds, EPOLL_ENABLE_THRESHOLD + 2);
    write(pipes[3][1], ONE);
    let { ready } = host.wait(0);
    assertEquals(host.replaced.length, 0);
    assertEquals(host.mon.name, "poll");
    assertEquals(ready.size, 1);
    host.allowUpgrade = true;
    ({ ready } = host.wait(0));
    assertEquals(host.mon.name, "epoll");
    assertEquals(ready.size, 1);
  }),
);

Deno.test(
  "fdmon-poll: an upgrade that epoll refuses keeps polling, and is not retried",
  { ignore: !fdmonEpoll.supported() },
  async () => {
    const path = Deno.makeTempFileSync();
    try {
      await withHost(fdmonPoll, (host, fds) => {
        // A regular file cannot go into epoll (EPERM).
        const file = host.set(fds.take(open(path, O_RDWR)), true)!;
        registerPipes(host, fds, EPOLL_ENABLE_THRESHOLD);
        const before = openFdCount();
        const { ready } = host.wait(0);
        assertEquals(host.replaced.length, 0);
        assertEquals(host.mon.name, "poll");
        assertEquals(openFdCount(), before, "the failed epoll fd was not closed");
        assertEquals([...ready.keys()], [file]); // A regular file always polls ready.
        assertEquals(host.gsource.size, EPOLL_ENABLE_THRESHOLD + 1);
        host.wait(0);
        assertEquals(host.replaced.length, 0);
      })();
    } finally {
      Deno.removeSync(path);
    }
  },
);

Deno.test(
  "fdmon-epoll: a regular file makes the context fall back to poll for good",
  { ignore: !fdmonEpoll.supported() },
  async () => {
    const path = Deno.makeTempFileSync();
    try {
      await withHost(fdmonEpoll, (host, fds) => {
        const [r, w] = fds.pipe();
        const pipeNode = host.set(r, true)!;
        const epollRecord = [...host.gsource][0];
        const fileNode = host.set(fds.take(open(path, O_RDWR)), true)!;
        assertEquals(host.replaced.length, 1);
        assertEquals(host.mon.name, "poll");
        // The epoll fd left the GSource; every handler's record came in.
        assertFalse(host.gsource.has(epollRecord));
        assertEquals(new Set(host.gsource), new Set([pipeNode.pfd, fileNode.pfd]));
        write(w, ONE);
        assertEquals(new Set(host.wait(0).ready.keys()), new Set([pipeNode, fileNode]));
        // The fallback never upgrades again, past 64 fds or not.
        registerPipes(host, fds, EPOLL_ENABLE_THRESHOLD);
        host.wait(0);
        assertEquals(host.mon.name, "poll");
        assertEquals(host.replaced.length, 1);
      })();
    } finally {
      Deno.removeSync(path);
    }
  },
);

Deno.test(
  "fdmon-epoll: a failed replacement falls back without the old node's record",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonEpoll, (host, fds) => {
    const [r] = fds.pipe();
    const [r2, w2] = fds.pipe();
    const old = host.set(r, true)!;
    // Put another pipe on fd r: the kernel drops the old file from epoll, so
    // the replacement's EPOLL_CTL_MOD fails with ENOENT.
    dup2(r2, r);
    const next = host.set(r, true)!;
    assertEquals(host.mon.name, "poll");
    assertEquals([...host.gsource], [next.pfd]);
    write(w2, ONE);
    const { ready } = host.wait(0);
    assertEquals([...ready.keys()], [next]);
    assertFalse(ready.has(old));
  }),
);

Deno.test(
  "fdmon-epoll: 1000 fds with one ready report just that one",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonEpoll, (host, fds) => {
    const nodes: AioHandler[] = [];
    for (let i = 0; i < 1000; i++) nodes.push(host.set(fds.eventfd(), true)!);
    assertEquals(host.wait(0).n, 0);
    write(nodes[617].pfd.fd, ONE);
    const { n, ready } = host.wait(0);
    assertEquals(n, 1);
    assertEquals([...ready.keys()], [nodes[617]]);
    assertEquals(ready.get(nodes[617]), POLLIN);
  }),
);

Deno.test(
  "fdmon-epoll: one wait returns at most 128 events, the rest come next",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonEpoll, (host, fds) => {
    const nodes = new Set<AioHandler>();
    for (let i = 0; i < 200; i++) {
      const fd = fds.eventfd();
      write(fd, ONE);
      nodes.add(host.set(fd, true)!);
    }
    const seen = new Set<AioHandler>();
    let { n, ready } = host.wait(0);
    assertEquals(n, 128);
    for (const node of ready.keys()) seen.add(node);
    ({ n, ready } = host.wait(0));
    assertEquals(n, 128);
    for (const node of ready.keys()) seen.add(node);
    assertEquals(seen, nodes);
  }),
);

Deno.test(
  "fdmon-epoll: freed cookies are reused, a replacement keeps its node's cookie",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonEpoll, (host, fds) => {
    const [a, b] = [fds.eventfd(), fds.eventfd()];
    const na = host.set(a, true)!;
    const nb = host.set(b, true)!;
    assertEquals([na.fdmonSlot, nb.fdmonSlot], [0, 1]);
    const na2 = host.set(a, false, true)!;
    assertEquals([na.fdmonSlot, na2.fdmonSlot], [-1, 0]);
    host.set(a, false);
    assertEquals(na2.fdmonSlot, -1);
    for (let i = 0; i < 100; i++) {
      const node = host.set(a, true)!;
      assertEquals(node.fdmonSlot, 0);
      host.set(a, false);
    }
  }),
);

Deno.test(
  "fdmon-epoll: create holds the context's existing handlers",
  { ignore: !fdmonEpoll.supported() },
  withHost(fdmonPoll, (host, fds) => {
    const [r, w] = fds.pipe();
    const node = host.set(r, true)!;
    host.mon.destroy();
    host.mon = fdmonEpoll.create(host);
    write(w, ONE);
    assertEquals([...host.wait(0).ready.keys()], [node]);
  }),
);

Deno.test("fdmon-epoll: destroy closes the epoll fd", { ignore: !fdmonEpoll.supported() }, () => {
  const before = openFdCount();
  const host = new FakeHost(fdmonEpoll);
  assertEquals(openFdCount(), before + 1);
  host.mon.destroy();
  assertEquals(openFdCount(), before);
});

// What auto picks: io_uring where the kernel allows it, else poll.
const AUTO_OPS = fdmonIoUring.supported() ? fdmonIoUring : fdmonPoll;

Deno.test("resolveFdMon: explicit choices, auto, and errors", () => {
  assertStrictEquals(resolveFdMon("poll"), fdmonPoll);
  assertStrictEquals(resolveFdMon("auto"), AUTO_OPS);
  if (fdmonEpoll.supported()) assertStrictEquals(resolveFdMon("epoll"), fdmonEpoll);
  else assertThrows(() => resolveFdMon("epoll"), Deno.errors.NotSupported);
  if (fdmonIoUring.supported()) assertStrictEquals(resolveFdMon("io_uring"), fdmonIoUring);
  else assertThrows(() => resolveFdMon("io_uring"), Deno.errors.NotSupported, "io_uring");
  assertThrows(() => resolveFdMon("kqueue" as "poll"), TypeError, "kqueue");
  assertThrows(() => resolveFdMon(7 as unknown as "poll"), TypeError);
});

Deno.test("resolveFdMon: AIOLOOP_FDMON decides when there is no explicit choice", () => {
  const saved = Deno.env.get("AIOLOOP_FDMON");
  try {
    Deno.env.delete("AIOLOOP_FDMON");
    assertStrictEquals(resolveFdMon(), AUTO_OPS);
    Deno.env.set("AIOLOOP_FDMON", "");
    assertStrictEquals(resolveFdMon(), AUTO_OPS);
    Deno.env.set("AIOLOOP_FDMON", "auto");
    assertStrictEquals(resolveFdMon(), AUTO_OPS);
    if (fdmonEpoll.supported()) {
      Deno.env.set("AIOLOOP_FDMON", "epoll");
      assertStrictEquals(resolveFdMon(), fdmonEpoll);
      // An explicit choice wins over the environment.
      assertStrictEquals(resolveFdMon("poll"), fdmonPoll);
    }
    Deno.env.set("AIOLOOP_FDMON", "bogus");
    assertThrows(() => resolveFdMon(), TypeError, "AIOLOOP_FDMON");
    Deno.env.set("AIOLOOP_FDMON", "io_uring");
    if (fdmonIoUring.supported()) assertStrictEquals(resolveFdMon(), fdmonIoUring);
    else assertThrows(() => resolveFdMon(), Deno.errors.NotSupported);
  } finally {
    if (saved === undefined) Deno.env.delete("AIOLOOP_FDMON");
    else Deno.env.set("AIOLOOP_FDMON", saved);
  }
});

Deno.test("supportedFdMons: poll always, epoll and io_uring where the kernel has them", () => {
  const names = supportedFdMons();
  assertEquals(names[0], "poll");
  assertEquals(names.includes("epoll"), fdmonEpoll.supported());
  assertEquals(names.includes("io_uring"), fdmonIoUring.supported());
  const count = names.length;
  names.push("poll");
  assertEquals(supportedFdMons().length, count, "the cached list leaked out");
});

// ---------------------------------------------------------------------------
// fdmon-io_uring specifics (util/fdmon-io_uring.c): one-shot POLL_ADDs
// re-armed after each completion, deferred removal, the rings' need_wait.

const URING = fdmonIoUring.supported();

/** Mappings of io_uring rings in this process (they must go with destroy). */
function ringMappings(): number {
  return Deno.readTextFileSync("/proc/self/maps").split("\n").filter((l) => l.includes("io_uring"))
    .length;
}

/** Empties an eventfd (its counter makes it readable). */
function drainEventfd(fd: number): void {
  read(fd, new Uint8Array(8));
}

Deno.test(
  "fdmon-io_uring: needWait is CQ non-empty, SQEs pending or changes queued",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    assert(host.mon.supportsUserspacePolling);
    // Nothing registered: no reason to enter the kernel, whatever the host says.
    host.disabled = true;
    assertFalse(host.mon.needWait());
    const fd = fds.eventfd();
    const node = host.set(fd, true)!;
    assert(host.mon.needWait(), "a queued handler change must be submitted");
    assertEquals(host.wait(0).n, 0);
    assertFalse(host.mon.needWait(), "an armed, idle fd needs no wait");
    write(fd, ONE);
    assert(host.mon.needWait(), "the completion is visible in the CQ without a syscall");
    assertEquals([...host.wait(0).ready.keys()], [node]);
    assert(host.mon.needWait(), "the re-arm is waiting in the SQ");
    drainEventfd(fd);
    assertEquals(host.wait(0).n, 0);
    assertFalse(host.mon.needWait());
  }),
);

Deno.test(
  "fdmon-io_uring: a completed poll is re-armed, so readiness stays level-triggered",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const fd = fds.eventfd();
    const node = host.set(fd, true)!;
    write(fd, ONE);
    for (let i = 0; i < 5; i++) {
      const { n, ready } = host.wait(0);
      assertEquals(n, 1);
      assertEquals([...ready.keys()], [node]);
      assertEquals(ready.get(node), POLLIN);
    }
    drainEventfd(fd);
    assertEquals(host.wait(0).ready.size, 0);
    assertEquals(host.wait(0).ready.size, 0);
    write(fd, ONE);
    assertEquals([...host.wait(0).ready.keys()], [node]);
  }),
);

Deno.test(
  "fdmon-io_uring: a handler removed while its POLL_ADD is in flight never fires afterwards",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const [fa, fb, fc] = [fds.eventfd(), fds.eventfd(), fds.eventfd()];
    const a = host.set(fa, true)!;
    const b = host.set(fb, true)!;
    const c = host.set(fc, true)!;
    host.wait(0);
    assertEquals([a.fdmonSlot, b.fdmonSlot, c.fdmonSlot], [0, 1, 2]);
    // a: removed while armed and idle, then its fd fires.
    host.set(fa, false);
    write(fa, ONE);
    // b: its fd fired (the CQE is in the ring) before the removal.
    write(fb, ONE);
    host.set(fb, false);
    write(fc, ONE);
    for (let i = 0; i < 3; i++) {
      const { ready } = host.wait(i === 2 ? 2_000_000 : 0);
      assertFalse(ready.has(a) || ready.has(b), "a removed handler fired");
      assert(ready.has(c));
    }
    // Both slots went back once their last POLL_ADD results were seen.
    assertEquals([a.fdmonSlot, b.fdmonSlot], [-1, -1]);
    drainEventfd(fc);
    // The freed slots serve new handlers, which must not be cancelled by
    // anything still addressed to the old ones.
    const a2 = host.set(fa, true)!;
    const b2 = host.set(fb, true)!;
    const { ready } = host.wait(0);
    assertEquals(new Set(ready.keys()), new Set([a2, b2]));
    assertEquals(new Set([a2.fdmonSlot, b2.fdmonSlot]), new Set([0, 1]));
  }),
);

Deno.test(
  "fdmon-io_uring: a removal whose CQE the GSource reaps first cancels nothing later",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const fa = fds.eventfd();
    const old = host.set(fa, true)!;
    host.mon.gsourcePrepare();
    write(fa, ONE);
    // aio_dispatch runs BHs before gsource_dispatch: a BH removes the
    // handler while its completion already sits in the CQ.
    host.set(fa, false);
    assert(host.mon.gsourceCheck());
    const list = new ReadyList();
    host.mon.gsourceDispatch(list);
    assert(list.empty, "the removed handler was reported");
    assertEquals(old.fdmonSlot, -1);
    // A new handler takes the slot before the next fill: no POLL_REMOVE for
    // the old node may reach it.
    const fresh = host.set(fa, true)!;
    host.mon.gsourcePrepare();
    assertEquals(fresh.fdmonSlot, 0);
    assertEquals([...host.wait(0).ready.keys()], [fresh]);
  }),
);

Deno.test(
  "fdmon-io_uring: a handler added and removed before any wait costs no SQE",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const [r, w] = fds.pipe();
    const first = host.set(r, true)!;
    const second = host.set(r, false, true)!; // replaced before the fill
    host.set(r, false);
    write(w, ONE);
    assertEquals(host.wait(0).ready.size, 0);
    assertEquals([first.fdmonSlot, second.fdmonSlot], [-1, -1]);
    assertFalse(host.mon.needWait());
  }),
);

Deno.test(
  "fdmon-io_uring: a timed wait is not cut short by its own POLL_REMOVE results",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const [fa, fb] = [fds.eventfd(), fds.eventfd()];
    host.set(fa, true);
    host.set(fb, true);
    host.wait(0);
    host.set(fa, false); // its cancellation completes during the next wait
    const timeoutNs = 15_000_000;
    const t0 = clockGettimeNs();
    const { n, ready } = host.wait(timeoutNs);
    assertGreaterOrEqual(clockGettimeNs() - t0, timeoutNs);
    assertEquals(n, 0);
    assertEquals(ready.size, 0);
  }),
);

Deno.test(
  "fdmon-io_uring: a poll-only handler (no events) is not watched",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const [a, b] = fds.socketpair();
    const node = new AioHandler(a, 0, null, null, () => true, noop, false);
    host.nodes.unshift(node);
    host.mon.update(null, node);
    fds.close(b); // HUP would complete a POLL_ADD even with an empty mask
    assertEquals(host.wait(0).ready.size, 0);
    assertEquals(node.fdmonSlot, -1);
    assertFalse(host.mon.needWait());
  }),
);

Deno.test(
  "fdmon-io_uring: a closed fd's poll fails once and is not re-armed",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const [r, w] = pipe(); // closed by hand below
    try {
      const node = host.set(r, true)!;
      close(r); // before the POLL_ADD is submitted: it fails with EBADF
      assertEquals(host.wait(0).ready.size, 0);
      assertFalse(host.mon.needWait(), "a failed poll must not spin");
      assert(node.fdmonSlot >= 0);
      host.set(r, false); // unarmed: the slot goes back at once
      assertEquals(node.fdmonSlot, -1);
      const fd = fds.eventfd();
      const next = host.set(fd, true)!;
      write(fd, ONE);
      assertEquals([...host.wait(0).ready.keys()], [next]);
    } finally {
      close(w);
    }
  }),
);

Deno.test(
  "fdmon-io_uring: 1000 fds with one ready report just that one",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const nodes: AioHandler[] = [];
    for (let i = 0; i < 1000; i++) nodes.push(host.set(fds.eventfd(), true)!);
    // 1000 POLL_ADDs go through a 128-entry SQ ring in batches.
    assertEquals(host.wait(0).n, 0);
    write(nodes[617].pfd.fd, ONE);
    const { n, ready } = host.wait(0);
    assertEquals(n, 1);
    assertEquals([...ready.keys()], [nodes[617]]);
    assertEquals(ready.get(nodes[617]), POLLIN);
  }),
);

Deno.test(
  "fdmon-io_uring: more completions than the CQ ring holds are all delivered",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const nodes = new Set<AioHandler>();
    for (let i = 0; i < 600; i++) {
      const fd = fds.eventfd();
      write(fd, ONE);
      nodes.add(host.set(fd, true)!);
    }
    // The CQ ring has 256 entries; the rest wait in the kernel's overflow list.
    const seen = new Set<AioHandler>();
    for (let i = 0; i < 10 && seen.size < nodes.size; i++) {
      for (const node of host.wait(0).ready.keys()) seen.add(node);
    }
    assertEquals(seen.size, nodes.size);
    // And every one is re-armed: the next waits report them all again.
    const again = new Set<AioHandler>();
    for (let i = 0; i < 10 && again.size < nodes.size; i++) {
      for (const node of host.wait(0).ready.keys()) again.add(node);
    }
    assertEquals(again.size, nodes.size);
  }),
);

Deno.test(
  "fdmon-io_uring: slots are reused across handler churn",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    const fd = fds.eventfd();
    write(fd, ONE);
    for (let i = 0; i < 200; i++) {
      const node = host.set(fd, i % 2 === 0, i % 2 === 1)!;
      assertEquals([...host.wait(0).ready.keys()], [node]);
      assert(node.fdmonSlot >= 0 && node.fdmonSlot < 3, `slot ${node.fdmonSlot} in round ${i}`);
    }
  }),
);

Deno.test(
  "fdmon-io_uring: the GSource polls the ring fd; check also sees CQEs posted after that poll",
  { ignore: !URING },
  withHost(fdmonIoUring, (host, fds) => {
    assertEquals(host.gsource.size, 1);
    const record = [...host.gsource][0];
    assertEquals(record.events, POLLIN);
    const fd = fds.eventfd();
    const node = host.set(fd, true)!;
    host.mon.gsourcePrepare(); // submits the POLL_ADD
    assertFalse(host.mon.needWait());
    assertFalse(host.mon.gsourceCheck());
    const arr = new PollFdArray();
    arr.push(record.fd, record.events);
    assertEquals(pollNs(arr, 0), 0);
    write(fd, ONE);
    assertEquals(pollNs(arr, 0), 1, "the ring fd is readable with a CQE waiting");
    assert(host.mon.gsourceCheck(), "check sees the CQ even with revents 0");
    record.revents = arr.revents(0);
    assert(host.mon.gsourceCheck());
    const list = new ReadyList();
    host.mon.gsourceDispatch(list);
    assertEquals([...drain(list).ready.keys()], [node]);
  }),
);

Deno.test(
  "fdmon-io_uring: create watches the context's existing handlers",
  { ignore: !URING },
  withHost(fdmonPoll, (host, fds) => {
    const fd = fds.eventfd();
    const node = host.set(fd, true)!;
    host.mon.destroy();
    host.mon = fdmonIoUring.create(host);
    write(fd, ONE);
    assertEquals([...host.wait(0).ready.keys()], [node]);
  }),
);

Deno.test(
  "fdmon-io_uring: destroy with polls in flight closes the ring fd and unmaps the rings",
  { ignore: !URING },
  () => {
    using fds = new Fds();
    const fdsBefore = openFdCount();
    const mapsBefore = ringMappings();
    const host = new FakeHost(fdmonIoUring);
    assertEquals(openFdCount(), fdsBefore + 1);
    assertGreater(ringMappings(), mapsBefore);
    const fd = fds.eventfd();
    host.set(fd, true);
    host.set(fds.eventfd(), true);
    host.wait(0);
    write(fd, ONE);
    host.wait(0); // a re-arm waits in the SQ
    host.set(fd, false); // a removal waits on the submit list
    host.mon.destroy();
    assertEquals(openFdCount(), fdsBefore + 2);
    assertEquals(ringMappings(), mapsBefore);
    assertEquals(host.gsource.size, 0);
    assertThrows(() => host.mon.needWait(), Deno.errors.BadResource);
    assertThrows(() => host.mon.gsourcePrepare(), Deno.errors.BadResource);
    assertThrows(() => host.mon.gsourceCheck(), Deno.errors.BadResource);
  },
);

Deno.test(
  "fdmon-io_uring: a blocked wait is woken by a write from another thread",
  { ignore: !URING },
  async () => {
    using writer = new LateEventfdWriter();
    {
      // The worker's own runtime fds come and go on their own schedule:
      // count ours only once it is up, and before it is told to go.
      await writer.ready;
      const fdsBefore = openFdCount();
      const fds = new Fds();
      const host = new FakeHost(fdmonIoUring);
      try {
        const fd = fds.eventfd();
        const node = host.set(fd, true)!;
        host.set(fds.eventfd(), true);
        host.wait(0);
        const done = writer.write(fd);
        // Blocks this isolate until the worker's write completes the poll
        // (a 5 s bound, so a lost wake-up fails instead of hanging).
        const { ready } = host.wait(5_000_000_000);
        assertEquals([...ready.keys()], [node]);
        await done;
      } finally {
        host.mon.destroy();
        fds[Symbol.dispose]();
      }
      assertEquals(openFdCount(), fdsBefore);
    }
  },
);
