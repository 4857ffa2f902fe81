// A Worker driven one command at a time through shared memory, for the
// deterministic RCU tests: the test holds it at chosen points (inside a read
// section, blocked in synchronizeRcu, ...) and reads what it did.
import {
  callRcu,
  drainCallRcu,
  rcuAttach,
  rcuForceQuiescentRequested,
  type RcuHandle,
  rcuIsRegistered,
  rcuReadDepth,
  rcuReadLock,
  rcuReadUnlock,
  rcuRegisterThread,
  rcuSetForceRcuDoorbell,
  rcuUnregisterThread,
  synchronizeRcu,
} from "../../rcu/mod.ts";
import { QemuMutex } from "../../thread/mutex.ts";
import type { SharedWordHandle } from "../../thread/shared_word.ts";

/** Control words. */
export const A_REQ = 0; // command sequence, bumped by the test
export const A_CMD = 1;
export const A_ARG = 2;
export const A_ACK = 3; // sequence of the last finished command
export const A_ERR = 4; // 1 if the last command threw
export const A_FORCED = 5; // set when a force-quiescent request was seen
export const A_CB = 6; // callbacks run by CALL_RCU
export const A_STARTED = 7; // sequence of the last started command
export const A_WORDS = 8;

export const CMD_REGISTER = 1;
export const CMD_LOCK = 2;
export const CMD_UNLOCK = 3;
export const CMD_SYNC = 4;
export const CMD_UNREGISTER = 5;
export const CMD_EXIT = 6;
/** Lock, then wait until an updater forces quiescence, then unlock. */
export const CMD_LOCK_UNTIL_FORCE = 7;
export const CMD_DRAIN = 8;
export const CMD_CALL_RCU = 9;
export const CMD_SET_DOORBELL = 10;
/** Attach to the registry posted at start. */
export const CMD_ATTACH = 11;
/** Take the test's BQL (a QemuMutex), raise flags[1], release it. */
export const CMD_BQL_CYCLE = 12;
/** Flags shared by the agents of one test (Int32 words). */
export const FLAG_WORDS = 4;
/** How long CMD_LOCK_UNTIL_FORCE waits for flags[arg] before leaving anyway. */
const FLAG_TIMEOUT_MS = 20_000;

interface Start {
  index: number;
  exited: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  rcu: RcuHandle;
  flags: SharedArrayBuffer;
  bql: SharedWordHandle;
}

// deno-lint-ignore no-explicit-any
const scope = self as any;

scope.onmessage = (ev: MessageEvent<Start>) => {
  const { ctl: buf, rcu, index } = ev.data;
  const flags = new Int32Array(ev.data.flags);
  const exited = new Int32Array(ev.data.exited);
  const c = new Int32Array(buf);
  let seen = 0;
  for (;;) {
    Atomics.wait(c, A_REQ, seen);
    seen = Atomics.load(c, A_REQ);
    const cmd = Atomics.load(c, A_CMD);
    Atomics.store(c, A_STARTED, seen);
    Atomics.store(c, A_ERR, 0);
    try {
      switch (cmd) {
        case CMD_ATTACH:
          rcuAttach(rcu);
          break;
        case CMD_REGISTER:
          rcuRegisterThread();
          break;
        case CMD_LOCK:
          rcuReadLock();
          break;
        case CMD_UNLOCK:
          rcuReadUnlock();
          break;
        case CMD_SYNC:
          synchronizeRcu();
          break;
        case CMD_UNREGISTER:
          rcuUnregisterThread();
          break;
        case CMD_LOCK_UNTIL_FORCE:
          rcuReadLock();
          Atomics.store(c, A_ACK, seen); // the section is open
          Atomics.notify(c, A_ACK);
          while (!rcuForceQuiescentRequested()) Atomics.wait(c, A_WORDS, 0, 1);
          // With arg > 0, also wait for flags[arg] (bounded: a broken
          // implementation must fail the test, not hang it).
          if (Atomics.load(c, A_ARG) > 0) {
            const end = performance.now() + FLAG_TIMEOUT_MS;
            while (Atomics.load(flags, Atomics.load(c, A_ARG)) === 0 && performance.now() < end) {
              Atomics.wait(c, A_WORDS, 0, 1);
            }
          }
          {
            const arg = Atomics.load(c, A_ARG);
            Atomics.store(c, A_FORCED, arg === 0 || Atomics.load(flags, arg) !== 0 ? 1 : 2);
          }
          rcuReadUnlock();
          break;
        case CMD_DRAIN:
          drainCallRcu();
          break;
        case CMD_CALL_RCU:
          for (let i = 0; i < Atomics.load(c, A_ARG); i++) {
            callRcu(() => void Atomics.add(c, A_CB, 1));
          }
          break;
        case CMD_SET_DOORBELL:
          rcuSetForceRcuDoorbell(Atomics.load(c, A_ARG));
          break;
        case CMD_BQL_CYCLE: {
          const m = new QemuMutex(ev.data.bql);
          m.lock();
          Atomics.store(flags, 1, 1);
          m.unlock();
          break;
        }
        case CMD_EXIT:
          while (rcuReadDepth() > 0) rcuReadUnlock();
          if (rcuIsRegistered()) rcuUnregisterThread();
          Atomics.store(c, A_ACK, seen);
          Atomics.store(exited, index, 1);
          scope.close();
          return;
      }
    } catch {
      Atomics.store(c, A_ERR, 1);
    }
    Atomics.store(c, A_ACK, seen);
    Atomics.notify(c, A_ACK);
  }
};
