// Private futex-on-SharedArrayBuffer waits for RCU: a mutex word and a
// QemuEvent word (util/event.c). Kept here, minimal, so that rcu/ depends on
// nothing above sys/; every wait is Atomics.wait, i.e. a futex.

// QemuEvent states, as util/event.c: SET 0, FREE 1, BUSY -1 (FREE + sleepers).
export const EV_SET = 0;
export const EV_FREE = 1;
export const EV_BUSY = -1;

/** qemu_event_set: make the event SET; wake every sleeper if it had any. */
export function eventSet(a: Int32Array, i: number): void {
  // SC Atomics: the load is ordered after the caller's stores (smp_mb).
  if (Atomics.load(a, i) !== EV_SET) {
    if (Atomics.exchange(a, i, EV_SET) === EV_BUSY) Atomics.notify(a, i);
  }
}

/** qemu_event_reset: SET becomes FREE; FREE and BUSY stay (no sleeper is hidden). */
export function eventReset(a: Int32Array, i: number): void {
  Atomics.or(a, i, EV_FREE);
}

/** qemu_event_wait: return once the event is SET. */
export function eventWait(a: Int32Array, i: number): void {
  for (;;) {
    let v = Atomics.load(a, i);
    if (v === EV_SET) return;
    if (v === EV_FREE) {
      v = Atomics.compareExchange(a, i, EV_FREE, EV_BUSY);
      if (v === EV_SET) return;
    }
    Atomics.wait(a, i, EV_BUSY);
  }
}

/** Futex mutex: 0 free, 1 locked, 2 locked with possible sleepers. */
export function mutexLock(a: Int32Array, i: number): void {
  let c = Atomics.compareExchange(a, i, 0, 1);
  if (c === 0) return;
  if (c !== 2) c = Atomics.exchange(a, i, 2);
  while (c !== 0) {
    Atomics.wait(a, i, 2);
    c = Atomics.exchange(a, i, 2);
  }
}

/** Releases a mutex taken by {@linkcode mutexLock}. */
export function mutexUnlock(a: Int32Array, i: number): void {
  if (Atomics.sub(a, i, 1) !== 1) {
    Atomics.store(a, i, 0);
    Atomics.notify(a, i, 1);
  }
}
