/**
 * Idempotency records on PostgreSQL (IdempotencyPort), with sqlite/idempotency-store.ts's decisions. A key is
 * claimed by `INSERT … ON CONFLICT (principal, key) DO UPDATE … WHERE <the stored record has expired> RETURNING`:
 * exactly one of any number of concurrent begins on one key gets a row back (new), the others find the row it wrote
 * (locked, so they read it once its unit has committed) and answer in_progress, replay or conflict. The action's
 * dedupe record is claimed the same way after the key's. Runner liveness is the lease alone: `owner` names the
 * replica process (host:pid:nonce), but a process id means nothing on another host, so a record in flight is an
 * orphan exactly when its lease has ended.
 *
 * Leases are short and renewed (leases.ts): a begin holds its records for `min(the call's lease, holdMs)` on the
 * database's clock, and this replica renews what it still runs every third of that, up to the call's own lease. A
 * replica that dies (kill -9, a lost host) stops renewing, so a retry on another replica finds its records orphaned
 * within `holdMs` (default 15 s), not after the call's whole timeout; one that is alive keeps them however long its
 * call runs. Every lease is set and compared on `itguard_now_ms()`, so replicas' clocks do not matter.
 */
import type { BeginInput, BeginResult, IdemRow } from '../ports/types.js';
import type { IdempotencyPort } from '../ports/index.js';
import type { Tx } from '../unit.js';
import type { PgStore } from './connect.js';
import { Holds } from './leases.js';
import { RerunUnit, txOf, type Q } from './runner.js';

type LiveRow = IdemRow & { db_now: number };

export class PgIdempotency implements IdempotencyPort {
  private lastPrune = 0;
  /** The requests this replica runs: their records' leases are renewed until they end. */
  readonly holds: Holds;
  constructor(
    private readonly pg: PgStore,
    private readonly owner: string,
    holdMs?: number,
  ) {
    this.holds = new Holds(
      async (ids, ms) =>
        void (await this.pg.sql`UPDATE idempotency i SET lease_until = itguard_now_ms() + h.ms
          FROM unnest(${ids}::text[], ${ms}::bigint[]) AS h(id, ms)
          WHERE i.owner = ${this.owner} AND i.state = 'in_flight' AND i.request_id = h.id`),
      holdMs,
    );
  }

  private async row(q: Q, principal: string, key: string): Promise<LiveRow | undefined> {
    const [r] = await q<LiveRow[]>`
      SELECT *, itguard_now_ms() AS db_now FROM idempotency WHERE principal = ${principal} AND key = ${key} FOR UPDATE`;
    return r;
  }

  /**
   * Claims `key` for a new request when it is free (no record, or an expired one, or — for the dedupe record — one of
   * another action): the record is (re)written as a fresh in-flight one, cap_items cleared (as SQLite's INSERT OR
   * REPLACE). Returns false, having written nothing, when a live record holds the key.
   */
  private async claim(q: Q, i: BeginInput, requestId: string, key: string, explicit: boolean, ttlMs: number) {
    const rows = await q`
      INSERT INTO idempotency (principal, key, explicit, tool, args_sha256, request_id, state, result, trace_id, owner,
        lease_until, created_at, updated_at, expires_at, cap_items)
      VALUES (${i.principal}, ${key}, ${explicit ? 1 : 0}, ${i.tool}, ${i.argsSha}, ${requestId}, 'in_flight', NULL,
        ${i.traceId}, ${this.owner}, itguard_now_ms() + ${this.holds.first(i.leaseMs)}, ${i.now}, ${i.now},
        ${i.now + ttlMs}, NULL)
      ON CONFLICT (principal, key) DO UPDATE SET explicit = EXCLUDED.explicit, tool = EXCLUDED.tool,
        args_sha256 = EXCLUDED.args_sha256, request_id = EXCLUDED.request_id, state = 'in_flight', result = NULL,
        trace_id = EXCLUDED.trace_id, owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until,
        created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at,
        cap_items = NULL
      WHERE idempotency.expires_at <= ${i.now}
        OR (${key !== i.key}::BOOLEAN AND NOT (idempotency.tool = EXCLUDED.tool AND idempotency.args_sha256 = EXCLUDED.args_sha256))
      RETURNING 1`;
    return rows.length > 0;
  }

