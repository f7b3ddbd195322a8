/**
 * The SQLite adapter's unit committer, with group commit: units of work (store/unit.ts) from concurrent calls that
 * arrive within `windowMs` of the first one are committed in one IMMEDIATE transaction (one write lock, one fsync
 * under durability strict), each unit in its own savepoint, so a unit that fails rolls back alone and rejects its
 * own operations while the batch's other units commit. `commit()` resolves only once its transaction has
 * committed, so awaiting an admission that holds an intent means the intent is durable before the side effect.
 * A full batch is written at once. The window trades up to `windowMs` of latency for far fewer lock takes and
 * fsyncs under load.
 *
 * A batch commits strictly (fsync) when any unit in it asks to (`UnitOfWork.strict`: an audit intent, the outcome of
 * an effect that started); otherwise relaxed, and the next strict commit carries it (WAL frames are ordered).
 */
import type { AuditEvent, AuditStore } from './audit-store.js';
import { immediate, relaxed } from './db.js';
import { UnitOfWork } from '../unit.js';
import type { AuditPort } from '../ports/index.js';

interface Pending {
  unit: UnitOfWork;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class AuditWriter implements AuditPort {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly savepoint;
  /** Transactions this writer has committed (tests count them: a guarded write is two units, DESIGN §9). */
  commits = 0;
  constructor(
    readonly store: AuditStore,
    private readonly windowMs = 2,
    private readonly maxBatch = 256,
  ) {
    // Called inside the batch's transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.savepoint = store.db.transaction((u: UnitOfWork) => u.runSync(undefined));
  }

  /** One audit record, in the next batch (`strict`: committed with an fsync). */
  record(event: AuditEvent, strict = false): Promise<void> {
    const u = new UnitOfWork('single');
    u.strict = strict || event.event === 'call.intent';
    const p = this.append(u, [event]);
    return this.commit(u).then(() => p.then(() => undefined));
  }

  /**
   * An operation of `unit` that appends audit records (their seqs once the unit has committed). A function gives
   * the records decided inside the transaction (none: nothing is appended); its caller says whether it is strict.
   */
  append(unit: UnitOfWork, events: AuditEvent[] | (() => AuditEvent[])): Promise<number[]> {
    if (Array.isArray(events) && events.some((e) => e.event === 'call.intent')) unit.strict = true;
    return unit.add(() => {
      const list = typeof events === 'function' ? events() : events;
      return list.length ? this.store.appendInTx(list) : [];
    });
  }

  /** Commits `unit` in the next batch; resolves once it has committed, rejects if it was rolled back. */
  commit(unit: UnitOfWork): Promise<void> {
    unit.take();
    return new Promise((resolve, reject) => {
      this.queue.push({ unit, resolve, reject });
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
            this.savepoint(p.unit);
          } catch (e) {
            failed.set(p, e);
          }
        }
      });
    try {
      // Security: a batch holding an intent commits strictly (on disk before its side effect starts), and so does
      // one holding the outcome of an effect; other units need no fsync of their own.
      if (batch.some((p) => p.unit.strict)) write();
      else relaxed(this.store.db, write);
      this.commits++;
    } catch (e) {
      for (const p of batch) {
        p.unit.failed(e);
        p.reject(e);
      }
      return;
    }
    for (const p of batch) {
      if (failed.has(p)) {
        p.unit.failed(failed.get(p));
        p.reject(failed.get(p));
      } else {
        p.unit.done();
        p.resolve();
      }
    }
  }
}
