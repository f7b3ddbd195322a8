/**
 * The factor records on PostgreSQL (table `mfa_factors`; FactorRecordsPort), with store/totp.ts's decisions: a code is
 * checked and its change written in one transaction that holds the factor's row (`FOR UPDATE`), so replicas checking
 * codes for one user take turns: a code is accepted once, and every failure counts toward the lockout.
 */
import type { FactorRecordsPort } from '../../core/ports/factor-records.js';
import type { VerifyOutcome } from '../../core/ports/factors.js';
import { judge, newSecret, totpFor, type FactorRow } from '../totp.js';
import { attempt } from './attempt.js';
import { inTransaction, type PgStore } from './connect.js';

export class PgFactorRecords implements FactorRecordsPort {
  constructor(
    private readonly pg: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  async enroll(username: string): Promise<string> {
    const secret = newSecret();
    await attempt(
      this.pg,
      () => this.pg.sql`
        INSERT INTO mfa_factors (username, secret, enrolled_at) VALUES (${username}, ${secret}, ${this.now()})
        ON CONFLICT (username) DO UPDATE SET secret = excluded.secret, last_counter = -1, failures = 0,
          locked_until = 0, enrolled_at = excluded.enrolled_at`,
    );
    return totpFor(username, secret).toString();
  }

  async has(username: string): Promise<boolean> {
    const rows = await attempt(this.pg, () => this.pg.sql`SELECT 1 FROM mfa_factors WHERE username = ${username}`);
    return rows.length > 0;
  }

  async lockedUntil(username: string): Promise<number> {
    const [r] = await attempt(
      this.pg,
      () => this.pg.sql<{ locked_until: number }[]>`SELECT locked_until FROM mfa_factors WHERE username = ${username}`,
    );
    return r && r.locked_until > this.now() ? r.locked_until : 0;
  }

  /** For tests and the demo only: the code an authenticator app would show at `at`. */
  async currentCode(username: string, at = this.now()): Promise<string | undefined> {
    const [r] = await attempt(
      this.pg,
      () => this.pg.sql<{ secret: string }[]>`SELECT secret FROM mfa_factors WHERE username = ${username}`,
    );
    return r && totpFor(username, r.secret).generate({ timestamp: at });
  }

  async verify(username: string, code: string): Promise<VerifyOutcome> {
    return inTransaction(this.pg, async (tx) => {
      const [r] = await tx<FactorRow[]>`
        SELECT secret, last_counter, failures, locked_until FROM mfa_factors WHERE username = ${username} FOR UPDATE`;
      const { outcome, change } = judge(username, r, code, this.now());
      if (change && 'last_counter' in change)
        await tx`UPDATE mfa_factors SET last_counter = ${change.last_counter}, failures = 0 WHERE username = ${username}`;
      else if (change)
        await tx`
          UPDATE mfa_factors SET failures = ${change.failures}, locked_until = ${change.locked_until}
           WHERE username = ${username}`;
      return outcome;
    });
  }
}
