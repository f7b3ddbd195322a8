/**
 * Human gates by tier (DESIGN §4).
 *  - auto: passes.
 *  - confirm: a form with the summary and the agent's reason; only accept + approve=true approves the request.
 *    A client without elicitation cannot confirm: the request escalates to an approver.
 *  - mfa: the *target user* proves possession of their TOTP factor — on a page itguard serves (URL
 *    elicitation, or a link returned with APPROVAL_PENDING to clients without elicitation), or in a form when the
 *    client only has form mode and policy allows it (mfa-gate.ts). A code is never taken as a tool argument.
 *  - approval: an approver decides out of band; the call waits up to approvals.wait_seconds with progress
 *    notifications, then returns APPROVAL_PENDING with a request_id. Once approved the action runs exactly once:
 *    here if the call is still waiting (it claims the request), else by the background executor.
 * Every gate opens an approval request, the single source of truth, and fails closed: no answer, a timeout or an
 * error is a denial, never a pass. The in-band prompts (confirm, mfa form and page) are one implementation per tier
 * (gates/prompts.ts, gates/in-band.ts); only the asker differs by era (gates/asker.ts: pushed elicitation on
 * 2025-11-25, `input_required` on 2026-07-28).
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { auditGate, openOrCreate, storedResult, waitAndRun, type Deps } from './gate-requests.js';
import { write } from './units.js';
import { GuardError } from '../core/errors.js';
import { mailVerifyLink, mfaGate } from './mfa-gate.js';
import { channelOf, inputRound } from './gates/asker.js';
import { inBand } from './gates/in-band.js';
import { promptFor } from './gates/prompts.js';
import type { Call, Guard, Handler } from './types.js';

export { storedResult, bindingSha } from './gate-requests.js';

export const approval =
  (deps: Deps): Guard =>
  (next) =>
    async function approvalGuard(call) {
      const tier = call.state.resolved.tier ?? call.toolPolicy.tier ?? call.tool.tier;
      if (tier === 'auto') return next(call);
      if (call.toolPolicy.mode === 'shadow') {
        call.state.shadowTier = tier; // evaluated, not gated: nothing will run
        return next(call);
      }
      if (tier === 'confirm') {
        const ch = channelOf(call);
        const prompt = ch && promptFor(deps, ch, 'confirm');
        if (ch && prompt) return inBand(deps, call, next, prompt, ch.asker);
        // Security: a client that cannot ask its user cannot confirm; an approver decides instead.
        return approverGate(deps, call, next, 'approval (escalated from confirm: the client has no elicitation)');
      }
      if (tier === 'mfa') return mfaGate(deps, call, next);
      return approverGate(deps, call, next, 'approval');
    };

async function approverGate(deps: Deps, call: Call, next: Handler, tierNote: string): Promise<CallToolResult> {
  const { row } = await openOrCreate(deps, call, 'approval', false);
  await auditGate(deps, call, 'approval.requested', { request_id: row.id, tier: tierNote });
  return waitAndRun(deps, call, next, row.id, `waiting for an IT approver to decide ${row.id}`);
}

/**
 * A retried write whose idempotency record is parked on approval request `id`: the request's final result once
 * it has one (to record and replay), else APPROVAL_PENDING with its status — at once, never a wait.
 */
export async function settledApproval(
  deps: Deps,
  id: string,
  originalTraceId: string,
  call: Call,
): Promise<{ state: 'completed' | 'failed'; result: CallToolResult; updatedAt: number; denial?: GuardError }> {
  const signal = call.signal;
  const a = await deps.store.approvals.get(id);
  if (a && (a.status === 'succeeded' || a.status === 'failed')) {
    return {
      state: a.status === 'succeeded' ? 'completed' : 'failed',
      result: storedResult(a),
      updatedAt: a.updated_at,
    };
  }
  if (!a || a.status === 'denied' || a.status === 'expired') {
    const denial = new GuardError('APPROVAL_DENIED', `Request ${id} was ${a?.status ?? 'lost'}; nothing was done.`, {
      details: { request_id: id },
    });
    return { state: 'failed', result: denial.toToolResult(originalTraceId), updatedAt: deps.now(), denial };
  }
  // A 2026-07-28 client that can answer in band is asked again (a new state for the same request).
  const mrtr = call.client?.mrtr;
  const prompt = mrtr && a.status === 'pending' ? promptFor(deps, mrtr, a.tier) : undefined;
  if (prompt) throw await inputRound(deps, call, a, prompt);
  // An MFA request waiting on its target user gets a fresh one-time link (only hashes are stored), mailed to
  // them too: the link they got earlier stops working.
  const token =
    a.tier === 'mfa' && a.status === 'pending' && !deps.backends.factors.push
      ? await write(deps, (tx) => deps.store.approvals.rotateVerifyLink(tx, a.id))
      : undefined;
  const link = token ? `${deps.links.base}/verify/${token}` : undefined;
  const mailed =
    token && link && a.target
      ? await mailVerifyLink(deps, {
          target: a.target,
          link,
          token,
          summary: a.summary,
          signal,
          traceId: originalTraceId,
        })
      : undefined;
  throw new GuardError(
    'APPROVAL_PENDING',
    `This request is ${a.status === 'pending' ? 'waiting for a human decision' : a.status} as ${a.id}${link ? `; ${a.target} confirms on this one-time page: ${link} ` : ''}; check with request_status.`,
    {
      details: {
        request_id: a.id,
        status: a.status,
        expires_at: new Date(a.expires_at).toISOString(),
        ...(link ? { verification_link: link } : {}),
        ...(mailed ? { link_sent_to: mailed } : {}),
      },
    },
  );
}
