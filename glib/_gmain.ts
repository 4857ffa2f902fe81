// The engine behind GMainContext and GSource (GLib's gmain.c): the source
// list, the poll records, prepare / query / check / dispatch, blocking of
// non-recursive sources, ref counting and destruction. The public classes in
// main_context.ts and source.ts are thin wrappers over the two "core"
// records here, so that both can reach each other's state without exposing
// it. Everything runs in the context's home isolate; only the wakeup eventfd
// is touched by other threads (through its fd number).
import type { GPollFD } from "./gpollfd.ts";
import { close, eventfd, read, write } from "../sys/fd.ts";
import { clockGettimeNs } from "../sys/clock.ts";
import { PollFdArray, pollNs } from "../sys/poll.ts";
import { K_GSOURCE, traceCallNamed, tracing } from "../trace/_state.ts";

/** GLib's G_MAXINT: the priority prepare() reports when nothing is ready. */
export const G_MAXINT = 0x7fffffff;

const POLLIN = 0x001;
// ERR, HUP and NVAL are always reported; they are masked out of `events`
// when filling the poll set (GLib does the same).
const ERR_HUP_NVAL = 0x008 | 0x010 | 0x020;

/** Any source callback; each source type knows its real signature. */
export type AnyCallback = (...args: never[]) => boolean;

/** What a prepare hook returns: ready, or ready plus a timeout in ms. */
export type PrepareResult = boolean | readonly [boolean, number];

/**
 * A callback with its destroy-notify, shared by reference (GLib's
 * GSourceCallback): dispatch holds a reference while the callback runs, so
 * a callback replaced or a source destroyed meanwhile is notified only after
 * the callback returns. The notify runs when the last reference goes.
 */
export class CallbackRec {
  readonly func: AnyCallback | null;
  readonly notify: (() => void) | null;
  refs = 1;

  constructor(func: AnyCallback | null, notify: (() => void) | null) {
    this.func = func;
    this.notify = notify;
  }
}

/** g_source_callback_unref: the notify runs once, with the last reference. */
export function callbackUnref(rec: CallbackRec | null): void {
  if (rec === null || --rec.refs > 0) return;
  const notify = rec.notify;
  if (notify !== null) notify();
}

/** g_source_set_callback: the old callback is released after the swap. */
export function sourceSetCallback(s: SourceCore, rec: CallbackRec | null): void {
  const old = s.callback;
  s.callback = rec;
  callbackUnref(old);
}

/** The overridable hooks of a GSource, as the engine calls them. */
export interface SourceHooks {
  prepare(): PrepareResult;
  check(): boolean;
  dispatch(callback: AnyCallback | null): boolean;
  finalize(): void;
}

/** One polled fd of a source (or of the context itself). GLib's GPollRec. */
export class PollRec {
  readonly pfd: GPollFD;
  priority: number;
  readonly owner: SourceCore | null;
  /** Added with addUnixFd (its revents alone make the source ready). */
  readonly unix: boolean;
  /** False while the owner is blocked: kept in place but not polled. */
  active = true;

  constructor(pfd: GPollFD, priority: number, owner: SourceCore | null, unix: boolean) {
    this.pfd = pfd;
    this.priority = priority;
    this.owner = owner;
    this.unix = unix;
  }
}

/** The state of one GSource. */
export class SourceCore {
  readonly wrapper: object;
  readonly hooks: SourceHooks;
  context: ContextCore | null = null;
  id = 0;
  refCount = 1;
  priority = 0;
  destroyed = false;
  ready = false;
  blocked = false;
  canRecurse = false;
  inCall = 0;
  hasReadyTime = false;
  readyTimeNs = 0;
  callback: CallbackRec | null = null;
  name: string | null = null;
  readonly recs: PollRec[] = [];
  children: SourceCore[] = [];
  parent: SourceCore | null = null;
  // Intrusive list of the context's sources, sorted by priority. An unlinked
  // node keeps `next`, so a walk standing on it can carry on.
  prev: SourceCore | null = null;
  next: SourceCore | null = null;
  linked = false;

  constructor(wrapper: object, hooks: SourceHooks) {
    this.wrapper = wrapper;
    this.hooks = hooks;
  }
}

/** What g_main_current_source() / g_main_depth() read, per isolate. */
export const dispatchState: { current: SourceCore | null; depth: number } = {
  current: null,
  depth: 0,
};

