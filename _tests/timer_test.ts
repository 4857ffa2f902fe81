// Tests for aio/timer.ts (util/qemu-timer.c semantics). Deterministic cases
// run on the VIRTUAL clock; REALTIME is used only for lower bounds.
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreaterOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  clockAdvanceVirtualNs,
  clockDeadlineNsAll,
  clockEnable,
  clockGetMs,
  clockGetNs,
  clockGetUs,
  clockHasTimers,
  clockIsEnabled,
  clockNotify,
  clockRunAllTimers,
  clockRunTimers,
  clockSetVirtualNs,
  mainLoopTlg,
  QEMU_CLOCK_MAX,
  QEMU_TIMER_ATTR_ALL,
  QEMU_TIMER_ATTR_EXTERNAL,
  QEMUClockType,
  qemuSoonestTimeout,
  qemuTimeoutNsToMs,
  QEMUTimer,
  SCALE_MS,
  SCALE_NS,
  SCALE_US,
  setMainLoopTimerNotify,
  TimerListGroup,
  timerNew,
  timerNewMs,
  timerNewNs,
  timerNewUs,
} from "../aio/timer.ts";
import { timerListCount } from "../aio/_timer_list.ts";

const { REALTIME, VIRTUAL, HOST, VIRTUAL_RT } = QEMUClockType;
const INT32_MAX = 0x7fffffff;

/** Runs fn with VIRTUAL enabled at time 0, and puts the clock back after. */
function withVirtual(fn: () => void): void {
  clockSetVirtualNs(0);
  clockEnable(VIRTUAL, true);
  try {
    fn();
  } finally {
    clockEnable(VIRTUAL, false);
    clockSetVirtualNs(0);
  }
}

/** A group that counts its notifications. */
function countingGroup(): { group: TimerListGroup; kicks: () => number } {
  let n = 0;
  const group = new TimerListGroup(() => n++);
  return { group, kicks: () => n };
}

/** Virtual-clock ns timers that log their label when they fire. */
function loggingTimers(
  group: TimerListGroup,
  log: string[],
  labels: string[],
): Record<string, QEMUTimer> {
  const out: Record<string, QEMUTimer> = {};
  for (const l of labels) {
    out[l] = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => log.push(l), { name: l });
  }
  return out;
}

Deno.test("QEMUClockType, QEMU_CLOCK_MAX and SCALE_* have QEMU's values", () => {
  assertEquals({ ...QEMUClockType }, { REALTIME: 0, VIRTUAL: 1, HOST: 2, VIRTUAL_RT: 3 });
  assertStrictEquals(QEMU_CLOCK_MAX, 4);
  assertStrictEquals(SCALE_NS, 1);
  assertStrictEquals(SCALE_US, 1000);
  assertStrictEquals(SCALE_MS, 1_000_000);
  assertStrictEquals(QEMU_TIMER_ATTR_EXTERNAL, 1);
  assertStrictEquals(QEMU_TIMER_ATTR_ALL, 0xffffffff);
});

Deno.test("clockGetNs() reads each clock and rejects an invalid one", () => {
  const r0 = clockGetNs(REALTIME);
  const r1 = clockGetNs(REALTIME);
  assertGreaterOrEqual(r1, r0);
  assert(Number.isInteger(r0));
  const rt0 = clockGetNs(VIRTUAL_RT);
  assertGreaterOrEqual(clockGetNs(VIRTUAL_RT), rt0);
  // HOST is the wall clock: near Date.now() (a loose bound, not a timing check).
  assert(Math.abs(clockGetNs(HOST) / 1e6 - Date.now()) < 60_000);
  assert(Math.abs(clockGetMs(HOST) - Date.now()) < 60_000);
  assertGreaterOrEqual(clockGetUs(REALTIME), Math.floor(r1 / 1000));
  // VIRTUAL moves only when told to.
  clockSetVirtualNs(1234);
  assertStrictEquals(clockGetNs(VIRTUAL), 1234);
  assertStrictEquals(clockGetNs(VIRTUAL), 1234);
  assertStrictEquals(clockAdvanceVirtualNs(1000), 2234);
  assertStrictEquals(clockGetUs(VIRTUAL), 2);
  assertStrictEquals(clockGetMs(VIRTUAL), 0);
  clockSetVirtualNs(0);
  for (const bad of [4, -1, 1.5, NaN]) {
    assertThrows(() => clockGetNs(bad as QEMUClockType), RangeError, "Clock must be");
  }
  assertThrows(() => clockGetNs("0" as unknown as QEMUClockType), TypeError);
  assertThrows(() => clockSetVirtualNs(-1), RangeError);
  assertThrows(() => clockSetVirtualNs(0.5), RangeError);
  assertThrows(() => clockAdvanceVirtualNs(-1), RangeError);
  clockSetVirtualNs(1);
  assertThrows(() => clockAdvanceVirtualNs(Number.MAX_SAFE_INTEGER), RangeError);
  assertStrictEquals(clockGetNs(VIRTUAL), 1); // unchanged
  clockSetVirtualNs(0);
  assertStrictEquals(clockGetNs(VIRTUAL), 0);
});

