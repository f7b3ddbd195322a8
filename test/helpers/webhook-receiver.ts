/**
 * A Standard Webhooks 1.0.0 receiver, written from the spec (standard-webhooks `spec/standard-webhooks.md`), not
 * from itguard's sender: it checks `webhook-id`, `webhook-timestamp` (within five minutes of its clock) and every
 * `v1,<base64>` entry of the space-separated `webhook-signature` against HMAC-SHA256 of `{id}.{timestamp}.{body}`
 * under the base64-decoded `whsec_` secret, in constant time; it dedupes on `webhook-id` as the spec tells receivers
 * to. `failNext(n, status)` answers the next n deliveries with that status (500, 410, …) before verifying.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  id: string;
  verified: boolean;
  why?: string;
  body: { type: string; data: Record<string, unknown> };
  raw: string;
}

export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  /** Verified deliveries, one per webhook-id. */
  readonly accepted = new Map<string, Delivery>();
  private fails: number[] = [];
  private server!: Server;
  url = '';

  constructor(
    readonly secret: string,
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  async start(): Promise<this> {
    this.server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const fail = this.fails.shift();
      if (fail) {
        res.writeHead(fail).end();
        return;
      }
      const d = this.verify(req.headers, raw);
      this.deliveries.push(d);
      if (d.verified) this.accepted.set(d.id, d);
      res.writeHead(d.verified ? 204 : 400).end();
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/itguard`;
    return this;
  }

  failNext(n: number, status: number): void {
    for (let i = 0; i < n; i++) this.fails.push(status);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private verify(h: Record<string, string | string[] | undefined>, raw: string): Delivery {
    const id = String(h['webhook-id'] ?? '');
    const ts = String(h['webhook-timestamp'] ?? '');
    const sigs = String(h['webhook-signature'] ?? '').split(' ');
    const body = JSON.parse(raw || '{}') as Delivery['body'];
    const no = (why: string): Delivery => ({ id, verified: false, why, body, raw });
    if (!id || !/^\d+$/.test(ts)) return no('missing headers');
    if (Math.abs(this.nowS() - Number(ts)) > 300) return no('timestamp outside tolerance');
    const key = Buffer.from(this.secret.replace(/^whsec_/, ''), 'base64');
    const want = Buffer.from(createHmac('sha256', key).update(`${id}.${ts}.${raw}`).digest('base64'));
    const ok = sigs.some((s) => {
      const [version, sig = ''] = s.split(',');
      const got = Buffer.from(sig);
      return version === 'v1' && got.length === want.length && timingSafeEqual(got, want);
    });
    return ok ? { id, verified: true, body, raw } : no('bad signature');
  }
}
