/**
 * JWT access-token validation for the OAuth 2.1 resource server (DESIGN §6). Plain code over `jose`: no MCP SDK, no
 * HTTP framework; src/http/auth.ts is the thin express middleware around it.
 *
 * In order: size and shape; the unverified `iss` must be on the allowlist (nothing is fetched for any other issuer);
 * the issuer's keys (discovery.ts); signature with an asymmetric algorithm; `iss`; `aud` contains the audience;
 * `exp` required, `exp`/`nbf` with 60 s of clock skew; header `typ` absent or `at+jwt` (RFC 9068 §4: an ID token
 * or some other JWT signed by the same provider is not an access token). Then `auth.required_scopes` (403
 * insufficient_scope), then the principal (403 naming the claim when none matches).
 *
 * Who the agent acts for (`onBehalfOf`): the `email` claim (unless `email_verified` is false), else `sub`; none for
 * a token with no human behind it. Client-credentials tokens are recognised by what providers put in them: `sub`
 * equal to the client (`client_id`, `azp`, `appid` or `cid` — oidc-provider, Okta, Entra v1, Keycloak's `azp`),
 * `gty: client-credentials` (Auth0), `idtyp: app` (Entra's optional claim), a Keycloak service account
 * (`preferred_username: service-account-…`), or no `sub` at all.
 *
 * The token itself goes nowhere: not into the result, an error, a log line or the audit.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthPolicy } from '../policy/auth.js';
import { IssuerKeys, IssuerUnavailable, type DiscoveryOptions } from './discovery.js';

export const CLOCK_SKEW_S = 60;
/** Larger than any access token a provider issues (Entra's with many groups stay under 8 KB). */
const MAX_TOKEN_CHARS = 16_384;
const ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

export interface OAuthIdentity {
  principal: string;
  /** The human the agent acts for; undefined for a client-credentials token. */
  onBehalfOf: string | undefined;
  /**
   * The stable identity of that human: issuer + ' ' + `sub` (DESIGN §6 `on_behalf_of_id`). Every comparison of people
   * (separation of duties, `per: user` bounds, task identity) uses this, never the display `onBehalfOf`.
   */
  onBehalfOfId: string | undefined;
  /** The token's `email` claim as given (verified or not), for separation-of-duties comparisons only. */
  email: string | undefined;
  /** What a session is bound to beyond the principal: issuer and subject (or client, when no human). */
  user: string;
  issuer: string;
  clientId: string | undefined;
  scopes: readonly string[];
  /** Seconds since the epoch. */
  expiresAt: number;
}

/**
 * A refusal. `invalid_token` → 401, `insufficient_scope` → 403 with the scopes needed, `no_principal` → 403 (the
 * token is good, the policy grants it nothing), `unavailable` → 503 (the provider could not be reached).
 */
export class TokenRejected extends Error {
  override readonly name = 'TokenRejected';
  constructor(
    readonly kind: 'invalid_token' | 'insufficient_scope' | 'no_principal' | 'unavailable',
    message: string,
    readonly scope?: string,
    /** For the operator's log (unavailable): what failed underneath. Never shown to the client. */
    readonly detail?: string,
  ) {
    super(message);
  }
  get status(): 401 | 403 | 503 {
    return this.kind === 'invalid_token' ? 401 : this.kind === 'unavailable' ? 503 : 403;
  }
}

export interface VerifierOptions extends DiscoveryOptions {
  /** Whether the policy has a principal of this name. */
  isPrincipal: (name: string) => boolean;
  /** The clock `exp` and `nbf` are checked against (ms); default Date.now. */
  now?: () => number;
}

export interface OAuthVerifier {
  verify(token: string): Promise<OAuthIdentity>;
}

const invalid = (message: string) => new TokenRejected('invalid_token', message);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
/** A claim value fit to record: bounded, no control characters. */
const recordable = (v: unknown): string | undefined => {
  const s = str(v);
  return s && s.length <= 320 && ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
    ? s
    : undefined;
};

export function createOAuthVerifier(auth: AuthPolicy, opts: VerifierOptions): OAuthVerifier {
  const keys = new IssuerKeys(opts);
  const now = opts.now ?? Date.now;
  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_CHARS) throw invalid('The access token is too large.');
      let iss: string | undefined;
      try {
        decodeProtectedHeader(token);
        iss = str(decodeJwt(token).iss);
      } catch {
        throw invalid('The access token is not a JWT this server can read.');
      }
      // Security: the issuer decides where keys are fetched from; only allowlisted issuers are ever contacted.
      if (!iss || !auth.issuers.includes(iss))
        throw invalid('The access token was not issued by an issuer this server trusts.');
      let payload: JWTPayload;
      let typ: string | undefined;
      try {
        const jwks = await keys.get(iss);
        const r = await jwtVerify(token, jwks, {
          issuer: iss,
          audience: auth.audience,
          algorithms: ALGORITHMS,
          clockTolerance: CLOCK_SKEW_S,
          currentDate: new Date(now()),
          requiredClaims: ['exp'],
        });
        payload = r.payload;
        typ = r.protectedHeader.typ;
      } catch (err) {
        throw rejection(err, auth.audience);
      }
      // Security: RFC 9068 access tokens say so; a JWT of another type (an ID token) is not one, whoever signed it.
      if (typ !== undefined && !/^(application\/)?at\+jwt$/i.test(typ))
        throw invalid(`The token is a JWT of type "${typ.slice(0, 32)}", not an access token (at+jwt).`);

      const scopes = scopesOf(payload);
      const missing = auth.requiredScopes.filter((s) => !scopes.includes(s));
      // Security: step-up: the token is valid but lacks what this server requires; the client may ask for more.
      if (missing.length)
        throw new TokenRejected(
          'insufficient_scope',
          `The access token lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(' ')}.`,
          auth.requiredScopes.join(' '),
        );
      const principal = principalOf(payload, auth, opts.isPrincipal);
      const clientId = str(payload.client_id) ?? str(payload.azp) ?? str(payload.appid) ?? str(payload.cid);
      const machine = isMachine(payload);
      const sub = str(payload.sub);
      return {
        principal,
        onBehalfOf: machine ? undefined : onBehalfOfClaims(payload),
        onBehalfOfId: machine || !sub ? undefined : `${iss} sub:${sub}`,
        email: machine ? undefined : recordable(payload.email),
        user: machine ? `${iss} client:${clientId ?? sub ?? ''}` : `${iss} sub:${sub}`,
        issuer: iss,
        clientId,
        scopes,
        expiresAt: payload.exp!,
      };
    },
  };
}

