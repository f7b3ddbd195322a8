/** What guards are built with: one set per process, shared by every session. */
import type { Logger } from 'pino';
import type { Policy } from '../policy/schema.js';
import type { KillSwitchStore } from '../store/killswitch-store.js';
import type { Backends } from '../tools/backends.js';
import type { AuditWriter } from './audit-writer.js';
import type { Metrics } from '../metrics.js';
import type { CapsStore } from '../store/caps-store.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import type { ApprovalsStore } from '../store/approvals-store.js';
import type { MfaStore } from '../store/mfa-store.js';
import type { StateCodec } from './mrtr.js';
import type { BudgetStore } from '../store/budget-store.js';
import type { Notifier } from '../notify/notifier.js';

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
  /** Approver notifications (policy `notify:`); absent = nobody is told. */
  notify?: Pick<Notifier, 'withNotices'> | undefined;
}
