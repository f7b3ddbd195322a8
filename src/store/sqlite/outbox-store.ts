/**
 * The record of every message itguard delivered to a user (table `outbox`): for the embedded outbox it is the
 * mailbox itself (the demo reads it with `itguard outbox`); for SMTP it is the masked record of what was sent.
 * One record per request id: a delivery's record is what proves it happened.
 */
import type { DeliveriesPort, OutboxRecord } from '../../core/ports/deliveries.js';
import type { Db } from './db.js';
import { deliveryOf, type DeliveryRow } from '../rows.js';

export class OutboxStore implements DeliveriesPort {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a delivery; a second record for the same request id returns the first one. */
  record(m: Omit<OutboxRecord, 'id' | 'createdAt'>): OutboxRecord {
    const prior = m.requestId ? this.byRequest(m.requestId) : undefined;
    if (prior) return prior;
    const id = Number(
      this.db
        .prepare(
          'INSERT INTO outbox (username, channel, address, subject, body, created_at, request_id, via, message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(m.username, m.channel, m.address, m.subject, m.body, this.now(), m.requestId, m.via, m.messageId)
        .lastInsertRowid,
    );
    return this.get(id)!;
  }

  get(id: number): OutboxRecord | undefined {
    const r = this.db.prepare<[number], DeliveryRow>('SELECT * FROM outbox WHERE id = ?').get(id);
    return r && deliveryOf(r);
  }

  byRequest(requestId: string): OutboxRecord | undefined {
    const r = this.db.prepare<[string], DeliveryRow>('SELECT * FROM outbox WHERE request_id = ?').get(requestId);
    return r && deliveryOf(r);
  }

  /** Newest first. */
  list(limit = 100): OutboxRecord[] {
    return this.db
      .prepare<[number], DeliveryRow>('SELECT * FROM outbox ORDER BY id DESC LIMIT ?')
      .all(limit)
      .map(deliveryOf);
  }

  /** Every record for a user, oldest first (tests, the demo). */
  forUser(username: string): OutboxRecord[] {
    return this.db
      .prepare<[string], DeliveryRow>('SELECT * FROM outbox WHERE username = ? ORDER BY id')
      .all(username)
      .map(deliveryOf);
  }
}
