/**
 * fdmon-epoll: the epoll(7) fd monitor. A context gets it by choice or by
 * the poll backend's one-way upgrade at 64 fds; any `epoll_ctl` failure
 * (EPERM for a regular file, say) sends the context back to poll for good.
 *
 * Counterpart: `util/fdmon-epoll.c`.
 *
 * @module
 */
import type { AioHandler, ReadyList } from "./aio_handler.ts";
import type { GPollFD } from "../glib/gpollfd.ts";
import {
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  epollCreate,
  epollCtl,
  EpollEvents,
  epollWait,
} from "../sys/epoll.ts";
import { SysError } from "../sys/errno.ts";
import { close } from "../sys/fd.ts";
import { POLLERR, PollFdArray, POLLHUP, POLLIN, pollNs, POLLOUT } from "../sys/poll.ts";
import type { FdMon, FdMonHost, FdMonOps } from "./fdmon_ops.ts";
import { createPollFdMon } from "./poll.ts";

const ENOENT = 2;
const EBADF = 9;

/** Results fetched by one epoll_wait (fdmon-epoll's `events[128]`). */
const EPOLL_MAX_EVENTS = 128;
// EPOLLIN/OUT/HUP/ERR have poll's (and GLib's) bit values on Linux, so a
// node's pfd.events goes to the kernel as is, and results map back by mask.
const EPOLL_EVENT_MASK = POLLIN | POLLOUT | POLLHUP | POLLERR;

/** One epoll backend instance: the epoll fd and its cookie -> node table. */
class EpollFdMon implements FdMon {
  readonly name = "epoll" as const;
  readonly supportsUserspacePolling = false;
  #host: FdMonHost;
  #epfd: number;
  #events = new EpollEvents(EPOLL_MAX_EVENTS);
  // The kernel hands back a 32-bit cookie, not a pointer: index into this
  // table. node.fdmonSlot holds the node's cookie; freed cookies are reused.
  #nodes: (AioHandler | null)[] = [];
  #freeCookies: number[] = [];
  // The epoll fd as its GSource sees it (g_source_add_unix_fd in QEMU).
  #gsourcePfd: GPollFD;
  #inGSource = false;
  // ppoll on the epoll fd alone, for nanosecond timeouts.
  #waitFds = new PollFdArray(1);
  #destroyed = false;

  constructor(host: FdMonHost, epfd: number) {
    this.#host = host;
    this.#epfd = epfd;
    this.#gsourcePfd = { fd: epfd, events: POLLIN, revents: 0 };
    this.#waitFds.push(epfd, POLLIN);
  }

