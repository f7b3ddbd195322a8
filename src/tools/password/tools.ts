import { z } from 'zod';
import { defineTool } from '../../core/tool.js';
import { GuardError } from '../../core/errors.js';
import { IdemKey, Reason, UserRef } from '../common.js';
import type { ResetOutcome } from '../../core/ports/resets.js';

const done = (r: ResetOutcome) => ({
  // Security: the result says what happened and where the link went, masked; never the link or a password.
  text: `Password of ${r.username} was reset: they must choose a new one at next login. A one-time reset link was sent to ${r.maskedChannel}.`,
  data: {
    user: r.username,
    must_change_at_next_login: true,
    reset_link_sent_to: r.maskedChannel,
    channel: r.channel,
    at: r.at,
  },
});

export const passwordReset = defineTool({
  name: 'password_reset',
  title: 'Reset a user’s password',
  description:
    'Resets a directory user’s password after that user confirms with their own authenticator (MFA). The user gets a one-time reset link on their registered recovery channel and must set a new password at next login. No password or link is ever returned. Admins and service accounts cannot be reset here.',
  input: { user: UserRef, reason: Reason, idempotency_key: IdemKey.optional() },
  // Every field optional: a shadow-mode call answers { shadow } instead.
  output: {
    user: z.string().optional(),
    must_change_at_next_login: z.boolean().optional(),
    reset_link_sent_to: z.string().optional(),
    channel: z.enum(['email', 'sms']).optional(),
    at: z.string().optional(),
    shadow: z.looseObject({}).optional(),
  },
  scope: 'password:reset',
  effect: 'write',
  tier: 'mfa',
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  summary: (a) => `Reset the password of ${a.user}`,
  async resolve(a, { backends, toolPolicy, signal }) {
    const u = await backends.directory.get(a.user, { signal });
    if (!u || u.username !== a.user)
      throw new GuardError('INVALID_ARGUMENT', `user: no user "${a.user}" in the directory.`, {
        details: { field: 'user' },
      });
    if (u.disabled)
      throw new GuardError('POLICY_DENIED', `user: ${a.user} is disabled; IT must re-enable the account first.`);
    const denied = u.groups.filter((g) => toolPolicy.denyTargetGroups.includes(g));
    // Security: privileged targets are refused before anyone is prompted, whichever directory they live in.
    if (denied.length) {
      throw new GuardError(
        'POLICY_DENIED',
        `Policy forbids resetting the password of members of ${denied.join(', ')} (${a.user}).`,
        { details: { deny_target_groups: denied } },
      );
    }
    if (!u.recovery)
      throw new GuardError('POLICY_DENIED', `user: ${a.user} has no recovery address to send a reset link to.`, {
        details: { field: 'user' },
      });
    // The reset locks the old password out first: a user the outbox cannot reach is refused before anything changes
    // (a directory that mails its own link, Okta, needs no outbox).
    if (!backends.directory.mailsResetLink && !backends.outbox.channels.includes(u.recovery.kind))
      throw new GuardError(
        'POLICY_DENIED',
        `user: ${a.user}'s recovery channel is ${u.recovery.kind}, which the ${backends.outbox.kind} outbox cannot reach; IT must reset this account by hand.`,
        { details: { field: 'user', channel: u.recovery.kind } },
      );
    return { resolved: { target: a.user } };
  },
  async run(a, ctx) {
    return done(
      await ctx.backends.resets.reset(a.user, {
        requestId: ctx.requestId,
        signal: ctx.signal,
        linksBase: ctx.linksBase,
      }),
    );
  },
  async recover(_a, ctx) {
    const r = await ctx.backends.resets.recover(ctx.requestId);
    return r && done(r);
  },
});
