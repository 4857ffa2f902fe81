/**
 * fdmon-poll: the poll(2) fd monitor, QEMU's default where io_uring is
 * missing. Past {@linkcode EPOLL_ENABLE_THRESHOLD} fds it upgrades its context
 * to epoll, once and for good.
 *
 * Counterpart: `util/fdmon-poll.c`.
 *
 * @module
 */
import type { AioHandler, ReadyList } from "./aio_handler.ts";
import { POLLERR, PollFdArray, POLLHUP, POLLIN, pollNs, POLLOUT } from "../sys/poll.ts";
import type { FdMon, FdMonHost, FdMonOps } from "./fdmon_ops.ts";
import { epollTryEnable, fdmonEpoll } from "./epoll.ts";

/**
 * How many polled fds make fdmon-poll switch its context to epoll.
 *
 * Counterpart: `EPOLL_ENABLE_THRESHOLD` in `util/fdmon-epoll.c`.
 *
 * @example Reading the threshold
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EPOLL_ENABLE_THRESHOLD } from "@aioloop/aioloop/fdmon";
 * assertEquals(EPOLL_ENABLE_THRESHOLD, 64);
 * ```
 */
export const EPOLL_ENABLE_THRESHOLD = 64;

const READ_EVENTS = POLLIN | POLLHUP | POLLERR;
const WRITE_EVENTS = POLLOUT | POLLERR;

/** One poll backend instance: the pollfd array and its parallel node array. */
class PollFdMon implements FdMon {
  readonly name = "poll" as const;
  readonly supportsUserspacePolling = false;
  #host: FdMonHost;
  // Rebuilt only when a handler changed, so a steady-state wait allocates
  // nothing (QEMU rebuilds its thread-local array on every wait).
  #fds = new PollFdArray(8);
  #nodes: AioHandler[] = [];
  #dirty = true;
  // Cleared once an upgrade failed (or epoll is unavailable, or this
  // instance is the fallback after epoll failed): QEMU closes its epoll fd
  // then and never tries again.
  #mayUpgrade: boolean;
  #destroyed = false;

  constructor(host: FdMonHost, mayUpgrade: boolean, options: PollFdMonOptions) {
    this.#host = host;
    this.#mayUpgrade = mayUpgrade;
    // A context that already has handlers (the epoll fallback) gets their
    // pfds into its GSource, as fdmon_poll_downgrade() does, except the node
    // being replaced right now (QEMU leaves that one's pfd behind).
    const { skip = null, include = null } = options;
    let included = include === null || include.pfd.events === 0;
    for (const node of host.liveHandlers()) {
      if (node === skip || node.deleted || node.pfd.events === 0) continue;
      host.gsourceAddPoll(node.pfd);
      if (node === include) included = true;
    }
    if (!included) host.gsourceAddPoll(include!.pfd);
  }

  update(oldNode: AioHandler | null, newNode: AioHandler | null): void {
    this.#checkLive();
    if (oldNode !== null) this.#host.gsourceRemovePoll(oldNode.pfd);
    if (newNode !== null && newNode.pfd.events !== 0) this.#host.gsourceAddPoll(newNode.pfd);
    this.#dirty = true;
  }

