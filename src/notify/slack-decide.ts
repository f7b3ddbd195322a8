/**
 * A verified Slack click, decided: the Slack user is mapped to an approver principal (`notify.approvers`), then the
 * same rules as the console apply, through the approvals store's `decide` (single-use by the record's state,
 * separation of duties, expiry) with its audit record in the same transaction. Refusals (an unmapped user, a
 * principal without approvals:decide, the wrong tier, self-approval, already decided, expired) are audited as
 * `approval.refused` with the reason, so a replayed or forged-but-signed click leaves a trace like a decision does.
 *
 * TODO(lead): once helper h18's single `decide` (src/http/console.ts) is merged, call it here instead of
 * `app.approvals.decide`, so Slack takes exactly the console's path (identity comparison by issuer + sub).
 */
import type { App } from '../app.js';
import { immediate } from '../store/db.js';

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
  const r = immediate(app.db, () => {
    const result = app.approvals.decide(
      d.requestId,
      d.approve,
      { name: actor, principal: approver.principal, onBehalfOf: approver.email },
      undefined,
    );
    if (result.ok)
      app.auditStore.appendInTx([
        {
          event: d.approve ? 'approval.approved' : 'approval.denied',
          actor,
          onBehalfOf: approver.email,
          tool: result.row.tool,
          detail: { ...facts, note: null },
        },
      ]);
    return result;
  });
  if (!r.ok) return refuse(r.reason, row?.tool);
  app.log.info({ actor, request_id: d.requestId, approve: d.approve }, 'approval decided from Slack');
  return { ok: true, requestId: d.requestId };
}
