// The BH list and slice list of util/async.c, and the BH flag machine.
// It knows a BH only by the fields below (QEMUBH of bh.ts has them), so
// that bh.ts can import the flags without a cycle.
import { K_BH, traceCallNamed, tracing } from "../trace/_state.ts";

// Flag machine of util/async.c. PENDING/SCHEDULED/IDLE clear on dequeue;
// DELETED and ONESHOT are sticky.
export const BH_PENDING = 1 << 0;
export const BH_SCHEDULED = 1 << 1;
export const BH_DELETED = 1 << 2;
export const BH_ONESHOT = 1 << 3;
export const BH_IDLE = 1 << 4;

/** What the list needs of a BH (QEMUBH). */
export interface BhNode {
  /** Debug name, for leak reports. */
  readonly name: string;
  /** Flag word (BH_*), owned by the list. */
  flags: number;
  /** Slot for remote scheduling, or -1 (released when the BH is freed). */
  remoteSlot: number;
  /** Whether the BH is scheduled to run. */
  readonly scheduled: boolean;
  /** Runs the callback. */
  call(): void;
}

/**
 * The BH list and the slice list of one context (ctx->bh_list and
 * ctx->bh_slice_list). A list is a stack: push = insert at head, pop = take
 * the head, so BHs run LIFO by first enqueue within one pass.
 */
export class BhList {
  #list: BhNode[] = [];
  #slices: BhNode[][] = [];
  #spare: BhNode[][] = [];
  /** Every BH not yet freed (for the leak check at destroy). */
  readonly live: Set<BhNode> = new Set();
  /** Called when a BH is freed (releases its remote slot). */
  onFree: (bh: BhNode) => void = () => {};

  /** aio_bh_enqueue minus the kick; returns nothing, the caller notifies. */
  enqueue(bh: BhNode, newFlags: number): void {
    const old = bh.flags;
    bh.flags = old | BH_PENDING | newFlags;
    if ((old & BH_PENDING) === 0) this.#list.push(bh);
  }

  /** aio_bh_poll: true iff a non-idle callback ran. */
  poll(): boolean {
    if (this.#list.length === 0 && this.#slices.length === 0) return false;
    // Take the whole current list as a new slice; BHs queued by callbacks
    // land on the fresh list and wait for the next pass.
    this.#slices.push(this.#list);
    this.#list = this.#spare.pop() ?? [];
    let ret = false;
    const slices = this.#slices;
    while (slices.length > 0) {
      const s = slices[0];
      const bh = s.pop();
      if (bh === undefined) {
        slices.shift();
        this.#spare.push(s);
        continue;
      }
      const old = bh.flags;
      bh.flags = old & ~(BH_PENDING | BH_SCHEDULED | BH_IDLE);
      const run = (old & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED;
      if (run) {
        if ((old & BH_IDLE) === 0) ret = true;
        if (old & BH_ONESHOT) {
          // A oneshot is freed even if its callback throws: it was called.
          this.live.delete(bh);
          bh.flags |= BH_DELETED;
          this.onFree(bh);
        }
        if (tracing) traceCallNamed(K_BH, bh.name, 0, bh.call, bh);
        else bh.call();
      } else if (old & (BH_DELETED | BH_ONESHOT)) {
        this.live.delete(bh);
        bh.flags |= BH_DELETED;
        this.onFree(bh);
      }
    }
    return ret;
  }

  /**
   * The BH part of aio_compute_timeout: 0 if a non-idle BH is scheduled,
   * 10 ms if only idle ones are, -1 if none.
   */
  timeoutNs(): number {
    let idle = false;
    const scan = (l: BhNode[]): boolean => {
      for (let i = 0; i < l.length; i++) {
        const f = l[i].flags;
        if ((f & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED) {
          if ((f & BH_IDLE) === 0) return true;
          idle = true;
        }
      }
      return false;
    };
    if (scan(this.#list)) return 0;
    for (const s of this.#slices) if (scan(s)) return 0;
    return idle ? 10_000_000 : -1;
  }

  /** GSource check: any scheduled, non-deleted BH, idle ones included. */
  anyScheduled(): boolean {
    const has = (l: BhNode[]): boolean =>
      l.some((b) => (b.flags & (BH_SCHEDULED | BH_DELETED)) === BH_SCHEDULED);
    return has(this.#list) || this.#slices.some(has);
  }

  /** Pending (queued) BHs, for introspection. */
  pending(): BhNode[] {
    return [...this.#list, ...this.#slices.flat()];
  }

  /** Drops every queued BH (destroy); returns the names of leaked ones. */
  drain(): string[] {
    this.#list.length = 0;
    this.#slices.length = 0;
    const leaked: string[] = [];
    for (const bh of this.live) if ((bh.flags & BH_DELETED) === 0) leaked.push(bh.name);
    this.live.clear();
    return leaked;
  }
}
