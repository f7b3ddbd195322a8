/**
 * The PostgreSQL adapter's unit runner and audit chain (store/ports/ AuditPort; DESIGN §5 "A call is two units of
 * work"). Each unit of work (store/unit.ts) runs in one transaction of its own (`sql.begin`, READ COMMITTED): its
 * operations in order with the transaction as their `tx`, then the unit's audit records, then COMMIT. Exactness under
 * concurrency comes from the operations themselves (conditional `UPDATE … WHERE … RETURNING`, `INSERT … ON
 * CONFLICT`, row locks), not from a serializing lock: two replicas' units only wait on each other where they touch
 * the same rows.
 *
 * The audit records a unit appends are staged while its operations run and written last, after one
 * `SELECT … FOR UPDATE` of the `audit_head` row: every unit takes the head lock last and holds it only for its own
 * insert and commit, so the head never takes part in a lock cycle with cap, budget or task rows, and the chain stays
 * one chain across replicas (the migration's trigger also refuses a record that does not continue the head).
 *
 * A unit that PostgreSQL rolls back with 40001 (serialization failure) or 40P01 (deadlock) is run again from its
 * start, operations included, with a short jittered backoff: operations are closures over their inputs, and each
 * run overwrites every operation's recorded value (UnitOfWork.runAsync), so only the committed run's values are
 * handed out (state an operation keeps outside the database, such as the approvals' set of requests this process
 * runs, is not rolled back: it only ever errs towards not treating a request as an orphan). Any other failure, and the last retryable one, rejects every operation of the unit: fail closed.
 * There is no group commit (units of concurrent calls commit in parallel on the pool), and `strict` needs nothing:
 * PostgreSQL's commit is durable (synchronous_commit on).
 */
import type { Sql, TransactionSql } from 'postgres';
import { config } from '../../config.js';
import { sha256 } from '../../canonical.js';
import { AuditKeyMismatch, KEY_FINGERPRINT, keyFingerprint } from '../audit-key.js';
import type { AuditPort } from '../ports/index.js';
import { UnitOfWork, type Tx } from '../unit.js';
import {
  GENESIS,
  auditRecord,
  chainLink,
  recordText,
  type AuditEvent,
  type AuditRow,
  type VerifyResult,
} from '../audit-chain.js';
import { PgAuditRead } from './audit-read.js';
import { type PgStore, toPgStoreError } from './connect.js';

/** The transaction handle a PostgreSQL unit's operations get. */
export const txOf = (tx: Tx): TransactionSql => tx as TransactionSql;

/** A query runner: the pool for reads, a unit's transaction for writes. */
export type Q = Sql | TransactionSql;

/**
 * A key as the PostgreSQL store keeps it. Task and scope keys join their parts with NUL (store/task-key.ts), which
 * PostgreSQL text cannot hold; `\` and NUL are escaped (`\\`, `\0`), so distinct keys stay distinct. Every
 * task_key and scope_key column holds keys in this form (`store copy` from SQLite must map them the same way).
 */
export const pgKey = (s: string): string => (/[\\\0]/.test(s) ? s.replace(/\\/g, '\\\\').replace(/\0/g, '\\0') : s);

/** The key `pgKey` stored, as the store's callers know it (the inverse of pgKey). */
export const unPgKey = (s: string): string =>
  s.includes('\\') ? s.replace(/\\(\\|0)/g, (_m, c: string) => (c === '0' ? '\0' : '\\')) : s;

/** What runs once the unit whose operation got `tx` has committed (the run that committed: a rerun's tx is new). */
const afterCommitHooks = new WeakMap<object, (() => void | Promise<void>)[]>();

/**
 * An operation's follow-up once its unit has committed, before the unit's operations resolve: a cached view of a row
 * the operation changed is brought up to date (the kill switch). Never run for a unit that rolled back, nor for a
 * transaction not committed by PgUnitRunner. A hook's failure is ignored (the unit has committed).
 */
export function afterCommit(tx: Tx, fn: () => void | Promise<void>): void {
  const t = tx as object;
  const hooks = afterCommitHooks.get(t) ?? [];
  hooks.push(fn);
  afterCommitHooks.set(t, hooks);
}

const RETRY_SQLSTATES = new Set(['40001', '40P01']);

/** Thrown by an operation that found the rows it decided on changed under it: the whole unit is run again. */
export class RerunUnit extends Error {
  readonly code = '40001';
  constructor(why: string) {
    super(`${why}; the unit of work is run again`);
  }
}

const AUDIT_COLUMNS = [
  'seq',
  'ts',
  'event',
  'trace_id',
  'actor',
  'session_id',
  'tool',
  'args',
  'args_sha256',
  'outcome',
  'code',
  'detail',
  'on_behalf_of',
  'task_id',
  'prev_hash',
  'hash',
] as const;

interface Staged {
  events: AuditEvent[];
  seqs: number[];
}

export interface PgRunnerOptions {
  /** The audit key (default ITGUARD_AUDIT_KEY). */
  key?: string | undefined;
  now?: () => number;
  /** Runs of one unit before a retryable failure is given up on (default 8). */
  attempts?: number;
}

export class PgUnitRunner implements AuditPort {
  private readonly staged = new WeakMap<object, Staged[]>();
  private readonly key: string | undefined;
  private readonly now: () => number;
  private keyChecked = false;
  /** The key check in progress: the first units of a process wait on one check, not one each. */
  private checking: Promise<void> | undefined;
  /** Units committed, and runs of units repeated after 40001/40P01 (tests and benchmarks read them). */
  commits = 0;
  retries = 0;

