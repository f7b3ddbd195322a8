/**
 * The tamper-evident audit: an append-only table (UPDATE/DELETE refused by trigger) whose rows form a hash
 * chain, hash = SHA-256(prev_hash ‖ canonical record), or HMAC-SHA-256 keyed with ITGUARD_AUDIT_KEY when set.
 * Appends run in BEGIN IMMEDIATE so several processes on one file extend one chain.
 */
import { config } from '../../config.js';
import { sha256 } from '../../canonical.js';
import { immediate, type Db } from './db.js';
import { MetaStore } from './meta-store.js';
import {
  AuditKeyMismatch,
  auditRecord,
  chainLink,
  ChainVerifier,
  GENESIS,
  KEY_FINGERPRINT,
  keyFingerprint,
  MAX_ARGS_CHARS,
  MAX_ARGS_DEPTH,
  parseHead,
  recordText,
  verifyChain,
  type AuditEvent,
  type AuditRow,
  type CallRecord,
  type ConfirmCount,
  type VerifyResult,
} from '../audit-chain.js';

export { AuditKeyMismatch, auditRecord, chainLink, ChainVerifier, GENESIS, KEY_FINGERPRINT, keyFingerprint };
export { MAX_ARGS_CHARS, MAX_ARGS_DEPTH, parseHead, recordText, verifyChain };
export type { AuditEvent, AuditRow, CallRecord, ConfirmCount, VerifyResult };

export class AuditStore {
  private readonly insert;
  private readonly last;
  private readonly meta;
  /** Set once this process's key has been checked against the chain's fingerprint. */
  private keyChecked = false;
  constructor(
    readonly db: Db,
    private readonly key: string | undefined = config().auditKey,
    private readonly now: () => number = Date.now,
  ) {
    this.insert = db.prepare(
      `INSERT INTO audit (seq, ts, event, trace_id, actor, session_id, tool, args, args_sha256, outcome, code, detail, on_behalf_of, task_id, prev_hash, hash)
       VALUES (@seq, @ts, @event, @trace_id, @actor, @session_id, @tool, @args, @args_sha256, @outcome, @code, @detail, @on_behalf_of, @task_id, @prev_hash, @hash)`,
    );
    this.last = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
    this.meta = new MetaStore(db);
  }

  /**
   * Checks this process's key against the chain's fingerprint, recording it for a new chain (and for a chain made
   * before fingerprints, once its head verifies under this key). Throws AuditKeyMismatch otherwise. Run at open by
   * `serve` and before the first append of every process; later appends skip it.
   */
  checkKey(): void {
    if (this.keyChecked) return;
    immediate(this.db, () => {
      const mine = keyFingerprint(this.key);
      let chain = this.meta.get(KEY_FINGERPRINT);
      if (chain === undefined) {
        const head = this.db.prepare<[], AuditRow>('SELECT * FROM audit ORDER BY seq DESC LIMIT 1').get();
        // Security: an existing chain tells which key it was linked with only by verifying under it.
        if (head && this.link(head.prev_hash, recordText(head)) !== head.hash)
          chain = sha256(head.prev_hash + recordText(head)) === head.hash ? 'none' : 'keyed';
        else this.meta.set(KEY_FINGERPRINT, mine);
      }
      // Security: a link under another key (or none) could never be verified: refuse before appending it.
      if (chain !== undefined && chain !== mine) throw new AuditKeyMismatch(chain, mine);
    });
    this.keyChecked = true;
  }

  /** The fingerprint the chain records (`none` unkeyed), or undefined before the first append of this version. */
  chainKeyFingerprint(): string | undefined {
    return this.meta.get(KEY_FINGERPRINT);
  }

  private link(prev: string, text: string): string {
    return chainLink(this.key, prev, text);
  }

  /** Appends events in one transaction (one fsync for the group) and returns their seqs. */
  append(...events: AuditEvent[]): number[] {
    return immediate(this.db, () => this.appendInTx(events));
  }

  /** For callers already inside an IMMEDIATE transaction (so the audit row commits with their state change). */
  appendInTx(events: AuditEvent[]): number[] {
    if (!this.keyChecked) this.checkKey();
    const head = this.last.get();
    let prev = head?.hash ?? GENESIS;
    let seq = head?.seq ?? 0;
    const seqs: number[] = [];
    for (const e of events) {
      seq += 1;
      const row = auditRecord(e, seq, this.now);
      const hash = this.link(prev, recordText(row));
      this.insert.run({ ...row, prev_hash: prev, hash });
      prev = hash;
      seqs.push(seq);
    }
    return seqs;
  }

  head(): { seq: number; hash: string } {
    return this.last.get() ?? { seq: 0, hash: GENESIS };
  }

  tail(limit: number): AuditRow[] {
    return this.db.prepare<[number], AuditRow>('SELECT * FROM audit ORDER BY seq DESC LIMIT ?').all(limit).reverse();
  }

  byTrace(traceId: string): AuditRow[] {
    return this.db.prepare<[string], AuditRow>('SELECT * FROM audit WHERE trace_id = ? ORDER BY seq').all(traceId);
  }

  /** One task's records in order: its calls, refusals and decisions, as a trace (`audit show --task`). */
  byTask(taskId: string, limit = 10_000): AuditRow[] {
    return this.db
      .prepare<[string, number], AuditRow>('SELECT * FROM audit WHERE task_id = ? ORDER BY seq LIMIT ?')
      .all(taskId, limit);
  }

  /** The most recent record of `event` (e.g. the last `drill`), if there is one. */
  lastEvent(event: string): AuditRow | undefined {
    return this.db
      .prepare<[string], AuditRow>('SELECT * FROM audit WHERE event = ? ORDER BY seq DESC LIMIT 1')
      .get(event);
  }

  /**
   * Call outcomes and denials recorded from `from` to `to` (ms, inclusive), leaving out calls of `exceptTool`; in
   * chain order.
   */
  callRecordsBetween(from: number, to: number, exceptTool: string): CallRecord[] {
    return this.db
      .prepare<[number, number, string], CallRecord>(
        "SELECT event, outcome, code, detail FROM audit WHERE ts >= ? AND ts <= ? AND event IN ('call.outcome', 'call.denied') AND coalesce(tool, '') != ? ORDER BY seq",
      )
      .all(from, to, exceptTool);
  }

  /** Confirm-tier decisions: the number of `approval.confirmed` and `approval.declined` records per tool. */
  confirmCounts(): ConfirmCount[] {
    return this.db
      .prepare<[], ConfirmCount>(
        "SELECT tool, event, count(*) AS n FROM audit WHERE event IN ('approval.confirmed', 'approval.declined') GROUP BY tool, event",
      )
      .all();
  }

  *iterate(): IterableIterator<AuditRow> {
    yield* this.db.prepare<[], AuditRow>('SELECT * FROM audit ORDER BY seq').iterate();
  }

  count(where = '1=1', ...params: unknown[]): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM audit WHERE ${where}`).get(...params) as { n: number }).n;
  }

  /**
   * Recomputes the chain from the first record; reports the first link that does not hold. With `expectHead` (a head
   * anchored elsewhere earlier), the chain must also reach that seq and hold that hash there: a truncated tail or a
   * rewritten chain that verifies on its own still fails.
   */
  verify(o: { expectHead?: { seq: number; hash: string } } = {}): VerifyResult {
    return verifyChain(this.iterate(), this.key, this.chainKeyFingerprint(), o);
  }
}
