/**
 * The reset links port: one-time password reset links (table `password_resets`), whichever directory the user lives
 * in. Only a link's SHA-256 is kept. Guard state (DESIGN §5): implemented by the store adapters only
 * (store/sqlite/reset-store.ts, store/postgres/resets.ts); a link is spent exactly once across every process.
 */
import type { Awaitable } from '../backend.js';

/** How long a link works after it is issued. */
export const RESET_LINK_TTL_MS = 24 * 3600_000;

/** The one-time reset page's view of a link (its token is never kept). */
export interface ResetLink {
  username: string;
  expiresAt: number;
  usable: boolean;
}

/** A spent link: whose it is, and when it was claimed (the claim `unclaim` releases). */
export interface ResetClaim {
  username: string;
  claimedAt: number;
}

export interface ResetLinksPort {
  /** Records a new link for the user (its token hashed) and revokes their older unused links, together. */
  issue(token: string, username: string, requestId: string): Awaitable<void>;
  /** Links the reset to the outbox record of its delivery. */
  delivered(token: string, outboxId: number): Awaitable<void>;
  /** A link whose delivery failed never works. */
  revoke(token: string): Awaitable<void>;
  link(token: string): Awaitable<ResetLink | undefined>;
  /** Spends a live link, exactly once across processes; undefined when it is not usable. */
  claim(token: string): Awaitable<ResetClaim | undefined>;
  /**
   * Gives a claimed link back (the directory refused the password): only the claim it releases, and only while no
   * newer link was issued for the user (which would leave two live links). Returns whether it is usable again.
   */
  unclaim(token: string, claim: ResetClaim): Awaitable<boolean>;
}
