/**
 * What a client learns before it has a token: the Protected Resource Metadata document (RFC 9728) and the
 * `WWW-Authenticate: Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1) that points at it.
 */
import type { AuthPolicy } from '../policy/auth.js';

export const PRM_PATH = '/.well-known/oauth-protected-resource';

/** RFC 9728 §3.1: the well-known segment goes between the host and the resource's path. */
export function resourceMetadataUrl(audience: string): string {
  const u = new URL(audience);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
  return `${u.origin}${PRM_PATH}${path}`;
}

/** The document served at /.well-known/oauth-protected-resource[/mcp]. */
export function protectedResourceMetadata(auth: AuthPolicy): Record<string, unknown> {
  return {
    resource: auth.audience,
    authorization_servers: [...auth.issuers],
    scopes_supported: [...auth.requiredScopes],
    bearer_methods_supported: ['header'],
    resource_name: 'itguard',
  };
}

/** A quoted-string value: RFC 6750 allows %x20-21 / %x23-5B / %x5D-7E, so quotes and backslashes become '. */
const quoted = (s: string): string =>
  `"${s
    .replace(/["\\]/g, "'")
    .replace(/[^\x20-\x7e]/g, '')
    .slice(0, 300)}"`;

export interface Challenge {
  error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request';
  description?: string;
  scope?: string;
  resourceMetadata?: string;
  realm?: string;
}

export function bearerChallenge(c: Challenge): string {
  const parts: string[] = [];
  if (c.realm) parts.push(`realm=${quoted(c.realm)}`);
  if (c.resourceMetadata) parts.push(`resource_metadata=${quoted(c.resourceMetadata)}`);
  if (c.error) parts.push(`error=${quoted(c.error)}`);
  if (c.error && c.description) parts.push(`error_description=${quoted(c.description)}`);
  if (c.scope) parts.push(`scope=${quoted(c.scope)}`);
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}
