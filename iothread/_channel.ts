// The request channel of a context: its shared-memory layout (a header,
// a FIFO of slot numbers, fixed-size slots), a caller's view of it, and the
// caller-side protocol (claim a slot, publish it, wait for the reply). The
// home side (draining, running, replying) is _home.ts; the public API is
// remote_request.ts. Int32 words; Atomics operations are sequentially
// consistent, which gives every handshake below its barriers.
import type { AioContextHandle } from "../aio/handle.ts";
import { CTL_DESTROYED, CTL_DOORBELL_FD, CTL_ID } from "../aio/_ctl_block.ts";
import { remoteBhSchedule } from "../aio/_ctl_ops.ts";
import { WireReader, WireWriter } from "../_wire/codec.ts";
import { SabLink, SabOutbox, type SabPort } from "../_wire/sab_handoff.ts";
import { moduleUrl } from "../_wire/module_cache.ts";
import { getCurrentAioContext } from "../aio/current.ts";
import { pollCounters } from "../aio/_poll_counters.ts";
import { POLL_YIELD_AFTER_NS } from "../aio/aio_posix.ts";
import { libc } from "../sys/_libc.ts";
import type { PollParams } from "../aio/fd_handlers.ts";
import {
  K_REQUEST,
  requestFlowId,
  traceName,
  traceReceive,
  traceSend,
  tracing,
} from "../trace/_state.ts";

const T_SEND = traceName("request send");
const T_DONE = traceName("request reply read");

/**
 * A context's handle plus its request channel (the public type is
 * re-exported, documented, by remote_request.ts).
 */
export interface RemoteRequestChannel extends AioContextHandle {
  /** The slots and FIFO of the channel. */
  readonly requests: SharedArrayBuffer;
}

export const MAGIC = 0x52525131;
export const H_MAGIC = 0;
export const H_CLOSED = 1;
/** Callers between their CLOSED check and their publish (close waits for 0). */
export const H_ENTERED = 2;
export const H_QTAIL = 3;
export const H_FREE_SEQ = 4;
export const H_FREE_WAITERS = 5;
export const H_BH_SLOT = 6;
export const H_NSLOTS = 7;
export const H_SLOT_BYTES = 8;
export const H_CLAIM_HINT = 9;
export const H_CTX_ID = 10;
export const H_DOORBELL = 11;
export const H_KEY_LO = 12;
export const H_KEY_HI = 13;
export const H_SUBMITTED = 14;
export const HEADER_WORDS = 16;

export const SLOT_WORDS = 4;
export const S_STATE = 0;
export const S_KIND = 1;
export const S_LEN = 2;
export const S_ARG = 3;

export const FREE = 0;
export const CLAIMED = 1;
export const QUEUED = 2;
export const RUNNING = 3;
export const REPLIED = 4;

export const K_CALL = 1;
export const K_CO_ENTER = 2;
export const K_CO_SCHEDULE = 3;
export const K_MASK = 0xff;
export const F_WANT_REPLY = 0x100;
export const F_REPLY_ERROR = 0x200;

export const DEFAULT_SLOTS = 64;
export const DEFAULT_SLOT_BYTES = 4096;
/** Slices of a blocking wait, so a closed channel is noticed. */
export const WAIT_SLICE_MS = 100;

/** A caller's view of a channel (cached per descriptor). */
export class OpenChannel {
  readonly desc: RemoteRequestChannel;
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly ctl: Int32Array;
  readonly nslots: number;
  readonly slotBytes: number;
  readonly slotBase: number;
  readonly dataBase: number;
  readonly key: number;
  /**
   * How long a synchronous caller of this isolate spins on a reply before
   * sleeping: adapted per channel as a context's poll time is per handler.
   */
  replyPollNs = 0;

  constructor(desc: RemoteRequestChannel) {
    this.desc = desc;
    this.i32 = new Int32Array(desc.requests);
    this.u8 = new Uint8Array(desc.requests);
    this.dv = new DataView(desc.requests);
    this.ctl = new Int32Array(desc.ctl);
    if (Atomics.load(this.i32, H_MAGIC) !== MAGIC) {
      throw new TypeError("Not a remote request channel: bad header");
    }
    this.nslots = Atomics.load(this.i32, H_NSLOTS);
    this.slotBytes = Atomics.load(this.i32, H_SLOT_BYTES);
    this.slotBase = HEADER_WORDS + this.nslots;
    this.dataBase = (this.slotBase + this.nslots * SLOT_WORDS) * 4;
    this.key = channelKey(this.i32);
  }

