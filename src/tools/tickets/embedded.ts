/**
 * Embedded tickets backend: keys PROJECT-n, statuses, priorities, comments. Idempotent on the request id
 * it is given (the pipeline's idempotency key): a second create with the same id returns the first ticket.
 * Every read and write is confined to `allowedProjects`.
 */
import type { Db } from '../../store/db.js';

import type { Priority, Status, Ticket } from './backend.js';

// The ticket shapes are the port's (backend.ts); the embedded adapter's comment ids are numbers (rowids).
export { PRIORITIES, STATUSES, type Priority, type Status, type Ticket } from './backend.js';

export interface Comment {
  id: number;
  author: string;
  body: string;
  createdAt: string;
}

export interface TicketsBackend {
  readonly project: string;
  create(
    t: { summary: string; description: string; requester: string; priority: Priority },
    o: { requestId: string | undefined; actor: string },
  ): { ticket: Ticket; replayed: boolean };
  get(key: string): (Ticket & { comments: Comment[] }) | undefined;
  comment(
    key: string,
    body: string,
    o: { requestId: string | undefined; actor: string },
  ): { comment: Comment; replayed: boolean } | undefined;
  search(q: {
    text?: string | undefined;
    status?: Status | undefined;
    requester?: string | undefined;
    limit: number;
  }): Ticket[];
  /** What happened to a request id, for resolving an in-flight record after a crash. */
  findRequest(requestId: string): { kind: 'ticket' | 'comment'; key: string; commentId?: number } | undefined;
  count(): number;
}

interface TicketRow {
  key: string;
  project: string;
  summary: string;
  description: string;
  requester: string;
  priority: Priority;
  status: Status;
  created_by: string;
  created_at: number;
  updated_at: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const toTicket = (r: TicketRow): Ticket => ({
  key: r.key,
  project: r.project,
  summary: r.summary,
  description: r.description,
  requester: r.requester,
  priority: r.priority,
  status: r.status,
  createdBy: r.created_by,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

export class EmbeddedTickets implements TicketsBackend {
  private readonly allowed: readonly string[];
  constructor(
    private readonly db: Db,
    readonly project: string,
    allowedProjects: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    this.allowed = allowedProjects;
  }

  /** Security: a key outside allowed_projects behaves exactly like a key that does not exist. */
  private inScope(key: string): boolean {
    const project = key.split('-')[0] ?? '';
    return this.allowed.includes(project);
  }

  private row(key: string): TicketRow | undefined {
    return this.db.prepare<[string], TicketRow>('SELECT * FROM tickets WHERE key = ?').get(key);
  }

  create(
    t: { summary: string; description: string; requester: string; priority: Priority },
    o: { requestId: string | undefined; actor: string },
  ): { ticket: Ticket; replayed: boolean } {
    return this.db
      .transaction(() => {
        if (o.requestId) {
          const prior = this.db
            .prepare<[string], TicketRow>('SELECT * FROM tickets WHERE request_id = ?')
            .get(o.requestId);
          if (prior) return { ticket: toTicket(prior), replayed: true };
        }
        const n =
          (this.db
            .prepare<[string], { n: number | null }>('SELECT max(number) AS n FROM tickets WHERE project = ?')
            .get(this.project)?.n ?? 0) + 1;
        const key = `${this.project}-${n}`;
        const at = this.now();
        this.db
          .prepare(
            `INSERT INTO tickets (key, project, number, summary, description, requester, priority, status, created_by, created_at, updated_at, request_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)`,
          )
          .run(
            key,
            this.project,
            n,
            t.summary,
            t.description,
            t.requester,
            t.priority,
            o.actor,
            at,
            at,
            o.requestId ?? null,
          );
        return { ticket: toTicket(this.row(key)!), replayed: false };
      })
      .immediate();
  }

  get(key: string): (Ticket & { comments: Comment[] }) | undefined {
    if (!this.inScope(key)) return undefined;
    const r = this.row(key);
    if (!r) return undefined;
    const comments = this.db
      .prepare<[string], { id: number; author: string; body: string; created_at: number }>(
        'SELECT id, author, body, created_at FROM ticket_comments WHERE ticket_key = ? ORDER BY id',
      )
      .all(key)
      .map((c) => ({ id: c.id, author: c.author, body: c.body, createdAt: iso(c.created_at) }));
    return { ...toTicket(r), comments };
  }

  comment(
    key: string,
    body: string,
    o: { requestId: string | undefined; actor: string },
  ): { comment: Comment; replayed: boolean } | undefined {
    if (!this.inScope(key)) return undefined;
    return this.db
      .transaction(() => {
        if (!this.row(key)) return undefined;
        if (o.requestId) {
          const prior = this.db
            .prepare<[string], { id: number; author: string; body: string; created_at: number }>(
              'SELECT * FROM ticket_comments WHERE request_id = ?',
            )
            .get(o.requestId);
          if (prior)
            return {
              comment: { id: prior.id, author: prior.author, body: prior.body, createdAt: iso(prior.created_at) },
              replayed: true,
            };
        }
        const at = this.now();
        const id = Number(
          this.db
            .prepare(
              'INSERT INTO ticket_comments (ticket_key, author, body, created_at, request_id) VALUES (?, ?, ?, ?, ?)',
            )
            .run(key, o.actor, body, at, o.requestId ?? null).lastInsertRowid,
        );
        this.db.prepare('UPDATE tickets SET updated_at = ? WHERE key = ?').run(at, key);
        return { comment: { id, author: o.actor, body, createdAt: iso(at) }, replayed: false };
      })
      .immediate();
  }

  search(q: {
    text?: string | undefined;
    status?: Status | undefined;
    requester?: string | undefined;
    limit: number;
  }): Ticket[] {
    const where = [`project IN (${this.allowed.map(() => '?').join(', ')})`];
    const params: unknown[] = [...this.allowed];
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

  findRequest(requestId: string): { kind: 'ticket' | 'comment'; key: string; commentId?: number } | undefined {
    const t = this.db.prepare<[string], { key: string }>('SELECT key FROM tickets WHERE request_id = ?').get(requestId);
    if (t) return { kind: 'ticket', key: t.key };
    const c = this.db
      .prepare<[string], { key: string; id: number }>(
        'SELECT ticket_key AS key, id FROM ticket_comments WHERE request_id = ?',
      )
      .get(requestId);
    return c && { kind: 'comment', key: c.key, commentId: c.id };
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n;
  }
}
