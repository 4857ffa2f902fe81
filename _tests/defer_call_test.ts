// defer_call semantics (util/defer-call.c): immediate outside a section,
// recorded once per (fn, opaque) pair inside, run in first-recorded order
// at the outermost end; per isolate; errors lose no call.
import { assertEquals, assertThrows } from "@std/assert";
import { deferCall, deferCallBegin, deferCallDepth, deferCallEnd } from "../thread/defer_call.ts";

Deno.test("defer_call: immediate outside a section", () => {
  const log: unknown[] = [];
  deferCall((x) => log.push(x), 1);
  deferCall(() => log.push("no opaque"));
  assertEquals(log, [1, "no opaque"]);
  assertEquals(deferCallDepth(), 0);
});

Deno.test("defer_call: recorded once per (fn, opaque), run in order at the outermost end", () => {
  const log: string[] = [];
  const a = (s: string): void => {
    log.push(`a:${s}`);
  };
  const b = (s: string): void => {
    log.push(`b:${s}`);
  };
  const objX = { id: "x" };
  const objY = { id: "x" }; // equal contents, different object
  const c = (o: { id: string }): void => {
    log.push(`c:${o === objX ? "X" : "Y"}`);
  };
  deferCallBegin();
  deferCall(a, "1");
  deferCall(b, "1");
  deferCall(a, "1"); // duplicate
  deferCallBegin();
  deferCall(a, "2"); // same fn, other opaque: a new record
  deferCall(c, objX);
  deferCall(c, objY);
  deferCall(c, objX); // duplicate
  deferCallEnd(); // inner end: nothing runs
  assertEquals(log, []);
  assertEquals(deferCallDepth(), 1);
  deferCall(b, "1"); // duplicate of an outer record
  deferCallEnd();
  assertEquals(log, ["a:1", "b:1", "a:2", "c:X", "c:Y"]);
  assertEquals(deferCallDepth(), 0);
  // The list was cleared: a new section starts empty.
  deferCallBegin();
  deferCallEnd();
  assertEquals(log.length, 5);
});

Deno.test("defer_call: calls made while the records run", () => {
  const log: string[] = [];
  const inner = (): void => {
    log.push("inner");
  };
  const outer = (): void => {
    log.push(`outer depth ${deferCallDepth()}`);
    deferCall(inner); // no section open any more: runs at once
    deferCallBegin(); // a new section of its own
    deferCall(inner);
    deferCallEnd();
  };
  deferCallBegin();
  deferCall(outer);
  deferCallEnd();
  assertEquals(log, ["outer depth 0", "inner", "inner"]);
});

Deno.test("defer_call: a throwing call loses no other, the first error is rethrown", () => {
  const log: string[] = [];
  deferCallBegin();
  deferCall(() => log.push("1"));
  deferCall(() => {
    throw new Error("first");
  });
  deferCall(() => log.push("3"));
  deferCall(() => {
    throw new Error("second");
  });
  assertThrows(() => deferCallEnd(), Error, "first");
  assertEquals(log, ["1", "3"]);
  assertEquals(deferCallDepth(), 0);
  // Nothing is run twice by a later section.
  deferCallBegin();
  deferCallEnd();
  assertEquals(log, ["1", "3"]);
});

Deno.test("defer_call: misuse is a typed error", () => {
  assertThrows(() => deferCallEnd(), Error, "without deferCallBegin");
  assertThrows(() => deferCall(null as never), TypeError);
  assertEquals(deferCallDepth(), 0);
});

Deno.test("defer_call: each isolate has its own section", async () => {
  // A Worker's section does not see, nor flush, this thread's records.
  const src = `
    import { deferCall, deferCallBegin, deferCallDepth, deferCallEnd } from
      ${JSON.stringify(new URL("../thread/defer_call.ts", import.meta.url).href)};
    self.onmessage = () => {
      const depthAtStart = deferCallDepth();
      let ran = 0;
      deferCallBegin();
      deferCall(() => ran++);
      deferCallEnd();
      self.postMessage({ depthAtStart, ran });
    };`;
  const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
  const w = new Worker(url, { type: "module" });
  try {
    let ran = 0;
    deferCallBegin();
    deferCall(() => ran++);
    const reply = await new Promise<{ depthAtStart: number; ran: number }>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
      w.postMessage(0);
    });
    assertEquals(reply, { depthAtStart: 0, ran: 1 });
    assertEquals(ran, 0); // still recorded here
    deferCallEnd();
    assertEquals(ran, 1);
  } finally {
    w.terminate();
    URL.revokeObjectURL(url);
  }
});
