/**
 * A loopback stand-in for the Okta Management API (the parts itguard uses), following Okta's documented shapes:
 * SSWS API-token auth (401 E0000011), users by id, login, e-mail or login short name (404 E0000007), paged groups
 * (`Link: <…>; rel="next"`), factors, push verify (201 WAITING + `_links.poll`) polled to SUCCESS / REJECTED /
 * TIMEOUT as scripted per user, `lifecycle/reset_password?sendEmail=true` (status → RECOVERY; the "mail" is
 * recorded in `mails`, with the link Okta would send, which itguard never sees), `X-Rate-Limit-Limit/-Remaining/
 * -Reset` on every answer with a real per-window quota (429 E0000047 once spent), and 403 E0000006 for any action
 * the token's role lacks (`denied`).
 */
import { randomBytes } from 'node:crypto';
import { StandinServer, type Reply, type Seen } from './standin-server.js';

export interface OktaStandinUser {
  id: string;
  login: string;
  email: string;
  firstName: string;
  lastName: string;
  status?: string;
  groups?: string[];
  /** Enrolled Okta Verify push (default true). */
  push?: boolean;
  /** How the user answers a push: after `after` polls of WAITING (default 1). */
  answer?: 'SUCCESS' | 'REJECTED' | 'TIMEOUT';
  after?: number;
}

export type OktaAction = 'read' | 'reset' | 'factors' | 'roles';

const err = (status: number, code: string, summary: string): Reply => ({
  status,
  body: {
    errorCode: code,
    errorSummary: summary,
    errorLink: code,
    errorId: `oae${randomBytes(6).toString('hex')}`,
    errorCauses: [],
  },
});

export class OktaStandin extends StandinServer {
  readonly users: Required<OktaStandinUser>[];
  readonly mails: { to: string; login: string; link: string }[] = [];
  readonly pushes: { user: string; tx: string; polls: number }[] = [];
  readonly denied = new Set<OktaAction>();
  /** Quota per window (default 600/min, Okta's users bucket); tests lower it. */
  quota = { limit: 600, windowMs: 60_000, used: 0, resetAt: 0 };
  pageSize = 200;

  constructor(
    readonly token: string,
    users: OktaStandinUser[],
  ) {
    super();
    this.users = users.map((u) => ({ status: 'ACTIVE', groups: [], push: true, answer: 'SUCCESS', after: 1, ...u }));
  }

  static async start(token: string, users: OktaStandinUser[]): Promise<OktaStandin> {
    return new OktaStandin(token, users).listen();
  }

  private window(): void {
    const now = Date.now();
    if (now >= this.quota.resetAt) {
      this.quota.used = 0;
      this.quota.resetAt = now + this.quota.windowMs;
    }
  }

  protected override commonHeaders(): Record<string, string> {
    this.window();
    return {
      'x-rate-limit-limit': String(this.quota.limit),
      'x-rate-limit-remaining': String(Math.max(0, this.quota.limit - this.quota.used)),
      'x-rate-limit-reset': String(Math.ceil(this.quota.resetAt / 1000)),
    };
  }

  private find(ref: string) {
    const r = ref.toLowerCase();
    const exact = this.users.find((u) => u.id === ref || u.login.toLowerCase() === r || u.email.toLowerCase() === r);
    if (exact) return exact;
    const short = this.users.filter((u) => u.login.toLowerCase().split('@')[0] === r);
    return short.length === 1 ? short[0] : undefined;
  }

  private userJson(u: Required<OktaStandinUser>) {
    return {
      id: u.id,
      status: u.status,
      profile: { login: u.login, email: u.email, firstName: u.firstName, lastName: u.lastName },
      _links: { self: { href: `${this.url}/api/v1/users/${u.id}` } },
    };
  }

