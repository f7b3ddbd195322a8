/** Canonical JSON (sorted keys, no whitespace) and hashes of it: the identity of "the same arguments". */
import { createHash, createHmac } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
export const hmacSha256 = (key: string, s: string): string => createHmac('sha256', key).update(s).digest('hex');

const SECRET_KEY = /pass(word)?|secret|token|otp|totp|code|link|credential|authorization|cookie/i;

/** A copy of args with every value under a secret-looking key replaced. Used for the audit and for logs. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[REDACTED]' : redact(v);
    return out;
  }
  return value;
}

/** The arguments that define an action: why it is done (reason) and the idempotency key are not part of it. */
export function actionArgs(args: Record<string, unknown>): Record<string, unknown> {
  const { reason: _r, idempotency_key: _k, ...rest } = args;
  return rest;
}