Deno.test("clock enable state: VIRTUAL starts disabled, the others enabled", () => {
  assertFalse(clockIsEnabled(VIRTUAL));
  assert(clockIsEnabled(REALTIME));
  assert(clockIsEnabled(HOST));
  assert(clockIsEnabled(VIRTUAL_RT));
  assertThrows(() => clockEnable(VIRTUAL, 1 as unknown as boolean), TypeError);
  assertThrows(() => clockIsEnabled(7 as QEMUClockType), RangeError);
});

Deno.test("QEMUTimer.modNs() keeps timers sorted by expiry", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["a", "b", "c", "d", "e"]);
    t.c.modNs(30);
    t.a.modNs(10);
    t.e.modNs(50);
    t.b.modNs(20);
    t.d.modNs(40);
    t.e.modNs(5); // moving a pending timer re-sorts it
    assertEquals(group.debugTimers().map((i) => i.name), ["e", "a", "b", "c", "d"]);
    clockSetVirtualNs(100);
    assert(group.runTimers());
    assertEquals(log, ["e", "a", "b", "c", "d"]);
    assertFalse(group.runTimers());
    group.destroy();
  });
});

Deno.test("QEMUTimer.modNs() fires equal expiries in arming order", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["a", "b", "c", "d"]);
    t.a.modNs(10);
    t.b.modNs(10);
    t.c.modNs(5);
    t.d.modNs(10);
    t.a.modNs(10); // re-arming at the same time moves it behind the others
    clockSetVirtualNs(10);
    group.runTimers();
    assertEquals(log, ["c", "b", "d", "a"]);
    group.destroy();
  });
});

Deno.test("QEMUTimer.modNs() clamps a negative expiry to 0, ahead of timers at 0", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["zero", "neg", "big"]);
    t.zero.modNs(0);
    t.neg.modNs(-5);
    t.big.mod(-1e12);
    assertStrictEquals(t.neg.expireTimeNs, 0);
    assertStrictEquals(t.big.expireTimeNs, 0);
    assert(Object.is(t.big.expireTimeNs, 0), "no -0");
    assert(t.neg.pending);
    // QEMU compares the unclamped value, so each negative lands at the head.
    group.runTimers();
    assertEquals(log, ["big", "neg", "zero"]);
    group.destroy();
  });
});

Deno.test("QEMUTimer.modNs() notifies only when the timer becomes the head", () => {
  withVirtual(() => {
    const { group, kicks } = countingGroup();
    const a = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {});
    const b = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {});
    const r = new QEMUTimer(group, REALTIME, SCALE_NS, () => {});
    a.modNs(100);
    assertStrictEquals(kicks(), 1); // first timer: head
    b.modNs(200);
    assertStrictEquals(kicks(), 1); // behind a
    b.modNs(100);
    assertStrictEquals(kicks(), 1); // a tie goes behind a
    b.modNs(50);
    assertStrictEquals(kicks(), 2); // new head
    b.modNs(60);
    assertStrictEquals(kicks(), 3); // re-armed and still the head: QEMU notifies again
    b.modNs(150);
    assertStrictEquals(kicks(), 3); // moved behind a: a is head, no notify
    r.modNs(clockGetNs(REALTIME) + 3.6e12);
    assertStrictEquals(kicks(), 4); // each clock has its own list
    a.del();
    b.del();
    assertStrictEquals(kicks(), 4); // deleting never notifies
    b.modAnticipateNs(500);
    assertStrictEquals(kicks(), 5); // anticipate arms an idle timer
    b.modAnticipateNs(600);
    assertStrictEquals(kicks(), 5); // later: ignored
    assertStrictEquals(b.expireTimeNs, 500);
    b.modAnticipateNs(400);
    assertStrictEquals(kicks(), 6);
    assertStrictEquals(b.expireTimeNs, 400);
    group.destroy();
  });
});

