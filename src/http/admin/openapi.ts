/**
 * The admin API's OpenAPI 3.1 document, served at /admin/v1/openapi.json. Paths and scopes are written here once;
 * the router (router.ts) is built from the same table (ROUTES), and the response schemas are generated from the zod
 * schemas the handlers' documents are typed by (views.ts), so the document describes exactly what is served.
 */
import { z } from 'zod';
import {
  Approval,
  ApprovalList,
  AuditList,
  AuditRecord,
  AuditVerify,
  BreakerReset,
  Budgets,
  ErrorDoc,
  KillSwitch,
  Notification,
  NotificationList,
  Task,
  TaskList,
} from './views.js';

export const DECIDE = 'approvals:decide';
export const READ = 'audit:read';

export interface Param {
  name: string;
  in: 'path' | 'query';
  description: string;
  schema: Record<string, unknown>;
}

export interface RouteSpec {
  method: 'get' | 'post';
  /** OpenAPI form, e.g. /approvals/{id}. */
  path: string;
  operationId: string;
  summary: string;
  /** Any one of these scopes admits the call. */
  scopes: readonly string[];
  params?: Param[];
  body?: z.ZodType;
  response: z.ZodType;
  /** Error statuses this operation can answer besides 400/401/403. */
  errors?: number[];
}

const id = (what: string): Param => ({ name: 'id', in: 'path', description: what, schema: { type: 'string' } });

export const Note = z.strictObject({ note: z.string().trim().min(1).max(500).optional() }).meta({ id: 'DecisionBody' });
export const Reason = z
  .strictObject({ reason: z.string().trim().min(1).max(500) })
  .meta({ id: 'KillSwitchBody', description: 'Why (kept in the audit).' });
export const ReleaseReason = z
  .strictObject({ reason: z.string().trim().min(1).max(500).optional() })
  .meta({ id: 'ReleaseBody' });
export const BreakerBody = z
  .union([
    z.strictObject({ principal: z.string().min(1).max(128) }),
    z.strictObject({ task: z.string().min(1).max(128) }),
  ])
  .meta({
    id: 'BreakerResetBody',
    description: 'Either a principal (its fleet breaker) or a task id (its own breaker).',
  });

export const ROUTES: readonly RouteSpec[] = [
  {
    method: 'get',
    path: '/approvals',
    operationId: 'listApprovals',
    summary: 'Approval requests (pending by default).',
    scopes: [DECIDE, READ],
    params: [
      {
        name: 'status',
        in: 'query',
        description: 'pending (default), all, or one status',
        schema: {
          type: 'string',
          enum: ['pending', 'all', 'approved', 'executing', 'succeeded', 'failed', 'denied', 'expired'],
        },
      },
      {
        name: 'limit',
        in: 'query',
        description: '1..500, default 100',
        schema: { type: 'integer', minimum: 1, maximum: 500 },
      },
    ],
    response: ApprovalList,
  },
  {
    method: 'get',
    path: '/approvals/{id}',
    operationId: 'getApproval',
    summary: 'One approval request.',
    scopes: [DECIDE, READ],
    params: [id('request id, e.g. REQ-…')],
    response: Approval,
    errors: [404],
  },
  {
    method: 'post',
    path: '/approvals/{id}/approve',
    operationId: 'approve',
    summary: 'Approve a pending approval-tier request (the rules of the console: not your own, not on your behalf).',
    scopes: [DECIDE],
    params: [id('request id')],
    body: Note,
    response: Approval,
    errors: [404, 409],
  },
  {
    method: 'post',
    path: '/approvals/{id}/deny',
    operationId: 'deny',
    summary: 'Deny a pending request (any tier); its cap reservation is released.',
    scopes: [DECIDE],
    params: [id('request id')],
    body: Note,
    response: Approval,
    errors: [404, 409],
  },
  {
    method: 'get',
    path: '/kill-switch',
    operationId: 'getKillSwitch',
    summary: 'The kill switch.',
    scopes: [DECIDE, READ],
    response: KillSwitch,
  },
  {
    method: 'post',
    path: '/kill-switch/engage',
    operationId: 'kill',
    summary: 'Engage the kill switch: every tool call but guard_status is refused, running and waiting ones aborted.',
    scopes: [DECIDE],
    body: Reason,
    response: KillSwitch,
  },
  {
    method: 'post',
    path: '/kill-switch/release',
    operationId: 'resume',
    summary: 'Release the kill switch.',
    scopes: [DECIDE],
    body: ReleaseReason,
    response: KillSwitch,
  },
  {
    method: 'get',
    path: '/tasks',
    operationId: 'listTasks',
    summary: 'Open tasks with their usage (itguard tasks).',
    scopes: [READ],
    params: [{ name: 'tripped', in: 'query', description: 'true: tripped tasks only', schema: { type: 'boolean' } }],
    response: TaskList,
  },
  {
    method: 'get',
    path: '/budgets',
    operationId: 'getBudgets',
    summary: "Each windowed budget's usage and each principal's fleet breaker (itguard budgets).",
    scopes: [READ],
    response: Budgets,
  },
  {
    method: 'post',
    path: '/breakers/reset',
    operationId: 'resetBreaker',
    summary: "Clear a principal's fleet breaker or a task's own breaker (itguard breaker reset).",
    scopes: [DECIDE],
    body: BreakerBody,
    response: BreakerReset,
    errors: [404],
  },
  {
    method: 'get',
    path: '/notifications',
    operationId: 'listNotifications',
    summary: 'Approver notification deliveries (itguard notify list).',
    scopes: [READ],
    params: [
      {
        name: 'status',
        in: 'query',
        description: 'pending, sent, failed or cancelled',
        schema: { type: 'string', enum: ['pending', 'sent', 'failed', 'cancelled'] },
      },
      { name: 'request_id', in: 'query', description: 'one request’s deliveries', schema: { type: 'string' } },
      {
        name: 'limit',
        in: 'query',
        description: '1..500, default 100',
        schema: { type: 'integer', minimum: 1, maximum: 500 },
      },
    ],
    response: NotificationList,
  },
  {
    method: 'post',
    path: '/notifications/{id}/retry',
    operationId: 'retryNotification',
    summary: 'Make a failed or cancelled delivery due again now (itguard notify retry).',
    scopes: [DECIDE],
    params: [id('notification id')],
    response: Notification,
    errors: [404, 409],
  },
  {
    method: 'get',
    path: '/audit',
    operationId: 'auditTail',
    summary: 'The last N audit records, oldest first (itguard audit tail).',
    scopes: [READ],
    params: [
      {
        name: 'n',
        in: 'query',
        description: '1..1000, default 20',
        schema: { type: 'integer', minimum: 1, maximum: 1000 },
      },
    ],
    response: AuditList,
  },
  {
    method: 'get',
    path: '/audit/traces/{id}',
    operationId: 'auditShow',
    summary: 'Every record of one call, by trace id (itguard audit show).',
    scopes: [READ],
    params: [id('trace id')],
    response: AuditList,
    errors: [404],
  },
  {
    method: 'get',
    path: '/audit/tasks/{id}',
    operationId: 'auditShowTask',
    summary: "One task's calls in order (itguard audit show --task).",
    scopes: [READ],
    params: [id('task id')],
    response: AuditList,
    errors: [404],
  },
  {
    method: 'get',
    path: '/audit/verify',
    operationId: 'auditVerify',
    summary: 'Recompute the hash chain; ok false names the first broken link (itguard audit verify).',
    scopes: [READ],
    params: [
      {
        name: 'expect_head',
        in: 'query',
        description: 'SEQ:HASH anchored elsewhere: fails when the chain is shorter or diverges',
        schema: { type: 'string', pattern: '^\\d+:[0-9a-f]{64}$' },
      },
    ],
    response: AuditVerify,
  },
];

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid input: the error names the field and the rule.',
  401: 'No bearer token, or one that is unknown, revoked or expired.',
  403: 'The principal lacks the scope, or a rule refuses the decision (self-approval, on your behalf, wrong tier).',
  404: 'Not found.',
  409: 'Conflict: the request is no longer pending, has expired, or the delivery is not failed.',
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const idOf = (s: z.ZodType): string => (z.globalRegistry.get(s)?.id as string | undefined) ?? 'unknown';

