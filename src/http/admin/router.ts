/**
 * /admin/v1: the admin API (DESIGN §6), JSON in and out, described by openapi.ts (served at /admin/v1/openapi.json).
 * A bearer token — an itguard token or, with `auth:`, an OAuth access token checked as on /mcp — names a principal;
 * each operation admits the scopes its route lists (writes: approvals:decide; reads: audit:read). Decisions go
 * through the one `decide` (src/guard/decide.ts) the console, the CLI and Slack use, with actor `admin:<principal>`
 * and, for OAuth, the person's stable identity, so separation of duties holds here exactly as there; every change is
 * audited. Errors are `{"error": {"code", "message"}}` with the HTTP status the document lists.
 */
import { resetPrincipalBreaker, resetTaskBreaker } from '../../guard/breaker-reset.js';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { App } from '../../app.js';
import { TokenRejected, type OAuthVerifier } from '../../auth/oauth.js';
import { decide } from '../../guard/decide.js';
import { listNotifications, retryNotification } from '../../notify/admin.js';
import { parseHead, type ApprovalStatus, type NotifyStatus, type RefusalReason } from '../../store/ports/index.js';
import { setKillSwitch, touchToken } from '../../guard/operator.js';
import { formatIssues } from '../../issues.js';
import { openApiDocument, ROUTES, type RouteSpec } from './openapi.js';
import { approvalView, auditView, budgetsView, killSwitchView, tasksView, type BreakerReset } from './views.js';

export interface Caller {
  principal: string;
  scopes: readonly string[];
  /** OAuth: the person, their stable identity and e-mail (separation of duties). */
  person?: string | undefined;
  personId?: string | undefined;
  email?: string | undefined;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const ALL_STATUSES: ApprovalStatus[] = ['pending', 'approved', 'executing', 'succeeded', 'failed', 'denied', 'expired'];
const REFUSAL_STATUS: Record<RefusalReason, number> = {
  not_found: 404,
  not_pending: 409,
  expired: 409,
  self_approval: 403,
  own_behalf: 403,
  target_user: 403,
  wrong_tier: 403,
};

type Handler = (req: Request, caller: Caller, body: unknown) => unknown;

function intParam(req: Request, name: string, dflt: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return dflt;
  const n = typeof raw === 'string' && /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new ApiError(400, 'INVALID_ARGUMENT', `${name}: expected an integer 1..${max}`);
  return n;
}

function oneOf<T extends string>(req: Request, name: string, allowed: readonly T[]): T | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !(allowed as readonly string[]).includes(raw))
    throw new ApiError(400, 'INVALID_ARGUMENT', `${name}: expected one of ${allowed.join(', ')}`);
  return raw as T;
}