// The public classes hand out their cores through these (set from their
// static blocks), so no core is reachable from outside the package.
let sourceAccess: ((s: object) => SourceCore) | null = null;
let contextAccess: ((c: object) => ContextCore) | null = null;

/** Called once by GSource. */
export function registerSourceAccess(f: (s: object) => SourceCore): void {
  sourceAccess = f;
}

/** Called once by GMainContext. */
export function registerContextAccess(f: (c: object) => ContextCore): void {
  contextAccess = f;
}

/** The core of a GSource. */
export function sourceCoreOf(s: object): SourceCore {
  return sourceAccess!(s);
}

/** The core of a GMainContext. */
export function contextCoreOf(c: object): ContextCore {
  return contextAccess!(c);
}

const wakeBuf = new Uint8Array(new BigUint64Array([1n]).buffer);
const ackBuf = new Uint8Array(8);

function badResource(msg: string): Error {
  return new Deno.errors.BadResource(msg);
}

/** g_source_ref. */
export function sourceRef(s: SourceCore): void {
  if (s.refCount <= 0) throw badResource("Source is finalized");
  s.refCount++;
}

/** g_source_unref: finalizes at zero. */
export function sourceUnref(s: SourceCore): void {
  if (s.refCount <= 0) throw badResource("Source is already finalized");
  if (--s.refCount > 0) return;
  const ctx = s.context;
  if (ctx !== null && !s.destroyed) {
    // The last reference went while attached (an extra unref): detach
    // quietly, as GLib does after its warning.
    s.destroyed = true;
    ctx.detach(s);
  }
  // Methods stay usable from the finalize hook and the callback's notify,
  // which (as in GLib) runs after finalize when the source was never
  // destroyed (destroy releases the callback earlier).
  const rec = s.callback;
  s.callback = null;
  s.refCount = 1;
  try {
    s.hooks.finalize();
  } finally {
    try {
      callbackUnref(rec);
    } finally {
      s.refCount = 0;
      const kids = s.children;
      s.children = [];
      for (const c of kids) {
        c.parent = null;
        if (c.refCount > 0) sourceUnref(c);
      }
    }
  }
}

/** g_source_destroy. */
export function sourceDestroy(s: SourceCore): void {
  if (s.context !== null) s.context.destroySource(s);
  else s.destroyed = true;
}

function markReady(s: SourceCore): void {
  for (let r: SourceCore | null = s; r !== null; r = r.parent) r.ready = true;
}

/** block_source: the source's fds leave the poll set while it dispatches. */
export function blockSource(s: SourceCore): void {
  s.blocked = true;
  const ctx = s.context;
  for (const rec of s.recs) {
    if (rec.active) {
      rec.active = false;
      if (ctx !== null) ctx.pollChanged = true;
    }
  }
  for (const c of s.children) if (!c.blocked) blockSource(c);
}

/** unblock_source. Re-added fds start with no revents, as in GLib. */
export function unblockSource(s: SourceCore): void {
  s.blocked = false;
  const ctx = s.context;
  for (const rec of s.recs) {
    rec.active = true;
    rec.pfd.revents = 0;
    if (ctx !== null) ctx.pollChanged = true;
  }
  for (const c of s.children) if (c.blocked && !c.destroyed) unblockSource(c);
}

/** g_source_set_priority (children follow their parent). */
export function sourceSetPriority(s: SourceCore, priority: number): void {
  const ctx = s.context;
  if (ctx !== null && s.linked) {
    ctx.unlink(s);
    s.priority = priority;
    ctx.link(s);
  } else {
    s.priority = priority;
  }
  for (const rec of s.recs) rec.priority = priority;
  if (ctx !== null && s.recs.length > 0) {
    ctx.pollChanged = true;
    ctx.signalIfPolling();
  }
  for (const c of s.children) sourceSetPriority(c, priority);
}

/** g_source_set_ready_time (ns internally; -1 is `has = false`). */
export function sourceSetReadyTime(s: SourceCore, has: boolean, ns: number): void {
  if (s.hasReadyTime === has && s.readyTimeNs === ns) return;
  s.hasReadyTime = has;
  s.readyTimeNs = ns;
  if (s.context !== null && !s.blocked) s.context.signalIfPolling();
}

