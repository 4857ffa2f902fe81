// Handle validation and allocation shared by the thread primitives.
import type { SharedWordHandle } from "./shared_word.ts";

/** Opens `words` Int32 words at the handle, or throws a TypeError naming `what`. */
export function openWords(handle: SharedWordHandle, words: number, what: string): Int32Array {
  if (!(handle?.sab instanceof SharedArrayBuffer)) {
    throw new TypeError(`${what}: handle.sab must be a SharedArrayBuffer (pass X.handle)`);
  }
  const i = handle.index;
  if (!Number.isInteger(i) || i < 0 || (i + words) * 4 > handle.sab.byteLength) {
    throw new RangeError(
      `${what}: handle.index must be an integer in [0, ${
        Math.floor(handle.sab.byteLength / 4) - words
      }], got ${i}`,
    );
  }
  return new Int32Array(handle.sab, i * 4, words);
}

/** A fresh handle of `words` zeroed words, or `place` when given. */
export function placeWords(words: number, place?: SharedWordHandle): SharedWordHandle {
  if (place !== undefined) return { sab: place.sab, index: place.index };
  return { sab: new SharedArrayBuffer(words * 4), index: 0 };
}

/** Milliseconds argument check for the timed waits. */
export function checkMs(ms: number, what: string): void {
  if (typeof ms !== "number" || Number.isNaN(ms) || ms < 0) {
    throw new RangeError(`${what}: ms must be a number >= 0 (Infinity waits forever), got ${ms}`);
  }
}
