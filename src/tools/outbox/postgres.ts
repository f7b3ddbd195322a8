/**
 * The outbox on the PostgreSQL store (issue 20): the embedded outbox's table (outbox) and behaviour (embedded.ts and
 * store/sqlite/outbox-store.ts), shared by every replica. A delivery is a row, the demo's mailbox; one record per
 * request id (`request_id` UNIQUE, INSERT … ON CONFLICT DO NOTHING, then the earlier record). Any store failure is
 * a retryable-or-not BackendError, and nothing is reported as sent.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../../core/backend.js';
import type { Message, OutboxPort } from '../../core/ports/outbox.js';
import { type PgStore, toPgStoreError } from '../../store/postgres/connect.js';
import type { OutboxRecord } from '../../store/sqlite/outbox-store.js';
import { guarded } from '../pg-errors.js';

export type { OutboxRecord } from '../../store/sqlite/outbox-store.js';

interface Row {
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

const toRecord = (r: Row): OutboxRecord => ({
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

const COLUMNS = 'id, username, channel, address, subject, body, created_at, request_id, via, message_id';

/** The outbox table's records (OutboxStore's methods, async). */
export class PgOutboxStore {
  constructor(
    readonly store: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a delivery; a second record for the same request id returns the first one. */
  async record(m: Omit<OutboxRecord, 'id' | 'createdAt'>): Promise<OutboxRecord> {
    return guarded(this.store, 'outbox', async () => {
      const [r] = await this.store.sql<Row[]>`
        INSERT INTO outbox (username, channel, address, subject, body, created_at, request_id, via, message_id)
        VALUES (${m.username}, ${m.channel}, ${m.address}, ${m.subject}, ${m.body}, ${this.now()}, ${m.requestId},
                ${m.via}, ${m.messageId})
        ON CONFLICT (request_id) DO NOTHING
        RETURNING ${this.store.sql.unsafe(COLUMNS)}`;
      if (r) return toRecord(r);
      // ON CONFLICT waited for the earlier record's transaction: it is committed, and this statement sees it.
      return (await this.byRequest(m.requestId!))!;
    });
  }

  async get(id: number): Promise<OutboxRecord | undefined> {
    return guarded(this.store, 'outbox', async () => {
      const [r] = await this.store.sql<Row[]>`SELECT ${this.store.sql.unsafe(COLUMNS)} FROM outbox WHERE id = ${id}`;
      return r && toRecord(r);
    });
  }

  async byRequest(requestId: string): Promise<OutboxRecord | undefined> {
    return guarded(this.store, 'outbox', async () => {
      const [r] = await this.store.sql<Row[]>`
        SELECT ${this.store.sql.unsafe(COLUMNS)} FROM outbox WHERE request_id = ${requestId}`;
      return r && toRecord(r);
    });
  }

  /** Newest first. */
  async list(limit = 100): Promise<OutboxRecord[]> {
    return guarded(this.store, 'outbox', async () =>
      (
        await this.store.sql<Row[]>`
          SELECT ${this.store.sql.unsafe(COLUMNS)} FROM outbox ORDER BY id DESC LIMIT ${limit}`
      ).map(toRecord),
    );
  }

  /** Every record for a user, oldest first (tests). */
  async forUser(username: string): Promise<OutboxRecord[]> {
    return guarded(this.store, 'outbox', async () =>
      (
        await this.store.sql<Row[]>`
          SELECT ${this.store.sql.unsafe(COLUMNS)} FROM outbox WHERE username = ${username} ORDER BY id`
      ).map(toRecord),
    );
  }
}

export class PostgresOutbox implements OutboxPort {
  readonly kind = 'postgres';
  readonly recordsItself = true;
  readonly channels = ['email', 'sms'] as const;
  constructor(private readonly records: PgOutboxStore) {}

  async send(m: Message, o: WriteOpts): Promise<{ messageId: string }> {
    const r = await this.records.record({
      username: m.username,
      channel: m.channel,
      address: m.to,
      subject: m.subject,
      body: m.text,
      requestId: o.requestId,
      // The built-in mailbox, as the embedded outbox's records say (the demo reads them the same on either store).
      via: 'embedded',
      messageId: null,
    });
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
