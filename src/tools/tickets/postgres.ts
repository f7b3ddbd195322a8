/**
 * The tickets port on the PostgreSQL store (issue 20): the embedded adapter's tables (tickets, ticket_comments) and
 * behaviour (embedded.ts), shared by every replica.
 * - Keys PROJECT-n without gaps under any concurrency: the insert's transaction takes the project's advisory lock
 *   (pg_advisory_xact_lock, held to commit, across replicas) and numbers the ticket max(number) + 1 (the UNIQUE
 *   (project, number) index answers it), so creates of one project queue and a rolled-back one takes no number.
 *   (A counter table would be a PostgreSQL-only table; the schema keeps SQLite's tables one for one.)
 * - Idempotent on the request id: `request_id` is UNIQUE and the insert is ON CONFLICT (request_id) DO NOTHING; when
 *   it meets an earlier row (a retry, or the same request racing itself) the transaction rolls back and the earlier
 *   ticket or comment is returned with `replayed: true`.
 * - Any store failure is a BackendError saying whether the call may be retried; nothing is half written.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../../core/backend.js';
import type { Comment, NewTicket, Ticket, TicketQuery, TicketsPort } from '../../core/ports/tickets.js';
import { type PgStore, toPgStoreError } from '../../store/postgres/connect.js';
import { guarded, Replayed } from '../pg-errors.js';
import { toComment, toTicket, type CommentRow, type TicketRow as BaseTicketRow } from './rows.js';

/** The PostgreSQL row also carries the ticket's number within its project (the advisory-locked counter). */
type TicketRow = BaseTicketRow & { number: number };

const TICKET_LOCK_CLASS = 0x69746774; // 'itgt'

const TICKET_COLUMNS =
  'key, project, number, summary, description, requester, priority, status, created_by, created_at, updated_at';