Deno.test("QEMUTimer.mod() scales; expired(), pending and expireTimeNs follow it", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const t = new QEMUTimer(group, VIRTUAL, SCALE_US, () => {});
    assertFalse(t.pending);
    assertStrictEquals(t.expireTimeNs, -1);
    assertFalse(t.expired(1e9));
    t.mod(7);
    assert(t.pending);
    assertStrictEquals(t.expireTimeNs, 7000);
    assertFalse(t.expired(6));
    assert(t.expired(7));
    t.mod(1.0005); // fractions round up to whole ns
    assertStrictEquals(t.expireTimeNs, 1001);
    t.modAnticipate(2);
    assertStrictEquals(t.expireTimeNs, 1001);
    {
      using u = new QEMUTimer(group, VIRTUAL, SCALE_MS, () => {});
      u.mod(3);
      assertStrictEquals(u.expireTimeNs, 3_000_000);
      assertStrictEquals(group.debugTimers().length, 2);
    }
    assertStrictEquals(group.debugTimers().length, 1); // disposed = deleted
    t.del();
    t.del(); // idempotent
    assertFalse(t.pending);
    assertStrictEquals(group.deadlineNs(), -1);
    group.destroy();
  });
});

Deno.test("a callback re-arming at or before the sampled now runs again in the same pass", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    clockSetVirtualNs(100);
    let n = 0;
    const t = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {
      n++;
      if (n < 3) t.modNs(100); // == now: again in this pass
      else if (n === 3) t.modNs(101); // > now: next pass
    });
    t.modNs(50);
    assert(group.runTimers());
    assertStrictEquals(n, 3);
    assert(t.pending);
    assertFalse(group.runTimers());
    assertStrictEquals(n, 3);
    clockAdvanceVirtualNs(1);
    assert(group.runTimers());
    assertStrictEquals(n, 4);
    assertFalse(t.pending);
    group.destroy();
  });
});

Deno.test("a callback may delete or move other timers, expired or not", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["b", "c", "d"]);
    const a = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {
      log.push("a");
      t.b.del(); // expired, queued behind a
      t.d.modNs(1); // later one pulled in: due in this pass
      assertFalse(a.pending); // idle while its callback runs
    });
    a.modNs(1);
    t.b.modNs(1);
    t.c.modNs(2);
    t.d.modNs(1000);
    clockSetVirtualNs(2);
    group.runTimers();
    assertEquals(log, ["a", "d", "c"]);
    assertFalse(t.b.pending);
    group.destroy();
  });
});

Deno.test("runTimers() samples now once per pass", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["b"]);
    const a = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {
      log.push("a");
      clockSetVirtualNs(100); // b is due by now, but not by the sampled now
    });
    a.modNs(10);
    t.b.modNs(50);
    clockSetVirtualNs(10);
    group.runTimers();
    assertEquals(log, ["a"]);
    group.runTimers();
    assertEquals(log, ["a", "b"]);
    group.destroy();
  });
});

Deno.test("a disabled VIRTUAL clock gives no deadline and runs nothing", () => {
  clockSetVirtualNs(0);
  assertFalse(clockIsEnabled(VIRTUAL));
  const group = new TimerListGroup(() => {});
  let n = 0;
  const t = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => n++);
  t.modNs(0);
  assertStrictEquals(group.deadlineNs(), -1);
  assertStrictEquals(clockDeadlineNsAll(VIRTUAL), -1);
  assertFalse(group.runTimers());
  assertStrictEquals(n, 0);
  assert(t.pending); // still armed
  withVirtual(() => {
    assertStrictEquals(group.deadlineNs(), 0);
    assert(group.runTimers());
    assertStrictEquals(n, 1);
  });
  group.destroy();
});

