/**
 * The outbox on the PostgreSQL store (issue 20): the embedded outbox's behaviour (embedded.ts) on the deliveries
 * records of store/postgres/deliveries.ts, shared by every replica. A delivery is a row, the demo's mailbox; one
 * record per request id. Any store failure is a retryable-or-not BackendError, and nothing is reported as sent.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../../core/backend.js';
import type { Message, OutboxPort } from '../../core/ports/outbox.js';
import { toPgStoreError } from '../../store/postgres/connect.js';
import type { PgDeliveries } from '../../store/postgres/deliveries.js';
import { guarded } from '../pg-errors.js';

export class PostgresOutbox implements OutboxPort {
  readonly kind = 'postgres';
  readonly recordsItself = true;
  readonly channels = ['email', 'sms'] as const;
  constructor(private readonly records: PgDeliveries) {}

  async send(m: Message, o: WriteOpts): Promise<{ messageId: string }> {
    const r = await guarded(this.records.store, 'outbox', async () =>
      this.records.record({
        username: m.username,
        channel: m.channel,
        address: m.to,
        subject: m.subject,
        body: m.text,
        requestId: o.requestId,
        // The built-in mailbox, as the embedded outbox's records say (the demo reads them the same on either store).
        via: 'embedded',
        messageId: null,
      }),
    );
    return { messageId: `outbox:${r.id}` };
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    const store = this.records.store;
    try {
      await store.sql`SELECT 1 FROM outbox LIMIT 1`.signal(o.signal);
      return {
        backend: 'outbox:postgres',
        target: store.target,
        ok: true,
        checks: [{ name: 'outbox table', ok: true }],
      };
    } catch (e) {
      return {
        backend: 'outbox:postgres',
        target: store.target,
        ok: false,
        checks: [{ name: 'outbox table', ok: false, detail: toPgStoreError(store.target, e).message }],
      };
    }
  }
}
