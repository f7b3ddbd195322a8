/**
 * The factors port: each user's TOTP authenticator (RFC 6238), keyed by directory username — whichever directory
 * the user lives in. The embedded adapter is itguard's own store (mfa_factors); the directory is never asked for
 * a secret.
 */
import type { CallOpts } from '../backend.js';

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
  /** Factors confirmed by a push to the user's phone (Okta Verify): nothing is typed anywhere. */
  readonly push?: PushFactors;
}

export type PushResult = 'WAITING' | 'SUCCESS' | 'REJECTED' | 'TIMEOUT';

/** A push challenge sent to the user's phone; `poll` reads its state (opaque to the gate). */
export interface PushChallenge {
  poll: string;
}

export interface PushFactors {
  /** How often the gate asks for the challenge's state (ms). */
  readonly pollMs: number;
  /** How long a challenge stays open before the vendor times it out (ms); the gate stops asking after it. */
  readonly ttlMs: number;
  /** Sends a push to the user's enrolled phone; BackendError when none is enrolled or the vendor refuses. */
  start(username: string, o: CallOpts): Promise<PushChallenge>;
  poll(c: PushChallenge, o: CallOpts): Promise<PushResult>;
}
