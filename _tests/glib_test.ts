// The GLib main-loop core (glib/): GMainContext, GSource, GMainLoop and the
// timeout / idle / unix fd sources, against GLib's gmain.c semantics.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  G_IO_HUP,
  G_IO_IN,
  G_IO_OUT,
  G_PRIORITY_DEFAULT,
  G_PRIORITY_DEFAULT_IDLE,
  G_PRIORITY_HIGH,
  G_SOURCE_CONTINUE,
  G_SOURCE_REMOVE,
  getMonotonicTime,
  GMainContext,
  GMainLoop,
  type GPollFD,
  GSource,
  type GSourceFdTag,
  type GSourceFunc,
  idleAdd,
  idleSourceNew,
  sourceRemove,
  timeoutAdd,
  timeoutAddSeconds,
  timeoutSourceNew,
  timeoutSourceNewSeconds,
  unixFdAdd,
  unixFdSourceNew,
} from "../glib/mod.ts";
import { clockGettimeNs, close, pipe, PollFdArray, read, write } from "../sys/mod.ts";
import { libc } from "../sys/_libc.ts";

// Deno's sanitizers do not see FFI fds: count them (as _tests/_fd_leak.ts).
function openFdCount(): number {
  let n = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
  return n;
}

function drain(ctx: GMainContext, max = 1000): number {
  let n = 0;
  while (ctx.iteration(false)) if (++n > max) throw new Error("context never drains");
  return n;
}

function idle(ctx: GMainContext, fn: GSourceFunc, priority = G_PRIORITY_DEFAULT_IDLE): GSource {
  const s = idleSourceNew();
  s.setPriority(priority);
  s.setCallback(fn);
  s.attach(ctx);
  s.unref();
  return s;
}

const byte = new Uint8Array([1]);
const buf = new Uint8Array(64);

Deno.test("GMainContext: a ready high-priority source starves lower ones in that iteration", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  // Attached least urgent first: the order must come from the priorities.
  idle(ctx, () => (log.push("idle"), G_SOURCE_REMOVE));
  const def = new GSource({ dispatch: (_s, cb) => cb!() });
  def.setReadyTime(0);
  def.setCallback(() => (log.push("default"), G_SOURCE_REMOVE));
  def.attach(ctx);
  def.unref();
  let hi = 0;
  idle(ctx, () => (log.push("high"), ++hi < 3), G_PRIORITY_HIGH);

  assert(ctx.iteration(false));
  assertEquals(log, ["high"]);
  assert(ctx.iteration(false));
  assert(ctx.iteration(false));
  assertEquals(log, ["high", "high", "high"]);
  assert(ctx.iteration(false));
  assertEquals(log, ["high", "high", "high", "default"]);
  assert(ctx.iteration(false));
  assertEquals(log, ["high", "high", "high", "default", "idle"]);
  assertFalse(ctx.iteration(false));
  ctx.destroy();
});

Deno.test("GMainContext: ready sources of the same priority all run in one iteration, in attach order", () => {
  const ctx = new GMainContext();
  const log: number[] = [];
  for (let i = 0; i < 4; i++) idle(ctx, () => (log.push(i), G_SOURCE_REMOVE));
  assert(ctx.iteration(false));
  assertEquals(log, [0, 1, 2, 3]);
  assertFalse(ctx.iteration(false));
  ctx.destroy();
});

Deno.test("GMainContext: the idle source runs only when nothing higher is ready", () => {
  const [r, w] = pipe();
  const ctx = new GMainContext();
  const log: string[] = [];
  idle(ctx, () => (log.push("idle"), G_SOURCE_CONTINUE));
  const fdSrc = unixFdSourceNew(r, G_IO_IN);
  fdSrc.setCallback(() => (log.push("fd"), G_SOURCE_CONTINUE));
  fdSrc.attach(ctx);

  assert(ctx.iteration(false));
  assertEquals(log, ["idle"]);
  write(w, byte);
  assert(ctx.iteration(false));
  assert(ctx.iteration(false)); // level-triggered: still readable
  assertEquals(log, ["idle", "fd", "fd"]);
  read(r, buf);
  assert(ctx.iteration(false));
  assertEquals(log, ["idle", "fd", "fd", "idle"]);
  fdSrc.unref();
  ctx.destroy();
  close(r);
  close(w);
});

Deno.test("GMainContext: a non-recursive source is not re-dispatched from a nested iteration", () => {
  for (const canRecurse of [false, true]) {
    const ctx = new GMainContext();
    let calls = 0;
    let nestedResult: boolean | null = null;
    let callsSeenAfterNested = 0;
    const s = idleSourceNew();
    s.setCanRecurse(canRecurse);
    s.setCallback(() => {
      calls++;
      if (calls === 1) {
        nestedResult = ctx.iteration(false);
        callsSeenAfterNested = calls;
      }
      return G_SOURCE_CONTINUE;
    });
    s.attach(ctx);
    assert(ctx.iteration(false));
    if (canRecurse) {
      assertStrictEquals(nestedResult, true);
      assertEquals(callsSeenAfterNested, 2);
    } else {
      assertStrictEquals(nestedResult, false);
      assertEquals(callsSeenAfterNested, 1);
    }
    // Unblocked again after its dispatch.
    assert(ctx.iteration(false));
    assertEquals(calls, canRecurse ? 3 : 2);
    s.unref();
    ctx.destroy();
  }
});

