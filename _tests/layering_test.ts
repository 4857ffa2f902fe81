// The tree's layering, checked from the source: a lower folder never imports
// a higher one, and the only import cycles are the ones that mirror QEMU or
// GLib (fdmon poll <-> epoll: the poll backend upgrades itself to epoll;
// GMainContext <-> GSource), plus the type-only back reference of the
// coroutine friend table (QEMU's coroutine_int.h). Shipped modules only: tests, benches and
// examples may import anything.
import { assertEquals } from "@std/assert";

const ROOT = new URL("../", import.meta.url);

// Rank of each shipped folder (or root file): imports go to a lower rank or
// stay inside the folder.
const RANK: Record<string, number> = {
  "sys": 0,
  "_wire": 1,
  "thread": 2,
  "trace": 3,
  "glib": 4,
  "fdmon": 5,
  "aio": 6,
  "thread_pool": 7,
  "iothread": 8,
  "rcu": 9,
  "cpus": 10,
  "main_loop.ts": 11,
  "mod.ts": 12,
};

// Cycles allowed because QEMU or GLib have them too (module paths, sorted).
const ALLOWED_CYCLES: string[][] = [
  ["fdmon/epoll.ts", "fdmon/poll.ts"],
  ["glib/main_context.ts", "glib/source.ts"],
  // Type-only: the table of Coroutine's private hooks names its owner type.
  ["aio/_coroutine_internal.ts", "aio/coroutine.ts"],
];

function topOf(path: string): string {
  const slash = path.indexOf("/");
  return slash < 0 ? path : path.slice(0, slash);
}

async function shippedModules(): Promise<string[]> {
  const out: string[] = [];
  for (const top of Object.keys(RANK)) {
    const url = new URL(top, ROOT);
    if (top.endsWith(".ts")) {
      out.push(top);
      continue;
    }
    try {
      for await (const e of Deno.readDir(url)) {
        if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
          out.push(`${top}/${e.name}`);
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out.sort();
}

// Static and dynamic relative imports of one module, as repo paths. JSDoc
// examples (inside comments) are skipped: they are documentation.
async function importsOf(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(new URL(path, ROOT));
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specs = [
    ...code.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g),
    ...code.matchAll(/new URL\(\s*["'](\.{1,2}\/[^"']+)["']/g),
  ].map((m) => m[1]);
  const base = new URL(path, ROOT);
  return specs.map((s) => new URL(s, base).pathname.slice(ROOT.pathname.length));
}

Deno.test("no shipped module imports a higher layer", async () => {
  const bad: string[] = [];
  for (const path of await shippedModules()) {
    const from = topOf(path);
    for (const target of await importsOf(path)) {
      const to = topOf(target);
      if (to === from) continue;
      if (!(to in RANK)) {
        bad.push(`${path} imports ${target}, outside the shipped tree`);
      } else if (RANK[to] >= RANK[from]) {
        bad.push(`${path} (${from}) imports ${target} (${to}), a layer at or above it`);
      }
    }
  }
  assertEquals(bad, []);
});

Deno.test("the only import cycles are the ones QEMU and GLib have", async () => {
  const graph = new Map<string, string[]>();
  for (const path of await shippedModules()) {
    graph.set(path, (await importsOf(path)).filter((t) => t.endsWith(".ts")));
  }
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>();
  const sccs: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) sccs.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  const allowed = new Set(ALLOWED_CYCLES.map((c) => c.join(" ")));
  assertEquals(sccs.filter((c) => !allowed.has(c.join(" "))), []);
});

Deno.test("every mod.ts is export * lines only", async () => {
  const bad: string[] = [];
  for (const path of await shippedModules()) {
    if (!path.endsWith("mod.ts")) continue;
    const text = await Deno.readTextFile(new URL(path, ROOT));
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const line of code.split("\n")) {
      if (line.trim() !== "" && !/^export \* from "[^"]+";$/.test(line.trim())) {
        bad.push(`${path}: ${line.trim()}`);
      }
    }
  }
  assertEquals(bad, []);
});