  stateIndex(slot: number): number {
    return this.slotBase + slot * SLOT_WORDS + S_STATE;
  }

  word(slot: number, field: number): number {
    return this.slotBase + slot * SLOT_WORDS + field;
  }

  dataOffset(slot: number): number {
    return this.dataBase + slot * this.slotBytes;
  }

  get closed(): boolean {
    return Atomics.load(this.i32, H_CLOSED) !== 0 || Atomics.load(this.ctl, CTL_DESTROYED) !== 0;
  }

  get ctxId(): number {
    return Atomics.load(this.i32, H_CTX_ID);
  }
}

function channelKey(i32: Int32Array): number {
  return Atomics.load(i32, H_KEY_HI) * 0x100000000 + (Atomics.load(i32, H_KEY_LO) >>> 0);
}

// Per-isolate caches: descriptors opened here (by their SharedArrayBuffer
// object), and every channel seen, by doorbell fd, so that a plain
// AioContextHandle can be resolved once its channel has been seen.
const opened = new WeakMap<SharedArrayBuffer, OpenChannel>();
const byDoorbell = new Map<number, OpenChannel>();

export function openChannel(desc: RemoteRequestChannel): OpenChannel {
  let ch = opened.get(desc.requests);
  if (ch === undefined) {
    if (!(desc.ctl instanceof SharedArrayBuffer)) {
      throw new TypeError("Not a remote request channel: ctl must be a SharedArrayBuffer");
    }
    ch = new OpenChannel(desc);
    opened.set(desc.requests, ch);
    if (!ch.closed) byDoorbell.set(Atomics.load(ch.i32, H_DOORBELL), ch);
  }
  return ch;
}

/** Drops a closed channel from the by-doorbell lookup (if it is still the one there). */
export function forget(ch: OpenChannel): void {
  const door = Atomics.load(ch.i32, H_DOORBELL);
  if (byDoorbell.get(door) === ch) byDoorbell.delete(door);
}

/** Resolves a channel descriptor, or a plain handle whose channel this isolate has seen. */
export function resolve(target: RemoteRequestChannel | AioContextHandle): OpenChannel {
  if (target === null || typeof target !== "object") {
    throw new TypeError("Expected a RemoteRequestChannel or an AioContextHandle");
  }
  const req = (target as Partial<RemoteRequestChannel>).requests;
  if (req instanceof SharedArrayBuffer) return openChannel(target as RemoteRequestChannel);
  if (!(target.ctl instanceof SharedArrayBuffer)) {
    throw new TypeError("Not an AioContextHandle: ctl must be a SharedArrayBuffer");
  }
  const ctl = new Int32Array(target.ctl);
  const door = Atomics.load(ctl, CTL_DOORBELL_FD);
  const ch = byDoorbell.get(door);
  if (
    ch !== undefined && Atomics.load(ch.ctl, CTL_ID) === Atomics.load(ctl, CTL_ID) && !ch.closed
  ) {
    return ch;
  }
  if (Atomics.load(ctl, CTL_DESTROYED) !== 0) {
    throw new Deno.errors.BadResource("AioContext was destroyed");
  }
  throw new TypeError(
    `No request channel is known in this thread for AioContext ${
      Atomics.load(ctl, CTL_ID)
    }: post remoteRequestChannel(ctx) (an IOThread's handle is one) instead of ctx.handle()`,
  );
}

/** Keys of the channels whose home is this isolate (maintained by _home.ts). */
export const homeKeys: Set<number> = new Set();

export function isHome(ch: OpenChannel): boolean {
  return homeKeys.has(ch.key);
}

export function freeSlot(ch: OpenChannel, slot: number): void {
  Atomics.store(ch.i32, ch.stateIndex(slot), FREE);
  Atomics.add(ch.i32, H_FREE_SEQ, 1);
  if (Atomics.load(ch.i32, H_FREE_WAITERS) !== 0) Atomics.notify(ch.i32, H_FREE_SEQ);
}

/** Claims a free slot; waits (sliced) if `block`, else returns -1 when full. */
export function claimNow(ch: OpenChannel): number {
  const n = ch.nslots;
  const start = Atomics.add(ch.i32, H_CLAIM_HINT, 1) & (n - 1);
  for (let k = 0; k < n; k++) {
    const s = (start + k) & (n - 1);
    if (Atomics.compareExchange(ch.i32, ch.stateIndex(s), FREE, CLAIMED) === FREE) return s;
  }
  return -1;
}

