/**
 * The Okta Management API client the Okta directory and factors adapters share: SSWS API-token auth, Okta's error
 * body (`errorCode`, `errorSummary`) mapped to clear BackendErrors, and its rate limits honoured. Okta sends
 * `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (UTC epoch seconds) on every answer: when a bucket is spent
 * (Remaining 0, or a 429 E0000047) the client waits until the reset time before sending again, never sooner.
 */
import { CloudHttp, clip, deadline, obj, str, type CloudRequest, type CloudResponse } from '../cloud-http.js';
import { BackendError, type CallOpts } from '../../core/backend.js';

export interface OktaConfig {
  /** https://example.okta.com (http:// only for loopback hosts, for tests). */
  orgUrl: string;
  apiToken: string;
  timeoutMs?: number;
  maxRetries?: number;
  retryBaseMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

export interface OktaUser {
  id: string;
  status: string;
  profile: { login: string; email: string; firstName?: string; lastName?: string; displayName?: string };
}

export interface OktaFactor {
  id: string;
  factorType: string;
  provider: string;
  status: string;
}

/** Okta's own words for an error answer: "E0000006: You do not have permission…". */
export function oktaSaid(res: CloudResponse): string {
  const b = obj(res.body);
  const code = str(b.errorCode);
  const summary = str(b.errorSummary);
  return clip([code, summary].filter(Boolean).join(': '));
}

export class OktaApi {
  readonly http: CloudHttp;
  readonly orgUrl: URL;
  /** Epoch ms before which the spent rate-limit bucket must not be used again. */
  #blockedUntil = 0;
  constructor(private readonly cfg: OktaConfig) {
    this.orgUrl = new URL(cfg.orgUrl);
    const auth = `SSWS ${cfg.apiToken}`;
    const now = cfg.now ?? Date.now;
    const resetMs = (res: CloudResponse): number | undefined => {
      const reset = Number(res.headers.get('x-rate-limit-reset'));
      return Number.isFinite(reset) && reset > 0 ? Math.max(0, reset * 1000 - now()) + 50 : undefined;
    };
    this.http = new CloudHttp({
      vendor: 'Okta',
      baseUrl: this.orgUrl,
      auth: async () => auth,
      ...(cfg.maxRetries !== undefined ? { maxRetries: cfg.maxRetries } : {}),
      ...(cfg.retryBaseMs !== undefined ? { retryBaseMs: cfg.retryBaseMs } : {}),
      ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
      rateWait: resetMs,
      said: oktaSaid,
      observe: (res) => {
        if (res.headers.get('x-rate-limit-remaining') === '0') {
          const wait = resetMs(res);
          if (wait !== undefined) this.#blockedUntil = now() + wait;
        }
      },
      owedWait: () => Math.max(0, this.#blockedUntil - now()),
    });
  }

  /** One request inside the call's deadline; a non-2xx answer is mapped (404 → undefined when `missingOk`). */
  async json(req: CloudRequest, o: CallOpts, missingOk = false): Promise<CloudResponse | undefined> {
    const d = deadline(o.signal, this.cfg.timeoutMs ?? 20_000);
    const res = await this.http.send(req, d);
    if (res.status >= 200 && res.status < 300) return res;
    if (missingOk && res.status === 404) return undefined;
    throw oktaFailure(res, req.what);
  }

  /** A user by id, login, login short name or e-mail; undefined when Okta has none. */
  async user(ref: string, o: CallOpts): Promise<OktaUser | undefined> {
    const res = await this.json(
      { method: 'GET', path: `/api/v1/users/${encodeURIComponent(ref)}`, what: `looking up user ${ref}` },
      o,
      true,
    );
    const u = res && obj(res.body);
    if (!u || typeof u.id !== 'string') return undefined;
    const p = obj(u.profile);
    return {
      id: u.id,
      status: str(u.status) ?? 'UNKNOWN',
      profile: {
        login: str(p.login) ?? '',
        email: str(p.email) ?? '',
        ...(str(p.firstName) ? { firstName: str(p.firstName)! } : {}),
        ...(str(p.lastName) ? { lastName: str(p.lastName)! } : {}),
        ...(str(p.displayName) ? { displayName: str(p.displayName)! } : {}),
      },
    };
  }

  /** Every page of a list endpoint, following `Link: <…>; rel="next"` (bounded). */
  async list(path: string, what: string, o: CallOpts, maxPages = 20): Promise<unknown[]> {
    const out: unknown[] = [];
    let next: string | undefined = path;
    for (let page = 0; next && page < maxPages; page++) {
      const res: CloudResponse = (await this.json({ method: 'GET', path: next, what }, o))!;
      if (Array.isArray(res.body)) out.push(...(res.body as unknown[]));
      next = nextLink(res.headers.get('link'));
    }
    return out;
  }

  async factors(userId: string, o: CallOpts): Promise<OktaFactor[]> {
    const res = await this.json(
      { method: 'GET', path: `/api/v1/users/${encodeURIComponent(userId)}/factors`, what: 'listing factors' },
      o,
    );
    return (Array.isArray(res!.body) ? (res!.body as unknown[]) : []).map((f) => {
      const x = obj(f);
      return {
        id: str(x.id) ?? '',
        factorType: str(x.factorType) ?? '',
        provider: str(x.provider) ?? '',
        status: str(x.status) ?? '',
      };
    });
  }
}

function nextLink(h: string | null): string | undefined {
  for (const part of (h ?? '').split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

/** An Okta error answer → BackendError naming the code, what was being done and what to fix. */
export function oktaFailure(res: CloudResponse, what: string): BackendError {
  const said = oktaSaid(res);
  const code = str(obj(res.body).errorCode);
  const tail = said ? ` (${said})` : '';
  if (code === 'E0000006' || res.status === 403)
    return new BackendError(
      `Okta denied permission while ${what}${tail}; the API token's admin role lacks this permission (see docs/backends.md).`,
      false,
      { status: res.status, okta_error: code ?? null, reason: 'permission' },
    );
  if (code === 'E0000047' || res.status === 429)
    return new BackendError(`Okta rate limit exceeded while ${what}${tail}; retry later.`, true, {
      status: res.status,
      okta_error: code ?? null,
      rate_limited: true,
    });
  if (res.status === 401)
    return new BackendError(
      `Okta rejected the API token while ${what}${tail}; check the variable named by token_env.`,
      false,
      { status: 401, okta_error: code ?? null, reason: 'auth' },
    );
  return new BackendError(`Okta answered ${res.status} while ${what}${tail}.`, res.status >= 500, {
    status: res.status,
    okta_error: code ?? null,
  });
}
