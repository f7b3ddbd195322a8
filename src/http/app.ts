/**
 * The HTTP side: /mcp (Streamable HTTP, both protocol eras: mcp.ts; itguard's bearer tokens and, with `auth:` in the
 * policy, OAuth access tokens), /.well-known/oauth-protected-resource[/mcp], /healthz, /metrics, /verify (MFA page),
 * /reset (reset links), /console, /admin/v1 (admin API), /slack/actions (Approve/Deny from Slack, with `notify.slack`).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { App } from '../app.js';
import { config } from '../config.js';
import { createOAuthVerifier, type VerifierOptions } from '../auth/oauth.js';
import { bearerAuth } from './auth.js';
import { leanJson } from './body.js';
import { resourceMetadataRouter } from './resource-metadata.js';
import { noOAuthRouter } from './no-oauth.js';
import { errorHandler } from './errors.js';
import { mcpEndpoint } from './mcp.js';
import { checkOrigin, hostHeaderValidation, originPolicy } from './origin.js';
import { SessionManager } from './sessions.js';
import { verifyRouter } from './verify.js';
import { resetRouter } from './reset.js';
import { consoleRouter } from './console.js';
import { adminRouter } from './admin/router.js';
import { slackActionsRouter } from './slack-actions.js';

export interface HttpOptions {
  host: string;
  port: number;
  /** Close sessions idle this long (ms). */
  idleMs?: number;
  /** Live sessions in this process, all principals together (default 1,000); past it, 503 (see sessions.ts). */
  maxSessions?: number;
  /** The largest /mcp request body accepted (bytes; default 1 MiB); past it, 413. */
  bodyLimitBytes?: number;
  allowedHosts?: string[];
  allowedOrigins?: string[];
  /** The clock idle expiry reads (default Date.now); tests move it instead of waiting. */
  now?: () => number;
  /** This replica's id, the prefix of its session ids (default ITGUARD_REPLICA_ID, else the host name). */
  replicaId?: string;
  /** How long /healthz waits for the store's answer before it reports the store unavailable (ms, default 5000). */
  healthTimeoutMs?: number;
  /** OAuth verifier knobs for tests (fetch, JWKS cooldown); the policy's `auth:` block says whether OAuth is on. */
  oauth?: Omit<VerifierOptions, 'isPrincipal' | 'now'>;
}

export interface RunningHttp {
  url: string;
  port: number;
  sessions: SessionManager;
  server: HttpServer;
  close(): Promise<void>;
}

export async function startHttp(app: App, opts: HttpOptions): Promise<RunningHttp> {
  const web = express();
  web.disable('x-powered-by');
  const replica = opts.replicaId ?? config().replicaId;
  const sessions = new SessionManager(app, opts.idleMs ?? 30 * 60_000, opts.maxSessions, opts.now, replica);
  // /mcp, the hot path, is dispatched straight through its own handler chain (mcpDirect); everything else, and any
  // /mcp request the chain does not serve, goes to the express router.
  const direct: { mcp?: (req: IncomingMessage, res: ServerResponse) => boolean } = {};
  const http = createHttpServer((req, res) => direct.mcp?.(req, res) || web(req, res));
  // The port is known only after listen (port 0 in tests); the allow lists are built then.
  let guard = originPolicy(opts.host, opts.port);
  // Read `guard` when called: it is replaced once the port is known. The /mcp fast path runs the same two.
  const hostCheck: RequestHandler = (req, res, next) => hostHeaderValidation(guard.hosts)(req, res, next);
  const originCheck: RequestHandler = (req, res, next) => checkOrigin(guard)(req, res, next);
  web.use(hostCheck);
  // Public metadata, readable from any origin: before the Origin check.
  // Without `auth:`, the OAuth discovery and registration paths say so in JSON (no-oauth.ts).
  web.use(app.policy.auth ? resourceMetadataRouter(app.policy.auth) : noOAuthRouter());
  web.use(originCheck);

  web.get('/healthz', healthz(app, replica, sessions, opts.healthTimeoutMs ?? 5000));
  web.use('/verify', verifyRouter(app));
  web.use('/reset', resetRouter(app));
  const oauth =
    app.policy.auth &&
    createOAuthVerifier(app.policy.auth, {
      ...opts.oauth,
      isPrincipal: (name) => app.principal(name) !== undefined,
      now: () => app.now(),
    });
  web.use('/console', consoleRouter(app, oauth, { replicaId: replica }));
  // The admin API (DESIGN §6): bearer tokens with approvals:decide / audit:read; its OpenAPI document is public.
  web.use('/admin/v1', adminRouter(app, oauth));
  // Slack's interactivity callbacks (Approve/Deny); verified by Slack's signature, not by a bearer token.
  if (app.policy.notify?.slack) web.use('/slack', slackActionsRouter(app));

  web.get('/metrics', async (_req, res) => {
    const registry = app.metrics.registry;
    if (!registry) return void res.status(404).send('metrics are not enabled in this process\n');
    res.type(registry.contentType).send(await registry.metrics());
  });

  const auth = bearerAuth(app, oauth);
  const limit = opts.bodyLimitBytes ?? 1024 * 1024;
  // Plain JSON bodies are read by leanJson; compressed, chunked and other bodies by express.json (body.ts).
  const body = leanJson(limit, express.json({ limit }));
  const endpoint = mcpEndpoint(app, sessions);
  const mcp = endpoint.handler;
  web.post('/mcp', auth, body, mcp);
  web.get('/mcp', auth, mcp);
  web.delete('/mcp', auth, mcp);

  // Parser and router errors (bad percent-encoding, bodies) are the client's: 4xx, no stack (errors.ts).
  const onError = errorHandler(app.log);
  web.use(onError);
  direct.mcp = mcpDirect(web, onError, [hostCheck, originCheck, auth], body, mcp);

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  guard = originPolicy(
    opts.host,
    port,
    [...(opts.allowedHosts ?? []), ...config().allowedHosts],
    [...(opts.allowedOrigins ?? []), ...config().allowedOrigins],
  );
  const shownHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  // A wildcard bind is reached through loopback here; its own Host check accepts loopback names only.
  const url = `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost === '[::]' ? '[::1]' : shownHost}:${port}`;
  app.links.base = config().publicUrl ?? url;
  app.log.info({ replica }, 'replica id (the prefix of this process’s session ids)');
  return {
    url,
    port,
    sessions,
    server: http,
    async close() {
      await endpoint.close();
      await sessions.closeAll();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}

/**
 * `GET /healthz`: 200 when the store answers a cheap read (App.storeHealth) and the kill switch can be read, else 503
 * naming the store and why, for a load balancer's health check. Both carry this replica's id. No token: the answer
 * holds no secret (the store's detail is its own message with any URL password masked, checked again here).
 */
function healthz(app: App, replica: string, sessions: SessionManager, timeoutMs: number): RequestHandler {
  // The store's kind from its last answer, to name it when it gives none (a timeout, a throw).
  let kind: string = 'unknown';
  const unavailable = (res: Response, detail: string) =>
    res.status(503).json({ status: 'unavailable', replica, store: { kind, ok: false, detail: maskUrls(detail) } });
  return async (_req, res) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
    });
    const store = await Promise.race([app.storeHealth().catch((e: unknown) => String(e)), late]).finally(() =>
      clearTimeout(timer),
    );
    if (typeof store === 'string') return void unavailable(res, store);
    kind = store.kind;
    if (!store.ok) return void unavailable(res, store.detail ?? 'the store did not say why');
    try {
      const ks = await app.store.killSwitch.state();
      res.json({
        status: 'ok',
        replica,
        store: { kind, ok: true },
        kill_switch: ks.engaged ? 'engaged' : 'off',
        sessions: sessions.size,
      });
    } catch (e) {
      unavailable(res, `the kill switch could not be read: ${String(e)}`);
    }
  };
}

