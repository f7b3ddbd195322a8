/**
 * The store ports the guards see (DESIGN §5 "Ports: backends and stores are interfaces"): one interface per concern,
 * implemented by every store adapter (SQLite: store/sqlite/ports.ts; PostgreSQL: store/postgres/ports.ts).
 *
 * A method that changes state takes the transaction handle (`tx`) of the unit of work it is an operation of
 * (store/unit.ts): the caller adds `(tx) => port.method(tx, …)` to a unit, and the unit's runner commits it, so no
 * port method opens a transaction behind the pipeline's back, and one unit can span several tables (a request and
 * its notices; a cap reservation recorded on the request's idempotency records) while each table keeps one owner.
 * Reads take no handle. Results are `Awaitable`: an adapter whose driver is synchronous inside (better-sqlite3)
 * answers at once, an asynchronous one (postgres) with a promise; callers always await.
 *
 * The data shapes are the SQLite adapter's today (re-exported here so that guards import them from the port, not
 * from an adapter); the PostgreSQL adapter maps its rows to the same shapes.
 */
import type { AdmitInput, AdmitResult, BudgetAlarm, SettleInput, TaskBounds, Trip } from './types.js';
import type { BeginInput, BeginResult, IdemRow } from './types.js';
import type { CapDemand, CapHold, CapItem, ReserveResult } from './types.js';
import type { ApprovalRow, DecideResult, NewApproval, RefusalReason } from './types.js';
import type { AuditEvent } from '../audit-chain.js';
import type { KillSwitchState } from './types.js';
import type { CapRule } from '../../core/policy.js';
import type { Tx, UnitOfWork, UnitRunner } from '../unit.js';

export type { AdmitInput, AdmitResult, BudgetAlarm, SettleInput, TaskBounds, Trip, BeginInput, BeginResult, IdemRow };
export type { CapDemand, CapHold, CapItem, ReserveResult, ApprovalRow, DecideResult, NewApproval, RefusalReason };
export type { AuditEvent, KillSwitchState, Tx };

export type Awaitable<T> = T | Promise<T>;

/** The kill switch: a view every process keeps fresh (a poll, or a notification and a re-read on every reconnect). */
export interface KillSwitchPort {
  /** `maxAgeMs` > 0 accepts a reading that recent (the pipeline's first, cheap check); 0 reads now. */
  state(maxAgeMs?: number): KillSwitchState;
}

/** Tasks, windowed budgets and the breakers (DESIGN §3 step 4). */
export interface BudgetsPort {
  /** A read: would `admit` refuse this call now? (Refuses before scope and validation; `admit` decides.) */
  wouldRefuse(i: AdmitInput): Awaitable<boolean>;
  admit(tx: Tx, i: AdmitInput): Awaitable<AdmitResult>;
  settle(tx: Tx, i: SettleInput): Awaitable<{ alarms: BudgetAlarm[] }>;
}

/** Idempotency records of write requests, scoped to the principal. */
export interface IdempotencyPort {
  begin(tx: Tx, i: BeginInput): Awaitable<BeginResult>;
  finish(
    tx: Tx,
    principal: string,
    requestId: string,
    state: 'completed' | 'failed',
    result: unknown,
    now: number,
  ): Awaitable<void>;
  /** Nothing ran: the request's in-flight records go, so a retry begins afresh. */
  free(tx: Tx, principal: string, requestId: string): Awaitable<void>;
  /** Takes over an orphaned request (lease `leaseMs`; -1 ends the lease at once: the next retry asks the backend). */
  adopt(
    tx: Tx,
    principal: string,
    requestId: string,
    traceId: string,
    now: number,
    leaseMs: number,
    from: string,
  ): Awaitable<boolean>;
  park(tx: Tx, principal: string, requestId: string, approvalId: string, until: number, now: number): Awaitable<void>;
  unpark(tx: Tx, principal: string, requestId: string, approvalId: string): Awaitable<void>;
}

/** Aggregate caps: every demand reserved or none, in the caller's unit. */
export interface CapsPort {
  reserve(tx: Tx, demands: CapDemand[], now: number, hold?: CapHold): Awaitable<ReserveResult>;
  release(tx: Tx, items: CapItem[], hold?: CapHold): Awaitable<void>;
  used(rule: CapRule, scopeKey: string, now: number): Awaitable<number>;
}

/** Approval requests: the single source of truth of every human gate. */
export interface ApprovalsPort {
  get(id: string): Awaitable<ApprovalRow | undefined>;
  findOpen(principal: string, tool: string, argsSha: string): Awaitable<ApprovalRow | undefined>;
  approvedReady(limit?: number): Awaitable<ApprovalRow[]>;
  orphanedExecuting(now: number, limit?: number): Awaitable<ApprovalRow[]>;
  create(tx: Tx, a: NewApproval): Awaitable<{ row: ApprovalRow; verifyToken: string | undefined }>;
  decide(
    tx: Tx,
    id: string,
    approve: boolean,
    actor: { name: string },
    note: string | undefined,
    refuse?: (row: ApprovalRow) => RefusalReason | undefined,
  ): Awaitable<DecideResult>;
  /** approved → executing for exactly one claimant, which runs it for `leaseMs`. */
  claim(tx: Tx, id: string, now: number, leaseMs: number): Awaitable<boolean>;
  reclaim(tx: Tx, row: ApprovalRow, now: number, leaseMs: number): Awaitable<boolean>;
  /** This process stops running the request (it stays executing until its lease ends). */
  letGo(id: string): void;
  finish(
    tx: Tx,
    id: string,
    status: 'succeeded' | 'failed',
    result: unknown,
    o?: { nothingRan?: boolean },
  ): Awaitable<void>;
  newStateNonce(tx: Tx, id: string): Awaitable<string>;
  takeStateNonce(tx: Tx, id: string, nonce: string): Awaitable<boolean>;
  rotateVerifyLink(tx: Tx, id: string): Awaitable<string>;
}

/** The audit chain, and the runner that commits units of work (group commit). */
export interface AuditPort extends UnitRunner {
  /** An operation of `unit` that appends records (a function: records decided inside the transaction). */
  append(unit: UnitOfWork, events: AuditEvent[] | (() => AuditEvent[])): Promise<number[]>;
  /** One record in a unit of its own (`strict`: committed with an fsync). */
  record(event: AuditEvent, strict?: boolean): Promise<void>;
}

/** Approver notices: enqueued in the unit that creates the request; sending starts once it has committed. */
export interface NoticesPort {
  requested(tx: Tx, row: ApprovalRow): Awaitable<void>;
  /** After the unit committed: send soon. */
  kick(): void;
}

/** Everything of the store the guards use. */
export interface GuardStore {
  killSwitch: KillSwitchPort;
  budgets: BudgetsPort;
  idem: IdempotencyPort;
  caps: CapsPort;
  approvals: ApprovalsPort;
}
