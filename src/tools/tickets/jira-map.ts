/**
 * Jira Cloud REST v3 shapes (zod, validated on every response) and the mapping between Jira issues and the
 * port's tickets: status categories, priorities, labels, JQL quoting.
 *
 * Status mapping (Jira's three fixed status categories, so it holds for every workflow):
 *   new ("To Do")               → open
 *   indeterminate ("In Progress") → in_progress
 *   done ("Done")               → resolved, or closed when the status is named Closed / Cancelled / Canceled /
 *                                 Won't Do / Declined / Rejected (a Done-category status that ended without a fix)
 *   undefined or missing        → open
 * Priorities: Lowest/Low → low, Medium → medium, High → high, Highest/Critical/Blocker → urgent; written as
 * Low, Medium, High, Highest (Jira's default scheme).
 */
import { z } from 'zod';
import type { Comment, Priority, Status, Ticket } from '../../core/ports/tickets.js';
import { AdfNodeSchema, textFromAdf } from './jira-adf.js';

/** The issue and comment entity property itguard stamps on what it creates (also the comment idempotency key). */
export const REQUEST_PROPERTY = 'itguard.request';
export const REQUEST_LABEL_PREFIX = 'itguard-req-';
export const REQUESTER_LABEL_PREFIX = 'requester-';

export const RequestProperty = z.object({ request_id_sha256: z.string(), actor: z.string().optional() });

const User = z
  .object({ accountId: z.string().optional(), displayName: z.string().optional(), emailAddress: z.string().optional() })
  .nullable()
  .optional();

export const ISSUE_FIELDS = [
  'summary',
  'description',
  'status',
  'priority',
  'labels',
  'reporter',
  'creator',
  'created',
  'updated',
  'project',
];

export const IssueSchema = z.object({
  id: z.string(),
  key: z.string(),
  fields: z.object({
    summary: z.string().nullable().optional(),
    description: AdfNodeSchema.nullable().optional(),
    status: z
      .object({ name: z.string(), statusCategory: z.object({ key: z.string() }).nullable().optional() })
      .nullable()
      .optional(),
    priority: z.object({ name: z.string() }).nullable().optional(),
    labels: z.array(z.string()).nullable().optional(),
    reporter: User,
    creator: User,
    created: z.string().nullable().optional(),
    updated: z.string().nullable().optional(),
    project: z.object({ key: z.string() }).nullable().optional(),
  }),
  /** Issue properties asked for with `properties=` (GET) or `properties: [...]` (search). */
  properties: z.record(z.string(), z.unknown()).optional(),
});
export type JiraIssue = z.infer<typeof IssueSchema>;

export const SearchPageSchema = z.object({
  issues: z.array(IssueSchema).default([]),
  nextPageToken: z.string().nullable().optional(),
  isLast: z.boolean().optional(),
});

export const CreatedSchema = z.object({ id: z.string(), key: z.string(), self: z.string().optional() });

export const CommentSchema = z.object({
  id: z.string(),
  author: User,
  body: AdfNodeSchema.nullable().optional(),
  created: z.string().optional(),
  /** Present with `expand=properties`; an array of { key, value }. */
  properties: z.array(z.object({ key: z.string(), value: z.unknown() })).optional(),
});
export type JiraComment = z.infer<typeof CommentSchema>;

export const CommentPageSchema = z.object({
  comments: z.array(CommentSchema),
  startAt: z.number().optional(),
  maxResults: z.number().optional(),
  total: z.number().optional(),
});

export const UsersSchema = z.array(
  z.object({
    accountId: z.string(),
    accountType: z.string().optional(),
    active: z.boolean().optional(),
    emailAddress: z.string().optional(),
  }),
);

export const MyselfSchema = z.object({ accountId: z.string(), displayName: z.string().optional() });

export const MyPermissionsSchema = z.object({
  permissions: z.record(z.string(), z.object({ havePermission: z.boolean() })),
});

export const EntityPropertySchema = z.object({ key: z.string(), value: z.unknown() });