Deno.test("GMainContext: a dispatching non-recursive source's fds are not polled by a nested iteration", () => {
  const [r, w] = pipe();
  for (const canRecurse of [false, true]) {
    const ctx = new GMainContext();
    let polledInside: boolean | null = null;
    const s = unixFdSourceNew(r, G_IO_IN);
    s.setCanRecurse(canRecurse);
    s.setCallback(() => {
      const fds: GPollFD[] = [];
      const { priority } = ctx.prepare();
      const { count } = ctx.query(priority, fds);
      polledInside = fds.slice(0, count).some((p) => p.fd === r);
      ctx.check(priority, fds, count);
      return G_SOURCE_REMOVE;
    });
    s.attach(ctx);
    s.unref();
    write(w, byte);
    assert(ctx.iteration(false));
    assertStrictEquals(polledInside, canRecurse);
    read(r, buf);
    ctx.destroy();
  }
  close(r);
  close(w);
});

Deno.test("GMainContext: a source destroyed inside its own dispatch is finalized once, after dispatch returns", () => {
  const ctx = new GMainContext();
  let finalized = 0;
  let finalizedDuringDispatch = -1;
  let dispatched = 0;
  const s = new GSource({
    prepare: () => true,
    dispatch(src) {
      dispatched++;
      src.destroy();
      src.destroy(); // idempotent
      finalizedDuringDispatch = finalized;
      return G_SOURCE_REMOVE; // destroying twice over is harmless
    },
    finalize() {
      finalized++;
    },
  });
  s.attach(ctx);
  s.unref();
  assert(ctx.iteration(false));
  assertEquals(dispatched, 1);
  assertEquals(finalizedDuringDispatch, 0);
  assertEquals(finalized, 1);
  assert(s.isDestroyed());
  assertFalse(ctx.iteration(false));
  assertEquals(finalized, 1);
  ctx.destroy();
  assertEquals(finalized, 1);
});

Deno.test("GMainContext: a source destroyed by another source's dispatch is skipped and finalized once", () => {
  const ctx = new GMainContext();
  let bRuns = 0;
  let bFinalized = 0;
  const b = new GSource({
    prepare: () => true,
    dispatch: () => (bRuns++, G_SOURCE_CONTINUE),
    finalize: () => void bFinalized++,
  });
  const a = new GSource({
    prepare: () => true,
    dispatch: () => {
      b.destroy();
      assertEquals(bFinalized, 0); // the pending dispatch still holds it
      return G_SOURCE_REMOVE;
    },
  });
  a.attach(ctx);
  b.attach(ctx);
  a.unref();
  b.unref();
  assert(ctx.iteration(false));
  assertEquals(bRuns, 0);
  assertEquals(bFinalized, 1);
  assertFalse(ctx.iteration(false));
  ctx.destroy();
});

Deno.test("GMainContext: ready time fires once it passes; -1 disables", () => {
  const ctx = new GMainContext();
  let n = 0;
  let seenAt = 0;
  const s = new GSource({ dispatch: () => (n++, seenAt = getMonotonicTime(), G_SOURCE_CONTINUE) });
  s.attach(ctx);
  assertEquals(s.getReadyTime(), -1);
  assertFalse(ctx.iteration(false));

  const ready = getMonotonicTime() + 30_000;
  s.setReadyTime(ready);
  assertEquals(s.getReadyTime(), ready);
  const early = ctx.iteration(false);
  if (getMonotonicTime() < ready) assertFalse(early);
  while (n === 0) ctx.iteration(true);
  assertGreaterOrEqual(seenAt, ready);
  // Dispatch does not reset the ready time.
  assert(ctx.iteration(false));
  assertEquals(n, 2);
  s.setReadyTime(-1);
  assertEquals(s.getReadyTime(), -1);
  assertFalse(ctx.iteration(false));
  s.setReadyTime(0);
  assert(ctx.iteration(false));
  assertEquals(n, 3);
  s.unref();
  ctx.destroy();
});

Deno.test("GMainContext: timeouts fire, never early, and re-arm by their interval", () => {
  const ctx = new GMainContext();
  const t0 = clockGettimeNs();
  const fires: number[] = [];
  const s = timeoutSourceNew(25);
  s.setCallback(() => (fires.push(clockGettimeNs()), fires.length < 3));
  s.attach(ctx);
  s.unref();
  while (fires.length < 3) ctx.iteration(true);
  // Each expiry is at least one interval after the previous one.
  for (let k = 0; k < 3; k++) assertGreaterOrEqual(fires[k] - t0, 25e6 * (k + 1));
  assert(s.isDestroyed());

  let zero = false;
  const z = timeoutSourceNew(0);
  z.setCallback(() => (zero = true, false));
  z.attach(ctx);
  z.unref();
  assert(ctx.iteration(false));
  assert(zero);
  ctx.destroy();
});

Deno.test("GMainContext: a seconds timeout lands on a whole second", () => {
  const s = timeoutSourceNewSeconds(2);
  const rt = s.getReadyTime();
  assertEquals(rt % 1_000_000, 0);
  const now = getMonotonicTime();
  assert(rt > now + 1_000_000 && rt <= now + 3_000_000);
  s.unref();
});

Deno.test("GMainContext: idle sources, REMOVE vs CONTINUE", () => {
  const ctx = new GMainContext();
  let once = 0;
  let many = 0;
  const a = idle(ctx, () => (once++, G_SOURCE_REMOVE));
  const b = idle(ctx, () => ++many < 5);
  const idA = a.getId();
  assertStrictEquals(ctx.findSourceById(idA), a);
  assertEquals(drain(ctx), 5);
  assertEquals(once, 1);
  assertEquals(many, 5);
  assert(a.isDestroyed() && b.isDestroyed());
  assertStrictEquals(ctx.findSourceById(idA), null);
  ctx.destroy();
});

