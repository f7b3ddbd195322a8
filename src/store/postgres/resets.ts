/**
 * One-time password reset links on PostgreSQL (table `password_resets`; ResetLinksPort), as store/sqlite/reset-store.ts:
 * only a link's SHA-256 is kept. A link is spent by one conditional UPDATE (`WHERE used_at IS NULL AND expires_at >
 * now`), so exactly one of any number of replicas claims it. Issuing (revoke the user's unused links, add the new
 * one) and giving a claim back (only while no newer link exists) both hold the user's advisory lock, so neither can
 * interleave with the other into two live links.
 */
import { sha256 } from '../../canonical.js';
import {
  RESET_LINK_TTL_MS,
  type ResetClaim,
  type ResetLink,
  type ResetLinksPort,
} from '../../core/ports/reset-links.js';
import { attempt, LOCK_CLASS } from './attempt.js';
import { inTransaction, type PgStore } from './connect.js';

export class PgResetLinks implements ResetLinksPort {
  constructor(
    private readonly pg: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  async issue(token: string, username: string, requestId: string): Promise<void> {
    const at = this.now();
    await inTransaction(this.pg, async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${LOCK_CLASS.resetLinks}, hashtext(${username}))`;
      await tx`UPDATE password_resets SET used_at = ${at} WHERE username = ${username} AND used_at IS NULL`;
      await tx`
        INSERT INTO password_resets (token_hash, username, request_id, created_at, expires_at)
        VALUES (${sha256(token)}, ${username}, ${requestId}, ${at}, ${at + RESET_LINK_TTL_MS})`;
    });
  }

  async delivered(token: string, outboxId: number): Promise<void> {
    await attempt(
      this.pg,
      () => this.pg.sql`UPDATE password_resets SET outbox_id = ${outboxId} WHERE token_hash = ${sha256(token)}`,
    );
  }

  async revoke(token: string): Promise<void> {
    await attempt(
      this.pg,
      () => this.pg.sql`
        UPDATE password_resets SET used_at = ${this.now()} WHERE token_hash = ${sha256(token)} AND used_at IS NULL`,
    );
  }

  async link(token: string): Promise<ResetLink | undefined> {
    const [r] = await attempt(
      this.pg,
      () => this.pg.sql<{ username: string; expires_at: number; used_at: number | null }[]>`
        SELECT username, expires_at, used_at FROM password_resets WHERE token_hash = ${sha256(token)}`,
    );
    return (
      r && { username: r.username, expiresAt: r.expires_at, usable: r.used_at === null && r.expires_at > this.now() }
    );
  }

  async claim(token: string): Promise<ResetClaim | undefined> {
    const claimedAt = this.now();
    const [r] = await attempt(
      this.pg,
      () => this.pg.sql<{ username: string }[]>`
        UPDATE password_resets SET used_at = ${claimedAt}
         WHERE token_hash = ${sha256(token)} AND used_at IS NULL AND expires_at > ${claimedAt}
        RETURNING username`,
    );
    return r && { username: r.username, claimedAt };
  }

  async unclaim(token: string, claim: ResetClaim): Promise<boolean> {
    return inTransaction(this.pg, async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${LOCK_CLASS.resetLinks}, hashtext(${claim.username}))`;
      const r = await tx`
        UPDATE password_resets SET used_at = NULL
         WHERE token_hash = ${sha256(token)} AND used_at = ${claim.claimedAt}
           AND NOT EXISTS (SELECT 1 FROM password_resets n
                            WHERE n.username = password_resets.username AND n.token_hash <> password_resets.token_hash
                              AND n.created_at >= ${claim.claimedAt})`;
      return r.count === 1;
    });
  }
}
