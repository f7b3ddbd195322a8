/**
 * TOTP factors (RFC 6238: 30 s step, ±1 step). A code is never accepted twice (the last accepted time step is
 * kept and only later steps pass); 5 failures lock the factor for 15 minutes.
 */
import { Secret, TOTP } from 'otpauth';
import type { VerifyOutcome } from '../../core/ports/factors.js';
import { immediate, type Db } from './db.js';

export const MAX_FAILURES = 5;
export const LOCK_MS = 15 * 60_000;
const STEP_MS = 30_000;

interface FactorRow {
  username: string;
  secret: string;
  last_counter: number;
  failures: number;
  locked_until: number;
}

const totpFor = (username: string, secret: string) =>
  new TOTP({
    issuer: 'itguard',
    label: username,
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    secret: Secret.fromBase32(secret),
  });

export class MfaStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates (or replaces) the user's factor and returns its otpauth:// URI. */
  enroll(username: string): string {
    const secret = new Secret({ size: 20 });
    this.db
      .prepare(
        `INSERT INTO mfa_factors (username, secret, enrolled_at) VALUES (?, ?, ?)
         ON CONFLICT(username) DO UPDATE SET secret = excluded.secret, last_counter = -1, failures = 0, locked_until = 0, enrolled_at = excluded.enrolled_at`,
      )
      .run(username, secret.base32, this.now());
    return totpFor(username, secret.base32).toString();
  }

  has(username: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM mfa_factors WHERE username = ?').get(username);
  }

  lockedUntil(username: string): number {
    const r = this.db
      .prepare<[string], { locked_until: number }>('SELECT locked_until FROM mfa_factors WHERE username = ?')
      .get(username);
    return r && r.locked_until > this.now() ? r.locked_until : 0;
  }

  /** For tests and the demo only: the code an authenticator app would show now. */
  currentCode(username: string, at = this.now()): string | undefined {
    const r = this.db.prepare<[string], FactorRow>('SELECT * FROM mfa_factors WHERE username = ?').get(username);
    return r && totpFor(username, r.secret).generate({ timestamp: at });
  }

  verify(username: string, code: string): VerifyOutcome {
    return immediate(this.db, (): VerifyOutcome => {
      const now = this.now();
      const r = this.db.prepare<[string], FactorRow>('SELECT * FROM mfa_factors WHERE username = ?').get(username);
      if (!r) return { ok: false, why: 'no_factor' };
      if (r.locked_until > now) return { ok: false, why: 'locked', lockedUntil: r.locked_until };
      const fail = (why: 'wrong' | 'replayed' | 'malformed'): VerifyOutcome => {
        const failures = r.failures + 1;
        const justLocked = failures >= MAX_FAILURES;
        const lockedUntil = justLocked ? now + LOCK_MS : 0;
        this.db
          .prepare('UPDATE mfa_factors SET failures = ?, locked_until = ? WHERE username = ?')
          .run(justLocked ? 0 : failures, lockedUntil, username);
        return { ok: false, why, failures, justLocked, lockedUntil };
      };
      if (!/^\d{6}$/.test(code)) return fail('malformed');
      const delta = totpFor(username, r.secret).validate({ token: code, timestamp: now, window: 1 });
      if (delta === null) return fail('wrong');
      const counter = Math.floor(now / STEP_MS) + delta;
      // Security: a code (time step) already accepted is never accepted again.
      if (counter <= r.last_counter) return fail('replayed');
      this.db
        .prepare('UPDATE mfa_factors SET last_counter = ?, failures = 0 WHERE username = ?')
        .run(counter, username);
      return { ok: true };
    });
  }
}
