// Counters of this isolate's adaptive polling (aio_posix.ts, and the reply
// spin of synchronous remote requests); their own file so that aio_posix.ts
// imports nothing that imports it.
/**
 * Counters of this isolate's adaptive polling, for tests that must tell a
 * wake-up found by busy polling from one that took a blocking wait (the
 * figures alone cannot: a slow machine blurs them). Plain increments on
 * paths that already do more work than that.
 */
export const pollCounters: {
  /** io_poll callbacks that found work while a context busy-polled. */
  pollHits: number;
  /** fd-monitor waits with a non-zero timeout (the context slept, or meant to). */
  blockingWaits: number;
  /** Synchronous remote calls whose reply was seen while spinning. */
  replyPolled: number;
  /** Synchronous remote calls that slept in Atomics.wait for their reply. */
  replySlept: number;
} = { pollHits: 0, blockingWaits: 0, replyPolled: 0, replySlept: 0 };
