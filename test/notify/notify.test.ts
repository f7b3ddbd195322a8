/**
 * Approver notifications in process, against a Slack Web API stand-in and a Standard Webhooks receiver over real
 * loopback HTTP, mail through the embedded outbox, /slack/actions through the real HTTP app, and an injected clock
 * (backoff, reminders and Slack's five-minute window are moved, never waited for).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import { listNotifications, retryNotification } from '../../src/notify/admin.js';
import { codeOf, connect, policyWith, silent, testApp } from '../helpers/harness.js';
import { SlackStandin } from '../helpers/slack-standin.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const SIGNING = 'slack-signing-secret-for-tests';
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const T0 = Date.parse('2026-12-06T10:00:00Z');
let t = T0;
const nowS = () => Math.floor(t / 1000);

let slack: SlackStandin;
let hook: WebhookReceiver;
let app: App;
let http: RunningHttp;
let base: string;

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
  const policy = policyWith(
    (y) =>
      y.replace('wait_seconds: 30', 'wait_seconds: 0') +
      `notify:
  approvers:
    it-approver: { email: it-approvals@example.com, slack_user: U0APPROVER }
  mail: { enabled: true }
  slack: { bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET, channel: C0APPROVALS, api_url: "${slack.apiUrl}" }
  webhooks: [{ url: "${hook.url}", secret_env: HOOK_SECRET }]
  remind_before_expiry: 2h
`,
  );
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

async function installRequest(pkg = 'adobe-acrobat-pro', reason = 'needs to sign contracts <!channel>') {
  const c = await connect(app);
  const t0 = performance.now();
  const r = await c.call('software_install', { user: 'jdoe', package: pkg, reason });
  const ms = performance.now() - t0;
  await c.close();
  expect(codeOf(r)).toBe('APPROVAL_PENDING');
  return { id: (r._meta!['itguard/error'] as { request_id: string }).request_id, ms };
}

const audit = (event: string) =>
  app.auditStore
    .tail(200)
    .filter((r) => r.event === event)
    .map((r) => ({ ...r, detail: JSON.parse(r.detail ?? '{}') as Record<string, unknown> }));

describe('a request that needs an approver', () => {
  it('tells every channel: Slack with buttons, a mail to the approver, a signed webhook; no secret anywhere', async () => {
    const { id } = await installRequest();
    await app.notifier!.pass();
    const [post] = slack.posts();
    expect(slack.posts()).toHaveLength(1);
    expect(post!.text).toContain(id);
    const blocks = JSON.stringify(post!.blocks);
    expect(blocks).toContain('<@U0APPROVER>');
    expect(blocks).toContain('helpdesk-agent');
    // The agent's reason is escaped: it cannot ping the channel.
    expect(blocks).toContain('&lt;!channel&gt;');
    expect(blocks).not.toContain('<!channel>');
    expect(blocks).toMatch(/license-spend-per-day: \$\d/);
    const actions = post!.blocks.find((b) => b.type === 'actions')!.elements!;
    expect(actions.map((a) => a.action_id)).toEqual(['itguard_approve', 'itguard_deny', 'itguard_open']);
    expect(actions[0]!.value).toBe(id);
    expect(actions[2]!.url).toBe(`${base}/console#${id}`);

    expect(hook.accepted.size).toBe(1);
    const [d] = [...hook.accepted.values()];
    expect(d!.body.type).toBe('approval.requested');
    expect(d!.body.data).toMatchObject({ request_id: id, agent: 'helpdesk-agent', tool: 'software_install' });

    const mails = app.embedded.deliveries.forUser('it-approver');
    expect(mails).toHaveLength(1);
    expect(mails[0]!.address).toBe('it-approvals@example.com');
    expect(mails[0]!.subject).toContain(id);
    expect(mails[0]!.body).toContain('needs to sign contracts');
    expect(mails[0]!.body).toContain(`${base}/console#${id}`);

    const jobs = listNotifications(app.notifyStore, { requestId: id });
    expect(jobs.map((j) => `${j.channel}:${j.status}`).sort()).toEqual(['mail:sent', 'slack:sent', 'webhook:sent']);
    expect(jobs.every((j) => j.attempts === 1 && /^\d{4}-\d\d-\d\dT/.test(j.created_at))).toBe(true);
  });

  it('an mfa request tells the webhooks only, and no notice carries the verification link', async () => {
    const c = await connect(app);
    const r = await c.call('password_reset', { user: 'jdoe', reason: 'locked out after holiday' });
    await c.close();
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    const meta = r._meta!['itguard/error'] as { request_id: string; verification_link?: string };
    expect(meta.verification_link).toMatch(/\/verify\//);
    await app.notifier!.pass();
    expect(slack.posts()).toHaveLength(0);
    expect(app.embedded.deliveries.forUser('it-approver')).toHaveLength(0);
    const [d] = [...hook.accepted.values()];
    expect(d!.body.type).toBe('approval.mfa_pending');
    const token = meta.verification_link!.split('/verify/')[1]!;
    const stored = JSON.stringify(app.notifyStore.jobsFor(meta.request_id));
    expect(stored).not.toContain(token);
    expect(d!.raw).not.toContain(token);
    // A signed Approve click cannot stand in for the target user's code.
    const click = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: meta.request_id,
      action: 'approve',
      nowS: nowS(),
    });
    expect(click.status).toBe(200);
    expect(app.approvals.get(meta.request_id)!.status).toBe('pending');
    expect(audit('approval.refused')[0]!.detail.reason).toBe('wrong_tier');
  });
});

describe('delivery is durable and retried, never on the call path', () => {
  it('channels that are down neither delay nor fail the call; failures retry with backoff until sent', async () => {
    slack.failNext(1, 'http500');
    hook.failNext(2, 503);
    const { id, ms } = await installRequest();
    expect(ms).toBeLessThan(2000);
    await app.notifier!.pass();
    const by = (ch: string) => listNotifications(app.notifyStore, { requestId: id }).find((j) => j.channel === ch)!;
    expect(by('slack')).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'slack chat.postMessage: HTTP 500',
    });
    expect(by('slack').next_try_at).toBe(new Date(t + 15_000).toISOString());
    expect(by('webhook')).toMatchObject({ status: 'pending', attempts: 1 });
    expect(by('mail').status).toBe('sent');

    await app.notifier!.pass(); // nothing is due before its time
    expect(by('slack').attempts).toBe(1);
    t += 15_000;
    await app.notifier!.pass();
    expect(by('slack')).toMatchObject({ status: 'sent', attempts: 2 });
    expect(by('webhook')).toMatchObject({ status: 'pending', attempts: 2 });
    expect(by('webhook').next_try_at).toBe(new Date(t + 30_000).toISOString());
    t += 30_000;
    await app.notifier!.pass();
    expect(by('webhook')).toMatchObject({ status: 'sent', attempts: 3 });
    // One delivery reached the receiver, under the id every attempt carried.
    expect(hook.accepted.size).toBe(1);
    expect([...hook.accepted.keys()][0]).toBe(by('webhook').id);
    expect(slack.posts()).toHaveLength(1);
  });

  it('a permanent refusal fails at once; an operator retry sends it', async () => {
    hook.failNext(1, 410);
    slack.failNext(1, 'channel_not_found');
    const { id } = await installRequest();
    await app.notifier!.pass();
    const jobs = listNotifications(app.notifyStore, { requestId: id });
    const hookJob = jobs.find((j) => j.channel === 'webhook')!;
    expect(hookJob).toMatchObject({ status: 'failed', attempts: 1, next_try_at: null });
    expect(jobs.find((j) => j.channel === 'slack')).toMatchObject({
      status: 'failed',
      last_error: 'slack chat.postMessage: channel_not_found',
    });
    expect(retryNotification(app.notifyStore, 'NTF-NOPE')).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    const sentJob = jobs.find((j) => j.channel === 'mail')!;
    expect(retryNotification(app.notifyStore, sentJob.id)).toMatchObject({ ok: false, code: 'NOT_FAILED' });
    expect(retryNotification(app.notifyStore, hookJob.id)).toMatchObject({
      ok: true,
      notification: { status: 'pending', attempts: 0 },
    });
    await app.notifier!.pass();
    expect(app.notifyStore.get(hookJob.id)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(hook.accepted.size).toBe(1);
  });

  it('a retryable failure stops after the last attempt', async () => {
    hook.failNext(10, 500);
    const { id } = await installRequest();
    for (let i = 0; i < 10; i++) {
      await app.notifier!.pass();
      t += 3600_000 + 60_000; // past the longest backoff (1 h)
    }
    const j = listNotifications(app.notifyStore, { requestId: id }).find((x) => x.channel === 'webhook')!;
    expect(j).toMatchObject({ status: 'failed', attempts: 10, last_error: 'webhook: HTTP 500' });
  });

  it('reminds once before expiry, and a decided request gets no reminder', async () => {
    const a = await installRequest('adobe-acrobat-pro');
    const b = await installRequest('microsoft-visio', 'diagrams for the network team');
    await app.notifier!.pass();
    app.approvals.decide(b.id, false, { name: 'cli:ops' }, undefined);
    t += 21 * 3600_000; // 3 h before expiry: not yet
    await app.notifier!.pass();
    expect(slack.posts().filter((p) => p.text.startsWith('Reminder'))).toHaveLength(0);
    t += 3600_000 + 60_000; // inside the last 2 h
    await app.notifier!.pass();
    await app.notifier!.pass();
    const reminders = slack.posts().filter((p) => p.text.startsWith('Reminder'));
    expect(reminders).toHaveLength(1);
    expect(reminders[0]!.text).toContain(a.id);
    expect(app.embedded.deliveries.forUser('it-approver').filter((m) => m.subject.startsWith('Reminder'))).toHaveLength(
      1,
    );
    expect([...hook.accepted.values()].filter((d) => d.body.type === 'approval.reminder')).toHaveLength(1);
  });
});

describe('Approve and Deny from Slack', () => {
  it('a signed click of a mapped approver approves within three seconds; the message is updated; the install runs once', async () => {
    const { id } = await installRequest();
    await app.notifier!.pass();
    const click = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'approve',
      nowS: nowS(),
    });
    expect(click.status).toBe(200);
    expect(click.ms).toBeLessThan(3000);
    const row = app.approvals.get(id)!;
    expect(row).toMatchObject({ status: 'approved', decided_by: 'slack:it-approver' });
    const [approved] = audit('approval.approved');
    expect(approved).toMatchObject({ actor: 'slack:it-approver', tool: 'software_install' });
    expect(approved!.detail).toMatchObject({ request_id: id, via: 'slack', slack_user: 'U0APPROVER' });

    await app.notifier!.pass();
    const updates = slack.calls.filter((c) => c.method === 'chat.update');
    expect(updates).toHaveLength(1);
    expect(updates[0]!.ts).toBe(slack.posts()[0]!.ts);
    expect(updates[0]!.text).toMatch(/^Approved: /);
    expect(JSON.stringify(updates[0]!.blocks)).not.toContain('itguard_approve');
    expect([...hook.accepted.values()].map((d) => d.body.type)).toEqual(['approval.requested', 'approval.decided']);

    await app.executorPass();
    expect(app.approvals.get(id)!.status).toBe('succeeded');
    const installs = app.db
      .prepare("SELECT count(*) AS n FROM install_jobs WHERE package = 'adobe-acrobat-pro'")
      .get() as { n: number };
    expect(installs.n).toBe(1);

    // The same signed request again (a replay, or Slack retrying): the record's state refuses it, and that is audited.
    const again = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'approve',
      nowS: nowS(),
      body: click.body,
    });
    expect(again.status).toBe(200);
    expect(audit('approval.refused').map((r) => r.detail.reason)).toEqual(['not_pending']);
    await app.executorPass();
    expect(
      (
        app.db.prepare("SELECT count(*) AS n FROM install_jobs WHERE package = 'adobe-acrobat-pro'").get() as {
          n: number;
        }
      ).n,
    ).toBe(1);
  });

  it('forged and stale callbacks are refused with 401 before anything is read; an unmapped user decides nothing', async () => {
    const { id } = await installRequest();
    const forged = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'approve',
      nowS: nowS(),
      forge: true,
    });
    expect(forged.status).toBe(401);
    const stale = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'approve',
      nowS: nowS() - 301,
    });
    expect(stale.status).toBe(401);
    expect(stale.text).toContain('stale');
    const future = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'approve',
      nowS: nowS() + 301,
    });
    expect(future.status).toBe(401);
    // A body altered after signing fails too.
    const signed = await slack.click(base, {
      secret: SIGNING,
      user: 'U0STRANGER',
      requestId: id,
      action: 'approve',
      nowS: nowS(),
    });
    const tampered = await fetch(`${base}/slack/actions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(nowS()),
        'x-slack-signature': 'v0=' + '0'.repeat(64),
      },
      body: signed.body.replace('U0STRANGER', 'U0APPROVER'),
    });
    expect(tampered.status).toBe(401);
    expect(signed.status).toBe(200);
    expect(app.approvals.get(id)!.status).toBe('pending');
    const refused = audit('approval.refused');
    // Only the signed click of the unmapped user is audited; unsigned requests are not (strangers cannot grow the chain).
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ actor: 'slack:U0STRANGER' });
    expect(refused[0]!.detail.reason).toBe('unmapped_slack_user');
    const told = () => slack.ephemeral.find((e) => e.text.startsWith(id));
    for (let i = 0; i < 100 && !told(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(told()!.text).toContain('not mapped to an itguard approver');
  });

  it('Deny from Slack denies, gives the caps back, and the message says so', async () => {
    const { id } = await installRequest();
    await app.notifier!.pass();
    const click = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'deny',
      nowS: nowS(),
    });
    expect(click.status).toBe(200);
    expect(app.approvals.get(id)!.status).toBe('denied');
    expect(audit('approval.denied')[0]).toMatchObject({ actor: 'slack:it-approver' });
    await app.notifier!.pass();
    const update = slack.calls.find((c) => c.method === 'chat.update')!;
    expect(update.text).toMatch(/^Denied: /);
    await app.executorPass();
    expect((app.db.prepare('SELECT count(*) AS n FROM install_jobs').get() as { n: number }).n).toBe(0);
  });
});
