// The wire format shared by the thread pool and IOThreads (_wire/): the one
// value codec, the SharedArrayBuffer handoff, the module cache and the
// control-block layouts.
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { MissingSharedBuffer, WireReader, WireWriter, writeThrown } from "../_wire/codec.ts";
import { SabInbox, SabLink, SabOutbox } from "../_wire/sab_handoff.ts";
import { exportedFunction, importModule, loadedModule, moduleUrl } from "../_wire/module_cache.ts";
import { controlLayout, IOTHREAD_CTL, newControlBlock } from "../_wire/control_words.ts";
import { SysError } from "../sys/errno.ts";

function roundTrip(v: unknown, link: SabLink | null = null, back: SabLink | null = link): unknown {
  const w = new WireWriter().reset(link, "Test value");
  w.value(v);
  // Copy into a SharedArrayBuffer at an offset, as a slot of a channel.
  const sab = new SharedArrayBuffer(w.pos + 16);
  const u8 = new Uint8Array(sab);
  u8.set(w.view(), 8);
  const r = new WireReader(u8, new DataView(sab), 8);
  r.sabs = back;
  const out = r.value();
  assertEquals(r.pos, 8 + w.pos, "the reader consumed every byte");
  return out;
}

Deno.test("wire codec: values of every kind survive a round trip through shared memory", () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  for (
    const v of [
      undefined,
      null,
      true,
      false,
      0,
      -0,
      2 ** 31,
      -1.5,
      NaN,
      "",
      "héllo",
      "x".repeat(200),
      10n,
      [1, "a", [null]],
      { a: { b: [2] } },
      new Map<unknown, unknown>([[1, new Date(5)], ["k", new Set([1, 2])]]),
      new Uint8Array([1, 2, 3]),
      new Float64Array([1.5]),
      new DataView(new Uint8Array([9, 8, 7]).buffer, 1),
      new Uint8Array([4, 5]).buffer,
      /re/g,
    ]
  ) {
    assertEquals(roundTrip(v), v);
  }
  assert(Object.is(roundTrip(-0), -0));
  const c = roundTrip(cyclic) as Record<string, unknown>;
  assertStrictEquals(c.self, c, "cycles fall back to node:v8, which keeps identity");
  const proto = roundTrip(JSON.parse('{"__proto__": 1}')) as Record<string, unknown>;
  assert(Object.hasOwn(proto, "__proto__"), "__proto__ stays an own data key");
});

Deno.test("wire codec: errors keep their class, name, cause and own fields", () => {
  const e = new RangeError("bad", { cause: new Error("inner") }) as RangeError & { code: string };
  e.code = "E1";
  const back = roundTrip(e) as typeof e;
  assertInstanceOf(back, RangeError);
  assertEquals(back.message, "bad");
  assertEquals(back.code, "E1");
  assertEquals((back.cause as Error).message, "inner");
  const sys = roundTrip(new SysError(9, "close")) as SysError;
  assertInstanceOf(sys, SysError);
  assertEquals([sys.name, sys.errno, sys.code, sys.syscall], ["SysError", 9, "EBADF", "close"]);
  const agg = roundTrip(new AggregateError([new TypeError("t")], "many")) as AggregateError;
  assertInstanceOf(agg, AggregateError);
  assertInstanceOf(agg.errors[0], TypeError);
  const nf = roundTrip(new Deno.errors.NotFound("gone"));
  assertInstanceOf(nf, Deno.errors.NotFound);
});

Deno.test("wire codec: what cannot be cloned is a TypeError naming the value, and the writer is unchanged", () => {
  const w = new WireWriter().reset(null, "Job argument");
  w.value(1);
  const pos = w.pos;
  assertThrows(() => w.value({ f: () => 1 }), TypeError, "Job argument cannot be cloned");
  assertThrows(() => w.value(Symbol("s")), TypeError, "Job argument cannot be cloned");
  assertThrows(
    () => w.value(new SharedArrayBuffer(4)),
    TypeError,
    "Job argument cannot be cloned: a SharedArrayBuffer cannot travel this way",
  );
  assertEquals(w.pos, pos);
  // A thrown value that cannot be cloned still travels as its text.
  writeThrown(w.reset(), Object.assign(new TypeError("odd"), { cause: () => 1 }));
  const r = new WireReader(w.view().slice());
  const e = r.value() as Error;
  assertEquals([e.name, e.message], ["TypeError", "odd"]);
});

