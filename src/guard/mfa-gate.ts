/**
 * The mfa tier: the *target user* proves possession of their TOTP factor — on a page itguard serves (URL
 * elicitation, or a one-time link returned with APPROVAL_PENDING to clients without elicitation), or in a form
 * when the client only has form mode and policy allows it. A code is never taken as a tool argument. With a
 * push factor (Okta Verify) the target approves on their phone instead (push-gate.ts).
 *
 * The in-band prompts (page and form code) are gates/prompts.ts, asked on either era through gates/in-band.ts;
 * this module picks the way to reach the target user and holds the out-of-band link.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { GuardError } from '../core/errors.js';
import { auditGate, openOrCreate, pending, type Deps } from './gate-requests.js';
import type { Call, Handler } from './types.js';
import { mfaByPush } from './push-gate.js';
import { channelOf } from './gates/asker.js';
import { inBand } from './gates/in-band.js';
import { promptFor } from './gates/prompts.js';
import { sha256 } from '../canonical.js';
import { maskAddress } from '../mask.js';

export async function mfaGate(deps: Deps, call: Call, next: Handler): Promise<CallToolResult> {
  const target = call.state.resolved.target;
  if (!target) throw new GuardError('INTERNAL', `${call.tool.name} has no MFA target`);
  const factors = deps.backends.factors;
  const o = { signal: call.signal };
  if (!(await factors.enrolled(target, o))) {
    throw new GuardError('APPROVAL_UNAVAILABLE', `${target} has no enrolled authenticator, so they cannot confirm.`, {
      next: `Tell the user to contact IT to enroll an authenticator for ${target}.`,
    });
  }
  const locked = await factors.lockedUntil(target, o);
  if (locked) {
    throw new GuardError(
      'APPROVAL_DENIED',
      `${target}'s authenticator is locked after too many wrong codes, until ${new Date(locked).toISOString()}.`,
    );
  }
  // Okta Verify (or any push factor): the target approves on their phone; no client channel is involved.
  if (factors.push) return mfaByPush(deps, call, next, target, factors.push);
  // In band, the same on both eras: the page (URL mode), else the code form where policy allows codes in forms.
  const ch = channelOf(call);
  const prompt = ch && promptFor(deps, ch, 'mfa');
  if (ch && prompt) return inBand(deps, call, next, prompt, ch.asker);
  if (deps.policy.mfa.outOfBand) return mfaByLink(deps, call, target);
  // Security: no way to reach the target user → refuse; never auto-confirm.
  throw new GuardError(
    'APPROVAL_UNAVAILABLE',
    `This client cannot collect ${target}'s confirmation and out-of-band links are disabled by policy.`,
  );
}

/** Out of band: APPROVAL_PENDING with a one-time link to the page for the target user (also mailed to them). */
async function mfaByLink(deps: Deps, call: Call, target: string): Promise<never> {
  await deps.links.ready; // stdio: the loopback page may still be starting
  const { row, verifyToken } = await openOrCreate(deps, call, 'mfa', true);
  const link = verifyToken ? `${deps.links.base}/verify/${verifyToken}` : undefined;
  await auditGate(deps, call, 'approval.requested', { request_id: row.id, tier: 'mfa', target, channel: 'link' });
  const mailed =
    link && verifyToken
      ? await mailVerifyLink(deps, {
          target,
          link,
          token: verifyToken,
          summary: row.summary,
          signal: call.signal,
          traceId: call.traceId,
        })
      : undefined;
  throw pending(
    row,
    `${target} must confirm "${row.summary}" with their authenticator. ${mailed ? `A one-time link was sent to ${mailed}; or give` : 'Give'} ${target} this one-time link; nothing happens until they enter their code there: ${link ?? '(link already issued)'} . Then check with request_status.`,
    link ? { verification_link: link, target, ...(mailed ? { link_sent_to: mailed } : {}) } : { target },
  );
}

/**
 * Out of band, the verification link also goes to the target user's recovery address through the outbox (the
 * link grants nothing without their code). Best effort: the link is in the result too, so a failed delivery is
 * logged, not a refusal. Returns the masked address it went to.
 */
export async function mailVerifyLink(
  deps: Pick<Deps, 'backends' | 'log'>,
  m: { target: string; link: string; token: string; summary: string; signal: AbortSignal; traceId: string },
): Promise<string | undefined> {
  const { target, link, token, summary } = m;
  try {
    const u = await deps.backends.directory.get(target, { signal: m.signal });
    if (!u?.recovery || !deps.backends.outbox.channels.includes(u.recovery.kind)) return undefined;
    const r = await deps.backends.resets.deliver(
      {
        username: u.username,
        channel: u.recovery.kind,
        to: u.recovery.address,
        subject: 'Confirm an IT request with your authenticator',
        text: `Hello ${u.displayName}, the IT service desk asks you to confirm: ${summary}. If you asked for this, open ${link} and enter the code from your authenticator app. If you did not, ignore this message and call the IT service desk.`,
      },
      `verify:${sha256(token).slice(0, 32)}`,
      { signal: m.signal },
    );
    return maskAddress(r.channel, r.address);
  } catch (e) {
    deps.log.warn(
      { err: e instanceof Error ? e.message : String(e), trace_id: m.traceId, target },
      'verification link not mailed',
    );
    return undefined;
  }
}