Deno.test("GMainContext: two contexts in one isolate are independent", () => {
  const a = new GMainContext();
  const b = new GMainContext();
  let ranA = 0;
  let ranB = 0;
  const sa = idleSourceNew();
  sa.setCallback(() => (ranA++, G_SOURCE_CONTINUE));
  const sb = timeoutSourceNew(5);
  sb.setCallback(() => (ranB++, G_SOURCE_REMOVE));
  sa.attach(a);
  sb.attach(b);
  assertStrictEquals(sa.getContext(), a);
  assertStrictEquals(sb.getContext(), b);
  while (ranB === 0) b.iteration(true); // never runs a's always-ready idle
  assertEquals(ranA, 0);
  assertFalse(b.iteration(false));
  assert(a.iteration(false));
  assertEquals(ranA, 1);
  assertEquals(ranB, 1);
  b.destroy();
  assert(a.iteration(false));
  sa.unref();
  sb.unref();
  a.destroy();
});

Deno.test("GMainContext: invoke runs now on the owner or thread default, else from an idle source", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  ctx.invoke(() => (log.push("queued"), false));
  assertEquals(log.length, 0);
  assert(ctx.iteration(false));
  assertEquals(log, ["queued"]);

  // As thread default it runs at once, repeating while it returns true.
  ctx.pushThreadDefault();
  let n = 0;
  ctx.invoke(() => ++n < 3);
  assertEquals(n, 3);
  ctx.popThreadDefault();

  // Inside the context's own dispatch the context is owned: at once.
  idle(ctx, () => {
    ctx.invoke(() => (log.push("inner"), false));
    log.push("after");
    return false;
  });
  assert(ctx.iteration(false));
  assertEquals(log, ["queued", "inner", "after"]);

  // Queued with a priority: runs before a ready default-priority source.
  const def = new GSource({ prepare: () => true, dispatch: () => (log.push("default"), false) });
  def.attach(ctx);
  def.unref();
  ctx.invoke(() => (log.push("high"), false), G_PRIORITY_HIGH);
  drain(ctx);
  assertEquals(log.slice(3), ["high", "default"]);
  ctx.destroy();
});

Deno.test("GMainLoop: quit from a callback and nested run", () => {
  const ctx = new GMainContext();
  const outer = new GMainLoop(ctx);
  const inner = new GMainLoop(ctx);
  const log: string[] = [];
  let depthInInner = -1;
  const t = timeoutSourceNew(2);
  t.setCallback(() => {
    depthInInner = GMainContext.depth();
    log.push("timeout");
    inner.quit();
    return G_SOURCE_REMOVE;
  });
  // The idle source is not recursive, so the inner loop must find the timeout.
  idle(ctx, () => {
    log.push("idle");
    t.attach(ctx);
    t.unref();
    inner.run();
    log.push("inner returned");
    assert(outer.isRunning());
    assertFalse(inner.isRunning());
    outer.quit();
    return G_SOURCE_REMOVE;
  });
  outer.run();
  assertFalse(outer.isRunning());
  assertEquals(log, ["idle", "timeout", "inner returned"]);
  assertEquals(depthInInner, 2);
  assertEquals(GMainContext.depth(), 0);
  assertFalse(ctx.isOwner());

  // quit() from a custom source's dispatch.
  const q = new GSource({ prepare: () => true, dispatch: () => (outer.quit(), G_SOURCE_REMOVE) });
  q.attach(ctx);
  q.unref();
  outer.run();
  assertFalse(outer.isRunning());
  assertStrictEquals(outer.getContext(), ctx);
  outer.unref();
  inner.unref();
  ctx.destroy();
});

Deno.test("GMainContext: unix fd sources on a real pipe (readable, then HUP)", () => {
  const [r, w] = pipe();
  const ctx = new GMainContext();
  const seen: number[] = [];
  const s = unixFdSourceNew(r, G_IO_IN);
  s.setCallback((fd, cond) => {
    assertEquals(fd, r);
    seen.push(cond);
    while (read(fd, buf) > 0);
    return (cond & G_IO_HUP) === 0;
  });
  s.attach(ctx);
  s.unref();
  assertFalse(ctx.iteration(false));
  write(w, byte);
  assert(ctx.iteration(true));
  assertEquals(seen, [G_IO_IN]);
  assertFalse(ctx.iteration(false)); // drained
  close(w);
  assert(ctx.iteration(true));
  assert((seen[1] & G_IO_HUP) !== 0);
  assert(s.isDestroyed());

  // Write readiness on the other direction of a fresh pipe.
  const [r2, w2] = pipe();
  let out = 0;
  const o = unixFdSourceNew(w2, G_IO_OUT);
  o.setCallback((_fd, cond) => (out = cond, false));
  o.attach(ctx);
  o.unref();
  assert(ctx.iteration(false));
  assertEquals(out & G_IO_OUT, G_IO_OUT);
  ctx.destroy();
  close(r);
  close(r2);
  close(w2);
});

Deno.test("GMainContext: modifyUnixFd, removeUnixFd and queryUnixFd on a custom source", () => {
  const [r, w] = pipe();
  const ctx = new GMainContext();
  let seen = -1;
  const s: GSource = new GSource({
    dispatch: (src) => (seen = src.queryUnixFd(tag), G_SOURCE_CONTINUE),
  });
  const tag: GSourceFdTag = s.addUnixFd(r, 0); // no events asked
  s.attach(ctx);
  write(w, byte);
  assertFalse(ctx.iteration(false));
  s.modifyUnixFd(tag, G_IO_IN);
  assert(ctx.iteration(false));
  assertEquals(seen, G_IO_IN);
  // GLib clears revents when the fd re-enters the poll set after dispatch.
  assertEquals(s.queryUnixFd(tag), 0);
  s.removeUnixFd(tag);
  assertFalse(ctx.iteration(false));
  assertThrows(() => s.queryUnixFd(tag), TypeError);
  s.unref();
  ctx.destroy();
  close(r);
  close(w);
});

