// The one value codec of every cross-thread path (thread pool records,
// IOThread request slots, and what comes next: vCPUs, RCU). A compact
// structured-clone subset written straight into shared memory: primitives,
// plain objects, arrays, errors (with their class, cause and own fields),
// typed arrays and DataViews, ArrayBuffers, BigInt, Map, Set, Date. Other
// cloneable values (RegExp, class instances...) go through node:v8, which
// cannot carry shared memory. Cycles and very deep values fall back to
// node:v8 for the whole value.
//
// SharedArrayBuffers cannot be written into shared memory: the encoder asks
// a SabRefWriter for a number that names the buffer, and the decoder asks a
// SabRefReader for the buffer of a number (see sab_handoff.ts). Without one,
// shared memory is a TypeError.
//
// Format: one tag byte per value, then its payload, little-endian. The tags
// below are the only tag table of the wire format.
import * as v8 from "node:v8";
import { SysError } from "../sys/errno.ts";

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
const T_VIEW = 13;
const T_VIEW_SAB = 14;
const T_AB = 15;
const T_MAP = 16;
const T_SET = 17;
const T_DATE = 18;

/** Writes a reference to a SharedArrayBuffer into encoded bytes (see sab_handoff.ts). */
export interface SabRefWriter {
  /** Writes what the peer's {@linkcode SabRefReader} turns back into `sab`. */
  write(w: WireWriter, sab: SharedArrayBuffer): void;
}

/** Reads what a {@linkcode SabRefWriter} wrote. */
export interface SabRefReader {
  /** The buffer referred to; throws {@linkcode MissingSharedBuffer} if it has not arrived. */
  read(r: WireReader): SharedArrayBuffer;
}

/** Thrown by a SabRefReader when a buffer has not reached this thread yet. */
export class MissingSharedBuffer extends Error {
  /** The reference that could not be resolved. */
  readonly ref: number;

  constructor(ref: number) {
    super(`SharedArrayBuffer #${ref} has not reached this thread`);
    this.name = "MissingSharedBuffer";
    this.ref = ref;
  }
}

type ViewCtor = new (
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
) => ArrayBufferView;
const VIEWS: ViewCtor[] = [
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
  DataView,
] as unknown as ViewCtor[];
const DATAVIEW = 11;
const F16 = (globalThis as { Float16Array?: ViewCtor }).Float16Array;
if (F16 !== undefined) VIEWS.push(F16);

function viewKind(v: ArrayBufferView): number {
  if (v instanceof DataView) return DATAVIEW;
  // Buffer and other subclasses travel as their base type.
  for (let k = 0; k < VIEWS.length; k++) if (k !== DATAVIEW && v instanceof VIEWS[k]) return k;
  return -1;
}

const MAX_DEPTH = 512;
const SHORT_STRING = 64;
const STRING_CACHE_MAX = 1024;
const encodedStrings = new Map<string, Uint8Array>();
const decodedStrings = new Map<number, { b: Uint8Array; s: string }>();
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Thrown inside the walker to fall back to node:v8 for the whole value. */
class Fallback extends Error {}

/**
 * A growable byte buffer that values are encoded into. One writer is reused
 * for many values (`reset()`); `view()` is valid until its next use.
 */
export class WireWriter {
  buf: Uint8Array = new Uint8Array(512);
  dv: DataView = new DataView(this.buf.buffer);
  pos = 0;
  /** Where SharedArrayBuffers go; null makes them a TypeError. */
  sabs: SabRefWriter | null = null;
  /** Names the value in error messages ("Thread pool argument"). */
  label = "Value";

