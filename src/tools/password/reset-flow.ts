/**
 * Password reset above the ports, the same for every directory and outbox: the directory locks the old password
 * out (a random one nobody sees, must-change set), a one-time link is issued (only its hash kept) and delivered
 * to the user's recovery address; the /reset page lets the user choose a new password, which goes to the
 * directory and is never stored. A delivery that fails is a retryable BackendError, its link is revoked, and
 * nothing is reported as sent. The outbox record of a delivery (masked for real mail) is what proves it happened.
 */
import { randomBytes } from 'node:crypto';
import { BackendError, type CallOpts } from '../../core/backend.js';
import { maskAddress } from '../../mask.js';
import type { Awaitable } from '../../core/backend.js';
import type { DeliveriesPort, OutboxRecord } from '../../core/ports/deliveries.js';
import type { DirectoryPort } from '../../core/ports/directory.js';
import type { Message, OutboxPort } from '../../core/ports/outbox.js';
import type { ResetLink, ResetLinksPort } from '../../core/ports/reset-links.js';
import type { CompleteOutcome, ResetOutcome, ResetsPort } from '../../core/ports/resets.js';

/** What the record of a real mail keeps instead of a link. */
const LINK_NOT_KEPT = '[one-time link delivered; not kept]';
export const maskLinks = (text: string): string => text.replace(/https?:\/\/\S+/g, LINK_NOT_KEPT);

const outcomeOf = (r: OutboxRecord): ResetOutcome => ({
  username: r.username,
  channel: r.channel,
  maskedChannel: maskAddress(r.channel, r.address),
  at: new Date(r.createdAt).toISOString(),
});

/**
 * The token of the reset link record of a request whose link the directory mails (stored hashed, like every
 * link token, and revoked at once): derived from the request id, so a retry of the request finds it.
 */
const directoryLinkMarker = (requestId: string): string => `directory-mailed:${requestId}`;

export class ResetFlow implements ResetsPort {
  constructor(
    private readonly d: {
      directory: DirectoryPort;
      outbox: OutboxPort;
      resets: ResetLinksPort;
      deliveries: DeliveriesPort;
    },
  ) {}

  /** Idempotent on requestId: once a delivery is recorded, a repeat returns it and sends nothing. */
  async reset(username: string, o: CallOpts & { requestId: string; linksBase: string }): Promise<ResetOutcome> {
    const prior = await this.recover(o.requestId);
    if (prior) return prior;
    if (this.d.directory.resetByEmail) return this.resetByDirectory(username, o);
    const u = await this.d.directory.get(username, o);
    if (!u) throw new BackendError(`user: no user "${username}" in the directory`, false, { field: 'user' });
    if (!u.recovery)
      throw new BackendError(`user: ${username} has no recovery address in the directory to send a link to`, false, {
        field: 'user',
      });
    await this.d.directory.lockForReset(u.username, o);
    const token = randomBytes(24).toString('base64url');
    await this.d.resets.issue(token, u.username, o.requestId);
    const link = `${o.linksBase.replace(/\/$/, '')}/reset/${token}`;
    const m: Message = {
      username: u.username,
      channel: u.recovery.kind,
      to: u.recovery.address,
      subject: 'Your password reset link',
      text: `Hello ${u.displayName}, IT reset your password. Set a new one within 24 hours at ${link} . If you did not ask for this, call the IT service desk.`,
    };
    const record = await this.deliver(m, o.requestId, o, () => this.d.resets.revoke(token));
    await this.d.resets.delivered(token, record.id);
    return outcomeOf(record);
  }

