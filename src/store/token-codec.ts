/**
 * Bearer tokens as every store adapter makes and keeps them: `itg_<id>_<secret>`, only the SHA-256 stored, and the
 * row a store reads back mapped to the port's TokenInfo.
 */
import { randomBytes } from 'node:crypto';
import { customAlphabet } from 'nanoid';
import { sha256 } from '../canonical.js';
import type { TokenInfo } from './ports/types.js';

const tokenId = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 10);

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
