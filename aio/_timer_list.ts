// The machinery of util/qemu-timer.c behind aio/timer.ts: the process-wide
// state of the four clocks, the registry of timer lists per clock, and the
// sorted timer list itself. Arguments are validated by timer.ts; nothing
// here is public API.
import { isMainThread } from "node:worker_threads";
import { CLOCK_MONOTONIC, CLOCK_REALTIME, clockGettimeNs } from "../sys/clock.ts";
import { libc } from "../sys/_libc.ts";
import { K_TIMER, traceCallNamed, tracing } from "../trace/_state.ts";

/** Number of clocks (QEMU_CLOCK_MAX). */
export const CLOCK_COUNT = 4;
const VIRTUAL = 1;
const HOST = 2;

// ---- The process-wide clock state ----------------------------------------
//
// QEMU keeps one copy of the clocks per process: the VIRTUAL clock's value,
// each clock's enable flag, and (in util/async.c) the context ids. Here each
// isolate (the main one, every Worker) has its own module instance, so the
// state lives in a SharedArrayBuffer, the "process block", that every
// isolate of the process shares once it has been handed over:
//
// - The main isolate creates the process block when this module loads.
// - A Worker starts with a block of its own (so it works alone) and adopts
//   the process block when it receives one: with every AioContextHandle
//   (RemoteAioContext and RemoteBH references carry it), and at IOThread
//   start, before the thread makes its context. Each block has a rank (0
//   for the main isolate's, random otherwise); an isolate adopts a block of
//   lower rank than its own, so every isolate that exchanged handles ends
//   up on the main isolate's block.
// - Waking other isolates' contexts when a clock moves or is enabled
//   (qemu_clock_notify calls timerlist_notify on every list of the process)
//   goes through a wake table in the block: each AioContext registers its
//   doorbell fd there, and a ringer holds the entry's ringer count so that
//   the fd is not closed under it (the same handshake as the control block).
//
// Layout: BigInt64 word 0 = VIRTUAL ns; Int32 2..5 = enable flag per clock;
// 6 = next context id; 7 = rank; 8 = next isolate id; 9 = wake entries in
// use (high-water mark); 10 = some context got io_uring (aio_context_setup's
// need_io_uring); wake table from Int32 16, 4 words per entry.
const P_ENABLED = 2;
const P_NEXT_CTX_ID = 6;
const P_RANK = 7;
const P_NEXT_ISOLATE = 8;
const P_WAKE_HWM = 9;
const P_NEED_IO_URING = 10;
const P_WAKE_BASE = 16;
const WAKE_WORDS = 4;
const W_STATE = 0;
const W_RINGERS = 1;
const W_FD = 2;
const W_ISOLATE = 3;
const WAKE_FREE = 0;
const WAKE_CLAIMING = 1;
const WAKE_LIVE = 2;
const WAKE_CLOSING = 3;
/** How many AioContexts of the process can be woken by clock changes. */
export const WAKE_ENTRIES = 4096;
const PROCESS_BYTES = (P_WAKE_BASE + WAKE_ENTRIES * WAKE_WORDS) * 4;

function isMainIsolate(): boolean {
  // Deno Workers have WorkerGlobalScope; node:worker_threads Workers (the
  // thread pool's) are not the main thread.
  return isMainThread && typeof (globalThis as { WorkerGlobalScope?: unknown })
        .WorkerGlobalScope === "undefined";
}

function newProcessBlock(main: boolean): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(PROCESS_BYTES);
  const p = new Int32Array(sab);
  p[P_ENABLED + 0] = 1;
  p[P_ENABLED + 1] = 0;
  p[P_ENABLED + 2] = 1;
  p[P_ENABLED + 3] = 1;
  const rank = main ? 0 : 1 + Math.floor(Math.random() * 0x7ffffffe);
  p[P_RANK] = rank;
  // Ids of a block of its own stay clear of the process block's.
  p[P_NEXT_CTX_ID] = main ? 1 : 0x40000000 | ((rank & 0x3fff) << 16);
  return sab;
}

let block: SharedArrayBuffer = newProcessBlock(isMainIsolate());
let P = new Int32Array(block);
let PB = new BigInt64Array(block, 0, 1);
let isolateId = Atomics.add(P, P_NEXT_ISOLATE, 1) + 1;

// How many timer callbacks of each clock are on this isolate's stack;
// disabling a clock while one is would deadlock QEMU's qemu_clock_enable,
// so we refuse it (other isolates' callbacks are theirs).
const running: number[] = [0, 0, 0, 0];
// Every live list per clock in this isolate, so that enabling a clock or
// moving the virtual clock can wake each context whose poll may wait on it.
const registry: Set<TimerList>[] = [new Set(), new Set(), new Set(), new Set()];
// This isolate's wake-table entries: token -> [doorbell fd, entry index].
const wakes = new Map<number, [fd: number, entry: number]>();
let nextWakeToken = 1;