  constructor(
    readonly pg: PgStore,
    private readonly o: PgRunnerOptions = {},
  ) {
    this.key = o.key ?? config().auditKey;
    this.now = o.now ?? Date.now;
  }

  /** An operation of `unit` that appends audit records: staged now, written after the unit's other operations. */
  append(unit: UnitOfWork, events: AuditEvent[] | (() => AuditEvent[])): Promise<number[]> {
    if (Array.isArray(events) && events.some((e) => e.event === 'call.intent')) unit.strict = true;
    return unit.add((tx) => {
      const list = typeof events === 'function' ? events() : events;
      // Filled with the records' seqs when they are written, at the end of this run of the unit.
      const seqs: number[] = [];
      if (list.length) {
        const t = tx as object;
        const staged = this.staged.get(t) ?? [];
        staged.push({ events: list, seqs });
        this.staged.set(t, staged);
      }
      return seqs;
    });
  }

  record(event: AuditEvent, strict = false): Promise<void> {
    const u = new UnitOfWork('single');
    u.strict = strict || event.event === 'call.intent';
    const p = this.append(u, [event]);
    return this.commit(u).then(() => p.then(() => undefined));
  }

  async commit(unit: UnitOfWork): Promise<void> {
    unit.take();
    const attempts = this.o.attempts ?? 8;
    let committed: object | undefined;
    try {
      if (!this.keyChecked) await (this.checking ??= this.checkKey().finally(() => (this.checking = undefined)));
      for (let attempt = 1; ; attempt++) {
        try {
          await this.pg.sql.begin(async (tx) => {
            committed = tx;
            await unit.runAsync(tx);
            const staged = this.staged.get(tx);
            if (staged?.length) await this.write(tx, staged);
          });
          break;
        } catch (e) {
          const code = (e as { code?: unknown } | null)?.code;
          if (typeof code !== 'string' || !RETRY_SQLSTATES.has(code) || attempt >= attempts) throw e;
          this.retries++;
          await new Promise((r) => setTimeout(r, Math.random() * 2 * 2 ** attempt));
        }
      }
    } catch (e) {
      // A store failure becomes a PgStoreError; an operation's own error (a refusal it throws) stays as it is.
      const err = typeof (e as { code?: unknown } | null)?.code === 'string' ? toPgStoreError(this.pg.target, e) : e;
      unit.failed(err);
      throw err;
    }
    this.commits++;
    for (const hook of (committed && afterCommitHooks.get(committed)) || [])
      await Promise.resolve()
        .then(hook)
        .catch(() => undefined);
    unit.done();
  }

  /** Writes the staged records after the head: locked, so every replica extends the one chain in turn. */
  private async write(tx: TransactionSql, staged: Staged[]): Promise<void> {
    const [head] = await tx<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`;
    if (!head) throw new Error('audit_head row missing: the PostgreSQL store was not migrated');
    let seq = head.seq;
    let prev = head.hash;
    const rows: AuditRow[] = [];
    for (const s of staged)
      for (const e of s.events) {
        seq += 1;
        const r = auditRecord(e, seq, this.now);
        const hash = chainLink(this.key, prev, recordText(r));
        rows.push({ ...r, prev_hash: prev, hash });
        prev = hash;
        s.seqs.push(seq);
      }
    await tx`INSERT INTO audit ${tx(rows, ...AUDIT_COLUMNS)}`;
  }

  /**
   * Checks this process's key against the chain's fingerprint once (as AuditStore.checkKey): a new chain records it,
   * a chain without one is told by its head; another key, or none, is refused before anything is appended.
   */
  async checkKey(): Promise<void> {
    if (this.keyChecked) return;
    const mine = keyFingerprint(this.key);
    try {
      await this.pg.sql.begin(async (tx) => {
        await tx`SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`;
        const [m] = await tx<{ value: string }[]>`SELECT value FROM meta WHERE key = ${KEY_FINGERPRINT}`;
        let chain = m?.value;
        if (chain === undefined) {
          const [head] = await tx<AuditRow[]>`SELECT * FROM audit ORDER BY seq DESC LIMIT 1`;
          // Security: an existing chain tells which key it was linked with only by verifying under it.
          if (head && chainLink(this.key, head.prev_hash, recordText(head)) !== head.hash)
            chain = sha256(head.prev_hash + recordText(head)) === head.hash ? 'none' : 'keyed';
          else await tx`INSERT INTO meta (key, value) VALUES (${KEY_FINGERPRINT}, ${mine}) ON CONFLICT DO NOTHING`;
        }
        if (chain !== undefined && chain !== mine) throw new AuditKeyMismatch(chain, mine);
      });
    } catch (e) {
      if (e instanceof AuditKeyMismatch) throw e;
      throw toPgStoreError(this.pg.target, e);
    }
    this.keyChecked = true;
  }

  async head(): Promise<{ seq: number; hash: string }> {
    const [h] = await this.pg.sql<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1`;
    return h ?? { seq: 0, hash: GENESIS };
  }

  /** `audit verify` on this store: the chain recomputed from its first record, read in batches (audit-read.ts). */
  verify(o: { expectHead?: { seq: number; hash: string } } = {}): Promise<VerifyResult> {
    return new PgAuditRead(this.pg, { key: this.key }).verify(o);
  }
}
