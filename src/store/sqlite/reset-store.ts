/**
 * One-time password reset links (table `password_resets`), whichever directory the user lives in. Only a link's
 * SHA-256 is kept; the link itself exists once, in the message to the user. A new link revokes the user's older
 * unused ones; a link is spent by claiming it, and given back if the directory refuses the new password.
 */
import { sha256 } from '../../canonical.js';
import {
  RESET_LINK_TTL_MS,
  type ResetClaim,
  type ResetLink,
  type ResetLinksPort,
} from '../../core/ports/reset-links.js';
import { immediate, type Db } from './db.js';

export class ResetStore implements ResetLinksPort {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a new link for the user (its token hashed) and revokes their older unused links. */
  issue(token: string, username: string, requestId: string): void {
    const at = this.now();
    immediate(this.db, () => {
      this.db
        .prepare('UPDATE password_resets SET used_at = ? WHERE username = ? AND used_at IS NULL')
        .run(at, username);
      this.db
        .prepare(
          'INSERT INTO password_resets (token_hash, username, request_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(sha256(token), username, requestId, at, at + RESET_LINK_TTL_MS);
    });
  }

  /** Links the reset to the outbox record of its delivery. */
  delivered(token: string, outboxId: number): void {
    this.db.prepare('UPDATE password_resets SET outbox_id = ? WHERE token_hash = ?').run(outboxId, sha256(token));
  }

  /** A link whose delivery failed never works. */
  revoke(token: string): void {
    this.db
      .prepare('UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL')
      .run(this.now(), sha256(token));
  }

  link(token: string): ResetLink | undefined {
    const r = this.db
      .prepare<[string], { username: string; expires_at: number; used_at: number | null }>(
        'SELECT username, expires_at, used_at FROM password_resets WHERE token_hash = ?',
      )
      .get(sha256(token));
    return (
      r && { username: r.username, expiresAt: r.expires_at, usable: r.used_at === null && r.expires_at > this.now() }
    );
  }

  /**
   * Spends a live link (exactly once, across processes) and returns its user and the claim (what `unclaim` gives
   * back); undefined if it is not usable.
   */
  claim(token: string): ResetClaim | undefined {
    return immediate(this.db, () => {
      const link = this.link(token);
      if (!link?.usable) return undefined;
      const claimedAt = this.now();
      this.db.prepare('UPDATE password_resets SET used_at = ? WHERE token_hash = ?').run(claimedAt, sha256(token));
      return { username: link.username, claimedAt };
    });
  }

  /**
   * Gives a claimed link back (the directory refused the password), so the user may try again with it — only the
   * claim it releases, and only while no newer link was issued for the user. Security: a link issued meanwhile
   * revoked this one (issue() revokes unused links; this one was claimed, so it was not among them): reviving it
   * would leave two live links. Returns whether the link is usable again.
   */
  unclaim(token: string, claim: ResetClaim): boolean {
    return (
      this.db
        .prepare(
          `UPDATE password_resets SET used_at = NULL
           WHERE token_hash = ? AND used_at = ?
             AND NOT EXISTS (SELECT 1 FROM password_resets n
                             WHERE n.username = password_resets.username AND n.token_hash != password_resets.token_hash
                               AND n.created_at >= ?)`,
        )
        .run(sha256(token), claim.claimedAt, claim.claimedAt).changes === 1
    );
  }
}
