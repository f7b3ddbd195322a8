/**
 * The data shapes of the store ports (guard.ts, operator.ts): what a port method takes and returns, the same for
 * every adapter (SQLite maps its rows to them directly; PostgreSQL maps its rows, unescaping keys, to the same).
 */
import type { CapRule } from '../../core/policy.js';
import type { BudgetRule } from '../../policy/schema.js';
import type { TaskRef } from '../task-key.js';

export type TripRule = 'max_identical_calls' | 'max_consecutive_failures' | 'tripped_tasks_per_hour';

export type NotifyChannel = 'mail' | 'slack' | 'webhook';

export type NotifyKind = 'requested' | 'reminder' | 'outcome' | 'test';

export interface Trip {
  rule: TripRule;
  why: string;
  trippedAt: number;
  /** A principal trip clears at the hour's end; a task trip never clears within the task (null). */
  clearsAt: number | null;
}

export interface BudgetAlarm {
  rule: BudgetRule;
  used: number;
  scopeKey: string;
}

/** The per-task bounds, in the units the store counts. */
export interface TaskBounds {
  idleMs: number;
  maxCalls: number;
  maxMs: number;
  maxResultBytes: number;
  maxIdenticalCalls: number;
  maxConsecutiveFailures: number;
}

export type AdmitResult =
  | { ok: true; alarms: BudgetAlarm[] }
  /** `fleet`: this call's task trip also tripped the principal (fresh). */
  | { ok: false; kind: 'tripped'; level: 'principal' | 'task'; trip: Trip; fresh: boolean; fleet?: Trip }
  | { ok: false; kind: 'exhausted'; rule: BudgetRule; used: number; scopeKey: string; resetsAt: number }
  | { ok: false; kind: 'task_exhausted'; bound: TaskBound; used: number; limit: number; startedAt: number };

export interface AdmitInput {
  principal: string;
  task: TaskRef;
  /** The OAuth user (on_behalf_of_id); `per: user` rules skip calls without one. */
  user: string | undefined;
  /** The windowed rules that apply to this call's tool. */
  rules: readonly BudgetRule[];
  /** Tool + canonical action arguments, hashed; undefined for polling tools (exempt from identical counting). */
  sig: string | undefined;
  /** Polling tools (request_status, guard_status) do not spend the task's calls. */
  polling: boolean;
  bounds: TaskBounds;
  trippedTasksPerHour: number;
  now: number;
}

export interface SettleInput {
  principal: string;
  task: TaskRef;
  user: string | undefined;
  rules: readonly BudgetRule[];
  /** true: a failure; false: a success (ends the streak); undefined: neither (waiting on a human, a twin, a pause). */
  failed: boolean | undefined;
  resultBytes: number;
  now: number;
}

export interface BudgetUsage {
  rule: string;
  measure: BudgetRule['measure'];
  per: BudgetRule['per'];
  window: BudgetRule['window'];
  scopeKey: string;
  used: number;
  limit: number;
  alarmAt: number | null;
  resetsAt: number;
}

export interface BreakerState {
  principal: string;
  /** Different tasks that tripped this hour. */
  trippedTasks: number;
  trip: Trip | undefined;
}

/** One task as the store has it. */
export interface TaskState {
  principal: string;
  source: TaskRef['source'];
  id: string;
  startedAt: number;
  lastCallAt: number;
  calls: number;
  resultBytes: number;
  streak: number;
  trip: Trip | undefined;
}

export type TaskBound = 'max_calls' | 'max_minutes' | 'max_result_bytes';

export interface IdemRow {
  principal: string;
  key: string;
  explicit: number;
  tool: string;
  args_sha256: string;
  request_id: string;
  state: 'in_flight' | 'completed' | 'failed';
  result: string | null;
  trace_id: string;
  owner: string;
  lease_until: number;
  created_at: number;
  updated_at: number;
  expires_at: number;
}

export type BeginResult =
  | { kind: 'new'; requestId: string }
  | { kind: 'replay'; row: IdemRow }
  | { kind: 'in_progress'; row: IdemRow }
  | { kind: 'conflict'; row: IdemRow }
  /** In flight, but its owner is gone (crash): the caller must ask the backend what happened. */
  | { kind: 'orphan'; row: IdemRow }
  /** Waiting on a human approval request (owner `approval:<id>`). */
  | { kind: 'parked'; row: IdemRow; approvalId: string };

export interface BeginInput {
  principal: string;
  key: string;
  explicit: boolean;
  tool: string;
  argsSha: string;
  traceId: string;
  now: number;
  leaseMs: number;
  ttlMs: number;
  /**
   * The record of "this action" (principal, tool, canonical args) inside the dedupe window, beside an explicit
   * key's own record; undefined when the window is 0 or the call has no explicit key (then `key` is it already).
   */
  dedupeKey: string | undefined;
  dedupeTtlMs: number;
}

