/**
 * Without an `auth:` block itguard takes static bearer tokens only. MCP clients that meet a 401 still try OAuth:
 * they fetch the discovery documents and POST /register (dynamic client registration), and on a bare 404 page they
 * report "Cannot POST /register" or ask for an interactive sign-in. These paths answer a JSON error instead, saying
 * the server takes static bearer tokens and how to get one, so a client (and the person reading its error) stops
 * trying OAuth (DESIGN §6). Public like the metadata it stands in for: mounted before the Origin check.
 */
import express from 'express';

const DISCOVERY = [
  '/.well-known/oauth-authorization-server',
  '/.well-known/openid-configuration',
  '/.well-known/oauth-protected-resource',
];
const ENDPOINTS = ['/register', '/authorize', '/token'];

export const NO_OAUTH_MESSAGE =
  'This itguard server does not use OAuth: it takes static bearer tokens. Create one with `itguard token create --principal NAME` and configure the MCP client to send it as Authorization: Bearer <token>.';

export function noOAuthRouter(): express.Router {
  const router = express.Router();
  // Each discovery document under any suffix (RFC 8414 / RFC 9728 path insertion: /.well-known/…/mcp) and the
  // well-known documents some clients look for under the MCP path itself.
  const paths = [...DISCOVERY.flatMap((p) => [p, `${p}/*rest`, `/mcp${p}`]), ...ENDPOINTS];
  router.all(paths, (_req, res) => {
    res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' });
    res.status(404).json({ error: 'oauth_not_supported', error_description: NO_OAUTH_MESSAGE });
  });
  return router;
}
