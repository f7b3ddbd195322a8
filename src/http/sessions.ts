/**
 * Streamable HTTP sessions: one transport + MCP server per session, bound to the principal that opened it.
 * Another principal presenting that session id is refused (403). Idle sessions are closed.
 */
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { App } from '../app.js';
import { createServer, newSession } from '../server.js';

interface Entry {
  transport: StreamableHTTPServerTransport;
  server: Server;
  principal: string;
  lastSeen: number;
}

const rpcError = (res: Response, status: number, message: string) =>
  res.status(status).json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });

export class SessionManager {
  private readonly sessions = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly app: App,
    private readonly idleMs: number,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(idleMs / 4, 60_000)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, e] of this.sessions) {
      if (now - e.lastSeen > this.idleMs) {
        this.app.log.info({ session: id, principal: e.principal }, 'closing idle session');
        this.sessions.delete(id);
        void e.transport.close();
      }
    }
  }

  async handle(req: Request, res: Response): Promise<void> {
    const principalName = (req.auth?.extra?.principal as string | undefined) ?? '';
    const principal = this.app.principal(principalName);
    if (!principal) return void rpcError(res, 401, 'No principal');
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const e = this.sessions.get(sid);
      if (!e) return void rpcError(res, 404, 'Session not found');
      // Security: a session belongs to the principal that opened it; another token cannot ride on it.
      if (e.principal !== principal.name) return void rpcError(res, 403, 'Session belongs to another principal');
      e.lastSeen = Date.now();
      await e.transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
      return void rpcError(res, 400, 'No session: send initialize first, or pass Mcp-Session-Id');
    }
    const id = randomUUID();
    const server = createServer(this.app, { principal, session: newSession('http', this.app.now(), id) });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      onsessioninitialized: (sessionId) => {
        this.sessions.set(sessionId, { transport, server, principal: principal.name, lastSeen: Date.now() });
      },
      onsessionclosed: (sessionId) => {
        this.sessions.delete(sessionId);
      },
    });
    transport.onclose = () => {
      this.sessions.delete(id);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((e) => e.transport.close().catch(() => undefined)));
  }
}
