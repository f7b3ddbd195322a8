/**
 * What the cloud stand-ins (Okta, Microsoft Graph, Confluence) share: a loopback HTTP server, JSON bodies, a log of
 * the requests seen (with their Authorization header, so tests can check what was sent and that nothing leaked),
 * and scripted faults: `failNext(n, status, headers, body)` answers the next n requests with that instead;
 * `stallNext(n)` leaves the next n requests unanswered (a backend that does not answer) until `close()`;
 * `loseNextAnswer(n)` carries out the next n requests and then drops the connection (the answer is lost).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  authorization: string | undefined;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Fault extends Reply {
  left: number;
  match?: (s: Seen) => boolean;
  stall?: true;
  lose?: true;
}

export abstract class StandinServer {
  readonly seen: Seen[] = [];
  url = '';
  private server: Server | undefined;
  private faults: Fault[] = [];

  /** The next n requests (matching `match`, if given) get this answer instead. */
  failNext(n: number, reply: Reply, match?: (s: Seen) => boolean): void {
    this.faults.push({ ...reply, left: n, ...(match ? { match } : {}) });
  }

  /** The next n requests (matching `match`, if given) get no answer at all: the connection stays open. */
  stallNext(n: number, match?: (s: Seen) => boolean): void {
    this.faults.push({ status: 0, left: n, stall: true, ...(match ? { match } : {}) });
  }

  /** The next n requests (matching `match`) are carried out, but the connection drops before the answer. */
  loseNextAnswer(n: number, match?: (s: Seen) => boolean): void {
    this.faults.push({ status: 0, left: n, lose: true, ...(match ? { match } : {}) });
  }

  protected abstract handle(s: Seen): Reply | Promise<Reply>;
  /** Headers every answer carries (Okta's X-Rate-Limit-*). */
  protected commonHeaders(_s: Seen): Record<string, string> {
    return {};
  }

  async listen(): Promise<this> {
    this.server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    // Stalled requests hold their connections open: closed here, or close() would wait for them.
    this.server?.closeAllConnections();
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const u = new URL(req.url ?? '/', 'http://x');
    let body: unknown = raw;
    if ((req.headers['content-type'] ?? '').includes('json') && raw) body = JSON.parse(raw) as unknown;
    else if ((req.headers['content-type'] ?? '').includes('x-www-form-urlencoded'))
      body = Object.fromEntries(new URLSearchParams(raw));
    const s: Seen = {
      method: req.method ?? 'GET',
      path: decodeURIComponent(u.pathname),
      query: u.searchParams,
      body,
      authorization: req.headers.authorization,
    };
    this.seen.push(s);
    const fault = this.faults.find((f) => f.left > 0 && (!f.match || f.match(s)));
    let reply: Reply;
    if (fault && !fault.lose) {
      fault.left--;
      if (fault.stall) return;
      reply = fault;
    } else {
      if (fault) fault.left--;
      try {
        reply = await this.handle(s);
      } catch (e) {
        reply = { status: 500, body: { message: String(e) } };
      }
    }
    if (fault?.lose) {
      res.destroy(); // done, but the caller never hears of it
      return;
    }
    const headers = { ...this.commonHeaders(s), ...reply.headers };
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers).end();
      return;
    }
    res.writeHead(reply.status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(reply.body));
  }
}
