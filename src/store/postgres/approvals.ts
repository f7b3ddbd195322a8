/**
 * Approval requests on PostgreSQL (ApprovalsPort), with sqlite/approvals-store.ts's decisions. Every state change is
 * one conditional statement that says which state it leaves (`UPDATE … WHERE id = … AND status = 'approved'
 * RETURNING`), so of any number of replicas exactly one claims a request, one decides it, one reclaims an orphan.
 * The runner of an executing request is this store's `owner` with a lease, renewed while it runs (leases.ts) and
 * compared on the database's clock: another replica's request is an orphan once its lease has ended, never by a
 * process id. Expiry gives back the request's cap room in the transaction
 * that expires it. The console's reads (`list`, `byVerifyToken`, `countsByClass`) expire past-due requests first, as
 * SQLite's do; verification links are stored as their SHA-256 only (`verify_hash`), as on SQLite.
 */
import { randomBytes } from 'node:crypto';
import { customAlphabet } from 'nanoid';
import { sha256 } from '../../canonical.js';
import type { ApprovalsConsole } from '../ports/index.js';
import type {
  ApprovalRow,
  ApprovalStatus,
  ClassCount,
  DecideResult,
  NewApproval,
  RefusalReason,
} from '../ports/types.js';
import type { CapItem } from '../ports/types.js';
import type { Tx } from '../unit.js';
import type { PgStore } from './connect.js';
import { releaseCapItems } from './caps.js';
import { Holds } from './leases.js';
import { txOf, type Q } from './runner.js';

