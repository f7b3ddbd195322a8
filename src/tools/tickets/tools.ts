import { z } from 'zod';
import { GuardError } from '../../core/errors.js';
import { defineTool } from '../../core/tool.js';
import { IdemKey, Reason, UserRef } from '../common.js';
import { neutralise, untrusted, untrustedText } from '../untrusted.js';
import type { Backends } from '../../core/backends.js';
import { PRIORITIES, STATUSES, type Ticket } from '../../core/ports/tickets.js';

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true } as const;
const WRITE = { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true } as const;
const TicketKey = z
  .string()
  .regex(/^[A-Z][A-Z0-9]{0,9}-\d{1,9}$/, { error: 'must be a ticket key like IT-42' })
  .describe('Ticket key, e.g. IT-42.');

/** A ticket as structuredContent: the people-written fields defanged, and marked untrusted in the output schema. */
const ticketData = (t: Ticket) => ({ ...t, summary: neutralise(t.summary), description: neutralise(t.description) });
const TicketOut = {
  key: z.string(),
  project: z.string(),
  summary: untrustedText(),
  description: untrustedText(),
  requester: z.string(),
  priority: z.string(),
  status: z.string(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
};
const CommentOut = { id: z.string(), author: z.string(), body: untrustedText(), createdAt: z.string() };
/** Write tools' results; every field optional so that a shadow-mode result (nothing ran) fits too. */
const WriteOut = {
  key: z.string().optional(),
  ticket: z.object(TicketOut).optional(),
  comment_id: z.string().optional(),
  shadow: z.looseObject({}).optional(),
};

const created = (t: Ticket) => ({
  text: `Opened ${t.key} for ${t.requester} (priority ${t.priority}):\n${untrusted(`ticket ${t.key}`, `Summary: ${t.summary}`)}`,
  data: { key: t.key, ticket: ticketData(t) },
});
const commented = (key: string, id: string) => ({
  text: `Comment ${id} added to ${key}.`,
  data: { key, comment_id: id },
});
const line = (t: Ticket): string => `${t.key} [${t.status}, ${t.priority}] requester ${t.requester}: ${t.summary}`;
const notFound = (key: string): GuardError =>
  new GuardError('NOT_FOUND', `No ticket ${key} in the projects this agent may see.`, {
    next: 'Check the key with ticket_search.',
  });

/** Requesters must be live users of the directory (argument policy, checked before any effect). */
async function requireUser(
  username: string,
  field: string,
  backends: Backends,
  signal: AbortSignal,
): Promise<{ email: string }> {
  const u = await backends.directory.get(username, { signal });
  if (!u || u.username !== username)
    throw new GuardError('INVALID_ARGUMENT', `${field}: no user "${username}" in the directory.`, {
      details: { field },
    });
  if (u.disabled)
    throw new GuardError('POLICY_DENIED', `${field}: user "${username}" is disabled.`, { details: { field } });
  return u;
}

const projectOf = (key: string): string => key.slice(0, key.lastIndexOf('-'));

/**
 * Security: a ticket outside allowed_projects reads exactly like one that does not exist — checked on the key
 * before the backend is asked, and on the ticket it returns (Jira follows a moved issue's old key to its new one).
 */
async function visibleTicket(key: string, backends: Backends, signal: AbortSignal) {
  if (!backends.projects.allowed.includes(projectOf(key))) throw notFound(key);
  const t = await backends.tickets.get(key, { signal });
  if (!t || !backends.projects.allowed.includes(t.project)) throw notFound(key);
  return t;
}

export const ticketSearch = defineTool({
  name: 'ticket_search',
  title: 'Search IT tickets',
  description: 'Lists tickets, newest first, filtered by text in summary/description, status and requester.',
  input: {
    text: z.string().trim().min(1).max(200).optional().describe('Words to find in summary or description.'),
    status: z.enum(STATUSES).optional(),
    requester: UserRef.optional(),
    limit: z.int().min(1).max(50).default(10),
  },
  scope: 'tickets:read',
  effect: 'read',
  tier: 'auto',
  annotations: READ,
  output: { tickets: z.array(z.object(TicketOut).omit({ description: true })) },
  summary: (a) => `Search tickets${a.text ? ` for "${a.text}"` : ''}`,
  async run(a, ctx) {
    const allowed = ctx.backends.projects.allowed;
    const found = (await ctx.backends.tickets.search({ ...a, projects: allowed }, { signal: ctx.signal })).filter((t) =>
      allowed.includes(t.project),
    );
    return {
      text: found.length
        ? `${found.length} ticket(s):\n${untrusted('ticket summaries', found.map(line).join('\n'))}`
        : 'No tickets match.',
      data: { tickets: found.map(({ description: _d, ...t }) => ({ ...t, summary: neutralise(t.summary) })) },
    };
  },
});

export const ticketGet = defineTool({
  name: 'ticket_get',
  title: 'Read an IT ticket',
  description: 'Returns one ticket with its description and comments.',
  input: { key: TicketKey },
  scope: 'tickets:read',
  effect: 'read',
  tier: 'auto',
  annotations: READ,
  output: { ticket: z.object({ ...TicketOut, comments: z.array(z.object(CommentOut)) }) },
  summary: (a) => `Read ticket ${a.key}`,
  async run(a, ctx) {
    const t = await visibleTicket(a.key, ctx.backends, ctx.signal);
    const comments = t.comments.map((c) => `--- ${c.author} at ${c.createdAt}\n${c.body}`).join('\n');
    return {
      text: [
        `${t.key} [${t.status}, ${t.priority}] requester ${t.requester}, opened ${t.createdAt} by ${t.createdBy}`,
        untrusted(
          `ticket ${t.key}`,
          `Summary: ${t.summary}\n\n${t.description}${comments ? `\n\nComments:\n${comments}` : ''}`,
        ),
      ].join('\n'),
      data: { ticket: { ...ticketData(t), comments: t.comments.map((c) => ({ ...c, body: neutralise(c.body) })) } },
    };
  },
});

export const ticketCreate = defineTool({
  name: 'ticket_create',
  title: 'Open an IT ticket',
  description:
    'Opens a ticket in the IT project for a requester (a directory username). Safe to retry with the same idempotency_key.',
  input: {
    summary: z.string().trim().min(1).max(255),
    description: z.string().max(32_000).default(''),
    requester: UserRef,
    priority: z.enum(PRIORITIES).default('medium'),
    reason: Reason,
    idempotency_key: IdemKey.optional(),
  },
  scope: 'tickets:write',
  effect: 'write',
  tier: 'auto',
  annotations: WRITE,
  output: WriteOut,
  summary: (a) => `Open ticket "${a.summary}" for ${a.requester}`,
  async resolve(a, { backends, signal }) {
    const u = await requireUser(a.requester, 'requester', backends, signal);
    return { resolved: { requester: a.requester, requesterEmail: u.email || undefined } };
  },
  async run(a, ctx) {
    const { ticket } = await ctx.backends.tickets.create(
      {
        project: ctx.backends.projects.home,
        summary: a.summary,
        description: a.description,
        requester: a.requester,
        requesterEmail: ctx.resolved.requesterEmail,
        priority: a.priority,
      },
      { requestId: ctx.requestId, actor: ctx.principal.name, signal: ctx.signal },
    );
    return created(ticket);
  },
  async recover(_a, ctx) {
    const hit = await ctx.backends.tickets.findByRequest(ctx.requestId, {
      signal: ctx.signal,
      projects: ctx.backends.projects.allowed,
    });
    const t = hit?.kind === 'ticket' ? await ctx.backends.tickets.get(hit.key, { signal: ctx.signal }) : undefined;
    return t && created(t);
  },
});

export const ticketComment = defineTool({
  name: 'ticket_comment',
  title: 'Comment on an IT ticket',
  description: 'Adds a comment to a ticket. Safe to retry with the same idempotency_key.',
  input: {
    key: TicketKey,
    body: z.string().trim().min(1).max(32_000),
    reason: Reason,
    idempotency_key: IdemKey.optional(),
  },
  scope: 'tickets:write',
  effect: 'write',
  tier: 'auto',
  annotations: WRITE,
  output: WriteOut,
  summary: (a) => `Comment on ${a.key}`,
  async resolve(a, { backends, signal }) {
    // Security: every write checks the project too, on the ticket as the backend has it now.
    await visibleTicket(a.key, backends, signal);
  },
  async run(a, ctx) {
    const r = await ctx.backends.tickets.comment(a.key, a.body, {
      requestId: ctx.requestId,
      actor: ctx.principal.name,
      signal: ctx.signal,
    });
    if (!r) throw notFound(a.key);
    return commented(a.key, r.comment.id);
  },
  async recover(a, ctx) {
    const hit = await ctx.backends.tickets.findByRequest(ctx.requestId, {
      signal: ctx.signal,
      key: a.key,
      projects: ctx.backends.projects.allowed,
    });
    return hit?.kind === 'comment' && hit.commentId !== undefined ? commented(a.key, hit.commentId) : undefined;
  },
});