Deno.test("GMainContext: an addPoll fd is for the check function to judge", () => {
  const [r, w] = pipe();
  const ctx = new GMainContext();
  const pfd: GPollFD = { fd: r, events: G_IO_IN, revents: 0 };
  let n = 0;
  let useCheck = false;
  const s = new GSource({
    check: () => useCheck && (pfd.revents & G_IO_IN) !== 0,
    dispatch: () => (n++, read(r, buf), G_SOURCE_CONTINUE),
  });
  s.addPoll(pfd);
  s.attach(ctx);
  write(w, byte);
  // Polled (revents set) but the check says no.
  assertFalse(ctx.iteration(false));
  assertEquals(pfd.revents & G_IO_IN, G_IO_IN);
  useCheck = true;
  assert(ctx.iteration(false));
  assertEquals(n, 1);
  s.removePoll(pfd);
  s.removePoll(pfd); // absent: no-op
  write(w, byte);
  assertFalse(ctx.iteration(false));
  s.unref();
  ctx.destroy();
  close(r);
  close(w);
});

Deno.test("GMainContext: pending() reports ready sources without dispatching", () => {
  const ctx = new GMainContext();
  assertFalse(ctx.pending());
  let n = 0;
  idle(ctx, () => (n++, G_SOURCE_REMOVE));
  assert(ctx.pending());
  assert(ctx.pending());
  assertEquals(n, 0);
  assert(ctx.iteration(false));
  assertEquals(n, 1);
  assertFalse(ctx.pending());
  ctx.destroy();
});

Deno.test("GMainContext: wakeup() cuts a blocking iteration short", async () => {
  const ctx = new GMainContext();
  // Same thread: a wakeup before blocking makes the wait return at once.
  ctx.wakeup();
  assertFalse(ctx.iteration(true));

  // From a Worker, through the eventfd's number, 50 ms after we block.
  const code = `
    const lib = Deno.dlopen("libc.so.6", { write: { parameters: ["i32", "buffer", "u32"], result: "i32" } });
    self.onmessage = (e) => {
      setTimeout(() => {
        const one = new Uint8Array(new BigUint64Array([1n]).buffer);
        self.postMessage(lib.symbols.write(e.data, one, 8));
        lib.close();
      }, 50);
    };
    self.postMessage("ready");
  `;
  const worker = new Worker("data:application/javascript," + encodeURIComponent(code), {
    type: "module",
  });
  const ready = Promise.withResolvers<void>();
  const done = Promise.withResolvers<number>();
  worker.onmessage = (e) => e.data === "ready" ? ready.resolve() : done.resolve(e.data);
  try {
    await ready.promise;
    // A far timeout: if the wakeup were lost, this would end the wait.
    let fallback = false;
    const t = timeoutSourceNew(10_000);
    t.setCallback(() => (fallback = true, false));
    t.attach(ctx);
    t.unref();
    worker.postMessage(ctx.wakeupFd);
    assertFalse(ctx.iteration(true));
    assertFalse(fallback);
    assertEquals(await done.promise, 8);
  } finally {
    worker.terminate();
    ctx.destroy();
  }
});

Deno.test("GMainContext: the split iteration works with a poll done elsewhere (nonblocking FFI)", async () => {
  const [r, w] = pipe();
  const ctx = new GMainContext();
  const fds: GPollFD[] = [];
  const pfa = new PollFdArray();
  const log: string[] = [];
  const fdSrc = unixFdSourceNew(r, G_IO_IN);
  fdSrc.setCallback((fd) => (log.push("fd"), read(fd, buf), G_SOURCE_CONTINUE));
  fdSrc.attach(ctx);
  fdSrc.unref();

  async function round(): Promise<boolean> {
    ctx.acquire();
    try {
      const { priority } = ctx.prepare();
      const { timeoutMs, count } = ctx.query(priority, fds);
      pfa.clear();
      for (let i = 0; i < count; i++) pfa.push(fds[i].fd, fds[i].events);
      await libc().poll_nb(pfa.buffer, count, timeoutMs);
      for (let i = 0; i < count; i++) fds[i].revents = pfa.revents(i);
      const some = ctx.check(priority, fds, count);
      if (some) ctx.dispatch();
      return some;
    } finally {
      ctx.release();
    }
  }

  // Deno's loop keeps turning during the wait: a timer makes the fd readable.
  setTimeout(() => write(w, byte), 20);
  while (log.length === 0) await round();
  assertEquals(log, ["fd"]);

  // A source attached during the outside poll rings the wakeup and ends the
  // wait; with no fds of its own it is checked (and run) in that round.
  setTimeout(() => idle(ctx, () => (log.push("idle"), G_SOURCE_REMOVE)), 20);
  assert(await round());
  assertEquals(log, ["fd", "idle"]);

  // One that brings fds changes the poll set: check reports nothing (the
  // polled set is stale) and the next round picks the work up.
  const [r2, w2] = pipe();
  write(w2, byte);
  setTimeout(() => {
    const s = unixFdSourceNew(r2, G_IO_IN);
    s.setCallback(() => (log.push("fd2"), G_SOURCE_REMOVE));
    s.attach(ctx);
    s.unref();
  }, 20);
  assertFalse(await round());
  assert(await round());
  assertEquals(log, ["fd", "idle", "fd2"]);
  close(r2);
  close(w2);
  ctx.destroy();
  close(r);
  close(w);
});