export class PostgresTickets implements TicketsPort {
  readonly kind = 'postgres';
  constructor(
    private readonly store: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  async create(t: NewTicket, o: WriteOpts & { actor: string }): Promise<{ ticket: Ticket; replayed: boolean }> {
    return guarded(this.store, 'tickets', async () => {
      try {
        const ticket = await this.store.sql.begin(async (tx) => {
          // One creator per project at a time (replicas included); the insert's own snapshot, taken after the
          // lock, sees every ticket committed before it.
          await tx`SELECT pg_advisory_xact_lock(${TICKET_LOCK_CLASS}, hashtext(${t.project}))`;
          const at = this.now();
          const [row] = await tx<TicketRow[]>`
            INSERT INTO tickets (key, project, number, summary, description, requester, priority, status, created_by,
                                 created_at, updated_at, request_id)
            SELECT ${t.project}::TEXT || '-' || n, ${t.project}::TEXT, n, ${t.summary}::TEXT, ${t.description}::TEXT,
                   ${t.requester}::TEXT, ${t.priority}::TEXT, 'open', ${o.actor}::TEXT, ${at}::BIGINT, ${at}::BIGINT,
                   ${o.requestId}::TEXT
              FROM (SELECT coalesce(max(number), 0) + 1 AS n FROM tickets WHERE project = ${t.project}) AS next
            ON CONFLICT (request_id) DO NOTHING
            RETURNING ${tx.unsafe(TICKET_COLUMNS)}`;
          if (!row) throw new Replayed();
          return toTicket(row);
        });
        return { ticket, replayed: false };
      } catch (e) {
        if (!(e instanceof Replayed)) throw e;
        const [prior] = await this.store.sql<TicketRow[]>`
          SELECT ${this.store.sql.unsafe(TICKET_COLUMNS)} FROM tickets WHERE request_id = ${o.requestId}`;
        // ON CONFLICT waited for the earlier row's transaction: it is committed, and this statement sees it.
        return { ticket: toTicket(prior!), replayed: true };
      }
    });
  }

  async get(key: string, o: CallOpts): Promise<(Ticket & { comments: Comment[] }) | undefined> {
    return guarded(this.store, 'tickets', async () => {
      const [r] = await this.store.sql<TicketRow[]>`
        SELECT ${this.store.sql.unsafe(TICKET_COLUMNS)} FROM tickets WHERE key = ${key}`.signal(o.signal);
      if (!r) return undefined;
      const comments = await this.store.sql<CommentRow[]>`
        SELECT id, author, body, created_at FROM ticket_comments WHERE ticket_key = ${key} ORDER BY id`.signal(
        o.signal,
      );
      return { ...toTicket(r), comments: comments.map(toComment) };
    });
  }

  async comment(
    key: string,
    body: string,
    o: WriteOpts & { actor: string },
  ): Promise<{ comment: Comment; replayed: boolean } | undefined> {
    return guarded(this.store, 'tickets', async () => {
      try {
        return await this.store.sql.begin(async (tx) => {
          const at = this.now();
          // Takes the ticket's row lock (the updated_at write) first: comments on one ticket queue on it.
          const touched = await tx`UPDATE tickets SET updated_at = ${at} WHERE key = ${key}`;
          if (!touched.count) return undefined;
          const [c] = await tx<CommentRow[]>`
            INSERT INTO ticket_comments (ticket_key, author, body, created_at, request_id)
            VALUES (${key}, ${o.actor}, ${body}, ${at}, ${o.requestId})
            ON CONFLICT (request_id) DO NOTHING
            RETURNING id, author, body, created_at`;
          if (!c) throw new Replayed();
          return { comment: toComment(c), replayed: false };
        });
      } catch (e) {
        if (!(e instanceof Replayed)) throw e;
        const [prior] = await this.store.sql<CommentRow[]>`
          SELECT id, author, body, created_at FROM ticket_comments WHERE request_id = ${o.requestId}`;
        return { comment: toComment(prior!), replayed: true };
      }
    });
  }

  async search(q: TicketQuery, o: CallOpts): Promise<Ticket[]> {
    if (!q.projects.length) return [];
    return guarded(this.store, 'tickets', async () => {
      const sql = this.store.sql;
      // LIKE on SQLite is case-insensitive for ASCII: ILIKE, with the same escaping of the user's % _ and \.
      const like = q.text ? `%${q.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : undefined;
      const rows = await sql<TicketRow[]>`
        SELECT ${sql.unsafe(TICKET_COLUMNS)} FROM tickets
         WHERE project = ANY(${[...q.projects]}::TEXT[])
           ${like ? sql`AND (summary ILIKE ${like} ESCAPE '\\' OR description ILIKE ${like} ESCAPE '\\')` : sql``}
           ${q.status ? sql`AND status = ${q.status}` : sql``}
           ${q.requester ? sql`AND requester = ${q.requester}` : sql``}
         ORDER BY created_at DESC, number DESC
         LIMIT ${q.limit}`.signal(o.signal);
      return rows.map(toTicket);
    });
  }

  async findByRequest(
    requestId: string,
    o: CallOpts & { projects: readonly string[] },
  ): Promise<{ kind: 'ticket' | 'comment'; key: string; commentId?: string } | undefined> {
    return guarded(this.store, 'tickets', async () => {
      const [t] = await this.store.sql<{ key: string; project: string }[]>`
        SELECT key, project FROM tickets WHERE request_id = ${requestId}`.signal(o.signal);
      // Confined like every search: a ticket outside the allowed projects is not this request's.
      if (t) return o.projects.includes(t.project) ? { kind: 'ticket', key: t.key } : undefined;
      const [c] = await this.store.sql<{ key: string; id: number }[]>`
        SELECT ticket_key AS key, id FROM ticket_comments WHERE request_id = ${requestId}`.signal(o.signal);
      return c && { kind: 'comment', key: c.key, commentId: String(c.id) };
    });
  }

  async probe(o: CallOpts & { projects: readonly string[] }): Promise<ProbeReport> {
    try {
      const [r] = await this.store.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM tickets`.signal(o.signal);
      return {
        backend: 'tickets:postgres',
        target: this.store.target,
        ok: true,
        checks: [{ name: 'read tickets table', ok: true, detail: `${r!.n} ticket(s)` }],
      };
    } catch (e) {
      return {
        backend: 'tickets:postgres',
        target: this.store.target,
        ok: false,
        checks: [{ name: 'read tickets table', ok: false, detail: toPgStoreError(this.store.target, e).message }],
      };
    }
  }

  /** Tests, reports: how many tickets the store holds. */
  async count(): Promise<number> {
    return guarded(this.store, 'tickets', async () => {
      const [r] = await this.store.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM tickets`;
      return r!.n;
    });
  }
}
