// The futex-style lock word shared by the mutexes (and the BQL): 0 free,
// 1 locked, 2 locked with (possible) sleepers.

/** Takes the lock word at `i`, counting a wait in word `contended` if >= 0. */
export function futexLock(a: Int32Array, i: number, contended: number): void {
  let c = Atomics.compareExchange(a, i, 0, 1);
  if (c === 0) return;
  if (contended >= 0) Atomics.add(a, contended, 1);
  // Announce a sleeper (2) before sleeping, so that unlock knows to wake.
  if (c !== 2) c = Atomics.exchange(a, i, 2);
  while (c !== 0) {
    Atomics.wait(a, i, 2);
    c = Atomics.exchange(a, i, 2);
  }
}

/** Releases the lock word at `i`, waking one sleeper if any. */
export function futexUnlock(a: Int32Array, i: number, what: string): void {
  if (Atomics.load(a, i) === 0) {
    throw new Error(`${what} unlocked while not locked (lock it first)`);
  }
  if (Atomics.sub(a, i, 1) !== 1) {
    Atomics.store(a, i, 0);
    Atomics.notify(a, i, 1);
  }
}
