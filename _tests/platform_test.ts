// The platform check behind the first FFI use (sys/_libc.ts): aioloop runs
// on Linux with glibc on x86-64 or aarch64; elsewhere importing works and the
// first libc use throws NotSupported naming that requirement.
import { assert, assertEquals, assertThrows } from "@std/assert";
import { LIBC_SONAME, openLibc, PLATFORM_REQUIREMENT, platformProblem } from "../sys/_libc.ts";

Deno.test("platform: Linux on x86-64 and aarch64 is supported", () => {
  assertEquals(platformProblem("linux", "x86_64"), null);
  assertEquals(platformProblem("linux", "aarch64"), null);
});

Deno.test("platform: other systems and CPUs are named in the problem", () => {
  for (const os of ["darwin", "windows", "freebsd", "android"]) {
    assertEquals(platformProblem(os, "x86_64"), `this is ${os}`);
  }
  assertEquals(platformProblem("linux", "riscv64"), "this CPU is riscv64");
});

Deno.test("platform: openLibc on another OS throws NotSupported before dlopen", () => {
  const e = assertThrows(
    () => openLibc(LIBC_SONAME, "darwin", "aarch64"),
    Deno.errors.NotSupported,
    PLATFORM_REQUIREMENT,
  );
  assert(e.message.includes("darwin"), e.message);
  assertThrows(
    () => openLibc(LIBC_SONAME, "linux", "riscv64"),
    Deno.errors.NotSupported,
    "riscv64",
  );
});

Deno.test("platform: a missing libc (musl system) names the requirement", () => {
  const e = assertThrows(
    () => openLibc("libc.so.no-such-version", "linux", "x86_64"),
    Deno.errors.NotSupported,
    PLATFORM_REQUIREMENT,
  );
  assert(e.message.includes("libc.so.no-such-version could not be opened"), e.message);
  assert(e.cause instanceof Error);
});

Deno.test("platform: this machine opens glibc", () => {
  const lib = openLibc();
  try {
    assertEquals(typeof lib.symbols.getpid(), "number");
  } finally {
    lib.close();
  }
});
