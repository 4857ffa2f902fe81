// The README's path for a newcomer, run as a user would: a project outside
// the repository whose deno.json is the README's (linking a clone of this
// repository), each README program as its main.ts, run with `deno run` and
// exactly the permission flags the README gives under it. Everything is
// read from README.md, so the test breaks when the README changes.
import { assert, assertEquals } from "@std/assert";
import { supportedFdMons } from "./_fd_leak.ts";

const ROOT = new URL("..", import.meta.url);
const README = Deno.readTextFileSync(new URL("README.md", ROOT));
const RUN_TIMEOUT_MS = 60_000;

interface Block {
  lang: string;
  body: string;
  /** The first paragraph after the block. */
  after: string;
  heading: string;
}

/** The fenced code blocks of a Markdown text, with the heading above and the paragraph below. */
function codeBlocks(md: string): Block[] {
  const lines = md.split("\n");
  const out: Block[] = [];
  let heading = "";
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{1,6} (.*)$/.exec(lines[i]);
    if (h !== null) heading = h[1];
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (open === null) continue;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    let j = i + 1;
    while (j < lines.length && lines[j].trim() === "") j++;
    const para: string[] = [];
    for (; j < lines.length && lines[j].trim() !== "" && !lines[j].startsWith("```"); j++) {
      para.push(lines[j]);
    }
    out.push({ lang: open[1], body: body.join("\n") + "\n", after: para.join(" "), heading });
  }
  return out;
}

interface Program {
  heading: string;
  source: string;
  flags: string[];
  /** The paragraph under it (for extra flags it mentions). */
  after: string;
}

const RUN_LINE = /^Run with `deno run ((?:--[a-z-]+(?:=\S+)? )*)main\.ts`/;

/** Every TypeScript block of the README: each must be a whole program with its run line. */
function programs(): Program[] {
  return codeBlocks(README).filter((b) => b.lang === "ts").map((b) => {
    const m = RUN_LINE.exec(b.after);
    assert(
      m !== null,
      `README block under "${b.heading}" has no "Run with \`deno run <flags> main.ts\`" line ` +
        `after it, but: ${b.after}`,
    );
    return {
      heading: b.heading,
      source: b.body,
      flags: m[1].trim().split(/\s+/).filter((f) => f !== ""),
      after: b.after,
    };
  });
}

/** The user's deno.json as the README shows it: the JSON block that links the clone. */
function userDenoJson(): string {
  const blocks = codeBlocks(README).filter((b) => b.lang === "json");
  const linking = blocks.find((b) => "links" in JSON.parse(b.body));
  assert(linking !== undefined, "README shows no deno.json with `links`");
  return linking.body;
}

/**
 * Makes `<tmp>/aioloop` (a symlink to this repository, standing for the
 * user's clone) and `<tmp>/app` (the user's project with the README's
 * deno.json), and returns both paths.
 */
function makeUserProject(): { base: string; app: string } {
  const base = Deno.makeTempDirSync({ prefix: "aioloop-readme-" });
  Deno.symlinkSync(new URL(".", ROOT).pathname.replace(/\/$/, ""), `${base}/aioloop`);
  const app = `${base}/app`;
  Deno.mkdirSync(app);
  Deno.writeTextFileSync(`${app}/deno.json`, userDenoJson());
  return { base, app };
}

/**
 * When a README program asserts with `@std/assert`, the README's deno.json
 * must map it (a user's project gets it from JSR); this test runs offline,
 * so that one mapping is pointed at the repository's stand-in (the same one
 * its doc examples use).
 */
function offlineAssert(app: string, source: string): void {
  if (!/from "@std\/assert"/.test(source)) return;
  const config = JSON.parse(Deno.readTextFileSync(`${app}/deno.json`));
  assert(
    typeof config.imports?.["@std/assert"] === "string",
    "a README program imports @std/assert, but the README's deno.json does not map it",
  );
  config.imports = {
    ...config.imports,
    "@std/assert": new URL("_tests/_assert.ts", ROOT).href,
  };
  Deno.writeTextFileSync(`${app}/deno.json`, JSON.stringify(config, null, 2));
}

