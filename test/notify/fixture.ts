/**
 * The notification tests' fixture: a Slack Web API stand-in and a Standard Webhooks receiver over real loopback HTTP,
 * an app whose policy has `notify:` (mail through the embedded outbox), the HTTP app for /slack/actions, and an
 * injected clock (backoff, reminders and Slack's five-minute window are moved, never waited for).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { codeOf, connect, silent, testApp } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { SlackStandin } from '../helpers/slack-standin.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

export const SIGNING = 'slack-signing-secret-for-tests';
export const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const T0 = Date.parse('2026-12-06T10:00:00Z');
export let t = T0;
/** Moves the injected clock. */
export const advance = (ms: number): void => {
  t += ms;
};
export const nowS = () => Math.floor(t / 1000);

export let slack: SlackStandin;
export let hook: WebhookReceiver;
export let app: App;
export let http: RunningHttp;
export let base: string;

/** Registers the fixture's hooks in the calling test file. */
export function useNotifyFixture(): void {
  beforeAll(async () => {
    slack = await new SlackStandin('xoxb-test-token', ['C0APPROVALS']).start();
    hook = await new WebhookReceiver(WEBHOOK_SECRET, nowS).start();
  });
  afterAll(async () => {
    await slack.close();
    await hook.close();
  });

  beforeEach(async () => {
    t = T0;
    slack.calls.length = 0;
    slack.messages.clear();
    slack.ephemeral.length = 0;
    hook.deliveries.length = 0;
    hook.accepted.clear();
    const policy = demoPolicy()
      .approvals({ wait_seconds: 0 })
      .principal('it-lead', ['software:read', 'software:install', 'approvals:decide'])
      .set('notify', {
        approvers: {
          'it-approver': { email: 'it-approvals@example.com', slack_user: 'U0APPROVER' },
          'it-lead': { email: 'lead@example.com', slack_user: 'U0LEAD' },
        },
        mail: { enabled: true },
        slack: {
          bot_token_env: 'SLACK_BOT_TOKEN',
          signing_secret_env: 'SLACK_SIGNING_SECRET',
          channel: 'C0APPROVALS',
          api_url: slack.apiUrl,
        },
        webhooks: [{ url: hook.url, secret_env: 'HOOK_SECRET' }],
        remind_before_expiry: '2h',
      })
      .parse();
    app = testApp({
      policy,
      now: () => t,
      log: silent,
      notifyPollMs: 3600_000,
      executorPollMs: 3600_000,
      env: { SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SIGNING, HOOK_SECRET: WEBHOOK_SECRET },
    });
    http = await startHttp(app, { host: '127.0.0.1', port: 0 });
    base = http.url;
  });
  afterEach(async () => {
    await http.close();
    app.close();
  });
}

export async function installRequest(
  pkg = 'adobe-acrobat-pro',
  reason = 'needs to sign contracts <!channel>',
  principal = 'helpdesk-agent',
) {
  const c = await connect(app, principal);
  const t0 = performance.now();
  const r = await c.call('software_install', { user: 'jdoe', package: pkg, reason });
  const ms = performance.now() - t0;
  await c.close();
  expect(codeOf(r)).toBe('APPROVAL_PENDING');
  return { id: (r._meta!['itguard/error'] as { request_id: string }).request_id, ms };
}

export const audit = (event: string) =>
  app.sqlite.auditStore
    .tail(200)
    .filter((r) => r.event === event)
    .map((r) => ({ ...r, detail: JSON.parse(r.detail ?? '{}') as Record<string, unknown> }));
