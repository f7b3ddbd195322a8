/**
 * The password reset flow as tools, gates and the /reset page use it (DESIGN §2 `password_reset`): a one-time
 * link issued and delivered above the directory and outbox ports. `ResetFlow` (src/tools/password/reset-flow.ts)
 * implements it, the same for every directory and outbox.
 */
import type { Awaitable, CallOpts } from '../backend.js';
import type { Message } from './outbox.js';
import type { ResetLink } from './reset-links.js';

export interface ResetOutcome {
  username: string;
  /** e.g. "j***@example.com" or "+1-***-**34" */
  maskedChannel: string;
  channel: 'email' | 'sms';
  at: string;
}

/** A one-time reset link as the store reads it (its token is never kept). */
export type ResetLinkState = ResetLink;

/** Where a delivery went: the channel and the unmasked address (mask it before showing it). */
export interface Delivery {
  channel: 'email' | 'sms';
  address: string;
}

export type CompleteOutcome =
  { ok: true; username: string } | { ok: false; gone: true } | { ok: false; refused: string };

export interface ResetsPort {
  /** Idempotent on requestId: once a delivery is recorded, a repeat returns it and sends nothing. */
  reset(username: string, o: CallOpts & { requestId: string; linksBase: string }): Promise<ResetOutcome>;
  /**
   * Delivers a message to the user's recovery address and records it. On failure `onFail` runs and the error is a
   * BackendError (retryable unless the adapter said not).
   */
  deliver(m: Message, requestId: string, o: CallOpts, onFail?: () => Awaitable<void>): Promise<Delivery>;
  /** After an unknown outcome: the delivery recorded for this request id, if there is one. */
  recover(requestId: string): Promise<ResetOutcome | undefined>;
  link(token: string): Promise<ResetLinkState | undefined>;
  displayName(username: string, o: CallOpts): Promise<string | undefined>;
  /** Spends the link and writes the password to the directory; a refused password gives the link back. */
  complete(token: string, password: string, o: CallOpts): Promise<CompleteOutcome>;
}