Deno.test("GMainContext: query reuses the caller's objects and keeps fds sorted", () => {
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  const ctx = new GMainContext();
  const a = unixFdSourceNew(r2, G_IO_IN);
  const b = unixFdSourceNew(r1, G_IO_IN);
  const c = unixFdSourceNew(r1, G_IO_OUT); // same fd: merged into one entry
  for (const s of [a, b, c]) {
    s.setCallback(() => true);
    s.attach(ctx);
  }
  const fds: GPollFD[] = [];
  let { priority } = ctx.prepare();
  let q = ctx.query(priority, fds);
  assertEquals(q.count, 3);
  assertEquals(q.timeoutMs, -1);
  assertEquals(q.timeoutNs, -1);
  const fdList = fds.slice(0, q.count).map((p) => p.fd);
  assertEquals(fdList, [...fdList].sort((x, y) => x - y));
  const merged = fds.find((p) => p.fd === r1)!;
  assertEquals(merged.events, G_IO_IN | G_IO_OUT);
  ctx.check(priority, fds, q.count);
  const first = fds[0];
  a.destroy();
  ({ priority } = ctx.prepare());
  q = ctx.query(priority, fds);
  assertEquals(q.count, 2);
  assertStrictEquals(fds[0], first);
  assertEquals(fds[2].fd, -1); // stale slot is skipped by poll(2)
  ctx.check(priority, fds, q.count);
  for (const s of [a, b, c]) s.unref();
  ctx.destroy();
  for (const fd of [r1, w1, r2, w2]) close(fd);
});

Deno.test("GMainContext: the prepare timeout reaches query, rounded up to ms", () => {
  const ctx = new GMainContext();
  const s = new GSource({ prepare: () => [false, 7], dispatch: () => true });
  s.attach(ctx);
  const t = new GSource({ dispatch: () => true });
  t.setReadyTime(getMonotonicTime() + 3_500_000);
  t.attach(ctx);
  const fds: GPollFD[] = [];
  const { ready, priority } = ctx.prepare();
  assertFalse(ready);
  assertEquals(priority, 0x7fffffff);
  const q = ctx.query(priority, fds);
  assertEquals(q.timeoutMs, 7);
  assertEquals(q.timeoutNs, 7e6);
  ctx.check(priority, fds, q.count);
  s.destroy();
  const p2 = ctx.prepare();
  const q2 = ctx.query(p2.priority, fds);
  assert(q2.timeoutMs >= 3000 && q2.timeoutMs <= 3500);
  assert(q2.timeoutNs > (q2.timeoutMs - 1) * 1e6 && q2.timeoutNs <= q2.timeoutMs * 1e6);
  ctx.check(p2.priority, fds, q2.count);
  s.unref();
  t.unref();
  ctx.destroy();
});

Deno.test("GMainContext: child sources follow and wake their parent", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const parent = new GSource({ dispatch: () => (log.push("parent"), G_SOURCE_CONTINUE) });
  const child = timeoutSourceNew(1);
  child.setCallback(() => (log.push("child"), G_SOURCE_REMOVE));
  parent.addChildSource(child);
  parent.setPriority(G_PRIORITY_HIGH);
  assertEquals(child.getPriority(), G_PRIORITY_HIGH);
  assertThrows(() => child.setPriority(G_PRIORITY_DEFAULT), Error);
  parent.attach(ctx);
  assertStrictEquals(child.getContext(), ctx);
  // The child's readiness marks the parent ready too; the child sits just
  // before its parent in the list (GLib's source_add_to_context), so both
  // run in the iteration that finds the child ready.
  while (log.length === 0) ctx.iteration(true);
  assertEquals(log, ["child", "parent"]);
  assert(child.isDestroyed());
  assertFalse(parent.isDestroyed());
  const child2 = idleSourceNew();
  child2.setCallback(() => true);
  parent.addChildSource(child2);
  parent.destroy();
  assert(child2.isDestroyed());
  child.unref();
  child2.unref();
  parent.unref();
  ctx.destroy();
});

// A source whose prepare returns a fixed answer and logs prepare and
// dispatch, to observe the order of the context's source list.
function orderSource(
  log: string[],
  name: string,
  ready: boolean,
): GSource {
  return new GSource({
    prepare: () => (log.push(`prepare ${name}`), ready),
    check: () => ready,
    dispatch: () => (log.push(`dispatch ${name}`), G_SOURCE_CONTINUE),
  });
}

Deno.test("GMainContext: a child attached with its parent is prepared before it, both run in one iteration", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const parent = orderSource(log, "parent", false);
  const child = orderSource(log, "child", true);
  parent.addChildSource(child);
  parent.attach(ctx);
  assert(ctx.iteration(false));
  // The ready child marks its parent ready, so the parent's own prepare is
  // skipped; dispatch follows the list: child, then parent.
  assertEquals(log, ["prepare child", "dispatch child", "dispatch parent"]);
  // Two children added before attach: attached newest first, each just
  // before the parent, so the newest ends up first.
  const log2: string[] = [];
  const p2 = orderSource(log2, "parent", true);
  const a = orderSource(log2, "a", true);
  const b = orderSource(log2, "b", true);
  p2.addChildSource(a);
  p2.addChildSource(b);
  const ctx2 = new GMainContext();
  p2.attach(ctx2);
  assert(ctx2.iteration(false));
  assertEquals(log2.filter((l) => l.startsWith("dispatch")), [
    "dispatch b",
    "dispatch a",
    "dispatch parent",
  ]);
  for (const s of [parent, child, p2, a, b]) s.unref();
  ctx.destroy();
  ctx2.destroy();
});

