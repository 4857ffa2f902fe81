// Values crossing between the pool's owner and its workers: primitives go
// inline in the request record; everything else is node:v8 structured-clone
// bytes in the shared heap. Typed-array views over SharedArrayBuffers keep
// pointing at the same memory: a SharedArrayBuffer can reach another isolate
// only by postMessage, so each one is posted once on the worker's
// MessagePort and referred to by id in the bytes; the receiver pulls it
// with receiveMessageOnPort, synchronously, when it first meets the id.
import { Deserializer, Serializer } from "node:v8";
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import {
  decodeString,
  encodeString,
  TAG_FALSE,
  TAG_NULL,
  TAG_NUMBER,
  TAG_SAB,
  TAG_SERIAL,
  TAG_STRING,
  TAG_TRUE,
  TAG_UNDEFINED,
} from "./_shared.ts";

/** Port messages: a SharedArrayBuffer introduced, or one forgotten. */
export type SabMessage =
  | { readonly sab: SharedArrayBuffer; readonly id: number }
  | { readonly forget: number };

type ViewCtor = new (
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
) => ArrayBufferView;

const VIEW_KINDS: ViewCtor[] = [
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
  DataView as unknown as ViewCtor,
];
const F16 = (globalThis as { Float16Array?: ViewCtor }).Float16Array;
if (F16 !== undefined) VIEW_KINDS.push(F16);
const DATAVIEW_KIND = 11;
const SHARED_FLAG = 0x100;
/** The id is the receiver's own: a buffer it sent comes back as itself. */
const PEER_FLAG = 0x200;

function viewKind(v: ArrayBufferView): number {
  if (v instanceof DataView) return DATAVIEW_KIND;
  // Buffer and other subclasses travel as their base type.
  for (let k = 0; k < VIEW_KINDS.length; k++) {
    if (k !== DATAVIEW_KIND && v instanceof VIEW_KINDS[k]) return k;
  }
  throw new TypeError(`Cannot clone ${Object.prototype.toString.call(v)}`);
}

/**
 * The sending side of SharedArrayBuffer sharing: ids for the buffers this
 * side has sent. Ids are held weakly; once the sender's buffer is collected
 * the receivers are told to forget it.
 */
export class SabOutbox {
  #ids = new WeakMap<SharedArrayBuffer, number>();
  #live = new Map<number, WeakRef<SharedArrayBuffer>>();
  #next = 1;
  #post: (m: SabMessage) => void;
  #fin: FinalizationRegistry<number>;

  constructor(post: (m: SabMessage) => void) {
    this.#post = post;
    this.#fin = new FinalizationRegistry((id) => {
      this.#live.delete(id);
      try {
        this.#post({ forget: id });
      } catch {
        // The ports may be closed already.
      }
    });
  }

  idOf(sab: SharedArrayBuffer): number {
    let id = this.#ids.get(sab);
    if (id === undefined) {
      id = this.#next++;
      this.#ids.set(sab, id);
      this.#live.set(id, new WeakRef(sab));
      this.#fin.register(sab, id);
      this.#post({ sab, id });
    }
    return id;
  }

  /** A buffer this side sent, if still alive. */
  get(id: number): SharedArrayBuffer | undefined {
    return this.#live.get(id)?.deref();
  }

  /** Every buffer still alive, for a receiver that starts later. */
  snapshot(): Array<[number, SharedArrayBuffer]> {
    const out: Array<[number, SharedArrayBuffer]> = [];
    for (const [id, ref] of this.#live) {
      const sab = ref.deref();
      if (sab !== undefined) out.push([id, sab]);
    }
    return out;
  }
}

/** The receiving side: buffers by id, pulled from the port on demand. */
export class SabInbox {
  #map: Map<number, SharedArrayBuffer>;
  #ids = new WeakMap<SharedArrayBuffer, number>();
  #port: MessagePort;

  constructor(port: MessagePort, initial: Array<[number, SharedArrayBuffer]> = []) {
    this.#port = port;
    this.#map = new Map(initial);
    for (const [id, sab] of initial) this.#ids.set(sab, id);
  }

  /** The sender's id of a buffer received from it, if it is one. */
  idOf(sab: SharedArrayBuffer): number | undefined {
    return this.#ids.get(sab);
  }

