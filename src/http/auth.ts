/** Bearer-token verification for /mcp, plugged into the SDK's requireBearerAuth (401 + WWW-Authenticate: Bearer). */
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { App } from '../app.js';

export function tokenVerifier(app: App): OAuthTokenVerifier {
  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      const t = app.tokens.verify(token);
      if (!t) throw new InvalidTokenError('Unknown or revoked token');
      const principal = app.principal(t.principal);
      // Security: a token whose principal the policy no longer names grants nothing.
      if (!principal) throw new InvalidTokenError(`Principal ${t.principal} is not in the policy`);
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