  reset(sabs: SabRefWriter | null = null, label = "Value"): this {
    this.pos = 0;
    this.sabs = sabs;
    this.label = label;
    return this;
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
      // Module URLs, export names and keys repeat: encode each once.
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

  /**
   * Appends one value. Throws a TypeError naming `label` if it cannot be
   * cloned; the writer is then back where it was.
   */
  value(v: unknown): void {
    const start = this.pos;
    try {
      this.#value(v, new Set(), 0);
    } catch (e) {
      this.pos = start;
      if (!(e instanceof Fallback)) {
        if (e instanceof TypeError && e.message.startsWith(this.label)) throw e;
        throw this.#uncloneable(e);
      }
      // Cycles and very deep values: node:v8 keeps identity and handles them.
      this.u8(T_V8);
      this.raw(this.#v8(v));
    }
  }

  #uncloneable(e: unknown): TypeError {
    const msg = e instanceof Error ? e.message : String(e);
    return new TypeError(`${this.label} cannot be cloned: ${msg}`, { cause: e });
  }

  #v8(v: unknown): Uint8Array {
    try {
      return v8.serialize(v);
    } catch (e) {
      throw this.#uncloneable(e);
    }
  }

  #sab(sab: SharedArrayBuffer): void {
    if (this.sabs === null) {
      throw new TypeError(
        `${this.label} cannot be cloned: a SharedArrayBuffer cannot travel this way`,
      );
    }
    this.sabs.write(this, sab);
  }

  #value(v: unknown, path: Set<object>, depth: number): void {
    switch (typeof v) {
      case "undefined":
        this.u8(T_UNDEF);
        return;
      case "boolean":
        this.u8(v ? T_TRUE : T_FALSE);
        return;
      case "number":
        if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
          this.u8(T_INT);
          this.i32(v);
        } else {
          this.u8(T_F64);
          this.f64(v);
        }
        return;
      case "string":
        this.u8(T_STR);
        this.string(v);
        return;
      case "bigint":
        this.u8(T_BIGINT);
        this.string(v.toString());
        return;
      case "function":
      case "symbol":
        throw new TypeError(`${String(v).slice(0, 40)} is a ${typeof v}`);
    }
    if (v === null) {
      this.u8(T_NULL);
      return;
    }
    const o = v as object;
    if (depth > MAX_DEPTH || path.has(o)) throw new Fallback();
    if (o instanceof SharedArrayBuffer) {
      this.u8(T_SAB);
      this.#sab(o);
      return;
    }
    if (ArrayBuffer.isView(o)) {
      const kind = viewKind(o);
      if (kind >= 0) {
        const length = kind === DATAVIEW ? o.byteLength : (o as Uint8Array).length;
        if (o.buffer instanceof SharedArrayBuffer) {
          this.u8(T_VIEW_SAB);
          this.u8(kind);
          this.#sab(o.buffer);
          this.f64(o.byteOffset);
          this.f64(length);
        } else {
          this.u8(T_VIEW);
          this.u8(kind);
          this.f64(length);
          this.raw(new Uint8Array(o.buffer, o.byteOffset, o.byteLength));
        }
        return;
      }
    }
    if (o instanceof ArrayBuffer) {
      this.u8(T_AB);
      this.raw(new Uint8Array(o));
      return;
    }
    if (o instanceof Date) {
      this.u8(T_DATE);
      this.f64(o.getTime());
      return;
    }
    path.add(o);
    try {
      if (Array.isArray(o)) {
        this.u8(T_ARR);
        this.u32(o.length);
        for (let i = 0; i < o.length; i++) this.#value(o[i], path, depth + 1);
        return;
      }
      if (o instanceof Error) {
        this.#error(o, path, depth);
        return;
      }
      if (o instanceof Map) {
        this.u8(T_MAP);
        this.u32(o.size);
        for (const [k, x] of o) {
          this.#value(k, path, depth + 1);
          this.#value(x, path, depth + 1);
        }
        return;
      }
      if (o instanceof Set) {
        this.u8(T_SET);
        this.u32(o.size);
        for (const k of o) this.#value(k, path, depth + 1);
        return;
      }
      const proto = Object.getPrototypeOf(o);
      if (proto === Object.prototype || proto === null) {
        const keys = Object.keys(o);
        this.u8(T_OBJ);
        this.u32(keys.length);
        for (const k of keys) {
          this.string(k);
          this.#value((o as Record<string, unknown>)[k], path, depth + 1);
        }
        return;
      }
    } finally {
      path.delete(o);
    }
    // RegExp, class instances ...: node:v8, which cannot carry shared
    // memory (it then throws a clear error).
    this.u8(T_V8);
    this.raw(this.#v8(o));
  }

  #error(e: Error, path: Set<object>, depth: number): void {
    this.u8(T_ERR);
    this.string(String(e.name));
    this.string(String(e.message));
    this.string(typeof e.stack === "string" ? e.stack : "");
    const hasCause = Object.hasOwn(e, "cause");
    this.u8(hasCause ? 1 : 0);
    if (hasCause) this.#value(e.cause, path, depth + 1);
    const extra: Record<string, unknown> = {};
    for (const k of Object.keys(e)) {
      if (k === "cause" || k === "message" || k === "stack" || k === "name") continue;
      const val = (e as unknown as Record<string, unknown>)[k];
      if (typeof val !== "function" && typeof val !== "symbol") extra[k] = val;
    }
    if (e instanceof AggregateError) extra.errors = e.errors;
    this.#value(extra, path, depth + 1);
  }
}

