/**
 * The outbox port: delivering reset links and MFA verification links to a user's recovery address (embedded: a
 * row in the outbox table; SMTP: a mail through a relay). Every delivery is also recorded, masked, in the outbox
 * table by the caller. A failed delivery throws a retryable BackendError, and the caller reports nothing as sent.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../backend.js';

export interface Message {
  /** The directory user it is for (the outbox record names them). */
  username: string;
  /** The recovery channel: an adapter that cannot reach it (SMTP and an SMS number) refuses, not retryable. */
  channel: 'email' | 'sms';
  to: string;
  subject: string;
  /** Plain text. May contain a one-time link: adapters never log it. */
  text: string;
}

export interface OutboxPort {
  readonly kind: string;
  /** True when send() itself writes the outbox record (embedded: the table is the mailbox); else the caller records it, masked. */
  readonly recordsItself: boolean;
  /** The recovery channels it can reach: a reset whose user it cannot reach is refused before anything changes. */
  readonly channels: readonly ('email' | 'sms')[];
  send(m: Message, o: WriteOpts): Promise<{ messageId: string }>;
  probe(o: CallOpts): Promise<ProbeReport>;
}
