/** What guards are built with: one set per process, shared by every session. */
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import type { Backends } from '../core/backends.js';
import type { Metrics } from '../metrics.js';
import type { StateCodec } from './mrtr.js';
import type { AuditPort, GuardStore, NoticesPort } from '../store/ports/index.js';

/**
 * The clock a call waiting on a human is measured with (approvals.wait_seconds): monotonic, with its own sleep, so a
 * test can make a wait pass without sleeping through it. `deps.now` (policy time) still governs expiry and windows.
 */
export interface WaitClock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface GuardDeps {
  policy: Policy;
  /** The store's ports (store/ports/): guards never see an adapter or a database handle. */
  store: GuardStore;
  /** The audit chain and the unit-of-work runner (group commit). */
  audit: AuditPort;
  backends: Backends;
  log: Logger;
  metrics: Metrics;
  /** The signed MRTR requestState (2026-07-28 in-band prompts). */
  mrtr: StateCodec;
  /** Where this process serves its pages (verification links, reset links); set once the listener is up. */
  links: { base: string; ready?: Promise<unknown> };
  now: () => number;
  /** Waiting on a human (gate-requests.ts waitAndRun); the real monotonic clock unless a test injects one. */
  waitClock?: WaitClock | undefined;
  /** Approver notifications (policy `notify:`); absent = nobody is told. */
  notify?: NoticesPort | undefined;
}
