// The one place that dlopens libc. Opened lazily so that importing the
// package needs no --allow-ffi; every isolate (main thread or Worker) opens
// its own handle, because a DynamicLibrary cannot cross isolates.
//
// ABI note: size_t / nfds_t arguments are declared u32 on purpose. A 64-bit
// integer parameter makes Deno take its slow FFI path when given a number
// (about +270 ns a call). On x86-64 and aarch64 a u32 argument arrives
// zero-extended in its 64-bit register, which is the value the callee reads,
// and every size we pass fits 32 bits. ssize_t results are declared i32: the
// low half of the return register carries the same value (and -1) for the
// sizes we use.

const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  read: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  dup: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u32", "i32"], result: "i32" },
  ppoll: { parameters: ["buffer", "u32", "buffer", "pointer"], result: "i32" },
  // The one parked wait a main thread may have (see main_loop.ts): Deno runs
  // it on its blocking pool so the isolate's own loop keeps turning.
  poll_nb: { name: "poll", parameters: ["buffer", "u32", "i32"], result: "i32", nonblocking: true },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  sched_yield: { parameters: [], result: "i32" },
  inotify_init1: { parameters: ["i32"], result: "i32" },
  inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  timerfd_create: { parameters: ["i32", "i32"], result: "i32" },
  timerfd_settime: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
  // prctl(2) is variadic over unsigned longs; the options used here take
  // small values, which a u32 carries zero-extended (see the ABI note).
  prctl: { parameters: ["i32", "u32", "u32", "u32", "u32"], result: "i32" },
  // io_uring has no libc wrapper: raw syscall(2), one symbol per shape.
  // Register arguments are declared i32/u32/pointer: the kernel reads only
  // the low 32 bits of the syscall number and of int arguments, which keeps
  // the fast path. io_uring_enter's 6th argument (size_t argsz) is
  // syscall()'s 7th, passed on the stack on x86-64, where a u32 leaves the
  // slot's upper half undefined (seen: EINVAL with IORING_ENTER_EXT_ARG):
  // it is a u64, given as a BigInt.
  syscall_uring_enter: {
    name: "syscall",
    parameters: ["i32", "i32", "u32", "u32", "u32", "pointer", "u64"],
    result: "i32",
  },
  syscall_uring_setup: { name: "syscall", parameters: ["i32", "u32", "buffer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // open(2) is variadic (mode_t mode); it is declared with the mode always
  // passed, which is how the x86-64 and aarch64 Linux ABIs read it anyway.
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  dup3: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // off_t is 64-bit: the offset is an i64 given as a BigInt (fast path).
  pread: { parameters: ["i32", "buffer", "u32", "i64"], result: "i32" },
  pwrite: { parameters: ["i32", "buffer", "u32", "i64"], result: "i32" },
  // struct rlimit is two rlim_t (u64): passed as a 16-byte buffer.
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  inotify_rm_watch: { parameters: ["i32", "i32"], result: "i32" },
  // The parked wait with a nanosecond timeout (qemu_poll_ns); its timespec
  // buffer must stay untouched until the call settles.
  ppoll_nb: {
    name: "ppoll",
    parameters: ["buffer", "u32", "buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The symbol table type, for code that holds the opened library. */
export type LibcSymbols = typeof SYMBOLS;

/** What the bindings above are written for (glibc's soname and ABI). */
export const PLATFORM_REQUIREMENT = "Linux with glibc (libc.so.6) on x86-64 or aarch64";
/** glibc's soname; musl and the BSDs have other names and other ABIs. */
export const LIBC_SONAME = "libc.so.6";

/**
 * Why this platform cannot run aioloop, or null when it can. Takes
 * `Deno.build.os` and `Deno.build.arch` as arguments so tests can inject
 * other platforms. Syscall numbers (io_uring) and the u32-for-size_t ABI
 * shortcut above hold on x86-64 and aarch64 Linux only.
 */
export function platformProblem(os: string, arch: string): string | null {
  if (os !== "linux") return `this is ${os}`;
  if (arch !== "x86_64" && arch !== "aarch64") return `this CPU is ${arch}`;
  return null;
}

function platformError(problem: string, cause?: unknown): Deno.errors.NotSupported {
  const e = new Deno.errors.NotSupported(`aioloop needs ${PLATFORM_REQUIREMENT}: ${problem}`);
  if (cause !== undefined) e.cause = cause;
  return e;
}

/**
 * Checks the platform, then opens `soname` with the symbol table. Throws
 * `Deno.errors.NotSupported` naming {@linkcode PLATFORM_REQUIREMENT} on
 * another OS or CPU, or when the library (or one of its symbols) is missing,
 * as on a musl system; a missing --allow-ffi stays `NotCapable`. Arguments
 * are injectable for tests.
 */
export function openLibc(
  soname: string = LIBC_SONAME,
  os: string = Deno.build.os,
  arch: string = Deno.build.arch,
): Deno.DynamicLibrary<LibcSymbols> {
  const problem = platformProblem(os, arch);
  if (problem !== null) throw platformError(problem);
  try {
    return Deno.dlopen(soname, SYMBOLS);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) throw e;
    throw platformError(`${soname} could not be opened (${(e as Error).message})`, e);
  }
}

let lib: Deno.DynamicLibrary<LibcSymbols> | null = null;
let errnoView: Int32Array | null = null;

/** Opens libc on first use (per isolate) and returns its symbols. */
export function libc(): Deno.DynamicLibrary<LibcSymbols>["symbols"] {
  if (lib === null) {
    lib = openLibc();
    const p = lib.symbols.__errno_location();
    if (p === null) throw new Error("__errno_location returned NULL");
    errnoView = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4));
  }
  return lib.symbols;
}

/**
 * errno of this thread. Valid only right after a synchronous call, with no
 * await in between; nonblocking calls set errno on a Deno pool thread.
 */
export function errno(): number {
  if (errnoView === null) libc();
  return errnoView![0];
}