Deno.test("GMainContext: addChildSource on an attached parent links the child just before the parent", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const first = orderSource(log, "first", true);
  first.attach(ctx);
  const parent = orderSource(log, "parent", false);
  parent.attach(ctx);
  const last = orderSource(log, "last", true);
  last.attach(ctx);
  const a = orderSource(log, "a", true);
  const b = orderSource(log, "b", false);
  parent.addChildSource(a);
  parent.addChildSource(b);
  assert(ctx.iteration(false));
  // a, then b, each inserted just before the parent: first a b parent last.
  assertEquals(log, [
    "prepare first",
    "prepare a",
    "prepare b",
    "prepare last",
    "dispatch first",
    "dispatch a",
    "dispatch parent",
    "dispatch last",
  ]);
  for (const s of [first, parent, last, a, b]) s.unref();
  ctx.destroy();
});

Deno.test("GMainContext: setPriority moves a parent to its new priority with its children just before it", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const parent = orderSource(log, "parent", false);
  const a = orderSource(log, "a", true);
  const b = orderSource(log, "b", true);
  parent.addChildSource(a);
  parent.attach(ctx);
  parent.addChildSource(b);
  const high = orderSource(log, "high", true);
  high.setPriority(G_PRIORITY_HIGH);
  high.attach(ctx);
  parent.setPriority(G_PRIORITY_HIGH);
  assertEquals([a.getPriority(), b.getPriority()], [G_PRIORITY_HIGH, G_PRIORITY_HIGH]);
  assert(ctx.iteration(false));
  // The parent goes to the tail of HIGH; its children follow newest first
  // (b, then a), each just before the parent: high b a parent.
  assertEquals(log, [
    "prepare high",
    "prepare b",
    "prepare a",
    "dispatch high",
    "dispatch b",
    "dispatch a",
    "dispatch parent",
  ]);
  for (const s of [parent, a, b, high]) s.unref();
  ctx.destroy();
});

Deno.test("GMainContext: thread-default stack", () => {
  assertStrictEquals(GMainContext.threadDefault(), null);
  const ctx = new GMainContext();
  ctx.pushThreadDefault();
  assertStrictEquals(GMainContext.threadDefault(), ctx);
  assert(ctx.isOwner());
  const ref = GMainContext.refThreadDefault();
  assertStrictEquals(ref, ctx);
  ref.unref();
  const def = GMainContext.default();
  def.pushThreadDefault();
  assertStrictEquals(GMainContext.threadDefault(), null); // the default reads as null
  assertThrows(() => ctx.popThreadDefault(), Error, "not the thread default");
  def.popThreadDefault();
  ctx.popThreadDefault();
  assertFalse(ctx.isOwner());
  assertStrictEquals(GMainContext.threadDefault(), null);
  assertStrictEquals(GMainContext.refThreadDefault(), def);
  def.unref(); // balance the ref above (the default keeps its own)
  ctx.destroy();
});

Deno.test("GMainContext: the default context, timeoutAdd, idleAdd, unixFdAdd and sourceRemove", () => {
  const before = openFdCount();
  const def = GMainContext.default();
  let idled = 0;
  let timed = 0;
  idleAdd(() => (idled++, false));
  const tid = timeoutAdd(1, () => (timed++, false));
  assert(tid > 0);
  const dead = timeoutAdd(60_000, () => true);
  while (timed === 0) def.iteration(true);
  drain(def);
  assertEquals(idled, 1);
  assertEquals(timed, 1);
  assert(sourceRemove(dead));
  assertFalse(sourceRemove(dead));
  assertFalse(sourceRemove(tid));
  const [r, w] = pipe();
  let fdCalls = 0;
  const fid = unixFdAdd(r, G_IO_IN, () => (fdCalls++, true));
  write(w, byte);
  assert(def.iteration(false));
  assertEquals(fdCalls, 1);
  assert(sourceRemove(fid));
  close(r);
  close(w);
  // Destroying the default closes its eventfd; default() makes a new one.
  def.destroy();
  assertEquals(openFdCount(), before);
  const def2 = GMainContext.default();
  assert(def2 !== def);
  assertFalse(def2.isDestroyed());
});

// A source ready at every prepare, calling its callback, logging finalize.
function notifySource(log: string[]): GSource {
  return new GSource({
    prepare: () => true,
    dispatch: (_s, cb) => (cb !== null ? cb() : G_SOURCE_REMOVE),
    finalize: () => void log.push("finalize"),
  });
}

Deno.test("GSource: setCallback's notify runs once when the callback is replaced", () => {
  const log: string[] = [];
  const s = notifySource(log);
  s.setCallback(() => true, () => log.push("notify 1"));
  assertEquals(log.length, 0);
  s.setCallback(() => true, () => log.push("notify 2"));
  assertEquals(log, ["notify 1"]);
  s.setCallback(null);
  assertEquals(log, ["notify 1", "notify 2"]);
  // A null callback with a notify still owns the notify (GLib keeps the
  // record): released by the next replacement.
  s.setCallback(null, () => log.push("notify 3"));
  s.setCallback(null);
  assertEquals(log, ["notify 1", "notify 2", "notify 3"]);
  s.unref();
  assertEquals(log, ["notify 1", "notify 2", "notify 3", "finalize"]);
  assertThrows(() => idleSourceNew().setCallback(() => true, 5 as never), TypeError);
});

Deno.test("GSource: destroy calls the notify before finalize, a never-destroyed source after it", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const s = notifySource(log);
  s.setCallback(() => true, () => log.push("notify"));
  s.attach(ctx);
  s.unref();
  s.destroy();
  assertEquals(log, ["notify", "finalize"]);
  // Never attached, so never destroyed: finalize first, as in
  // g_source_unref_internal.
  const log2: string[] = [];
  const u = notifySource(log2);
  u.setCallback(() => true, () => log2.push("notify"));
  u.unref();
  assertEquals(log2, ["finalize", "notify"]);
  // Destroyed while the caller still holds a reference: notify at destroy,
  // finalize only with the last unref, and nothing twice.
  const log3: string[] = [];
  const h = notifySource(log3);
  h.setCallback(() => true, () => log3.push("notify"));
  h.attach(ctx);
  h.destroy();
  assertEquals(log3, ["notify"]);
  h.unref();
  assertEquals(log3, ["notify", "finalize"]);
  ctx.destroy();
});

