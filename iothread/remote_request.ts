/**
 * Named remote requests: from any thread that holds a context's channel,
 * ask the context's home thread to call an exported function of a module
 * (by URL and export name, with a cloneable argument), or to enter or
 * schedule one of its coroutines by id. The request runs as a bottom half
 * inside the home context's `poll()`; a reply, if asked for, travels back
 * the same way.
 *
 * Transport. Nothing crosses as a closure or a `postMessage`: a home that is
 * blocked in `poll(true)` runs no message handlers, so every request must be
 * able to wake it through its doorbell. Each context that accepts requests
 * owns one channel: a SharedArrayBuffer of fixed-size slots plus a FIFO of
 * slot numbers, drained by a shared bottom half that callers schedule
 * through the context's control block (which rings the doorbell when the
 * home may be blocked). The channel descriptor,
 * {@linkcode RemoteRequestChannel}, *is* an {@linkcode AioContextHandle}
 * with one more field, so it is what you post to other threads.
 *
 * Values are encoded into the slot with a compact structured-clone-like
 * codec (primitives, plain objects, arrays, errors, typed arrays, BigInt;
 * other cloneable values through `node:v8` serialization). A
 * SharedArrayBuffer cannot be written into shared memory; it travels only
 * when the caller has a message port to the home isolate
 * ({@linkcode RemoteCallOptions.sharedBufferPort}; an IOThread has one).
 *
 * A request and its reply must each fit a slot (4096 bytes by default; see
 * {@linkcode RemoteRequestChannelOptions}); a larger one fails with a
 * `RangeError` at the caller, or an error reply.
 *
 * Counterpart: what QEMU does with `aio_bh_schedule_oneshot()` plus a
 * `QemuEvent` (the `ctx_run` of tests/unit/test-aio-multithread.c), and
 * `aio_co_schedule()` / `aio_co_enter()` of a coroutine from another thread.
 *
 * @example Asking a context to enter a coroutine by id
 * ```ts
 * import { AioContext, Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, remoteCoEnter, remoteRequestChannel, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const channel = remoteRequestChannel(ctx); // post this to a Worker
 * let ran = false;
 * const id = registerCoroutine(Coroutine.create(function* () {
 *   ran = true;
 * }));
 * remoteCoEnter(channel, id); // what the Worker would do
 * console.log(ran, ctx.poll(true), ran); // false true true
 * unregisterCoroutine(id);
 * ```
 *
 * @module
 */
import * as v8 from "node:v8";
import type { AioContext } from "../aio/aio_context.ts";
import type { QEMUBH } from "../aio/bh.ts";
import type { AioContextHandle } from "../aio/handle.ts";
import { CTL_DESTROYED, CTL_DOORBELL_FD, CTL_ID } from "../aio/_ctl_block.ts";
import { remoteBhSchedule } from "../aio/_ctl_ops.ts";
import { internals } from "../aio/_internal.ts";
import { Coroutine } from "../aio/coroutine.ts";
import { aioCoEnter, aioCoSchedule } from "../aio/co_schedule.ts";
import { withCurrentAioContext } from "../aio/current.ts";
import { SysError } from "../sys/errno.ts";

// ---------------------------------------------------------------------------
// Public types

/**
 * A context's handle plus its request channel: a structured-cloneable
 * descriptor to post to any thread that should send requests to the
 * context. Being an {@linkcode AioContextHandle}, it also opens with
 * `RemoteAioContext` for plain notifies and shared BHs.
 *
 * Counterpart: the `AioContext *` another QEMU thread holds to schedule work
 * on it.
 *
 * @example Posting a channel to a Worker
 * ```ts ignore
 * import { AioContext } from "@aioloop/aioloop";
 * import { remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const worker = new Worker(new URL("../aio/w.ts", import.meta.url), { type: "module" });
 * worker.postMessage(remoteRequestChannel(ctx));
 * ```
 */
export interface RemoteRequestChannel extends AioContextHandle {
  /** The slots and FIFO of the channel. */
  readonly requests: SharedArrayBuffer;
}

/** Geometry of a channel, fixed when {@linkcode remoteRequestChannel} first creates it. */
export interface RemoteRequestChannelOptions {
  /** Requests in flight at once (a power of two, 2 to 4096; default 64). */
  slots?: number;
  /** Bytes of one encoded request or reply (256 to 16 MiB; default 4096). */
  slotBytes?: number;
}

/** Options of {@linkcode remoteCall} and {@linkcode remotePost}. */
export interface RemoteCallOptions {
  /**
   * A port to the home isolate (its `Worker`, or a `MessagePort` whose other
   * end the home passes to {@linkcode acceptSharedBuffers}). SharedArrayBuffers
   * inside the argument are posted through it, because shared memory cannot
   * carry them; without a port they are a `TypeError`. The home isolate must
   * turn its event loop to receive them (an IOThread does).
   */
  sharedBufferPort?: { postMessage(message: unknown): void };
}

/** A module to call into: a URL, or a string holding an absolute URL. */
export type RequestModule = string | URL;

// ---------------------------------------------------------------------------
// Channel layout. Int32 words; Atomics operations are sequentially
// consistent, which gives every handshake below its barriers.

const MAGIC = 0x52525131;
const H_MAGIC = 0;
const H_CLOSED = 1;
/** Callers between their CLOSED check and their publish (close waits for 0). */
const H_ENTERED = 2;
const H_QTAIL = 3;
const H_FREE_SEQ = 4;
const H_FREE_WAITERS = 5;
const H_BH_SLOT = 6;
const H_NSLOTS = 7;
const H_SLOT_BYTES = 8;
const H_CLAIM_HINT = 9;
const H_CTX_ID = 10;
const H_DOORBELL = 11;
const H_KEY_LO = 12;
const H_KEY_HI = 13;
const H_SUBMITTED = 14;
const HEADER_WORDS = 16;

const SLOT_WORDS = 4;
const S_STATE = 0;
const S_KIND = 1;
const S_LEN = 2;
const S_ARG = 3;

const FREE = 0;
const CLAIMED = 1;
const QUEUED = 2;
const RUNNING = 3;
const REPLIED = 4;

const K_CALL = 1;
const K_CO_ENTER = 2;
const K_CO_SCHEDULE = 3;
const K_MASK = 0xff;
const F_WANT_REPLY = 0x100;
const F_REPLY_ERROR = 0x200;

const DEFAULT_SLOTS = 64;
const DEFAULT_SLOT_BYTES = 4096;
/** Slices of a blocking wait, so a closed channel is noticed. */
const WAIT_SLICE_MS = 100;

