/**
 * The PostgreSQL adapter of the store ports (store/ports/; DESIGN §5, issue 20): `pgGuardStore` (the guards' ports:
 * kill switch, budgets, idempotency, caps, approvals), `pgStore` (every port: the guards' and the operator surfaces'),
 * and `PgUnitRunner` (runner.ts: each unit of work in one transaction, retried whole on 40001/40P01, one audit chain
 * across replicas). Every write method is an operation of a unit and runs on that unit's transaction (`tx`); reads
 * run on the pool. Any store error rejects the unit: the call is refused (fail closed).
 *
 * `owner` names this replica process in the rows it holds (idempotency records in flight, executing approvals); with
 * the rows' leases it replaces SQLite's process-id checks. One per process (several in one process for tests).
 */
import { OWNER } from '../owner.js';
import type { AuditReadPort, GuardStore, NotifyPort, Store, TokensPort } from '../ports/index.js';
import type { PgStore } from './connect.js';
import { PgApprovals } from './approvals.js';
import { PgBudgets } from './budgets.js';
import { PgCaps } from './caps.js';
import { PgIdempotency } from './idempotency.js';
import { PgKillSwitch, type PgKillSwitchOptions } from './killswitch.js';

export { PgUnitRunner } from './runner.js';
export { PgApprovals, PgBudgets, PgCaps, PgIdempotency, PgKillSwitch };

export interface PgGuardStoreOptions {
  /** The policy's time zone: windows are its calendar hours and days. */
  tz: string;
  /** This replica process's name in the rows it holds (default: host:pid:nonce). */
  owner?: string;
  now?: () => number;
  killSwitch?: PgKillSwitchOptions;
  /** How long a hold on running work lasts without renewal (leases.ts; default 15 s). */
  holdMs?: number;
}

export interface PgGuardStore extends GuardStore {
  killSwitch: PgKillSwitch;
  budgets: PgBudgets;
  idem: PgIdempotency;
  caps: PgCaps;
  approvals: PgApprovals;
  owner: string;
  /** Starts the kill switch's LISTEN and first read (state() reads engaged until then) and the lease renewals. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function pgGuardStore(pg: PgStore, opts: PgGuardStoreOptions): PgGuardStore {
  const owner = opts.owner ?? OWNER;
  const killSwitch = new PgKillSwitch(pg, { ...(opts.now && { now: opts.now }), ...opts.killSwitch });
  const idem = new PgIdempotency(pg, owner, opts.holdMs);
  const approvals = new PgApprovals(pg, owner, opts.now, opts.holdMs);
  return {
    owner,
    killSwitch,
    budgets: new PgBudgets(pg, opts.tz),
    idem,
    caps: new PgCaps(pg, opts.tz, owner),
    approvals,
    async start() {
      await killSwitch.start();
      idem.holds.start();
      approvals.holds.start();
    },
    async stop() {
      idem.holds.stop();
      approvals.holds.stop();
      await killSwitch.stop();
    },
  };
}

/** The ports of the PostgreSQL adapter that live in their own modules (audit reads, tokens, notification jobs). */
export interface PgOperatorParts {
  auditLog: AuditReadPort;
  tokens: TokensPort;
  notify: NotifyPort;
}

/** Every port on PostgreSQL (store/ports/operator.ts `Store`), with the guard store's start and stop. */
export interface PgPorts extends PgGuardStore, Store {
  killSwitch: PgKillSwitch;
  budgets: PgBudgets;
  idem: PgIdempotency;
  caps: PgCaps;
  approvals: PgApprovals;
}

/**
 * Every port: the guard store's concerns answer the operator surfaces too (PgKillSwitch is KillSwitchControl,
 * PgApprovals ApprovalsConsole, PgBudgets BudgetsViews, PgCaps CapsViews); the audit reads, tokens and notification
 * jobs are passed in.
 */
export function pgStore(pg: PgStore, opts: PgGuardStoreOptions, parts: PgOperatorParts): PgPorts {
  return { ...pgGuardStore(pg, opts), auditLog: parts.auditLog, tokens: parts.tokens, notify: parts.notify };
}