Deno.test("GSource: a callback replaced or removed during its own dispatch is notified after it returns", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const s = notifySource(log);
  s.setCallback(() => {
    s.setCallback(() => (log.push("second"), G_SOURCE_REMOVE), () => log.push("notify 2"));
    log.push("first returns");
    return G_SOURCE_CONTINUE;
  }, () => log.push("notify 1"));
  s.attach(ctx);
  s.unref();
  assert(ctx.iteration(false));
  assertEquals(log, ["first returns", "notify 1"]);
  // Returning REMOVE: the dispatch reference goes first, then destroy
  // releases the record (notify), then the source is finalized.
  assert(ctx.iteration(false));
  assertEquals(log, ["first returns", "notify 1", "second", "notify 2", "finalize"]);
  // Destroyed from inside its callback: notified after the callback returns.
  const log2: string[] = [];
  const d = notifySource(log2);
  d.setCallback(() => {
    d.destroy();
    log2.push("callback returns");
    return G_SOURCE_CONTINUE;
  }, () => log2.push("notify"));
  d.attach(ctx);
  d.unref();
  assert(ctx.iteration(false));
  assertEquals(log2, ["callback returns", "notify", "finalize"]);
  ctx.destroy();
});

Deno.test("GSource: a throwing notify still leaves the source destroyed and finalized once", () => {
  const ctx = new GMainContext();
  const log: string[] = [];
  const s = notifySource(log);
  s.setCallback(() => true, () => {
    log.push("notify");
    throw new Error("boom");
  });
  s.attach(ctx);
  s.unref();
  assertThrows(() => s.destroy(), Error, "boom");
  assertEquals(log, ["notify", "finalize"]);
  assert(s.isDestroyed());
  assertFalse(ctx.iteration(false));
  ctx.destroy();
});

Deno.test("GMainContext: the full forms of timeoutAdd, timeoutAddSeconds, idleAdd, unixFdAdd call their notify once", () => {
  const def = GMainContext.default();
  const log: string[] = [];
  idleAdd(() => (log.push("idle"), G_SOURCE_REMOVE), { notify: () => log.push("idle notify") });
  timeoutAdd(1, () => (log.push("timeout"), G_SOURCE_REMOVE), {
    priority: G_PRIORITY_HIGH,
    notify: () => log.push("timeout notify"),
  });
  const sec = timeoutAddSeconds(60, () => true, { notify: () => log.push("seconds notify") });
  const [r, w] = pipe();
  const fid = unixFdAdd(r, G_IO_IN, () => (log.push("fd"), G_SOURCE_CONTINUE), {
    notify: () => log.push("fd notify"),
  });
  while (!log.includes("timeout")) def.iteration(true);
  drain(def);
  assertEquals(log.filter((l) => l.startsWith("idle")), ["idle", "idle notify"]);
  assertEquals(log.filter((l) => l.startsWith("timeout")), ["timeout", "timeout notify"]);
  write(w, byte);
  assert(def.iteration(false));
  assert(sourceRemove(fid));
  assert(sourceRemove(sec));
  assertEquals(log.filter((l) => l.startsWith("fd") || l.startsWith("sec")), [
    "fd",
    "fd notify",
    "seconds notify",
  ]);
  // The priority reached the source.
  const hid = idleAdd(() => true, { priority: G_PRIORITY_HIGH, notify: () => log.push("h") });
  assertEquals(def.findSourceById(hid)!.getPriority(), G_PRIORITY_HIGH);
  def.destroy();
  assertEquals(log.filter((l) => l === "h"), ["h"]);
  // Bad options throw before anything is created; no notify.
  let called = 0;
  assertThrows(() => idleAdd(() => true, { priority: 1.5, notify: () => called++ }), RangeError);
  assertThrows(() => timeoutAdd(1, () => true, { notify: 3 as never }), TypeError);
  assertThrows(() => unixFdAdd(r, G_IO_IN, () => true, 5 as never), TypeError);
  assertEquals(called, 0);
  GMainContext.default().destroy();
  close(r);
  close(w);
});

Deno.test("GMainContext: invoke's notify runs right after an immediate call, or when its idle source goes", () => {
  const log: string[] = [];
  const def = GMainContext.default();
  // The default context is acquirable here: runs now, then notifies.
  def.invoke(() => (log.push("now"), false), { notify: () => log.push("notify now") });
  assertEquals(log, ["now", "notify now"]);
  // A throwing function is done too: notified once.
  assertThrows(
    () =>
      def.invoke(() => {
        throw new Error("fn");
      }, { notify: () => log.push("notify thrown") }),
    Error,
    "fn",
  );
  assertEquals(log.slice(2), ["notify thrown"]);
  // A private context that is not the thread default: deferred to an idle
  // source, notified when that source is destroyed.
  const ctx = new GMainContext();
  let n = 0;
  ctx.invoke(() => (log.push(`later ${++n}`), n < 2), { notify: () => log.push("notify later") });
  assertEquals(log.length, 3);
  drain(ctx);
  assertEquals(log.slice(3), ["later 1", "later 2", "notify later"]);
  // Destroying the context before it ran: notified once, by the destroy.
  ctx.invoke(() => false, { notify: () => log.push("notify destroyed") });
  ctx.destroy();
  assertEquals(log.slice(6), ["notify destroyed"]);
  def.destroy();
});

