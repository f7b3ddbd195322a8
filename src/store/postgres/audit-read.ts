/**
 * The audit chain read on PostgreSQL (AuditReadPort; the writes are PgUnitRunner's, runner.ts): `itguard audit
 * tail/show/verify/export`, the admin API, the console, `drill` and `report`. Rows come back exactly as the SQLite
 * adapter returns them (sqlite/audit-store.ts AuditRow: the same keys in the same order, BIGINT read as numbers,
 * `args` and `detail` the canonical JSON text the runner stored, NULL as null), so both stores print the same.
 *
 * The whole chain (`all`, `verify`) is read in batches by seq (`WHERE seq > last ORDER BY seq LIMIT n`), each batch
 * its own short statement on the pool: a million-row chain is never held in memory, no connection is held between
 * batches, and no batch runs into the statement timeout. The walk stops at the last seq there was when it started,
 * as SQLite's single statement reads the chain as it was then: records appended meanwhile are left for the next run.
 * Verification applies sqlite/audit-store.ts's rules (ChainVerifier) with the key of ITGUARD_AUDIT_KEY and the
 * fingerprint the chain records in `meta`.
 */
import { config } from '../../config.js';
import { KEY_FINGERPRINT } from '../audit-key.js';
import type { AuditReadPort } from '../ports/index.js';
import {
  ChainVerifier,
  GENESIS,
  type AuditRow,
  type CallRecord,
  type ConfirmCount,
  type VerifyResult,
} from '../audit-chain.js';
import type { PgStore } from './connect.js';

export interface PgAuditReadOptions {
  /** The audit key (default ITGUARD_AUDIT_KEY). */
  key?: string | undefined;
  /** Records per batch when reading the whole chain (default 1000). */
  batch?: number;
}

/** A stored record as AuditRow, its keys in the SQLite table's column order. */
const toRow = (r: AuditRow): AuditRow => ({
  seq: r.seq,
  ts: r.ts,
  event: r.event,
  trace_id: r.trace_id,
  actor: r.actor,
  session_id: r.session_id,
  tool: r.tool,
  args: r.args,
  args_sha256: r.args_sha256,
  outcome: r.outcome,
  code: r.code,
  detail: r.detail,
  prev_hash: r.prev_hash,
  hash: r.hash,
  on_behalf_of: r.on_behalf_of,
  task_id: r.task_id,
});

export class PgAuditRead implements AuditReadPort {
  private readonly key: string | undefined;
  private readonly batch: number;

  constructor(
    private readonly pg: PgStore,
    o: PgAuditReadOptions = {},
  ) {
    this.key = o.key ?? config().auditKey;
    this.batch = Math.max(1, o.batch ?? 1000);
  }

  /** The last record's seq and hash (GENESIS on an empty chain), as SQLite's head reads the table. */
  async head(): Promise<{ seq: number; hash: string }> {
    const [h] = await this.pg.sql<
      { seq: number; hash: string }[]
    >`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`;
    return h ? { seq: h.seq, hash: h.hash } : { seq: 0, hash: GENESIS };
  }

  async tail(limit: number): Promise<AuditRow[]> {
    const rows = await this.pg.sql<AuditRow[]>`SELECT * FROM audit ORDER BY seq DESC LIMIT ${limit}`;
    return rows.map(toRow).reverse();
  }

  async byTrace(traceId: string): Promise<AuditRow[]> {
    const rows = await this.pg.sql<AuditRow[]>`SELECT * FROM audit WHERE trace_id = ${traceId} ORDER BY seq`;
    return rows.map(toRow);
  }

  /** One task's records in order: its calls, refusals and decisions, as a trace (`audit show --task`). */
  async byTask(taskId: string, limit = 10_000): Promise<AuditRow[]> {
    const rows = await this.pg.sql<
      AuditRow[]
    >`SELECT * FROM audit WHERE task_id = ${taskId} ORDER BY seq LIMIT ${limit}`;
    return rows.map(toRow);
  }

  /** The most recent record of `event` (e.g. the last `drill`), if there is one. */
  async lastEvent(event: string): Promise<AuditRow | undefined> {
    const [r] = await this.pg.sql<AuditRow[]>`SELECT * FROM audit WHERE event = ${event} ORDER BY seq DESC LIMIT 1`;
    return r && toRow(r);
  }

  /**
   * Call outcomes and denials recorded from `from` to `to` (ms, inclusive), leaving out calls of `exceptTool`; in
   * chain order.
   */
  async callRecordsBetween(from: number, to: number, exceptTool: string): Promise<CallRecord[]> {
    const rows = await this.pg.sql<CallRecord[]>`SELECT event, outcome, code, detail FROM audit
      WHERE ts >= ${from} AND ts <= ${to} AND event IN ('call.outcome', 'call.denied')
      AND coalesce(tool, '') <> ${exceptTool} ORDER BY seq`;
    return rows.map((r) => ({ event: r.event, outcome: r.outcome, code: r.code, detail: r.detail }));
  }

  /** Confirm-tier decisions: the number of `approval.confirmed` and `approval.declined` records per tool. */
  async confirmCounts(): Promise<ConfirmCount[]> {
    const rows = await this.pg.sql<ConfirmCount[]>`SELECT tool, event, count(*) AS n FROM audit
      WHERE event IN ('approval.confirmed', 'approval.declined')
      GROUP BY tool, event ORDER BY tool COLLATE "C", event COLLATE "C"`;
    return rows.map((r) => ({ tool: r.tool, event: r.event, n: r.n }));
  }

  /** Every record in chain order, read in batches up to the last seq there was at the start. */
  async *all(): AsyncIterableIterator<AuditRow> {
    const [end] = await this.pg.sql<{ seq: number | null }[]>`SELECT max(seq) AS seq FROM audit`;
    const last = end?.seq ?? 0;
    let after = 0;
    while (after < last) {
      const rows = await this.pg.sql<AuditRow[]>`SELECT * FROM audit WHERE seq > ${after} AND seq <= ${last}
        ORDER BY seq LIMIT ${this.batch}`;
      if (!rows.length) return;
      for (const r of rows) yield toRow(r);
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * `audit verify`: the chain recomputed from its first record, streamed (AuditStore.verify's rules: the first
   * link that does not hold, a key that is not the chain's, and with `expectHead` a truncated or rewritten chain).
   */
  async verify(o: { expectHead?: { seq: number; hash: string } } = {}): Promise<VerifyResult> {
    const [m] = await this.pg.sql<{ value: string }[]>`SELECT value FROM meta WHERE key = ${KEY_FINGERPRINT}`;
    const v = new ChainVerifier(this.key, m?.value, o);
    for await (const row of this.all()) if (!v.push(row)) break;
    return v.end();
  }
}
