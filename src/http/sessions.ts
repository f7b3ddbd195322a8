/**
 * Streamable HTTP sessions of the 2025-11-25 protocol: one transport + MCP server per session, bound to the principal
 * that opened it and, when it was opened with an OAuth access token, to that token's user (issuer + subject): another
 * principal, or another user of the same principal, presenting that session id is refused (403). A refreshed token of
 * the same user keeps the session. Idle sessions are closed. (2026-07-28 requests have no session and never reach
 * this file: http/mcp.ts routes them to the SDK's per-request handler.)
 *
 * Limits, so that a client that opens sessions and never closes them (a leaky agent or a flood) cannot grow memory
 * without bound (each session costs ~25 KB of heap):
 *  - per principal, `session.max_per_principal` from the policy (default 64: a shared deployment runs many clients
 *    of one principal, and each live conversation holds a session). A new session beyond it displaces that
 *    principal's least recently used *idle* session: no POST in flight (no call running or waiting on a human).
 *    The standalone GET SSE stream does not make a session busy: SDK clients hold one open for the whole session,
 *    leaky ones included.
 *    Why evict rather than refuse: the usual cause is a client that lost or never closed its sessions, and a refusal
 *    would lock it out until idle expiry (30 min); an evicted session answers 404 with a JSON-RPC error saying why
 *    and to send initialize again, on which Streamable HTTP clients start a new one. Only the principal's own sessions are displaced, so one principal cannot push another out.
 *    When all of them are busy, nothing is displaced: 429 with Retry-After.
 *  - per process, `HttpOptions.maxSessions` (default 1,000). At the limit, a principal with an idle session of its
 *    own displaces it as above; otherwise 503 with Retry-After (when the oldest idle session will have expired).
 * Idle expiry (HttpOptions.idleMs, 30 min) closes a session with no POST in flight and no request for that long;
 * a call still running or waiting on a human is not cut off.
 * Reservations are synchronous: a session counts from the moment its initialize is accepted, so concurrent
 * initializes cannot overshoot either limit.
 *
 * Replicas (DESIGN §6): a session id is `<replica>.<random>`, this process's replica id first, so a load balancer
 * routes a session's requests by that prefix (deploy/nginx/itguard.conf). A session id naming another replica that
 * still arrives here (a balancer without the routing, or that replica gone) answers 404 saying where the session
 * lives and to send initialize again: the client starts a new session, which then lives here.
 */
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { isInitializeRequest } from '@modelcontextprotocol/server';
import type { App } from '../app.js';
import { createServer, newSession } from '../server.js';
import { config, REPLICA_ID } from '../config.js';
import { authOf } from './auth.js';

export const DEFAULT_MAX_SESSIONS = 1000;
/** Retry-After for a principal whose sessions are all busy: calls and streams usually end within seconds. */
const BUSY_RETRY_S = 5;

interface Entry {
  id: string;
  transport: NodeStreamableHTTPServerTransport;
  principal: string;
  /** The OAuth user that opened it (undefined: a static token). */
  user: string | undefined;
  lastSeen: number;
  /** POSTs of this session whose response has not ended (a call running, or waiting on a human). */
  inFlight: number;
}

export interface SessionStats {
  size: number;
  /** Most sessions live at once since start. */
  peak: number;
  evicted: number;
  refused: number;
}

/**
 * The replica a session id names: the part before the first ".", when it is a replica id (config.ts REPLICA_ID).
 * Undefined for ids of another shape (a client's invention, or an id from before replica prefixes).
 */
export function replicaOfSession(id: string): string | undefined {
  const dot = id.indexOf('.');
  const prefix = dot > 0 ? id.slice(0, dot) : '';
  return REPLICA_ID.test(prefix) ? prefix : undefined;
}

type RequestId = string | number | null;
const rpcError = (res: Response, status: number, message: string, id: RequestId = null) =>
  res.status(status).json({ jsonrpc: '2.0', error: { code: -32000, message }, id });

/** How many closed session ids are remembered with the reason (a few hundred KB at most). */
const MAX_CLOSED_REMEMBERED = 4096;