  /** Applies every message already posted; returns whether any arrived. */
  drain(): boolean {
    let any = false;
    for (;;) {
      const m = receiveMessageOnPort(this.#port) as { message: SabMessage } | undefined;
      if (m === undefined) return any;
      any = true;
      const msg = m.message;
      if ("forget" in msg) {
        const sab = this.#map.get(msg.forget);
        if (sab !== undefined) this.#ids.delete(sab);
        this.#map.delete(msg.forget);
      } else {
        this.#map.set(msg.id, msg.sab);
        this.#ids.set(msg.sab, msg.id);
      }
    }
  }

  get(id: number): SharedArrayBuffer {
    let sab = this.#map.get(id);
    if (sab === undefined) {
      // The sender posts before it publishes the request: it is there.
      this.drain();
      sab = this.#map.get(id);
      if (sab === undefined) throw new Error(`SharedArrayBuffer #${id} never reached this thread`);
    }
    return sab;
  }
}

class PoolSerializer extends Serializer {
  #outbox: SabOutbox;
  #inbox: SabInbox | null;
  /** Buffers referenced: kept alive until the request completes. */
  readonly sabs: SharedArrayBuffer[] = [];

  constructor(outbox: SabOutbox, inbox: SabInbox | null) {
    super();
    this.#outbox = outbox;
    this.#inbox = inbox;
    // Host objects let views over SharedArrayBuffers keep their memory.
    (this as unknown as { _setTreatArrayBufferViewsAsHostObjects(b: boolean): void })
      ._setTreatArrayBufferViewsAsHostObjects(true);
  }

  _writeHostObject(object: object): void {
    const v = object as ArrayBufferView;
    const kind = viewKind(v);
    const length = kind === DATAVIEW_KIND ? v.byteLength : (v as Uint8Array).length;
    if (v.buffer instanceof SharedArrayBuffer) {
      this.sabs.push(v.buffer);
      const peer = this.#inbox?.idOf(v.buffer);
      this.writeUint32(kind | SHARED_FLAG | (peer !== undefined ? PEER_FLAG : 0));
      // The receiver's own id gives it back its own object; ours is the
      // fallback if it has dropped that object meanwhile.
      if (peer !== undefined) this.writeUint32(peer);
      this.writeUint32(this.#outbox.idOf(v.buffer));
      this.writeDouble(v.byteOffset);
      this.writeDouble(length);
    } else {
      this.writeUint32(kind);
      this.writeDouble(length);
      this.writeDouble(v.byteLength);
      this.writeRawBytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    }
  }

  _getSharedArrayBufferId(_sab: SharedArrayBuffer): number {
    throw new TypeError(
      "A SharedArrayBuffer inside a thread pool value must be passed as a typed array view over it",
    );
  }
}

class PoolDeserializer extends Deserializer {
  #inbox: SabInbox;
  #outbox: SabOutbox | null;

  constructor(bytes: Uint8Array, inbox: SabInbox, outbox: SabOutbox | null) {
    super(bytes);
    this.#inbox = inbox;
    this.#outbox = outbox;
  }

  #buffer(word: number): SharedArrayBuffer {
    const own = word & PEER_FLAG ? this.#outbox?.get(this.readUint32()) : undefined;
    const id = this.readUint32();
    return own ?? this.#inbox.get(id);
  }

