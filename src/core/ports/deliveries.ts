/**
 * The deliveries port: the record of every message itguard delivered to a user (table `outbox`). For the embedded
 * outbox it is the mailbox itself (`itguard outbox` reads it); for SMTP the masked record of what was sent. One
 * record per request id: a delivery's record is what proves it happened. Implemented by the store adapters
 * (store/sqlite/outbox-store.ts, store/postgres/deliveries.ts).
 */
import type { Awaitable } from '../backend.js';

export interface OutboxRecord {
  id: number;
  username: string;
  channel: 'email' | 'sms';
  address: string;
  subject: string;
  body: string;
  createdAt: number;
  requestId: string | null;
  via: string;
  messageId: string | null;
}

export interface DeliveriesPort {
  /** Records a delivery; a second record for the same request id returns the first one. */
  record(m: Omit<OutboxRecord, 'id' | 'createdAt'>): Awaitable<OutboxRecord>;
  get(id: number): Awaitable<OutboxRecord | undefined>;
  byRequest(requestId: string): Awaitable<OutboxRecord | undefined>;
  /** Newest first. */
  list(limit?: number): Awaitable<OutboxRecord[]>;
  /** Every record for a user, oldest first (tests, the demo). */
  forUser(username: string): Awaitable<OutboxRecord[]>;
}
