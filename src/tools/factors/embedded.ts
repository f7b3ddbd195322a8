/**
 * The embedded factors adapter: TOTP factors in itguard's own store (mfa_factors, behind the factor records port:
 * SQLite or PostgreSQL), keyed by username.
 */
import type { CallOpts } from '../../core/backend.js';
import type { FactorRecordsPort } from '../../core/ports/factor-records.js';
import type { FactorsPort, VerifyOutcome } from '../../core/ports/factors.js';

export class EmbeddedFactors implements FactorsPort {
  readonly kind = 'embedded';
  constructor(private readonly store: FactorRecordsPort) {}

  async enrolled(username: string, _o?: CallOpts): Promise<boolean> {
    return this.store.has(username);
  }

  async lockedUntil(username: string, _o?: CallOpts): Promise<number> {
    return this.store.lockedUntil(username);
  }

  async verify(username: string, code: string, _o?: CallOpts): Promise<VerifyOutcome> {
    return this.store.verify(username, code);
  }

  async enroll(username: string): Promise<string> {
    return this.store.enroll(username);
  }
}
