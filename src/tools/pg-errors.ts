/**
 * The PostgreSQL adapters of the embedded backends' ports (issue 20: tickets, directory, software, outbox) turn every
 * store failure into a BackendError that says whether the call may be tried again (a dropped connection, a
 * serialization failure, a deadlock: yes; anything else: no). A BackendError an adapter threw itself passes as is.
 */
import { BackendError } from '../core/backend.js';
import { type PgStore, toPgStoreError } from '../store/postgres/connect.js';

export function pgBackendError(store: PgStore, what: string, e: unknown): BackendError {
  if (e instanceof BackendError) return e;
  const err = toPgStoreError(store.target, e);
  const b = new BackendError(`${what}: ${err.message}`, err.retryable, err.code ? { sqlstate: err.code } : undefined);
  // The store's own error, for callers that report store failures as such (the demo seed: a DatabaseError).
  b.cause = err;
  return b;
}

/** Runs `fn`, turning any store failure into a BackendError named after the backend (`what`). */
export async function guarded<T>(store: PgStore, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw pgBackendError(store, what, e);
  }
}

/** Thrown inside a transaction to roll it back when its insert met an earlier row of the same request id. */
export class Replayed extends Error {
  constructor() {
    super('replayed request id');
  }
}
