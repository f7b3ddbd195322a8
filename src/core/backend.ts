/**
 * What every backend port shares (DESIGN §5 "Ports"): calls are async and cancellable, writes carry the call's
 * request id (the backend's idempotency key), failures are `BackendError { retryable }`, and every adapter can be
 * probed without changing anything (`itguard policy check --probe`).
 */
import { GuardError } from './errors.js';

/** A backend said no or broke. `retryable` is said explicitly, never guessed by the model. */
export class BackendError extends GuardError {
  constructor(message: string, retryable: boolean, details?: Record<string, unknown>) {
    super('BACKEND_ERROR', message, { retryable, details: details ?? {} });
  }
}

export interface CallOpts {
  signal: AbortSignal;
}

export interface WriteOpts extends CallOpts {
  /** The call's request id: a second write with the same id must not repeat the effect. */
  requestId: string;
}

/** One line per permission or capability checked; ok false names what is missing. */
export interface ProbeReport {
  backend: string;
  target: string;
  ok: boolean;
  checks: { name: string; ok: boolean; detail?: string }[];
}

/**
 * A result that is either there already or will be: the records ports (factor records, reset links, deliveries,
 * deploy jobs) are implemented synchronously inside by the SQLite adapter and asynchronously by PostgreSQL, and
 * their callers always `await`.
 */
export type Awaitable<T> = T | Promise<T>;