export function adminRouter(app: App, oauth?: OAuthVerifier): express.Router {
  const router = express.Router();
  const staticTokens = app.policy.auth?.staticTokens ?? true;
  const actor = (c: Caller) => `admin:${c.principal}`;

  /** Who is calling, or an ApiError(401). */
  async function authenticate(req: Request): Promise<Caller> {
    const m = BEARER.exec(req.headers.authorization ?? '');
    if (!m) throw new ApiError(401, 'UNAUTHENTICATED', 'send Authorization: Bearer <token>');
    const raw = m[1]!;
    if (!oauth || raw.startsWith('itg_')) {
      // Security: a deployment that turned static tokens off accepts none here either.
      if (!staticTokens)
        throw new ApiError(401, 'UNAUTHENTICATED', 'itguard tokens are turned off (auth.static_tokens: false)');
      const t = raw.length <= 512 ? await app.store.tokens.verify(raw) : undefined;
      const p = t && app.principal(t.principal);
      if (!t || !p) throw new ApiError(401, 'UNAUTHENTICATED', 'unknown or revoked token');
      touchToken(app, t.id, app.now());
      return { principal: p.name, scopes: p.scopes };
    }
    try {
      const v = await oauth.verify(raw);
      const p = app.principal(v.principal);
      if (!p) throw new ApiError(403, 'SCOPE_DENIED', `the token maps to no principal of the policy`);
      return { principal: p.name, scopes: p.scopes, person: v.onBehalfOf, personId: v.onBehalfOfId, email: v.email };
    } catch (e) {
      if (!(e instanceof TokenRejected)) throw e;
      if (e.kind === 'unavailable')
        throw new ApiError(503, 'UNAVAILABLE', 'the identity provider cannot be reached; retry later');
      throw new ApiError(401, 'UNAUTHENTICATED', 'the access token is not valid here');
    }
  }

  const handlers: Record<string, Handler> = {
    listApprovals: async (req) => {
      const status = oneOf(req, 'status', ['all', ...ALL_STATUSES] as const) ?? 'pending';
      const rows = await app.store.approvals.list(
        status === 'all' ? ALL_STATUSES : [status],
        intParam(req, 'limit', 100, 500),
      );
      return { approvals: rows.map(approvalView) };
    },
    getApproval: async (req) => {
      const row = await app.store.approvals.get(String(req.params.id));
      if (!row) throw new ApiError(404, 'NOT_FOUND', `no request ${String(req.params.id)}`);
      return approvalView(row);
    },
    approve: (req, c, body) => decision(req, c, body, true),
    deny: (req, c, body) => decision(req, c, body, false),
    getKillSwitch: async () => killSwitchView(await app.store.killSwitch.state()),
    kill: async (_req, c, body) => {
      const { reason } = body as { reason: string };
      const st = await setKillSwitch(app, true, reason, actor(c));
      app.log.warn({ actor: actor(c), reason }, 'kill switch engaged from the admin API');
      return killSwitchView(st);
    },
    resume: async (_req, c, body) => {
      const reason = (body as { reason?: string }).reason ?? 'resumed from the admin API';
      const st = await setKillSwitch(app, false, reason, actor(c));
      app.log.warn({ actor: actor(c), reason }, 'kill switch released from the admin API');
      return killSwitchView(st);
    },
    listTasks: (req) => tasksView(app, oneOf(req, 'tripped', ['true', 'false'] as const) === 'true', app.now()),
    getBudgets: () => budgetsView(app, app.now()),
    resetBreaker: (_req, c, body) => resetBreaker(c, body as { principal?: string; task?: string }),
    listNotifications: async (req) => ({
      notifications: await listNotifications(app.store.notify, {
        status: oneOf<NotifyStatus>(req, 'status', ['pending', 'sent', 'failed', 'cancelled']),
        requestId: typeof req.query.request_id === 'string' ? req.query.request_id : undefined,
        limit: intParam(req, 'limit', 100, 500),
      }),
    }),
    retryNotification: async (req, c) => {
      const id = String(req.params.id);
      const r = await retryNotification(app, id, actor(c), () => app.notifier?.kick());
      if (!r.ok) throw new ApiError(r.code === 'NOT_FOUND' ? 404 : 409, r.code, r.message);
      return r.notification;
    },
    auditTail: async (req) => ({
      records: (await app.store.auditLog.tail(intParam(req, 'n', 20, 1000))).map(auditView),
    }),
    auditShow: async (req) => {
      const rows = await app.store.auditLog.byTrace(String(req.params.id));
      if (!rows.length) throw new ApiError(404, 'NOT_FOUND', `no audit records with trace id ${String(req.params.id)}`);
      return { records: rows.map(auditView) };
    },
    auditShowTask: async (req) => {
      const rows = await app.store.auditLog.byTask(String(req.params.id));
      if (!rows.length) throw new ApiError(404, 'NOT_FOUND', `no audit records of task ${String(req.params.id)}`);
      return { records: rows.map(auditView) };
    },
    auditVerify: async (req) => {
      const raw = req.query.expect_head;
      const expectHead = raw === undefined ? undefined : parseHead(raw);
      if (raw !== undefined && !expectHead)
        throw new ApiError(400, 'INVALID_ARGUMENT', 'expect_head: expected SEQ:HASH as audit verify prints it');
      const r = await app.store.auditLog.verify(expectHead ? { expectHead } : {});
      return r.ok ? r : { ok: false, count: r.count, broken_at: r.brokenAt, reason: r.reason };
    },
  };

  async function decision(req: Request, c: Caller, body: unknown, approve: boolean) {
    const id = String(req.params.id);
    const note = (body as { note?: string }).note;
    // Every rule (state, tier, separation of duties by identity) and the audit of the outcome: src/guard/decide.ts.
    const d = await decide(app, {
      id,
      approve,
      note,
      actor: {
        name: actor(c),
        via: 'admin',
        principal: c.principal,
        person: c.person,
        personId: c.personId,
        email: c.email,
      },
    });
    if (!d.ok) throw new ApiError(REFUSAL_STATUS[d.reason], d.reason.toUpperCase(), `${id}: ${d.message}`);
    app.log.info({ actor: actor(c), request_id: id, approve }, 'approval decided from the admin API');
    return approvalView(d.row);
  }

  async function resetBreaker(
    c: Caller,
    b: { principal?: string; task?: string },
  ): Promise<z.infer<typeof BreakerReset>> {
    const now = app.now();
    if (b.principal !== undefined) {
      if (!app.principal(b.principal))
        throw new ApiError(404, 'NOT_FOUND', `"${b.principal}" is not a principal in the policy`);
      const before = await resetPrincipalBreaker(app, b.principal, actor(c), now);
      return { reset: [{ level: 'principal', principal: b.principal, task: null, was_tripped: !!before.trip }] };
    }
    const task = b.task!;
    const was = await resetTaskBreaker(app, task, app.policy.task.idleMinutes * 60_000, actor(c), now);
    if (!was.length) throw new ApiError(404, 'NOT_FOUND', `no open task with id "${task}"`);
    return {
      reset: was.map((t) => ({ level: 'task' as const, principal: t.principal, task: t.id, was_tripped: !!t.trip })),
    };
  }

  router.use((_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    next();
  });
  router.use(express.json({ limit: '16kb', strict: true }));

  router.get('/openapi.json', (req, res) => {
    res.json(openApiDocument(`${req.protocol}://${req.get('host') ?? 'localhost'}${req.baseUrl}`));
  });

  for (const r of ROUTES) {
    const path = r.path.replace(/\{(\w+)\}/g, ':$1');
    router[r.method](path, (req, res, next) => void serve(r, req, res).catch(next));
  }

  async function serve(r: RouteSpec, req: Request, res: Response): Promise<void> {
    const caller = await authenticate(req);
    // Security: the operation's scopes, checked before the body is looked at.
    if (!r.scopes.some((s) => caller.scopes.includes(s)))
      throw new ApiError(
        403,
        'SCOPE_DENIED',
        `${r.operationId} needs the scope ${r.scopes.join(' or ')}; ${caller.principal} lacks it`,
      );
    let body: unknown = {};
    if (r.body) {
      const parsed = r.body.safeParse(req.body ?? {});
      if (!parsed.success)
        throw new ApiError(400, 'INVALID_ARGUMENT', formatIssues(parsed.error.issues).join('; ') || 'invalid body');
      body = parsed.data;
    }
    res.json(await handlers[r.operationId]!(req, caller, body));
  }

  router.use((_req, res) => {
    res
      .status(404)
      .json({ error: { code: 'NOT_FOUND', message: 'no such admin API path; see /admin/v1/openapi.json' } });
  });
  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof ApiError) {
      if (err.status === 401) res.set('WWW-Authenticate', 'Bearer realm="itguard-admin"');
      res.status(err.status).json({ error: { code: err.code, message: err.message } });
      return;
    }
    const e = err as { type?: string; status?: number };
    if (e.type === 'entity.parse.failed')
      return void res.status(400).json({ error: { code: 'INVALID_JSON', message: 'the body is not valid JSON' } });
    if (e.type === 'entity.too.large')
      return void res.status(413).json({ error: { code: 'TOO_LARGE', message: 'the body is larger than 16 KB' } });
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500)
      return void res
        .status(e.status)
        .json({ error: { code: 'BAD_REQUEST', message: 'the request could not be read' } });
    app.log.error({ err }, 'admin API error');
    res.status(500).json({ error: { code: 'INTERNAL', message: 'something went wrong; the error was logged' } });
  };
  router.use(onError);
  return router;
}
