// The machinery of util/qemu-timer.c behind aio/timer.ts: the per-isolate
// state of the four clocks, the registry of timer lists per clock, and the
// sorted timer list itself. Arguments are validated by timer.ts; nothing
// here is public API.
import { CLOCK_MONOTONIC, CLOCK_REALTIME, clockGettimeNs } from "../sys/clock.ts";

/** Number of clocks (QEMU_CLOCK_MAX). */
export const CLOCK_COUNT = 4;
const VIRTUAL = 1;
const HOST = 2;

// Clock state lives in the isolate: a Worker has its own copy, as it has its
// own module instance. QEMU keeps one process-wide copy.
const enabled: boolean[] = [true, false, true, true];
// How many timer callbacks of each clock are on the stack; disabling a clock
// while one is would deadlock QEMU's qemu_clock_enable, so we refuse it.
const running: number[] = [0, 0, 0, 0];
// Every live list per clock, so that enabling a clock or moving the virtual
// clock can wake each context whose poll may be waiting on it.
const registry: Set<TimerList>[] = [new Set(), new Set(), new Set(), new Set()];
let virtualNs = 0;

/** Reads a clock in ns; the clock number must be valid. */
export function readClockNs(clock: number): number {
  switch (clock) {
    case VIRTUAL:
      return virtualNs;
    case HOST:
      return clockGettimeNs(CLOCK_REALTIME);
    default:
      // REALTIME, and VIRTUAL_RT as QEMU has it without icount.
      return clockGettimeNs(CLOCK_MONOTONIC);
  }
}

/** Sets the virtual clock and wakes every list on it. */
export function setVirtualNs(ns: number): void {
  virtualNs = ns;
  notifyClock(VIRTUAL);
}

export function isClockEnabled(clock: number): boolean {
  return enabled[clock];
}

/** qemu_clock_enable: enabling wakes every list on the clock. */
export function setClockEnabled(clock: number, on: boolean): void {
  const old = enabled[clock];
  if (old && !on && running[clock] > 0) {
    throw new Error(
      `Cannot disable clock ${clock} from inside one of its timer callbacks: QEMU would deadlock`,
    );
  }
  enabled[clock] = on;
  if (on && !old) notifyClock(clock);
}

/** qemu_clock_notify: calls the notify hook of every list on the clock. */
export function notifyClock(clock: number): void {
  for (const list of registry[clock]) list.notify();
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
    if (!enabled[clock]) return false;
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
        cb();
      }
    } finally {
      running[clock]--;
    }
    return progress;
  }

  /** timerlist_deadline_ns: -1 if empty or disabled, else max(0, head - now). */
  deadlineNs(): number {
    if (this.#head === this.#tail || !enabled[this.clock]) return -1;
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
