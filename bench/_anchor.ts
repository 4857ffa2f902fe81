// Builds and runs the C anchor programs of bench/anchors/: small C programs
// (ours) that do the work of one benchmark case with plain syscalls or with
// GLib, so bench/run.ts can print aioloop's figures next to C's. Nothing
// here is needed by `deno bench` itself.
//
// Each program prints two JSON lines (see bench/anchors/anchor.h): the
// median ns per operation over 7 calibrated repetitions, single-threaded
// and then (name + ".mt") with an idle second thread. Programs named
// glib_* need GLib's headers (libglib2.0-dev, found through pkg-config) and
// are skipped without them; everything is skipped without a C compiler.

/** One line printed by an anchor program. */
export interface AnchorResult {
  /**
   * Anchor name, such as "c.poll_many" or "glib.empty_iteration"; with
   * ".mt" appended for the run with an idle second thread.
   */
  anchor: string;
  /** The fd count for sized anchors (0 or 1 elsewhere). */
  size: number;
  /** Median ns per operation over the repetitions. */
  ns: number;
  /** Fastest repetition, ns per operation. */
  min: number;
  /** Slowest repetition, ns per operation. */
  max: number;
  /** Operations per repetition (calibrated to about 60 ms). */
  iters: number;
  /** How many repetitions. */
  reps: number;
}

/** A compiled anchor program. */
export interface AnchorProgram {
  /** The source's base name, such as "poll_many". */
  name: string;
  /** The executable. */
  path: string;
  /** Whether it takes an fd count as its first argument. */
  sized: boolean;
}

/** What {@linkcode buildAnchors} made, and what it had to leave out. */
export interface AnchorBuild {
  /** The compiled programs. */
  programs: AnchorProgram[];
  /** Sources not built, with the reason. */
  skipped: { name: string; reason: string }[];
  /** The compiler's first version line, or "" without one. */
  compiler: string;
  /** GLib's version from pkg-config, or "" without it. */
  glib: string;
  /** Removes the temporary directory holding the programs. */
  [Symbol.asyncDispose](): Promise<void>;
}

const ANCHOR_DIR = new URL("./anchors/", import.meta.url);
/** Programs that take the fd count as argv[1]. */
const SIZED = new Set(["poll_many", "epoll_many"]);

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
  } catch {
    return null; // not installed
  }
}

/**
 * Compiles every bench/anchors/*.c with `cc -O2` into a new temporary
 * directory. Without `cc` nothing is built; without GLib (pkg-config
 * glib-2.0) the glib_* programs are skipped.
 *
 * @param only Build just these programs (base names), not every source.
 * @returns The programs and the skipped sources; dispose it to delete them.
 */
export async function buildAnchors(only?: readonly string[]): Promise<AnchorBuild> {
  const sources: string[] = [];
  for (const e of Deno.readDirSync(ANCHOR_DIR)) {
    if (!e.isFile || !e.name.endsWith(".c")) continue;
    const name = e.name.slice(0, -2);
    if (only === undefined || only.includes(name)) sources.push(name);
  }
  sources.sort();
  const compiler = (await output("cc", ["--version"]))?.split("\n")[0] ?? "";
  const glib = (await output("pkg-config", ["--modversion", "glib-2.0"])) ?? "";
  const glibFlags = glib === ""
    ? null
    : (await output("pkg-config", ["--cflags", "--libs", "glib-2.0"]))?.split(/\s+/) ?? null;
  const dir = await Deno.makeTempDir({ prefix: "aioloop-anchors-" });
  const programs: AnchorProgram[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const name of sources) {
    const isGlib = name.startsWith("glib_");
    if (compiler === "") {
      skipped.push({ name, reason: "no C compiler (cc)" });
      continue;
    }
    if (isGlib && glibFlags === null) {
      skipped.push({ name, reason: "no GLib headers (pkg-config glib-2.0 failed)" });
      continue;
    }
    const path = `${dir}/${name}`;
    const src = new URL(`${name}.c`, ANCHOR_DIR).pathname;
    const args = ["-O2", "-Wall", "-pthread", "-o", path, src, ...(isGlib ? glibFlags! : [])];
    const r = await new Deno.Command("cc", { args, stdout: "piped", stderr: "piped" }).output();
    if (!r.success) {
      const err = new TextDecoder().decode(r.stderr).trim().split("\n").slice(0, 3).join(" | ");
      skipped.push({ name, reason: `compile failed: ${err}` });
      continue;
    }
    programs.push({ name, path, sized: SIZED.has(name) });
  }
  return {
    programs,
    skipped,
    compiler,
    glib,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Runs one anchor program and parses its JSON lines.
 *
 * @param program The program.
 * @param size The fd count for sized programs (ignored by the others).
 * @returns The measurements: single-threaded, then with an idle thread.
 * @throws {Error} If the program fails or prints no result.
 */
export async function runAnchor(program: AnchorProgram, size?: number): Promise<AnchorResult[]> {
  const args = program.sized && size !== undefined ? [String(size)] : [];
  const r = await new Deno.Command(program.path, { args, stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(r.stdout).trim();
  if (!r.success || out === "") {
    const err = new TextDecoder().decode(r.stderr).trim();
    throw new Error(`Anchor ${program.name} failed (exit ${r.code}): ${err}`);
  }
  return out.split("\n").map((l) => JSON.parse(l) as AnchorResult);
}
