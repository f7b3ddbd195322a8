/**
 * The tickets tables' rows as both embedded adapters read them (SQLite: embedded.ts, PostgreSQL: postgres.ts), and
 * their mapping to the port's shapes: one mapping, so the two stores answer alike.
 */
import type { Comment, Priority, Status, Ticket } from '../../core/ports/tickets.js';

export interface TicketRow {
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

export interface CommentRow {
  id: number;
  author: string;
  body: string;
  created_at: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export const toTicket = (r: TicketRow): Ticket => ({
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

export const toComment = (c: CommentRow): Comment => ({
  id: String(c.id),
  author: c.author,
  body: c.body,
  createdAt: iso(c.created_at),
});
