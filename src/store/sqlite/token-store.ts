/**
 * Bearer tokens for the HTTP transport. Only a SHA-256 of each token is stored; the token is shown once. Writes run
 * inside the caller's unit of work, which appends their audit records (guard/operator.ts).
 */
import { randomBytes } from 'node:crypto';
import { customAlphabet } from 'nanoid';
import { sha256 } from '../../canonical.js';
import type { Db } from './db.js';

const tokenId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);

export interface TokenInfo {
  id: string;
  principal: string;
  label: string | null;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/**
 * A new token and its id: `itg_<id>_<secret>`, the id 10 characters of [0-9a-z], the secret 24 random bytes in
 * base64url. Every store adapter mints tokens here and keeps only `tokenHash(token)`, so a token verifies alike on each.
 */
export function mintToken(): { token: string; id: string } {
  const id = tokenId();
  return { token: `itg_${id}_${randomBytes(24).toString('base64url')}`, id };
}

/** What a store keeps of a token: its SHA-256 (hex). */
export const tokenHash = (token: string): string => sha256(token);

export interface TokenRow {
  id: string;
  principal: string;
  label: string | null;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
  last_used_at: number | null;
}

export const toInfo = (r: TokenRow): TokenInfo => ({
  id: r.id,
  principal: r.principal,
  label: r.label,
  createdAt: r.created_at,
  createdBy: r.created_by,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});

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
