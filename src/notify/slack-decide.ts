/**
 * A verified Slack click, decided: the Slack user is mapped to an approver principal (`notify.approvers`), then the
 * decision goes through the one `decide` (src/guard/decide.ts) the console, CLI and admin API take — state
 * (single-use), tier, separation of duties — with its audit record in the same transaction, the Slack user id and
 * the click's action_ts in the record's detail. A click that cannot be mapped to an approver holding
 * approvals:decide is refused before `decide` and audited the same way (`approval.refused` with the reason), so a
 * signed click that decides nothing still leaves a trace.
 */
import type { Principal } from '../core/tool.js';
import type { GuardDeps } from '../guard/deps.js';
import type { Store } from '../store/ports/index.js';
import { decide } from '../guard/decide.js';

export interface SlackDecision {
  requestId: string;
  approve: boolean;
  slackUser: string;
  actionTs: string | undefined;
}

export type SlackOutcome = { ok: true; requestId: string } | { ok: false; reason: string; message: string };

const UNMAPPED = {
  unmapped_slack_user: 'Your Slack user is not mapped to an itguard approver (notify.approvers)',
  not_an_approver: 'Your approver principal does not hold approvals:decide',
} as const;

type Deps = Pick<GuardDeps, 'policy' | 'audit' | 'log'> & {
  store: Store;
  principal(name: string): Principal | undefined;
};

export async function decideFromSlack(app: Deps, d: SlackDecision): Promise<SlackOutcome> {
  const approver = app.policy.notify?.approvers.find((a) => a.slackUser === d.slackUser);
  const facts = { slack_user: d.slackUser, action_ts: d.actionTs ?? null };
  const refused = (reason: string, message: string): SlackOutcome => {
    app.log.warn({ slack_user: d.slackUser, request_id: d.requestId, reason }, 'slack decision refused');
    return { ok: false, reason, message: `${d.requestId}: refused. ${message}.` };
  };
  // Security: only a Slack user the policy names as an approver, whose principal holds approvals:decide, decides.
  const reason = !approver
    ? 'unmapped_slack_user'
    : !app.principal(approver.principal)?.scopes.includes('approvals:decide')
      ? 'not_an_approver'
      : undefined;
  if (reason) {
    await app.audit.record(
      {
        event: 'approval.refused',
        actor: approver ? `slack:${approver.principal}` : `slack:${d.slackUser}`,
        outcome: 'refused',
        code: reason,
        detail: {
          ...facts,
          request_id: d.requestId,
          via: 'slack',
          note: null,
          decision: d.approve ? 'approve' : 'deny',
          reason,
        },
      },
      true,
    );
    return refused(reason, UNMAPPED[reason]);
  }
  const r = await decide(app, {
    id: d.requestId,
    approve: d.approve,
    actor: {
      name: `slack:${approver!.principal}`,
      via: 'slack',
      principal: approver!.principal,
      person: approver!.email,
      email: approver!.email,
    },
    detail: facts,
  });
  if (!r.ok) return refused(r.reason, r.message);
  app.log.info(
    { actor: `slack:${approver!.principal}`, request_id: d.requestId, approve: d.approve },
    'approval decided from Slack',
  );
  return { ok: true, requestId: d.requestId };
}
