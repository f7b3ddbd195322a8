/**
 * Idempotency records, scoped to the principal. A record is in flight while its call runs, then completed or
 * failed with the result stored for replay. Each in-flight record carries its owner (host:pid:nonce) and a
 * lease, so a record left by a crashed process is recognised and resolved by asking the backend.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { immediate, relaxed, type Db } from './db.js';

export const OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

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
}

/** Whether the process that owns an in-flight record is certainly gone. */
export function ownerIsGone(owner: string): boolean {
  if (owner === OWNER) return false;
  const [host, pid] = owner.split(':');
  if (host !== hostname()) return false; // another host: only the lease can tell
  try {
    process.kill(Number(pid), 0);
    return false; // alive (or reused pid: the lease decides)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class IdempotencyStore {
  private lastPrune = 0;
  constructor(private readonly db: Db) {
    this.rowStmt = db.prepare<[string, string], IdemRow>('SELECT * FROM idempotency WHERE principal = ? AND key = ?');
    this.insertStmt = db.prepare(
      `INSERT OR REPLACE INTO idempotency (principal, key, explicit, tool, args_sha256, request_id, state, result, trace_id, owner, lease_until, created_at, updated_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, 'in_flight', NULL, ?, ?, ?, ?, ?, ?)`,
    );
    this.finishStmt = db.prepare('UPDATE idempotency SET state = ?, result = ?, updated_at = ?, lease_until = 0 WHERE principal = ? AND key = ?');
  }

  private readonly rowStmt;
  private readonly insertStmt;
  private readonly finishStmt;

  private row(principal: string, key: string): IdemRow | undefined {
    return this.rowStmt.get(principal, key);
  }

  begin(i: BeginInput): BeginResult {
    this.maybePrune(i.now);
    // Made durable by the audit intent's strict commit that follows it, before any side effect (see relaxed()).
    return relaxed(this.db, () => this.beginTx(i));
  }

  private beginTx(i: BeginInput): BeginResult {
    return immediate(this.db, (): BeginResult => {
      const row = this.row(i.principal, i.key);
      if (row && row.expires_at > i.now) {
        if (row.tool !== i.tool || row.args_sha256 !== i.argsSha) return { kind: 'conflict', row };
        if (row.state !== 'in_flight') return { kind: 'replay', row };
        if (row.owner.startsWith('approval:')) return { kind: 'parked', row, approvalId: row.owner.slice('approval:'.length) };
        if (row.owner !== OWNER && (row.lease_until < i.now || ownerIsGone(row.owner))) return { kind: 'orphan', row };
        return { kind: 'in_progress', row };
      }
      // New, or an expired record being reused: a fresh request id so the backend sees a new request.
      const requestId = `${i.principal}:${i.key}:${i.now.toString(36)}`;
      this.insertStmt.run(i.principal, i.key, i.explicit ? 1 : 0, i.tool, i.argsSha, requestId, i.traceId, OWNER, i.now + i.leaseMs, i.now, i.now, i.now + i.ttlMs);
      return { kind: 'new', requestId };
    });
  }

  /** Takes over an orphaned record (after the backend said the request never happened). */
  adopt(principal: string, key: string, traceId: string, now: number, leaseMs: number): boolean {
    return (
      this.db
        .prepare("UPDATE idempotency SET owner = ?, trace_id = ?, lease_until = ?, updated_at = ? WHERE principal = ? AND key = ? AND state = 'in_flight'")
        .run(OWNER, traceId, now + leaseMs, now, principal, key).changes > 0
    );
  }

  finish(principal: string, key: string, state: 'completed' | 'failed', result: unknown, now: number): void {
    // After the effect: if this is lost, the record stays in flight and the next retry asks the backend.
    relaxed(this.db, () => this.finishStmt.run(state, JSON.stringify(result), now, principal, key));
  }

  /** Hands the in-flight record to an approval request: retries report on that request until it ends. */
  park(principal: string, key: string, approvalId: string, until: number, now: number): void {
    this.db
      .prepare("UPDATE idempotency SET owner = ?, lease_until = ?, expires_at = max(expires_at, ?), updated_at = ? WHERE principal = ? AND key = ? AND state = 'in_flight'")
      .run(`approval:${approvalId}`, until, until, now, principal, key);
  }

  /** Frees the key (a retryable failure, or a refusal before any side effect). */
  free(principal: string, key: string): void {
    relaxed(this.db, () => this.freeStmt().run(principal, key, OWNER));
  }

  private freeStmt() {
    return this.db.prepare("DELETE FROM idempotency WHERE principal = ? AND key = ? AND state = 'in_flight' AND owner = ?");
  }

  private maybePrune(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    this.db.prepare("DELETE FROM idempotency WHERE expires_at < ? AND state != 'in_flight'").run(now);
  }
}
