/**
 * Bearer tokens on PostgreSQL (TokensPort), as sqlite/token-store.ts keeps them: a token is minted by the same code
 * (`itg_<id>_<secret>`) and only its SHA-256 is stored, so a token verifies alike on either store (and a table copied
 * from one to the other keeps its tokens). Writes run in the caller's unit of work, which appends the `token.*`
 * records (guard/operator.ts); reads run on the pool.
 */
import type { TokensPort } from '../ports/index.js';
import type { TokenInfo } from '../ports/types.js';
import { mintToken, toInfo, tokenHash, type TokenRow } from '../token-codec.js';
import type { Tx } from '../unit.js';
import type { PgStore } from './connect.js';
import { txOf } from './runner.js';

export class PgTokens implements TokensPort {
  constructor(
    private readonly pg: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns the secret once; it cannot be recovered later. */
  async create(t: Tx, principal: string, actor: string, label?: string): Promise<{ token: string; id: string }> {
    const { token, id } = mintToken();
    await txOf(t)`INSERT INTO tokens (id, principal, hash, label, created_at, created_by)
      VALUES (${id}, ${principal}, ${tokenHash(token)}, ${label ?? null}, ${this.now()}, ${actor})`;
    return { token, id };
  }

  /** The principal a live (not revoked) token stands for, or undefined. */
  async verify(token: string): Promise<{ id: string; principal: string } | undefined> {
    const [r] = await this.pg.sql<{ id: string; principal: string }[]>`SELECT id, principal FROM tokens
      WHERE hash = ${tokenHash(token)} AND revoked_at IS NULL`;
    return r && { id: r.id, principal: r.principal };
  }

  /** Records last use (callers throttle it: http/token-use.ts). */
  async touch(t: Tx, id: string, now: number): Promise<void> {
    await txOf(t)`UPDATE tokens SET last_used_at = ${now} WHERE id = ${id}`;
  }

  /** Oldest first (ties by id: PostgreSQL has no insertion order to fall back on). */
  async list(): Promise<TokenInfo[]> {
    const rows = await this.pg.sql<TokenRow[]>`SELECT * FROM tokens ORDER BY created_at, id`;
    return rows.map(toInfo);
  }

  async revoke(t: Tx, id: string): Promise<boolean> {
    const rows = await txOf(t)`UPDATE tokens SET revoked_at = ${this.now()}
      WHERE id = ${id} AND revoked_at IS NULL RETURNING 1`;
    return rows.length > 0;
  }
}
