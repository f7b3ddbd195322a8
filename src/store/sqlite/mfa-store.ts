/**
 * The factor records on SQLite (table `mfa_factors`; FactorRecordsPort): the TOTP decision is store/totp.ts's, made
 * and written inside one IMMEDIATE transaction, so two processes checking codes for one user take turns.
 */
import type { FactorRecordsPort } from '../../core/ports/factor-records.js';
import type { VerifyOutcome } from '../../core/ports/factors.js';
import { judge, newSecret, totpFor, type FactorRow } from '../totp.js';
import { immediate, type Db } from './db.js';

export class MfaStore implements FactorRecordsPort {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates (or replaces) the user's factor and returns its otpauth:// URI. */
  enroll(username: string): string {
    const secret = newSecret();
    this.db
      .prepare(
        `INSERT INTO mfa_factors (username, secret, enrolled_at) VALUES (?, ?, ?)
         ON CONFLICT(username) DO UPDATE SET secret = excluded.secret, last_counter = -1, failures = 0, locked_until = 0, enrolled_at = excluded.enrolled_at`,
      )
      .run(username, secret, this.now());
    return totpFor(username, secret).toString();
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
      const r = this.db.prepare<[string], FactorRow>('SELECT * FROM mfa_factors WHERE username = ?').get(username);
      const { outcome, change } = judge(username, r, code, this.now());
      if (change && 'last_counter' in change)
        this.db
          .prepare('UPDATE mfa_factors SET last_counter = ?, failures = 0 WHERE username = ?')
          .run(change.last_counter, username);
      else if (change)
        this.db
          .prepare('UPDATE mfa_factors SET failures = ?, locked_until = ? WHERE username = ?')
          .run(change.failures, change.locked_until, username);
      return outcome;
    });
  }
}
