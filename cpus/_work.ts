// run_on_cpu work items in the vCPU block: allocation from a free list,
// the encoded name and argument on the way in, the encoded result (or the
// thrown error) on the way back. Values go through the one wire codec, in
// the thread pool's tag layout; SharedArrayBuffers cannot travel in work
// (share them through qemuInitVcpu's `data` instead), so no port is needed.
import {
  type SabRefReader,
  type SabRefWriter,
  WireReader,
  WireWriter,
  writeThrown,
} from "../_wire/codec.ts";
import { importModule, loadedModule as cachedModule } from "../_wire/module_cache.ts";
import { decodeValue, type Encoded, encodeValue, TAG_THREW } from "../thread_pool/_shared.ts";
import {
  type Block,
  G_ITEMS_FREE,
  I_ARG_LEN,
  I_ARG_NUM_WORD,
  I_ARG_TAG,
  I_BYTES_WORD,
  I_CPU,
  I_DONE,
  I_FLAGS,
  I_NAME_LEN,
  I_NEXT,
  I_RES_LEN,
  I_RES_NUM_WORD,
  I_RES_TAG,
  ITEM_BYTES_MAX,
  ITEM_PENDING,
  itemWord,
  MAX_ITEMS,
} from "./_layout.ts";

/**
 * A named work function: an export of a module, as for thread pool jobs.
 * The vCPU thread loads the module and calls the export with the CPU and
 * the argument.
 *
 * Counterpart: `run_on_cpu_func` (a function pointer there).
 */
export interface WorkName {
  /** The module's absolute URL (`new URL("./work.ts", import.meta.url)`). */
  readonly module: string | URL;
  /** The export's name. */
  readonly name: string;
}

const NO_SAB: SabRefWriter = {
  write(): void {
    throw new TypeError(
      "a SharedArrayBuffer cannot be passed in cpu work; share it through qemuInitVcpu's data",
    );
  },
};
// Never called: nothing written with NO_SAB refers to a buffer.
const NO_SAB_READER: SabRefReader = {
  read(): SharedArrayBuffer {
    throw new TypeError("cpu work carries no SharedArrayBuffer");
  },
};
const writer = new WireWriter();

function encodeThrown(thrown: unknown): Encoded {
  writeThrown(writer.reset(NO_SAB, "Thrown value"), thrown);
  return { tag: TAG_THREW, num: 0, bytes: writer.view() };
}

