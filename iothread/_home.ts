// The home side of request channels: the shared BH that drains a
// context's channel inside its poll(), runs each request (a call into a
// module's export, or a coroutine enter/schedule), and writes the reply;
// requests that must wait for the event loop (a module import, shared
// buffers in flight, a returned promise) are deferred and counted, so a
// thread looping on poll(true) knows to let its event loop turn.
import type { AioContext } from "../aio/aio_context.ts";
import type { QEMUBH } from "../aio/bh.ts";
import { CTL_DOORBELL_FD } from "../aio/_ctl_block.ts";
import { internals } from "../aio/_internal.ts";
import { aioCoEnter, aioCoSchedule } from "../aio/co_schedule.ts";
import { withCurrentAioContext } from "../aio/current.ts";
import { MissingSharedBuffer, WireReader, WireWriter } from "../_wire/codec.ts";
import {
  exportedFunction,
  importModule,
  loadedModule,
  type ModuleNamespace,
} from "../_wire/module_cache.ts";
import { type PullPort, SabInbox, SabLink } from "../_wire/sab_handoff.ts";
import type { Coroutine } from "../aio/coroutine.ts";
import {
  K_REQUEST,
  requestFlowId,
  traceCallNamed,
  traceName,
  traceReceive,
  traceRefresh,
  traceSend,
  tracing,
} from "../trace/_state.ts";
import { registeredCoroutine, unregisterCoroutine } from "./coroutine_registry.ts";
import {
  DEFAULT_SLOT_BYTES,
  DEFAULT_SLOTS,
  F_REPLY_ERROR,
  F_WANT_REPLY,
  forget,
  freeSlot,
  H_BH_SLOT,
  H_CLOSED,
  H_CTX_ID,
  H_DOORBELL,
  H_ENTERED,
  H_FREE_SEQ,
  H_KEY_HI,
  H_KEY_LO,
  H_MAGIC,
  H_NSLOTS,
  H_SLOT_BYTES,
  HEADER_WORDS,
  homeKeys,
  K_CALL,
  K_CO_ENTER,
  K_CO_SCHEDULE,
  K_MASK,
  MAGIC,
  type OpenChannel,
  openChannel,
  type RemoteRequestChannel,
  REPLIED,
  RUNNING,
  S_ARG,
  S_KIND,
  S_LEN,
  SLOT_WORDS,
} from "./_channel.ts";

const T_TAKE = traceName("request take");
const T_REPLY = traceName("request reply");

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
  /** Waiting for this module URL, or for this shared buffer. */
  url?: string;
  sab?: number;
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

/** The home of a channel key in this isolate, if any. */
export function homeContext(key: number): AioContext | null {
  return homes.get(key)?.ctx ?? null;
}

