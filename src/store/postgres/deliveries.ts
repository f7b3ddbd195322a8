/**
 * The record of every delivery on PostgreSQL (table `outbox`; DeliveriesPort), as store/sqlite/outbox-store.ts, shared
 * by every replica: one record per request id (`request_id` UNIQUE, INSERT … ON CONFLICT DO NOTHING, then the
 * earlier record). For the embedded outbox on PostgreSQL (tools/outbox/postgres.ts) it is the mailbox itself.
 */
import type { DeliveriesPort, OutboxRecord } from '../../core/ports/deliveries.js';
import { attempt } from './attempt.js';
import type { PgStore } from './connect.js';
import { deliveryOf, type DeliveryRow } from '../rows.js';

const COLUMNS = 'id, username, channel, address, subject, body, created_at, request_id, via, message_id';

export class PgDeliveries implements DeliveriesPort {
  constructor(
    readonly store: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  private get cols() {
    return this.store.sql.unsafe(COLUMNS);
  }

  async record(m: Omit<OutboxRecord, 'id' | 'createdAt'>): Promise<OutboxRecord> {
    const [r] = await attempt(
      this.store,
      () => this.store.sql<DeliveryRow[]>`
        INSERT INTO outbox (username, channel, address, subject, body, created_at, request_id, via, message_id)
        VALUES (${m.username}, ${m.channel}, ${m.address}, ${m.subject}, ${m.body}, ${this.now()}, ${m.requestId},
                ${m.via}, ${m.messageId})
        ON CONFLICT (request_id) DO NOTHING
        RETURNING ${this.cols}`,
    );
    if (r) return deliveryOf(r);
    // ON CONFLICT waited for the earlier record's transaction: it is committed, and this statement sees it.
    return (await this.byRequest(m.requestId!))!;
  }

  async get(id: number): Promise<OutboxRecord | undefined> {
    const [r] = await attempt(
      this.store,
      () => this.store.sql<DeliveryRow[]>`SELECT ${this.cols} FROM outbox WHERE id = ${id}`,
    );
    return r && deliveryOf(r);
  }

  async byRequest(requestId: string): Promise<OutboxRecord | undefined> {
    const [r] = await attempt(
      this.store,
      () => this.store.sql<DeliveryRow[]>`SELECT ${this.cols} FROM outbox WHERE request_id = ${requestId}`,
    );
    return r && deliveryOf(r);
  }

  async list(limit = 100): Promise<OutboxRecord[]> {
    const rows = await attempt(
      this.store,
      () => this.store.sql<DeliveryRow[]>`SELECT ${this.cols} FROM outbox ORDER BY id DESC LIMIT ${limit}`,
    );
    return rows.map(deliveryOf);
  }

  async forUser(username: string): Promise<OutboxRecord[]> {
    const rows = await attempt(
      this.store,
      () => this.store.sql<DeliveryRow[]>`SELECT ${this.cols} FROM outbox WHERE username = ${username} ORDER BY id`,
    );
    return rows.map(deliveryOf);
  }
}
