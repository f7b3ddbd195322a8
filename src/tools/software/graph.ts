/**
 * Microsoft Graph for the Intune adapter: an app-only token by client credentials
 * (`POST {login}/{tenant}/oauth2/v2.0/token`, scope `{graph}/.default`), cached until a minute before it expires
 * and fetched afresh after a 401; Graph's error envelope (`{error: {code, message, innerError}}`) mapped to clear
 * BackendErrors; 429 honouring `Retry-After`; the replication-delay 400/404 ("… does not exist …") retried with
 * backoff. The token and the client secret never appear in an error, a log line or a result.
 */
import {
  CloudHttp,
  clip,
  deadline,
  obj,
  retryAfterMs,
  str,
  type CloudRequest,
  type CloudResponse,
  type Deadline,
} from '../cloud-http.js';
import { BackendError, type CallOpts } from '../../core/backend.js';

export interface GraphConfig {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  graphUrl: string;
  loginUrl: string;
  timeoutMs?: number;
  maxRetries?: number;
  retryBaseMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

export const graphError = (res: CloudResponse): { code: string; message: string } => {
  const e = obj(obj(res.body).error);
  return { code: str(e.code) ?? '', message: str(e.message) ?? '' };
};

/** Graph's eventual consistency: an object just created or just added is not visible everywhere yet. */
export const replicationDelay = (res: CloudResponse): boolean => {
  const { code, message } = graphError(res);
  return (
    (res.status === 400 || res.status === 404) &&
    (code === 'Request_ResourceNotFound' || /does not exist or one of its queried reference/i.test(message))
  );
};

export class Graph {
  readonly http: CloudHttp;
  readonly graphUrl: URL;
  #token: { value: string; until: number } | undefined;
  constructor(private readonly cfg: GraphConfig) {
    this.graphUrl = new URL(cfg.graphUrl);
    this.http = new CloudHttp({
      vendor: 'Microsoft Graph',
      baseUrl: this.graphUrl,
      auth: async (fresh, d) => `Bearer ${await this.token(fresh, d)}`,
      ...(cfg.maxRetries !== undefined ? { maxRetries: cfg.maxRetries } : {}),
      ...(cfg.retryBaseMs !== undefined ? { retryBaseMs: cfg.retryBaseMs } : {}),
      ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
      rateWait: (res) => retryAfterMs(res.headers.get('retry-after')),
      transient: replicationDelay,
      said: (res) => clip([graphError(res).code, graphError(res).message].filter(Boolean).join(': '), 200),
    });
  }

  private now(): number {
    return (this.cfg.now ?? Date.now)();
  }

  /** The cached app-only token, or a new one (client credentials). */
  async token(fresh: boolean, d: Deadline): Promise<string> {
    if (!fresh && this.#token && this.#token.until > this.now()) return this.#token.value;
    const url = new URL(`${encodeURIComponent(this.cfg.tenantId)}/oauth2/v2.0/token`, withSlash(this.cfg.loginUrl));
    let res: Response;
    try {
      res = await (this.cfg.fetch ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          client_id: this.cfg.clientId,
          client_secret: this.cfg.clientSecret,
          scope: `${this.graphUrl.origin}/.default`,
          grant_type: 'client_credentials',
        }),
        redirect: 'error',
        signal: d.signal,
      });
    } catch {
      throw new BackendError('The Microsoft identity platform could not be reached for a Graph token.', true);
    }
    const body = obj(await res.json().catch(() => ({})));
    const token = str(body.access_token);
    if (res.status === 429 || res.status >= 500)
      throw new BackendError(
        `The Microsoft identity platform is ${res.status === 429 ? 'throttling' : 'unavailable'} (${res.status}) while issuing a Graph token; retry later.`,
        true,
        { status: res.status, ...(res.status === 429 ? { rate_limited: true } : {}) },
      );
    if (!res.ok || !token) {
      // AADSTS codes name the problem (7000215 wrong secret, 700016 unknown app, 90002 unknown tenant).
      const said = clip(str(body.error_description)?.split('\n')[0] ?? str(body.error) ?? `HTTP ${res.status}`, 200);
      throw new BackendError(
        `Microsoft Graph refused the client credentials (${said}); check tenant_id, client_id and the secret named by client_secret_env.`,
        false,
        { status: res.status, reason: 'auth' },
      );
    }
    const ttl = Number(body.expires_in) || 3600;
    this.#token = { value: token, until: this.now() + Math.max(0, ttl - 60) * 1000 };
    return token;
  }

  /** A request inside the call's deadline; non-2xx answers are returned for the caller to map (see `failure`). */
  async send(req: CloudRequest, o: CallOpts): Promise<CloudResponse> {
    return this.http.send(req, deadline(o.signal, this.cfg.timeoutMs ?? 20_000));
  }
}

const withSlash = (u: string): string => (u.endsWith('/') ? u : `${u}/`);

/** A final Graph error answer → BackendError naming Graph's code and message and what was being done. */
export function graphFailure(res: CloudResponse, what: string): BackendError {
  const { code, message } = graphError(res);
  const said = clip([code, message].filter(Boolean).join(': '));
  const tail = said ? ` (${said})` : '';
  if (res.status === 403)
    return new BackendError(
      `Microsoft Graph denied permission while ${what}${tail}; the app registration lacks an application permission (see docs/backends.md).`,
      false,
      { status: 403, graph_error: code, reason: 'permission' },
    );
  if (res.status === 401)
    return new BackendError(`Microsoft Graph rejected the token while ${what}${tail}.`, false, {
      status: 401,
      graph_error: code,
      reason: 'auth',
    });
  return new BackendError(`Microsoft Graph answered ${res.status} while ${what}${tail}.`, res.status >= 500, {
    status: res.status,
    graph_error: code,
  });
}