  wait(ready: ReadyList, timeoutNs: number): number {
    this.#checkLive();
    if (this.#dirty) this.#rebuild();
    const fds = this.#fds;
    const n = fds.length;
    if (n >= EPOLL_ENABLE_THRESHOLD && this.#mayUpgrade && this.#host.canUpgrade()) {
      const epoll = epollTryEnable(this.#host);
      if (epoll !== null) {
        this.#host.replaceFdMon(epoll);
        this.destroy();
        return epoll.wait(ready, timeoutNs);
      }
      this.#mayUpgrade = false;
    }
    const r = pollNs(fds, timeoutNs);
    if (r > 0) {
      const nodes = this.#nodes;
      for (let i = 0; i < n; i++) {
        const revents = fds.revents(i);
        if (revents !== 0) ready.add(nodes[i], revents);
      }
    }
    return r;
  }

  needWait(): boolean {
    return this.#host.pollDisabled();
  }

  gsourcePrepare(): void {}

  gsourceCheck(): boolean {
    for (const node of this.#host.liveHandlers()) {
      if (node.deleted) continue;
      const revents = node.pfd.revents & node.pfd.events;
      if ((revents & READ_EVENTS) !== 0 && node.ioRead !== null) return true;
      if ((revents & WRITE_EVENTS) !== 0 && node.ioWrite !== null) return true;
    }
    return false;
  }

  gsourceDispatch(ready: ReadyList): void {
    for (const node of this.#host.liveHandlers()) {
      if (!node.deleted && node.pfd.revents !== 0) ready.add(node, node.pfd.revents);
    }
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const node of this.#host.liveHandlers()) {
      if (!node.deleted && node.pfd.events !== 0) this.#host.gsourceRemovePoll(node.pfd);
    }
    this.#fds.clear();
    this.#nodes.length = 0;
  }

  #rebuild(): void {
    const fds = this.#fds;
    const nodes = this.#nodes;
    fds.clear();
    let n = 0;
    // liveHandlers() is newest first; ready.add() pushes onto a LIFO, so the
    // dispatch order comes out oldest registration first, as in QEMU.
    for (const node of this.#host.liveHandlers()) {
      if (node.deleted || node.pfd.events === 0) continue;
      fds.push(node.pfd.fd, node.pfd.events);
      nodes[n++] = node;
    }
    nodes.length = n;
    this.#dirty = false;
  }

  #checkLive(): void {
    if (this.#destroyed) throw new Deno.errors.BadResource("The poll fd monitor was destroyed");
  }
}

/** Nodes in flux when a poll backend takes over from a failed epoll. */
export interface PollFdMonOptions {
  /** A node being replaced or removed right now: keep it out of the GSource. */
  skip?: AioHandler | null;
  /** A node being added right now, which liveHandlers() may not list yet. */
  include?: AioHandler | null;
}

/**
 * Makes a poll backend for `host`; fdmon-epoll falls back through it with
 * `mayUpgrade` false, so that the context never tries epoll again.
 *
 * Counterpart: `fdmon_poll_downgrade()`.
 *
 * @param host The context.
 * @param mayUpgrade Whether the 64-fd epoll upgrade may happen.
 * @param options Nodes in flux during the switch.
 * @returns The new backend instance.
 */
export function createPollFdMon(
  host: FdMonHost,
  mayUpgrade: boolean,
  options: PollFdMonOptions = {},
): FdMon {
  return new PollFdMon(host, mayUpgrade, options);
}

/**
 * The poll(2) fd monitor. Each wait hands every live handler's fd to one
 * ppoll(2) with a nanosecond timeout; handlers become ready newest
 * registration first, so `ReadyList.pop()` dispatches oldest first. When a
 * wait sees {@linkcode EPOLL_ENABLE_THRESHOLD} (64) fds or more outside a
 * nested poll, the context switches to {@linkcode fdmonEpoll} for good; if
 * that fails it keeps polling.
 *
 * Counterpart: `fdmon_poll_ops` (with `fdmon_epoll_try_upgrade()`).
 *
 * Thread: the instance it creates serves its context's home thread only.
 *
 * @example Choosing the poll backend
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { fdmonPoll } from "@aioloop/aioloop/fdmon";
 * assertEquals(fdmonPoll.name, "poll");
 * assertEquals(fdmonPoll.supported(), true);
 * ```
 */
export const fdmonPoll: FdMonOps = Object.freeze({
  name: "poll" as const,
  supported(): boolean {
    // poll(2) is everywhere this package runs.
    return true;
  },
  create(host: FdMonHost): FdMon {
    return new PollFdMon(host, fdmonEpoll.supported(), {});
  },
});
