/**
 * What a notification says, rendered once from the approval request: what is asked, by which agent for whom, the
 * agent's reason, the caps it would spend, when it expires, and a link to the console. Built from the request's
 * display fields only (summary, principal, on_behalf_of, target, reason, caps), never from a verification or reset
 * token, so no secret can reach a channel. The agent's reason is text a model wrote: in Slack it is escaped (no
 * mentions or links can be injected) and every field is shortened.
 */
import { capLines } from '../guard/caps-view.js';
import type { ApprovalRow } from '../store/ports/index.js';

export interface Notice {
  request_id: string;
  tier: string;
  summary: string;
  tool: string;
  agent: string;
  on_behalf_of: string | null;
  target: string | null;
  reason: string;
  caps: string[];
  created_at: string;
  expires_at: string;
  console_url: string;
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function noticeOf(row: ApprovalRow, consoleBase: string): Notice {
  return {
    request_id: row.id,
    tier: row.tier,
    summary: clip(row.summary, 300),
    tool: row.tool,
    agent: row.principal,
    on_behalf_of: row.on_behalf_of,
    target: row.target,
    reason: clip(row.reason, 500),
    caps: capLines(row.caps),
    created_at: new Date(row.created_at).toISOString(),
    expires_at: new Date(row.expires_at).toISOString(),
    console_url: `${consoleBase.replace(/\/+$/, '')}/console#${row.id}`,
  };
}

export const OUTCOME_WORDS: Record<string, string> = {
  approved: 'Approved',
  executing: 'Approved',
  succeeded: 'Approved',
  failed: 'Approved',
  denied: 'Denied',
  expired: 'Expired without a decision',
};

const forWhom = (n: Notice) => (n.on_behalf_of ? ` for ${n.on_behalf_of}` : '');

export function mailText(n: Notice, reminder: boolean): { subject: string; text: string } {
  const ask = n.tier === 'mfa' ? 'Waiting for the user to confirm' : 'Approval needed';
  return {
    subject: `${reminder ? 'Reminder: ' : ''}${ask}: ${clip(n.summary, 120)} (${n.request_id})`,
    text: [
      `${reminder ? `Reminder: request ${n.request_id} expires at ${n.expires_at} without a decision.\n\n` : ''}` +
        `The agent ${n.agent}${forWhom(n)} asks: ${n.summary}`,
      '',
      `Reason given by the agent: ${n.reason}`,
      n.target ? `Target user: ${n.target}` : '',
      `Caps it would spend: ${n.caps.length ? n.caps.join('; ') : 'none'}`,
      `Request: ${n.request_id} (expires ${n.expires_at})`,
      '',
      `Approve or deny it in the console: ${n.console_url}`,
      'You cannot approve a request made on your own behalf.',
    ]
      .filter((l, i, a) => l !== '' || a[i - 1] !== '')
      .join('\n'),
  };
}

/** Slack mrkdwn: &, < and > are the only characters Slack asks to escape; they stop links and mentions. */
export const slackEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function webhookBody(type: string, n: Notice, extra: Record<string, unknown> = {}, ts = Date.now()) {
  return { type, timestamp: new Date(ts).toISOString(), data: { ...n, ...extra } };
}
