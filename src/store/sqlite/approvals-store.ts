/**
 * Approval requests. A request is bound to (principal, tool, canonical-args SHA-256); it is consumed exactly
 * once (approved → executing is a single conditional UPDATE, so only one process or call can claim it); it
 * expires; and the arguments executed are the stored ones, never others.
 */
import { randomBytes } from 'node:crypto';
import { customAlphabet } from 'nanoid';
import { sha256 } from '../../canonical.js';
import { immediate, type Db } from './db.js';
import { OWNER, ownerIsGone } from '../owner.js';
import type {
  ApprovalStatus,
  ApprovalRow,
  NewApproval,
  ClassCount,
  RefusalReason,
  DecideResult,
} from '../ports/types.js';
export type { ApprovalStatus, ApprovalRow, NewApproval, ClassCount, RefusalReason, DecideResult };

const requestId = customAlphabet('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 10);

export const OPEN_STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'executing'];

export class ApprovalsStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  get(id: string): ApprovalRow | undefined {
    this.expire();
    return this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?').get(id);
  }

  byVerifyToken(token: string): ApprovalRow | undefined {
    this.expire();
    return this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE verify_hash = ?').get(sha256(token));
  }

  /** An open request for the same binding, so a retried call waits on it instead of asking twice. */
  findOpen(principal: string, tool: string, argsSha: string): ApprovalRow | undefined {
    this.expire();
    return this.db
      .prepare<[string, string, string], ApprovalRow>(
        "SELECT * FROM approvals WHERE principal = ? AND tool = ? AND args_sha256 = ? AND status IN ('pending', 'approved', 'executing') ORDER BY created_at DESC LIMIT 1",
      )
      .get(principal, tool, argsSha);
  }

  create(a: NewApproval): { row: ApprovalRow; verifyToken: string | undefined } {
    const id = `REQ-${requestId()}`;
    const verifyToken = a.withVerifyLink ? randomBytes(24).toString('base64url') : undefined;
    const now = this.now();
    immediate(this.db, () => this.insert(a, id, verifyToken, now));
    return { row: this.get(id)!, verifyToken };
  }

  private insert(a: NewApproval, id: string, verifyToken: string | undefined, now: number): void {
    let capItems = a.capItems;
    if (capItems.length && a.idemKey !== undefined) {
      // The request takes the call's reservation over from its idempotency records (migration 9), in the same
      // transaction: a retry that adopts those records later must not give back what the request now holds. If
      // they no longer hold it for this call (another call took the request over and gave it back), neither
      // does the request: it never gives back what it does not hold.
      const moved = this.db
        .prepare(
          "UPDATE idempotency SET cap_items = NULL WHERE principal = ? AND request_id = ? AND state = 'in_flight' AND owner = ? AND trace_id = ? AND cap_items IS NOT NULL",
        )
        .run(a.principal, a.idemKey, OWNER, a.traceId).changes;
      if (!moved) capItems = [];
    }
    this.db
      .prepare(
        `INSERT INTO approvals (id, tier, principal, on_behalf_of, on_behalf_of_id, session_id, task_id, tool, args, args_sha256, summary, reason, target, caps, cap_items, idem_key, request_id, verify_hash, status, trace_id, created_at, expires_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
      )
      .run(
        id,
        a.tier,
        a.principal,
        a.onBehalfOf ?? null,
        a.onBehalfOfId ?? null,
        a.sessionId ?? null,
        a.taskId ?? null,
        a.tool,
        JSON.stringify(a.args),
        a.argsSha,
        a.summary,
        a.reason,
        a.target ?? null,
        JSON.stringify(a.caps),
        JSON.stringify(capItems),
        a.idemKey ?? null,
        a.requestId ?? null,
        verifyToken ? sha256(verifyToken) : null,
        a.traceId,
        now,
        now + a.ttlMs,
        now,
      );
  }

  list(statuses: readonly ApprovalStatus[] = ['pending'], limit = 100): ApprovalRow[] {
    this.expire();
    return this.db
      .prepare<unknown[], ApprovalRow>(
        `SELECT * FROM approvals WHERE status IN (${statuses.map(() => '?').join(', ')}) ORDER BY created_at DESC LIMIT ?`,
      )
      .all(...statuses, limit);
  }

  /**
   * Approve or deny a pending request: the state change only (pending → approved | denied, in one transaction with
   * the read it rests on). Who may decide is not this store's business: src/guard/decide.ts holds every rule and
   * passes them in as `refuse`, which sees the fresh row inside the transaction and names a refusal, or nothing.
   */
  decide(
    id: string,
    approve: boolean,
    actor: { name: string },
    note: string | undefined,
    refuse: (row: ApprovalRow) => RefusalReason | undefined = () => undefined,
  ): DecideResult {
    return immediate(this.db, (): DecideResult => {
      this.expire();
      const row = this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?').get(id);
      if (!row) return { ok: false, reason: 'not_found' };
      if (row.status === 'expired') return { ok: false, reason: 'expired', row };
      if (row.status !== 'pending') return { ok: false, reason: 'not_pending', row };
      const refused = refuse(row);
      if (refused) return { ok: false, reason: refused, row };
      const now = this.now();
      this.db
        .prepare(
          "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, note = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
        )
        .run(approve ? 'approved' : 'denied', actor.name, now, note ?? null, now, id);
      if (!approve) this.releaseCaps(row);
      return { ok: true, row: this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?').get(id)! };
    });
  }

  /** approved → executing, for exactly one claimant, which becomes the runner (this process) for `leaseMs`. */
  claim(id: string, now: number, leaseMs: number): boolean {
    return (
      this.db
        .prepare(
          "UPDATE approvals SET status = 'executing', runner = ?, lease_until = ?, updated_at = ? WHERE id = ? AND status = 'approved'",
        )
        .run(OWNER, now + leaseMs, now, id).changes === 1 && this.holding(id)
    );
  }

  /** This process stops working on a claimed request without finishing it (its lease then runs out and it is retried). */
  letGo(id: string): void {
    this.running.delete(id);
  }

  /** Executing requests whose runner is gone (its process died, or its lease ran out): to be recovered. */
  orphanedExecuting(now: number, limit = 10): ApprovalRow[] {
    return this.db
      .prepare<[], ApprovalRow>("SELECT * FROM approvals WHERE status = 'executing' ORDER BY updated_at LIMIT 100")
      .all()
      .filter((r) =>
        // This process's own request is an orphan only once its lease ran out and nothing here is running it
        // (a recovery that could not reach the backend left it so): a single process retries it too.
        r.runner === OWNER
          ? (r.lease_until ?? 0) < now && !this.running.has(r.id)
          : !r.runner || (r.lease_until ?? 0) < now || ownerIsGone(r.runner),
      )
      .slice(0, limit);
  }

  /** Requests this process claimed and has not finished: never treated as orphans here. */
  private readonly running = new Set<string>();
  private holding(id: string): true {
    this.running.add(id);
    return true;
  }

  /** Takes over an orphaned executing request from its dead runner; exactly one process wins. */
  reclaim(row: ApprovalRow, now: number, leaseMs: number): boolean {
    return (
      this.db
        .prepare(
          "UPDATE approvals SET runner = ?, lease_until = ?, updated_at = ? WHERE id = ? AND status = 'executing' AND runner IS ?",
        )
        .run(OWNER, now + leaseMs, now, row.id, row.runner).changes === 1 && this.holding(row.id)
    );
  }

  /**
   * executing → succeeded | failed. `nothingRan`: the action provably never started (refused by the re-check, the
   * tool or principal gone, stopped before its side effect), so the cap room it reserved is given back — once, in
   * the same transaction as the status change.
   */
  finish(id: string, status: 'succeeded' | 'failed', result: unknown, o: { nothingRan?: boolean } = {}): void {
    this.running.delete(id);
    immediate(this.db, () => {
      const row = o.nothingRan
        ? this.db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?').get(id)
        : undefined;
      const changed = this.db
        .prepare("UPDATE approvals SET status = ?, result = ?, updated_at = ? WHERE id = ? AND status = 'executing'")
        .run(status, JSON.stringify(result), this.now(), id).changes;
      if (changed && row) this.releaseCaps(row);
    });
  }

  /** A retried call gets a fresh link for the same open request (only hashes are stored, so the old one cannot be shown). */
  /** A fresh one-time nonce for the request's next MRTR requestState; an older state stops working. */
  newStateNonce(id: string): string {
    const nonce = randomBytes(12).toString('base64url');
    this.db.prepare('UPDATE approvals SET state_nonce = ? WHERE id = ?').run(nonce, id);
    return nonce;
  }

  /** Takes the nonce a requestState carries: true exactly once, for the state minted last (concurrent retries included). */
  takeStateNonce(id: string, nonce: string): boolean {
    return (
      this.db.prepare('UPDATE approvals SET state_nonce = NULL WHERE id = ? AND state_nonce = ?').run(id, nonce)
        .changes === 1
    );
  }

  rotateVerifyLink(id: string): string {
    const token = randomBytes(24).toString('base64url');
    this.db.prepare('UPDATE approvals SET verify_hash = ? WHERE id = ?').run(sha256(token), id);
    return token;
  }

  /** The verification link is single use: cleared once a code has been accepted. */
  consumeVerifyLink(id: string): void {
    this.db.prepare('UPDATE approvals SET verify_hash = NULL WHERE id = ?').run(id);
  }

  /** How many requests each action class (tool × tier) has in each status, once past-due requests are expired. */
  countsByClass(): ClassCount[] {
    this.expire();
    return this.db
      .prepare<[], ClassCount>('SELECT tool, tier, status, count(*) AS n FROM approvals GROUP BY tool, tier, status')
      .all();
  }

  approvedReady(limit = 10): ApprovalRow[] {
    return this.db
      .prepare<[number], ApprovalRow>("SELECT * FROM approvals WHERE status = 'approved' ORDER BY decided_at LIMIT ?")
      .all(limit);
  }

  /** Pending requests past their expiry become expired; returns the rows that just expired. */
  expire(): ApprovalRow[] {
    const now = this.now();
    const rows = this.db
      .prepare<[number], ApprovalRow>(
        "SELECT * FROM approvals WHERE status IN ('pending', 'approved') AND expires_at <= ?",
      )
      .all(now);
    if (rows.length) {
      immediate(this.db, () => {
        for (const r of rows) {
          const changed = this.db
            .prepare(
              "UPDATE approvals SET status = 'expired', updated_at = ? WHERE id = ? AND status IN ('pending', 'approved')",
            )
            .run(now, r.id).changes;
          if (changed) this.releaseCaps(r);
        }
      });
    }
    return rows;
  }

  /** A request that will never run gives back the cap room reserved when it was made. */
  private releaseCaps(row: ApprovalRow): void {
    const items = JSON.parse(row.cap_items) as {
      tool: string;
      rule: string;
      scopeKey: string;
      windowStart: number;
      amount: number;
    }[];
    const stmt = this.db.prepare(
      'UPDATE cap_usage SET used = max(0, used - ?) WHERE tool = ? AND rule = ? AND scope_key = ? AND window_start = ?',
    );
    for (const i of items) stmt.run(i.amount, i.tool, i.rule, i.scopeKey, i.windowStart);
  }
}
