// A pure reference model of QEMU's AioContext, written from util/async.c
// (bottom halves and their slices), util/aio-posix.c (fd handlers, the ready
// list, aio_poll), util/qemu-timer.c (one timer list on the VIRTUAL clock)
// and util/fdmon-{poll,epoll,io_uring}.c (which fds a wait reports). No I/O:
// pipes are byte counters, the clock is a number. The property test in
// _tests/aio_model_test.ts runs random programs against this model and the
// real AioContext in lockstep.
//
// Also modelled: the context's GSource in a GMainContext of its own
// (aio_ctx_prepare/check/dispatch) on poll and epoll, with notify_me bit 0
// and the kicks it lets into the notifier's eventfd.
//
// Blocking is modelled only as far as a single thread can observe it: a
// blocking poll that returns sees what a non-blocking one sees (nothing can
// change while it waits), so the model only tells the driver whether a
// blocking poll would return at all: `notified` (aio_notify since the last
// aio_notify_accept), a kick, a finite timeout or a ready fd. Left out,
// because the programs cannot observe them: adaptive polling (no handler
// has io_poll), io_uring under GLib, other clocks, other threads.

/** Which fd monitor's readiness rules to follow. */
export type FdMonKind = "poll" | "epoll" | "io_uring";

/** The end of a pipe a handler watches: read end (io_read) or write end (io_write). */
export type PipeEnd = "r" | "w";

/**
 * The operations a program performs. Implemented by the model and by the
 * adapter over the real AioContext; ids are chosen by the program driver.
 */
export interface LoopUnderTest {
  /** aio_bh_new. */
  bhNew(id: number, cb: () => void): void;
  /** aio_bh_schedule_oneshot. */
  bhOneshot(id: number, cb: () => void): void;
  /** qemu_bh_schedule. */
  bhSchedule(id: number): void;
  /** qemu_bh_schedule_idle. */
  bhScheduleIdle(id: number): void;
  /** qemu_bh_cancel. */
  bhCancel(id: number): void;
  /** qemu_bh_delete (the driver never touches a BH after this). */
  bhDelete(id: number): void;
  /** aio_timer_new on QEMU_CLOCK_VIRTUAL, SCALE_NS. */
  timerNew(id: number, cb: () => void): void;
  /** timer_mod_ns. */
  timerModNs(id: number, ns: number): void;
  /** timer_mod_anticipate_ns. */
  timerModAnticipateNs(id: number, ns: number): void;
  /** timer_del. */
  timerDel(id: number): void;
  /** qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL). */
  virtualNow(): number;
  /** Moves the virtual clock forward. */
  clockAdvance(ns: number): void;
  /** qemu_clock_enable(QEMU_CLOCK_VIRTUAL, on). */
  clockEnable(on: boolean): void;
  /** aio_notify. */
  notify(): void;
  /** Writes n bytes into pipe p. */
  pipeWrite(p: number, n: number): void;
  /** Reads up to n bytes from pipe p: the count, or -1 for EAGAIN. */
  pipeRead(p: number, n: number): number;
  /**
   * aio_set_fd_handler on one end of pipe p: `cb` becomes io_read (end "r")
   * or io_write (end "w") of a new node `nodeId`; null removes the handler.
   */
  setFdHandler(p: number, end: PipeEnd, nodeId: number, cb: (() => void) | null): void;
  /** aio_poll. */
  poll(blocking: boolean): boolean;
  /**
   * One non-blocking g_main_context_iteration of a GMainContext that has
   * only this context's GSource: returns whether it dispatched.
   */
  iterate(): boolean;
}

/** Deliberate mistakes, to show that the checker catches a wrong model. */
export type ModelMutation =
  | "none"
  /** BHs within a slice run in scheduling order instead of LIFO. */
  | "bh-fifo"
  /** Timers run before bottom halves and fd handlers. */
  | "timers-first"
  /** A BH scheduled from a BH callback runs in the same aio_bh_poll. */
  | "no-slices"
  /** A nested poll leaves handlers found ready by an outer poll to that poll. */
  | "no-steal"
  /** fdmon-poll dispatches the newest registration first. */
  | "fd-newest-first";

