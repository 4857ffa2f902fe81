// `using` for fd-handler registrations (AioContext.setFdHandler,
// qemuSetFdHandler) and for the main loop (qemuInitMainLoop), beside the
// QEMU-style explicit removal and cleanup, which keep working.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { AioContext } from "../mod.ts";
import {
  iohandlerGetAioContext,
  mainLoopWait,
  qemuCleanupMainLoop,
  qemuGetAioContext,
  qemuInitMainLoop,
  qemuSetFdHandler,
} from "../main_loop.ts";
import { close, pipe, read, write } from "../sys/mod.ts";
import { assertNoFdLeak, supportedFdMons } from "./_fd_leak.ts";

function registered(ctx: AioContext, fd: number): boolean {
  return ctx.info().handlers.some((h) => h.fd === fd);
}

function mainLoopInitialized(): boolean {
  try {
    qemuGetAioContext();
    return true;
  } catch {
    return false;
  }
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`using: a setFdHandler registration is removed at the end of its scope [${fdmon}]`, async () => {
    await assertNoFdLeak(() => {
      using ctx = AioContext.create({ fdmon });
      const [r, w] = pipe();
      try {
        let got = 0;
        {
          using _reg = ctx.setFdHandler(r, { read: () => got += read(r, new Uint8Array(8)) });
          assert(registered(ctx, r));
          write(w, new Uint8Array([1, 2, 3]));
          ctx.poll(true);
          assertEquals(got, 3);
        }
        assertEquals(registered(ctx, r), false);
        // Gone for real: a readable fd no longer calls anything.
        write(w, new Uint8Array([4]));
        assertEquals(ctx.poll(false), false);
        assertEquals(got, 3);
      } finally {
        close(r);
        close(w);
      }
    });
  });

  Deno.test(`using: disposing a replaced or removed registration leaves the fd alone [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    const [r, w] = pipe();
    try {
      const calls: string[] = [];
      const first = ctx.setFdHandler(r, { read: () => calls.push("first") });
      const second = ctx.setFdHandler(r, { read: () => calls.push("second") });
      first[Symbol.dispose](); // replaced: must not remove "second"
      assert(registered(ctx, r));
      write(w, new Uint8Array([1]));
      ctx.poll(true);
      assertEquals(calls, ["second"]);
      read(r, new Uint8Array(8));
      // The QEMU way still removes; the later dispose does nothing.
      const removal = ctx.setFdHandler(r, null);
      assertEquals(registered(ctx, r), false);
      const third = ctx.setFdHandler(r, { read: () => calls.push("third") });
      second[Symbol.dispose](); // removed earlier: must not remove "third"
      removal[Symbol.dispose]();
      assert(registered(ctx, r));
      third[Symbol.dispose]();
      third[Symbol.dispose](); // twice: harmless
      assertEquals(registered(ctx, r), false);
    } finally {
      close(r);
      close(w);
    }
  });

  Deno.test(`using: a registration disposed during dispatch is not called again that round [${fdmon}]`, () => {
    using ctx = AioContext.create({ fdmon });
    const [r1, w1] = pipe();
    const [r2, w2] = pipe();
    try {
      const calls: number[] = [];
      // Each handler removes the other: whichever runs first, the other is
      // never called in that round.
      const regs: Disposable[] = [];
      regs[0] = ctx.setFdHandler(r1, {
        read: () => {
          calls.push(1);
          regs[1][Symbol.dispose]();
        },
      });
      regs[1] = ctx.setFdHandler(r2, {
        read: () => {
          calls.push(2);
          regs[0][Symbol.dispose]();
        },
      });
      write(w1, new Uint8Array([1]));
      write(w2, new Uint8Array([1]));
      ctx.poll(true);
      assertEquals(calls.length, 1);
      assertEquals(ctx.info().handlers.filter((h) => h.fd === r1 || h.fd === r2).length, 1);
      for (const reg of regs) reg[Symbol.dispose]();
      assertEquals(registered(ctx, r1) || registered(ctx, r2), false);
    } finally {
      for (const fd of [r1, w1, r2, w2]) close(fd);
    }
  });

  Deno.test(`using: disposing after the context is destroyed does nothing [${fdmon}]`, () => {
    const ctx = AioContext.create({ fdmon });
    const [r, w] = pipe();
    try {
      const reg = ctx.setFdHandler(r, { read: () => {} });
      ctx.destroy();
      reg[Symbol.dispose]();
    } finally {
      close(r);
      close(w);
    }
  });

  Deno.test(`using: qemuInitMainLoop and qemuSetFdHandler scoped together [${fdmon}]`, async () => {
    await assertNoFdLeak(() => {
      const [r, w] = pipe();
      try {
        let got = 0;
        {
          using _loop = qemuInitMainLoop({ fdmon });
          assert(mainLoopInitialized());
          assertEquals(qemuGetAioContext().fdmon, fdmon);
          using _watch = qemuSetFdHandler(r, () => got += read(r, new Uint8Array(8)));
          write(w, new Uint8Array([1, 2]));
          mainLoopWait(false);
          assertEquals(got, 2);
          assert(registered(iohandlerGetAioContext(), r));
        } // the handler goes first, then the main loop
        assertEquals(mainLoopInitialized(), false);
      } finally {
        close(r);
        close(w);
      }
    });
  });
}

Deno.test("using: qemuInitMainLoop stays backward compatible with explicit cleanup", async () => {
  await assertNoFdLeak(() => {
    const first = qemuInitMainLoop();
    qemuCleanupMainLoop();
    assertEquals(mainLoopInitialized(), false);
    // A stale handle must not tear down the main loop made after it.
    const second = qemuInitMainLoop();
    first[Symbol.dispose]();
    assert(mainLoopInitialized(), "a stale dispose cleaned up a newer main loop");
    assertThrows(() => qemuInitMainLoop(), Error, "already initialized");
    second[Symbol.dispose]();
    assertEquals(mainLoopInitialized(), false);
    second[Symbol.dispose](); // twice: harmless
  });
});

Deno.test("using: a qemuSetFdHandler handle outliving its main loop does nothing", () => {
  const [r, w] = pipe();
  try {
    const loop = qemuInitMainLoop();
    const watch = qemuSetFdHandler(r, () => {});
    loop[Symbol.dispose]();
    watch[Symbol.dispose]();
    // Removal with null is unchanged and returns a harmless handle.
    using _loop = qemuInitMainLoop();
    qemuSetFdHandler(r, () => {});
    qemuSetFdHandler(r, null)[Symbol.dispose]();
    assertEquals(registered(iohandlerGetAioContext(), r), false);
  } finally {
    close(r);
    close(w);
  }
});