/**
 * What the program must print: one stdout line per `console.log` in its
 * source, and each `console.log(...); // expected` comment met by a line
 * that is the comment or its start (as in `// 42, computed inside ...`).
 */
function checkOutput(source: string, stdout: string): void {
  const printed = stdout.split("\n").filter((l) => l !== "");
  assertEquals(printed.length, source.match(/console\.log\(/g)?.length ?? 0, stdout);
  let at = 0;
  for (const m of source.matchAll(/console\.log\(.*\);\s*\/\/\s*(.*)$/gm)) {
    const expected = m[1].trim();
    const hit = printed.findIndex((l, i) =>
      i >= at && (expected === l || expected.startsWith(`${l},`) || expected.startsWith(`${l} `))
    );
    assert(hit >= 0, `no output line for "// ${expected}" in:\n${stdout}`);
    at = hit + 1;
  }
}

async function runProgram(p: Program, env: Record<string, string> = {}): Promise<void> {
  const { base, app } = makeUserProject();
  try {
    Deno.writeTextFileSync(`${app}/main.ts`, p.source);
    offlineAssert(app, p.source);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...p.flags, "main.ts"],
      cwd: app,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      // The watchdog: a hung program is killed and the test fails.
      signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(
      { code: out.code, signal: out.signal },
      { code: 0, signal: null },
      `"${p.heading}" with \`deno run ${p.flags.join(" ")}\`:\n${stdout}\n${stderr}`,
    );
    checkOutput(p.source, stdout);
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
}

Deno.test("readme: the user's deno.json links a clone next to the project", () => {
  const config = JSON.parse(userDenoJson());
  assertEquals(config.links, ["../aioloop"]);
  assertEquals(config.imports["@aioloop/aioloop"], "jsr:@aioloop/aioloop@^0.1.0");
  // The name JSR would serve is this package's.
  const own = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  assertEquals(own.name, "@aioloop/aioloop");
  assert(README.includes("deno add jsr:@aioloop/aioloop"), "README lacks the JSR line");
});

Deno.test("readme: every TypeScript block is a whole program with its run line", () => {
  const headings = programs().map((p) => p.heading);
  // The first program, the main loop, coroutines, IOThreads and the pool.
  assert(headings.length >= 5, `only ${headings.length} programs: ${headings.join(", ")}`);
  assertEquals(headings[0], "A first program");
});

for (const [i, p] of programs().entries()) {
  const name = i === 0 ? "the first example" : `"${p.heading}" example ${i}`;
  Deno.test(`readme: ${name} runs from an outside project with ${p.flags.join(" ")}`, async () => {
    await runProgram(p);
  });
}

for (const fdmon of supportedFdMons()) {
  Deno.test(`readme: the first example with AIOLOOP_FDMON=${fdmon} and the flag the README adds for it [${fdmon}]`, async () => {
    const first = programs()[0];
    const m = /add `(--allow-env=AIOLOOP_FDMON)`/.exec(first.after);
    assert(
      m !== null,
      `the first example does not say which flag AIOLOOP_FDMON needs: ${first.after}`,
    );
    await runProgram({ ...first, flags: [...first.flags, m[1]] }, { AIOLOOP_FDMON: fdmon });
  });
}

Deno.test("readme: a program with fewer flags than stated fails, naming the flag", async () => {
  // The stated flags are needed, not just sufficient: the pool without
  // --allow-read is refused.
  const pool = programs().find((p) => p.flags.includes("--allow-read"));
  assert(pool !== undefined, "no README program needs --allow-read");
  const { base, app } = makeUserProject();
  try {
    Deno.writeTextFileSync(`${app}/main.ts`, pool.source);
    offlineAssert(app, pool.source);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...pool.flags.filter((f) => f !== "--allow-read"), "main.ts"],
      cwd: app,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.code !== 0, "ran without --allow-read");
    assert(stderr.includes("--allow-read"), stderr);
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
});