Deno.test("SharedArrayBuffer handoff: posted once, pulled synchronously, identity kept both ways", () => {
  const { port1, port2 } = new MessageChannel();
  const back = new MessageChannel();
  try {
    // Side A sends on port1 and receives on back.port2; side B the reverse.
    const aOut = new SabOutbox((m) => port1.postMessage(m), { weak: true });
    const aIn = new SabInbox();
    aIn.addPort(back.port2);
    const bOut = new SabOutbox((m) => back.port1.postMessage(m), { weak: true });
    const bIn = new SabInbox();
    bIn.addPort(port2);
    const a = new SabLink(aOut, aIn);
    const b = new SabLink(bOut, bIn);

    const sab = new SharedArrayBuffer(8);
    const view = new Int32Array(sab, 4, 1);
    const got = roundTrip({ sab, view, again: sab }, a, b) as {
      sab: SharedArrayBuffer;
      view: Int32Array;
      again: SharedArrayBuffer;
    };
    assertStrictEquals(got.again, got.sab, "one buffer, one object on the receiving side");
    got.view[0] = 42;
    assertEquals(view[0], 42, "the memory is shared");
    // What B received goes back to A as A's very object.
    assertStrictEquals(roundTrip(got.sab, b, a), sab);
    // A buffer B never received cannot be resolved.
    const w = new WireWriter().reset(new SabLink(new SabOutbox(() => {}), null));
    w.value(new SharedArrayBuffer(1));
    const r = new WireReader(w.view().slice());
    r.sabs = b;
    assertThrows(() => r.value(), MissingSharedBuffer);
  } finally {
    for (const p of [port1, port2, back.port1, back.port2]) p.close();
  }
});

Deno.test("SharedArrayBuffer handoff: accept() takes messages a handler received, and forgets", () => {
  const posted: unknown[] = [];
  const out = new SabOutbox((m) => posted.push(m));
  const inbox = new SabInbox();
  const arrived: number[] = [];
  inbox.onArrival = (id) => arrived.push(id);
  const sab = new SharedArrayBuffer(4);
  const id = out.idOf(sab);
  assertEquals(out.idOf(sab), id, "posted once");
  assertEquals(posted.length, 1);
  assertEquals(inbox.accept({ other: 1 }), false);
  assert(inbox.accept(posted[0]));
  assertEquals(arrived, [id]);
  assertStrictEquals(inbox.get(id), sab);
  assert(inbox.accept({ __aioloopSab: id, forget: true }));
  assertThrows(() => inbox.get(id), MissingSharedBuffer);
});

Deno.test("module cache: one import per URL, clear errors for bad URLs and missing exports", async () => {
  const url = "data:text/javascript,export function f(x) { return x + 1; } export const n = 1;";
  assertEquals(loadedModule(url), undefined);
  const [a, b] = await Promise.all([importModule(url), importModule(url)]);
  assertStrictEquals(a, b);
  assertStrictEquals(loadedModule(url), a);
  const f = exportedFunction(a, url, "f");
  assert(typeof f === "function");
  assertEquals(f(1), 2);
  assertInstanceOf(exportedFunction(a, url, "n"), TypeError);
  assertThrows(
    () => moduleUrl("./x.ts", "Job module"),
    TypeError,
    "Job module must be an absolute URL",
  );
  assertEquals(moduleUrl(new URL("file:///a/b.ts")), "file:///a/b.ts");
  let failed = 0;
  const bad = "data:text/javascript,throw new Error('nope')";
  for (let i = 0; i < 2; i++) await importModule(bad).catch(() => failed++);
  assertEquals(failed, 2);
  assertEquals(loadedModule(bad), undefined, "a failed import is not cached");
});

Deno.test("control words: one layout per thread kind, numbered in order", () => {
  const l = controlLayout(["A", "B", "C"]);
  assertEquals([l.A, l.B, l.C, l.WORDS], [0, 1, 2, 3]);
  assert(Object.isFrozen(l));
  const ctl = newControlBlock(IOTHREAD_CTL);
  assertInstanceOf(ctl.buffer, SharedArrayBuffer);
  assertEquals(ctl.length, IOTHREAD_CTL.WORDS);
  assertEquals(new Set([IOTHREAD_CTL.STOP, IOTHREAD_CTL.STATE, IOTHREAD_CTL.TID]).size, 3);
});
