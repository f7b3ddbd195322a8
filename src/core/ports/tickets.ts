/**
 * The tickets port: what every tickets adapter (embedded, Jira Cloud) promises. Async, cancellable, idempotent on
 * requestId. Allowed-project confinement is the tool layer's job, not the adapter's: the caller passes the
 * projects a query may see, and checks the project of every key before a write.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../backend.js';

export const PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;
export const STATUSES = ['open', 'in_progress', 'waiting', 'resolved', 'closed'] as const;
export type Priority = (typeof PRIORITIES)[number];
export type Status = (typeof STATUSES)[number];

export interface Ticket {
  key: string;
  project: string;
  summary: string;
  description: string;
  requester: string;
  priority: Priority;
  status: Status;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

export interface Comment {
  id: string;
  author: string;
  body: string;
  createdAt: string;
}

export interface NewTicket {
  project: string;
  summary: string;
  /** Plain text; adapters convert it (Jira: Atlassian Document Format). */
  description: string;
  /** A directory username; adapters map it (Jira: a reporter found by e-mail, else a label and a line in the description). */
  requester: string;
  requesterEmail: string | undefined;
  priority: Priority;
}

export interface TicketQuery {
  /** The projects the query may see (never empty): adapters AND them into every search. */
  projects: readonly string[];
  text?: string | undefined;
  status?: Status | undefined;
  requester?: string | undefined;
  limit: number;
}

export interface TicketsPort {
  readonly kind: string;
  create(t: NewTicket, o: WriteOpts & { actor: string }): Promise<{ ticket: Ticket; replayed: boolean }>;
  /** Comments (text) on a ticket; undefined when the key does not exist. */
  comment(
    key: string,
    body: string,
    o: WriteOpts & { actor: string },
  ): Promise<{ comment: Comment; replayed: boolean } | undefined>;
  get(key: string, o: CallOpts): Promise<(Ticket & { comments: Comment[] }) | undefined>;
  search(q: TicketQuery, o: CallOpts): Promise<Ticket[]>;
  /**
   * What a request id did, for recovery after an unknown outcome: looked up on the backend itself (Jira: a label
   * stamped on the issue, found by search with bounded waiting for the index). Undefined = it certainly did not happen.
   */
  findByRequest(
    requestId: string,
    /**
     * `key`: the ticket a comment request was for (Jira finds a comment on its issue). `projects`: the allowed
     * projects (never empty); a search is confined to them, like every search.
     */
    o: CallOpts & { key?: string | undefined; projects: readonly string[] },
  ): Promise<{ kind: 'ticket' | 'comment'; key: string; commentId?: string } | undefined>;
  probe(o: CallOpts & { projects: readonly string[] }): Promise<ProbeReport>;
}