/** The process block (to hand to a Worker with a handle or at IOThread start). */
export function processClockBlock(): SharedArrayBuffer {
  return block;
}

/**
 * Switches this isolate to `sab` if it ranks before the block in use (see
 * above); a no-op otherwise. Registered wakes move over; the lists of the
 * clocks whose state changed are notified.
 */
export function adoptProcessClock(sab: SharedArrayBuffer | undefined): void {
  if (sab === undefined || sab === block) return;
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== PROCESS_BYTES) {
    throw new TypeError("Not a process clock block: pass what the handle carries");
  }
  const np = new Int32Array(sab);
  if (Atomics.load(np, P_RANK) >= Atomics.load(P, P_RANK)) return;
  const oldVirtual = Atomics.load(PB, 0);
  const oldEnabled = [0, 1, 2, 3].map((c) => Atomics.load(P, P_ENABLED + c));
  // An io_uring context made before the switch still counts.
  if (Atomics.load(P, P_NEED_IO_URING) !== 0) Atomics.store(np, P_NEED_IO_URING, 1);
  const moved = [...wakes.entries()];
  for (const [token] of moved) unregisterClockWake(token);
  block = sab;
  P = np;
  PB = new BigInt64Array(sab, 0, 1);
  isolateId = Atomics.add(P, P_NEXT_ISOLATE, 1) + 1;
  for (const [token, [fd]] of moved) wakes.set(token, [fd, claimWake(fd)]);
  if (Atomics.load(PB, 0) !== oldVirtual) notifyLocal(VIRTUAL);
  for (let c = 0; c < CLOCK_COUNT; c++) {
    if (oldEnabled[c] === 0 && Atomics.load(P, P_ENABLED + c) !== 0) notifyLocal(c);
  }
}

/** Whether some context of the process got io_uring (then every one must). */
export function ioUringNeeded(): boolean {
  return Atomics.load(P, P_NEED_IO_URING) !== 0;
}

/** Records that a context got io_uring. */
export function markIoUringNeeded(): void {
  Atomics.store(P, P_NEED_IO_URING, 1);
}

/** A process-unique AioContext id. */
export function nextContextId(): number {
  return Atomics.add(P, P_NEXT_CTX_ID, 1);
}

function claimWake(fd: number): number {
  for (let i = 0; i < WAKE_ENTRIES; i++) {
    const base = P_WAKE_BASE + i * WAKE_WORDS;
    if (Atomics.compareExchange(P, base + W_STATE, WAKE_FREE, WAKE_CLAIMING) !== WAKE_FREE) {
      continue;
    }
    Atomics.store(P, base + W_FD, fd);
    Atomics.store(P, base + W_ISOLATE, isolateId);
    Atomics.store(P, base + W_STATE, WAKE_LIVE);
    let hwm = Atomics.load(P, P_WAKE_HWM);
    while (hwm < i + 1) {
      const seen = Atomics.compareExchange(P, P_WAKE_HWM, hwm, i + 1);
      if (seen === hwm) break;
      hwm = seen;
    }
    return i;
  }
  return -1;
}

/**
 * Registers a context's doorbell (the write side of its notifier) so that
 * clock changes made in other isolates wake it. Returns a token for
 * {@linkcode unregisterClockWake}. Past WAKE_ENTRIES contexts, the extra
 * ones are only woken by changes made in their own isolate.
 */
export function registerClockWake(doorbellFd: number): number {
  const token = nextWakeToken++;
  wakes.set(token, [doorbellFd, claimWake(doorbellFd)]);
  return token;
}

/** Unregisters a doorbell; returns once no ringer can still write to it. */
export function unregisterClockWake(token: number): void {
  const w = wakes.get(token);
  if (w === undefined) return;
  wakes.delete(token);
  const i = w[1];
  if (i < 0) return;
  const base = P_WAKE_BASE + i * WAKE_WORDS;
  Atomics.store(P, base + W_STATE, WAKE_CLOSING);
  while (Atomics.load(P, base + W_RINGERS) !== 0) {
    // A ringer is between its check and its write(); it is a few µs.
  }
  Atomics.store(P, base + W_STATE, WAKE_FREE);
}

const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

// Rings the contexts other isolates registered (this isolate's own lists
// are notified directly).
function ringOthers(): void {
  const n = Atomics.load(P, P_WAKE_HWM);
  for (let i = 0; i < n; i++) {
    const base = P_WAKE_BASE + i * WAKE_WORDS;
    if (Atomics.load(P, base + W_STATE) !== WAKE_LIVE) continue;
    if (Atomics.load(P, base + W_ISOLATE) === isolateId) continue;
    Atomics.add(P, base + W_RINGERS, 1);
    try {
      if (Atomics.load(P, base + W_STATE) === WAKE_LIVE) {
        // EAGAIN: the eventfd counter is saturated, a wake is pending.
        libc().write(Atomics.load(P, base + W_FD), ONE, 8);
      }
    } finally {
      Atomics.sub(P, base + W_RINGERS, 1);
    }
  }
}