Deno.test("clockEnable() notifies every list on the clock, once per enabling", () => {
  const g1 = countingGroup();
  const g2 = countingGroup();
  clockEnable(VIRTUAL, true);
  try {
    assertStrictEquals(g1.kicks(), 1);
    assertStrictEquals(g2.kicks(), 1);
    clockEnable(VIRTUAL, true); // already on: no notify
    assertStrictEquals(g1.kicks(), 1);
    clockEnable(VIRTUAL, false);
    assertStrictEquals(g1.kicks(), 1); // disabling does not notify
    clockEnable(VIRTUAL, true);
    assertStrictEquals(g1.kicks(), 2);
    assertStrictEquals(g2.kicks(), 2);
    g2.group.destroy();
    clockEnable(VIRTUAL, false);
    clockEnable(VIRTUAL, true);
    assertStrictEquals(g1.kicks(), 3);
    assertStrictEquals(g2.kicks(), 2); // destroyed groups are forgotten
    clockNotify(VIRTUAL);
    assertStrictEquals(g1.kicks(), 4);
  } finally {
    clockEnable(VIRTUAL, false);
    g1.group.destroy();
  }
});

Deno.test("disabling a clock from one of its own timer callbacks throws", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    let other = false;
    const t = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {
      clockEnable(HOST, false); // another clock: fine
      other = true;
      clockEnable(HOST, true);
      clockEnable(VIRTUAL, false);
    });
    t.modNs(0);
    assertThrows(() => group.runTimers(), Error, "Cannot disable clock 1");
    assert(other);
    assert(clockIsEnabled(VIRTUAL));
    clockEnable(VIRTUAL, false); // outside a callback: fine
    clockEnable(VIRTUAL, true);
    group.destroy();
  });
});

Deno.test("moving virtual time notifies, and due timers fire on the next run", () => {
  withVirtual(() => {
    const { group, kicks } = countingGroup();
    let n = 0;
    const t = new QEMUTimer(group, VIRTUAL, SCALE_MS, () => n++);
    t.mod(5);
    assertStrictEquals(kicks(), 1);
    assertStrictEquals(group.deadlineNs(), 5 * SCALE_MS);
    clockAdvanceVirtualNs(2 * SCALE_MS);
    assertStrictEquals(kicks(), 2);
    assertStrictEquals(n, 0); // nothing fires outside a run
    assertStrictEquals(group.deadlineNs(), 3 * SCALE_MS);
    assertFalse(group.runTimers());
    clockSetVirtualNs(5 * SCALE_MS);
    assertStrictEquals(kicks(), 3);
    assertStrictEquals(n, 0);
    assertStrictEquals(group.deadlineNs(), 0);
    assert(group.runTimers());
    assertStrictEquals(n, 1);
    group.destroy();
  });
});

Deno.test("deadlineNs() is 0 for timers in the past and the minimum over clocks", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    assertStrictEquals(group.deadlineNs(), -1);
    const r = new QEMUTimer(group, REALTIME, SCALE_MS, () => {});
    r.mod(clockGetMs(REALTIME) + 3_600_000); // an hour away
    const d1 = group.deadlineNs();
    assert(d1 > 3_000_000_000_000 && d1 <= 3_600_000_000_000, `deadline ${d1}`);
    const v = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {});
    v.modNs(5);
    assertStrictEquals(group.deadlineNs(), 5);
    clockSetVirtualNs(1_000);
    assertStrictEquals(group.deadlineNs(), 0); // in the past: 0, never negative
    v.del();
    const h = new QEMUTimer(group, HOST, SCALE_NS, () => {});
    h.modNs(1); // 1970
    assertStrictEquals(group.deadlineNs(), 0);
    h.del();
    const d2 = group.deadlineNs(); // only the REALTIME timer is left
    assert(d2 > 0 && d2 <= d1, `deadline ${d2}`);
    r.del();
    assertStrictEquals(group.deadlineNs(), -1);
    group.destroy();
  });
});

Deno.test("clockDeadlineNsAll() spans every group and honours the attribute mask", () => {
  withVirtual(() => {
    const g1 = new TimerListGroup(() => {});
    const g2 = new TimerListGroup(() => {});
    const ext = new QEMUTimer(g1, VIRTUAL, SCALE_NS, () => {}, {
      attributes: QEMU_TIMER_ATTR_EXTERNAL,
    });
    const plain = new QEMUTimer(g2, VIRTUAL, SCALE_NS, () => {});
    ext.modNs(10);
    plain.modNs(30);
    assertStrictEquals(clockDeadlineNsAll(VIRTUAL), 10);
    assertStrictEquals(clockDeadlineNsAll(VIRTUAL, QEMU_TIMER_ATTR_ALL), 10);
    assertStrictEquals(clockDeadlineNsAll(VIRTUAL, 0), 30); // external skipped
    plain.del();
    assertStrictEquals(clockDeadlineNsAll(VIRTUAL, 0), -1);
    assertThrows(() => clockDeadlineNsAll(VIRTUAL, -1), RangeError);
    g1.destroy();
    g2.destroy();
  });
});

