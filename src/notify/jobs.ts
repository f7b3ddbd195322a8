/**
 * Which jobs a request makes: for an `approval` request, a mail to each approver with an address, one Slack message
 * in the approvals channel (mentioning the approvers' Slack users) and one delivery per webhook; for an `mfa` request
 * the webhooks only (its target user is mailed the verification page by the MFA gate, as before, and no approver can
 * stand in for their code). Nobody is invited to decide a request they may not decide: the requesting principal and
 * an approver whose address is the person the request was made for are left out.
 */
import { createHash } from 'node:crypto';
import type { NotifyPolicy } from '../policy/notify.js';
import type { ApprovalRow } from '../store/ports/index.js';
import type { NewJob, NotifyJob } from '../store/ports/index.js';
import { mailText, noticeOf, webhookBody, type Notice } from './message.js';
import { outcomeMessage, requestMessage } from './slack.js';

/** A webhook is named in the store by a hash of its URL: the URL itself may carry a credential (Teams' `sig=`). */
export const webhookRecipient = (url: string): string =>
  `webhook:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;

export interface MailPayload {
  username: string;
  to: string;
  subject: string;
  text: string;
}
export interface SlackPayload {
  channel: string;
  ts?: string;
  text: string;
  blocks: unknown[];
}
export interface WebhookPayload {
  body: unknown;
}

const same = (a: string | null | undefined, b: string | null | undefined) =>
  !!a && !!b && a.toLowerCase() === b.toLowerCase();

export function eligibleApprovers(p: NotifyPolicy, row: ApprovalRow) {
  // Security: separation of duties starts here: the requester and the person it acts for are never asked.
  return p.approvers.filter((a) => a.principal !== row.principal && !same(a.email, row.on_behalf_of));
}

export function requestJobs(p: NotifyPolicy, row: ApprovalRow, consoleBase: string, reminder: boolean): NewJob[] {
  const kind = reminder ? 'reminder' : 'requested';
  const n = noticeOf(row, consoleBase);
  const jobs: NewJob[] = [];
  if (row.tier === 'approval') {
    const approvers = eligibleApprovers(p, row);
    if (p.mail.enabled)
      for (const a of approvers)
        if (a.email) {
          const payload: MailPayload = { username: a.principal, to: a.email, ...mailText(n, reminder) };
          jobs.push({ requestId: row.id, kind, channel: 'mail', recipient: a.principal, payload });
        }
    if (p.slack) {
      const mentions = approvers.flatMap((a) => (a.slackUser ? [a.slackUser] : []));
      const payload: SlackPayload = requestMessage(p.slack.channel, n, mentions, reminder);
      jobs.push({ requestId: row.id, kind, channel: 'slack', recipient: p.slack.channel, payload });
    }
  }
  const type = `approval.${reminder ? 'reminder' : row.tier === 'mfa' ? 'mfa_pending' : 'requested'}`;
  for (const w of p.webhooks)
    jobs.push({
      requestId: row.id,
      kind,
      channel: 'webhook',
      recipient: webhookRecipient(w.url),
      payload: { body: webhookBody(type, n) } satisfies WebhookPayload,
    });
  return jobs;
}

/** Once decided or expired: each Slack message that went out is updated; each webhook hears the outcome. */
export function outcomeJobs(
  p: NotifyPolicy,
  row: ApprovalRow,
  sent: readonly NotifyJob[],
  consoleBase: string,
): NewJob[] {
  const n: Notice = noticeOf(row, consoleBase);
  const jobs: NewJob[] = [];
  for (const j of sent) {
    if (j.channel !== 'slack' || j.status !== 'sent' || !j.ref) continue;
    const [channel = '', ts = ''] = j.ref.split(':');
    const payload: SlackPayload = { ...outcomeMessage(channel, n, row.status, row.decided_by), ts };
    jobs.push({ requestId: row.id, kind: 'outcome', channel: 'slack', recipient: j.ref, payload });
  }
  const told = new Set(sent.filter((j) => j.channel === 'webhook').map((j) => j.recipient));
  for (const w of p.webhooks) {
    const recipient = webhookRecipient(w.url);
    if (!told.has(recipient)) continue;
    const body = webhookBody('approval.decided', n, { status: row.status, decided_by: row.decided_by });
    jobs.push({ requestId: row.id, kind: 'outcome', channel: 'webhook', recipient, payload: { body } });
  }
  return jobs;
}
