/**
 * A verified Slack click, decided: the Slack user is mapped to an approver principal (`notify.approvers`), then the
 * same rules as the console apply, through the approvals store's `decide` (single-use by the record's state,
 * separation of duties, expiry) with its audit record in the same transaction. Refusals (an unmapped user, a
 * principal without approvals:decide, the wrong tier, self-approval, already decided, expired) are audited as
 * `approval.refused` with the reason, so a replayed or forged-but-signed click leaves a trace like a decision does.
 *
 * Since h18's merge (on branch operator) the click goes through the one `decide` (src/guard/decide.ts), exactly the
 * console's path; the mapping and scope checks above it stay here.
 */
import type { App } from '../app.js';
import { decide } from '../guard/decide.js';

export interface SlackDecision {
  requestId: string;
  approve: boolean;
  slackUser: string;
  actionTs: string | undefined;
}

export type SlackOutcome = { ok: true; requestId: string } | { ok: false; reason: string; message: string };

const REASONS: Record<string, string> = {
  unmapped_slack_user: 'your Slack user is not mapped to an itguard approver (notify.approvers)',
  not_an_approver: 'your approver principal does not hold approvals:decide',
  wrong_tier: 'this request is confirmed by its target user with their authenticator code; it can only be denied',
  self_approval: 'you cannot approve a request made by your own principal',
  own_behalf: 'you cannot approve a request an agent made on your behalf',
  not_pending: 'this request has already been decided',
  expired: 'this request has expired',
  not_found: 'no such request',
};

type Deps = Pick<App, 'policy' | 'principal' | 'approvals' | 'auditStore' | 'db' | 'log'>;

export function decideFromSlack(app: Deps, d: SlackDecision): SlackOutcome {
  const approver = app.policy.notify?.approvers.find((a) => a.slackUser === d.slackUser);
  const actor = approver ? `slack:${approver.principal}` : `slack:${d.slackUser}`;
  const facts = {
    request_id: d.requestId,
    decision: d.approve ? 'approve' : 'deny',
    via: 'slack',
    slack_user: d.slackUser,
    action_ts: d.actionTs ?? null,
  };
  const refuse = (reason: string, tool?: string): SlackOutcome => {
    app.auditStore.append({
      event: 'approval.refused',
      actor,
      onBehalfOf: approver?.email,
      tool,
      detail: { ...facts, reason },
    });
    app.log.warn({ actor, request_id: d.requestId, reason }, 'slack decision refused');
    return { ok: false, reason, message: `${d.requestId}: refused, ${REASONS[reason] ?? reason}.` };
  };
  // Security: only a Slack user the policy names as an approver decides anything.
  if (!approver) return refuse('unmapped_slack_user');
  if (!app.principal(approver.principal)?.scopes.includes('approvals:decide')) return refuse('not_an_approver');
  const row = app.approvals.get(d.requestId);
  // Security: an mfa request is approved only by its target user's code; an approver may deny it, never stand in.
  if (d.approve && row && row.tier !== 'approval') return refuse('wrong_tier', row.tool);
  // Security: the person a request was made for never approves it (addresses compared case-insensitively).
  if (d.approve && row?.on_behalf_of && approver.email?.toLowerCase() === row.on_behalf_of.toLowerCase())
    return refuse('own_behalf', row.tool);
  // The one decide (src/guard/decide.ts): state, tier and separation of duties, audited (refusals too) with it.
  const r = decide(app, {
    id: d.requestId,
    approve: d.approve,
    actor: { name: actor, via: 'slack', principal: approver.principal, person: approver.email, email: approver.email },
    detail: { slack_user: d.slackUser, action_ts: d.actionTs ?? null },
  });
  if (!r.ok) {
    app.log.warn({ actor, request_id: d.requestId, reason: r.reason }, 'slack decision refused');
    return { ok: false, reason: r.reason, message: `${d.requestId}: refused, ${REASONS[r.reason] ?? r.reason}.` };
  }
  app.log.info({ actor, request_id: d.requestId, approve: d.approve }, 'approval decided from Slack');
  return { ok: true, requestId: d.requestId };
}
