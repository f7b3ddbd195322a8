/**
 * The policy's `notify:` block (DESIGN §4 "Approvers are told", §8): who hears about a request that needs a human, and
 * through which channels.
 *
 *   notify:
 *     approvers: { it-approver: { email: it-approvals@example.com, slack_user: U0123ABC } }
 *     mail: { enabled: true }                  # through the outbox backend
 *     slack: { bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET, channel: C0APPROVALS }
 *            # api_url (default https://slack.com/api) exists for tests
 *     webhooks: [{ url: https://hooks.example.com/itguard, secret_env: ITGUARD_WEBHOOK_SECRET }]
 *     remind_before_expiry: 2h                 # 0s: no reminder
 *
 * Secrets are named by environment variable, never written here. Each approver key must be a principal of the
 * policy holding `approvals:decide` (checked in schema.ts with the principals at hand).
 */
import { z } from 'zod';
import { isLoopbackHost } from '../loopback.js';

export interface NotifyApprover {
  /** The approver principal (a key of `principals`). */
  principal: string;
  email: string | undefined;
  slackUser: string | undefined;
}

export interface NotifyPolicy {
  approvers: readonly NotifyApprover[];
  mail: { enabled: boolean };
  slack: { botTokenEnv: string; signingSecretEnv: string; channel: string; apiUrl: string } | undefined;
  webhooks: readonly { url: string; secretEnv: string }[];
  /** How long before a pending request expires its approvers are reminded (ms); 0 = never. */
  remindBeforeExpiryMs: number;
}

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, { error: 'expected an environment variable name like SLACK_BOT_TOKEN' });

/** https://, or http:// to a loopback host (tests, a local relay); no credentials in the URL. A query is allowed
 * (Teams workflow URLs carry their signature in `sig=`). */
const outboundUrl = z
  .string({ error: 'expected a URL' })
  .max(2048)
  .check((ctx) => {
    let u: URL;
    try {
      u = new URL(ctx.value);
    } catch {
      ctx.issues.push({
        code: 'custom',
        message: 'expected an absolute URL like https://hooks.example.com/x',
        input: ctx.value,
      });
      return;
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname)))
      ctx.issues.push({
        code: 'custom',
        message: 'must be https:// (http:// only for loopback hosts)',
        input: ctx.value,
      });
    else if (u.username || u.password)
      ctx.issues.push({ code: 'custom', message: 'must not carry a user name or password', input: ctx.value });
  });

const UNIT_MS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 } as const;
const remind = z
  .string()
  .regex(/^\d+(s|m|h|d)$/, { error: 'expected a duration like 30m, 2h or 1d (0s: no reminder)' })
  .transform((s, ctx) => {
    const ms = Number(s.slice(0, -1)) * UNIT_MS[s.slice(-1) as keyof typeof UNIT_MS];
    if (ms > 365 * 86400e3) ctx.issues.push({ code: 'custom', message: 'must be at most 365d', input: s });
    return ms;
  });

const approver = z.strictObject({
  email: z.email({ error: 'expected an e-mail address' }).max(320).optional(),
  slack_user: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,31}$/, { error: 'expected a Slack user id like U0123ABC (not a display name)' })
    .optional(),
});

export const notifySchema = z.strictObject({
  approvers: z.record(z.string(), approver).default({}),
  mail: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  slack: z
    .strictObject({
      bot_token_env: envName,
      signing_secret_env: envName,
      channel: z
        .string()
        .regex(/^[CGD][A-Z0-9]{2,31}$/, { error: 'expected a Slack channel id like C0APPROVALS (not #name)' }),
      api_url: outboundUrl.default('https://slack.com/api'),
    })
    .optional(),
  webhooks: z
    .array(z.strictObject({ url: outboundUrl, secret_env: envName }))
    .max(16)
    .default([]),
  remind_before_expiry: remind.prefault('2h'),
});

type ParsedNotify = z.output<typeof notifySchema>;
type Issue = { code: 'custom'; path: PropertyKey[]; message: string; input: unknown };

/** Every approver must be a principal holding approvals:decide; two approvers cannot share a Slack user. */
export function checkNotify(
  n: ParsedNotify | undefined,
  principals: Record<string, { scopes: readonly string[] }>,
  push: (issue: Issue) => void,
): void {
  if (!n) return;
  const slackUsers = new Map<string, string>();
  for (const [name, a] of Object.entries(n.approvers)) {
    const at = ['notify', 'approvers', name];
    if (!Object.hasOwn(principals, name))
      push({ code: 'custom', path: at, message: 'must name a principal under principals', input: name });
    else if (!principals[name]!.scopes.includes('approvals:decide'))
      push({ code: 'custom', path: at, message: 'this principal lacks the approvals:decide scope', input: name });
    if (a.slack_user) {
      const other = slackUsers.get(a.slack_user);
      if (other)
        push({
          code: 'custom',
          path: [...at, 'slack_user'],
          message: `the same Slack user as approver ${other}`,
          input: a.slack_user,
        });
      slackUsers.set(a.slack_user, name);
    }
  }
}

export function toNotifyPolicy(n: ParsedNotify | undefined): NotifyPolicy | undefined {
  if (!n) return undefined;
  return {
    approvers: Object.entries(n.approvers).map(([principal, a]) => ({
      principal,
      email: a.email,
      slackUser: a.slack_user,
    })),
    mail: { enabled: n.mail.enabled },
    slack: n.slack && {
      botTokenEnv: n.slack.bot_token_env,
      signingSecretEnv: n.slack.signing_secret_env,
      channel: n.slack.channel,
      apiUrl: n.slack.api_url.replace(/\/+$/, ''),
    },
    webhooks: n.webhooks.map((w) => ({ url: w.url, secretEnv: w.secret_env })),
    remindBeforeExpiryMs: n.remind_before_expiry,
  };
}