  async begin(t: Tx, i: BeginInput): Promise<BeginResult> {
    this.maybePrune(i.now);
    const tx = txOf(t);
    // New, or an expired record being reused: a fresh request id so the backend sees a new request.
    const requestId = `${i.principal}:${i.key}:${i.now.toString(36)}`;
    if (!(await this.claim(tx, i, requestId, i.key, i.explicit, i.ttlMs))) {
      const row = await this.row(tx, i.principal, i.key);
      // Deleted between the claim and the read (freed by its owner): decide again from the start.
      if (!row || row.expires_at <= i.now) throw new RerunUnit(`idempotency key ${i.key} changed while it was read`);
      if (row.tool !== i.tool || row.args_sha256 !== i.argsSha) return { kind: 'conflict', row: strip(row) };
      if (row.state !== 'in_flight') return { kind: 'replay', row };
      return this.inFlight(row);
    }
    if (i.dedupeKey === undefined || i.dedupeKey === i.key) return this.held(requestId, i.leaseMs);
    if (await this.claim(tx, i, requestId, i.dedupeKey, false, i.dedupeTtlMs)) return this.held(requestId, i.leaseMs);
    // Security: the same action under another key (or none) inside the dedupe window is that action again.
    const d = await this.row(tx, i.principal, i.dedupeKey);
    if (!d) throw new RerunUnit(`dedupe record of ${i.key} changed while it was read`);
    if (d.state !== 'in_flight') {
      // This key now names the completed action too, for its own 24 h.
      await tx`UPDATE idempotency SET explicit = 1, request_id = ${d.request_id}, state = ${d.state},
                 result = ${d.result}, trace_id = ${d.trace_id}, owner = ${this.owner}, lease_until = 0,
                 created_at = ${i.now}, updated_at = ${d.updated_at}, expires_at = ${i.now + i.ttlMs}, cap_items = NULL
               WHERE principal = ${i.principal} AND key = ${i.key}`;
      return { kind: 'replay', row: strip(d) };
    }
    // Nothing of this begin stays: the key's record just written goes (a key that held only an expired record).
    await tx`DELETE FROM idempotency WHERE principal = ${i.principal} AND key = ${i.key}`;
    return this.inFlight(d);
  }

  /** A new request this replica runs: its lease is renewed until it finishes, is freed or parked. */
  private held(requestId: string, leaseMs: number): BeginResult {
    this.holds.add(requestId, leaseMs);
    return { kind: 'new', requestId };
  }

  private inFlight({ db_now, ...row }: LiveRow): BeginResult {
    if (row.owner.startsWith('approval:'))
      return { kind: 'parked', row, approvalId: row.owner.slice('approval:'.length) };
    // Leases, not process ids: an ended lease means nobody is running it, on this replica or any other.
    if (row.lease_until < db_now) return { kind: 'orphan', row };
    return { kind: 'in_progress', row };
  }

  // Security: `from` is the trace of the attempt the caller saw die; of two retries that recovered the same orphan
  // at once exactly one adopts it (the other's conditional update finds the trace changed).
  async adopt(
    t: Tx,
    principal: string,
    requestId: string,
    traceId: string,
    now: number,
    leaseMs: number,
    from: string,
  ) {
    // leaseMs < 0 ends the lease at once (the next retry asks the backend); else held and renewed as a begin's.
    const rows = await txOf(t)`
      UPDATE idempotency SET owner = ${this.owner}, trace_id = ${traceId},
        lease_until = itguard_now_ms() + ${leaseMs < 0 ? leaseMs : this.holds.first(leaseMs)}, updated_at = ${now}
      WHERE principal = ${principal} AND request_id = ${requestId} AND state = 'in_flight' AND trace_id = ${from}
      RETURNING 1`;
    if (rows.length > 0 && leaseMs > 0) this.holds.add(requestId, leaseMs);
    return rows.length > 0;
  }

  async finish(
    t: Tx,
    principal: string,
    requestId: string,
    state: 'completed' | 'failed',
    result: unknown,
    now: number,
  ) {
    this.holds.delete(requestId);
    await txOf(t)`UPDATE idempotency SET state = ${state}, result = ${JSON.stringify(result)}, updated_at = ${now},
                    lease_until = 0 WHERE principal = ${principal} AND request_id = ${requestId}`;
  }

  async park(t: Tx, principal: string, requestId: string, approvalId: string, until: number, now: number) {
    this.holds.delete(requestId);
    await txOf(t)`UPDATE idempotency SET owner = ${`approval:${approvalId}`}, lease_until = ${until},
                    expires_at = greatest(expires_at, ${until}), updated_at = ${now}
                  WHERE principal = ${principal} AND request_id = ${requestId} AND state = 'in_flight'`;
  }

  async unpark(t: Tx, principal: string, requestId: string, approvalId: string) {
    await txOf(t)`DELETE FROM idempotency WHERE principal = ${principal} AND request_id = ${requestId}
                    AND state = 'in_flight' AND owner = ${`approval:${approvalId}`}`;
  }

  async free(t: Tx, principal: string, requestId: string) {
    this.holds.delete(requestId);
    await txOf(t)`DELETE FROM idempotency WHERE principal = ${principal} AND request_id = ${requestId}
                    AND state = 'in_flight' AND owner = ${this.owner}`;
  }

  private maybePrune(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    this.pg.sql`DELETE FROM idempotency WHERE expires_at < ${now} AND state != 'in_flight'`.then(
      () => undefined,
      () => undefined,
    );
  }
}

/** The row without the database clock the read carried. */
const strip = ({ db_now: _n, ...row }: LiveRow): IdemRow => row;
