/**
 * TOTP factors (RFC 6238: SHA-1, 6 digits, 30 s step, ±1 step), the same for every store adapter: `judge` decides
 * what a code does to a factor, and the adapter writes that change in the transaction that read the factor. A code
 * is never accepted twice (the last accepted time step is kept and only later steps pass); MAX_FAILURES failures
 * lock the factor for LOCK_MS.
 */
import { Secret, TOTP } from 'otpauth';
import { LOCK_MS, MAX_FAILURES } from '../core/ports/factor-records.js';
import type { VerifyOutcome } from '../core/ports/factors.js';

const STEP_MS = 30_000;

/** A factor as the table holds it. */
export interface FactorRow {
  secret: string;
  last_counter: number;
  failures: number;
  locked_until: number;
}

/** What checking a code changes: a failure (counted, maybe locking) or an accepted step; nothing when refused as is. */
export type FactorChange = { failures: number; locked_until: number } | { last_counter: number } | undefined;

export const totpFor = (username: string, secret: string) =>
  new TOTP({
    issuer: 'itguard',
    label: username,
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    secret: Secret.fromBase32(secret),
  });

/** A new random secret (base32, 20 bytes). */
export const newSecret = (): string => new Secret({ size: 20 }).base32;

/** Decides a code against the factor read in the same transaction that will write the change. */
export function judge(
  username: string,
  r: FactorRow | undefined,
  code: string,
  now: number,
): { outcome: VerifyOutcome; change: FactorChange } {
  if (!r) return { outcome: { ok: false, why: 'no_factor' }, change: undefined };
  if (r.locked_until > now)
    return { outcome: { ok: false, why: 'locked', lockedUntil: r.locked_until }, change: undefined };
  const fail = (why: 'wrong' | 'replayed' | 'malformed') => {
    const failures = r.failures + 1;
    const justLocked = failures >= MAX_FAILURES;
    const lockedUntil = justLocked ? now + LOCK_MS : 0;
    return {
      outcome: { ok: false as const, why, failures, justLocked, lockedUntil },
      change: { failures: justLocked ? 0 : failures, locked_until: lockedUntil },
    };
  };
  if (!/^\d{6}$/.test(code)) return fail('malformed');
  const delta = totpFor(username, r.secret).validate({ token: code, timestamp: now, window: 1 });
  if (delta === null) return fail('wrong');
  const counter = Math.floor(now / STEP_MS) + delta;
  // Security: a code (time step) already accepted is never accepted again.
  if (counter <= r.last_counter) return fail('replayed');
  return { outcome: { ok: true }, change: { last_counter: counter } };
}
