/**
 * `/mcp` after the bearer check and the body parser: one endpoint, two protocol eras, one handler (server.ts).
 *
 *  - 2025-11-25 requests (`initialize`, anything without the 2026 `_meta` envelope claim, body-less GET/DELETE) go
 *    to the sessions of sessions.ts: a sessionful Streamable HTTP transport per Mcp-Session-Id, bound to the
 *    principal that opened it, idle expiry, per-principal and per-process limits, server-initiated elicitation.
 *  - 2026-07-28 requests (the envelope claim) go to the SDK's per-request handler (`createMcpHandler`, strict:
 *    `legacy: 'reject'`). There is no session: each request gets its own instance, bound to the principal of the
 *    token it carries. The SDK answers its own protocol errors there (-32602, -32020/-32022, unsupported revision).
 *
 * The split is the SDK's own classification (`classifyInboundRequest`, behind `isLegacyRequest`), so this router and the modern handler never
 * disagree. Host/Origin checks, the bearer token and the body limit ran before, for both.
 */
import type { Request, RequestHandler, Response } from 'express';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { classifyInboundRequest, createMcpHandler, type McpHttpHandler } from '@modelcontextprotocol/server';
import type { App } from '../app.js';
import type { Principal } from '../core/tool.js';
import { createServer } from '../server.js';
import type { SessionManager } from './sessions.js';

export interface McpEndpoint {
  handler: RequestHandler;
  /** Ends the modern leg's in-flight exchanges (the sessions are closed by their manager). */
  close(): Promise<void>;
}

/** The token's principal, and the person it acts for (OAuth), as bearerAuth left them in `req.auth`. */
function principalOf(app: App, req: Pick<Request, 'auth'>): Principal | undefined {
  const p = app.principal((req.auth?.extra?.principal as string | undefined) ?? '');
  const onBehalfOf = req.auth?.extra?.onBehalfOf as string | undefined;
  const onBehalfOfId = req.auth?.extra?.onBehalfOfId as string | undefined;
  return p && (onBehalfOf || onBehalfOfId ? { ...p, onBehalfOf, onBehalfOfId } : p);
}

/**
 * Whether the SDK's entry would serve this request as 2025-era traffic: the SDK's own classifier
 * (`classifyInboundRequest`, what `isLegacyRequest` runs) on the already-parsed body and the three headers it
 * reads, without building a web `Request` per call.
 */
function isLegacy(req: Request): boolean {
  // Body-less GET/DELETE are 2025 session operations; a POST the JSON parser left alone (not JSON) goes to the
  // session transport too, which answers it as today (415 / 400).
  if (req.method !== 'POST' || req.body === undefined) return true;
  const outcome = classifyInboundRequest({
    httpMethod: 'POST',
    protocolVersionHeader: header(req, 'mcp-protocol-version'),
    mcpMethodHeader: header(req, 'mcp-method'),
    mcpNameHeader: header(req, 'mcp-name'),
    body: req.body as unknown,
  });
  return outcome.kind === 'legacy';
}

/** A header as `Headers.get` gives it: repeated values joined with ", ". */
function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function mcpEndpoint(app: App, sessions: SessionManager): McpEndpoint {
  const onerror = (e: Error) => app.log.debug({ err: e }, 'mcp: 2026-07-28 request error');
  const modern: McpHttpHandler = createMcpHandler(
    ({ authInfo }) => {
      // Checked by the router before the handler runs; the factory sees the same token.
      const principal = principalOf(app, { auth: authInfo });
      if (!principal) throw new Error('no principal for this request');
      return createServer(app, { principal, era: 'modern' });
    },
    { legacy: 'reject', onerror },
  );
  const serveModern = toNodeHandler(modern, { onerror });

  async function route(req: Request, res: Response): Promise<void> {
    if (isLegacy(req)) return sessions.handle(req, res);
    // Security: the token's principal must still be in the policy (the verifier checked; this is the same test as
    // a session's).
    if (!principalOf(app, req))
      return void res.status(401).json({ jsonrpc: '2.0', error: { code: -32000, message: 'No principal' }, id: null });
    await serveModern(req, res, req.body);
  }

  return {
    handler: (req, res, next) => {
      route(req, res).catch(next);
    },
    close: () => modern.close(),
  };
}