/** A caller's view of a channel (cached per descriptor). */
class OpenChannel {
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

function openChannel(desc: RemoteRequestChannel): OpenChannel {
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
function forget(ch: OpenChannel): void {
  const door = Atomics.load(ch.i32, H_DOORBELL);
  if (byDoorbell.get(door) === ch) byDoorbell.delete(door);
}

/** Resolves a channel descriptor, or a plain handle whose channel this isolate has seen. */
function resolve(target: RemoteRequestChannel | AioContextHandle): OpenChannel {
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

// ---------------------------------------------------------------------------
// Home side

const SLOT = Symbol("remote_request");

/** A request the home could not run yet (module loading, buffers in flight). */
interface Deferred {
  slot: number;
  wantReply: boolean;
  /** The encoded request, copied out of its slot once it has to wait. */
  bytes: Uint8Array | null;
  /** Length of the encoded request in the slot. */
  len: number;
  /** Whether the slot was released (no-reply requests free it once read). */
  freed: boolean;
  /** Waiting for this module URL, or for this shared-buffer batch. */
  url?: string;
  batch?: number;
  /** Set when the module failed to load: the request's answer. */
  error?: unknown;
}

interface HomeChannel {
  ctx: AioContext;
  ch: OpenChannel;
  /** The shared BH: drains the ring, and runs requests that became ready. */
  bh: QEMUBH;
  head: number;
  closed: boolean;
  /** Requests waiting for the event loop (import, shared buffers). */
  deferred: Set<Deferred>;
  /** Deferred requests whose wait is over; the BH runs them. */
  ready: Deferred[];
  /** Errors of no-reply work that finished late; the BH throws them. */
  errors: unknown[];
}

const homes = new Map<number, HomeChannel>();

/**
 * The context's request channel, created on first call (with `options`):
 * a shared bottom half that drains requests inside `poll()`, and the shared
 * memory they travel through. Post the returned descriptor to the threads
 * that will send requests. The channel is closed when the context is
 * destroyed: requests still queued then fail with `BadResource`.
 *
 * Counterpart: none (QEMU threads share the `AioContext *` directly).
 *
 * Thread: home thread only.
 *
 * @param ctx The context that will run the requests.
 * @param options Slot count and size; they apply when the channel is created.
 * @returns The cloneable channel descriptor (an AioContextHandle).
 * @throws {RangeError} If the options are out of range.
 * @throws {Deno.errors.BadResource} If `ctx` is destroyed.
 *
 * @example One channel per context
 * ```ts
 * import { AioContext } from "@aioloop/aioloop";
 * import { remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const a = remoteRequestChannel(ctx);
 * console.log(a === remoteRequestChannel(ctx), a.id === ctx.id); // true true
 * ```
 */
export function remoteRequestChannel(
  ctx: AioContext,
  options: RemoteRequestChannelOptions = {},
): RemoteRequestChannel {
  const ints = internals(ctx);
  const have = ints.slots.get(SLOT) as HomeChannel | undefined;
  if (have !== undefined) return have.ch.desc;
  const nslots = options.slots ?? DEFAULT_SLOTS;
  const slotBytes = options.slotBytes ?? DEFAULT_SLOT_BYTES;
  if (!Number.isInteger(nslots) || nslots < 2 || nslots > 4096 || (nslots & (nslots - 1)) !== 0) {
    throw new RangeError(`slots must be a power of two in [2, 4096], got ${nslots}`);
  }
  if (!Number.isInteger(slotBytes) || slotBytes < 256 || slotBytes > 1 << 24) {
    throw new RangeError(`slotBytes must be an integer in [256, ${1 << 24}], got ${slotBytes}`);
  }
  const handle = ctx.handle();
  const alignedBytes = (slotBytes + 7) & ~7;
  const words = HEADER_WORDS + nslots + nslots * SLOT_WORDS;
  const sab = new SharedArrayBuffer(words * 4 + nslots * alignedBytes);
  const i32 = new Int32Array(sab);
  const key = new Uint32Array(2);
  crypto.getRandomValues(key);
  key[1] = (key[1] & 0x1fffff) | 1; // 53 bits, never 0: compared as a Number
  i32[H_NSLOTS] = nslots;
  i32[H_SLOT_BYTES] = alignedBytes;
  i32[H_CTX_ID] = handle.id;
  i32[H_DOORBELL] = Atomics.load(ints.ctl, CTL_DOORBELL_FD);
  i32[H_KEY_LO] = key[0] | 0;
  i32[H_KEY_HI] = key[1];
  const desc: RemoteRequestChannel = Object.freeze({
    ctl: handle.ctl,
    id: handle.id,
    requests: sab,
  });
  let home: HomeChannel | null = null;
  const bh = ctx.bhNew(() => drain(home!), { name: "remote_request_bh", shared: true });
  Atomics.store(i32, H_BH_SLOT, bh.remote().slot);
  Atomics.store(i32, H_MAGIC, MAGIC);
  const ch = openChannel(desc);
  home = { ctx, ch, bh, head: 0, closed: false, deferred: new Set(), ready: [], errors: [] };
  homes.set(ch.key, home);
  ints.slots.set(SLOT, home);
  ints.destroyHooks.push(() => closeHome(home!));
  return desc;
}

/** At destroy: refuse new requests, then fail every one that was queued. */
function closeHome(home: HomeChannel): void {
  const { ch } = home;
  home.closed = true;
  Atomics.store(ch.i32, H_CLOSED, 1);
  // A caller that passed its CLOSED check is a few stores from publishing.
  while (Atomics.load(ch.i32, H_ENTERED) !== 0) { /* spin */ }
  const gone = () => new Deno.errors.BadResource(`AioContext '${home.ctx.name}' was destroyed`);
  for (;;) {
    const slot = dequeue(home);
    if (slot < 0) break;
    const kind = Atomics.load(ch.i32, ch.word(slot, S_KIND));
    if (kind & F_WANT_REPLY) writeReply(ch, slot, true, gone());
    else freeSlot(ch, slot);
  }
  for (const d of [...home.deferred, ...home.ready]) {
    asyncEnd();
    if (d.wantReply) writeReply(ch, d.slot, true, gone());
  }
  home.deferred.clear();
  home.ready.length = 0;
  home.errors.length = 0;
  // Wake callers waiting for a free slot, so they see CLOSED.
  Atomics.add(ch.i32, H_FREE_SEQ, 1);
  Atomics.notify(ch.i32, H_FREE_SEQ);
  homes.delete(ch.key);
  forget(ch);
  home.bh.delete();
  internals(home.ctx).slots.delete(SLOT);
}

function dequeue(home: HomeChannel): number {
  const { ch } = home;
  const pos = HEADER_WORDS + (home.head & (ch.nslots - 1));
  const v = Atomics.load(ch.i32, pos);
  if (v === 0) return -1;
  Atomics.store(ch.i32, pos, 0);
  home.head = (home.head + 1) >>> 0;
  return v - 1;
}

function freeSlot(ch: OpenChannel, slot: number): void {
  Atomics.store(ch.i32, ch.stateIndex(slot), FREE);
  Atomics.add(ch.i32, H_FREE_SEQ, 1);
  if (Atomics.load(ch.i32, H_FREE_WAITERS) !== 0) Atomics.notify(ch.i32, H_FREE_SEQ);
}

/**
 * The shared BH: late errors first, then requests whose wait ended, then
 * what the ring holds (at most one round of slots, so a flood cannot keep
 * the rest of the loop out). Errors of no-reply requests leave poll().
 */
function drain(home: HomeChannel): void {
  if (home.closed) return;
  let errors: unknown[] | null = home.errors.length > 0 ? home.errors.splice(0) : null;
  if (home.ready.length > 0) {
    const ready = home.ready;
    home.ready = [];
    for (const d of ready) {
      asyncEnd();
      try {
        if (d.error !== undefined) {
          if (!d.wantReply) throw d.error;
          writeReply(home.ch, d.slot, true, d.error);
        } else dispatchCall(home, d);
      } catch (e) {
        (errors ??= []).push(e);
      }
    }
  }
  let n = 0;
  for (; n < home.ch.nslots; n++) {
    const slot = dequeue(home);
    if (slot < 0) break;
    try {
      runSlot(home, slot);
    } catch (e) {
      (errors ??= []).push(e);
    }
  }
  if (n === home.ch.nslots) home.bh.schedule();
  if (errors !== null) {
    throw errors.length === 1
      ? errors[0]
      : new AggregateError(errors, "Several remote requests failed in one poll");
  }
}

function runSlot(home: HomeChannel, slot: number): void {
  const { ch, ctx } = home;
  const kindWord = Atomics.load(ch.i32, ch.word(slot, S_KIND));
  const kind = kindWord & K_MASK;
  const wantReply = (kindWord & F_WANT_REPLY) !== 0;
  if (kind === K_CO_ENTER || kind === K_CO_SCHEDULE) {
    const id = Atomics.load(ch.i32, ch.word(slot, S_ARG));
    freeSlot(ch, slot);
    const co = lookupForRequest(id, ctx);
    withCurrentAioContext(ctx, () => {
      if (kind === K_CO_ENTER) aioCoEnter(ctx, co);
      else aioCoSchedule(ctx, co);
    });
    return;
  }
  if (kind !== K_CALL) {
    if (!wantReply) freeSlot(ch, slot);
    else writeReply(ch, slot, true, new Error(`Unknown remote request kind ${kind}`));
    throw new Error(`Unknown remote request kind ${kind}`);
  }
  const len = Atomics.load(ch.i32, ch.word(slot, S_LEN));
  if (wantReply) Atomics.store(ch.i32, ch.stateIndex(slot), RUNNING);
  dispatchCall(home, { slot, wantReply, bytes: null, len, freed: wantReply });
}

function lookupForRequest(id: number, ctx: AioContext): Coroutine {
  const co = coroutines.get(id);
  if (co === undefined) {
    throw new Error(
      `No coroutine is registered under id ${id} (request to AioContext '${ctx.name}')`,
    );
  }
  if (co.done) {
    coroutines.delete(id);
    coIds.delete(co);
    throw new Deno.errors.BadResource(`Coroutine ${id} has terminated`);
  }
  return co;
}

/** Runs a CALL request, or defers it until its module or buffers are here. */
function dispatchCall(home: HomeChannel, d: Deferred): void {
  const { ch, ctx } = home;
  try {
    // Read in place while the request is still in its slot.
    const r = d.bytes === null
      ? new Reader(ch.u8, ch.dv, ch.dataOffset(d.slot))
      : new Reader(d.bytes, new DataView(d.bytes.buffer), 0);
    let url: string, name: string, arg: unknown;
    try {
      url = r.string();
      name = r.string();
      const batch = r.f64();
      if (batch !== 0) {
        const sabs = sabBatches.get(batch);
        if (sabs === undefined) {
          d.batch = batch;
          defer(home, d);
          return;
        }
        r.sabs = sabs;
      }
      if (!modules.has(url)) {
        d.url = url;
        defer(home, d);
        startImport(url);
        return;
      }
      if (batch !== 0) sabBatches.delete(batch);
      arg = r.value();
    } finally {
      // A no-reply request's slot is free once read (or copied by defer()).
      if (!d.freed) {
        d.freed = true;
        freeSlot(ch, d.slot);
      }
    }
    const ns = modules.get(url)!;
    const fn = ns[name];
    if (typeof fn !== "function") {
      throw new TypeError(`Module '${url}' has no exported function '${name}'`);
    }
    const result = withCurrentAioContext(ctx, () => (fn as (a: unknown) => unknown)(arg));
    if (isThenable(result)) {
      track(home, d, result);
      return;
    }
    if (d.wantReply) writeReply(ch, d.slot, false, result);
  } catch (e) {
    if (!d.wantReply) throw e;
    writeReply(ch, d.slot, true, e);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") &&
    typeof (v as { then?: unknown }).then === "function";
}

/** A called function returned a promise: answer when it settles. */
function track(home: HomeChannel, d: Deferred, p: PromiseLike<unknown>): void {
  asyncBegin();
  p.then(
    (v) => {
      if (d.wantReply) writeReply(home.ch, d.slot, false, v);
      asyncEnd();
    },
    (e) => {
      if (d.wantReply) writeReply(home.ch, d.slot, true, e);
      else if (!home.closed) {
        // No caller to tell: the error leaves the home's next poll.
        home.errors.push(e);
        home.bh.schedule();
      }
      asyncEnd();
    },
  );
}

/** Encodes and publishes a reply; a reply that does not fit becomes an error. */
function writeReply(ch: OpenChannel, slot: number, isError: boolean, value: unknown): void {
  let bytes: Uint8Array;
  try {
    bytes = encodeTop(value, null);
    if (bytes.length > ch.slotBytes) {
      throw new RangeError(
        `Reply of ${bytes.length} bytes exceeds the channel's limit of ${ch.slotBytes} bytes`,
      );
    }
  } catch (e) {
    isError = true;
    bytes = encodeTop(e, null);
    if (bytes.length > ch.slotBytes) bytes = encodeTop(new RangeError("Reply too large"), null);
  }
  ch.u8.set(bytes, ch.dataOffset(slot));
  const kw = ch.word(slot, S_KIND);
  const kind = Atomics.load(ch.i32, kw);
  Atomics.store(ch.i32, kw, isError ? kind | F_REPLY_ERROR : kind & ~F_REPLY_ERROR);
  Atomics.store(ch.i32, ch.word(slot, S_LEN), bytes.length);
  Atomics.store(ch.i32, ch.stateIndex(slot), REPLIED);
  Atomics.notify(ch.i32, ch.stateIndex(slot));
}

function defer(home: HomeChannel, d: Deferred): void {
  if (d.bytes === null) {
    const off = home.ch.dataOffset(d.slot);
    d.bytes = home.ch.u8.slice(off, off + d.len);
  }
  home.deferred.add(d);
  asyncBegin();
}

/** Moves the deferred requests that can run now to the BH of their home. */
function release(pred: (d: Deferred) => boolean, error?: unknown): void {
  for (const home of homes.values()) {
    let moved = false;
    for (const d of home.deferred) {
      if (!pred(d)) continue;
      home.deferred.delete(d);
      d.url = undefined;
      d.batch = undefined;
      if (error !== undefined) d.error = error;
      home.ready.push(d);
      moved = true;
    }
    if (moved) home.bh.schedule();
  }
  wakeSettled();
}

// ---------------------------------------------------------------------------
// Modules, shared-buffer batches, and the isolate's pending async work

const modules = new Map<string, Record<string, unknown>>();
const imports = new Map<string, Promise<void>>();
const sabBatches = new Map<number, SharedArrayBuffer[]>();
let asyncCount = 0;
let settled: PromiseWithResolvers<void> | null = null;

function asyncBegin(): void {
  asyncCount++;
}

function asyncEnd(): void {
  asyncCount--;
  wakeSettled();
}

function wakeSettled(): void {
  const s = settled;
  settled = null;
  s?.resolve();
}

function normalizeUrl(module: RequestModule): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== "string") throw new TypeError("Module must be a URL or a URL string");
  try {
    return new URL(module).href;
  } catch {
    throw new TypeError(`Module must be an absolute URL, got '${module}'`);
  }
}

/** The one dynamic import: loads `url` once, then runs what waited for it. */
function importModule(url: string): Promise<void> {
  let p = imports.get(url);
  if (p === undefined) {
    // The module is named at run time by the request: not analyzable.
    p = import(url).then(
      (ns: Record<string, unknown>) => {
        imports.delete(url);
        modules.set(url, ns);
        release((d) => d.url === url);
      },
      (e: unknown) => {
        imports.delete(url);
        // Failed imports answer their requests with the import's error.
        release((d) => d.url === url, e ?? new Error(`Import of '${url}' failed`));
        throw e;
      },
    );
    imports.set(url, p);
  }
  return p;
}

function startImport(url: string): void {
  // The failure is reported to the requests; nobody awaits this promise.
  importModule(url).catch(() => {});
}

/**
 * Loads a module into this isolate's request-module table, so requests
 * naming it run at once instead of waiting for a dynamic import (which,
 * in a thread blocked in `poll(true)`, progresses only when the thread
 * yields to its event loop).
 *
 * Counterpart: none (QEMU calls C functions directly).
 *
 * Thread: any (each isolate has its own table).
 *
 * @param module The module's absolute URL.
 * @returns Resolves once the module is loaded.
 * @throws {TypeError} If `module` is not an absolute URL.
 *
 * @example Preloading
 * ```ts
 * import { loadRequestModule } from "@aioloop/aioloop/iothread";
 * await loadRequestModule("data:text/javascript,export function hi() { return 1; }");
 * ```
 */
export async function loadRequestModule(module: RequestModule): Promise<void> {
  const url = normalizeUrl(module);
  if (!modules.has(url)) await importModule(url);
}

const BATCH_TAG = "__aioloopSharedBufferBatch";

/**
 * Hands shared buffers posted by a caller's
 * {@linkcode RemoteCallOptions.sharedBufferPort} to the request that waits
 * for them. Call it from the home isolate's message handler; an IOThread
 * does so itself.
 *
 * Counterpart: none.
 *
 * Thread: the home isolate of the context the request went to.
 *
 * @param message A received message.
 * @returns True if the message was a shared-buffer batch (and is consumed).
 *
 * @example In a Worker's message handler
 * ```ts ignore
 * import { acceptSharedBuffers } from "@aioloop/aioloop/iothread";
 * self.onmessage = (e) => {
 *   if (acceptSharedBuffers(e.data)) return;
 *   // ... other messages
 * };
 * ```
 */
export function acceptSharedBuffers(message: unknown): boolean {
  if (message === null || typeof message !== "object") return false;
  const m = message as Record<string, unknown>;
  if (m[BATCH_TAG] !== true || typeof m.batch !== "number" || !Array.isArray(m.sabs)) return false;
  const batch = m.batch;
  sabBatches.set(batch, m.sabs as SharedArrayBuffer[]);
  release((d) => d.batch === batch);
  return true;
}

/**
 * Whether requests that this isolate's contexts received are waiting on the
 * event loop (a module import, shared buffers in flight, or a promise
 * returned by a called function). A thread that loops on `poll(true)`
 * must then also let its event loop turn; see
 * {@linkcode remoteRequestsSettled}.
 *
 * Counterpart: none.
 *
 * Thread: any (per isolate).
 *
 * @returns True while such work is pending.
 *
 * @example Nothing pending
 * ```ts
 * import { remoteRequestsPending } from "@aioloop/aioloop/iothread";
 * console.log(remoteRequestsPending()); // false
 * ```
 */
export function remoteRequestsPending(): boolean {
  return asyncCount > 0;
}

/**
 * A promise that resolves when some pending request work (see
 * {@linkcode remoteRequestsPending}) makes progress: a module loaded, shared
 * buffers arrived, or a returned promise settled.
 *
 * Counterpart: none.
 *
 * Thread: any (per isolate).
 *
 * @returns The promise (already resolved when nothing is pending).
 *
 * @example A loop that also serves async requests
 * ```ts ignore
 * import { remoteRequestsPending, remoteRequestsSettled } from "@aioloop/aioloop/iothread";
 * while (running) {
 *   ctx.poll(!remoteRequestsPending());
 *   if (remoteRequestsPending()) {
 *     await Promise.race([remoteRequestsSettled(), new Promise((r) => setTimeout(r, 1))]);
 *   }
 * }
 * ```
 */
export function remoteRequestsSettled(): Promise<void> {
  if (asyncCount === 0) return Promise.resolve();
  settled ??= Promise.withResolvers<void>();
  return settled.promise;
}

// ---------------------------------------------------------------------------
// Coroutine registry (per isolate)

const coroutines = new Map<number, Coroutine>();
const coIds = new WeakMap<Coroutine, number>();
let nextCoId = 1;

/**
 * Registers a coroutine of this isolate under a number that other threads
 * can name in {@linkcode remoteCoEnter} / {@linkcode remoteCoSchedule}.
 * Registering the same coroutine again returns the same id. Ids are
 * positive int32 values, unique within the isolate, so they fit an
 * `Int32Array` slot where 0 means "none".
 *
 * Counterpart: none (QEMU threads share `Coroutine *` pointers).
 *
 * Thread: the coroutine's isolate.
 *
 * @param co The coroutine.
 * @returns Its id.
 * @throws {TypeError} If `co` is not a Coroutine.
 *
 * @example Register and look up
 * ```ts
 * import { Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, registeredCoroutine, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * const co = Coroutine.create(function* () {});
 * const id = registerCoroutine(co);
 * console.log(registeredCoroutine(id) === co, registerCoroutine(co) === id); // true true
 * unregisterCoroutine(id);
 * ```
 */
export function registerCoroutine(co: Coroutine): number {
  if (!(co instanceof Coroutine)) throw new TypeError("Not a Coroutine");
  const have = coIds.get(co);
  if (have !== undefined && coroutines.get(have) === co) return have;
  let id = nextCoId;
  while (coroutines.has(id)) id = id >= 0x7fffffff ? 1 : id + 1;
  nextCoId = id >= 0x7fffffff ? 1 : id + 1;
  coroutines.set(id, co);
  coIds.set(co, id);
  return id;
}

/**
 * Removes a coroutine id from the registry. Requests naming it afterwards
 * fail with an error in the home context.
 *
 * Counterpart: none.
 *
 * Thread: the coroutine's isolate.
 *
 * @param id An id from {@linkcode registerCoroutine}.
 * @returns Whether the id was registered.
 *
 * @example Unregister twice
 * ```ts
 * import { Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * const id = registerCoroutine(Coroutine.create(function* () {}));
 * console.log(unregisterCoroutine(id), unregisterCoroutine(id)); // true false
 * ```
 */
export function unregisterCoroutine(id: number): boolean {
  const co = coroutines.get(id);
  if (co === undefined) return false;
  coroutines.delete(id);
  coIds.delete(co);
  return true;
}

/**
 * The coroutine registered under `id` in this isolate, if any.
 *
 * Counterpart: none.
 *
 * Thread: any (per isolate).
 *
 * @param id The id.
 * @returns The coroutine, or undefined.
 *
 * @example Unknown id
 * ```ts
 * import { registeredCoroutine } from "@aioloop/aioloop/iothread";
 * console.log(registeredCoroutine(123456)); // undefined
 * ```
 */
export function registeredCoroutine(id: number): Coroutine | undefined {
  return coroutines.get(id);
}

/**
 * The id under which `co` is registered in this isolate, if it is.
 *
 * Counterpart: none.
 *
 * Thread: the coroutine's isolate.
 *
 * @param co The coroutine.
 * @returns Its id, or undefined.
 *
 * @example Before and after registering
 * ```ts
 * import { Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, registeredCoroutineId, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * const co = Coroutine.create(function* () {});
 * console.log(registeredCoroutineId(co)); // undefined
 * const id = registerCoroutine(co);
 * console.log(registeredCoroutineId(co) === id); // true
 * unregisterCoroutine(id);
 * ```
 */
export function registeredCoroutineId(co: Coroutine): number | undefined {
  const id = coIds.get(co);
  return id !== undefined && coroutines.get(id) === co ? id : undefined;
}

// ---------------------------------------------------------------------------
// Caller side

/** Claims a free slot; waits (sliced) if `block`, else returns -1 when full. */
function claimNow(ch: OpenChannel): number {
  const n = ch.nslots;
  const start = Atomics.add(ch.i32, H_CLAIM_HINT, 1) & (n - 1);
  for (let k = 0; k < n; k++) {
    const s = (start + k) & (n - 1);
    if (Atomics.compareExchange(ch.i32, ch.stateIndex(s), FREE, CLAIMED) === FREE) return s;
  }
  return -1;
}

function isHome(ch: OpenChannel): boolean {
  return homes.has(ch.key);
}

function claimBlocking(ch: OpenChannel): number {
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

async function claimAsync(ch: OpenChannel): Promise<number> {
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

function closedError(ch: OpenChannel): Error {
  return new Deno.errors.BadResource(`AioContext ${ch.ctxId} was destroyed`);
}

/** Publishes a claimed slot and rings the home; frees it if the channel closed. */
function publish(ch: OpenChannel, slot: number, kindWord: number, len: number, arg: number): void {
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
    Atomics.store(i32, ch.stateIndex(slot), QUEUED);
    const t = Atomics.add(i32, H_QTAIL, 1);
    Atomics.store(i32, HEADER_WORDS + (t & (ch.nslots - 1)), slot + 1);
    Atomics.add(i32, H_SUBMITTED, 1);
    remoteBhSchedule(ch.ctl, Atomics.load(i32, H_BH_SLOT));
  } finally {
    Atomics.sub(i32, H_ENTERED, 1);
  }
}

let batchSeq = 0;

function encodeCall(
  ch: OpenChannel,
  module: RequestModule,
  exportName: string,
  arg: unknown,
  options: RemoteCallOptions | undefined,
): Uint8Array {
  const url = normalizeUrl(module);
  if (typeof exportName !== "string" || exportName === "") {
    throw new TypeError("exportName must be a non-empty string");
  }
  const sabs: SharedArrayBuffer[] = [];
  const w = writer;
  w.reset();
  w.string(url);
  w.string(exportName);
  const batchPos = w.pos;
  w.f64(0);
  encodeValueTop(w, arg, sabs);
  if (sabs.length > 0) {
    const port = options?.sharedBufferPort;
    if (port === undefined) {
      throw new TypeError(
        "A SharedArrayBuffer cannot travel in a remote request without a sharedBufferPort",
      );
    }
    const rnd = new Uint32Array(1);
    crypto.getRandomValues(rnd);
    const batch = ((rnd[0] & 0x1fffff) * 0x100000000) + ((++batchSeq) >>> 0) + 1;
    w.setF64(batchPos, batch);
    port.postMessage({ [BATCH_TAG]: true, batch, sabs });
  }
  const bytes = w.view();
  if (bytes.length > ch.slotBytes) {
    throw new RangeError(
      `Request of ${bytes.length} bytes exceeds the channel's limit of ${ch.slotBytes} bytes`,
    );
  }
  return bytes;
}

function readReply(ch: OpenChannel, slot: number): unknown {
  const kind = Atomics.load(ch.i32, ch.word(slot, S_KIND));
  let v: unknown;
  try {
    v = new Reader(ch.u8, ch.dv, ch.dataOffset(slot)).value();
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

async function waitAsync(
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

/**
 * Calls export `exportName` of `module` with `arg` inside the home context
 * of `target` (as a bottom half of its `poll()`, with that context
 * current) and resolves with what it returns (awaited if it returns a
 * promise). A throw, a missing module or export, or the context's
 * destruction rejects the promise; nothing hangs.
 *
 * The home isolate imports the module on first use; until then the request
 * waits for its event loop (see {@linkcode remoteRequestsPending}).
 *
 * Counterpart: `ctx_run()` of tests/unit/test-aio-multithread.c
 * (`aio_bh_schedule_oneshot()` plus a `QemuEvent`).
 *
 * Thread: any.
 *
 * @param target The context's channel (or its handle, once this thread has seen the channel).
 * @param module Absolute URL of the module that exports the function.
 * @param exportName The export to call.
 * @param arg The argument (structured-clone-like; see the module docs).
 * @param options How to pass SharedArrayBuffers.
 * @returns The function's result.
 * @throws {TypeError} For a bad target, module URL or export name, or an
 * argument that cannot be cloned.
 * @throws {RangeError} If the encoded request exceeds the slot size.
 *
 * @example Calling into a context
 * ```ts
 * import { AioContext } from "@aioloop/aioloop";
 * import { remoteCall, remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const ch = remoteRequestChannel(ctx);
 * const mod = "data:text/javascript,export function add(a) { return a[0] + a[1]; }";
 * const p = remoteCall(ch, mod, "add", [1, 2]);
 * // This thread is the home: let it import the module, then run the BH.
 * while (!await Promise.race([p.then(() => true), new Promise((r) => setTimeout(r, 1, false))])) {
 *   ctx.poll(false);
 * }
 * console.log(await p); // 3
 * ```
 */
export async function remoteCall(
  target: RemoteRequestChannel | AioContextHandle,
  module: RequestModule,
  exportName: string,
  arg?: unknown,
  options?: RemoteCallOptions,
): Promise<unknown> {
  const ch = resolve(target);
  let bytes = encodeCall(ch, module, exportName, arg, options);
  let slot = ch.closed ? -1 : claimNow(ch);
  if (slot < 0) {
    // The encoder's buffer is reused by whoever runs while we wait.
    bytes = bytes.slice();
    slot = await claimAsync(ch);
  }
  ch.u8.set(bytes, ch.dataOffset(slot));
  publish(ch, slot, K_CALL | F_WANT_REPLY, bytes.length, 0);
  const idx = ch.stateIndex(slot);
  for (;;) {
    const s = Atomics.load(ch.i32, idx);
    if (s === REPLIED) return readReply(ch, slot);
    if ((await waitAsync(ch.i32, idx, s, WAIT_SLICE_MS)) === "timed-out" && ch.closed) {
      // Closed: either the reply is written right after, or the home died
      // without destroying its context (see closeRemoteRequestChannel).
      if ((await waitAsync(ch.i32, idx, s, WAIT_SLICE_MS)) === "timed-out") throw closedError(ch);
    }
  }
}

/**
 * Like {@linkcode remoteCall}, but blocks the calling thread (in
 * `Atomics.wait`, which Deno allows on the main thread too) until the
 * reply arrives. The calling thread's own event loop and contexts stand
 * still meanwhile: the called function must not wait for them, and a call
 * into a context of the calling thread is refused.
 *
 * Counterpart: `ctx_run()` of tests/unit/test-aio-multithread.c.
 *
 * Thread: any thread other than the home of `target`.
 *
 * @param target The context's channel (or its handle, once this thread has seen the channel).
 * @param module Absolute URL of the module that exports the function.
 * @param exportName The export to call.
 * @param arg The argument.
 * @param options How to pass SharedArrayBuffers.
 * @returns The function's result (a returned promise is awaited by the home).
 * @throws {Error} If the target's home is the calling thread, or whatever
 * the call threw.
 *
 * @example From a Worker
 * ```ts ignore
 * import { remoteCallSync } from "@aioloop/aioloop/iothread";
 * const n = remoteCallSync(channel, "file:///app/fns.ts", "count", null);
 * ```
 */
export function remoteCallSync(
  target: RemoteRequestChannel | AioContextHandle,
  module: RequestModule,
  exportName: string,
  arg?: unknown,
  options?: RemoteCallOptions,
): unknown {
  const ch = resolve(target);
  if (isHome(ch)) {
    throw new Error("A blocking request to a context of the calling thread would never be served");
  }
  const bytes = encodeCall(ch, module, exportName, arg, options);
  const slot = claimBlocking(ch);
  ch.u8.set(bytes, ch.dataOffset(slot));
  publish(ch, slot, K_CALL | F_WANT_REPLY, bytes.length, 0);
  const idx = ch.stateIndex(slot);
  for (;;) {
    const s = Atomics.load(ch.i32, idx);
    if (s === REPLIED) return readReply(ch, slot);
    if (Atomics.wait(ch.i32, idx, s, WAIT_SLICE_MS) === "timed-out" && ch.closed) {
      // Closed: either the reply is written right after, or the home died.
      if (Atomics.wait(ch.i32, idx, s, WAIT_SLICE_MS) === "timed-out") throw closedError(ch);
    }
  }
}

/**
 * Posts a call with no reply: export `exportName` of `module` runs with
 * `arg` in the home context's next `poll()`. An error it throws leaves that
 * `poll()` in the home thread.
 *
 * Counterpart: `aio_bh_schedule_oneshot()` on another thread's context.
 *
 * Thread: any.
 *
 * @param target The context's channel (or its handle, once this thread has seen the channel).
 * @param module Absolute URL of the module that exports the function.
 * @param exportName The export to call.
 * @param arg The argument.
 * @param options How to pass SharedArrayBuffers.
 * @throws {TypeError} For a bad target, module URL or export name.
 * @throws {Error} If the channel is full and this thread is its home.
 *
 * @example Fire and forget
 * ```ts ignore
 * import { remotePost } from "@aioloop/aioloop/iothread";
 * remotePost(channel, "file:///app/fns.ts", "tick", 1);
 * ```
 */
export function remotePost(
  target: RemoteRequestChannel | AioContextHandle,
  module: RequestModule,
  exportName: string,
  arg?: unknown,
  options?: RemoteCallOptions,
): void {
  const ch = resolve(target);
  const bytes = encodeCall(ch, module, exportName, arg, options);
  const slot = claimBlocking(ch);
  ch.u8.set(bytes, ch.dataOffset(slot));
  publish(ch, slot, K_CALL, bytes.length, 0);
}

function coRequest(
  target: RemoteRequestChannel | AioContextHandle,
  id: number,
  kind: number,
): void {
  if (!Number.isInteger(id) || id <= 0 || id > 0x7fffffff) {
    throw new RangeError(`Coroutine id must be a positive int32, got ${id}`);
  }
  const ch = resolve(target);
  const slot = claimBlocking(ch);
  publish(ch, slot, kind, 0, id);
}

/**
 * Asks the home thread of `target` to enter the coroutine registered there
 * under `id`. Nothing runs synchronously: the home's next `poll()` enters
 * it, with the context current, from the request BH, as QEMU's
 * `co_schedule_bh` does. An unknown or terminated id, or a coroutine
 * that is already scheduled, is an error leaving that `poll()`.
 *
 * Counterpart: `aio_co_enter()` called from a thread with no context
 * (test `/aio/coroutine/worker-thread-co-enter`).
 *
 * Thread: any.
 *
 * @param target The context's channel (or its handle, once this thread has seen the channel).
 * @param id The id from {@linkcode registerCoroutine} in the home isolate.
 * @throws {RangeError} If `id` is not a positive int32.
 * @throws {Deno.errors.BadResource} If the context was destroyed.
 *
 * @example See the module example
 * ```ts
 * import { AioContext, Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, remoteCoEnter, remoteRequestChannel, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * let n = 0;
 * const id = registerCoroutine(Coroutine.create(function* () {
 *   n++;
 * }));
 * remoteCoEnter(remoteRequestChannel(ctx), id);
 * ctx.poll(true);
 * console.log(n); // 1
 * unregisterCoroutine(id);
 * ```
 */
export function remoteCoEnter(target: RemoteRequestChannel | AioContextHandle, id: number): void {
  coRequest(target, id, K_CO_ENTER);
}

/**
 * Asks the home thread of `target` to `aio_co_schedule` the coroutine
 * registered there under `id`: the request BH schedules it, and the
 * context's `co_schedule_bh` enters it in the following poll. An unknown
 * id, or one already scheduled ("Co-routine was already scheduled"), is an
 * error leaving the home's `poll()`.
 *
 * Counterpart: `aio_co_schedule()` from another thread.
 *
 * Thread: any.
 *
 * @param target The context's channel (or its handle, once this thread has seen the channel).
 * @param id The id from {@linkcode registerCoroutine} in the home isolate.
 * @throws {RangeError} If `id` is not a positive int32.
 *
 * @example Two polls: the request, then co_schedule_bh
 * ```ts
 * import { AioContext, Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, remoteCoSchedule, remoteRequestChannel, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * let n = 0;
 * const id = registerCoroutine(Coroutine.create(function* () {
 *   n++;
 * }));
 * remoteCoSchedule(remoteRequestChannel(ctx), id);
 * while (n === 0) ctx.poll(true);
 * console.log(n); // 1
 * unregisterCoroutine(id);
 * ```
 */
export function remoteCoSchedule(
  target: RemoteRequestChannel | AioContextHandle,
  id: number,
): void {
  coRequest(target, id, K_CO_SCHEDULE);
}

/**
 * Marks a channel closed from any thread, for when its home thread died
 * without destroying its context (a crashed Worker): new requests fail at
 * once and callers waiting for a reply fail with `BadResource` instead of
 * waiting forever. The home side closes its channel itself on destroy.
 *
 * Counterpart: none.
 *
 * Thread: any.
 *
 * @param target The channel descriptor.
 *
 * @example Closing a channel whose home is gone
 * ```ts
 * import { AioContext } from "@aioloop/aioloop";
 * import { closeRemoteRequestChannel, remoteCoEnter, remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const ch = remoteRequestChannel(ctx);
 * closeRemoteRequestChannel(ch);
 * try {
 *   remoteCoEnter(ch, 1);
 * } catch (e) {
 *   console.log(e instanceof Deno.errors.BadResource); // true
 * }
 * ```
 */
export function closeRemoteRequestChannel(target: RemoteRequestChannel): void {
  const ch = openChannel(target);
  Atomics.store(ch.i32, H_CLOSED, 1);
  Atomics.add(ch.i32, H_FREE_SEQ, 1);
  Atomics.notify(ch.i32, H_FREE_SEQ);
  for (let s = 0; s < ch.nslots; s++) Atomics.notify(ch.i32, ch.stateIndex(s));
  forget(ch);
}

/**
 * Whether `target`'s home context is in the calling isolate, and if so
 * which context it is.
 *
 * Counterpart: `in_aio_context_home_thread()`.
 *
 * Thread: any.
 *
 * @param target A channel descriptor.
 * @returns The local context, or null if the home is another thread.
 *
 * @example A local channel
 * ```ts
 * import { AioContext } from "@aioloop/aioloop";
 * import { localRequestContext, remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * console.log(localRequestContext(remoteRequestChannel(ctx)) === ctx); // true
 * ```
 */
export function localRequestContext(
  target: RemoteRequestChannel | AioContextHandle,
): AioContext | null {
  const ch = resolve(target);
  return homes.get(ch.key)?.ctx ?? null;
}

/**
 * The identity of a channel, equal in every isolate that opened it (unlike
 * context ids, which each isolate numbers from 1).
 *
 * Counterpart: none.
 *
 * Thread: any.
 *
 * @param target A channel descriptor.
 * @returns A positive number below 2^53.
 *
 * @example Same key after cloning
 * ```ts
 * import { AioContext } from "@aioloop/aioloop";
 * import { remoteRequestChannel, requestChannelKey } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const ch = remoteRequestChannel(ctx);
 * console.log(requestChannelKey(structuredClone(ch)) === requestChannelKey(ch)); // true
 * ```
 */
export function requestChannelKey(target: RemoteRequestChannel | AioContextHandle): number {
  return resolve(target).key;
}

// ---------------------------------------------------------------------------
// Codec: a compact structured-clone subset written into shared memory.

const T_UNDEF = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_INT = 4;
const T_F64 = 5;
const T_STR = 6;
const T_ARR = 7;
const T_OBJ = 8;
const T_BIGINT = 9;
const T_V8 = 10;
const T_ERR = 11;
const T_SAB = 12;
const T_TYPED = 13;
const T_TYPED_SAB = 14;
const T_AB = 15;

type TypedCtor = new (
  buffer: ArrayBufferLike,
  byteOffset?: number,
  length?: number,
) => ArrayBufferView;
const TYPED: TypedCtor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as unknown as TypedCtor[];

const MAX_DEPTH = 512;
const SHORT_STRING = 64;
const STRING_CACHE_MAX = 1024;
const encodedStrings = new Map<string, Uint8Array>();
const decodedStrings = new Map<number, { b: Uint8Array; s: string }>();
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Thrown inside the walker to fall back to node:v8 for the whole value. */
class Fallback extends Error {}

class Writer {
  buf: Uint8Array = new Uint8Array(512);
  dv: DataView = new DataView(this.buf.buffer);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.reserve(4);
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  i32(v: number): void {
    this.reserve(4);
    this.dv.setInt32(this.pos, v, true);
    this.pos += 4;
  }

  f64(v: number): void {
    this.reserve(8);
    this.dv.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  setF64(at: number, v: number): void {
    this.dv.setFloat64(at, v, true);
  }

  string(s: string): void {
    if (s.length <= SHORT_STRING) {
      // Module URLs and export names repeat: encode each once.
      let b = encodedStrings.get(s);
      if (b === undefined) {
        if (encodedStrings.size >= STRING_CACHE_MAX) encodedStrings.clear();
        b = enc.encode(s);
        encodedStrings.set(s, b);
      }
      this.u32(b.length);
      this.reserve(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
      return;
    }
    this.reserve(4 + s.length * 3);
    const r = enc.encodeInto(s, this.buf.subarray(this.pos + 4));
    this.dv.setUint32(this.pos, r.written, true);
    this.pos += 4 + r.written;
  }

  raw(b: Uint8Array): void {
    this.u32(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The encoded bytes, valid until the next use of the writer. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

const writer = new Writer();
const replyWriter = new Writer();

function encodeTop(value: unknown, sabs: SharedArrayBuffer[] | null): Uint8Array {
  const w = replyWriter;
  w.reset();
  encodeValueTop(w, value, sabs);
  return w.view();
}

function encodeValueTop(w: Writer, value: unknown, sabs: SharedArrayBuffer[] | null): void {
  const start = w.pos;
  const sabStart = sabs?.length ?? 0;
  try {
    encodeValue(w, value, sabs, new Set(), 0);
  } catch (e) {
    if (!(e instanceof Fallback)) throw e;
    // Cycles and very deep values: node:v8 keeps identity and handles them.
    w.pos = start;
    if (sabs !== null) sabs.length = sabStart;
    w.u8(T_V8);
    w.raw(v8Serialize(value));
  }
}

function v8Serialize(value: unknown): Uint8Array {
  try {
    return v8.serialize(value);
  } catch (e) {
    throw new TypeError(`Value could not be cloned for a remote request: ${(e as Error).message}`);
  }
}

function encodeValue(
  w: Writer,
  v: unknown,
  sabs: SharedArrayBuffer[] | null,
  path: Set<object>,
  depth: number,
): void {
  switch (typeof v) {
    case "undefined":
      w.u8(T_UNDEF);
      return;
    case "boolean":
      w.u8(v ? T_TRUE : T_FALSE);
      return;
    case "number":
      if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
        w.u8(T_INT);
        w.i32(v);
      } else {
        w.u8(T_F64);
        w.f64(v);
      }
      return;
    case "string":
      w.u8(T_STR);
      w.string(v);
      return;
    case "bigint":
      w.u8(T_BIGINT);
      w.string(v.toString());
      return;
    case "function":
    case "symbol":
      throw new TypeError(`${String(v).slice(0, 40)} could not be cloned for a remote request`);
  }
  if (v === null) {
    w.u8(T_NULL);
    return;
  }
  const o = v as object;
  if (depth > MAX_DEPTH || path.has(o)) throw new Fallback();
  if (o instanceof SharedArrayBuffer) {
    if (sabs === null) throw new TypeError("A SharedArrayBuffer cannot travel in a reply");
    w.u8(T_SAB);
    w.u32(sabIndex(sabs, o));
    return;
  }
  if (ArrayBuffer.isView(o) && !(o instanceof DataView)) {
    const code = TYPED.findIndex((C) => o instanceof C);
    if (code >= 0) {
      const ta = o as unknown as {
        buffer: ArrayBufferLike;
        byteOffset: number;
        byteLength: number;
        length: number;
      };
      if (ta.buffer instanceof SharedArrayBuffer) {
        if (sabs === null) throw new TypeError("A SharedArrayBuffer cannot travel in a reply");
        w.u8(T_TYPED_SAB);
        w.u8(code);
        w.u32(sabIndex(sabs, ta.buffer));
        w.u32(ta.byteOffset);
        w.u32(ta.length);
      } else {
        w.u8(T_TYPED);
        w.u8(code);
        w.u32(ta.length);
        w.raw(new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength));
      }
      return;
    }
  }
  if (o instanceof ArrayBuffer) {
    w.u8(T_AB);
    w.raw(new Uint8Array(o));
    return;
  }
  path.add(o);
  try {
    if (Array.isArray(o)) {
      w.u8(T_ARR);
      w.u32(o.length);
      for (let i = 0; i < o.length; i++) encodeValue(w, o[i], sabs, path, depth + 1);
      return;
    }
    if (o instanceof Error) {
      encodeError(w, o, sabs, path, depth);
      return;
    }
    const proto = Object.getPrototypeOf(o);
    if (proto === Object.prototype || proto === null) {
      const keys = Object.keys(o);
      w.u8(T_OBJ);
      w.u32(keys.length);
      for (const k of keys) {
        w.string(k);
        encodeValue(w, (o as Record<string, unknown>)[k], sabs, path, depth + 1);
      }
      return;
    }
  } finally {
    path.delete(o);
  }
  // Map, Set, Date, RegExp, class instances ...: node:v8, which cannot
  // carry shared memory (it then throws a clear error).
  w.u8(T_V8);
  w.raw(v8Serialize(o));
}

function sabIndex(sabs: SharedArrayBuffer[], sab: SharedArrayBuffer): number {
  const i = sabs.indexOf(sab);
  if (i >= 0) return i;
  sabs.push(sab);
  return sabs.length - 1;
}

function encodeError(
  w: Writer,
  e: Error,
  sabs: SharedArrayBuffer[] | null,
  path: Set<object>,
  depth: number,
): void {
  w.u8(T_ERR);
  w.string(String(e.name));
  w.string(String(e.message));
  w.string(typeof e.stack === "string" ? e.stack : "");
  const hasCause = Object.hasOwn(e, "cause");
  w.u8(hasCause ? 1 : 0);
  if (hasCause) encodeValue(w, e.cause, sabs, path, depth + 1);
  const extra: Record<string, unknown> = {};
  for (const k of Object.keys(e)) {
    if (k === "cause" || k === "message" || k === "stack" || k === "name") continue;
    const val = (e as unknown as Record<string, unknown>)[k];
    if (typeof val !== "function" && typeof val !== "symbol") extra[k] = val;
  }
  if (e instanceof AggregateError) extra.errors = e.errors;
  encodeValue(w, extra, sabs, path, depth + 1);
}

class Reader {
  b: Uint8Array;
  dv: DataView;
  pos: number;
  sabs: SharedArrayBuffer[] | null = null;

  /** Reads `b` (and `dv`, a view of the same buffer) from byte `pos`. */
  constructor(b: Uint8Array, dv: DataView, pos: number) {
    this.b = b;
    this.dv = dv;
    this.pos = pos;
  }

  u8(): number {
    return this.b[this.pos++];
  }

  u32(): number {
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(): number {
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  string(): string {
    const n = this.u32();
    const b = this.b;
    const p = this.pos;
    this.pos += n;
    if (n > SHORT_STRING) return dec.decode(b.slice(p, p + n));
    // Decoding from shared memory is slow; short strings repeat (URLs,
    // export names, keys), so look them up by a hash of their bytes.
    let h = n;
    for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + b[p + i]) | 0;
    const e = decodedStrings.get(h);
    if (e !== undefined && e.b.length === n) {
      let i = 0;
      while (i < n && e.b[i] === b[p + i]) i++;
      if (i === n) return e.s;
    }
    const copy = b.slice(p, p + n);
    const str = dec.decode(copy);
    if (decodedStrings.size >= STRING_CACHE_MAX) decodedStrings.clear();
    decodedStrings.set(h, { b: copy, s: str });
    return str;
  }

  raw(): Uint8Array {
    const n = this.u32();
    const r = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  sab(): SharedArrayBuffer {
    const i = this.u32();
    const s = this.sabs?.[i];
    if (s === undefined) throw new Error("Shared buffer missing from a remote request");
    return s;
  }

  value(): unknown {
    const t = this.u8();
    switch (t) {
      case T_UNDEF:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_INT: {
        const v = this.dv.getInt32(this.pos, true);
        this.pos += 4;
        return v;
      }
      case T_F64:
        return this.f64();
      case T_STR:
        return this.string();
      case T_BIGINT:
        return BigInt(this.string());
      case T_ARR: {
        const n = this.u32();
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = this.value();
        return a;
      }
      case T_OBJ: {
        const n = this.u32();
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.string();
          const v = this.value();
          // __proto__ as an own key must stay data, as structured clone keeps it.
          Object.defineProperty(o, k, {
            value: v,
            writable: true,
            enumerable: true,
            configurable: true,
          });
        }
        return o;
      }
      case T_V8:
        return v8.deserialize(this.raw());
      case T_ERR:
        return this.error();
      case T_SAB:
        return this.sab();
      case T_TYPED: {
        const C = TYPED[this.u8()];
        const len = this.u32();
        const bytes = this.raw();
        return new C(bytes.buffer, 0, len);
      }
      case T_TYPED_SAB: {
        const C = TYPED[this.u8()];
        const sab = this.sab();
        const off = this.u32();
        const len = this.u32();
        return new C(sab, off, len);
      }
      case T_AB:
        return this.raw().buffer;
      default:
        throw new Error(`Corrupt remote request value (tag ${t})`);
    }
  }

  error(): Error {
    const name = this.string();
    const message = this.string();
    const stack = this.string();
    const hasCause = this.u8() === 1;
    const cause = hasCause ? this.value() : undefined;
    const extra = this.value() as Record<string, unknown>;
    return makeError(name, message, stack, hasCause, cause, extra);
  }
}

const BUILTIN_ERRORS: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

function makeError(
  name: string,
  message: string,
  stack: string,
  hasCause: boolean,
  cause: unknown,
  extra: Record<string, unknown>,
): Error {
  let e: Error;
  const opts = hasCause ? { cause } : undefined;
  if (name === "AggregateError") {
    e = new AggregateError(Array.isArray(extra.errors) ? extra.errors : [], message, opts);
    delete extra.errors;
  } else if (name === "SysError") {
    e = Object.create(SysError.prototype) as Error;
    Object.defineProperty(e, "message", { value: message, writable: true, configurable: true });
    if (hasCause) {
      Object.defineProperty(e, "cause", { value: cause, writable: true, configurable: true });
    }
  } else {
    const denoErrors = Deno.errors as unknown as Record<string, ErrorConstructor | undefined>;
    const C = BUILTIN_ERRORS[name] ?? denoErrors[name] ?? Error;
    e = new C(message, opts);
    if (e.name !== name) {
      Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
    }
  }
  if (stack !== "") {
    Object.defineProperty(e, "stack", { value: stack, writable: true, configurable: true });
  }
  Object.assign(e, extra);
  return e;
}