/** `scope` (RFC 9068, space-separated) and `scp` (Okta, Entra: an array or a string). */
export function scopesOf(p: JWTPayload): string[] {
  const out = new Set<string>();
  for (const v of [p.scope, p.scp]) {
    if (typeof v === 'string') v.split(' ').forEach((s) => s && out.add(s));
    else if (Array.isArray(v)) v.forEach((s) => typeof s === 'string' && s && out.add(s));
  }
  return [...out];
}

/** True when no human stands behind the token (client credentials); see the module comment for the signals. */
export function isMachine(p: JWTPayload): boolean {
  const sub = str(p.sub);
  if (!sub) return true;
  if ([p.client_id, p.azp, p.appid, p.cid].some((c) => c === sub)) return true;
  if (p.gty === 'client-credentials' || p.gty === 'client_credentials') return true;
  if (p.idtyp === 'app') return true;
  return typeof p.preferred_username === 'string' && p.preferred_username.startsWith('service-account-');
}

function onBehalfOfClaims(p: JWTPayload): string | undefined {
  // An address the provider says it has not verified does not name the person; the subject does.
  const email = p.email_verified === false ? undefined : recordable(p.email);
  return email ?? recordable(p.sub);
}

function principalOf(p: JWTPayload, auth: AuthPolicy, isPrincipal: (n: string) => boolean): string {
  if (auth.principalClaim !== undefined) {
    const claim = auth.principalClaim;
    const v = p[claim];
    // Security: the claim must name a principal of this policy exactly; nothing is guessed or defaulted.
    if (typeof v === 'string' && isPrincipal(v)) return v;
    throw new TokenRejected(
      'no_principal',
      v === undefined
        ? `The access token has no "${claim}" claim (auth.principal_claim), so it maps to no principal of this server.`
        : `The access token's "${claim}" claim (auth.principal_claim) names no principal of this server.`,
    );
  }
  const claim = auth.groupsClaim;
  const raw = p[claim];
  const groups = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw.filter((g) => typeof g === 'string') : [];
  // Security: the policy's order decides, not the token's: the first mapping whose group the token carries.
  const hit = auth.principalsFromGroups?.find((m) => groups.includes(m.group) && isPrincipal(m.principal));
  if (hit) return hit.principal;
  throw new TokenRejected(
    'no_principal',
    raw === undefined
      ? `The access token has no "${claim}" claim (auth.groups_claim), so it maps to no principal of this server.`
      : `The access token's "${claim}" claim (auth.groups_claim) has no group mapped in auth.principals_from_groups.`,
  );
}

/** jose's failure, said for the client; the provider being unreachable is not the token's fault. */
function rejection(err: unknown, audience: string): TokenRejected {
  if (err instanceof TokenRejected) return err;
  const unavailable = (message: string) =>
    new TokenRejected('unavailable', message, undefined, err instanceof Error ? err.message : String(err));
  if (err instanceof IssuerUnavailable || err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid)
    return unavailable('The identity provider could not be reached to check the token; retry later.');
  if (err instanceof errors.JWTExpired) return invalid('The access token has expired.');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return invalid(`The access token is for another resource (its aud is not ${audience}).`);
    if (err.claim === 'nbf') return invalid('The access token is not valid yet (nbf).');
    if (err.claim === 'exp') return invalid('The access token has no expiry (exp).');
    if (err.claim === 'iss') return invalid('The access token was not issued by an issuer this server trusts.');
    return invalid(`The access token's ${err.claim} claim is not valid.`);
  }
  if (err instanceof errors.JWKSNoMatchingKey)
    return invalid('The access token is signed with a key its issuer does not publish.');
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return invalid('The access token signature does not verify.');
  if (err instanceof errors.JOSEAlgNotAllowed)
    return invalid('The access token is signed with an algorithm this server does not accept.');
  if (err instanceof errors.JOSEError) {
    // The key set could not be fetched or read (HTTP error, bad JSON): the provider's problem, not the token's.
    if (err.code === 'ERR_JOSE_GENERIC')
      return unavailable('The identity provider’s keys could not be read; retry later.');
    return invalid('The access token is not valid.');
  }
  // A network error from fetching the key set.
  return unavailable('The identity provider could not be reached to check the token; retry later.');
}
