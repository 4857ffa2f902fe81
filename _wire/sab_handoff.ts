// The one way a SharedArrayBuffer reaches another thread. Shared memory
// cannot hold one, so each buffer is posted once on a message port, under
// an id, and encoded values refer to it by that id (codec.ts). The receiver
// pulls the port synchronously (receiveMessageOnPort) when it meets an id
// it does not know yet, so a thread blocked in a synchronous poll needs no
// event-loop turn; messages that arrive through a message handler instead
// are handed over with accept().
//
// Used by the thread pool (owner <-> each worker, one port each way) and by
// remote requests (any caller -> a context's home isolate).
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import {
  MissingSharedBuffer,
  type SabRefReader,
  type SabRefWriter,
  type WireReader,
  type WireWriter,
} from "./codec.ts";

/** The key that marks a handoff message among a port's other messages. */
export const SAB_TAG = "__aioloopSab";

/** A handoff message: a buffer introduced under an id, or an id forgotten. */
export type SabMessage =
  | { readonly [SAB_TAG]: number; readonly sab: SharedArrayBuffer }
  | { readonly [SAB_TAG]: number; readonly forget: true };

/**
 * A port the receiver can pull synchronously: a web MessagePort or a
 * node:worker_threads one (receiveMessageOnPort takes both in Deno).
 */
export type PullPort = MessagePort | globalThis.MessagePort;

/** Where messages go: a MessagePort, a Worker, `self`. */
export interface SabPort {
  postMessage(message: unknown): void;
}

/** Options of {@linkcode SabOutbox}. */
export interface SabOutboxOptions {
  /**
   * Hold buffers weakly: once the sender's buffer is collected, receivers are
   * told to forget it. The sender must then keep a buffer alive until the
   * receiver has read the value naming it (the pool keeps a request's
   * buffers until its completion). Default false: buffers stay held.
   */
  weak?: boolean;
}

// Ids are unique per outbox; a random prefix keeps outboxes of different
// isolates apart when several of them post to one receiving inbox.
function idBase(): number {
  const r = new Uint32Array(1);
  crypto.getRandomValues(r);
  return (r[0] & 0x1fffff) * 0x100000000;
}

/** The sending side: the ids of the buffers it has posted. */
export class SabOutbox {
  #ids = new WeakMap<SharedArrayBuffer, number>();
  #live = new Map<number, WeakRef<SharedArrayBuffer> | SharedArrayBuffer>();
  #base = idBase();
  #next = 1;
  #post: (m: SabMessage) => void;
  #fin: FinalizationRegistry<number> | null;

  /**
   * @param post Sends a message to every receiver (one port, or all of them).
   * @param options Weak or strong holding.
   */
  constructor(post: (m: SabMessage) => void, options: SabOutboxOptions = {}) {
    this.#post = post;
    this.#fin = options.weak
      ? new FinalizationRegistry((id) => {
        this.#live.delete(id);
        try {
          this.#post({ [SAB_TAG]: id, forget: true });
        } catch {
          // The ports may be closed already.
        }
      })
      : null;
  }

  /** The id of `sab`, posting it first if it is new. */
  idOf(sab: SharedArrayBuffer): number {
    let id = this.#ids.get(sab);
    if (id === undefined) {
      id = this.#base + this.#next++;
      // Post first: a receiver that meets the id finds the buffer on its port.
      this.#post({ [SAB_TAG]: id, sab });
      this.#ids.set(sab, id);
      if (this.#fin !== null) {
        this.#live.set(id, new WeakRef(sab));
        this.#fin.register(sab, id);
      } else this.#live.set(id, sab);
    }
    return id;
  }

  /** A buffer this side posted, if still alive. */
  get(id: number): SharedArrayBuffer | undefined {
    const e = this.#live.get(id);
    return e instanceof SharedArrayBuffer ? e : e?.deref();
  }

  /** Every buffer still alive, for a receiver that starts later. */
  snapshot(): Array<[number, SharedArrayBuffer]> {
    const out: Array<[number, SharedArrayBuffer]> = [];
    for (const id of this.#live.keys()) {
      const sab = this.get(id);
      if (sab !== undefined) out.push([id, sab]);
    }
    return out;
  }
}