Deno.test("GMainContext: destroy closes every fd it opened and finalizes its sources", () => {
  const before = openFdCount();
  const [r, w] = pipe();
  const ctx = new GMainContext();
  let finalized = 0;
  for (let i = 0; i < 3; i++) {
    const s = new GSource({
      dispatch: () => true,
      finalize: () => void finalized++,
    });
    s.addUnixFd(r, G_IO_IN);
    s.attach(ctx);
    s.unref();
  }
  ctx.iteration(false);
  assert(ctx.wakeupFd >= 0);
  ctx.destroy();
  ctx.destroy(); // idempotent
  assertEquals(finalized, 3);
  close(r);
  close(w);
  assertEquals(openFdCount(), before);
  assertThrows(() => ctx.iteration(false), Deno.errors.BadResource);
  assertThrows(() => ctx.wakeupFd, Deno.errors.BadResource);
});

Deno.test("GMainContext: a throwing callback leaves the context consistent", () => {
  const ctx = new GMainContext();
  let aCalls = 0;
  let bCalls = 0;
  idle(ctx, () => {
    if (++aCalls === 1) throw new Error("boom");
    return G_SOURCE_CONTINUE;
  });
  idle(ctx, () => (bCalls++, G_SOURCE_CONTINUE));
  assertThrows(() => ctx.iteration(false), Error, "boom");
  assertEquals(bCalls, 0);
  assertFalse(ctx.isOwner());
  assertEquals(GMainContext.depth(), 0);
  assert(ctx.iteration(false));
  assertEquals(aCalls, 2);
  assertEquals(bCalls, 1);

  // A loop whose callback throws stops running, and the context still works.
  const loop = new GMainLoop(ctx);
  const bad = new GSource({
    prepare: () => true,
    dispatch: () => {
      throw new Error("kaboom");
    },
  });
  bad.attach(ctx);
  assertThrows(() => loop.run(), Error, "kaboom");
  assertFalse(loop.isRunning());
  bad.destroy();
  bad.unref();
  assert(ctx.iteration(false));
  loop.unref();
  ctx.destroy();
});

Deno.test("GMainContext: bad input gets typed errors", () => {
  const ctx = new GMainContext();
  // deno-lint-ignore no-explicit-any
  assertThrows(() => new GSource({} as any), TypeError);
  assertThrows(() => new GSource(), TypeError);
  const s = idleSourceNew();
  s.attach(ctx);
  assertThrows(() => s.attach(ctx), Error, "already attached");
  assertThrows(() => s.setPriority(1.5), RangeError);
  assertThrows(() => s.setReadyTime(NaN), RangeError);
  assertThrows(() => s.addUnixFd(-1, G_IO_IN), RangeError);
  assertThrows(() => s.addUnixFd(0, 0x10000), RangeError);
  assertThrows(() => idleSourceNew().queryUnixFd(s.addUnixFd(0, G_IO_IN)), TypeError);
  // deno-lint-ignore no-explicit-any
  assertThrows(() => s.setCallback(42 as any), TypeError);
  s.destroy();
  assertThrows(() => s.attach(ctx), Deno.errors.BadResource);
  assertThrows(() => s.addUnixFd(0, G_IO_IN), Deno.errors.BadResource);
  s.unref();
  assertThrows(() => s.unref(), Deno.errors.BadResource);
  assertThrows(() => s.ref(), Deno.errors.BadResource);
  assertThrows(() => idleSourceNew().getTime(), Error, "not attached");
  assertThrows(() => timeoutSourceNew(-1), RangeError);
  assertThrows(() => timeoutSourceNew(1.5), RangeError);
  assertThrows(() => ctx.findSourceById(0), RangeError);
  assertThrows(() => ctx.release(), Error, "not acquired");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => ctx.invoke(null as any), TypeError);
  assertThrows(() => ctx.check(0, [], 1), RangeError);

  // Iterating from inside a prepare function is refused, and the context
  // stays usable.
  const nested = new GSource({
    prepare: () => (ctx.iteration(false), false),
    dispatch: () => true,
  });
  nested.attach(ctx);
  assertThrows(() => ctx.iteration(false), Error, "inside a prepare or check");
  nested.destroy();
  nested.unref();
  assertFalse(ctx.iteration(false));

  ctx.destroy();
  assertThrows(() => idleSourceNew().attach(ctx), Deno.errors.BadResource);
  assertThrows(() => new GMainLoop(ctx), Deno.errors.BadResource);
  assertThrows(() => ctx.prepare(), Deno.errors.BadResource);
});

Deno.test("GMainContext: getTime is cached per iteration and sources see it", () => {
  const ctx = new GMainContext();
  const times: number[] = [];
  const s1 = new GSource({
    prepare: () => true,
    dispatch: (src) => (times.push(src.getTime()), true),
  });
  const s2 = new GSource({
    prepare: () => true,
    dispatch: (src) => (times.push(src.getTime()), true),
  });
  s1.attach(ctx);
  s2.attach(ctx);
  ctx.iteration(false);
  assertEquals(times.length, 2);
  assertEquals(times[0], times[1]);
  assert(times[0] <= getMonotonicTime());
  s1.unref();
  s2.unref();
  ctx.destroy();
});

Deno.test("GMainContext: a ready source makes a blocking iteration return at once", () => {
  const ctx = new GMainContext();
  let n = 0;
  idle(ctx, () => ++n < 50);
  // Would hang (no timeout, no fd) if a ready source did not zero the wait.
  while (n < 50) assert(ctx.iteration(true));
  assertFalse(ctx.pending());
  ctx.destroy();
});