export function claimBlocking(ch: OpenChannel): number {
  for (;;) {
    if (ch.closed) throw closedError(ch);
    const s = claimNow(ch);
    if (s >= 0) return s;
    if (isHome(ch)) {
      throw new Error(
        `The request channel of AioContext ${ch.ctxId} is full (its home is this thread)`,
      );
    }
    const seq = Atomics.load(ch.i32, H_FREE_SEQ);
    Atomics.add(ch.i32, H_FREE_WAITERS, 1);
    try {
      const again = claimNow(ch);
      if (again >= 0) return again;
      Atomics.wait(ch.i32, H_FREE_SEQ, seq, WAIT_SLICE_MS);
    } finally {
      Atomics.sub(ch.i32, H_FREE_WAITERS, 1);
    }
  }
}

export async function claimAsync(ch: OpenChannel): Promise<number> {
  for (;;) {
    if (ch.closed) throw closedError(ch);
    const s = claimNow(ch);
    if (s >= 0) return s;
    const seq = Atomics.load(ch.i32, H_FREE_SEQ);
    Atomics.add(ch.i32, H_FREE_WAITERS, 1);
    try {
      const again = claimNow(ch);
      if (again >= 0) return again;
      await waitAsync(ch.i32, H_FREE_SEQ, seq, WAIT_SLICE_MS);
    } finally {
      Atomics.sub(ch.i32, H_FREE_WAITERS, 1);
    }
  }
}

export function closedError(ch: OpenChannel): Error {
  return new Deno.errors.BadResource(`AioContext ${ch.ctxId} was destroyed`);
}

/** Publishes a claimed slot and rings the home; frees it if the channel closed. */
export function publish(
  ch: OpenChannel,
  slot: number,
  kindWord: number,
  len: number,
  arg: number,
): void {
  const i32 = ch.i32;
  Atomics.store(i32, ch.word(slot, S_KIND), kindWord);
  Atomics.store(i32, ch.word(slot, S_LEN), len);
  Atomics.store(i32, ch.word(slot, S_ARG), arg);
  Atomics.add(i32, H_ENTERED, 1);
  try {
    if (ch.closed) {
      Atomics.store(i32, ch.stateIndex(slot), FREE);
      throw closedError(ch);
    }
    // Recorded before the home can see it, so the flow goes forward in time.
    if (tracing) traceSend(K_REQUEST, T_SEND, slot, requestFlowId(ch.ctxId, slot));
    Atomics.store(i32, ch.stateIndex(slot), QUEUED);
    const t = Atomics.add(i32, H_QTAIL, 1);
    Atomics.store(i32, HEADER_WORDS + (t & (ch.nslots - 1)), slot + 1);
    Atomics.add(i32, H_SUBMITTED, 1);
    remoteBhSchedule(ch.ctl, Atomics.load(i32, H_BH_SLOT));
  } finally {
    Atomics.sub(i32, H_ENTERED, 1);
  }
}

// One writer for requests; the outboxes of the ports SharedArrayBuffers
// travel through (held strongly: a posted request may be read long after
// its sender dropped the buffer).
const writer = new WireWriter();
const outboxes = new WeakMap<SabPort, SabLink>();

function linkFor(port: SabPort): SabLink {
  let link = outboxes.get(port);
  if (link === undefined) {
    link = new SabLink(new SabOutbox((m) => port.postMessage(m)), null);
    outboxes.set(port, link);
  }
  return link;
}

/** Encodes a CALL request: module URL, export name, argument. */
export function encodeCall(
  ch: OpenChannel,
  module: string | URL,
  exportName: string,
  arg: unknown,
  port: SabPort | undefined,
): Uint8Array {
  const url = moduleUrl(module);
  if (typeof exportName !== "string" || exportName === "") {
    throw new TypeError("exportName must be a non-empty string");
  }
  const w = writer.reset(port === undefined ? null : linkFor(port), "Remote request argument");
  w.string(url);
  w.string(exportName);
  w.value(arg);
  const bytes = w.view();
  if (bytes.length > ch.slotBytes) {
    throw new RangeError(
      `Request of ${bytes.length} bytes exceeds the channel's limit of ${ch.slotBytes} bytes`,
    );
  }
  return bytes;
}