const CLOSED_NAMES = /^(closed|cancel+ed|won'?t do|declined|rejected)$/i;
/** In-progress statuses that wait on someone else (Jira Service Management's "Waiting for customer", "On hold"). */
const WAITING_NAMES = /^(waiting\b.*|pending\b.*|on hold)$/i;

export function statusOf(s: { name: string; statusCategory?: { key: string } | null } | null | undefined): Status {
  switch (s?.statusCategory?.key) {
    case 'indeterminate':
      return WAITING_NAMES.test(s.name.trim()) ? 'waiting' : 'in_progress';
    case 'done':
      return CLOSED_NAMES.test(s.name.trim()) ? 'closed' : 'resolved';
    default:
      return 'open';
  }
}

/** The JQL clause that narrows a search to a port status (in_progress/waiting and resolved/closed are then told apart client-side). */
export const STATUS_JQL: Record<Status, string> = {
  open: 'statusCategory = "To Do"',
  in_progress: 'statusCategory = "In Progress"',
  waiting: 'statusCategory = "In Progress"',
  resolved: 'statusCategory = Done',
  closed: 'statusCategory = Done',
};

export const JIRA_PRIORITY: Record<Priority, string> = {
  low: 'Low',
  medium: 'Medium',
  high: 'High',
  urgent: 'Highest',
};

export function priorityOf(name: string | undefined): Priority {
  switch (name?.toLowerCase()) {
    case 'lowest':
    case 'low':
      return 'low';
    case 'high':
      return 'high';
    case 'highest':
    case 'critical':
    case 'blocker':
      return 'urgent';
    default:
      return 'medium';
  }
}

/** A JQL string literal: double-quoted, with backslash, quote and line breaks escaped. */
export function jqlString(s: string): string {
  return `"${s
    .replace(/[\\"]/g, (c) => `\\${c}`)
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t')}"`;
}

/**
 * Words for `text ~`: Lucene operators and punctuation (+ - & | ! ( ) { } [ ] ^ " ~ * ? \ : /) become spaces, so
 * the agent's text is searched as words and can never change the query's meaning. Empty when nothing is left.
 */
export function textTerms(s: string): string {
  return s
    .replace(/[+\-&|!(){}[\]^"~*?\\:/]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Jira dates look like 2026-01-02T10:00:00.000+0000; ISO 8601 wants +00:00. */
export function isoDate(s: string | null | undefined): string {
  if (!s) return new Date(0).toISOString();
  const t = Date.parse(s.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(t) ? new Date(0).toISOString() : new Date(t).toISOString();
}

export function requestPropertyOf(v: unknown): z.infer<typeof RequestProperty> | undefined {
  const p = RequestProperty.safeParse(v);
  return p.success ? p.data : undefined;
}

/** A Jira issue → the port's ticket. The requester comes from the requester label (see jira.ts). */
export function toTicket(i: JiraIssue): Ticket {
  const f = i.fields;
  const labels = f.labels ?? [];
  const reqLabel = labels.find((l) => l.startsWith(REQUESTER_LABEL_PREFIX));
  const prop = requestPropertyOf(i.properties?.[REQUEST_PROPERTY]);
  return {
    key: i.key,
    project: f.project?.key ?? i.key.split('-')[0] ?? '',
    summary: f.summary ?? '',
    description: textFromAdf(f.description),
    requester: reqLabel
      ? reqLabel.slice(REQUESTER_LABEL_PREFIX.length)
      : (f.reporter?.emailAddress?.split('@')[0] ?? f.reporter?.displayName ?? ''),
    priority: priorityOf(f.priority?.name),
    status: statusOf(f.status),
    createdBy: prop?.actor ?? f.creator?.displayName ?? 'jira',
    createdAt: isoDate(f.created),
    updatedAt: isoDate(f.updated ?? f.created),
  };
}

export function toComment(c: JiraComment): Comment {
  const prop = requestPropertyOf(c.properties?.find((p) => p.key === REQUEST_PROPERTY)?.value);
  return {
    id: c.id,
    author: prop?.actor ?? c.author?.displayName ?? 'jira',
    body: textFromAdf(c.body),
    createdAt: isoDate(c.created),
  };
}