  _readHostObject(): unknown {
    const word = this.readUint32();
    const kind = word & 0xff;
    const Ctor = VIEW_KINDS[kind];
    if (Ctor === undefined) throw new Error(`Unknown view kind ${kind} in thread pool value`);
    if (word & SHARED_FLAG) {
      const sab = this.#buffer(word);
      const byteOffset = this.readDouble();
      const length = this.readDouble();
      return new Ctor(sab, byteOffset, length);
    }
    const length = this.readDouble();
    const byteLength = this.readDouble();
    const raw = this.readRawBytes(byteLength) as Uint8Array;
    const ab = new ArrayBuffer(byteLength);
    new Uint8Array(ab).set(raw);
    return new Ctor(ab, 0, length);
  }
}

/** A value ready to be stored: a tag and, by tag, a number or bytes. */
export interface Encoded {
  tag: number;
  num: number;
  bytes: Uint8Array | null;
  /** SharedArrayBuffers the bytes refer to. */
  sabs: SharedArrayBuffer[] | null;
}

/**
 * Encodes a value for the other side. Throws a TypeError if it cannot be
 * cloned (functions, symbols, class instances with private state...).
 */
export function encodeValue(
  value: unknown,
  outbox: SabOutbox,
  what: string,
  inbox: SabInbox | null = null,
): Encoded {
  switch (typeof value) {
    case "undefined":
      return { tag: TAG_UNDEFINED, num: 0, bytes: null, sabs: null };
    case "boolean":
      return { tag: value ? TAG_TRUE : TAG_FALSE, num: 0, bytes: null, sabs: null };
    case "number":
      return { tag: TAG_NUMBER, num: value, bytes: null, sabs: null };
    case "string":
      return { tag: TAG_STRING, num: 0, bytes: encodeString(value), sabs: null };
  }
  if (value === null) return { tag: TAG_NULL, num: 0, bytes: null, sabs: null };
  if (value instanceof SharedArrayBuffer) {
    const enc = serialize(new Uint8Array(value), outbox, what, inbox);
    enc.tag = TAG_SAB;
    return enc;
  }
  return serialize(value, outbox, what, inbox);
}

export function serialize(
  value: unknown,
  outbox: SabOutbox,
  what: string,
  inbox: SabInbox | null = null,
): Encoded {
  const s = new PoolSerializer(outbox, inbox);
  try {
    s.writeHeader();
    s.writeValue(value);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new TypeError(`${what} cannot be cloned: ${msg}`, { cause: e });
  }
  const bytes = s.releaseBuffer() as Uint8Array;
  return { tag: TAG_SERIAL, num: 0, bytes, sabs: s.sabs.length > 0 ? s.sabs : null };
}

/** Decodes what {@linkcode encodeValue} produced. */
export function decodeValue(
  tag: number,
  num: number,
  bytes: Uint8Array | null,
  inbox: SabInbox,
  outbox: SabOutbox | null = null,
): unknown {
  switch (tag) {
    case TAG_UNDEFINED:
      return undefined;
    case TAG_NULL:
      return null;
    case TAG_FALSE:
      return false;
    case TAG_TRUE:
      return true;
    case TAG_NUMBER:
      return num;
    case TAG_STRING:
      return decodeString(bytes!);
    case TAG_SERIAL:
      return deserialize(bytes!, inbox, outbox);
    case TAG_SAB:
      return (deserialize(bytes!, inbox, outbox) as Uint8Array).buffer;
  }
  throw new Error(`Unknown thread pool value tag ${tag}`);
}

export function deserialize(
  bytes: Uint8Array,
  inbox: SabInbox,
  outbox: SabOutbox | null = null,
): unknown {
  const d = new PoolDeserializer(bytes, inbox, outbox);
  d.readHeader();
  return d.readValue();
}

/** Fields of an error that structured clone drops and we carry by hand. */
interface ErrorExtras {
  name?: string;
  message?: string;
  stack?: string;
  errno?: number;
  code?: string;
  syscall?: string;
}

/**
 * Encodes a thrown value: the value itself when it can be cloned, plus the
 * fields clone loses (a subclass's name, errno, code, syscall).
 */
export function encodeThrown(
  thrown: unknown,
  outbox: SabOutbox,
  inbox: SabInbox | null = null,
): Encoded {
  const extras: ErrorExtras = {};
  if (thrown instanceof Error) {
    extras.name = thrown.name;
    const t = thrown as Error & Record<string, unknown>;
    if (typeof t.errno === "number") extras.errno = t.errno;
    if (typeof t.code === "string") extras.code = t.code;
    if (typeof t.syscall === "string") extras.syscall = t.syscall;
  }
  try {
    return serialize([thrown, extras], outbox, "Thrown value", inbox);
  } catch {
    // Not cloneable (say, an error holding a function): keep its text.
    const e = thrown instanceof Error ? thrown : null;
    extras.message = e ? e.message : String(thrown);
    extras.stack = e?.stack;
    return serialize([null, extras], outbox, "Thrown value");
  }
}

/** Rebuilds a thrown value as an Error, restoring the carried fields. */
export function decodeThrown(
  bytes: Uint8Array,
  inbox: SabInbox,
  outbox: SabOutbox | null = null,
): Error {
  const [thrown, extras] = deserialize(bytes, inbox, outbox) as [unknown, ErrorExtras];
  let err: Error;
  if (thrown instanceof Error) {
    err = thrown;
  } else if (thrown === null && extras.message !== undefined) {
    err = new Error(extras.message);
    if (extras.stack !== undefined) err.stack = extras.stack;
  } else {
    err = new Error(`Thread pool job threw a non-Error value: ${String(thrown)}`, {
      cause: thrown,
    });
  }
  const e = err as Error & Record<string, unknown>;
  if (extras.name !== undefined && err.name !== extras.name) err.name = extras.name;
  if (extras.errno !== undefined) e.errno = extras.errno;
  if (extras.code !== undefined) e.code = extras.code;
  if (extras.syscall !== undefined) e.syscall = extras.syscall;
  return err;
}
