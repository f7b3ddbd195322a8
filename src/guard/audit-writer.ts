/**
 * Group commit for the audit: records from concurrent calls that arrive within `windowMs` of the first one are
 * appended in one IMMEDIATE transaction (one fsync under durability strict). `record()` resolves only once its
 * transaction has committed, so awaiting an intent means it is durable before the side effect starts. A full
 * batch is written at once. The window trades up to `windowMs` of latency for far fewer fsyncs under load.
 */
import type { AuditEvent, AuditStore } from '../store/audit-store.js';
import { relaxed } from '../store/db.js';

interface Pending {
  event: AuditEvent;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class AuditWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  constructor(
    readonly store: AuditStore,
    private readonly windowMs = 2,
    private readonly maxBatch = 256,
  ) {}

  record(event: AuditEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ event, resolve, reject });
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
    try {
      const events = batch.map((p) => p.event);
      // Security: a batch holding an intent commits strictly (on disk before its side effect starts); other
      // records (outcomes, denials) need no fsync of their own — the next strict commit carries them.
      if (events.some((e) => e.event === 'call.intent')) this.store.append(...events);
      else relaxed(this.store.db, () => this.store.append(...events));
      for (const p of batch) p.resolve();
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }
}
