// Turns every runnable code example of the tree (```ts blocks in JSDoc
// comments and in README.md) into test modules under .doc_tests/ (git-ignored),
// so that `deno test` runs them with the rest of the suite.
//
// Why not `deno test --doc`: it gives every example its own isolate, and
// starting one costs a few hundred ms of CPU here, which made the ~400
// examples the larger part of the suite's wall time. Here each top-level
// folder gets one test module (the root's files and README.md one more), and
// each example stays a module of its own (its own
// imports, top-level await and `using`), loaded by a literal dynamic
// import: Deno puts those modules in the test run's graph, so the examples
// are type-checked with the tests in one pass, then each runs as one test
// named after its file and lines, as `deno test --doc` names them.
//
//   deno run --allow-read --allow-write _tests/_doc_examples.ts [files or dirs]
//
// With no argument it scans the whole tree. Blocks marked `ignore` (and other
// languages) are skipped, as `deno test --doc` skips them.

const ROOT = new URL("../", import.meta.url);
const OUT_DIR = ".doc_tests";
const LANGS = new Set(["ts", "typescript", "js", "javascript", "tsx", "jsx"]);
const SKIP_DIRS = new Set(["node_modules", OUT_DIR]);

/** One runnable example: where it is, its title and its code. */
export interface DocExample {
  /** Path relative to the repository root. */
  file: string;
  /** First line (the opening fence), 1-based. */
  start: number;
  /** Last line (the closing fence), 1-based. */
  end: number;
  /** The `@example` title, or "" when there is none. */
  title: string;
  /** The code, without the comment's `*` prefixes. */
  code: string;
}

const FENCE = /^```\s*([\w-]*)(.*)$/;

function isRunnable(lang: string, rest: string): boolean {
  return LANGS.has(lang.toLowerCase()) && !/\bignore\b/.test(rest);
}

/** The runnable examples of one Markdown file. */
export function markdownExamples(file: string, text: string): DocExample[] {
  const lines = text.split("\n");
  const out: DocExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = FENCE.exec(lines[i].trim());
    if (m === null) continue;
    let j = i + 1;
    while (j < lines.length && !lines[j].trim().startsWith("```")) j++;
    if (isRunnable(m[1], m[2])) {
      out.push({
        file,
        start: i + 1,
        end: j + 1,
        title: "",
        code: lines.slice(i + 1, j).join("\n"),
      });
    }
    i = j;
  }
  return out;
}

/** The runnable examples inside the JSDoc comments of one TypeScript file. */
export function jsdocExamples(file: string, text: string): DocExample[] {
  const lines = text.split("\n");
  const out: DocExample[] = [];
  let inDoc = false;
  let title = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!inDoc) {
      if (/^\s*\/\*\*/.test(line) && !/\*\/\s*$/.test(line)) {
        inDoc = true;
        title = "";
      }
      continue;
    }
    if (/\*\/\s*$/.test(line)) {
      inDoc = false;
      continue;
    }
    const body = line.replace(/^\s*\* ?/, "");
    const ex = /^@example\s*(.*)$/.exec(body);
    if (ex !== null) title = ex[1].trim();
    const m = FENCE.exec(body.trim());
    if (m === null) continue;
    const code: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const b = lines[j].replace(/^\s*\* ?/, "");
      if (b.trim().startsWith("```") || /\*\/\s*$/.test(lines[j])) break;
      code.push(b);
    }
    if (isRunnable(m[1], m[2])) {
      out.push({ file, start: i + 1, end: j + 1, title, code: code.join("\n") });
    }
    i = j;
  }
  return out;
}

async function* walk(rel: string): AsyncGenerator<string> {
  const info = await Deno.stat(new URL(rel, ROOT));
  if (info.isFile) {
    yield rel;
    return;
  }
  const names: string[] = [];
  for await (const e of Deno.readDir(new URL(rel || ".", ROOT))) {
    if (e.name.startsWith(".") || SKIP_DIRS.has(e.name)) continue;
    names.push(e.name);
  }
  names.sort();
  for (const n of names) yield* walk(rel === "" ? n : `${rel.replace(/\/$/, "")}/${n}`);
}

/** Every runnable example under the given paths (the whole tree by default). */
export async function collectExamples(paths: string[] = [""]): Promise<DocExample[]> {
  const out: DocExample[] = [];
  for (const p of paths) {
    for await (const file of walk(p)) {
      if (file.endsWith(".md")) {
        out.push(...markdownExamples(file, await Deno.readTextFile(new URL(file, ROOT))));
      } else if (/\.(ts|tsx|js|jsx|mts)$/.test(file) && !file.endsWith(".d.ts")) {
        out.push(...jsdocExamples(file, await Deno.readTextFile(new URL(file, ROOT))));
      }
    }
  }
  return out;
}

function slug(file: string): string {
  return file.replace(/\.[^./]+$/, "").replace(/[^A-Za-z0-9_]+/g, "_");
}

/** The test module an example goes to: its top-level folder, or "root". */
function groupOf(file: string): string {
  const slash = file.indexOf("/");
  return slash < 0 ? "root" : slug(file.slice(0, slash));
}

/** Writes .doc_tests/ afresh: one test module per top-level folder. */
export async function writeDocTests(examples: DocExample[]): Promise<string[]> {
  const out = new URL(`${OUT_DIR}/`, ROOT);
  await Deno.remove(out, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.mkdir(out, { recursive: true });
  const byGroup = new Map<string, DocExample[]>();
  for (const ex of examples) {
    const list = byGroup.get(groupOf(ex.file)) ?? [];
    list.push(ex);
    byGroup.set(groupOf(ex.file), list);
  }
  const written: string[] = [];
  for (const [group, list] of byGroup) {
    const tests = [`// Generated by _tests/_doc_examples.ts: do not edit.`];
    for (const ex of list) {
      const dir = slug(ex.file);
      await Deno.mkdir(new URL(`${dir}/`, out), { recursive: true });
      const mod = `${dir}/l${ex.start}_${ex.end}.ts`;
      await Deno.writeTextFile(new URL(mod, out), `${ex.code}\n`);
      const name = `${ex.file}#${ex.start}-${ex.end}${ex.title ? ` ${ex.title}` : ""}`;
      tests.push(
        `Deno.test(${JSON.stringify(name)}, async () => {`,
        `  await import(${JSON.stringify(`./${mod}`)});`,
        `});`,
      );
    }
    const testFile = `${group}_test.ts`;
    await Deno.writeTextFile(new URL(testFile, out), tests.join("\n") + "\n");
    written.push(`${OUT_DIR}/${testFile}`);
  }
  return written;
}

if (import.meta.main) {
  const examples = await collectExamples(Deno.args.length ? Deno.args : undefined);
  const files = await writeDocTests(examples);
  console.log(`${examples.length} doc examples from ${files.length} files in ${OUT_DIR}/`);
}
