/**
 * Bearer authentication for /mcp: a thin express layer over the stores and src/auth/ (no MCP SDK types, so it
 * serves the v1 and v2 SDK transports alike).
 *
 *  - itguard's own tokens (`itg_…`, `itguard token create`): looked up by hash; refused when the policy says
 *    `auth.static_tokens: false`.
 *  - with an `auth:` block, any other token is a JWT access token from the identity provider (src/auth/oauth.ts).
 *
 * Answers (RFC 6750 §3, RFC 9728 §5.1): no token → 401 `WWW-Authenticate: Bearer resource_metadata="…"` (no error
 * code: the client has not tried yet); a bad token → 401 with `error="invalid_token"` and a description; a valid
 * token without `auth.required_scopes` → 403 `error="insufficient_scope"`, `scope="…"`; a valid token that maps to
 * no principal → 403 naming the claim (no challenge: asking the user to sign in again would not help); the
 * identity provider unreachable → 503 with Retry-After. Without an `auth:` block the challenge carries
 * `realm="itguard"` instead of resource metadata. Bodies are JSON-RPC error responses (`id: null`: the request is not
 * read before it is authenticated) whose message a person can act on — what was wrong and what to do — with the
 * OAuth `error` and `error_description` in `error.data` (DESIGN §6): MCP clients show a JSON-RPC error's message.
 *
 * What a request proved is left in `res.locals` (`authOf(res)`), and in `req.auth` in the SDK's AuthInfo shape for
 * the SDK transports to hand on as `authInfo` (`extra.principal`, `extra.onBehalfOf`, `extra.user`) — with `token`
 * left empty: the token itself is not kept, logged or passed on.
 */
import { TASK_HEADER } from '../guard/task.js';
import { touchToken } from '../guard/operator.js';
import type { Request, RequestHandler, Response } from 'express';
import type { AuthInfo } from '@modelcontextprotocol/server';
import type { App } from '../app.js';
import { resourceMetadataUrl, bearerChallenge, type Challenge } from '../auth/metadata.js';
import { TokenRejected, type OAuthVerifier } from '../auth/oauth.js';
import type { Principal } from '../core/tool.js';

export interface Authenticated {
  /** The policy principal, with the human it acts for when the token names one. */
  principal: Principal;
  /** What sessions are bound to beyond the principal: the OAuth user (issuer + subject); undefined for static tokens. */
  user: string | undefined;
  via: 'static' | 'oauth';
  /** OAuth: the token's client and expiry (seconds). */
  clientId?: string | undefined;
  expiresAt?: number | undefined;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by bearerAuth (the SDK's own middleware declares the same). */
    auth?: AuthInfo;
  }
}

const LOCALS_KEY = 'itguardAuth';
export const authOf = (res: Response): Authenticated | undefined =>
  (res.locals as Record<string, Authenticated | undefined>)[LOCALS_KEY];