  /**
   * A directory that mails its own link (Okta): one call resets and mails; itguard records where it went (never a
   * link) under the request id, so a retry finds it and resets nothing twice.
   *
   * The answer to that call can be lost after the directory acted (a timeout, a dropped connection): the link is
   * then in the user's mailbox but nothing was recorded. So before the call the request's reset link record is
   * written (keyed by the request id; a spent marker, since the directory holds the link, not itguard), and a retry
   * that finds it asks the directory instead of calling again: a user now in the must-change state (Okta: RECOVERY,
   * or PASSWORD_EXPIRED) holds a directory-mailed link (the first call's), which is recorded and reported as sent;
   * a second link is never minted for the same request. A user not in that state was not reset by the first call
   * (it failed before the directory acted) and is reset now, once.
   */
  private async resetByDirectory(username: string, o: CallOpts & { requestId: string }): Promise<ResetOutcome> {
    const marker = directoryLinkMarker(o.requestId);
    if (await this.d.resets.link(marker)) {
      const u = await this.d.directory.get(username, o);
      const address = u?.recovery?.kind === 'email' ? u.recovery.address : u?.email;
      if (u?.mustChangePassword && address)
        return this.recordDirectoryMail(username, address, marker, o.requestId, ' (answer lost; not sent again)');
    } else {
      await this.d.resets.issue(marker, username, o.requestId);
      await this.d.resets.revoke(marker); // a record, never a usable link: the directory mails the only link
    }
    const { address } = await this.d.directory.resetByEmail!(username, o);
    return this.recordDirectoryMail(username, address, marker, o.requestId);
  }

  private async recordDirectoryMail(
    username: string,
    address: string,
    marker: string,
    requestId: string,
    how = '',
  ): Promise<ResetOutcome> {
    const record = await this.d.deliveries.record({
      username,
      channel: 'email',
      address,
      subject: 'Password reset link (mailed by the directory)',
      body: `[${this.d.directory.kind} mailed its own one-time reset link${how}; itguard never held it]`,
      requestId,
      via: this.d.directory.kind,
      messageId: null,
    });
    await this.d.resets.delivered(marker, record.id);
    return outcomeOf(record);
  }

  /**
   * Delivers a message to the user's recovery address and records it (masked, unless the outbox is the embedded
   * mailbox). On failure `onFail` runs and the error is a BackendError (retryable unless the adapter said not).
   */
  async deliver(
    m: Message,
    requestId: string,
    o: CallOpts,
    onFail: () => Awaitable<void> = () => undefined,
  ): Promise<OutboxRecord> {
    let messageId: string;
    try {
      ({ messageId } = await this.d.outbox.send(m, { ...o, requestId }));
    } catch (e) {
      // A store failure here refuses the call as well (fail closed), in place of the delivery's error.
      await onFail();
      if (e instanceof BackendError) throw e;
      throw new BackendError('the outbox could not deliver the message; nothing was sent', true);
    }
    if (this.d.outbox.recordsItself) return (await this.d.deliveries.byRequest(requestId))!;
    return this.d.deliveries.record({
      username: m.username,
      channel: m.channel,
      address: m.to,
      subject: m.subject,
      body: maskLinks(m.text),
      requestId,
      via: this.d.outbox.kind,
      messageId,
    });
  }

  /** After an unknown outcome: the delivery recorded for this request id, if there is one. */
  async recover(requestId: string): Promise<ResetOutcome | undefined> {
    const r = await this.d.deliveries.byRequest(requestId);
    return r && outcomeOf(r);
  }

  async link(token: string): Promise<ResetLink | undefined> {
    return this.d.resets.link(token);
  }

  async displayName(username: string, o: CallOpts): Promise<string | undefined> {
    return (await this.d.directory.get(username, o).catch(() => undefined))?.displayName;
  }

  /** Spends the link and writes the password to the directory; a refused password gives the link back. */
  async complete(token: string, password: string, o: CallOpts): Promise<CompleteOutcome> {
    const claim = await this.d.resets.claim(token);
    if (!claim) return { ok: false, gone: true };
    const { username } = claim;
    try {
      await this.d.directory.setPassword(username, password, o);
    } catch (e) {
      const why = e instanceof BackendError ? e.message : 'the directory could not be reached';
      // The link is given back only if no newer link replaced it meanwhile; else this one stays spent.
      const again = (await this.d.resets.unclaim(token, claim))
        ? 'Try again.'
        : 'A newer reset link was sent meanwhile, so this one no longer works: use the link in the latest message.';
      return { ok: false, refused: `The directory did not accept the new password: ${why}. ${again}` };
    }
    return { ok: true, username };
  }
}