  /**
   * Builds an instance holding every live handler of `host`; null (with
   * nothing left open) when some fd cannot be added.
   */
  static tryEnable(host: FdMonHost, epfd: number): EpollFdMon | null {
    const mon = new EpollFdMon(host, epfd);
    try {
      for (const node of host.liveHandlers()) {
        if (!node.deleted && node.pfd.events !== 0) mon.#add(node);
      }
    } catch (e) {
      mon.destroy();
      if (e instanceof SysError) return null;
      throw e;
    }
    host.gsourceAddPoll(mon.#gsourcePfd);
    mon.#inGSource = true;
    return mon;
  }

  update(oldNode: AioHandler | null, newNode: AioHandler | null): void {
    this.#checkLive();
    const oldCookie = oldNode === null ? -1 : this.#cookieOf(oldNode);
    const wantNew = newNode !== null && newNode.pfd.events !== 0;
    try {
      if (oldCookie >= 0 && wantNew) {
        // The new node takes over the old one's registration and cookie.
        this.#nodes[oldCookie] = newNode;
        newNode.fdmonSlot = oldCookie;
        oldNode!.fdmonSlot = -1;
        epollCtl(
          this.#epfd,
          EPOLL_CTL_MOD,
          newNode.pfd.fd,
          newNode.pfd.events & EPOLL_EVENT_MASK,
          oldCookie,
        );
      } else if (oldCookie >= 0) {
        this.#release(oldNode!, oldCookie);
        try {
          epollCtl(this.#epfd, EPOLL_CTL_DEL, oldNode!.pfd.fd, 0, 0);
        } catch (e) {
          // Unregistering an fd that was closed first (a closed
          // EventNotifier): closing took it out of the set already. QEMU
          // never does this, so it would give up on epoll here.
          if (!(e instanceof SysError) || (e.errno !== EBADF && e.errno !== ENOENT)) throw e;
        }
      } else if (wantNew) {
        this.#add(newNode);
      }
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      this.#disable(oldNode, newNode);
    }
  }

  wait(ready: ReadyList, timeoutNs: number): number {
    this.#checkLive();
    if (timeoutNs > 0) {
      // epoll_wait counts in ms; ppoll on the epoll fd keeps ns precision.
      if (pollNs(this.#waitFds, timeoutNs) === 0) return 0;
      return this.#collect(ready, 0);
    }
    return this.#collect(ready, timeoutNs < 0 ? -1 : 0);
  }

  needWait(): boolean {
    return this.#host.pollDisabled();
  }

  gsourcePrepare(): void {}

  gsourceCheck(): boolean {
    return (this.#gsourcePfd.revents & POLLIN) !== 0;
  }

  gsourceDispatch(ready: ReadyList): void {
    this.#checkLive();
    this.#collect(ready, 0);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#inGSource) {
      this.#inGSource = false;
      this.#host.gsourceRemovePoll(this.#gsourcePfd);
    }
    const nodes = this.#nodes;
    for (let c = 0; c < nodes.length; c++) {
      const node = nodes[c];
      if (node !== null && node.fdmonSlot === c) node.fdmonSlot = -1;
    }
    nodes.length = 0;
    this.#freeCookies.length = 0;
    close(this.#epfd);
  }

  #collect(ready: ReadyList, timeoutMs: number): number {
    const evs = this.#events;
    const n = epollWait(this.#epfd, evs, timeoutMs);
    const nodes = this.#nodes;
    for (let i = 0; i < n; i++) {
      const node = nodes[evs.data(i)];
      // A stale cookie (the fd went away behind epoll's back) is dropped.
      if (node === undefined || node === null || node.deleted) continue;
      ready.add(node, evs.events(i) & EPOLL_EVENT_MASK);
    }
    return n;
  }

  #add(node: AioHandler): void {
    const cookie = this.#freeCookies.length > 0 ? this.#freeCookies.pop()! : this.#nodes.length;
    this.#nodes[cookie] = node;
    node.fdmonSlot = cookie;
    try {
      epollCtl(this.#epfd, EPOLL_CTL_ADD, node.pfd.fd, node.pfd.events & EPOLL_EVENT_MASK, cookie);
    } catch (e) {
      this.#release(node, cookie);
      throw e;
    }
  }

  #release(node: AioHandler, cookie: number): void {
    this.#nodes[cookie] = null;
    this.#freeCookies.push(cookie);
    node.fdmonSlot = -1;
  }

  /** The node's cookie in this instance, or -1 (fdmonSlot may be stale). */
  #cookieOf(node: AioHandler): number {
    const c = node.fdmonSlot;
    return c >= 0 && this.#nodes[c] === node ? c : -1;
  }

  /** fdmon_epoll_disable(): hand the context to a poll backend for good. */
  #disable(oldNode: AioHandler | null, newNode: AioHandler | null): void {
    const poll = createPollFdMon(this.#host, false, { skip: oldNode, include: newNode });
    this.#host.replaceFdMon(poll);
    this.destroy();
  }

  #checkLive(): void {
    if (this.#destroyed) throw new Deno.errors.BadResource("The epoll fd monitor was destroyed");
  }
}

/**
 * Switches a context to epoll: a new instance holding every live handler,
 * or null when epoll cannot be created or some fd refuses it (nothing is
 * left open then).
 *
 * Counterpart: `fdmon_epoll_try_enable()`.
 *
 * @param host The context.
 * @returns The epoll instance, or null.
 */
export function epollTryEnable(host: FdMonHost): FdMon | null {
  let epfd: number;
  try {
    epfd = epollCreate();
  } catch (e) {
    if (e instanceof SysError) return null;
    throw e;
  }
  return EpollFdMon.tryEnable(host, epfd);
}

let epollSupported: boolean | undefined;

/**
 * The epoll(7) fd monitor. Handler changes become `EPOLL_CTL_ADD/MOD/DEL`
 * on one close-on-exec epoll fd; a timed wait first ppolls the epoll fd
 * (nanosecond precision), then collects up to 128 events with
 * `epoll_wait(0)`. Events come in kernel order. If `epoll_ctl` fails (a
 * regular file gives EPERM), the context falls back to the poll backend for
 * good, as QEMU's `fdmon_epoll_disable()` does.
 *
 * Counterpart: `fdmon_epoll_ops` (`util/fdmon-epoll.c`).
 *
 * Thread: the instance it creates serves its context's home thread only.
 *
 * @example Choosing epoll where the kernel has it
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { fdmonEpoll } from "@aioloop/aioloop/fdmon";
 * assertEquals(fdmonEpoll.name, "epoll");
 * assertEquals(typeof fdmonEpoll.supported(), "boolean");
 * ```
 */
export const fdmonEpoll: FdMonOps = Object.freeze({
  name: "epoll" as const,
  supported(): boolean {
    if (epollSupported === undefined) {
      try {
        close(epollCreate());
        epollSupported = true;
      } catch (e) {
        // Only the kernel's answer is cached; a missing permission is not.
        if (!(e instanceof SysError)) throw e;
        epollSupported = false;
      }
    }
    return epollSupported;
  },
  create(host: FdMonHost): FdMon {
    const epfd = epollCreate();
    return EpollFdMon.tryEnable(host, epfd) ?? createPollFdMon(host, false);
  },
});