/** The channel of `ctx`, created on first call (see remoteRequestChannel). */
export function openHome(
  ctx: AioContext,
  options: { slots?: number; slotBytes?: number },
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
  homeKeys.add(ch.key);
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
  homeKeys.delete(ch.key);
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

/**
 * The shared BH: late errors first, then requests whose wait ended, then
 * what the ring holds (at most one round of slots, so a flood cannot keep
 * the rest of the loop out). Errors of no-reply requests leave poll().
 */
function drain(home: HomeChannel): void {
  if (home.closed) return;
  // A Worker blocked in its poll when tracing started learns of it here.
  traceRefresh();
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
  // Per request: one published after this drain began may follow a start.
  traceRefresh();
  if (tracing) traceReceive(K_REQUEST, T_TAKE, slot, requestFlowId(ch.ctxId, slot));
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

/** The coroutine a request names, or the error that leaves the home's poll(). */
function lookupForRequest(id: number, ctx: AioContext): Coroutine {
  const co = registeredCoroutine(id);
  if (co === undefined) {
    throw new Error(
      `No coroutine is registered under id ${id} (request to AioContext '${ctx.name}')`,
    );
  }
  if (co.done) {
    unregisterCoroutine(id);
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
      ? new WireReader(ch.u8, ch.dv, ch.dataOffset(d.slot))
      : new WireReader(d.bytes, new DataView(d.bytes.buffer), 0);
    r.sabs = sabLink;
    let url: string, name: string, arg: unknown;
    let ns: ModuleNamespace | undefined;
    try {
      url = r.string();
      name = r.string();
      ns = loadedModule(url);
      if (ns === undefined) {
        d.url = url;
        defer(home, d);
        startImport(url);
        return;
      }
      try {
        arg = r.value();
      } catch (e) {
        if (!(e instanceof MissingSharedBuffer)) throw e;
        d.sab = e.ref;
        defer(home, d);
        return;
      }
    } finally {
      // A no-reply request's slot is free once read (or copied by defer()).
      if (!d.freed) {
        d.freed = true;
        freeSlot(ch, d.slot);
      }
    }
    const fn = exportedFunction(ns, url, name);
    if (fn instanceof TypeError) throw fn;
    const call = (): unknown => fn(arg);
    const result = tracing
      ? traceCallNamed(K_REQUEST, `request ${name}`, d.slot, withCurrentAioContext, null, ctx, call)
      : withCurrentAioContext(ctx, call);
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

const replyWriter = new WireWriter();

function encodeReply(value: unknown): Uint8Array {
  const w = replyWriter.reset(null, "Reply");
  w.value(value);
  return w.view();
}

/** Encodes and publishes a reply; a reply that does not fit becomes an error. */
function writeReply(ch: OpenChannel, slot: number, isError: boolean, value: unknown): void {
  let bytes: Uint8Array;
  try {
    bytes = encodeReply(value);
    if (bytes.length > ch.slotBytes) {
      throw new RangeError(
        `Reply of ${bytes.length} bytes exceeds the channel's limit of ${ch.slotBytes} bytes`,
      );
    }
  } catch (e) {
    isError = true;
    bytes = encodeReply(e);
    if (bytes.length > ch.slotBytes) bytes = encodeReply(new RangeError("Reply too large"));
  }
  ch.u8.set(bytes, ch.dataOffset(slot));
  const kw = ch.word(slot, S_KIND);
  const kind = Atomics.load(ch.i32, kw);
  Atomics.store(ch.i32, kw, isError ? kind | F_REPLY_ERROR : kind & ~F_REPLY_ERROR);
  Atomics.store(ch.i32, ch.word(slot, S_LEN), bytes.length);
  if (tracing) traceSend(K_REQUEST, T_REPLY, slot, requestFlowId(ch.ctxId, slot));
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
      d.sab = undefined;
      if (error !== undefined) d.error = error;
      home.ready.push(d);
      moved = true;
    }
    if (moved) home.bh.schedule();
  }
  wakeSettled();
}

// ---------------------------------------------------------------------------
// Modules, shared buffers, and the isolate's pending async work

/** SharedArrayBuffers sent to this isolate's contexts, from every caller. */
const inbox = new SabInbox();
const sabLink = new SabLink(null, inbox);
inbox.onArrival = (id) => release((d) => d.sab === id);

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

function startImport(url: string): void {
  // The failure is reported to the requests; nobody awaits this promise.
  importModule(url).then(
    () => release((d) => d.url === url),
    (e: unknown) => release((d) => d.url === url, e),
  );
}

/** Hands a received message to the isolate's inbox; see acceptSharedBuffers. */
export function acceptSharedBufferMessage(message: unknown): boolean {
  return inbox.accept(message);
}

/**
 * Lets this isolate pull shared buffers from `port` synchronously when a
 * request names one that has not arrived (an IOThread's Worker does so
 * with the port its owner sends through).
 */
export function addSharedBufferPort(port: PullPort): void {
  inbox.addPort(port);
}

/** Whether deferred or promise-returning requests are pending here. */
export function requestsPending(): boolean {
  return asyncCount > 0;
}

/** Resolves when pending request work makes progress. */
export function requestsSettled(): Promise<void> {
  if (asyncCount === 0) return Promise.resolve();
  settled ??= Promise.withResolvers<void>();
  return settled.promise;
}