/** g_source_add_poll / g_source_add_unix_fd. */
export function sourceAddRec(s: SourceCore, rec: PollRec): void {
  s.recs.push(rec);
  rec.pfd.revents = 0;
  rec.active = !s.blocked;
  if (s.context !== null) s.context.addRec(rec);
}

/** g_source_remove_poll / g_source_remove_unix_fd. */
export function sourceRemoveRec(s: SourceCore, rec: PollRec): void {
  const i = s.recs.indexOf(rec);
  if (i < 0) return;
  s.recs.splice(i, 1);
  if (s.context !== null && !s.destroyed) s.context.removeRec(rec);
}

/** g_source_add_child_source (checks done by the caller). */
export function sourceAddChild(parent: SourceCore, child: SourceCore): void {
  child.refCount++;
  // Newest first, as GLib's g_slist_prepend: attach and set-priority walk
  // the children in this order, which fixes their order in the list.
  parent.children.unshift(child);
  child.parent = parent;
  sourceSetPriority(child, parent.priority);
  if (parent.blocked) blockSource(child);
  if (parent.context !== null) parent.context.attach(child);
}

/** g_child_source_remove_internal. */
export function sourceRemoveChild(child: SourceCore): void {
  const parent = child.parent;
  if (parent === null) return;
  const i = parent.children.indexOf(child);
  if (i >= 0) parent.children.splice(i, 1);
  child.parent = null;
  sourceDestroy(child);
  sourceUnref(child);
}

/** The state of one GMainContext and the iteration phases. */
export class ContextCore {
  readonly wrapper: object;
  head: SourceCore | null = null;
  tail: SourceCore | null = null;
  readonly ids: Map<number, SourceCore> = new Map();
  nextId = 1;
  /** Poll records sorted by fd (equal fds keep insertion order). */
  readonly recs: PollRec[] = [];
  /** The poll set changed since the last query: check() must bail out. */
  pollChanged = false;
  /** Between query() and check(): someone may be polling our fds. */
  pollPending = false;
  wakeFd = -1;
  pending: (SourceCore | null)[] = [];
  pendingLen = 0;
  inCheckOrPrepare = 0;
  ownerCount = 0;
  hasTimeout = false;
  timeoutNs = 0;
  timeNs = 0;
  timeFresh = false;
  /** The priority the last prepare() found ready (G_MAXINT: none). */
  readyPriority: number = G_MAXINT;
  destroyed = false;
  // The iteration's own poll set, reused from call to call.
  readonly fds: GPollFD[] = [];
  readonly pfa: PollFdArray = new PollFdArray();

  constructor(wrapper: object) {
    this.wrapper = wrapper;
  }

  /** The iteration's cached monotonic time in ns (g_source_get_time). */
  now(): number {
    if (!this.timeFresh) {
      this.timeNs = clockGettimeNs();
      this.timeFresh = true;
    }
    return this.timeNs;
  }

  // ---- source list -------------------------------------------------------

  /**
   * source_add_to_context: a source goes to the tail of its priority, but a
   * child goes immediately before its parent, so that it is prepared and
   * checked first and a ready child makes its parent ready in the same walk.
   */
  link(s: SourceCore): void {
    let after: SourceCore | null;
    const parent = s.parent;
    if (parent !== null && parent.linked && parent.context === this) after = parent.prev;
    else {
      after = this.tail;
      while (after !== null && after.priority > s.priority) after = after.prev;
    }
    s.prev = after;
    s.next = after !== null ? after.next : this.head;
    if (after !== null) after.next = s;
    else this.head = s;
    if (s.next !== null) s.next.prev = s;
    else this.tail = s;
    s.linked = true;
  }

  unlink(s: SourceCore): void {
    if (!s.linked) return;
    if (s.prev !== null) s.prev.next = s.next;
    else this.head = s.next;
    if (s.next !== null) s.next.prev = s.prev;
    else this.tail = s.prev;
    s.prev = null;
    s.linked = false;
  }

  attach(s: SourceCore): number {
    let id: number;
    do {
      id = this.nextId++;
      if (this.nextId > 0xffffffff) this.nextId = 1;
    } while (this.ids.has(id));
    s.context = this;
    s.id = id;
    s.refCount++;
    this.ids.set(id, s);
    this.link(s);
    for (const rec of s.recs) {
      rec.active = !s.blocked;
      this.addRec(rec);
    }
    for (const c of s.children) this.attach(c);
    this.signalIfPolling();
    return id;
  }