/** RFC 6750 §2.1 b64token after "Bearer" and one or more spaces. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const STATIC_PREFIX = 'itg_';

export function bearerAuth(app: App, oauth: OAuthVerifier | undefined): RequestHandler {
  const auth = app.policy.auth;
  const staticTokens = auth?.staticTokens ?? true;
  const base: Challenge = auth ? { resourceMetadata: resourceMetadataUrl(auth.audience) } : { realm: 'itguard' };

  const refuse = (
    res: Response,
    status: number,
    challenge: Challenge | undefined,
    error: string,
    description: string,
  ) => {
    if (challenge) res.set('WWW-Authenticate', bearerChallenge(challenge));
    res.status(status).json(authErrorBody(status, error, description, todo(status, error)));
  };
  // What to do next, in the words of this deployment (static tokens, an identity provider, or both).
  const signIn = auth ? 'sign in again with the identity provider to get a new access token' : '';
  const create = staticTokens ? 'create a token with `itguard token create --principal NAME`' : '';
  const todo = (status: number, error: string): string => {
    if (status === 503) return 'Retry in 30 seconds.';
    if (error === 'insufficient_scope') return 'Sign in again and grant the scopes named.';
    if (error === 'access_denied') return 'Ask IT to map your account to an itguard principal.';
    const how = [create, signIn].filter(Boolean).join(', or ');
    return `${how.charAt(0).toUpperCase()}${how.slice(1)}, and configure the MCP client to send it as Authorization: Bearer <token>.`;
  };
  const invalid = (res: Response, description: string) =>
    refuse(res, 401, { ...base, error: 'invalid_token', description }, 'invalid_token', description);

  return async function authenticate(req, res, next) {
    const header = req.headers.authorization;
    if (header === undefined || header === '')
      return refuse(res, 401, base, 'invalid_token', 'This endpoint needs Authorization: Bearer <token>.');
    const token = BEARER.exec(header)?.[1];
    if (!token) return invalid(res, 'Expected Authorization: Bearer <token>.');

    if (!oauth || token.startsWith(STATIC_PREFIX)) {
      // Security: a deployment that turned static tokens off accepts none, valid or not.
      if (!staticTokens)
        return invalid(
          res,
          'Static itguard tokens are turned off here (auth.static_tokens: false); use a token from the identity provider.',
        );
      const t = await app.store.tokens.verify(token);
      if (!t) return invalid(res, 'Unknown or revoked itguard token.');
      const principal = app.principal(t.principal);
      // Security: a token whose principal the policy no longer names grants nothing.
      if (!principal) return invalid(res, `Principal ${t.principal} is not in the policy.`);
      touchToken(app, t.id, app.now());
      return accept(req, res, next, { principal, user: undefined, via: 'static' });
    }

    try {
      const id = await oauth.verify(token);
      const principal = app.principal(id.principal);
      if (!principal) throw new TokenRejected('no_principal', `Principal ${id.principal} is not in the policy.`);
      return accept(req, res, next, {
        principal: { ...principal, onBehalfOf: id.onBehalfOf, onBehalfOfId: id.onBehalfOfId },
        user: id.user,
        via: 'oauth',
        clientId: id.clientId,
        expiresAt: id.expiresAt,
      });
    } catch (err) {
      if (!(err instanceof TokenRejected)) return next(err);
      if (err.kind === 'unavailable')
        app.log.warn({ why: err.detail ?? err.message }, 'identity provider unreachable: access token not checked');
      else app.log.debug({ status: err.status, why: err.message }, 'access token refused');
      if (err.kind === 'invalid_token') return invalid(res, err.message);
      if (err.kind === 'insufficient_scope')
        return refuse(
          res,
          403,
          {
            ...base,
            error: 'insufficient_scope',
            description: err.message,
            ...(err.scope ? { scope: err.scope } : {}),
          },
          'insufficient_scope',
          err.message,
        );
      if (err.kind === 'no_principal') return refuse(res, 403, undefined, 'access_denied', err.message);
      res.set('Retry-After', '30');
      return refuse(res, 503, undefined, 'temporarily_unavailable', err.message);
    }
  };
}

function accept(req: Request, res: Response, next: () => void, a: Authenticated): void {
  (res.locals as Record<string, Authenticated>)[LOCALS_KEY] = a;
  // Security: `token` is empty on purpose; nothing past this middleware needs the token, so nothing gets it.
  req.auth = {
    token: '',
    clientId: a.clientId ?? a.principal.name,
    scopes: [...a.principal.scopes],
    ...(a.expiresAt !== undefined ? { expiresAt: a.expiresAt } : {}),
    extra: {
      principal: a.principal.name,
      onBehalfOf: a.principal.onBehalfOf,
      onBehalfOfId: a.principal.onBehalfOfId,
      user: a.user,
      via: a.via,
      // The request's task id (DESIGN §3 step 4), validated where the call is identified (guard/task.ts).
      task: req.headers[TASK_HEADER],
    },
  };
  next();
}

/** A JSON-RPC error response for a refused /mcp request: a message to act on, the OAuth error in `data`. */
export function authErrorBody(status: number, error: string, description: string, todo: string) {
  const what = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Unavailable';
  return {
    jsonrpc: '2.0' as const,
    id: null,
    error: {
      code: -32000,
      message: `${what}: ${description} ${todo}`,
      data: { http_status: status, error, error_description: description },
    },
  };
}
