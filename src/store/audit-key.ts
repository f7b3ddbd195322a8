/**
 * The audit key's fingerprint (DESIGN §5): which key, if any, the audit chain is linked with, kept in the `meta`
 * table so that a process with another key, or none, refuses to append (AuditStore.checkKey) rather than write a
 * link nobody can verify afterwards.
 */
import { hmacSha256 } from '../canonical.js';
import { ConfigError } from '../config.js';

/** The `meta` key holding the fingerprint of the key the chain is linked with (`none` for an unkeyed chain). */
export const KEY_FINGERPRINT = 'audit_key_fingerprint';

/**
 * A fingerprint of the audit key, never the key: HMAC-SHA-256 of a fixed label under the key (the first 32 hex
 * characters), or `none`. The store keeps it so that a process with another key, or none, is caught before it
 * appends a link nobody can verify afterwards (DESIGN §5).
 */
export const keyFingerprint = (key: string | undefined): string =>
  key ? `hmac-sha256:${hmacSha256(key, 'itguard audit key fingerprint v1').slice(0, 32)}` : 'none';

/** A process whose ITGUARD_AUDIT_KEY does not match the chain's refuses to append (`serve` refuses to start). */
export class AuditKeyMismatch extends ConfigError {
  constructor(chain: string, mine: string) {
    super(
      chain === 'none'
        ? 'ITGUARD_AUDIT_KEY is set, but the audit chain in this database is not keyed: unset ITGUARD_AUDIT_KEY (or start a new database to use a key); nothing was appended.'
        : mine === 'none'
          ? 'The audit chain in this database is keyed, but ITGUARD_AUDIT_KEY is not set: set the same ITGUARD_AUDIT_KEY every itguard process of this database uses; nothing was appended.'
          : 'ITGUARD_AUDIT_KEY is not the key the audit chain in this database is keyed with: set the same ITGUARD_AUDIT_KEY every itguard process of this database uses; nothing was appended.',
    );
  }
}
