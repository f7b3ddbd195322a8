/**
 * The records adapters' (mfa.ts, resets.ts, deliveries.ts, deploy-jobs.ts, meta.ts) error rule: any failure of the
 * store is a PgStoreError (name DatabaseError, `retryable` said), so whoever called refuses: the store fails closed.
 */
import { type PgStore, toPgStoreError } from './connect.js';

export async function attempt<T>(store: PgStore, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toPgStoreError(store.target, e);
  }
}

/**
 * The first key of the two-key advisory locks the records adapters take (`pg_advisory_xact_lock(class, hashtext(x))`):
 * 'itg' in ASCII, then one byte per lock class. Two-key advisory locks never collide with the one-key locks of the
 * migrations and the demo seed.
 */
export const LOCK_CLASS = { resetLinks: 0x69746701, deployJobs: 0x69746702 } as const;