/** The OpenAPI 3.1 document for a server at `serverUrl` (the admin base, e.g. https://itguard.example.com/admin/v1). */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  // One conversion of the registry: schemas that nest others (ApprovalList → Approval) refer to them by
  // #/components/schemas/<id>, as OpenAPI wants.
  const names = new Set(
    [ErrorDoc, Note, Reason, ReleaseReason, BreakerBody, Task, AuditRecord, ...ROUTES.map((r) => r.response)].map(idOf),
  );
  const all = z.toJSONSchema(z.globalRegistry, {
    target: 'draft-2020-12',
    io: 'output',
    uri: (id) => `#/components/schemas/${id}`,
  }).schemas;
  const components: Record<string, unknown> = {};
  for (const name of names) {
    const { $schema: _s, $id: _i, ...js } = all[name] as Record<string, unknown>;
    components[name] = js;
  }
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const errors = [400, 401, 403, ...(r.errors ?? [])];
    (paths[r.path] ??= {})[r.method] = {
      operationId: r.operationId,
      summary: r.summary,
      description: `Scopes: ${r.scopes.join(' or ')}.`,
      security: [{ bearer: [...r.scopes] }],
      'x-itguard-scopes': r.scopes,
      ...(r.params ? { parameters: r.params.map((p) => ({ ...p, required: p.in === 'path' })) } : {}),
      ...(r.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: ref(idOf(r.body)) } } } }
        : {}),
      responses: {
        200: { description: 'OK', content: { 'application/json': { schema: ref(idOf(r.response)) } } },
        ...Object.fromEntries(
          errors.map((s) => [
            s,
            { description: STATUS_TEXT[s] ?? 'Error', content: { 'application/json': { schema: ref('Error') } } },
          ]),
        ),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'itguard admin API',
      version: '1',
      description:
        'What an operator or a security team scripts: approvals, the kill switch, tasks and budgets, breakers, ' +
        'notifications and the audit. The same rules, code and audit records as the console and the CLI; every ' +
        'change is audited with actor admin:<principal>. Writes need approvals:decide; reads audit:read (approvals ' +
        'and the kill switch also approvals:decide). Errors: {"error": {"code", "message"}}.',
    },
    servers: [{ url: serverUrl }],
    components: {
      schemas: components,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'An itguard token (itguard token create --principal P) or, with auth:, an OAuth access token.',
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
