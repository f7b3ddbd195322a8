/**
 * Idempotency records, scoped to the principal. A record is in flight while its call runs, then completed or
 * failed with the result stored for replay. Each in-flight record carries its owner (host:pid:nonce) and a
 * lease, so a record left by a crashed process is recognised and resolved by asking the backend.
 */
import { immediate, relaxed, type Db } from './db.js';
import { OWNER, ownerIsGone } from '../owner.js';
import type { IdemRow, BeginResult, BeginInput } from '../ports/types.js';
export type { IdemRow, BeginResult, BeginInput };

export { OWNER, ownerIsGone };

export class IdempotencyStore {
  private lastPrune = 0;
  constructor(private readonly db: Db) {
    this.rowStmt = db.prepare<[string, string], IdemRow>('SELECT * FROM idempotency WHERE principal = ? AND key = ?');
    this.insertStmt = db.prepare(
      `INSERT OR REPLACE INTO idempotency (principal, key, explicit, tool, args_sha256, request_id, state, result, trace_id, owner, lease_until, created_at, updated_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, 'in_flight', NULL, ?, ?, ?, ?, ?, ?)`,
    );
    this.finishStmt = db.prepare(
      'UPDATE idempotency SET state = ?, result = ?, updated_at = ?, lease_until = 0 WHERE principal = ? AND request_id = ?',
    );
    this.copyStmt = db.prepare(
      `INSERT OR REPLACE INTO idempotency (principal, key, explicit, tool, args_sha256, request_id, state, result, trace_id, owner, lease_until, created_at, updated_at, expires_at)
       VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
    );
    this.freeStmt = db.prepare(
      "DELETE FROM idempotency WHERE principal = ? AND request_id = ? AND state = 'in_flight' AND owner = ?",
    );
  }

  private readonly rowStmt;
  private readonly insertStmt;
  private readonly finishStmt;
  private readonly copyStmt;
  private readonly freeStmt;

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
        return this.inFlight(row, i.now);
      }
      if (i.dedupeKey !== undefined && i.dedupeKey !== i.key) {
        // Security: the same action under another key (or none) inside the dedupe window is that action again.
        const d = this.row(i.principal, i.dedupeKey);
        if (d && d.expires_at > i.now && d.tool === i.tool && d.args_sha256 === i.argsSha) {
          if (d.state !== 'in_flight') {
            // This key now names the completed action too, for its own 24 h.
            this.copyStmt.run(
              i.principal,
              i.key,
              i.tool,
              i.argsSha,
              d.request_id,
              d.state,
              d.result,
              d.trace_id,
              OWNER,
              i.now,
              d.updated_at,
              i.now + i.ttlMs,
            );
            return { kind: 'replay', row: d };
          }
          return this.inFlight(d, i.now);
        }
      }
      // New, or an expired record being reused: a fresh request id so the backend sees a new request.
      const requestId = `${i.principal}:${i.key}:${i.now.toString(36)}`;
      const insert = (key: string, explicit: boolean, ttlMs: number) =>
        this.insertStmt.run(
          i.principal,
          key,
          explicit ? 1 : 0,
          i.tool,
          i.argsSha,
          requestId,
          i.traceId,
          OWNER,
          i.now + i.leaseMs,
          i.now,
          i.now,
          i.now + ttlMs,
        );
      insert(i.key, i.explicit, i.ttlMs);
      // The action's own record beside the explicit key's: both carry the request id and move together.
      if (i.dedupeKey !== undefined && i.dedupeKey !== i.key) insert(i.dedupeKey, false, i.dedupeTtlMs);
      return { kind: 'new', requestId };
    });
  }

  private inFlight(row: IdemRow, now: number): BeginResult {
    if (row.owner.startsWith('approval:'))
      return { kind: 'parked', row, approvalId: row.owner.slice('approval:'.length) };
    // A lease covers the call's timeout and waits, so an ended lease means nobody is running it (this process's own
    // call that ended with its outcome unknown included); another process's record is an orphan once it is gone.
    if (row.lease_until < now || (row.owner !== OWNER && ownerIsGone(row.owner))) return { kind: 'orphan', row };
    return { kind: 'in_progress', row };
  }

  /** Takes over an orphaned record (after the backend said the request never happened). */
  // Every record of one action (its explicit key and its dedupe record) shares the request id: they move together.

  // Security: `from` is the trace of the attempt the caller saw die. The update applies only while the records
  // still carry it, so of two retries that recovered the same orphan at once exactly one adopts it (the other
  // gets false: IN_PROGRESS) and the effect runs once.
  adopt(principal: string, requestId: string, traceId: string, now: number, leaseMs: number, from: string): boolean {
    return (
      this.db
        .prepare(
          "UPDATE idempotency SET owner = ?, trace_id = ?, lease_until = ?, updated_at = ? WHERE principal = ? AND request_id = ? AND state = 'in_flight' AND trace_id = ?",
        )
        .run(OWNER, traceId, now + leaseMs, now, principal, requestId, from).changes > 0
    );
  }

  finish(principal: string, requestId: string, state: 'completed' | 'failed', result: unknown, now: number): void {
    // After the effect: if this is lost, the record stays in flight and the next retry asks the backend.
    relaxed(this.db, () => this.finishStmt.run(state, JSON.stringify(result), now, principal, requestId));
  }

  /** Hands the in-flight records to an approval request: retries report on that request until it ends. */
  park(principal: string, requestId: string, approvalId: string, until: number, now: number): void {
    this.db
      .prepare(
        "UPDATE idempotency SET owner = ?, lease_until = ?, expires_at = max(expires_at, ?), updated_at = ? WHERE principal = ? AND request_id = ? AND state = 'in_flight'",
      )
      .run(`approval:${approvalId}`, until, until, now, principal, requestId);
  }

  /**
   * Frees the action's keys still parked on approval request `approvalId`: the user declined it in band (MRTR), so
   * nothing ran and a later call is a new request that asks again (DESIGN §4), rather than a replay of the denial.
   */
  unpark(principal: string, requestId: string, approvalId: string): void {
    this.db
      .prepare("DELETE FROM idempotency WHERE principal = ? AND request_id = ? AND state = 'in_flight' AND owner = ?")
      .run(principal, requestId, `approval:${approvalId}`);
  }

  /** Frees the action's keys (a retryable failure, or a refusal before any side effect). */
  free(principal: string, requestId: string): void {
    relaxed(this.db, () => this.freeStmt.run(principal, requestId, OWNER));
  }

  private maybePrune(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    this.db.prepare("DELETE FROM idempotency WHERE expires_at < ? AND state != 'in_flight'").run(now);
  }
}
