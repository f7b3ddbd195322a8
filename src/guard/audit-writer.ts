/**
 * Group commit for the audit: records from concurrent calls that arrive within `windowMs` of the first one are
 * appended in one IMMEDIATE transaction (one fsync under durability strict). `record()` resolves only once its
 * transaction has committed, so awaiting an intent means it is durable before the side effect starts. A full
 * batch is written at once. The window trades up to `windowMs` of latency for far fewer fsyncs under load.
 *
 * `commit(tail)` is how a call writes everything it leaves behind in one go: its outcome record and the state
 * changes that go with it (the idempotency record's result, the budget settle), queued by the steps while the call
 * unwinds (`CallTail`, filled through `afterCall`) and written in the same batch transaction, so the records of a
 * call after its side effect cost one share of one commit instead of three transactions.
 * Each unit (a record, or a call's tail) runs in its own savepoint: one that fails rejects its own promise and
 * leaves the batch's other units as they were.
 */
import type { AuditEvent, AuditStore } from '../store/audit-store.js';
import { immediate, relaxed } from '../store/db.js';
import type { Call } from './types.js';

/** What a call writes after its side effect, in one unit: audit records, then state changes, in queue order. */
export interface CallTail {
  events: AuditEvent[];
  writes: (() => void)[];
  /**
   * Commit with an fsync: set by the audit step for the outcome of a write whose effect started. An embedded
   * backend's effect committed without one (`effectCommit` in store/db.ts) is on disk once this unit's batch is.
   */
  strict?: boolean;
}

interface Pending extends CallTail {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class AuditWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly unit;
  constructor(
    readonly store: AuditStore,
    private readonly windowMs = 2,
    private readonly maxBatch = 256,
  ) {
    // Called inside the batch's transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.unit = store.db.transaction((p: CallTail) => {
      if (p.events.length) store.appendInTx(p.events);
      for (const w of p.writes) w();
    });
  }

  /** `strict`: the batch is committed with an fsync even without an intent in it (see CallTail.strict). */
  record(event: AuditEvent, strict = false): Promise<void> {
    return this.commit({ events: [event], writes: [], strict });
  }

  /** Writes a call's tail (records and state changes) in the next batch; resolves once it has committed. */
  commit(tail: CallTail): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...tail, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setTimeout(() => this.flush(), this.windowMs);
      }
    });
  }

  private flush(): void {
    if (!this.queue.length) return;
    const batch = this.queue;
    this.queue = [];
    this.scheduled = false;
    const failed = new Map<Pending, unknown>();
    const write = () =>
      immediate(this.store.db, () => {
        for (const p of batch) {
          try {
            this.unit(p);
          } catch (e) {
            failed.set(p, e);
          }
        }
      });
    try {
      // Security: a batch holding an intent commits strictly (on disk before its side effect starts), and so does
      // one holding the outcome of an effect (which makes an embedded effect durable before its result is returned);
      // other records (denials, read outcomes) and tails need no fsync of their own — the next strict commit carries them.
      if (batch.some((p) => p.strict || p.events.some((e) => e.event === 'call.intent'))) write();
      else relaxed(this.store.db, write);
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    for (const p of batch) {
      if (failed.has(p)) p.reject(failed.get(p));
      else p.resolve();
    }
  }
}

/**
 * A write that belongs to a call's tail: queued while the budget step holds the tail open (it commits the tail
 * when the call ends), written at once otherwise (a request the executor runs has no tail).
 */
export function afterCall(call: Call, write: () => void): void {
  const tail = call.state.tail;
  if (tail) tail.writes.push(write);
  else write();
}
