/** Host and Origin validation (DNS rebinding, cross-site requests): 403 for anything not on the allow lists. */
import type { RequestHandler } from 'express';
import { validateHostHeader } from '@modelcontextprotocol/server';

export interface OriginPolicy {
  hosts: string[];
  origins: string[];
}

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

export function originPolicy(
  host: string,
  port: number,
  extraHosts: string[] = [],
  extraOrigins: string[] = [],
): OriginPolicy {
  const bindHost = host.includes(':') ? `[${host}]` : host;
  const hosts = [
    ...new Set([
      ...(LOOPBACK.includes(bindHost) || bindHost === '0.0.0.0' || bindHost === '[::]' ? LOOPBACK : [bindHost]),
      ...extraHosts,
    ]),
  ];
  const origins = [
    ...new Set([...hosts.flatMap((h) => [`http://${h}:${port}`, `https://${h}:${port}`]), ...extraOrigins]),
  ];
  return { hosts, origins };
}

export function checkOrigin(policy: OriginPolicy): RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    // Security: browsers send Origin on cross-site requests; a page on another site must not drive this server.
    if (origin !== undefined && !policy.origins.includes(origin)) {
      res
        .status(403)
        .json({ jsonrpc: '2.0', error: { code: -32000, message: `Origin not allowed: ${origin}` }, id: null });
      return;
    }
    next();
  };
}

/** The Host check (DNS rebinding): the SDK's validation, answered as its middleware does (403, JSON-RPC error). */
export function hostHeaderValidation(allowedHostnames: string[]): RequestHandler {
  return (req, res, next) => {
    const r = validateHostHeader(req.headers.host, allowedHostnames);
    // Security: a Host this server does not answer to is a rebinding attempt or a misroute; refuse it.
    if (!r.ok)
      return void res.status(403).json({ jsonrpc: '2.0', error: { code: -32000, message: r.message }, id: null });
    next();
  };
}