Deno.test("qemuSoonestTimeout() is an unsigned minimum: -1 loses to anything", () => {
  assertStrictEquals(qemuSoonestTimeout(-1, -1), -1);
  assertStrictEquals(qemuSoonestTimeout(-1, 0), 0);
  assertStrictEquals(qemuSoonestTimeout(0, -1), 0);
  assertStrictEquals(qemuSoonestTimeout(-1, 5), 5);
  assertStrictEquals(qemuSoonestTimeout(5, -1), 5);
  assertStrictEquals(qemuSoonestTimeout(3, 5), 3);
  assertStrictEquals(qemuSoonestTimeout(5, 3), 3);
  assertStrictEquals(qemuSoonestTimeout(Number.MAX_SAFE_INTEGER, -1), Number.MAX_SAFE_INTEGER);
  // Two negatives keep the unsigned order: -2 is below -1 as uint64.
  assertStrictEquals(qemuSoonestTimeout(-1, -2), -2);
  assertStrictEquals(qemuSoonestTimeout(-2, -1), -2);
  assertThrows(() => qemuSoonestTimeout("1" as unknown as number, 2), TypeError);
});

Deno.test("qemuTimeoutNsToMs() rounds up and caps at INT32_MAX", () => {
  assertStrictEquals(qemuTimeoutNsToMs(-1), -1);
  assertStrictEquals(qemuTimeoutNsToMs(-1e18), -1);
  assertStrictEquals(qemuTimeoutNsToMs(0), 0);
  assertStrictEquals(qemuTimeoutNsToMs(1), 1);
  assertStrictEquals(qemuTimeoutNsToMs(999_999), 1);
  assertStrictEquals(qemuTimeoutNsToMs(1_000_000), 1);
  assertStrictEquals(qemuTimeoutNsToMs(1_000_001), 2);
  assertStrictEquals(qemuTimeoutNsToMs(750 * SCALE_MS), 750);
  assertStrictEquals(qemuTimeoutNsToMs((INT32_MAX - 1) * SCALE_MS + 1), INT32_MAX);
  assertStrictEquals(qemuTimeoutNsToMs((INT32_MAX - 1) * SCALE_MS), INT32_MAX - 1);
  assertStrictEquals(qemuTimeoutNsToMs(INT32_MAX * SCALE_MS), INT32_MAX);
  assertStrictEquals(qemuTimeoutNsToMs(Number.MAX_SAFE_INTEGER), INT32_MAX);
  assertStrictEquals(qemuTimeoutNsToMs(1e300), INT32_MAX);
  assertStrictEquals(qemuTimeoutNsToMs(Infinity), INT32_MAX);
  assertThrows(() => qemuTimeoutNsToMs(NaN), RangeError);
});

Deno.test("a destroyed group throws BadResource on mod, and del stays harmless", () => {
  const { group, kicks } = countingGroup();
  const t = new QEMUTimer(group, REALTIME, SCALE_NS, () => {});
  const idle = new QEMUTimer(group, HOST, SCALE_NS, () => {});
  t.modNs(0);
  const before = timerListCount(REALTIME);
  group.destroy();
  assertStrictEquals(timerListCount(REALTIME), before - 1);
  assert(group.destroyed);
  assertFalse(t.pending); // pending timers are idled
  assertStrictEquals(t.expireTimeNs, -1);
  assertThrows(() => t.modNs(1), Deno.errors.BadResource);
  assertThrows(() => t.mod(1), Deno.errors.BadResource);
  assertThrows(() => idle.modAnticipateNs(1), Deno.errors.BadResource);
  assertThrows(() => idle.modAnticipate(1), Deno.errors.BadResource);
  assertThrows(
    () => new QEMUTimer(group, REALTIME, SCALE_NS, () => {}),
    Deno.errors.BadResource,
  );
  assertThrows(() => group.runTimers(), Deno.errors.BadResource);
  assertThrows(() => group.deadlineNs(), Deno.errors.BadResource);
  assertEquals(group.debugTimers(), []);
  t.del();
  idle[Symbol.dispose]();
  group.destroy(); // again: nothing
  assertStrictEquals(kicks(), 1);
});

