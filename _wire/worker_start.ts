// Starting a Worker of the package (a pool worker, an IOThread, and next a
// vCPU or RCU thread): a Worker's module is read like any other module, so
// without read permission for it the constructor throws Deno's NotCapable,
// which names the module but not why this package needs it. Explained once
// here for every kind of thread.

/** The package's root directory (this file is in _wire/). */
const PACKAGE_ROOT = new URL("../", import.meta.url);

function pathOf(url: URL): string {
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : url.href;
}

/**
 * Turns a permission error thrown while starting the Worker of `url` into a
 * NotCapable that says which flag to add; other errors are returned as they
 * are.
 *
 * @param e What the Worker constructor (or its start-up) threw.
 * @param who What was being started ("The thread pool", "IOThread 'io0'").
 * @param url The Worker's module.
 * @returns The error to throw.
 */
export function explainWorkerStartError(e: unknown, who: string, url: URL): unknown {
  if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
    return e;
  }
  const detail = e.message;
  let fix: string;
  if (url.protocol === "file:") {
    fix = `run with --allow-read (or at least --allow-read=${pathOf(PACKAGE_ROOT)})`;
  } else {
    fix = `run with --allow-import=${url.host} (or --allow-net=${url.host})`;
  }
  return new Deno.errors.NotCapable(
    `${who} cannot start its Worker thread: the Worker loads the module ${
      pathOf(url)
    } and the modules next to it, which needs permission: ${fix}. (${detail})`,
    { cause: e },
  );
}