/** Reads values a {@linkcode WireWriter} wrote, from any byte array (shared memory too). */
export class WireReader {
  b: Uint8Array;
  dv: DataView;
  pos: number;
  /** Resolves SharedArrayBuffer references; null makes them an error. */
  sabs: SabRefReader | null = null;

  /** Reads `b` (and `dv`, a view of the same buffer) from byte `pos`. */
  constructor(b: Uint8Array, dv: DataView = new DataView(b.buffer), pos: number = b.byteOffset) {
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
    if (this.sabs === null) throw new Error("A SharedArrayBuffer reference came with no source");
    return this.sabs.read(this);
  }

  /** Reads one value. */
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
      case T_MAP: {
        const n = this.u32();
        const m = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = this.value();
          m.set(k, this.value());
        }
        return m;
      }
      case T_SET: {
        const n = this.u32();
        const s = new Set<unknown>();
        for (let i = 0; i < n; i++) s.add(this.value());
        return s;
      }
      case T_DATE:
        return new Date(this.f64());
      case T_V8:
        return v8.deserialize(this.raw());
      case T_ERR:
        return this.#error();
      case T_SAB:
        return this.sab();
      case T_VIEW: {
        const C = VIEWS[this.u8()];
        const len = this.f64();
        const bytes = this.raw();
        return new C(bytes.buffer, 0, len);
      }
      case T_VIEW_SAB: {
        const C = VIEWS[this.u8()];
        const sab = this.sab();
        const off = this.f64();
        const len = this.f64();
        return new C(sab, off, len);
      }
      case T_AB:
        return this.raw().buffer;
      default:
        throw new Error(`Corrupt wire value (tag ${t})`);
    }
  }

  #error(): Error {
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
  }
  if (e.name !== name) {
    Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
  }
  if (stack !== "") {
    Object.defineProperty(e, "stack", { value: stack, writable: true, configurable: true });
  }
  Object.assign(e, extra);
  return e;
}

/**
 * Encodes a thrown value for the other side: the value itself when it can
 * be cloned, else an Error with its text (an error holding a function, say).
 */
export function writeThrown(w: WireWriter, thrown: unknown): void {
  try {
    w.value(thrown);
  } catch {
    const e = thrown instanceof Error ? thrown : null;
    const copy = new Error(e ? e.message : String(thrown));
    if (e !== null) {
      copy.name = e.name;
      if (e.stack !== undefined) copy.stack = e.stack;
    }
    const sabs = w.sabs;
    w.sabs = null;
    try {
      w.value(copy);
    } finally {
      w.sabs = sabs;
    }
  }
}