const requestId = customAlphabet('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 10);

export class PgApprovals implements ApprovalsConsole {
  /** Requests this store claimed and has not finished: never treated as orphans here. */
  private readonly running = new Set<string>();
  /** The requests this replica executes: their leases are renewed until they finish or it lets go (leases.ts). */
  readonly holds: Holds;
  constructor(
    private readonly pg: PgStore,
    private readonly owner: string,
    private readonly now: () => number = Date.now,
    holdMs?: number,
  ) {
    this.holds = new Holds(
      async (ids, ms) =>
        void (await this.pg.sql`UPDATE approvals a SET lease_until = itguard_now_ms() + h.ms
          FROM unnest(${ids}::text[], ${ms}::bigint[]) AS h(id, ms)
          WHERE a.runner = ${this.owner} AND a.status = 'executing' AND a.id = h.id`),
      holdMs,
    );
  }

  /**
   * Pending and approved requests past their expiry become expired, each giving back its cap room with its status
   * change (in the unit's transaction `q`, or one of its own when something is due, as SQLite's expire does).
   */
  async expire(q?: Q): Promise<number> {
    const now = this.now();
    const run = async (tx: Q) => {
      const rows = await tx<{ cap_items: string }[]>`UPDATE approvals SET status = 'expired', updated_at = ${now}
        WHERE status IN ('pending', 'approved') AND expires_at <= ${now} RETURNING cap_items`;
      for (const r of rows) await releaseCapItems(tx, JSON.parse(r.cap_items) as CapItem[]);
      return rows.length;
    };
    if (q) return run(q);
    const due = await this.pg.sql`SELECT 1 FROM approvals
      WHERE status IN ('pending', 'approved') AND expires_at <= ${now} LIMIT 1`;
    return due.length ? ((await this.pg.sql.begin(run)) as number) : 0;
  }

  async get(id: string): Promise<ApprovalRow | undefined> {
    await this.expire();
    const [r] = await this.pg.sql<ApprovalRow[]>`SELECT * FROM approvals WHERE id = ${id}`;
    return r;
  }

  async findOpen(principal: string, tool: string, argsSha: string): Promise<ApprovalRow | undefined> {
    await this.expire();
    const [r] = await this.pg.sql<ApprovalRow[]>`SELECT * FROM approvals WHERE principal = ${principal}
      AND tool = ${tool} AND args_sha256 = ${argsSha} AND status IN ('pending', 'approved', 'executing')
      ORDER BY created_at DESC LIMIT 1`;
    return r;
  }

  /** Requests in these statuses (default pending), newest first. */
  async list(statuses: readonly ApprovalStatus[] = ['pending'], limit = 100): Promise<ApprovalRow[]> {
    await this.expire();
    if (!statuses.length) return [];
    const sql = this.pg.sql;
    return sql<ApprovalRow[]>`SELECT * FROM approvals WHERE status IN ${sql(statuses)}
      ORDER BY created_at DESC LIMIT ${limit}`;
  }

  /** The request a verification link names (only the token's hash is stored). */
  async byVerifyToken(token: string): Promise<ApprovalRow | undefined> {
    await this.expire();
    const [r] = await this.pg.sql<ApprovalRow[]>`SELECT * FROM approvals WHERE verify_hash = ${sha256(token)}`;
    return r;
  }

  /** How many requests each action class (tool × tier) has in each status, once past-due requests are expired. */
  async countsByClass(): Promise<ClassCount[]> {
    await this.expire();
    return this.pg.sql<ClassCount[]>`SELECT tool, tier, status, count(*)::INTEGER AS n FROM approvals
      GROUP BY tool, tier, status`;
  }

  async approvedReady(limit = 10): Promise<ApprovalRow[]> {
    return this.pg.sql<
      ApprovalRow[]
    >`SELECT * FROM approvals WHERE status = 'approved' ORDER BY decided_at LIMIT ${limit}`;
  }

  async orphanedExecuting(_now: number, limit = 10): Promise<ApprovalRow[]> {
    // Leases on the database's clock (leases.ts), whatever this replica's clock says.
    const rows = await this.pg.sql<(ApprovalRow & { db_now: number })[]>`
      SELECT *, itguard_now_ms() AS db_now FROM approvals WHERE status = 'executing' ORDER BY updated_at LIMIT 100`;
    return rows
      .filter((r) =>
        r.runner === this.owner
          ? (r.lease_until ?? 0) < r.db_now && !this.running.has(r.id)
          : !r.runner || (r.lease_until ?? 0) < r.db_now,
      )
      .slice(0, limit)
      .map(({ db_now: _n, ...r }) => r);
  }

  async create(t: Tx, a: NewApproval): Promise<{ row: ApprovalRow; verifyToken: string | undefined }> {
    const tx = txOf(t);
    const id = `REQ-${requestId()}`;
    const verifyToken = a.withVerifyLink ? randomBytes(24).toString('base64url') : undefined;
    const now = this.now();
    let capItems = a.capItems;
    if (capItems.length && a.idemKey !== undefined) {
      // The request takes the call's reservation over from its idempotency records, in this transaction; if they no
      // longer hold it for this call, neither does the request (it never gives back what it does not hold).
      const moved = await tx`UPDATE idempotency SET cap_items = NULL WHERE principal = ${a.principal}
        AND request_id = ${a.idemKey} AND state = 'in_flight' AND owner = ${this.owner} AND trace_id = ${a.traceId}
        AND cap_items IS NOT NULL RETURNING 1`;
      if (!moved.length) capItems = [];
    }
    const [row] = await tx<ApprovalRow[]>`
      INSERT INTO approvals (id, tier, principal, on_behalf_of, on_behalf_of_id, session_id, task_id, tool, args,
        args_sha256, summary, reason, target, caps, cap_items, idem_key, request_id, verify_hash, status, trace_id,
        created_at, expires_at, updated_at)
      VALUES (${id}, ${a.tier}, ${a.principal}, ${a.onBehalfOf ?? null}, ${a.onBehalfOfId ?? null},
        ${a.sessionId ?? null}, ${a.taskId ?? null}, ${a.tool}, ${JSON.stringify(a.args)}, ${a.argsSha}, ${a.summary},
        ${a.reason}, ${a.target ?? null}, ${JSON.stringify(a.caps)}, ${JSON.stringify(capItems)}, ${a.idemKey ?? null},
        ${a.requestId ?? null}, ${verifyToken ? sha256(verifyToken) : null}, 'pending', ${a.traceId}, ${now},
        ${now + a.ttlMs}, ${now})
      RETURNING *`;
    return { row: row!, verifyToken };
  }

  async decide(
    t: Tx,
    id: string,
    approve: boolean,
    actor: { name: string },
    note: string | undefined,
    refuse: (row: ApprovalRow) => RefusalReason | undefined = () => undefined,
  ): Promise<DecideResult> {
    const tx = txOf(t);
    await this.expire(tx);
    const [row] = await tx<ApprovalRow[]>`SELECT * FROM approvals WHERE id = ${id} FOR UPDATE`;
    if (!row) return { ok: false, reason: 'not_found' };
    if (row.status === 'expired') return { ok: false, reason: 'expired', row };
    if (row.status !== 'pending') return { ok: false, reason: 'not_pending', row };
    const refused = refuse(row);
    if (refused) return { ok: false, reason: refused, row };
    const now = this.now();
    const [after] = await tx<ApprovalRow[]>`UPDATE approvals SET status = ${approve ? 'approved' : 'denied'},
      decided_by = ${actor.name}, decided_at = ${now}, note = ${note ?? null}, updated_at = ${now}
      WHERE id = ${id} AND status = 'pending' RETURNING *`;
    if (!approve) await releaseCapItems(tx, JSON.parse(row.cap_items) as CapItem[]);
    return { ok: true, row: after! };
  }

  async claim(t: Tx, id: string, now: number, leaseMs: number): Promise<boolean> {
    const rows = await txOf(t)`UPDATE approvals SET status = 'executing', runner = ${this.owner},
      lease_until = itguard_now_ms() + ${this.holds.first(leaseMs)}, updated_at = ${now}
      WHERE id = ${id} AND status = 'approved' RETURNING 1`;
    return rows.length === 1 && this.holding(id, leaseMs);
  }

  async reclaim(t: Tx, row: ApprovalRow, now: number, leaseMs: number): Promise<boolean> {
    const rows = await txOf(t)`UPDATE approvals SET runner = ${this.owner},
      lease_until = itguard_now_ms() + ${this.holds.first(leaseMs)}, updated_at = ${now}
      WHERE id = ${row.id} AND status = 'executing' AND runner IS NOT DISTINCT FROM ${row.runner} RETURNING 1`;
    return rows.length === 1 && this.holding(row.id, leaseMs);
  }

  private holding(id: string, leaseMs: number): true {
    this.running.add(id);
    this.holds.add(id, leaseMs);
    return true;
  }

  letGo(id: string): void {
    this.running.delete(id);
    this.holds.delete(id);
  }

  async finish(
    t: Tx,
    id: string,
    status: 'succeeded' | 'failed',
    result: unknown,
    o: { nothingRan?: boolean } = {},
  ): Promise<void> {
    this.running.delete(id);
    this.holds.delete(id);
    const tx = txOf(t);
    const [changed] = await tx<{ cap_items: string }[]>`UPDATE approvals SET status = ${status},
      result = ${JSON.stringify(result)}, updated_at = ${this.now()} WHERE id = ${id} AND status = 'executing'
      RETURNING cap_items`;
    // Nothing ran: the cap room it reserved is given back, once, with the status change.
    if (changed && o.nothingRan) await releaseCapItems(tx, JSON.parse(changed.cap_items) as CapItem[]);
  }

  async newStateNonce(t: Tx, id: string): Promise<string> {
    const nonce = randomBytes(12).toString('base64url');
    await txOf(t)`UPDATE approvals SET state_nonce = ${nonce} WHERE id = ${id}`;
    return nonce;
  }

  async takeStateNonce(t: Tx, id: string, nonce: string): Promise<boolean> {
    const rows = await txOf(t)`UPDATE approvals SET state_nonce = NULL WHERE id = ${id} AND state_nonce = ${nonce}
      RETURNING 1`;
    return rows.length === 1;
  }

  /** The verification link is single use: cleared once a decision was made on its page. */
  async consumeVerifyLink(t: Tx, id: string): Promise<void> {
    await txOf(t)`UPDATE approvals SET verify_hash = NULL WHERE id = ${id}`;
  }

  async rotateVerifyLink(t: Tx, id: string): Promise<string> {
    const token = randomBytes(24).toString('base64url');
    await txOf(t)`UPDATE approvals SET verify_hash = ${sha256(token)} WHERE id = ${id}`;
    return token;
  }
}
