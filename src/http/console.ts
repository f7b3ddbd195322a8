/**
 * /console: the approver web page (DESIGN §4, §6). An approver signs in with their bearer token once — an itguard
 * token, or, with an `auth:` block, an access token from the identity provider (checked like one on /mcp) — and the
 * console then keeps an in-memory session (random id in an HttpOnly, SameSite=Strict cookie, 8 h, or until the
 * access token expires) holding the principal, the person (OAuth) and a CSRF token. `auth.static_tokens: false`
 * refuses itguard tokens here too. Separation of duties holds for the principal and, with OAuth, for the person: an
 * approver cannot approve a request an agent made on their own behalf. Pages are rendered on the server (console-html.ts) under a CSP that allows one
 * same-origin script and nothing inline: console-live.ts, which shows times in the viewer's zone and merges the
 * sections fetched from `<base>/live` (the same server rendering) without a reload. Every action stays a plain form.
 *
 * A decision is `POST <base>/requests/:id` with `decision=approve|deny`, the value of the button clicked; approve and
 * deny are separate forms so that pressing Enter in a note can never approve (console-html.ts says how).
 *
 * The router parses its own urlencoded bodies (it is mounted before any JSON parser) and never logs, stores or
 * echoes a token. Host/Origin validation runs before it in the HTTP app.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import type { App } from '../app.js';
import { config } from '../config.js';
import { TokenRejected, type OAuthVerifier } from '../auth/oauth.js';
import { decide } from '../guard/decide.js';
import { setKillSwitch, touchToken } from '../guard/operator.js';
import { liveJobs } from './console-jobs.js';
import { consoleMain, consolePage, messagePage, signInPage, type ConsoleView, type Flash } from './console-html.js';
import { LIVE_SCRIPT } from './console-live.js';

export const CONSOLE_COOKIE = 'itguard_console';
const SESSION_TTL_MS = 8 * 3600_000;
/** Oldest sessions are dropped past this many, so unauthenticated traffic cannot grow memory (only sign-ins add). */
const MAX_SESSIONS = 1000;
const MAX_TEXT = 500;
const DECIDE_SCOPE = 'approvals:decide';

export interface ConsoleSession {
  principal: string;
  /** The itguard token that opened it; undefined for an OAuth sign-in. */
  tokenId: string | undefined;
  /** OAuth: the person signed in (the token's email or sub), recorded as on_behalf_of of their decisions. */
  user?: string | undefined;
  /** OAuth: the person's stable identity (issuer + ' sub:' + sub) and e-mail claim, for separation of duties. */
  userId?: string | undefined;
  email?: string | undefined;
  csrf: string;
  expiresAt: number;
  flash?: Flash | undefined;
  /** When this session last saw the pending list: requests created after it are marked new on the next view. */
  seenAt?: number | undefined;
}

/**
 * In-memory console sessions. A restart signs everyone out, which is the safe direction. Each process holds its own,
 * so an id begins with the replica's id and a dot, as MCP session ids do: a load balancer sends the cookie's
 * requests to the replica that signed the approver in (deploy/nginx/itguard.conf); another replica does not know
 * the id and shows the sign-in page.
 */
export class ConsoleSessions {
  private readonly byId = new Map<string, ConsoleSession>();
  constructor(
    private readonly now: () => number,
    private readonly replica: string = config().replicaId,
  ) {}

  create(
    principal: string,
    tokenId: string | undefined,
    o: { user?: string | undefined; userId?: string | undefined; email?: string | undefined; notAfter?: number } = {},
  ): { id: string; session: ConsoleSession } {
    this.prune();
    while (this.byId.size >= MAX_SESSIONS) this.byId.delete(this.byId.keys().next().value!);
    const id = `${this.replica}.${randomBytes(32).toString('base64url')}`;
    const session = {
      principal,
      tokenId,
      user: o.user,
      userId: o.userId,
      email: o.email,
      csrf: randomBytes(32).toString('base64url'),
      // Security: a session opened with an access token ends when the token does.
      expiresAt: Math.min(this.now() + SESSION_TTL_MS, o.notAfter ?? Infinity),
    };
    this.byId.set(id, session);
    return { id, session };
  }