Deno.test("a group destroyed from its own callback stops the pass cleanly", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["b"]);
    const a = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {
      log.push("a");
      group.destroy();
    });
    a.modNs(0);
    t.b.modNs(0);
    assert(group.runTimers());
    assertEquals(log, ["a"]);
    assertFalse(t.b.pending);
  });
});

Deno.test("a throwing callback: the error escapes, no timer is lost or run twice", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const log: string[] = [];
    const t = loggingTimers(group, log, ["a", "c", "r"]);
    const boom = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {
      log.push("boom");
      throw new Error("boom");
    });
    t.a.modNs(1);
    boom.modNs(2);
    t.c.modNs(3);
    t.r.modNs(1e9); // not due
    const h = new QEMUTimer(group, HOST, SCALE_NS, () => log.push("host"));
    h.modNs(0); // a later clock in the same group
    clockSetVirtualNs(10);
    assertThrows(() => group.runTimers(), Error, "boom");
    assertEquals(log, ["a", "boom"]);
    assertFalse(boom.pending);
    assert(t.c.pending);
    assertStrictEquals(group.deadlineNs(), 0);
    assert(group.runTimers());
    assertEquals(log, ["a", "boom", "c", "host"]);
    assertFalse(group.runTimers());
    assertEquals(group.debugTimers().map((i) => i.name), ["r"]);
    // The clock's running count was restored: disabling works.
    clockEnable(VIRTUAL, false);
    clockEnable(VIRTUAL, true);
    group.destroy();
  });
});

Deno.test("invalid clock, scale, callback, expiry and options throw typed errors", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    const cb = () => {};
    assertThrows(() => new QEMUTimer(group, 4 as QEMUClockType, SCALE_NS, cb), RangeError);
    assertThrows(() => new QEMUTimer(group, -1 as QEMUClockType, SCALE_NS, cb), RangeError);
    assertThrows(() => new QEMUTimer(group, VIRTUAL, 0, cb), RangeError, "Timer scale");
    assertThrows(() => new QEMUTimer(group, VIRTUAL, -1000, cb), RangeError);
    assertThrows(() => new QEMUTimer(group, VIRTUAL, 1.5, cb), RangeError);
    assertThrows(() => new QEMUTimer(group, VIRTUAL, Infinity, cb), RangeError);
    assertThrows(
      () => new QEMUTimer(group, VIRTUAL, "1" as unknown as number, cb),
      TypeError,
      "Timer scale",
    );
    assertThrows(
      () => new QEMUTimer(group, VIRTUAL, SCALE_NS, null as unknown as () => void),
      TypeError,
      "Timer callback",
    );
    assertThrows(
      () => new QEMUTimer({} as TimerListGroup, VIRTUAL, SCALE_NS, cb),
      TypeError,
    );
    assertThrows(
      () => new QEMUTimer(group, VIRTUAL, SCALE_NS, cb, { attributes: -1 }),
      RangeError,
    );
    assertThrows(
      () => new QEMUTimer(group, VIRTUAL, SCALE_NS, cb, { name: 5 as unknown as string }),
      TypeError,
    );
    assertThrows(() => new TimerListGroup(null as unknown as () => void), TypeError);

    const log: string[] = [];
    const t = loggingTimers(group, log, ["a", "b"]);
    t.a.modNs(10);
    t.b.modNs(20);
    for (const bad of [NaN, Infinity, -Infinity]) {
      assertThrows(() => t.a.modNs(bad), RangeError, "Timer expiry");
      assertThrows(() => t.b.mod(bad), RangeError, "Timer expiry");
      assertThrows(() => t.a.modAnticipateNs(bad), RangeError);
    }
    for (const bad of ["5", 5n, undefined, null, {}]) {
      assertThrows(() => t.a.modNs(bad as unknown as number), TypeError, "Timer expiry");
      assertThrows(() => t.a.expired(bad as unknown as number), TypeError);
    }
    const ms = new QEMUTimer(group, VIRTUAL, SCALE_MS, () => log.push("ms"));
    assertThrows(() => ms.mod(1e303), RangeError, "overflows");
    assertFalse(ms.pending);
    // The list is untouched by all of the above.
    assertEquals(group.debugTimers().map((i) => [i.name, i.expireNs]), [["a", 10], ["b", 20]]);
    clockSetVirtualNs(20);
    group.runTimers();
    assertEquals(log, ["a", "b"]);
    group.destroy();
  });
});

