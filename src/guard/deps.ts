/** What guards are built with: one set per process, shared by every session. */
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import type { KillSwitchStore } from '../store/sqlite/killswitch-store.js';
import type { Backends } from '../core/backends.js';
import type { AuditWriter } from '../store/sqlite/committer.js';
import type { Metrics } from '../metrics.js';
import type { CapsStore } from '../store/sqlite/caps-store.js';
import type { IdempotencyStore } from '../store/sqlite/idempotency-store.js';
import type { ApprovalRow, ApprovalsStore } from '../store/sqlite/approvals-store.js';
import type { MfaStore } from '../store/sqlite/mfa-store.js';
import type { StateCodec } from './mrtr.js';
import type { BudgetStore } from '../store/sqlite/budget-store.js';

/**
 * What the gates need of the approver notifier (src/notify/notifier.ts `Notifier` is one): to create an approval
 * request and queue its notices in the same transaction.
 */
export interface Notices {
  withNotices<T extends { row: ApprovalRow }>(create: () => T): T;
}

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
  killSwitch: KillSwitchStore;
  audit: AuditWriter;
  backends: Backends;
  log: Logger;
  metrics: Metrics;
  idem: IdempotencyStore;
  caps: CapsStore;
  budgets: BudgetStore;
  approvals: ApprovalsStore;
  mfa: MfaStore;
  /** The signed MRTR requestState (2026-07-28 in-band prompts). */
  mrtr: StateCodec;
  /** Where this process serves its pages (verification links, reset links); set once the listener is up. */
  links: { base: string; ready?: Promise<unknown> };
  now: () => number;
  /** Waiting on a human (gate-requests.ts waitAndRun); the real monotonic clock unless a test injects one. */
  waitClock?: WaitClock | undefined;
  /** Approver notifications (policy `notify:`); absent = nobody is told. */
  notify?: Notices | undefined;
}
