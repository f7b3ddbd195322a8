/**
 * A wait clock (GuardDeps.waitClock) on which time passes only when a waiting call sleeps: a call waiting on a
 * human for approvals.wait_seconds = 600 returns APPROVAL_PENDING after its 2,400 polls at once, without sleeping.
 */
import type { WaitClock } from '../../src/guard/deps.js';

export function fakeWaitClock(): WaitClock & { slept: number } {
  const clock = {
    t: 0,
    slept: 0,
    now: () => clock.t,
    async sleep(ms: number, signal: AbortSignal) {
      signal.throwIfAborted();
      clock.t += ms;
      clock.slept += ms;
      await new Promise((r) => setImmediate(r)); // other work (a decision, the executor) still gets its turn
    },
  };
  return clock;
}