  protected handle(s: Seen): Reply {
    if (s.authorization !== `SSWS ${this.token}`) return err(401, 'E0000011', 'Invalid token provided');
    this.window();
    if (this.quota.used >= this.quota.limit)
      return err(429, 'E0000047', 'API call exceeded rate limit due to too many requests.');
    this.quota.used++;
    const deny = (a: OktaAction) =>
      this.denied.has(a)
        ? err(403, 'E0000006', 'You do not have permission to perform the requested action')
        : undefined;
    const p = s.path.split('/').filter(Boolean); // api v1 users {ref} ...
    if (p[0] !== 'api' || p[1] !== 'v1')
      return err(404, 'E0000022', 'The endpoint does not support the provided HTTP method');
    if (s.method === 'GET' && p[2] === 'groups') return deny('read') ?? { status: 200, body: [] };
    if (p[2] !== 'users') return err(404, 'E0000007', 'Not found: Resource not found');
    if (s.method === 'GET' && p.length === 3)
      return deny('read') ?? { status: 200, body: this.users.slice(0, 1).map((u) => this.userJson(u)) };
    const ref = p[3]!;
    if (ref === 'me' && p.length === 4)
      return {
        status: 200,
        body: {
          id: 'svc00000',
          status: 'ACTIVE',
          profile: { login: 'itguard-svc@example.com', email: 'itguard-svc@example.com' },
        },
      };
    if (p[4] === 'roles')
      return deny('roles') ?? { status: 200, body: [{ type: 'HELP_DESK_ADMIN', status: 'ACTIVE' }] };
    if ((ref === 'me' || ref === 'svc00000') && p[4] === 'factors') return deny('factors') ?? { status: 200, body: [] };
    const u = this.find(ref);
    if (!u) return err(404, 'E0000007', `Not found: Resource not found: ${ref} (User)`);
    if (s.method === 'GET' && p.length === 4) return deny('read') ?? { status: 200, body: this.userJson(u) };
    if (s.method === 'GET' && p[4] === 'groups') {
      const d = deny('read');
      if (d) return d;
      const limit = Math.min(Number(s.query.get('limit') ?? 200), this.pageSize);
      const after = Number(s.query.get('after') ?? 0);
      const page = u.groups
        .slice(after, after + limit)
        .map((g, i) => ({ id: `00g${after + i}`, type: 'OKTA_GROUP', profile: { name: g } }));
      const more = after + limit < u.groups.length;
      return {
        status: 200,
        body: page,
        headers: more
          ? { link: `<${this.url}/api/v1/users/${u.id}/groups?limit=${limit}&after=${after + limit}>; rel="next"` }
          : {},
      };
    }
    if (p[4] === 'factors') return this.factors(s, u, p, deny);
    if (s.method === 'POST' && p[4] === 'lifecycle' && p[5] === 'reset_password') {
      const d = deny('reset');
      if (d) return d;
      const link = `https://example.okta.com/signin/reset-password/${randomBytes(10).toString('hex')}`;
      u.status = 'RECOVERY';
      if (s.query.get('sendEmail') === 'false') return { status: 200, body: { resetPasswordUrl: link } };
      this.mails.push({ to: u.email, login: u.login, link });
      return { status: 200, body: {} };
    }
    return err(404, 'E0000022', 'The endpoint does not support the provided HTTP method');
  }

  private factors(
    s: Seen,
    u: Required<OktaStandinUser>,
    p: string[],
    deny: (a: OktaAction) => Reply | undefined,
  ): Reply {
    const d = deny('factors');
    if (d) return d;
    const fid = `opf${u.id}`;
    if (s.method === 'GET' && p.length === 5)
      return {
        status: 200,
        body: u.push ? [{ id: fid, factorType: 'push', provider: 'OKTA', status: 'ACTIVE', vendorName: 'OKTA' }] : [],
      };
    if (p[5] !== fid || !u.push) return err(404, 'E0000007', 'Not found: Resource not found (Factor)');
    if (s.method === 'POST' && p[6] === 'verify') {
      const tx = `v2mst.${randomBytes(6).toString('hex')}`;
      this.pushes.push({ user: u.login, tx, polls: 0 });
      return {
        status: 201,
        body: {
          factorResult: 'WAITING',
          expiresAt: new Date(Date.now() + 300_000).toISOString(),
          _links: {
            poll: {
              href: `${this.url}/api/v1/users/${u.id}/factors/${fid}/transactions/${tx}`,
              hints: { allow: ['GET'] },
            },
          },
        },
      };
    }
    if (s.method === 'GET' && p[6] === 'transactions') {
      const push = this.pushes.find((x) => x.tx === p[7]);
      if (!push) return err(404, 'E0000007', 'Not found: Resource not found (Transaction)');
      push.polls++;
      return { status: 200, body: { factorResult: push.polls > u.after ? u.answer : 'WAITING' } };
    }
    return err(404, 'E0000022', 'The endpoint does not support the provided HTTP method');
  }
}