export function readReply(ch: OpenChannel, slot: number): unknown {
  if (tracing) traceReceive(K_REQUEST, T_DONE, slot, requestFlowId(ch.ctxId, slot));
  const kind = Atomics.load(ch.i32, ch.word(slot, S_KIND));
  let v: unknown;
  try {
    v = new WireReader(ch.u8, ch.dv, ch.dataOffset(slot)).value();
  } finally {
    freeSlot(ch, slot);
  }
  if (kind & F_REPLY_ERROR) throw v;
  return v;
}

// Async waits: Atomics.waitAsync does not keep Deno's loop alive by itself
// (denoland/deno#15358), so a ref'd timer is held while any is pending.
let keepAlive: ReturnType<typeof setInterval> | undefined;
let asyncWaiters = 0;

export async function waitAsync(
  i32: Int32Array,
  index: number,
  value: number,
  ms?: number,
): Promise<"ok" | "not-equal" | "timed-out"> {
  const r = Atomics.waitAsync(i32, index, value, ms);
  if (!r.async) return r.value;
  if (asyncWaiters++ === 0) keepAlive = setInterval(() => {}, 1 << 30);
  try {
    return await r.value;
  } finally {
    if (--asyncWaiters === 0) clearInterval(keepAlive);
  }
}

/** The reply spin of a thread with no current context (an IOThread's default). */
export const REPLY_POLL_DEFAULT: Required<PollParams> = { maxNs: 32768, grow: 0, shrink: 0 };
/** Reply-word loads between clock reads while spinning. */
const SPIN_CHECK_EVERY = 32;

/**
 * Waits for a synchronous request's reply: spins on the slot's state word
 * for up to the channel's adaptive window, then sleeps in Atomics.wait
 * (sliced, so a closed channel is noticed). The window follows the calling
 * thread's current context's poll parameters (aio_context_set_poll_params),
 * or {@linkcode REPLY_POLL_DEFAULT}, and adapts as QEMU's poll time does: a
 * reply that took longer than the window but less than the maximum grows
 * it, one that took longer than the maximum shrinks it.
 */
export function waitReplySync(ch: OpenChannel, slot: number): void {
  const i32 = ch.i32;
  const idx = ch.stateIndex(slot);
  const params = getCurrentAioContext()?.pollParams ?? REPLY_POLL_DEFAULT;
  const max = params.maxNs;
  if (max === 0) {
    ch.replyPollNs = 0;
    sleepForReply(ch, idx);
    pollCounters.replySlept++;
    return;
  }
  const start = performance.now();
  const window = ch.replyPollNs / 1e6;
  let polled = false;
  if (window > 0) {
    spin: for (;;) {
      for (let k = 0; k < SPIN_CHECK_EVERY; k++) {
        if (Atomics.load(i32, idx) === REPLIED) {
          polled = true;
          break spin;
        }
      }
      const spent = performance.now() - start;
      if (spent >= window) break;
      // As a context's busy poll does (aio_posix.ts): the replying thread
      // may be queued behind us on this CPU.
      if (spent * 1e6 > POLL_YIELD_AFTER_NS) libc().sched_yield();
    }
  }
  if (polled) pollCounters.replyPolled++;
  else {
    sleepForReply(ch, idx);
    pollCounters.replySlept++;
  }
  const blockNs = (performance.now() - start) * 1e6;
  ch.replyPollNs = adjustPollNs(ch.replyPollNs, blockNs, params);
}

/** adjust_polling_time of util/aio-posix.c, on a bare window. */
export function adjustPollNs(ns: number, blockNs: number, p: Required<PollParams>): number {
  if (blockNs <= ns) return ns;
  if (blockNs > p.maxNs) return p.shrink ? Math.floor(ns / p.shrink) : 0;
  if (ns < p.maxNs && blockNs < p.maxNs) {
    const next = ns ? ns * (p.grow || 2) : 4000;
    return next > p.maxNs ? p.maxNs : next;
  }
  return ns;
}

function sleepForReply(ch: OpenChannel, idx: number): void {
  const i32 = ch.i32;
  for (;;) {
    const s = Atomics.load(i32, idx);
    if (s === REPLIED) return;
    if (Atomics.wait(i32, idx, s, WAIT_SLICE_MS) === "timed-out" && ch.closed) {
      // Closed: either the reply is written right after, or the home died.
      if (Atomics.wait(i32, idx, s, WAIT_SLICE_MS) === "timed-out") throw closedError(ch);
    }
  }
}
