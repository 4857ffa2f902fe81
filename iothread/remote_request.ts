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
 * Values are encoded into the slot with the codec the thread pool uses too,
 * a compact structured-clone subset (primitives, plain objects, arrays,
 * errors, typed arrays, ArrayBuffers, BigInt, Map, Set, Date; other
 * cloneable values through `node:v8` serialization). A SharedArrayBuffer
 * cannot be written into shared memory; it travels only when the caller has
 * a message port to the home isolate
 * ({@linkcode RemoteCallOptions.sharedBufferPort}; an IOThread has one): it
 * is posted there once, and requests refer to it by number.
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
 * import { assertEquals } from "@std/assert";
 * import { AioContext, Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, remoteCoEnter, remoteRequestChannel, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const channel = remoteRequestChannel(ctx); // post this to a Worker
 * let ran = false;
 * const id = registerCoroutine(Coroutine.create(function* () {
 *   ran = true;
 * }));
 * remoteCoEnter(channel, id); // what the Worker would do
 * assertEquals([ran, ctx.poll(true), ran], [false, true, true]);
 * unregisterCoroutine(id);
 * ```
 *
 * @module
 */
import type { AioContext } from "../aio/aio_context.ts";
import type { AioContextHandle } from "../aio/handle.ts";
import type { ModuleSpecifier } from "../_wire/module_cache.ts";
import { importModule, loadedModule, moduleUrl } from "../_wire/module_cache.ts";
import {
  claimAsync,
  claimBlocking,
  claimNow,
  closedError,
  encodeCall,
  F_WANT_REPLY,
  forget,
  H_CLOSED,
  H_FREE_SEQ,
  isHome,
  K_CALL,
  K_CO_ENTER,
  K_CO_SCHEDULE,
  openChannel,
  publish,
  readReply,
  REPLIED,
  resolve,
  WAIT_SLICE_MS,
  waitAsync,
  waitReplySync,
} from "./_channel.ts";
import {
  acceptSharedBufferMessage,
  homeContext,
  openHome,
  requestsPending,
  requestsSettled,
} from "./_home.ts";

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
export type RequestModule = ModuleSpecifier;

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
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const a = remoteRequestChannel(ctx);
 * assertEquals([a === remoteRequestChannel(ctx), a.id === ctx.id], [true, true]);
 * ```
 */
export function remoteRequestChannel(
  ctx: AioContext,
  options: RemoteRequestChannelOptions = {},
): RemoteRequestChannel {
  return openHome(ctx, options);
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
  const url = moduleUrl(module);
  if (loadedModule(url) === undefined) await importModule(url);
}

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
  return acceptSharedBufferMessage(message);
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
 * import { assertEquals } from "@std/assert";
 * import { remoteRequestsPending } from "@aioloop/aioloop/iothread";
 * assertEquals(remoteRequestsPending(), false);
 * ```
 */
export function remoteRequestsPending(): boolean {
  return requestsPending();
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
  return requestsSettled();
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
 * import { assertEquals } from "@std/assert";
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
 * assertEquals(await p, 3);
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
  let bytes = encodeCall(ch, module, exportName, arg, options?.sharedBufferPort);
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
 * Before it sleeps, the caller spins on the reply for an adaptive window,
 * as a context busy-polls its handlers: up to the `maxNs` of the calling
 * thread's current context's poll parameters (32768 ns when the thread has
 * no current context; none when `maxNs` is 0), growing and shrinking per
 * channel by QEMU's rules, so a quick reply costs no sleep and no wake-up.
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
  const bytes = encodeCall(ch, module, exportName, arg, options?.sharedBufferPort);
  const slot = claimBlocking(ch);
  ch.u8.set(bytes, ch.dataOffset(slot));
  publish(ch, slot, K_CALL | F_WANT_REPLY, bytes.length, 0);
  waitReplySync(ch, slot);
  return readReply(ch, slot);
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
  const bytes = encodeCall(ch, module, exportName, arg, options?.sharedBufferPort);
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
 * import { assertEquals } from "@std/assert";
 * import { AioContext, Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, remoteCoEnter, remoteRequestChannel, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * let n = 0;
 * const id = registerCoroutine(Coroutine.create(function* () {
 *   n++;
 * }));
 * remoteCoEnter(remoteRequestChannel(ctx), id);
 * ctx.poll(true);
 * assertEquals(n, 1);
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
 * import { assertEquals } from "@std/assert";
 * import { AioContext, Coroutine } from "@aioloop/aioloop";
 * import { registerCoroutine, remoteCoSchedule, remoteRequestChannel, unregisterCoroutine } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * let n = 0;
 * const id = registerCoroutine(Coroutine.create(function* () {
 *   n++;
 * }));
 * remoteCoSchedule(remoteRequestChannel(ctx), id);
 * while (n === 0) ctx.poll(true);
 * assertEquals(n, 1);
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
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { closeRemoteRequestChannel, remoteCoEnter, remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const ch = remoteRequestChannel(ctx);
 * closeRemoteRequestChannel(ch);
 * let error: unknown;
 * try {
 *   remoteCoEnter(ch, 1);
 * } catch (e) {
 *   error = e;
 * }
 * assertEquals(error instanceof Deno.errors.BadResource, true);
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
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { localRequestContext, remoteRequestChannel } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * assertEquals(localRequestContext(remoteRequestChannel(ctx)) === ctx, true);
 * ```
 */
export function localRequestContext(
  target: RemoteRequestChannel | AioContextHandle,
): AioContext | null {
  const ch = resolve(target);
  return homeContext(ch.key);
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
 * import { assertEquals } from "@std/assert";
 * import { AioContext } from "@aioloop/aioloop";
 * import { remoteRequestChannel, requestChannelKey } from "@aioloop/aioloop/iothread";
 * using ctx = AioContext.create();
 * const ch = remoteRequestChannel(ctx);
 * assertEquals(requestChannelKey(structuredClone(ch)) === requestChannelKey(ch), true);
 * ```
 */
export function requestChannelKey(target: RemoteRequestChannel | AioContextHandle): number {
  return resolve(target).key;
}