  /** Takes a source out of the list, the id map and the poll set. */
  detach(s: SourceCore): void {
    for (const rec of s.recs) this.removeRec(rec);
    this.unlink(s);
    if (this.ids.get(s.id) === s) this.ids.delete(s.id);
  }

  /** g_source_destroy_internal. */
  destroySource(s: SourceCore): void {
    if (s.destroyed) return;
    s.destroyed = true;
    // The callback goes first (its notify sees the source destroyed but not
    // yet finalized), as in g_source_destroy_internal.
    const rec = s.callback;
    s.callback = null;
    try {
      callbackUnref(rec);
    } finally {
      this.detach(s);
      while (s.children.length > 0) sourceRemoveChild(s.children[0]);
      if (s.parent !== null) sourceRemoveChild(s);
      this.signalIfPolling();
      sourceUnref(s);
    }
  }

  // ---- poll records ------------------------------------------------------

  addRec(rec: PollRec): void {
    const recs = this.recs;
    const fd = rec.pfd.fd;
    let i = recs.length;
    while (i > 0 && recs[i - 1].pfd.fd > fd) i--;
    recs.splice(i, 0, rec);
    this.pollChanged = true;
    this.signalIfPolling();
  }

  removeRec(rec: PollRec): void {
    const i = this.recs.indexOf(rec);
    if (i < 0) return;
    this.recs.splice(i, 1);
    this.pollChanged = true;
    this.signalIfPolling();
  }

  // ---- wakeup (GWakeup on an eventfd) ------------------------------------

  ensureWakeup(): number {
    if (this.wakeFd < 0) {
      if (this.destroyed) throw badResource("Context is destroyed");
      this.wakeFd = eventfd(0);
      // Always polled, whatever the priority bound.
      this.addRec(
        new PollRec({ fd: this.wakeFd, events: POLLIN, revents: 0 }, -Infinity, null, false),
      );
    }
    return this.wakeFd;
  }

  wakeup(): void {
    // -1 (EAGAIN) means the counter is already non-zero: rung enough.
    write(this.ensureWakeup(), wakeBuf, 8);
  }

  /** Rings only when a poll over our fds may be outstanding elsewhere. */
  signalIfPolling(): void {
    if (this.pollPending && !this.destroyed) this.wakeup();
  }

  // ---- the phases --------------------------------------------------------

  clearPending(): void {
    const p = this.pending;
    const n = this.pendingLen;
    this.pendingLen = 0;
    for (let i = 0; i < n; i++) {
      const s = p[i];
      if (s !== null) {
        p[i] = null;
        sourceUnref(s);
      }
    }
  }

  /** g_main_context_prepare: returns whether some source is ready. */
  prepare(): boolean {
    this.timeFresh = false;
    if (this.inCheckOrPrepare > 0) {
      throw new Error("Cannot prepare a context from inside a prepare or check function");
    }
    this.pollPending = false;
    // A nested iteration takes over what the outer dispatch had left.
    this.clearPending();
    this.hasTimeout = false;
    this.timeoutNs = 0;
    let nReady = 0;
    let current = G_MAXINT;
    let s = this.head;
    while (s !== null) {
      if (s.destroyed || s.blocked) {
        s = s.next;
        continue;
      }
      if (nReady > 0 && s.priority > current) break;
      let hasT = false;
      let tNs = 0;
      if (!s.ready) {
        let result = false;
        let r: PrepareResult;
        s.refCount++;
        this.inCheckOrPrepare++;
        try {
          r = s.hooks.prepare();
        } finally {
          this.inCheckOrPrepare--;
          sourceUnref(s);
        }
        if (s.destroyed) {
          s = s.next;
          continue;
        }
        if (typeof r === "boolean") {
          result = r;
        } else if (Array.isArray(r)) {
          result = !!r[0];
          const ms = r[1];
          if (ms >= 0) {
            hasT = true;
            // Our AioContext sources pass fractional ms (exact ns).
            tNs = Math.ceil(ms * 1e6);
          }
        } else {
          result = !!r;
        }
        if (!result && s.hasReadyTime) {
          const now = this.now();
          if (s.readyTimeNs <= now) {
            tNs = 0;
            result = true;
          } else {
            const left = s.readyTimeNs - now;
            tNs = hasT ? Math.min(tNs, left) : left;
          }
          hasT = true;
        }
        if (result) markReady(s);
      }
      if (s.ready) {
        nReady++;
        current = s.priority;
        this.hasTimeout = true;
        this.timeoutNs = 0;
      }
      if (hasT) {
        if (!this.hasTimeout) {
          this.hasTimeout = true;
          this.timeoutNs = tNs;
        } else if (tNs < this.timeoutNs) {
          this.timeoutNs = tNs;
        }
      }
      s = s.next;
    }
    this.readyPriority = current;
    return nReady > 0;
  }

