/**
 * The embedded outbox: a delivery is a row in the itguard database's outbox table (behind the deliveries port), the
 * demo's mailbox (`itguard outbox --show-links` reads it). Idempotent on the request id.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../../core/backend.js';
import type { DeliveriesPort } from '../../core/ports/deliveries.js';
import type { Message, OutboxPort } from '../../core/ports/outbox.js';

export class EmbeddedOutbox implements OutboxPort {
  readonly kind = 'embedded';
  readonly recordsItself = true;
  readonly channels = ['email', 'sms'] as const;
  constructor(private readonly store: DeliveriesPort) {}

  async send(m: Message, o: WriteOpts): Promise<{ messageId: string }> {
    const r = await this.store.record({
      username: m.username,
      channel: m.channel,
      address: m.to,
      subject: m.subject,
      body: m.text,
      requestId: o.requestId,
      via: 'embedded',
      messageId: null,
    });
    return { messageId: `outbox:${r.id}` };
  }

  async probe(_o: CallOpts): Promise<ProbeReport> {
    return {
      backend: 'outbox:embedded',
      target: 'the itguard database',
      ok: true,
      checks: [{ name: 'outbox table', ok: true }],
    };
  }
}
