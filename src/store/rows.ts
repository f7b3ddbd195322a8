/** Row mappings both store adapters share (one table, one mapping): the deliveries log. */
import type { OutboxRecord } from '../core/ports/deliveries.js';

/** A row of `outbox` (the deliveries log) as both adapters read it. */
export interface DeliveryRow {
  id: number;
  username: string;
  channel: 'email' | 'sms';
  address: string;
  subject: string;
  body: string;
  created_at: number;
  request_id: string | null;
  via: string;
  message_id: string | null;
}

export const deliveryOf = (r: DeliveryRow): OutboxRecord => ({
  id: r.id,
  username: r.username,
  channel: r.channel,
  address: r.address,
  subject: r.subject,
  body: r.body,
  createdAt: r.created_at,
  requestId: r.request_id,
  via: r.via,
  messageId: r.message_id,
});
