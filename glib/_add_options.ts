// Reads the priority-or-options argument of the `_full` forms (timeoutAdd,
// idleAdd, unixFdAdd, GMainContext.invoke) before anything is created, so
// that bad input throws with nothing half built and no notify called.
// Structural types (GDestroyNotify and GSourceAddOptions of source.ts) so
// that this helper imports nothing back from the files that use it.
type Notify = () => void;
type AddOptions = { priority?: number; notify?: Notify | null };

/** The checked priority and notify of an add call. */
export interface AddArgs {
  priority: number;
  notify: Notify | null;
}

/** Validates `arg` (a priority, an options object, or undefined). */
export function addArgs(
  arg: number | AddOptions | undefined,
  defaultPriority: number,
  what: string,
): AddArgs {
  let priority = defaultPriority;
  let notify: Notify | null = null;
  if (typeof arg === "number") {
    priority = arg;
  } else if (arg !== undefined) {
    if (arg === null || typeof arg !== "object") {
      throw new TypeError(`${what}: expected a priority or an options object, got ${arg}`);
    }
    if (arg.priority !== undefined) priority = arg.priority;
    if (arg.notify !== undefined && arg.notify !== null) {
      if (typeof arg.notify !== "function") {
        throw new TypeError(`${what}: options.notify must be a function`);
      }
      notify = arg.notify;
    }
  }
  if (!Number.isInteger(priority) || priority < -0x80000000 || priority > 0x7fffffff) {
    throw new RangeError(`${what}: priority must be a 32-bit integer, got ${priority}`);
  }
  return { priority, notify };
}
