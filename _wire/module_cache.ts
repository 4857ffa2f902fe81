// The one "import a module once" cache of an isolate: work names a module
// by URL and an export by name (a pool job, an IOThread request, and next a
// vCPU or RCU callback), and the thread that runs it imports the module on
// first use. A loaded module is then looked up synchronously, so only the
// first use waits for the event loop. A failed import is not cached (the
// next use tries again, as import() itself does).

/** A module to call into: a URL, or a string holding an absolute URL. */
export type ModuleSpecifier = string | URL;

/** A module's namespace object. */
export type ModuleNamespace = Record<string, unknown>;

const loaded = new Map<string, ModuleNamespace>();
const loading = new Map<string, Promise<ModuleNamespace>>();

/**
 * The absolute URL of `module`, or a TypeError that names `what` and shows
 * how to build one.
 */
export function moduleUrl(module: ModuleSpecifier, what = "Module"): string {
  if (module instanceof URL) return module.href;
  if (typeof module === "string" && URL.canParse(module)) return new URL(module).href;
  throw new TypeError(
    `${what} must be an absolute URL (new URL("./jobs.ts", import.meta.url)), got ${
      typeof module === "string" ? `'${module}'` : String(module)
    }`,
  );
}

/** The namespace of a module this isolate has loaded, or undefined. */
export function loadedModule(url: string): ModuleNamespace | undefined {
  return loaded.get(url);
}

/** Loads `url` once (concurrent callers share the import). */
export function importModule(url: string): Promise<ModuleNamespace> {
  const have = loaded.get(url);
  if (have !== undefined) return Promise.resolve(have);
  let p = loading.get(url);
  if (p === undefined) {
    // The module is named at run time: not analyzable.
    p = import(url).then(
      (ns: ModuleNamespace) => {
        loading.delete(url);
        loaded.set(url, ns);
        return ns;
      },
      (e: unknown) => {
        loading.delete(url);
        throw e ?? new Error(`Import of '${url}' failed`);
      },
    );
    loading.set(url, p);
  }
  return p;
}

/** Export `name` of a loaded module as a function, or the TypeError that says why not. */
export function exportedFunction(
  ns: ModuleNamespace,
  url: string,
  name: string,
): ((arg: unknown) => unknown) | TypeError {
  const fn = ns[name];
  return typeof fn === "function"
    ? fn as (arg: unknown) => unknown
    : new TypeError(`Module '${url}' has no exported function '${name}'`);
}
