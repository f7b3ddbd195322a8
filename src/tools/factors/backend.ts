/**
 * The factors port: each user's TOTP authenticator (RFC 6238), keyed by directory username — whichever directory
 * the user lives in. The embedded adapter is itguard's own store (mfa_factors); the directory is never asked for
 * a secret.
 */
import type { CallOpts } from '../../backends/port.js';

export type VerifyOutcome =
  | { ok: true }
  | {
      ok: false;
      why: 'no_factor' | 'locked' | 'wrong' | 'replayed' | 'malformed';
      lockedUntil?: number;
      justLocked?: boolean;
      failures?: number;
    };

export interface FactorsPort {
  readonly kind: string;
  enrolled(username: string, o: CallOpts): Promise<boolean>;
  /** Epoch ms until which the factor is locked after too many wrong codes; 0 when it is not. */
  lockedUntil(username: string, o: CallOpts): Promise<number>;
  /** Checks a code: a code is never accepted twice; 5 failures lock the factor for 15 minutes. */
  verify(username: string, code: string, o: CallOpts): Promise<VerifyOutcome>;
  /** Creates or replaces the factor; returns its otpauth:// URI (shown once, to the person enrolling). */
  enroll(username: string): Promise<string>;
}
