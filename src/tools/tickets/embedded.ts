/**
 * Embedded tickets adapter of the tickets port: keys PROJECT-n, statuses, priorities, comments, in the itguard
 * database. Idempotent on the request id it is given (the pipeline's request id): a second create with the same id
 * returns the first ticket. Project confinement is the tool layer's (tools.ts): searches see only the projects
 * they are given, and reads and writes take any key the tool layer let through.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../../core/backend.js';
import { effectCommit, type Db } from '../../store/sqlite/db.js';
import type { Comment, NewTicket, Ticket, TicketQuery, TicketsPort } from '../../core/ports/tickets.js';
import { toComment, toTicket, type CommentRow, type TicketRow } from './rows.js';

export {
  type Comment,
  PRIORITIES,
  type Priority,
  type Status,
  STATUSES,
  type Ticket,
} from '../../core/ports/tickets.js';

export class EmbeddedTickets implements TicketsPort {
  readonly kind = 'embedded';
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  private row(key: string): TicketRow | undefined {
    return this.db.prepare<[string], TicketRow>('SELECT * FROM tickets WHERE key = ?').get(key);
  }

  async create(t: NewTicket, o: WriteOpts & { actor: string }): Promise<{ ticket: Ticket; replayed: boolean }> {
    return effectCommit(this.db, () =>
      this.db
        .transaction(() => {
          const prior = this.db
            .prepare<[string], TicketRow>('SELECT * FROM tickets WHERE request_id = ?')
            .get(o.requestId);
          if (prior) return { ticket: toTicket(prior), replayed: true };
          const n =
            (this.db
              .prepare<[string], { n: number | null }>('SELECT max(number) AS n FROM tickets WHERE project = ?')
              .get(t.project)?.n ?? 0) + 1;
          const key = `${t.project}-${n}`;
          const at = this.now();
          this.db
            .prepare(
              `INSERT INTO tickets (key, project, number, summary, description, requester, priority, status, created_by, created_at, updated_at, request_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)`,
            )
            .run(key, t.project, n, t.summary, t.description, t.requester, t.priority, o.actor, at, at, o.requestId);
          return { ticket: toTicket(this.row(key)!), replayed: false };
        })
        .immediate(),
    );
  }

  async get(key: string, _o?: CallOpts): Promise<(Ticket & { comments: Comment[] }) | undefined> {
    const r = this.row(key);
    if (!r) return undefined;
    const comments = this.db
      .prepare<[string], CommentRow>(
        'SELECT id, author, body, created_at FROM ticket_comments WHERE ticket_key = ? ORDER BY id',
      )
      .all(key)
      .map(toComment);
    return { ...toTicket(r), comments };
  }

  async comment(
    key: string,
    body: string,
    o: WriteOpts & { actor: string },
  ): Promise<{ comment: Comment; replayed: boolean } | undefined> {
    return effectCommit(this.db, () =>
      this.db
        .transaction(() => {
          if (!this.row(key)) return undefined;
          const prior = this.db
            .prepare<[string], CommentRow>('SELECT * FROM ticket_comments WHERE request_id = ?')
            .get(o.requestId);
          if (prior) return { comment: toComment(prior), replayed: true };
          const at = this.now();
          const id = Number(
            this.db
              .prepare(
                'INSERT INTO ticket_comments (ticket_key, author, body, created_at, request_id) VALUES (?, ?, ?, ?, ?)',
              )
              .run(key, o.actor, body, at, o.requestId).lastInsertRowid,
          );
          this.db.prepare('UPDATE tickets SET updated_at = ? WHERE key = ?').run(at, key);
          return { comment: toComment({ id, author: o.actor, body, created_at: at }), replayed: false };
        })
        .immediate(),
    );
  }

  async search(q: TicketQuery, _o?: CallOpts): Promise<Ticket[]> {
    if (!q.projects.length) return [];
    const where = [`project IN (${q.projects.map(() => '?').join(', ')})`];
    const params: unknown[] = [...q.projects];
    if (q.text) {
      where.push(`(summary LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')`);
      const like = `%${q.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      params.push(like, like);
    }
    if (q.status) {
      where.push('status = ?');
      params.push(q.status);
    }
    if (q.requester) {
      where.push('requester = ?');
      params.push(q.requester);
    }
    params.push(q.limit);
    return this.db
      .prepare<unknown[], TicketRow>(
        `SELECT * FROM tickets WHERE ${where.join(' AND ')} ORDER BY created_at DESC, number DESC LIMIT ?`,
      )
      .all(...params)
      .map(toTicket);
  }

  async findByRequest(
    requestId: string,
    o: CallOpts & { projects: readonly string[] },
  ): Promise<{ kind: 'ticket' | 'comment'; key: string; commentId?: string } | undefined> {
    const t = this.db
      .prepare<[string], { key: string; project: string }>('SELECT key, project FROM tickets WHERE request_id = ?')
      .get(requestId);
    // Confined like every search: a ticket outside the allowed projects is not this request's.
    if (t) return o.projects.includes(t.project) ? { kind: 'ticket', key: t.key } : undefined;
    const c = this.db
      .prepare<[string], { key: string; id: number }>(
        'SELECT ticket_key AS key, id FROM ticket_comments WHERE request_id = ?',
      )
      .get(requestId);
    return c && { kind: 'comment', key: c.key, commentId: String(c.id) };
  }

  async probe(o: CallOpts & { projects: readonly string[] }): Promise<ProbeReport> {
    void o;
    const n = this.count();
    return {
      backend: 'tickets:embedded',
      target: 'the itguard database',
      ok: true,
      checks: [{ name: 'read tickets table', ok: true, detail: `${n} ticket(s)` }],
    };
  }

  /** Embedded only (tests, reports): how many tickets the database holds. */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n;
  }
}