/** Options of {@linkcode AioModel}. */
export interface AioModelOptions {
  /** Readiness rules of this fd monitor. */
  fdmon: FdMonKind;
  /** Number of pipes the program uses. */
  pipes: number;
  /** A deliberate mistake (default none). */
  mutation?: ModelMutation;
  /**
   * Picks the next ready handler to dispatch where the monitor leaves the
   * order unspecified (epoll and io_uring report fds in kernel order). Gets
   * the candidates in the model's default order, returns an index. Not used
   * for "poll", whose order is defined: oldest (re)registration first.
   */
  chooseReady?: (candidates: readonly ModelNode[]) => number;
  /**
   * The observed result of the current iteration, when it only depends on
   * whether the notifier's eventfd holds a kick the model cannot place.
   */
  resolveKick?: () => boolean | undefined;
}

// BH flags (util/async.c).
const BH_PENDING = 1;
const BH_SCHEDULED = 2;
const BH_DELETED = 4;
const BH_ONESHOT = 8;
const BH_IDLE = 16;

class ModelBh {
  flags: number;
  constructor(readonly name: string, readonly cb: () => void, oneshot: boolean) {
    this.flags = oneshot ? BH_ONESHOT : 0;
  }
}

class ModelTimer {
  /** -1 when not pending, else >= 0. */
  expire = -1;
  constructor(readonly cb: () => void) {}
}

/** io_uring state of a node: its POLL_ADD is waiting to be submitted, in flight, or completed. */
type UringState = "pending" | "armed" | "fired";

/** One aio_set_fd_handler registration (an AioHandler node). */
export class ModelNode {
  /** On the deleted list (or marked deleted by io_uring): never called again. */
  deleted = false;
  /** The ready list this node is on, if any (a nested poll may steal it). */
  readyOwner: ReadyList | null = null;
  /**
   * pfd.revents is non-zero: set by aio_add_ready_handler and by GLib's
   * poll, cleared by dispatch and removal, copied into a replacing node
   * (aio_set_fd_handler copies the whole pfd). Only fdmon-poll's GSource
   * dispatch reads it outside a ready list.
   */
  revents = false;
  uring: UringState = "pending";
  constructor(
    readonly id: number,
    readonly pipe: number,
    readonly end: PipeEnd,
    readonly cb: () => void,
  ) {}
  /** The trace name of its callback. */
  get name(): string {
    return `${this.end}${this.id}`;
  }
}

/** aio_poll's per-call ready list; dispatch pops the head (the last added). */
class ReadyList {
  items: ModelNode[] = [];
  /** aio_add_ready_handler: take the node off any other list, insert at head. */
  add(node: ModelNode): void {
    node.readyOwner = this;
    node.revents = true;
    this.items.push(node);
  }
  /** Still-owned nodes in dispatch order. */
  owned(): ModelNode[] {
    const out: ModelNode[] = [];
    for (let i = this.items.length - 1; i >= 0; i--) {
      const n = this.items[i];
      if (n.readyOwner === this && !out.includes(n)) out.push(n);
    }
    return out;
  }
  take(node: ModelNode): void {
    node.readyOwner = null;
    const i = this.items.lastIndexOf(node);
    this.items.splice(i, 1);
  }
}

/** The reference model. */
export class AioModel implements LoopUnderTest {
  readonly fdmon: FdMonKind;
  readonly mutation: ModelMutation;
  #chooseReady: ((c: readonly ModelNode[]) => number) | undefined;

  // util/async.c: ctx->bh_list is a stack (push = insert at head), and the
  // slices of the aio_bh_poll calls under way.
  #bhs = new Map<number, ModelBh>();
  #bhList: ModelBh[] = [];
  #slices: ModelBh[][] = [];

  // util/qemu-timer.c: one list, sorted, ties in arming order.
  #timers = new Map<number, ModelTimer>();
  #active: ModelTimer[] = [];
  #now = 0;
  #enabled = true;

  // Pipes: bytes waiting in each.
  #bytes: number[];

