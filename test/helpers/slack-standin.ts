/**
 * A loopback stand-in for the parts of Slack itguard talks to, following Slack's documented shapes
 * (docs.slack.dev: chat.postMessage, chat.update, interaction payloads, request signing):
 *  - Web API at `/api/<method>`: bearer token (`{ok:false, error:'invalid_auth'}` with HTTP 200, as Slack answers),
 *    JSON bodies, `channel_not_found`, `no_text`, `message_not_found`; a message gets a `ts` like `1733500000.000100`.
 *    `failNext(n, how)` answers the next n calls with 429 + Retry-After (`ratelimited`), HTTP 500, or an error code.
 *  - `response_url` at `/hooks/response/<n>`: records ephemeral replies.
 *  - `click(...)` plays Slack's part of a button click: a `block_actions` payload, form-encoded, signed with v0 over
 *    the raw body (or forged, or stale), POSTed to itguard's /slack/actions.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  method: 'chat.postMessage' | 'chat.update';
  channel: string;
  ts: string;
  text: string;
  blocks: { type: string; elements?: { action_id?: string; value?: string; url?: string }[] }[];
}

type Failure = 'ratelimited' | 'http500' | string;

export class SlackStandin {
  readonly calls: SlackPost[] = [];
  /** channel:ts → the message as it reads now. */
  readonly messages = new Map<string, SlackPost>();
  readonly ephemeral: { text: string }[] = [];
  private failures: Failure[] = [];
  private seq = 0;
  private server!: Server;
  url = '';

  constructor(
    readonly token: string,
    readonly channels: readonly string[],
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get apiUrl(): string {
    return `${this.url}/api`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  failNext(n: number, how: Failure): void {
    for (let i = 0; i < n; i++) this.failures.push(how);
  }

  posts(): SlackPost[] {
    return this.calls.filter((c) => c.method === 'chat.postMessage');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const path = req.url ?? '';
    if (path.startsWith('/hooks/response/')) {
      this.ephemeral.push(JSON.parse(raw) as { text: string });
      return send(200, { ok: true });
    }
    const method = path.replace(/^\/api\//, '');
    const fail = this.failures.shift();
    if (fail === 'ratelimited') return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': '1' });
    if (fail === 'http500') return send(500, { ok: false, error: 'internal_error' });
    if (fail) return send(200, { ok: false, error: fail });
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(200, { ok: false, error: 'invalid_auth' });
    if (!String(req.headers['content-type']).startsWith('application/json'))
      return send(200, { ok: false, error: 'invalid_arguments' });
    const body = JSON.parse(raw) as Partial<SlackPost>;
    if (method === 'auth.test') return send(200, { ok: true, team: 'T1', user: 'itguard' });
    if (method !== 'chat.postMessage' && method !== 'chat.update')
      return send(200, { ok: false, error: 'unknown_method' });
    if (!body.channel || !this.channels.includes(body.channel))
      return send(200, { ok: false, error: 'channel_not_found' });
    if (!body.text && !body.blocks?.length) return send(200, { ok: false, error: 'no_text' });
    let ts = body.ts;
    if (method === 'chat.update') {
      if (!ts || !this.messages.has(`${body.channel}:${ts}`))
        return send(200, { ok: false, error: 'message_not_found' });
    } else ts = `1733500000.${String(++this.seq).padStart(6, '0')}`;
    const post: SlackPost = {
      method,
      channel: body.channel,
      ts: ts!,
      text: body.text ?? '',
      blocks: body.blocks ?? [],
    };
    this.calls.push(post);
    this.messages.set(`${body.channel}:${ts}`, post);
    send(200, { ok: true, channel: body.channel, ts, message: { text: post.text } });
  }

  /** Slack's side of a button click on one of the messages, posted to itguard. */
  async click(
    itguardBase: string,
    o: {
      secret: string;
      user: string;
      requestId: string;
      action: 'approve' | 'deny';
      nowS?: number;
      forge?: boolean;
      body?: string;
    },
  ): Promise<{ status: number; ms: number; text: string; body: string }> {
    const nowS = o.nowS ?? Math.floor(Date.now() / 1000);
    const payload = {
      type: 'block_actions',
      user: { id: o.user, username: o.user.toLowerCase(), team_id: 'T1' },
      team: { id: 'T1', domain: 'example' },
      api_app_id: 'A1',
      container: { type: 'message', channel_id: this.channels[0] },
      response_url: `${this.url}/hooks/response/${++this.seq}`,
      actions: [
        {
          type: 'button',
          action_id: o.action === 'approve' ? 'itguard_approve' : 'itguard_deny',
          block_id: `itguard:${o.requestId}`,
          value: o.requestId,
          action_ts: `${nowS}.000200`,
        },
      ],
    };
    const body = o.body ?? new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const mac = createHmac('sha256', o.forge ? 'not-the-secret' : o.secret)
      .update(`v0:${nowS}:${body}`)
      .digest('hex');
    const t0 = performance.now();
    const res = await fetch(`${itguardBase}/slack/actions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(nowS),
        'x-slack-signature': `v0=${mac}`,
      },
      body,
    });
    const text = await res.text();
    return { status: res.status, ms: performance.now() - t0, text, body };
  }
}