/** The receiving side: buffers by id, from its ports or from accept(). */
export class SabInbox {
  #map: Map<number, SharedArrayBuffer>;
  #ids = new WeakMap<SharedArrayBuffer, number>();
  #ports: PullPort[] = [];
  /** Called with each id that arrives (a receiver waiting for it resumes). */
  onArrival: ((id: number) => void) | null = null;

  constructor(initial: Array<[number, SharedArrayBuffer]> = []) {
    this.#map = new Map(initial);
    for (const [id, sab] of initial) this.#ids.set(sab, id);
  }

  /** Pulls this port synchronously when an id is missing. */
  addPort(port: PullPort): void {
    this.#ports.push(port);
  }

  /** Stops pulling `port`. */
  removePort(port: PullPort): void {
    const i = this.#ports.indexOf(port);
    if (i >= 0) this.#ports.splice(i, 1);
  }

  /** The sender's id of a buffer received from it, if it is one. */
  idOf(sab: SharedArrayBuffer): number | undefined {
    return this.#ids.get(sab);
  }

  /** Applies a message received by a handler; false if it is not a handoff message. */
  accept(message: unknown): boolean {
    if (message === null || typeof message !== "object") return false;
    const m = message as Record<string, unknown>;
    const id = m[SAB_TAG];
    if (typeof id !== "number") return false;
    if (m.forget === true) {
      const sab = this.#map.get(id);
      if (sab !== undefined) this.#ids.delete(sab);
      this.#map.delete(id);
      return true;
    }
    if (!(m.sab instanceof SharedArrayBuffer)) return false;
    this.#map.set(id, m.sab);
    this.#ids.set(m.sab, id);
    this.onArrival?.(id);
    return true;
  }

  /** Applies every message already posted on the ports; returns whether any arrived. */
  drain(): boolean {
    let any = false;
    for (const port of this.#ports) {
      for (;;) {
        const m = receiveMessageOnPort(port as MessagePort) as { message: unknown } | undefined;
        if (m === undefined) break;
        any = true;
        this.accept(m.message);
      }
    }
    return any;
  }

  /** The buffer of `id`; throws {@linkcode MissingSharedBuffer} if it has not arrived. */
  get(id: number): SharedArrayBuffer {
    let sab = this.#map.get(id);
    if (sab === undefined) {
      // The sender posts before it publishes the value naming it.
      this.drain();
      sab = this.#map.get(id);
      if (sab === undefined) throw new MissingSharedBuffer(id);
    }
    return sab;
  }
}

/**
 * Both directions between two threads, as the codec's SabRefWriter and
 * SabRefReader. A buffer that came from the peer goes back under the peer's
 * own id too, so the peer gets its very object back (postMessage would make
 * a new one); the sender's id is the fallback if the peer dropped it.
 */
export class SabLink implements SabRefWriter, SabRefReader {
  readonly outbox: SabOutbox | null;
  readonly inbox: SabInbox | null;
  /** If set, every buffer written is pushed here (the caller keeps them alive). */
  kept: SharedArrayBuffer[] | null = null;

  constructor(outbox: SabOutbox | null, inbox: SabInbox | null) {
    this.outbox = outbox;
    this.inbox = inbox;
  }

  write(w: WireWriter, sab: SharedArrayBuffer): void {
    if (this.outbox === null) throw new TypeError("no port to send a SharedArrayBuffer through");
    this.kept?.push(sab);
    const peer = this.inbox?.idOf(sab);
    if (peer !== undefined) w.f64(-peer);
    w.f64(this.outbox.idOf(sab));
  }

  read(r: WireReader): SharedArrayBuffer {
    let id = r.f64();
    if (id < 0) {
      const own = this.outbox?.get(-id);
      id = r.f64();
      if (own !== undefined) return own;
    }
    if (this.inbox === null) throw new MissingSharedBuffer(id);
    return this.inbox.get(id);
  }
}
