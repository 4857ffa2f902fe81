// Runs inside an IOThread for bench/_http_lateness.ts: a periodic timer on
// the IOThread's own AioContext, each fire's lateness stored in a shared
// Float64Array (slot 0 of `count` says how many are there).
import { getCurrentAioContext } from "../aio/current.ts";
import { clockGetNs, QEMUClockType, SCALE_NS } from "../aio/timer.ts";

/** The request: period and sample count, and where to put the samples. */
export interface TimerJob {
  periodNs: number;
  samples: Float64Array;
  count: Int32Array;
}

/** Starts the timer; it stops by itself after `samples.length` fires. */
export function startTimer(job: TimerJob): void {
  const ctx = getCurrentAioContext()!;
  const RT = QEMUClockType.REALTIME;
  let expire = clockGetNs(RT) + job.periodNs;
  const t = ctx.timerNew(RT, SCALE_NS, () => {
    const now = clockGetNs(RT);
    const i = Atomics.load(job.count, 0);
    job.samples[i] = now - expire;
    Atomics.store(job.count, 0, i + 1);
    if (i + 1 >= job.samples.length) return t.del();
    expire = now + job.periodNs;
    t.modNs(expire);
  });
  t.modNs(expire);
}
