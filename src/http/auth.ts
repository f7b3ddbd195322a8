/**
 * Bearer tokens on /mcp: the token verifier (itguard's own tokens) and the Express middleware that runs it through
 * the SDK's `verifyBearerToken` (401 / 403 with `WWW-Authenticate: Bearer ...` from `bearerAuthChallengeResponse`).
 * The verified AuthInfo is `req.auth`; both protocol eras get the principal from it (`extra.principal`).
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import {
  OAuthError,
  OAuthErrorCode,
  bearerAuthChallengeResponse,
  verifyBearerToken,
  type AuthInfo,
  type OAuthTokenVerifier,
  type VerifyBearerTokenOptions,
} from '@modelcontextprotocol/server';
import type { App } from '../app.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The verified bearer token, set by `requireBearerAuth`. */
    auth?: AuthInfo;
  }
}

export function tokenVerifier(app: App): OAuthTokenVerifier {
  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      const t = app.tokens.verify(token);
      if (!t) throw new OAuthError(OAuthErrorCode.InvalidToken, 'Unknown or revoked token');
      const principal = app.principal(t.principal);
      // Security: a token whose principal the policy no longer names grants nothing.
      if (!principal)
        throw new OAuthError(OAuthErrorCode.InvalidToken, `Principal ${t.principal} is not in the policy`);
      app.tokens.touch(t.id);
      return {
        token,
        clientId: principal.name,
        scopes: [...principal.scopes],
        expiresAt: Math.floor(app.now() / 1000) + 3600,
        extra: { principal: principal.name, tokenId: t.id },
      };
    },
  };
}

/**
 * Express middleware: a valid bearer token (per `opts`, the SDK's options) or the SDK's challenge answer. The
 * counterpart of the v1 SDK's `requireBearerAuth`, over the v2 web-standard helpers.
 */
export function requireBearerAuth(opts: VerifyBearerTokenOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    verifyBearerToken(req.headers.authorization, opts).then(
      (auth) => {
        req.auth = auth;
        next();
      },
      async (e: unknown) => {
        const answer = bearerAuthChallengeResponse(e, opts);
        answer.headers.forEach((value, name) => res.setHeader(name, value));
        res.status(answer.status).send(await answer.text());
      },
    );
  };
}