/** Reads a clock in ns; the clock number must be valid. */
export function readClockNs(clock: number): number {
  switch (clock) {
    case VIRTUAL:
      return Number(Atomics.load(PB, 0));
    case HOST:
      return clockGettimeNs(CLOCK_REALTIME);
    default:
      // REALTIME, and VIRTUAL_RT as QEMU has it without icount.
      return clockGettimeNs(CLOCK_MONOTONIC);
  }
}

/** Sets the virtual clock and wakes every list on it, in every isolate. */
export function setVirtualNs(ns: number): void {
  Atomics.store(PB, 0, BigInt(ns));
  notifyClock(VIRTUAL);
}

export function isClockEnabled(clock: number): boolean {
  return Atomics.load(P, P_ENABLED + clock) !== 0;
}

/** qemu_clock_enable: enabling wakes every list on the clock. */
export function setClockEnabled(clock: number, on: boolean): void {
  const old = isClockEnabled(clock);
  if (old && !on && running[clock] > 0) {
    throw new Error(
      `Cannot disable clock ${clock} from inside one of its timer callbacks: QEMU would deadlock`,
    );
  }
  Atomics.store(P, P_ENABLED + clock, on ? 1 : 0);
  if (on && !old) notifyClock(clock);
}

function notifyLocal(clock: number): void {
  for (const list of registry[clock]) list.notify();
}

/** qemu_clock_notify: every list on the clock, this isolate's and others'. */
export function notifyClock(clock: number): void {
  notifyLocal(clock);
  if (Atomics.load(P, P_WAKE_HWM) !== 0) ringOthers();
}

/** The live lists of a clock (for qemu_clock_deadline_ns_all). */
export function timerListsOf(clock: number): Iterable<TimerList> {
  return registry[clock];
}

/** How many live lists a clock has: the registry must not leak. */
export function timerListCount(clock: number): number {
  return registry[clock].size;
}

/** One armed-or-idle timer as its list sees it. */
export class TimerNode {
  /** Expiry in ns, clamped to ≥ 0 while pending; -1 when idle. */
  expire = -1;
  readonly list: TimerList;
  /** What firing calls: the user's callback, or a periodic timer's re-arming wrapper. */
  cb: () => void;
  readonly name: string;
  readonly attributes: number;

  constructor(list: TimerList, cb: () => void, name: string, attributes: number) {
    this.list = list;
    this.cb = cb;
    this.name = name;
    this.attributes = attributes;
  }
}

/** What debugTimers reports for one pending timer. */
export interface TimerSnapshot {
  clock: number;
  expireNs: number;
  name: string;
  attributes: number;
}

/**
 * A QEMUTimerList: the timers of one clock in one group, sorted by expiry
 * with ties in arming order.
 *
 * The live timers are `#q[#head .. #tail)`, ascending. The array is a ring
 * without the wrap: popping the head only bumps `#head`, an insertion or a
 * removal shifts whichever side of the slot is shorter, and when the tail
 * reaches the end the live run is moved back to the front (if at most half
 * the slots are live) or the array grows. So pops are O(1), mods cost a
 * binary search plus the shorter shift, and the steady state allocates
 * nothing. Freed slots hold null so that idle timers can be collected.
 */
export class TimerList {
  readonly clock: number;
  #notify: () => void;
  #q: (TimerNode | null)[] = [];
  #head = 0;
  #tail = 0;
  #destroyed = false;