Deno.test("debugTimers() lists pending timers by clock, then expiry", () => {
  withVirtual(() => {
    const group = new TimerListGroup(() => {});
    function rtc(): void {}
    const a = new QEMUTimer(group, HOST, SCALE_NS, rtc);
    const b = new QEMUTimer(group, VIRTUAL, SCALE_US, () => {}, {
      name: "tick",
      attributes: QEMU_TIMER_ATTR_EXTERNAL,
    });
    const c = new QEMUTimer(group, VIRTUAL, SCALE_NS, () => {}, { name: "early" });
    new QEMUTimer(group, REALTIME, SCALE_NS, () => {}, { name: "idle" });
    a.modNs(7);
    b.mod(2);
    c.modNs(3);
    assertEquals([a.name, a.clock, a.attributes], ["rtc", HOST, 0]);
    assertEquals([b.name, b.clock, b.attributes, b.scale], ["tick", VIRTUAL, 1, SCALE_US]);
    assertEquals(group.debugTimers(), [
      { clock: VIRTUAL, expireNs: 3, name: "early", attributes: 0 },
      { clock: VIRTUAL, expireNs: 2000, name: "tick", attributes: 1 },
      { clock: HOST, expireNs: 7, name: "rtc", attributes: 0 },
    ]);
    group.destroy();
  });
});

Deno.test("main-loop timers bind to mainLoopTlg and run from clockRunAllTimers", () => {
  let wakes = 0;
  setMainLoopTimerNotify(() => wakes++);
  try {
    const ctxGroup = new TimerListGroup(() => {});
    const log: string[] = [];
    const ctxTimer = new QEMUTimer(ctxGroup, REALTIME, SCALE_NS, () => log.push("ctx"));
    const ns = timerNewNs(REALTIME, () => log.push("ns"));
    const us = timerNewUs(HOST, () => log.push("us"));
    const ms = timerNewMs(REALTIME, () => log.push("ms"));
    const any = timerNew(VIRTUAL_RT, 7, () => log.push("any"));
    assertStrictEquals(ns.scale, SCALE_NS);
    assertStrictEquals(us.scale, SCALE_US);
    assertStrictEquals(ms.scale, SCALE_MS);
    assertStrictEquals(any.scale, 7);
    ctxTimer.modNs(0);
    assertStrictEquals(wakes, 0); // a ctx timer wakes its ctx, not the main loop
    ns.modNs(0);
    assertStrictEquals(wakes, 1);
    us.mod(0);
    ms.mod(0);
    any.mod(0);
    assertStrictEquals(wakes, 3); // ms tied behind ns: no wake
    assert(clockHasTimers(REALTIME));
    assertStrictEquals(mainLoopTlg().deadlineNs(), 0);
    assert(clockRunTimers(HOST));
    assertEquals(log, ["us"]);
    assert(clockRunAllTimers());
    assertEquals(log, ["us", "ns", "ms", "any"]); // clocks in enum order
    assertFalse(clockHasTimers(REALTIME));
    assert(ctxTimer.pending); // run by its context, not the main loop
    assert(ctxGroup.runTimers());
    assertEquals(log.at(-1), "ctx");
    assertStrictEquals(mainLoopTlg(), mainLoopTlg());
    ctxGroup.destroy();
  } finally {
    setMainLoopTimerNotify(null);
  }
  assertThrows(() => setMainLoopTimerNotify(5 as unknown as () => void), TypeError);
});

Deno.test("a REALTIME timer never fires early", async () => {
  const group = new TimerListGroup(() => {});
  const fired: number[] = [];
  let expiry = clockGetNs(REALTIME) + 30 * SCALE_MS;
  const t = new QEMUTimer(group, REALTIME, SCALE_NS, () => {
    fired.push(clockGetNs(REALTIME));
    if (fired.length === 1) {
      expiry = clockGetNs(REALTIME) + 20 * SCALE_MS;
      t.modNs(expiry);
    }
  });
  t.modNs(expiry);
  const expiries = [expiry];
  while (fired.length < 2) {
    const before = fired.length;
    const ms = qemuTimeoutNsToMs(group.deadlineNs());
    await new Promise((r) => setTimeout(r, ms));
    group.runTimers();
    if (fired.length === 1 && before === 0) expiries.push(expiry);
  }
  for (let i = 0; i < 2; i++) {
    assertGreaterOrEqual(fired[i], expiries[i], `timer ${i} fired early`);
  }
  group.destroy();
});