export interface CapItem {
  tool: string;
  rule: string;
  scopeKey: string;
  windowStart: number;
  amount: number;
}

export interface CapDemand {
  rule: CapRule;
  scopeKey: string;
  amount: number;
}

/**
 * The request a reservation belongs to: the in-flight idempotency records (principal, request id) that the call
 * `traceId` owns in this process (it began or adopted them). Only that call reserves or gives back for them.
 */
export interface CapHold {
  principal: string;
  requestId: string;
  traceId: string;
}

export type ReserveResult =
  | {
      ok: true;
      items: CapItem[];
      alarms: { rule: CapRule; used: number; scopeKey: string }[];
      /** what an earlier, never-executed attempt of the request held and this reservation replaced */
      replaced: CapItem[];
    }
  | {
      ok: false;
      reason: 'cap';
      rule: CapRule;
      used: number;
      resetsAt: number;
      scopeKey: string;
      amount: number;
    }
  /** The request's records are not (or no longer) this call's: another call took the request over. */
  | { ok: false; reason: 'not_held' };

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'executing' | 'succeeded' | 'failed';

export interface ApprovalRow {
  id: string;
  tier: string;
  principal: string;
  /** The human the requesting agent acted for (OAuth), or null. */
  on_behalf_of: string | null;
  /** Their stable identity (OAuth issuer + ' sub:' + sub; migration 10): what separation of duties compares. */
  on_behalf_of_id: string | null;
  session_id: string | null;
  task_id: string | null;
  tool: string;
  args: string;
  args_sha256: string;
  summary: string;
  reason: string;
  target: string | null;
  caps: string;
  cap_items: string;
  idem_key: string | null;
  /** The process running it while executing (host:pid:nonce), and until when. */
  runner: string | null;
  lease_until: number | null;
  request_id: string | null;
  verify_hash: string | null;
  status: ApprovalStatus;
  trace_id: string;
  created_at: number;
  expires_at: number;
  decided_by: string | null;
  decided_at: number | null;
  note: string | null;
  result: string | null;
  updated_at: number;
}

export interface NewApproval {
  tier: string;
  principal: string;
  onBehalfOf?: string | undefined;
  onBehalfOfId?: string | undefined;
  /** The 2025-11-25 session the request came from; none on 2026-07-28 (stored as null). */
  sessionId: string | undefined;
  /** The task the request was made in (its display id); the executor's run of it is recorded in the same task. */
  taskId?: string | undefined;
  tool: string;
  args: Record<string, unknown>;
  argsSha: string;
  summary: string;
  reason: string;
  target: string | undefined;
  caps: unknown[];
  capItems: unknown[];
  idemKey: string | undefined;
  requestId: string | undefined;
  traceId: string;
  ttlMs: number;
  /** mfa: a one-time verification link token is made; only its hash is stored. */
  withVerifyLink: boolean;
}

/** How many requests of one action class (tool × tier) are in one status. */
export interface ClassCount {
  tool: string;
  tier: string;
  status: ApprovalStatus;
  n: number;
}

/** Why a decision was refused (src/guard/decide.ts words each one for people). */
export type RefusalReason =
  'not_found' | 'not_pending' | 'expired' | 'self_approval' | 'own_behalf' | 'target_user' | 'wrong_tier';

export type DecideResult =
  { ok: true; row: ApprovalRow } | { ok: false; reason: RefusalReason; row?: ApprovalRow | undefined };

export interface KillSwitchState {
  engaged: boolean;
  reason: string;
  actor: string;
  changedAt: number;
}

export type NotifyStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'cancelled';
export const NOTIFY_STATUSES: readonly NotifyStatus[] = ['pending', 'sending', 'sent', 'failed', 'cancelled'];

export interface NotifyJob {
  id: string;
  request_id: string;
  kind: NotifyKind;
  channel: NotifyChannel;
  recipient: string;
  payload: string;
  status: NotifyStatus;
  attempts: number;
  next_try_at: number;
  lease_until: number | null;
  last_error: string | null;
  ref: string | null;
  created_at: number;
  sent_at: number | null;
  updated_at: number;
  closed_at: number | null;
}

export interface NewJob {
  requestId: string;
  kind: NotifyKind;
  channel: NotifyChannel;
  recipient: string;
  payload: unknown;
}

export interface JobFilter {
  status?: NotifyStatus | undefined;
  requestId?: string | undefined;
  limit?: number | undefined;
}

export interface TokenInfo {
  id: string;
  principal: string;
  label: string | null;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
  lastUsedAt: number | null;
}