  /**
   * g_main_context_query: fills `out` (reusing its objects; entries past
   * the count get fd -1, which poll(2) skips) and returns the count.
   */
  query(maxPriority: number, out: GPollFD[]): number {
    this.ensureWakeup();
    const recs = this.recs;
    let n = 0;
    for (let i = 0; i < recs.length; i++) {
      const rec = recs[i];
      if (!rec.active || rec.priority > maxPriority) continue;
      const fd = rec.pfd.fd;
      const ev = rec.pfd.events & ~ERR_HUP_NVAL;
      if (n > 0 && out[n - 1].fd === fd) {
        out[n - 1].events |= ev;
        continue;
      }
      const slot = out[n];
      if (slot === undefined) {
        out.push({ fd, events: ev, revents: 0 });
      } else {
        slot.fd = fd;
        slot.events = ev;
        slot.revents = 0;
      }
      n++;
    }
    for (let i = n; i < out.length; i++) {
      const e = out[i];
      e.fd = -1;
      e.events = 0;
      e.revents = 0;
    }
    this.pollChanged = false;
    this.pollPending = true;
    if (!this.hasTimeout || this.timeoutNs !== 0) this.timeFresh = false;
    return n;
  }

  /** g_main_context_check: copies revents in, queues ready sources. */
  check(maxPriority: number, fds: readonly GPollFD[], count: number): boolean {
    if (this.inCheckOrPrepare > 0) {
      throw new Error("Cannot check a context from inside a prepare or check function");
    }
    this.pollPending = false;
    const wfd = this.wakeFd;
    if (wfd >= 0) {
      for (let i = 0; i < count; i++) {
        if (fds[i].fd === wfd) {
          if (fds[i].revents !== 0) read(wfd, ackBuf, 8);
          break;
        }
      }
    }
    // The fds polled may not match the records any more: let the caller
    // run another iteration (sources already ready stay ready).
    if (this.pollChanged) return false;

    // Both the records and the query's output are sorted by fd.
    const recs = this.recs;
    let r = 0;
    for (let i = 0; i < count && r < recs.length; i++) {
      const fd = fds[i].fd;
      const rev = fds[i].revents;
      while (r < recs.length && recs[r].pfd.fd < fd) r++;
      while (r < recs.length && recs[r].pfd.fd === fd) {
        const rec = recs[r++];
        if (rec.active && rec.priority <= maxPriority) {
          rec.pfd.revents = rev & (rec.pfd.events | ERR_HUP_NVAL);
        }
      }
    }

    let nReady = 0;
    let s = this.head;
    while (s !== null) {
      if (s.destroyed || s.blocked) {
        s = s.next;
        continue;
      }
      if (nReady > 0 && s.priority > maxPriority) break;
      if (!s.ready) {
        let result = false;
        s.refCount++;
        this.inCheckOrPrepare++;
        try {
          result = !!s.hooks.check();
        } finally {
          this.inCheckOrPrepare--;
          sourceUnref(s);
        }
        if (s.destroyed) {
          s = s.next;
          continue;
        }
        if (!result) {
          const sr = s.recs;
          for (let i = 0; i < sr.length; i++) {
            if (sr[i].unix && sr[i].pfd.revents !== 0) {
              result = true;
              break;
            }
          }
        }
        if (!result && s.hasReadyTime && s.readyTimeNs <= this.now()) result = true;
        if (result) markReady(s);
      }
      if (s.ready) {
        s.refCount++;
        this.pending[this.pendingLen++] = s;
        nReady++;
        // Never dispatch below the first ready priority.
        maxPriority = s.priority;
      }
      s = s.next;
    }
    return nReady > 0;
  }