Deno.test("the clock registry does not grow over 10 000 group create/destroy cycles", () => {
  const before = [0, 1, 2, 3].map((c) => timerListCount(c));
  for (let i = 0; i < 10_000; i++) {
    const g = new TimerListGroup(() => {});
    const t = new QEMUTimer(g, (i & 3) as QEMUClockType, SCALE_NS, () => {});
    t.modNs(1e15);
    g.destroy();
  }
  assertEquals([0, 1, 2, 3].map((c) => timerListCount(c)), before);
  {
    using g = new TimerListGroup(() => {});
    assertStrictEquals(timerListCount(REALTIME), before[REALTIME] + 1);
    assertFalse(g.destroyed);
  }
  assertEquals([0, 1, 2, 3].map((c) => timerListCount(c)), before);
});

// A model check of the list's array bookkeeping (shifts both ways, head
// offset, compaction, growth): random mods, deletes and runs against a
// plain sorted-array model with FIFO ties.
Deno.test("random mod/del/run sequences match a reference model", () => {
  withVirtual(() => {
    // mulberry32: an LCG's low bits are too regular for `% n`.
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), seed | 1);
      x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
      return ((x ^ (x >>> 14)) >>> 0) % n;
    };
    const group = new TimerListGroup(() => {});
    const N = 64;
    const fired: number[] = [];
    const timers: QEMUTimer[] = [];
    // The model: [id, expire] in firing order.
    let model: [number, number][] = [];
    for (let i = 0; i < N; i++) {
      timers.push(new QEMUTimer(group, VIRTUAL, SCALE_NS, () => fired.push(i)));
    }
    let now = 0;
    for (let step = 0; step < 20_000; step++) {
      const op = rand(10);
      const id = rand(N);
      if (op < 6) {
        const e = now + rand(op < 3 ? 8 : 400) - 2; // many ties, some in the past
        timers[id].modNs(e);
        model = model.filter(([m]) => m !== id);
        let at = 0;
        while (at < model.length && model[at][1] <= e) at++;
        model.splice(at, 0, [id, Math.max(e, 0)]);
      } else if (op < 8) {
        timers[id].del();
        model = model.filter(([m]) => m !== id);
      } else {
        now += rand(50);
        clockSetVirtualNs(now);
        fired.length = 0;
        group.runTimers();
        const due = model.filter(([, e]) => e <= now);
        model = model.filter(([, e]) => e > now);
        assertEquals(fired, due.map(([m]) => m), `run at step ${step}`);
      }
      if (step % 97 === 0) {
        assertEquals(
          group.debugTimers().map((x) => x.expireNs),
          model.map(([, e]) => e),
          `order at step ${step}`,
        );
        for (let i = 0; i < N; i++) {
          const m = model.find(([x]) => x === i);
          assertStrictEquals(timers[i].expireTimeNs, m ? m[1] : -1);
        }
      }
    }
    group.destroy();
  });
});

Deno.test("mod()/modNs() refuse expiries past the int64 nanosecond range", () => {
  const group = new TimerListGroup(() => {});
  try {
    const ms = new QEMUTimer(group, QEMUClockType.HOST, SCALE_MS, () => {});
    const ns = new QEMUTimer(group, QEMUClockType.HOST, SCALE_NS, () => {});
    // 2^53 ms is about 9e21 ns, far past INT64_MAX (about 9.22e18).
    for (const bad of [2 ** 53, -(2 ** 53), 2 ** 44]) {
      assertThrows(() => ms.mod(bad), RangeError, "int64");
      assertThrows(() => ms.modAnticipate(bad), RangeError, "int64");
    }
    for (const bad of [2 ** 63, -(2 ** 63) - 2 ** 11, 1e300]) {
      assertThrows(() => ns.modNs(bad), RangeError, "int64");
      assertThrows(() => ns.mod(bad), RangeError, "int64");
    }
    assertFalse(ms.pending);
    assertFalse(ns.pending);
    // The last values inside the range are accepted.
    ms.mod(9_223_372_036_854); // ms, below 2^63 ns
    assertStrictEquals(ms.expireTimeNs, 9_223_372_036_854_000_000);
    ns.modNs(2 ** 63 - 2 ** 10);
    assertStrictEquals(ns.expireTimeNs, 2 ** 63 - 2 ** 10);
    ms.del();
    ns.del();
  } finally {
    group.destroy();
  }
});