export class SessionManager {
  private readonly sessions = new Map<string, Entry>();
  private readonly byPrincipal = new Map<string, Set<Entry>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly counts = { peak: 0, evicted: 0, refused: 0 };
  /** Why recently closed sessions were closed (bounded), so a client presenting one is told why and what to do. */
  private readonly closed = new Map<string, string>();

  constructor(
    private readonly app: App,
    private readonly idleMs: number,
    private readonly maxSessions = DEFAULT_MAX_SESSIONS,
    /** The clock of idle expiry and Retry-After (HttpOptions.now). */
    private readonly now: () => number = Date.now,
    /** This replica's id, the prefix of every session id it opens (HttpOptions.replicaId, ITGUARD_REPLICA_ID). */
    readonly replica: string = config().replicaId,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(idleMs / 4, 60_000)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** How many POSTs of this session are in flight (undefined: no such session). Tests wait on it. */
  inFlight(id: string): number | undefined {
    return this.sessions.get(id)?.inFlight;
  }

  stats(): SessionStats {
    return { size: this.sessions.size, ...this.counts };
  }

  /** Closes the sessions idle past idleMs. Runs on a timer (and when the process is full); public for tests. */
  sweep(): void {
    const now = this.now();
    for (const e of this.sessions.values()) {
      if (e.inFlight === 0 && now - e.lastSeen > this.idleMs)
        this.drop(
          e,
          'closing idle session',
          'info',
          `it was idle for more than ${Math.round(this.idleMs / 60_000)} min`,
        );
    }
  }

  private add(e: Entry): void {
    this.sessions.set(e.id, e);
    let own = this.byPrincipal.get(e.principal);
    if (!own) this.byPrincipal.set(e.principal, (own = new Set()));
    own.add(e);
    this.counts.peak = Math.max(this.counts.peak, this.sessions.size);
  }

  /** Forgets a session; closes its transport unless it is already closing. Idempotent. */
  private remove(e: Entry): void {
    if (this.sessions.get(e.id) !== e) return;
    this.sessions.delete(e.id);
    const own = this.byPrincipal.get(e.principal);
    own?.delete(e);
    if (own?.size === 0) this.byPrincipal.delete(e.principal);
  }

  private drop(e: Entry, why: string, level: 'info' | 'debug', told?: string): void {
    this.remove(e);
    if (told) {
      if (this.closed.size >= MAX_CLOSED_REMEMBERED) this.closed.delete(this.closed.keys().next().value!);
      this.closed.set(e.id, told);
    }
    this.app.log[level]({ session: e.id, principal: e.principal }, why);
    void e.transport.close().catch(() => undefined);
  }

  /** The principal's least recently used session with nothing in flight. */
  private lruIdle(principal: string): Entry | undefined {
    let lru: Entry | undefined;
    for (const e of this.byPrincipal.get(principal) ?? [])
      if (e.inFlight === 0 && (!lru || e.lastSeen < lru.lastSeen)) lru = e;
    return lru;
  }

  /** Seconds until the oldest idle session anywhere expires: when a slot frees itself. */
  private retryAfterProcess(): number {
    let oldest = Infinity;
    for (const e of this.sessions.values()) if (e.inFlight === 0) oldest = Math.min(oldest, e.lastSeen);
    if (oldest === Infinity) return BUSY_RETRY_S;
    return Math.max(1, Math.ceil((oldest + this.idleMs - this.now()) / 1000));
  }

  private get maxPerPrincipal(): number {
    return this.app.policy.session.maxPerPrincipal;
  }

  /** Makes room for one more session of this principal, or answers the refusal and returns false. */
  private admit(principal: string, res: Response, id: RequestId): boolean {
    const own = this.byPrincipal.get(principal)?.size ?? 0;
    if (this.sessions.size >= this.maxSessions) this.sweep();
    const principalFull = own >= this.maxPerPrincipal;
    const processFull = this.sessions.size >= this.maxSessions;
    if (!principalFull && !processFull) return true;
    // Security: a new session only ever displaces an idle session of the same principal.
    const lru = this.lruIdle(principal);
    if (lru) {
      this.counts.evicted++;
      this.drop(
        lru,
        'session limit reached: closing the least recently used idle session',
        'debug',
        `${principal} opened more than session.max_per_principal (${this.maxPerPrincipal}) sessions and this was its least recently used idle one`,
      );
      return true;
    }
    this.counts.refused++;
    if (principalFull) {
      this.app.log.debug(
        { principal, limit: this.maxPerPrincipal },
        'new session refused: all of the principal’s sessions are busy',
      );
      res.set('Retry-After', String(BUSY_RETRY_S));
      rpcError(
        res,
        429,
        `Too many sessions: ${principal} has ${own} sessions (the limit), all busy. Close one, or retry later.`,
        id,
      );
    } else {
      this.app.log.warn(
        { principal, limit: this.maxSessions },
        'new session refused: the process is at its session limit',
      );
      res.set('Retry-After', String(this.retryAfterProcess()));
      rpcError(res, 503, 'The server is at its session limit. Retry later.', id);
    }
    return false;
  }

  /** Counts a POST in flight until its response ends, however it ends. */
  private track(e: Entry, req: Request, res: Response): void {
    e.lastSeen = this.now();
    if (req.method !== 'POST') return;
    e.inFlight++;
    res.once('close', () => {
      e.inFlight--;
      e.lastSeen = this.now();
    });
  }

  async handle(req: Request, res: Response): Promise<void> {
    const auth = authOf(res);
    const principal = auth?.principal;
    if (!auth || !principal || !this.app.principal(principal.name)) return void rpcError(res, 401, 'No principal');
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const e = this.sessions.get(sid);
      if (!e) {
        const home = replicaOfSession(sid);
        if (home !== undefined && home !== this.replica) {
          this.app.log.info(
            { session_replica: home, replica: this.replica },
            'a request for another replica’s session reached this one: told to initialize again',
          );
          return void rpcError(
            res,
            404,
            `Session not found: it lives on replica ${home}, and this is replica ${this.replica} (the load balancer routes sessions by the id's prefix; ${home} may be gone). Send initialize without Mcp-Session-Id to start a new session.`,
          );
        }
        const why = this.closed.get(sid);
        // The client is told to start over: a Streamable HTTP client re-initializes on 404.
        return void rpcError(
          res,
          404,
          `Session not found: ${why ? `it was closed because ${why}` : 'it expired, was closed, or this server restarted'}. Send initialize without Mcp-Session-Id to start a new session.`,
        );
      }
      // Security: a session belongs to the principal that opened it; another token cannot ride on it.
      if (e.principal !== principal.name) return void rpcError(res, 403, 'Session belongs to another principal');
      // Security: with OAuth, it also belongs to the human user whose token opened it.
      if (e.user !== auth.user) return void rpcError(res, 403, 'Session belongs to another user');
      this.track(e, req, res);
      await e.transport.handleRequest(req, res, req.body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
      return void rpcError(res, 400, 'No session: send initialize first, or pass Mcp-Session-Id');
    }
    const rpcId = (req.body as { id?: unknown }).id;
    if (!this.admit(principal.name, res, typeof rpcId === 'string' || typeof rpcId === 'number' ? rpcId : null)) return;
    const id = `${this.replica}.${randomUUID()}`;
    const server = createServer(this.app, { principal, session: newSession('http', this.app.now(), id) });
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      onsessionclosed: () => this.remove(entry),
    });
    const entry: Entry = {
      id,
      transport,
      principal: principal.name,
      user: auth.user,
      lastSeen: this.now(),
      inFlight: 0,
    };
    transport.onclose = () => this.remove(entry);
    // The slot is taken now, before any await: concurrent initializes see it.
    this.add(entry);
    this.track(entry, req, res);
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } finally {
      // An initialize the transport refused (bad headers, bad version) opened no session.
      if (transport.sessionId === undefined) this.drop(entry, 'initialize did not open a session', 'debug');
    }
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.byPrincipal.clear();
    await Promise.all(all.map((e) => e.transport.close().catch(() => undefined)));
  }
}
