/**
 * The in-band prompts of the confirm and mfa tiers: what each asks and the tier's rule for the answer (DESIGN §4).
 * Written once; gates/in-band.ts records the verdict, gates/asker.ts carries the question on either era.
 *
 *  - confirm: a form with the summary and the agent's reason; only accept + approve = true approves.
 *  - mfa, form code: the target user's 6-digit code, checked by the factors port (5 failures lock the factor and
 *    raise an alarm); only the right code approves.
 *  - mfa, URL page: a one-time link to the page itguard serves, where the target user enters the code (it never
 *    transits the client); the page decides the request. Accept only means "opened"; anything else denies.
 */
import type { ApprovalRow } from '../../store/ports/index.js';
import { raiseAlarm } from '../alarm.js';
import type { Deps } from '../gate-requests.js';
import { write } from '../units.js';
import type { Channel } from './asker.js';
import type { InBandGate, PromptKind, Verdict } from './types.js';

/** `decided_by` for an answer the client gave (the asking user, whoever that is). */
const CLIENT_USER = 'client-user';

const targetOf = (row: ApprovalRow): string => row.target ?? 'the user';

export const confirmPrompt: InBandGate = {
  kind: 'confirm',
  tier: 'confirm',
  key: 'confirm',
  channel: 'form',
  async prompt(_deps, row) {
    return {
      mode: 'form',
      message: `Please confirm: ${row.summary}\nReason given by the agent: ${row.reason}`,
      requestedSchema: {
        type: 'object',
        properties: { approve: { type: 'boolean', title: 'Approve this action?', description: row.summary } },
        required: ['approve'],
      },
    };
  },
  async judge(_deps, _call, row, a) {
    // Security: only an explicit accept with approve = true proceeds; decline, cancel, a timeout and errors deny.
    if (a.action === 'accept' && a.content?.approve === true)
      return {
        approve: true,
        by: CLIENT_USER,
        event: 'approval.confirmed',
        detail: { summary: row.summary },
        message: 'confirmed in the client',
      };
    return {
      approve: false,
      by: CLIENT_USER,
      event: 'approval.declined',
      detail: { action: a.action },
      message: `The user did not confirm "${row.summary}" (${a.action === 'accept' ? 'not approved' : a.action}).`,
    };
  },
  waiting: (row) => `waiting on request ${row.id}`,
};

export const mfaFormPrompt: InBandGate = {
  kind: 'mfa-form',
  tier: 'mfa',
  key: 'code',
  channel: 'form',
  async prompt(_deps, row) {
    const target = targetOf(row);
    return {
      mode: 'form',
      message: `${target} must confirm this with their authenticator app: ${row.summary}.\nReason: ${row.reason}\nAsk ${target} to type the current 6-digit code.`,
      requestedSchema: {
        type: 'object',
        properties: { code: { type: 'string', title: `${target}'s 6-digit code`, minLength: 6, maxLength: 6 } },
        required: ['code'],
      },
    };
  },
  async judge(deps, call, row, a): Promise<Verdict> {
    const target = targetOf(row);
    const code = a.action === 'accept' && typeof a.content?.code === 'string' ? a.content.code.trim() : undefined;
    if (code === undefined)
      return {
        approve: false,
        by: CLIENT_USER,
        event: 'mfa.declined',
        detail: { action: a.action },
        message: `${target} did not confirm (${a.action}).`,
      };
    const v = await deps.backends.factors.verify(target, code, { signal: call.signal });
    if (!v.ok) {
      if (v.justLocked)
        await raiseAlarm(deps, call, {
          kind: 'MFA_LOCKED',
          rule: 'mfa-failures',
          message: `${target}'s authenticator locked after 5 wrong codes`,
          detail: { target },
        });
      return {
        approve: false,
        by: `mfa:${target}`,
        event: 'mfa.failed',
        detail: { why: v.why },
        message: `The code for ${target} was not accepted (${v.why}).`,
      };
    }
    return {
      approve: true,
      by: `mfa:${target}`,
      event: 'mfa.verified',
      detail: {},
      message: 'confirmed by the target user with their code',
    };
  },
  waiting: (row) => `waiting on request ${row.id}`,
};

export const mfaPagePrompt: InBandGate = {
  kind: 'mfa-url',
  tier: 'mfa',
  key: 'page',
  channel: 'url',
  async prompt(deps, row) {
    await deps.links.ready; // stdio: the loopback page may still be starting
    // Only the link's hash is kept: each time the page is shown, a fresh link is issued (the older one stops working).
    const token = await write(deps, (tx) => deps.store.approvals.rotateVerifyLink(tx, row.id));
    return {
      mode: 'url',
      message: `${targetOf(row)} must confirm "${row.summary}" by entering the code from their authenticator app on this page.`,
      url: `${deps.links.base}/verify/${token}`,
    };
  },
  async judge(_deps, _call, _row, a) {
    if (a.action === 'accept') return undefined; // the page decides: wait for it
    return {
      approve: false,
      by: CLIENT_USER,
      event: 'mfa.declined',
      detail: { action: a.action },
      message: `The confirmation page was ${a.action === 'decline' ? 'declined' : 'cancelled'}; nothing was done.`,
    };
  },
  waiting: (row) => `waiting for ${targetOf(row)} to enter their code (${row.id})`,
};

const PROMPTS: Record<PromptKind, InBandGate> = {
  confirm: confirmPrompt,
  'mfa-form': mfaFormPrompt,
  'mfa-url': mfaPagePrompt,
};

/** The prompt a verified MRTR state's kind (`k`) names; undefined for a kind this version does not know. */
export const promptOfKind = (k: string): InBandGate | undefined =>
  Object.hasOwn(PROMPTS, k) ? PROMPTS[k as PromptKind] : undefined;

/**
 * The prompt this channel can put for a tier, if any — the same choice on both eras. confirm: a form (else the
 * request escalates to an approver). mfa: the page when the client has URL mode, else the code form where policy
 * allows codes in forms (else the out-of-band link); never with a push factor, which the phone answers.
 */
export function promptFor(
  deps: Pick<Deps, 'policy' | 'backends'>,
  ch: Pick<Channel, 'form' | 'url'>,
  tier: string,
): InBandGate | undefined {
  if (tier === 'confirm') return ch.form ? confirmPrompt : undefined;
  if (tier !== 'mfa' || deps.backends.factors.push) return undefined;
  if (ch.url) return mfaPagePrompt;
  return ch.form && deps.policy.mfa.allowFormCode ? mfaFormPrompt : undefined;
}
