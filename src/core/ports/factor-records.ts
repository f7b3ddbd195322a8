/**
 * The factor records port: the TOTP factors itguard keeps itself (table `mfa_factors`), for the embedded factors
 * adapter (tools/factors/embedded.ts). Guard state (DESIGN §5): implemented by the store adapters only
 * (store/sqlite/mfa-store.ts, store/postgres/mfa.ts), exact across every process sharing the store: a code is
 * accepted once, and failures count toward the lockout, whichever replica checks it.
 */
import type { Awaitable } from '../backend.js';
import type { VerifyOutcome } from './factors.js';

/** Wrong codes in a row that lock a factor, and for how long. */
export const MAX_FAILURES = 5;
export const LOCK_MS = 15 * 60_000;

export interface FactorRecordsPort {
  /** Creates (or replaces) the user's factor, counters reset; returns its otpauth:// URI (shown once). */
  enroll(username: string): Awaitable<string>;
  has(username: string): Awaitable<boolean>;
  /** Epoch ms until which the factor is locked; 0 when it is not. */
  lockedUntil(username: string): Awaitable<number>;
  /** Checks a code (RFC 6238, ±1 step): never accepted twice; MAX_FAILURES failures lock it for LOCK_MS. */
  verify(username: string, code: string): Awaitable<VerifyOutcome>;
}
