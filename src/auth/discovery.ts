/**
 * Where an allowed issuer's signing keys are. Its metadata is fetched once, from OpenID Connect discovery
 * (`{issuer}/.well-known/openid-configuration`), else RFC 8414 (`{origin}/.well-known/oauth-authorization-server{path}`);
 * the document must name the same issuer, and its `jwks_uri` must be https (http only on loopback). The key set is
 * jose's remote JWKS: cached (`jwksMaxAgeMs`, 10 min), and a token whose `kid` is not in the cached set refetches
 * it — at most once per `jwksCooldownMs` (30 s), so a flood of tokens with made-up key ids cannot make this server
 * hammer the identity provider. A failed discovery is remembered for `retryMs` (30 s) for the same reason.
 *
 * Only issuers on the policy's allowlist are ever fetched: the issuer comes from the allowlist, never from a token.
 * No redirects are followed. Fetch failures are `IssuerUnavailable` (the HTTP layer answers 503: the token may be
 * fine, the provider is not reachable) — never a silent accept.
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import { isLoopbackHost } from '../loopback.js';

export interface DiscoveryOptions {
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
  timeoutMs?: number;
  jwksCooldownMs?: number;
  jwksMaxAgeMs?: number;
  retryMs?: number;
  /** Monotonic enough for back-off; default Date.now. */
  now?: () => number;
}

export class IssuerUnavailable extends Error {
  override readonly name = 'IssuerUnavailable';
}

/** The metadata URLs tried, in order. */
export function metadataUrls(issuer: string): string[] {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/+$/, '');
  return [
    `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
  ];
}

interface Entry {
  keys?: JWTVerifyGetKey;
  pending?: Promise<JWTVerifyGetKey>;
  failedAt?: number;
  problem?: string;
}

export class IssuerKeys {
  private readonly entries = new Map<string, Entry>();
  private readonly fetch: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly opts: DiscoveryOptions = {}) {
    this.fetch = opts.fetch ?? ((input, init) => fetch(input, init));
    this.now = opts.now ?? Date.now;
  }

  /** The key resolver for an allowed issuer; rejects with IssuerUnavailable when its metadata cannot be had. */
  get(issuer: string): Promise<JWTVerifyGetKey> {
    let e = this.entries.get(issuer);
    if (!e) this.entries.set(issuer, (e = {}));
    if (e.keys) return Promise.resolve(e.keys);
    if (e.pending) return e.pending;
    if (e.failedAt !== undefined && this.now() - e.failedAt < (this.opts.retryMs ?? 30_000))
      return Promise.reject(new IssuerUnavailable(e.problem));
    const entry = e;
    entry.pending = this.discover(issuer)
      .then((jwksUri) => {
        entry.keys = createRemoteJWKSet(new URL(jwksUri), {
          timeoutDuration: this.opts.timeoutMs ?? 5000,
          cooldownDuration: this.opts.jwksCooldownMs ?? 30_000,
          cacheMaxAge: this.opts.jwksMaxAgeMs ?? 600_000,
          [customFetch]: this.fetch,
        });
        return entry.keys;
      })
      .catch((err: unknown) => {
        entry.failedAt = this.now();
        entry.problem = err instanceof Error ? err.message : String(err);
        throw new IssuerUnavailable(entry.problem);
      })
      .finally(() => {
        entry.pending = undefined;
      });
    return entry.pending;
  }

  private async discover(issuer: string): Promise<string> {
    const problems: string[] = [];
    for (const url of metadataUrls(issuer)) {
      try {
        const res = await this.fetch(url, {
          redirect: 'manual',
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
        });
        if (res.status !== 200) {
          problems.push(`${url}: HTTP ${res.status}`);
          continue;
        }
        const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
        // Security: metadata that names another issuer is not this issuer's (OpenID Discovery §4.3, RFC 8414 §3.3).
        if (doc.issuer !== issuer) {
          problems.push(`${url}: names issuer ${JSON.stringify(doc.issuer)}`);
          continue;
        }
        const jwks = typeof doc.jwks_uri === 'string' ? doc.jwks_uri : undefined;
        if (!jwks || !httpsOrLoopback(jwks)) {
          problems.push(`${url}: jwks_uri missing or not https`);
          continue;
        }
        return jwks;
      } catch (err) {
        problems.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw new IssuerUnavailable(`no usable metadata for ${issuer} (${problems.join('; ')})`);
  }
}

function httpsOrLoopback(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname));
  } catch {
    return false;
  }
}