function decodeThrown(bytes: Uint8Array): unknown {
  const r = new WireReader(bytes);
  r.sabs = NO_SAB_READER;
  return r.value();
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** `module#name`, checked. */
export function workKey(work: WorkName, what: string): string {
  if (work === null || typeof work !== "object" || typeof work.name !== "string") {
    throw new TypeError(
      `${what}: work must be { module: new URL("./work.ts", import.meta.url), name: "fn" }`,
    );
  }
  const m = work.module;
  let url: string;
  if (m instanceof URL) url = m.href;
  else if (typeof m === "string" && URL.canParse(m)) url = new URL(m).href;
  else {
    throw new TypeError(
      `${what}: work.module must be an absolute URL (new URL("./work.ts", import.meta.url)), got ${
        String(m)
      }`,
    );
  }
  return `${url}#${work.name}`;
}

/** Takes a free item, or throws a RangeError when the pool is exhausted. */
export function allocItem(b: Block): number {
  b.itemsLock.lock();
  try {
    const k = b.w[G_ITEMS_FREE];
    if (k < 0) {
      throw new RangeError(
        `all ${MAX_ITEMS} run_on_cpu work items are queued; wait for some to complete`,
      );
    }
    b.w[G_ITEMS_FREE] = b.w[itemWord(k, I_NEXT)];
    return k;
  } finally {
    b.itemsLock.unlock();
  }
}

/** Returns an item to the free list. */
export function freeItem(b: Block, k: number): void {
  b.itemsLock.lock();
  b.w[itemWord(k, I_NEXT)] = b.w[G_ITEMS_FREE];
  b.w[G_ITEMS_FREE] = k;
  b.itemsLock.unlock();
}

function storeEncoded(
  b: Block,
  k: number,
  at: number,
  e: Encoded,
  tagW: number,
  lenW: number,
  numW: number,
  what: string,
): void {
  const len = e.bytes?.length ?? 0;
  if (at + len > ITEM_BYTES_MAX) {
    throw new RangeError(
      `${what} takes ${len} bytes encoded; at most ${ITEM_BYTES_MAX - at} fit in a work item`,
    );
  }
  if (e.bytes !== null) b.u8.set(e.bytes, itemWord(k, I_BYTES_WORD) * 4 + at);
  b.w[itemWord(k, tagW)] = e.tag;
  b.w[itemWord(k, lenW)] = len;
  b.f64[itemWord(k, numW) / 2] = e.num;
}

function loadEncoded(b: Block, k: number, at: number, lenW: number): Uint8Array {
  const len = b.w[itemWord(k, lenW)];
  const start = itemWord(k, I_BYTES_WORD) * 4 + at;
  return b.u8.slice(start, start + len);
}

/** Fills item `k` for CPU `cpu`: flags, name, argument (may throw TypeError/RangeError). */
export function fillItem(
  b: Block,
  k: number,
  cpu: number,
  key: string,
  arg: unknown,
  flags: number,
): void {
  const name = enc.encode(key);
  if (name.length > ITEM_BYTES_MAX / 2) throw new RangeError("work name too long");
  b.u8.set(name, itemWord(k, I_BYTES_WORD) * 4);
  b.w[itemWord(k, I_NAME_LEN)] = name.length;
  storeEncoded(
    b,
    k,
    name.length,
    encodeValue(writer.reset(NO_SAB, "run_on_cpu argument"), arg),
    I_ARG_TAG,
    I_ARG_LEN,
    I_ARG_NUM_WORD,
    "run_on_cpu argument",
  );
  b.w[itemWord(k, I_FLAGS)] = flags;
  b.w[itemWord(k, I_CPU)] = cpu;
  b.w[itemWord(k, I_NEXT)] = -1;
  Atomics.store(b.w, itemWord(k, I_DONE), ITEM_PENDING);
}

/** The item's `module#name`. */
export function itemKey(b: Block, k: number): string {
  const start = itemWord(k, I_BYTES_WORD) * 4;
  return dec.decode(b.u8.slice(start, start + b.w[itemWord(k, I_NAME_LEN)]));
}

/** The item's argument. */
export function itemArg(b: Block, k: number): unknown {
  const at = b.w[itemWord(k, I_NAME_LEN)];
  const bytes = loadEncoded(b, k, at, I_ARG_LEN);
  return decodeValue(
    b.w[itemWord(k, I_ARG_TAG)],
    b.f64[itemWord(k, I_ARG_NUM_WORD) / 2],
    bytes.length > 0 ? bytes : null,
    NO_SAB_READER,
  );
}

/** Stores a result (or, with `threw`, the thrown value) for a sync caller. */
export function storeResult(b: Block, k: number, value: unknown, threw: boolean): void {
  let e: Encoded;
  try {
    e = threw ? encodeThrown(value) : encodeValue(writer.reset(NO_SAB, "run_on_cpu result"), value);
  } catch (err) {
    e = encodeThrown(err);
    threw = true;
  }
  if (threw) e.tag = TAG_THREW;
  try {
    storeEncoded(b, k, 0, e, I_RES_TAG, I_RES_LEN, I_RES_NUM_WORD, "run_on_cpu result");
  } catch (err) {
    const t = encodeThrown(err);
    t.tag = TAG_THREW;
    storeEncoded(b, k, 0, t, I_RES_TAG, I_RES_LEN, I_RES_NUM_WORD, "run_on_cpu error");
  }
}

/** Reads a stored result: returns it, or throws what the work threw. */
export function takeResult(b: Block, k: number): unknown {
  const tag = b.w[itemWord(k, I_RES_TAG)];
  const bytes = loadEncoded(b, k, 0, I_RES_LEN);
  if (tag === TAG_THREW) throw decodeThrown(bytes);
  return decodeValue(
    tag,
    b.f64[itemWord(k, I_RES_NUM_WORD) / 2],
    bytes.length > 0 ? bytes : null,
    NO_SAB_READER,
  );
}

// The vCPU thread looks work and accelerators up synchronously in the one
// import-once cache; a module not loaded yet is imported by the thread loop
// (with the BQL dropped) before the item runs.

/** The loaded module of `url`, or undefined. */
export function loadedModule(url: string): Record<string, unknown> | undefined {
  return cachedModule(url);
}

/** Imports `url` into this isolate's cache. */
export function loadModule(url: string): Promise<Record<string, unknown>> {
  return importModule(url);
}

/** Splits `module#name` at the last '#'. */
export function splitKey(key: string): { url: string; name: string } {
  const i = key.lastIndexOf("#");
  return { url: key.slice(0, i), name: key.slice(i + 1) };
}
