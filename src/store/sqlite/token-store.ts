/**
 * Bearer tokens for the HTTP transport. Only a SHA-256 of each token is stored; the token is shown once. Writes run
 * inside the caller's unit of work, which appends their audit records (guard/operator.ts).
 */
import type { Db } from './db.js';
import type { TokenInfo } from '../ports/types.js';
export type { TokenInfo };
import { mintToken, toInfo, tokenHash, type TokenRow } from '../token-codec.js';
export { mintToken, toInfo, tokenHash, type TokenRow };

export class TokenStore {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.verifyStmt = db.prepare<[string], { id: string; principal: string }>(
      'SELECT id, principal FROM tokens WHERE hash = ? AND revoked_at IS NULL',
    );
  }

  /** Returns the secret once; it cannot be recovered later. */
  create(principal: string, actor: string, label?: string): { token: string; id: string } {
    const { token, id } = mintToken();
    this.db
      .prepare('INSERT INTO tokens (id, principal, hash, label, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, principal, tokenHash(token), label ?? null, this.now(), actor);
    return { token, id };
  }

  /** The principal a live token stands for, or undefined. */
  private readonly verifyStmt;

  verify(token: string): { id: string; principal: string } | undefined {
    return this.verifyStmt.get(tokenHash(token));
  }

  /** Records last use (callers throttle it: a write per request would cost more than the call; http/token-use.ts). */
  touch(id: string, now: number): void {
    this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(now, id);
  }

  list(): TokenInfo[] {
    return this.db.prepare<[], TokenRow>('SELECT * FROM tokens ORDER BY created_at').all().map(toInfo);
  }

  revoke(id: string): boolean {
    return (
      this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(this.now(), id)
        .changes > 0
    );
  }
}
