/**
 * The mfa tier: the *target user* proves possession of their TOTP factor — on a page itguard serves (URL
 * elicitation, or a one-time link returned with APPROVAL_PENDING to clients without elicitation), or in a form
 * when the client only has form mode and policy allows it. A code is never taken as a tool argument. With a
 * push factor (Okta Verify) the target approves on their phone instead (push-gate.ts).
 */
import { write } from './units.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { raiseAlarm } from './alarm.js';
import { GuardError } from '../core/errors.js';
import { ask, auditGate, openOrCreate, pending, reasonOf, waitAndRun, type Deps } from './gate-requests.js';
import type { Call, Handler } from './types.js';
import { askByMrtr } from './mrtr-gates.js';
import { mfaByPush } from './push-gate.js';
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
  const c = call.client;
  if (c?.url) return mfaByPage(deps, call, next, target, 'url');
  // 2026-07-28 in band: the page as an input_required URL, or the form where policy allows codes in forms.
  if (c?.mrtr?.url) return askByMrtr(deps, call, 'mfa-url');
  if (c?.mrtr?.form && deps.policy.mfa.allowFormCode) return askByMrtr(deps, call, 'mfa-form');
  if (c?.form && deps.policy.mfa.allowFormCode) return mfaByForm(deps, call, next, target);
  if (deps.policy.mfa.outOfBand) return mfaByPage(deps, call, next, target, 'link');
  // Security: no way to reach the target user → refuse; never auto-confirm.
  throw new GuardError(
    'APPROVAL_UNAVAILABLE',
    `This client cannot collect ${target}'s confirmation and out-of-band links are disabled by policy.`,
  );
}

async function mfaByForm(deps: Deps, call: Call, next: Handler, target: string): Promise<CallToolResult> {
  const summary = call.tool.summary(call.args);
  const r = await ask(deps, call, {
    mode: 'form',
    message: `${target} must confirm this with their authenticator app: ${summary}.\nReason: ${reasonOf(call)}\nAsk ${target} to type the current 6-digit code.`,
    requestedSchema: {
      type: 'object',
      properties: { code: { type: 'string', title: `${target}'s 6-digit code`, minLength: 6, maxLength: 6 } },
      required: ['code'],
    },
  });
  const code = r.action === 'accept' ? r.content?.code : undefined;
  if (typeof code !== 'string') {
    await auditGate(deps, call, 'mfa.declined', { target, channel: 'form', action: r.action });
    throw new GuardError('APPROVAL_DENIED', `${target} did not confirm (${r.action}).`);
  }
  const v = await deps.backends.factors.verify(target, code.trim(), { signal: call.signal });
  if (!v.ok) {
    await auditGate(deps, call, 'mfa.failed', { target, channel: 'form', why: v.why });
    if (v.justLocked)
      await raiseAlarm(deps, call, {
        kind: 'MFA_LOCKED',
        rule: 'mfa-failures',
        message: `${target}'s authenticator locked after 5 wrong codes`,
        detail: { target },
      });
    throw new GuardError('APPROVAL_DENIED', `The code for ${target} was not accepted (${v.why}).`);
  }
  await auditGate(deps, call, 'mfa.verified', { target, channel: 'form' });
  return next(call);
}

async function mfaByPage(
  deps: Deps,
  call: Call,
  next: Handler,
  target: string,
  how: 'url' | 'link',
): Promise<CallToolResult> {
  await deps.links.ready; // stdio: the loopback page may still be starting
  const { row, verifyToken } = await openOrCreate(deps, call, 'mfa', true);
  const link = verifyToken ? `${deps.links.base}/verify/${verifyToken}` : undefined;
  await auditGate(deps, call, 'approval.requested', { request_id: row.id, tier: 'mfa', target, channel: how });
  if (how === 'link' || !link) {
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
  const r = await ask(deps, call, {
    mode: 'url',
    message: `${target} must confirm "${row.summary}" by entering the code from their authenticator app on this page.`,
    url: link,
    elicitationId: row.id,
  });
  if (r.action !== 'accept') {
    await write(deps, (tx) =>
      deps.store.approvals.decide(tx, row.id, false, { name: `user-${r.action}` }, `URL elicitation ${r.action}`),
    );
    await auditGate(deps, call, 'mfa.declined', { target, channel: 'url', action: r.action, request_id: row.id });
    throw new GuardError(
      'APPROVAL_DENIED',
      `The confirmation page was ${r.action === 'decline' ? 'declined' : 'cancelled'}; nothing was done.`,
      { details: { request_id: row.id } },
    );
  }
  return waitAndRun(deps, call, next, row.id, `waiting for ${target} to enter their code (${row.id})`);
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
