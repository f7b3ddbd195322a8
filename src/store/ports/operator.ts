/**
 * The ports the operator surfaces use (DESIGN §5): the console, the verification page, the admin API, the CLI and
 * the notifier. They extend the guards' ports (guard.ts) with the reads those pages show and the writes operators
 * make; every write takes the `tx` of the unit it is an operation of, and a change that is audited appends its
 * record through the AuditPort in the same unit (the kill switch and its record; a token and its record), so no
 * store writes a table it does not own.
 *
 * Implemented by both adapters: SQLite (store/sqlite/ports.ts `sqliteStore`) and PostgreSQL (store/postgres/ports.ts
 * `pgStore`, with audit-read.ts, tokens.ts and notify.ts).
 */
import type { ApprovalStatus, ClassCount } from './types.js';
import type { AuditRow, CallRecord, ConfirmCount, VerifyResult } from '../audit-chain.js';
import type { BreakerState, BudgetUsage, TaskState } from './types.js';
import type { JobFilter, NewJob, NotifyJob, NotifyStatus } from './types.js';
import type { TokenInfo } from './types.js';
import type { CapRule } from '../../core/policy.js';
import type { BudgetRule } from '../../policy/schema.js';
import type { TaskRef } from '../task-key.js';
import type { Tx } from '../unit.js';
import type {
  ApprovalRow,
  ApprovalsPort,
  Awaitable,
  BudgetsPort,
  CapsPort,
  GuardStore,
  KillSwitchPort,
  KillSwitchState,
} from './guard.js';

export type { ApprovalStatus, ClassCount, AuditRow, CallRecord, ConfirmCount, VerifyResult };
export type { BreakerState, BudgetUsage, TaskState, JobFilter, NewJob, NotifyJob, NotifyStatus, TokenInfo, TaskRef };
export { NOTIFY_STATUSES } from './types.js';
export { parseHead } from '../audit-chain.js';

/** The kill switch as operators change it; the caller's unit appends the `killswitch.*` record. */
export interface KillSwitchControl extends KillSwitchPort {
  set(tx: Tx, engaged: boolean, reason: string, actor: string): Awaitable<KillSwitchState>;
}

/** Approval requests as the console, the verification page, the admin API and `itguard report` read them. */
export interface ApprovalsConsole extends ApprovalsPort {
  list(statuses?: readonly ApprovalStatus[], limit?: number): Awaitable<ApprovalRow[]>;
  byVerifyToken(token: string): Awaitable<ApprovalRow | undefined>;
  countsByClass(): Awaitable<ClassCount[]>;
  /** The one-time verification link is used up (a decision was made on its page). */
  consumeVerifyLink(tx: Tx, id: string): Awaitable<void>;
}

/** Tasks, budgets and breakers as operators see and clear them. */
export interface BudgetsViews extends BudgetsPort {
  tasks(idleMs: number, now: number, o?: { tripped?: boolean; limit?: number }): Awaitable<TaskState[]>;
  task(principal: string, t: TaskRef, idleMs: number, now: number): Awaitable<TaskState | undefined>;
  taskCounts(idleMs: number, now: number): Awaitable<{ open: number; tripped: number }>;
  usage(
    rules: readonly BudgetRule[],
    now: number,
    who?: { principal: string; task?: TaskRef | undefined; user?: string | undefined },
  ): Awaitable<BudgetUsage[]>;
  breaker(principal: string, now: number): Awaitable<BreakerState>;
  breakers(now: number): Awaitable<BreakerState[]>;
  /** Clears a principal's fleet breaker; the state before. */
  reset(tx: Tx, principal: string, now: number): Awaitable<BreakerState>;
  /** Clears the breaker of every open task with this id; the tasks as they were. */
  resetTask(tx: Tx, id: string, idleMs: number, now: number): Awaitable<TaskState[]>;
}

/** Caps as `guard_status` and `itguard caps` show them. */
export interface CapsViews extends CapsPort {
  usage(rule: CapRule, now: number): Awaitable<{ scopeKey: string; used: number }[]>;
  resetsAt(rule: CapRule, now: number): Awaitable<number>;
}

/** The audit chain, read (the writes are AuditPort's). */
export interface AuditReadPort {
  head(): Awaitable<{ seq: number; hash: string }>;
  tail(limit: number): Awaitable<AuditRow[]>;
  byTrace(traceId: string): Awaitable<AuditRow[]>;
  byTask(taskId: string, limit?: number): Awaitable<AuditRow[]>;
  lastEvent(event: string): Awaitable<AuditRow | undefined>;
  callRecordsBetween(from: number, to: number, exceptTool: string): Awaitable<CallRecord[]>;
  confirmCounts(): Awaitable<ConfirmCount[]>;
  /** Every record in chain order (`itguard audit export`). */
  all(): Iterable<AuditRow> | AsyncIterable<AuditRow>;
  verify(o?: { expectHead?: { seq: number; hash: string } }): Awaitable<VerifyResult>;
}

/** Bearer tokens (only hashes are stored); the caller's unit appends `token.*` records. */
export interface TokensPort {
  /** The secret is returned once. */
  create(tx: Tx, principal: string, actor: string, label?: string): Awaitable<{ token: string; id: string }>;
  verify(token: string): Awaitable<{ id: string; principal: string } | undefined>;
  /** Records the token's last use (callers throttle: http/token-use.ts). */
  touch(tx: Tx, id: string, now: number): Awaitable<void>;
  list(): Awaitable<TokenInfo[]>;
  revoke(tx: Tx, id: string): Awaitable<boolean>;
}

/** Approver notification jobs (policy `notify:`). */
export interface NotifyPort {
  enqueue(tx: Tx, jobs: readonly NewJob[]): Awaitable<number>;
  get(id: string): Awaitable<NotifyJob | undefined>;
  list(f?: JobFilter): Awaitable<NotifyJob[]>;
  /** Due jobs, leased to this process for `leaseMs` (pending → sending). */
  claimDue(tx: Tx, leaseMs: number, limit?: number, requestId?: string): Awaitable<NotifyJob[]>;
  sent(tx: Tx, id: string, ref: string | undefined): Awaitable<void>;
  attemptFailed(tx: Tx, id: string, error: string, nextTryAt: number | undefined): Awaitable<void>;
  retry(
    tx: Tx,
    id: string,
  ): Awaitable<{ ok: true; job: NotifyJob } | { ok: false; reason: 'not_found' | 'not_failed' }>;
  openRequests(limit?: number): Awaitable<string[]>;
  jobsFor(requestId: string): Awaitable<NotifyJob[]>;
  close(tx: Tx, requestId: string, outcomes: readonly NewJob[]): Awaitable<void>;
}

/** Everything of the store the guards and the operator surfaces use. */
export interface Store extends GuardStore {
  killSwitch: KillSwitchControl;
  budgets: BudgetsViews;
  caps: CapsViews;
  approvals: ApprovalsConsole;
  auditLog: AuditReadPort;
  tokens: TokensPort;
  notify: NotifyPort;
}