  constructor(clock: number, notify: () => void) {
    this.clock = clock;
    this.#notify = notify;
    registry[clock].add(this);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  get hasTimers(): boolean {
    return this.#head < this.#tail;
  }

  notify(): void {
    this.#notify();
  }

  /** timer_mod_ns: `expire` is an integer, possibly negative. */
  modNs(node: TimerNode, expire: number): void {
    if (node.expire >= 0) this.#remove(node);
    if (this.#insert(node, expire)) this.#notify();
  }

  /** timer_mod_anticipate_ns: only ever moves a timer earlier. */
  modAnticipateNs(node: TimerNode, expire: number): void {
    if (node.expire >= 0) {
      if (node.expire <= expire) return;
      this.#remove(node);
    }
    if (this.#insert(node, expire)) this.#notify();
  }

  /** timer_del. */
  del(node: TimerNode): void {
    if (node.expire >= 0) this.#remove(node);
  }

  /** timerlist_run_timers. */
  run(): boolean {
    if (this.#head === this.#tail) return false;
    const clock = this.clock;
    if (Atomics.load(P, P_ENABLED + clock) === 0) return false;
    // One sample per pass: a callback that re-arms at or before it runs
    // again in this pass, anything later waits for the next one.
    const now = readClockNs(clock);
    let progress = false;
    running[clock]++;
    try {
      // Re-read the head each time: callbacks may mod, delete or destroy.
      while (this.#head < this.#tail) {
        const node = this.#q[this.#head]!;
        if (node.expire > now) break;
        this.#q[this.#head] = null;
        if (++this.#head === this.#tail) this.#head = this.#tail = 0;
        node.expire = -1;
        progress = true;
        // Popped before the call: if it throws, it is not run again, and the
        // timers behind it stay queued for the next pass.
        const cb = node.cb;
        if (tracing) traceCallNamed(K_TIMER, `timer ${node.name}`, clock, cb);
        else cb();
      }
    } finally {
      running[clock]--;
    }
    return progress;
  }

  /** timerlist_deadline_ns: -1 if empty or disabled, else max(0, head - now). */
  deadlineNs(): number {
    if (this.#head === this.#tail || Atomics.load(P, P_ENABLED + this.clock) === 0) return -1;
    const delta = this.#q[this.#head]!.expire - readClockNs(this.clock);
    return delta > 0 ? delta : 0;
  }

  /** Expiry of the first timer whose attributes all lie in `mask`, or -1. */
  firstExpireInMask(mask: number): number {
    const q = this.#q;
    for (let i = this.#head; i < this.#tail; i++) {
      const node = q[i]!;
      if ((node.attributes & ~mask) === 0) return node.expire;
    }
    return -1;
  }

  snapshot(out: TimerSnapshot[]): void {
    const q = this.#q;
    for (let i = this.#head; i < this.#tail; i++) {
      const n = q[i]!;
      out.push({ clock: this.clock, expireNs: n.expire, name: n.name, attributes: n.attributes });
    }
  }

  /** Idles every timer, unregisters the list; later mods are refused by the caller. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const q = this.#q;
    for (let i = this.#head; i < this.#tail; i++) q[i]!.expire = -1;
    this.#q = [];
    this.#head = this.#tail = 0;
    registry[this.clock].delete(this);
  }

  // Inserts after every timer whose expiry is ≤ `expire`, compared before
  // the clamp to 0 as QEMU does (a negative expiry lands ahead of timers
  // already at 0). Returns true if the timer became the head.
  #insert(node: TimerNode, expire: number): boolean {
    if (this.#tail === this.#q.length) this.#makeRoom();
    const q = this.#q;
    const h = this.#head;
    const t = this.#tail;
    let lo = h;
    let hi = t;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (q[mid]!.expire <= expire) lo = mid + 1;
      else hi = mid;
    }
    node.expire = expire > 0 ? expire : 0;
    if (h > 0 && lo - h < t - lo) {
      for (let i = h; i < lo; i++) q[i - 1] = q[i];
      this.#head = h - 1;
      q[lo - 1] = node;
      return lo === h;
    }
    for (let i = t; i > lo; i--) q[i] = q[i - 1];
    q[lo] = node;
    this.#tail = t + 1;
    return lo === h;
  }

  #remove(node: TimerNode): void {
    const q = this.#q;
    const h = this.#head;
    const t = this.#tail;
    // First slot with this expiry, then along the ties to the node itself.
    let lo = h;
    let hi = t;
    const e = node.expire;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (q[mid]!.expire < e) lo = mid + 1;
      else hi = mid;
    }
    while (lo < t && q[lo] !== node) lo++;
    if (lo === t) throw new Error("Timer list is corrupt: a pending timer is missing");
    if (lo - h < t - 1 - lo) {
      for (let i = lo; i > h; i--) q[i] = q[i - 1];
      q[h] = null;
      this.#head = h + 1;
    } else {
      for (let i = lo; i < t - 1; i++) q[i] = q[i + 1];
      q[t - 1] = null;
      this.#tail = t - 1;
    }
    if (this.#head === this.#tail) this.#head = this.#tail = 0;
    node.expire = -1;
  }

  // Called when the tail is at the end of the array: slide the live run to
  // the front if that frees at least half the slots, else grow.
  #makeRoom(): void {
    const q = this.#q;
    const h = this.#head;
    const t = this.#tail;
    const live = t - h;
    if (h > 0 && live * 2 <= q.length) {
      for (let i = 0; i < live; i++) q[i] = q[h + i];
      for (let i = live; i < t; i++) q[i] = null;
      this.#head = 0;
      this.#tail = live;
    } else {
      q.push(null);
    }
  }
}