  // util/aio-posix.c: every node ever registered, oldest first; the live one per fd.
  #nodes: ModelNode[] = [];
  #live = new Map<string, ModelNode>();
  // io_uring: completions posted and not yet reaped, in posting order.
  #cq: ModelNode[] = [];
  // GLib side (aio_ctx_prepare/check/dispatch) exists for poll and epoll only.
  // ctx->notified: set by aio_notify, cleared by aio_notify_accept in every
  // poll. A new context has notified itself (registering its notifier).
  #notified = true;
  // notify_me bit 0: set by the GSource's prepare, cleared by its check.
  // GLib skips check for a source that prepare found ready, so the bit can
  // stay set after an iteration; every aio_notify then writes the
  // notifier's eventfd ("kick"), which wakes the next wait and makes the
  // next iteration dispatch (QEMU's test-aio allows that extra iteration).
  // The notifier reads it when dispatched, at a place among the handlers
  // that epoll and io_uring leave open, so after a poll that saw a kick the
  // model only knows "maybe": 2, resolved by the next iteration's result.
  #bit0 = false;
  #kick: 0 | 1 | 2 = 0;
  #notifies = 0;
  // A wait at this poll depth saw a kick: the notifier reads it somewhere in
  // that poll's handler phase (or a nested poll steals and reads it first).
  // -1: no read pending. A kick while a read is pending leaves it unknown.
  #readDepth = -1;
  #kickedWhileReading = false;
  #depth = 0;
  #resolveKick: (() => boolean | undefined) | undefined;

  constructor(options: AioModelOptions) {
    this.fdmon = options.fdmon;
    this.mutation = options.mutation ?? "none";
    this.#chooseReady = options.chooseReady;
    this.#resolveKick = options.resolveKick;
    this.#bytes = new Array(options.pipes).fill(0);
  }

  // ---- bottom halves ----