  /** g_main_context_dispatch. */
  dispatch(): void {
    const p = this.pending;
    // pendingLen is re-read: a nested iteration empties the list.
    for (let i = 0; i < this.pendingLen; i++) {
      const s = p[i];
      if (s === null) continue;
      p[i] = null;
      s.ready = false;
      if (s.destroyed) sourceUnref(s);
      else this.#dispatchOne(s);
    }
    this.clearPending();
  }

  #dispatchOne(s: SourceCore): void {
    const rec = s.callback;
    if (rec !== null) rec.refs++;
    const block = !s.canRecurse && !s.blocked;
    if (block) blockSource(s);
    s.inCall++;
    const prev = dispatchState.current;
    dispatchState.current = s;
    dispatchState.depth++;
    let keep = true;
    let returned = false;
    try {
      const fn = rec === null ? null : rec.func;
      keep = !!(tracing
        ? traceCallNamed(
          K_GSOURCE,
          `gsource ${s.name ?? "(unnamed)"}`,
          0,
          s.hooks.dispatch,
          s.hooks,
          fn,
        )
        : s.hooks.dispatch(fn));
      returned = true;
    } finally {
      dispatchState.current = prev;
      dispatchState.depth--;
      s.inCall--;
      try {
        // A callback replaced or destroyed during dispatch is notified now.
        callbackUnref(rec);
      } finally {
        if (block && s.blocked && !s.destroyed) unblockSource(s);
        if (returned && !keep && !s.destroyed && s.context !== null) s.context.destroySource(s);
        // The pending list's reference: finalize, if due, runs only now.
        sourceUnref(s);
      }
    }
  }

  /** g_main_context_iterate: one full iteration, polling with ppoll(2). */
  iterate(block: boolean, dispatch: boolean): boolean {
    if (this.destroyed) throw badResource("Context is destroyed");
    if (this.inCheckOrPrepare > 0) {
      throw new Error("Cannot iterate a context from inside a prepare or check function");
    }
    this.ownerCount++;
    try {
      this.prepare();
      if (this.destroyed) return false;
      const maxPriority = this.readyPriority;
      const fds = this.fds;
      const n = this.query(maxPriority, fds);
      const timeoutNs = !block ? 0 : this.hasTimeout ? this.timeoutNs : -1;
      const pfa = this.pfa;
      pfa.clear();
      for (let i = 0; i < n; i++) pfa.push(fds[i].fd, fds[i].events);
      if (n > 0 || timeoutNs !== 0) pollNs(pfa, timeoutNs);
      for (let i = 0; i < n; i++) fds[i].revents = pfa.revents(i);
      if (this.destroyed) return false;
      const some = this.check(maxPriority, fds, n);
      if (dispatch) this.dispatch();
      return some;
    } finally {
      this.ownerCount--;
    }
  }

  /** Context-level poll records (g_main_context_add_poll). */
  addContextPoll(pfd: GPollFD, priority: number): void {
    pfd.revents = 0;
    this.addRec(new PollRec(pfd, priority, null, false));
  }

  removeContextPoll(pfd: GPollFD): void {
    const recs = this.recs;
    for (let i = 0; i < recs.length; i++) {
      if (recs[i].pfd === pfd && recs[i].owner === null && recs[i].priority !== -Infinity) {
        this.removeRec(recs[i]);
        return;
      }
    }
  }

  /** Destroys every source and closes the wakeup fd (g_main_context_unref at 0). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    let error: unknown = null;
    const run = (f: () => void) => {
      try {
        f();
      } catch (e) {
        error ??= e;
      }
    };
    run(() => this.clearPending());
    const all: SourceCore[] = [];
    for (let s = this.head; s !== null; s = s.next) {
      s.refCount++;
      all.push(s);
    }
    for (const s of all) run(() => this.destroySource(s));
    for (const s of all) run(() => sourceUnref(s));
    this.recs.length = 0;
    this.head = this.tail = null;
    this.ids.clear();
    if (this.wakeFd >= 0) {
      const fd = this.wakeFd;
      this.wakeFd = -1;
      close(fd);
    }
    if (error !== null) throw error;
  }
}
