/** Loopback hosts: the only ones plain `http://` is accepted for (issuers, the audience, JWKS and discovery URLs). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (/^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Why `url` is not acceptable as an identity URL (issuer, resource, JWKS), or undefined when it is: https, or http to a
 * loopback host; no credentials; no fragment; no query (RFC 8414 §2 for issuers, RFC 8707 §2 for resources).
 */
export function identityUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'expected an absolute URL like https://idp.example.com';
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname)))
    return 'must be https:// (http:// only for loopback hosts)';
  if (u.username || u.password) return 'must not carry a user name or password';
  if (u.search || url.includes('?')) return 'must not have a query';
  if (u.hash || url.includes('#')) return 'must not have a fragment';
  return undefined;
}