  #enqueue(bh: ModelBh, flags: number): void {
    const old = bh.flags;
    bh.flags = old | BH_PENDING | flags;
    if ((old & BH_PENDING) === 0) this.#bhList.push(bh);
    // Always, even when it was already queued (qemu_bh_cancel does not).
    this.#aioNotify();
  }

  notify(): void {
    this.#aioNotify();
  }

  /** aio_notify. */
  #aioNotify(): void {
    this.#notified = true;
    this.#notifies++;
    if (!this.#bit0) return;
    if (this.#readDepth >= 0) this.#kickedWhileReading = true;
    else this.#kick = 1;
  }

  bhNew(id: number, cb: () => void): void {
    this.#bhs.set(id, new ModelBh(`b${id}`, cb, false));
  }

  bhOneshot(id: number, cb: () => void): void {
    this.#enqueue(new ModelBh(`o${id}`, cb, true), BH_SCHEDULED);
  }

  bhSchedule(id: number): void {
    this.#enqueue(this.#bh(id), BH_SCHEDULED);
  }

  bhScheduleIdle(id: number): void {
    this.#enqueue(this.#bh(id), BH_SCHEDULED | BH_IDLE);
  }

  bhCancel(id: number): void {
    this.#bh(id).flags &= ~BH_SCHEDULED;
  }

  bhDelete(id: number): void {
    const bh = this.#bh(id);
    this.#enqueue(bh, BH_DELETED);
    this.#bhs.delete(id);
  }

  #bh(id: number): ModelBh {
    const bh = this.#bhs.get(id);
    if (bh === undefined) throw new Error(`model: BH ${id} does not exist`);
    return bh;
  }

  /** aio_bh_poll: true iff a non-idle BH callback ran. */
  #bhPoll(): boolean {
    if (this.mutation === "no-slices") return this.#bhPollNoSlices();
    // Take the whole list as this call's slice; BHs scheduled from now on
    // land on the fresh list and wait for the next call.
    this.#slices.push(this.#bhList);
    this.#bhList = [];
    let ret = false;
    while (this.#slices.length > 0) {
      // A nested call works on the outer call's slice first.
      const s = this.#slices[0];
      const bh = this.mutation === "bh-fifo" ? s.shift() : s.pop();
      if (bh === undefined) {
        this.#slices.shift();
        continue;
      }
      const old = bh.flags;
      bh.flags = old & ~(BH_PENDING | BH_SCHEDULED | BH_IDLE);
      if ((old & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) {
        if ((old & BH_IDLE) === 0) ret = true;
        bh.cb();
      }
      // BH_DELETED or BH_ONESHOT: freed here (nothing to model).
    }
    return ret;
  }

  /** The "no-slices" mutation: one shared list, drained until empty. */
  #bhPollNoSlices(): boolean {
    let ret = false;
    for (;;) {
      const bh = this.#bhList.pop();
      if (bh === undefined) return ret;
      const old = bh.flags;
      bh.flags = old & ~(BH_PENDING | BH_SCHEDULED | BH_IDLE);
      if ((old & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) {
        if ((old & BH_IDLE) === 0) ret = true;
        bh.cb();
      }
    }
  }

  /** The BH part of aio_compute_timeout: 0, 10 ms (idle only) or -1. */
  #bhTimeout(): number {
    let timeout = -1;
    for (const list of [this.#bhList, ...this.#slices]) {
      for (const bh of list) {
        if ((bh.flags & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) {
          if ((bh.flags & BH_IDLE) === 0) return 0;
          timeout = 10_000_000;
        }
      }
    }
    return timeout;
  }

  // ---- timers ----

  timerNew(id: number, cb: () => void): void {
    this.#timers.set(id, new ModelTimer(cb));
  }

  timerModNs(id: number, ns: number): void {
    const t = this.#timer(id);
    this.#timerUnlink(t);
    // Insert after every timer whose expiry is <= ns (compared before the
    // clamp), store max(ns, 0).
    let i = 0;
    while (i < this.#active.length && this.#active[i].expire <= ns) i++;
    t.expire = ns > 0 ? ns : 0;
    this.#active.splice(i, 0, t);
    // timerlist_rearm: only a new earliest timer notifies (enabled or not).
    if (i === 0) this.#aioNotify();
  }

  timerModAnticipateNs(id: number, ns: number): void {
    // Only ever earlier; an idle timer is armed.
    const t = this.#timer(id);
    if (t.expire === -1 || t.expire > ns) this.timerModNs(id, ns);
  }

  timerDel(id: number): void {
    this.#timerUnlink(this.#timer(id));
  }

  #timer(id: number): ModelTimer {
    const t = this.#timers.get(id);
    if (t === undefined) throw new Error(`model: timer ${id} does not exist`);
    return t;
  }

  #timerUnlink(t: ModelTimer): void {
    t.expire = -1;
    const i = this.#active.indexOf(t);
    if (i >= 0) this.#active.splice(i, 1);
  }

  virtualNow(): number {
    return this.#now;
  }

  clockAdvance(ns: number): void {
    this.#now += ns;
    // Setting the virtual clock notifies every timer list on it.
    this.#aioNotify();
  }

  clockEnable(on: boolean): void {
    // qemu_clock_enable: enabling a disabled clock notifies its lists.
    if (on && !this.#enabled) this.#aioNotify();
    this.#enabled = on;
  }

  /** timerlist_run_timers: `now` is sampled once per pass. */
  #runTimers(): boolean {
    if (this.#active.length === 0 || !this.#enabled) return false;
    const now = this.#now;
    let progress = false;
    for (;;) {
      const t = this.#active[0];
      if (t === undefined || t.expire > now) break;
      this.#active.shift();
      t.expire = -1;
      progress = true;
      t.cb();
    }
    return progress;
  }

  /** timerlist_deadline_ns. */
  #timerDeadline(): number {
    if (this.#active.length === 0 || !this.#enabled) return -1;
    return Math.max(0, this.#active[0].expire - this.#now);
  }

  /** aio_compute_timeout: -1 means a blocking poll would wait for an fd only. */
  computeTimeout(): number {
    const bh = this.#bhTimeout();
    if (bh === 0) return 0;
    const deadline = this.#timerDeadline();
    if (deadline === 0) return 0;
    if (bh < 0) return deadline;
    if (deadline < 0) return bh;
    return Math.min(bh, deadline);
  }

  /** True if a blocking poll would wait forever (not notified, no timeout, no fd ready). */
  wouldBlockForever(): boolean {
    if (this.#notified || this.#kick === 1 || this.computeTimeout() !== -1) return false;
    // A kick that may or may not be there: do not risk a wait forever.
    if (this.#kick === 2) return true;
    if (this.fdmon === "io_uring") {
      if (this.#cq.some((n) => !n.deleted)) return false;
      return !this.#liveNodes().some((n) => n.uring === "pending" && this.#ready(n));
    }
    return !this.#liveNodes().some((n) => this.#ready(n));
  }

  /**
   * io_uring only: a completion of a live node is already posted. QEMU's
   * wait then still submits the queued POLL_ADDs first and reaps
   * everything; the re-arms of the nodes it reaps are submitted by the next
   * wait, after their handlers ran. A wait that reaps first and submits
   * right away differs in both respects (issue 9, item 3).
   */
  completionPosted(): boolean {
    return this.fdmon === "io_uring" && this.#cq.some((n) => !n.deleted);
  }

  // ---- pipes and fd handlers ----

  pipeWrite(p: number, n: number): void {
    this.#bytes[p] += n;
    if (this.fdmon === "io_uring") {
      // An armed POLL_ADD on the read end completes now.
      for (const node of this.#liveNodes()) {
        if (node.pipe === p && node.end === "r" && node.uring === "armed") this.#fire(node);
      }
    }
  }

  pipeRead(p: number, n: number): number {
    const have = this.#bytes[p];
    if (have === 0) return -1;
    const k = Math.min(have, n);
    this.#bytes[p] = have - k;
    return k;
  }

  /** Bytes waiting in pipe p. */
  bytes(p: number): number {
    return this.#bytes[p];
  }

  setFdHandler(p: number, end: PipeEnd, nodeId: number, cb: (() => void) | null): void {
    const key = `${p}${end}`;
    const old = this.#live.get(key) ?? null;
    if (cb === null) {
      if (old === null) return; // quietly, without aio_notify
      this.#live.delete(key);
    } else {
      // Always a new node, even when replacing.
      const node = new ModelNode(nodeId, p, end, cb);
      // aio_set_fd_handler copies the old pfd, revents included, but the
      // fd monitor's update then hands the new pfd to g_source_add_poll(),
      // and GLib's g_main_context_add_poll_unlocked() zeroes revents: the
      // new node starts with none.
      this.#nodes.push(node);
      this.#live.set(key, node);
    }
    if (old !== null) {
      old.revents = false;
      // A removed or replaced node is never called again, even if it is on
      // a ready list now; it is freed at the outermost poll (not modelled).
      old.deleted = true;
      old.readyOwner = null;
    }
    this.#aioNotify();
  }

  /** Live nodes, newest registration first (the aio_handlers list). */
  #liveNodes(): ModelNode[] {
    const out: ModelNode[] = [];
    for (let i = this.#nodes.length - 1; i >= 0; i--) {
      if (!this.#nodes[i].deleted) out.push(this.#nodes[i]);
    }
    return out;
  }

  /** Level readiness now: a read end with bytes, or a write end (pipes never fill). */
  #ready(node: ModelNode): boolean {
    return node.end === "w" || this.#bytes[node.pipe] > 0;
  }

  #fire(node: ModelNode): void {
    node.uring = "fired";
    this.#cq.push(node);
  }

  /** fdmon wait: puts the ready nodes on `ready`, stealing from outer polls' lists. */
  #wait(ready: ReadyList): void {
    if (this.fdmon !== "io_uring") {
      // ppoll / epoll_wait report the fds ready now (level-triggered). The
      // poll monitor adds newest first, so dispatch runs oldest first.
      const nodes = this.#liveNodes();
      if (this.mutation === "fd-newest-first") nodes.reverse();
      for (const node of nodes) {
        if (this.mutation === "no-steal" && node.readyOwner !== null) continue;
        if (this.#ready(node)) ready.add(node);
      }
      return;
    }
    // fdmon-io_uring: submit the queued POLL_ADDs first (one on a ready fd
    // completes at once), then reap every completion. A completion stays
    // valid even if the fd was drained since it was posted. A reaped node
    // is re-armed by the next submission.
    for (const node of this.#liveNodes()) {
      if (node.uring === "pending") {
        if (this.#ready(node)) this.#fire(node);
        else node.uring = "armed";
      }
    }
    const cq = this.#cq;
    this.#cq = [];
    for (const node of cq) {
      if (node.deleted) continue;
      node.uring = "pending";
      if (this.mutation === "no-steal" && node.readyOwner !== null) continue;
      ready.add(node);
    }
  }

  /** aio_dispatch_ready_handlers. */
  #dispatchReady(ready: ReadyList): boolean {
    let progress = false;
    for (;;) {
      const cands = ready.owned();
      if (cands.length === 0) return progress;
      let pick = 0;
      if (this.fdmon !== "poll" && this.#chooseReady !== undefined && cands.length > 1) {
        pick = this.#chooseReady(cands);
        if (!(pick >= 0 && pick < cands.length)) pick = 0;
      }
      const node = cands[pick];
      ready.take(node);
      node.revents = false;
      // A node deleted while it waited on the list is skipped.
      if (!node.deleted) {
        node.cb();
        progress = true;
      }
    }
  }

  /**
   * A non-blocking GLib iteration over the context's GSource (poll and
   * epoll; io_uring's ring fd also turns readable for internal completions,
   * which the model does not track). prepare: ready if the timeout is 0;
   * GLib polls the source's fds; check (only if prepare was not ready):
   * notify_accept, then any scheduled BH (idle too), a pending fd or an
   * expired timer; dispatch: aio_dispatch.
   */
  iterate(): boolean {
    if (this.fdmon === "io_uring") throw new Error("model: no GSource model for io_uring");
    const prepared = this.computeTimeout() === 0;
    this.#bit0 = true;
    let anyReady = false;
    for (const node of this.#liveNodes()) {
      const r = this.#ready(node);
      // GLib copies revents into every record it polled: fdmon-poll's
      // records are the handlers' pfds; epoll's is the epoll fd.
      if (this.fdmon === "poll") node.revents = r;
      if (r) anyReady = true;
    }
    let ready = prepared;
    const kickBefore = this.#kick;
    if (!prepared) {
      this.#bit0 = false;
      this.#notified = false;
      ready = this.#bhAnyScheduled() || anyReady || this.#timerDeadline() === 0 ||
        this.#kick === 1;
      if (!ready && this.#kick === 2) ready = this.#resolveKick?.() ?? true;
      if (!ready) {
        this.#kick = 0;
        return false;
      }
    }
    const notifiesBefore = this.#notifies;
    // aio_dispatch: BHs first, then the fds the monitor reports, then timers.
    const list = new ReadyList();
    try {
      this.#bhPoll();
      if (this.fdmon === "poll") {
        // Every node whose pfd has revents now: GLib's, or copied into a
        // node that replaced one during the BHs.
        for (const node of this.#liveNodes()) if (node.revents) list.add(node);
      } else {
        // epoll_wait(timeout 0), now.
        for (const node of this.#liveNodes()) if (this.#ready(node)) list.add(node);
      }
      this.#dispatchReady(list);
    } finally {
      for (const n of list.owned()) list.take(n);
    }
    this.#runTimers();
    if (!prepared) {
      // check cleared bit 0 before the dispatch, which read any kick.
      this.#kick = 0;
    } else if (kickBefore !== 0 || this.#notifies !== notifiesBefore) {
      this.#kick = 2;
    }
    return true;
  }

  /** fdmon need_wait. */
  #needWait(): boolean {
    if (this.fdmon !== "io_uring") return this.#live.size > 0;
    return this.#cq.length > 0 || this.#liveNodes().some((n) => n.uring === "pending");
  }

  /** aio_ctx_check's BH test: any scheduled, undeleted BH, idle ones too. */
  #bhAnyScheduled(): boolean {
    for (const list of [this.#bhList, ...this.#slices]) {
      for (const bh of list) {
        if ((bh.flags & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) return true;
      }
    }
    return false;
  }

  /** aio_poll: BHs, then ready fd handlers, then timers; returns progress. */
  poll(blocking: boolean): boolean {
    const ready = new ReadyList();
    let progress = false;
    const depth = ++this.#depth;
    // The fd monitor is consulted only for a wait that may block (timeout
    // not 0 and not notified) or if need_wait: poll and epoll need it when
    // some handler lacks io_poll (all user handlers here; the notifier has
    // one), io_uring when completions, SQEs or changes are queued. Without
    // a wait the notifier is not read, so a kick stays.
    const waited = (blocking && !this.#notified && this.computeTimeout() !== 0) ||
      this.#needWait();
    try {
      if (waited) {
        this.#wait(ready);
        // The notifier is on this ready list now (a nested wait may steal it).
        if (this.#kick !== 0) this.#readDepth = depth;
      }
      // aio_notify_accept, before BHs, handlers and timers are looked at.
      this.#notified = false;
      if (this.mutation === "timers-first" && this.#runTimers()) progress = true;
      if (this.#bhPoll()) progress = true;
      if (this.#dispatchReady(ready)) progress = true;
    } finally {
      for (const n of ready.owned()) ready.take(n);
      // The handler phase is over: the notifier has read the kick. One that
      // came while the read was pending came before or after it.
      if (this.#readDepth >= depth) {
        this.#kick = this.#kickedWhileReading ? 2 : 0;
        this.#readDepth = -1;
        this.#kickedWhileReading = false;
      }
      this.#depth--;
    }
    if (this.#runTimers()) progress = true;
    return progress;
  }
}