  get(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const s = this.byId.get(id);
    if (s && s.expiresAt <= this.now()) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string | undefined): void {
    if (id) this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [id, s] of this.byId) if (s.expiresAt <= now) this.byId.delete(id);
  }
}

function cookieValue(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return /^(?:[a-z0-9-]{1,63}\.)?[A-Za-z0-9_-]{1,128}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

const field = (req: Request, name: string): string | undefined => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
};

function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const html = (res: Response, status: number, body: string) => void res.status(status).type('html').send(body);

export interface ConsoleOptions {
  /** How long a page waits for the deployment backend's job states (console-jobs.ts); tests shorten it. */
  jobTimeoutMs?: number | undefined;
  /** The prefix of this process's console session ids (default ITGUARD_REPLICA_ID, else the host name). */
  replicaId?: string | undefined;
}

export function consoleRouter(app: App, oauth?: OAuthVerifier, o: ConsoleOptions = {}): express.Router {
  const router = express.Router();
  const sessions = new ConsoleSessions(() => app.now(), o.replicaId);
  // Access tokens run to several KB (groups claims); itguard tokens are short.
  const form = express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 20 });
  const staticTokens = app.policy.auth?.staticTokens ?? true;
  const base = (req: Request) => req.baseUrl || '/console';
  const cookie = (req: Request, value: string, extra = '') =>
    `${CONSOLE_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=${base(req)}${req.secure ? '; Secure' : ''}${extra}`;

  /** The signed-in session, or undefined; a session whose token was revoked or whose principal lost the scope ends. */
  async function current(req: Request): Promise<{ id: string; session: ConsoleSession } | undefined> {
    const id = cookieValue(req, CONSOLE_COOKIE);
    const session = sessions.get(id);
    if (!id || !session) return undefined;
    const principal = app.principal(session.principal);
    const token =
      session.tokenId === undefined ? undefined : (await app.store.tokens.list()).find((t) => t.id === session.tokenId);
    const tokenLive = session.tokenId === undefined ? session.user !== undefined : !!token && token.revokedAt === null;
    // Security: the session is only as good as the token and policy that opened it.
    if (!principal?.scopes.includes(DECIDE_SCOPE) || !tokenLive) {
      sessions.delete(id);
      return undefined;
    }
    return { id, session };
  }

  /** Every state-changing request: a live session and its CSRF token, or 403 and nothing changes. */
  const authed =
    (
      handler: (req: Request, res: Response, s: ConsoleSession, id: string) => void | Promise<void>,
    ): express.RequestHandler =>
    async (req, res) => {
      const cur = await current(req);
      // Security: SameSite=Strict already keeps the cookie off cross-site requests; the CSRF token is the second lock.
      if (!cur || !sameSecret(field(req, 'csrf'), cur.session.csrf)) {
        return html(
          res,
          403,
          messagePage(
            'Forbidden',
            'Your console session is missing or expired, or the form was stale. Sign in again.',
            base(req),
          ),
        );
      }
      await handler(req, res, cur.session, cur.id);
    };

  const done = (req: Request, res: Response, s: ConsoleSession, flash: Flash) => {
    s.flash = flash;
    res.redirect(303, base(req));
  };

  router.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy':
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
    });
    next();
  });

  /**
   * What the page and the live fragment show; `newSince` marks requests the session has not seen yet. Executed
   * installs show their job's live state, read through the deployment port within a short deadline.
   */
  const view = async (
    req: Request,
    session: ConsoleSession,
    flash: Flash | undefined,
    newSince: number | undefined,
  ): Promise<ConsoleView> => {
    const recent = await app.store.approvals.list(
      ['approved', 'denied', 'expired', 'executing', 'succeeded', 'failed'],
      20,
    );
    return {
      base: base(req),
      principal: session.principal,
      user: session.user,
      csrf: session.csrf,
      flash,
      killSwitch: await app.store.killSwitch.state(),
      pending: await app.store.approvals.list(['pending']),
      recent,
      jobs: await liveJobs(app.backends.deploy, recent, o.jobTimeoutMs),
      // Security: the audit is shown only to approvers who also hold audit:read.
      audit: app.principal(session.principal)?.scopes.includes('audit:read')
        ? await app.store.auditLog.tail(25)
        : undefined,
      newSince,
      liveScript: `${base(req)}/live.js`,
    };
  };

  router.get('/', async (req, res) => {
    const cur = await current(req);
    if (!cur) {
      if (cookieValue(req, CONSOLE_COOKIE)) res.append('Set-Cookie', cookie(req, '', '; Max-Age=0'));
      return html(res, 200, signInPage(base(req)));
    }
    const { session } = cur;
    const flash = session.flash;
    session.flash = undefined;
    const newSince = session.seenAt;
    session.seenAt = app.now();
    html(res, 200, consolePage(await view(req, session, flash, newSince)));
  });

  // The live script (console-live.ts): static, same-origin, cacheable for a minute.
  router.get('/live.js', (_req, res) => {
    res.set('Cache-Control', 'private, max-age=60').type('text/javascript').send(LIVE_SCRIPT);
  });

  // The sections the live script merges: the same rendering as the page, for a signed-in session only.
  router.get('/live', async (req, res) => {
    const cur = await current(req);
    // Security: no session, no data; the script stops polling on 401 and says so.
    if (!cur) return html(res, 401, messagePage('Signed out', 'Sign in again.', base(req)));
    cur.session.seenAt = app.now();
    html(res, 200, consoleMain(await view(req, cur.session, undefined, undefined)));
  });

  router.post('/login', form, async (req, res) => {
    const raw = field(req, 'token')?.trim() ?? '';
    const refused = (why: string, principal: string | null) => {
      app.log.warn({ principal }, `console sign-in refused: ${why}`);
      html(res, 401, signInPage(base(req), `Sign-in refused: ${why}.`));
    };
    let signedIn: {
      principal: string;
      tokenId?: string;
      user?: string;
      userId?: string | undefined;
      email?: string | undefined;
      notAfter?: number;
    };
    if (!oauth || raw.startsWith('itg_')) {
      // Security: a deployment that turned static tokens off accepts none here either.
      if (!staticTokens) return refused('itguard tokens are turned off (auth.static_tokens: false)', null);
      const t = raw && raw.length <= 512 ? await app.store.tokens.verify(raw) : undefined;
      const principal = t && app.principal(t.principal);
      // Security: only a live token of a principal the policy names with approvals:decide opens the console.
      if (!t || !principal?.scopes.includes(DECIDE_SCOPE))
        return refused('not an approver', principal?.name ?? t?.principal ?? null);
      touchToken(app, t.id, app.now());
      signedIn = { principal: principal.name, tokenId: t.id };
    } else {
      let verified;
      try {
        verified = await oauth.verify(raw);
      } catch (e) {
        if (!(e instanceof TokenRejected)) throw e;
        return refused(
          e.kind === 'unavailable' ? 'the identity provider cannot be reached; retry later' : 'not an approver',
          null,
        );
      }
      const principal = app.principal(verified.principal);
      // Security: the same rule for an access token: its principal must hold approvals:decide; and a person must
      // stand behind it (a client-credentials token decides nothing).
      if (
        !principal?.scopes.includes(DECIDE_SCOPE) ||
        verified.onBehalfOf === undefined ||
        verified.onBehalfOfId === undefined
      )
        return refused('not an approver', verified.principal);
      // The session carries who the person is (issuer + sub), not only how they are displayed.
      signedIn = {
        principal: principal.name,
        user: verified.onBehalfOf,
        userId: verified.onBehalfOfId,
        email: verified.email,
        notAfter: verified.expiresAt * 1000,
      };
    }
    // Security: a fresh id on every sign-in (no session fixation); any session the browser held ends.
    sessions.delete(cookieValue(req, CONSOLE_COOKIE));
    const { id } = sessions.create(signedIn.principal, signedIn.tokenId, signedIn);
    await app.audit.record(
      {
        event: 'console.login',
        actor: signedIn.principal,
        onBehalfOf: signedIn.user,
        detail: signedIn.tokenId ? { token_id: signedIn.tokenId } : { via: 'oauth' },
      },
      true,
    );
    app.log.info({ principal: signedIn.principal }, 'console sign-in');
    res.append('Set-Cookie', cookie(req, id));
    res.redirect(303, base(req));
  });

  router.post(
    '/logout',
    form,
    authed(async (req, res, s, id) => {
      sessions.delete(id);
      await app.audit.record({ event: 'console.logout', actor: s.principal, onBehalfOf: s.user }, true);
      res.append('Set-Cookie', cookie(req, '', '; Max-Age=0'));
      res.redirect(303, base(req));
    }),
  );

  router.post(
    '/kill',
    form,
    authed(async (req, res, s) => {
      const reason = field(req, 'reason')?.trim() ?? '';
      if (!reason || reason.length > MAX_TEXT)
        return done(req, res, s, {
          kind: 'error',
          text: `Engaging the kill switch needs a reason (at most ${MAX_TEXT} characters).`,
        });
      await setKillSwitch(app, true, reason, `console:${s.principal}`);
      app.log.warn({ actor: `console:${s.principal}`, reason }, 'kill switch engaged from the console');
      done(req, res, s, {
        kind: 'ok',
        text: 'Kill switch engaged: every tool call except guard_status is refused until it is resumed.',
      });
    }),
  );

  router.post(
    '/resume',
    form,
    authed(async (req, res, s) => {
      const reason = field(req, 'reason')?.trim() || 'resumed from the console';
      if (reason.length > MAX_TEXT)
        return done(req, res, s, { kind: 'error', text: `The reason is too long (at most ${MAX_TEXT} characters).` });
      await setKillSwitch(app, false, reason, `console:${s.principal}`);
      app.log.warn({ actor: `console:${s.principal}`, reason }, 'kill switch resumed from the console');
      done(req, res, s, { kind: 'ok', text: 'Kill switch resumed: tool calls run again.' });
    }),
  );

  router.post(
    '/requests/:id',
    form,
    authed(async (req, res, s) => {
      const id = String(req.params.id);
      const decision = field(req, 'decision');
      // Security: the decision is the value of the button that was clicked, never a default. A post without exactly
      // one `decision` of approve or deny (a stale page, a hand-made form, an implicit submission that carried no
      // button) changes nothing.
      if (decision !== 'approve' && decision !== 'deny')
        return html(
          res,
          400,
          messagePage('Bad request', 'The form did not say approve or deny; nothing was decided.', base(req)),
        );
      const approve = decision === 'approve';
      const note = field(req, 'note')?.trim() || undefined;
      if (note && note.length > MAX_TEXT)
        return done(req, res, s, {
          kind: 'error',
          text: `${id}: the note is too long (at most ${MAX_TEXT} characters).`,
        });
      const actor = `console:${s.principal}`;
      // Every rule (state, tier, separation of duties by identity) and the audit of the outcome: src/guard/decide.ts.
      const r = await decide(app, {
        id,
        approve,
        note,
        actor: {
          name: actor,
          via: 'console',
          principal: s.principal,
          person: s.user,
          personId: s.userId,
          email: s.email,
        },
      });
      if (!r.ok) {
        if (r.reason === 'wrong_tier' && r.row?.tier === 'mfa')
          return done(req, res, s, {
            kind: 'error',
            text: `${id} is confirmed by ${r.row.target ?? 'the target user'} with their authenticator code; the console can only deny it.`,
          });
        app.log.warn({ actor, request_id: id, reason: r.reason }, 'console decision refused');
        return done(req, res, s, { kind: 'error', text: `${id}: ${r.message}.` });
      }
      app.log.info({ actor, request_id: id, decision }, 'approval decided from the console');
      done(req, res, s, { kind: 'ok', text: `${approve ? 'Approved' : 'Denied'} ${id}: ${r.row.summary}` });
    }),
  );

  router.use((req, res) => html(res, 404, messagePage('Not found', 'There is no such console page.', base(req))));

  const onError: ErrorRequestHandler = (err: { type?: string; status?: number }, req, res, _next) => {
    if (res.headersSent) return;
    if (err.type === 'entity.too.large')
      return html(res, 413, messagePage('Too large', 'The form was too large.', base(req)));
    if (typeof err.status === 'number' && err.status >= 400 && err.status < 500)
      return html(res, err.status, messagePage('Bad request', 'The form could not be read.', base(req)));
    app.log.error({ err }, 'console error');
    html(res, 500, messagePage('Error', 'Something went wrong; the error was logged.', base(req)));
  };
  router.use(onError);

  return router;
}