/** `scheme://user:password@` → `scheme://user:***@`: a store error that quotes its URL does not show the password. */
export const maskUrls = (s: string): string => s.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi, '$1:***@');

/** In stdio mode: a loopback listener that serves only the MFA verification page. */
export async function startVerifyListener(
  app: App,
  port = config().verifyPort ?? 0,
): Promise<{ url: string; close(): Promise<void> }> {
  const web = express();
  web.disable('x-powered-by');
  const http = createHttpServer(web);
  let guard = originPolicy('127.0.0.1', port);
  web.use((req, res, next) => hostHeaderValidation(guard.hosts)(req, res, next));
  web.use((req, res, next) => checkOrigin(guard)(req, res, next));
  web.use('/verify', verifyRouter(app));
  web.use('/reset', resetRouter(app));
  web.use(errorHandler(app.log));
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (http.address() as AddressInfo).port;
  guard = originPolicy('127.0.0.1', bound);
  const url = `http://127.0.0.1:${bound}`;
  app.links.base = config().publicUrl ?? url;
  return {
    url,
    async close() {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}

/**
 * The /mcp routes without the router: the same handlers the router would run for `POST|GET|DELETE /mcp` (Host,
 * Origin, the bearer check, for POST the body parser, the endpoint), called in that order on a request given
 * express's request and response prototypes, as `app.handle` gives them. The router's matching of every other
 * route on every call is what this saves. Returns false, leaving the request to the router, for anything else
 * (another path or method, `/MCP`, `/mcp/x`): the router serves or refuses those exactly as before.
 */
function mcpDirect(
  web: Express,
  onError: ErrorRequestHandler,
  before: RequestHandler[],
  body: RequestHandler,
  endpoint: RequestHandler,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const post = [...before, body, endpoint];
  const other = [...before, endpoint];
  return (rawReq, rawRes) => {
    const url = rawReq.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = rawReq.method;
    if ((path !== '/mcp' && path !== '/mcp/') || (method !== 'POST' && method !== 'GET' && method !== 'DELETE'))
      return false;
    const req = Object.setPrototypeOf(rawReq, web.request) as Request;
    const res = Object.setPrototypeOf(rawRes, web.response) as Response;
    Object.assign(req, { res, originalUrl: url, baseUrl: '', params: {} });
    Object.assign(res, { req, locals: Object.create(null) as Record<string, unknown> });
    const chain = method === 'POST' ? post : other;
    let i = 0;
    const next = (err?: unknown): void => {
      if (err !== undefined && err !== 'route' && err !== 'router') return void onError(err, req, res, () => undefined);
      const h = chain[i++];
      if (!h) return;
      try {
        const r = h(req, res, next) as unknown;
        if (r instanceof Promise) r.catch(next);
      } catch (e) {
        next(e);
      }
    };
    next();
    return true;
  };
}
