/**
 * Approver notifications: who is told on which channel and what they read; delivery as durable jobs, retried with
 * backoff, off the tool call's path; reminders; restarts and two processes on one database.
 */
import { describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { listNotifications, notificationView, retryNotification } from '../../src/notify/admin.js';
import { codeOf, connect, silent, testApp } from '../helpers/harness.js';
import {
  advance,
  app,
  audit,
  base,
  hook,
  installRequest,
  nowS,
  SIGNING,
  slack,
  t,
  useNotifyFixture,
  WEBHOOK_SECRET,
} from './fixture.js';

useNotifyFixture();

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
    expect(blocks).toMatch(/license-spend-per-day \+\$\d[\d,.]* \(\$[\d,.]+ of \$2,000\.00 spent\)/);
    const actions = post!.blocks.find((b) => b.type === 'actions')!.elements!;
    expect(actions.map((a) => a.action_id)).toEqual(['itguard_approve', 'itguard_deny', 'itguard_open']);
    expect(actions[0]!.value).toBe(id);
    expect(actions[2]!.url).toBe(`${base}/console#${id}`);

    expect(hook.accepted.size).toBe(1);
    const [d] = [...hook.accepted.values()];
    expect(d!.body.type).toBe('approval.requested');
    expect(d!.body.data).toMatchObject({ request_id: id, agent: 'helpdesk-agent', tool: 'software_install' });

    const mails = await app.embedded.deliveries.forUser('it-approver');
    expect(mails).toHaveLength(1);
    expect(mails[0]!.address).toBe('it-approvals@example.com');
    expect(mails[0]!.subject).toContain(id);
    expect(mails[0]!.body).toContain('needs to sign contracts');
    expect(mails[0]!.body).toContain(`${base}/console#${id}`);

    const jobs = await listNotifications(app.store.notify, { requestId: id });
    expect(jobs.map((j) => `${j.channel}:${j.recipient}:${j.status}`).sort()).toEqual([
      'mail:it-approver:sent',
      'mail:it-lead:sent',
      `slack:C0APPROVALS:sent`,
      `webhook:${jobs.find((j) => j.channel === 'webhook')!.recipient}:sent`,
    ]);
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
    expect(await app.embedded.deliveries.forUser('it-approver')).toHaveLength(0);
    const [d] = [...hook.accepted.values()];
    expect(d!.body.type).toBe('approval.mfa_pending');
    const token = meta.verification_link!.split('/verify/')[1]!;
    const stored = JSON.stringify(app.sqlite.notifyStore.jobsFor(meta.request_id));
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
    expect(app.sqlite.approvals.get(meta.request_id)!.status).toBe('pending');
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
    const by = (ch: string) =>
      app.sqlite.notifyStore
        .list({ requestId: id })
        .map(notificationView)
        .find((j) => j.channel === ch)!;
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
    advance(15_000);
    await app.notifier!.pass();
    expect(by('slack')).toMatchObject({ status: 'sent', attempts: 2 });
    expect(by('webhook')).toMatchObject({ status: 'pending', attempts: 2 });
    expect(by('webhook').next_try_at).toBe(new Date(t + 30_000).toISOString());
    advance(30_000);
    await app.notifier!.pass();
    expect(by('webhook')).toMatchObject({ status: 'sent', attempts: 3 });
    // One delivery reached the receiver, under the id every attempt carried.
    expect(hook.accepted.size).toBe(1);
    expect([...hook.accepted.keys()][0]).toBe(by('webhook').id);
    expect(slack.posts()).toHaveLength(1);
  });

  it('notices survive a restart: enqueued with the request, sent by the next process on the same database', async () => {
    const { tempDir } = await import('../helpers/harness.js');
    const tmp = tempDir();
    const opts = {
      dbPath: `${tmp.dir}/restart.db`,
      policy: app.policy,
      now: () => t,
      log: silent,
      notifyPollMs: 3600_000,
      executorPollMs: 3600_000,
      env: { SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SIGNING, HOOK_SECRET: WEBHOOK_SECRET },
    };
    const first = testApp(opts);
    first.notifier!.stop(); // this process dies right after the request commits: its worker never sends
    const c = await connect(first);
    const r = await c.call('software_install', { user: 'jdoe', package: 'microsoft-project', reason: 'planning' });
    await c.close();
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    first.close();
    expect(slack.posts()).toHaveLength(0);
    const second = testApp(opts);
    try {
      await second.notifier!.pass();
      expect(slack.posts().map((p) => p.text)).toEqual([expect.stringContaining(id)]);
      expect((await listNotifications(second.store.notify, { requestId: id })).every((j) => j.status === 'sent')).toBe(
        true,
      );
    } finally {
      second.close();
      tmp.cleanup();
    }
  });

  it('two processes on one database send each notice once', async () => {
    const { tempDir } = await import('../helpers/harness.js');
    const tmp = tempDir();
    const opts = {
      dbPath: `${tmp.dir}/two.db`,
      policy: app.policy,
      now: () => t,
      log: silent,
      notifyPollMs: 3600_000,
      executorPollMs: 3600_000,
      env: { SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SIGNING, HOOK_SECRET: WEBHOOK_SECRET },
    };
    const a = testApp(opts);
    const b = testApp(opts);
    try {
      for (const x of [a, b]) x.notifier!.stop();
      const ids: string[] = [];
      for (const [x, pkg] of [
        [a, 'microsoft-project'],
        [b, 'microsoft-visio'],
        [a, 'adobe-photoshop'],
      ] as const) {
        const c = await connect(x);
        const r = await c.call('software_install', { user: 'jdoe', package: pkg, reason: 'two processes' });
        await c.close();
        ids.push((r._meta!['itguard/error'] as { request_id: string }).request_id);
      }
      // Stopped notifiers send nothing; fresh ones (as after a restart) race for the same jobs.
      const { Notifier } = await import('../../src/notify/notifier.js');
      const worker = (x: App) =>
        new Notifier({
          policy: x.policy.notify!,
          store: x.store.notify,
          runner: x.audit,
          approvals: x.store.approvals,
          outbox: () => x.backends.outbox,
          log: silent,
          now: () => t,
          links: x.links,
          env: opts.env,
        });
      await Promise.all([worker(a).pass(), worker(b).pass(), worker(a).pass(), worker(b).pass()]);
      expect(
        slack
          .posts()
          .map((p) => p.text.match(/REQ-\w+/)![0])
          .sort(),
      ).toEqual([...ids].sort());
      expect(hook.accepted.size).toBe(3);
      expect(hook.deliveries).toHaveLength(3);
    } finally {
      a.close();
      b.close();
      tmp.cleanup();
    }
  });

  it('a permanent refusal fails at once; an operator retry sends it', async () => {
    hook.failNext(1, 410);
    slack.failNext(1, 'channel_not_found');
    const { id } = await installRequest();
    await app.notifier!.pass();
    const jobs = await listNotifications(app.store.notify, { requestId: id });
    const hookJob = jobs.find((j) => j.channel === 'webhook')!;
    expect(hookJob).toMatchObject({ status: 'failed', attempts: 1, next_try_at: null });
    expect(jobs.find((j) => j.channel === 'slack')).toMatchObject({
      status: 'failed',
      last_error: 'slack chat.postMessage: channel_not_found',
    });
    expect(await retryNotification(app, 'NTF-NOPE')).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    const sentJob = jobs.find((j) => j.channel === 'mail')!;
    expect(await retryNotification(app, sentJob.id)).toMatchObject({ ok: false, code: 'NOT_FAILED' });
    expect(await retryNotification(app, hookJob.id)).toMatchObject({
      ok: true,
      notification: { status: 'pending', attempts: 0 },
    });
    await app.notifier!.pass();
    expect(app.sqlite.notifyStore.get(hookJob.id)).toMatchObject({ status: 'sent', attempts: 1 });
    expect(hook.accepted.size).toBe(1);
  });

  it('a retryable failure stops after the last attempt', async () => {
    hook.failNext(10, 500);
    const { id } = await installRequest();
    for (let i = 0; i < 10; i++) {
      await app.notifier!.pass();
      advance(3600_000 + 60_000); // past the longest backoff (1 h)
    }
    const j = (await listNotifications(app.store.notify, { requestId: id })).find((x) => x.channel === 'webhook')!;
    expect(j).toMatchObject({ status: 'failed', attempts: 10, last_error: 'webhook: HTTP 500' });
  });

  it('reminds once before expiry, and a decided request gets no reminder', async () => {
    const a = await installRequest('adobe-acrobat-pro');
    const b = await installRequest('microsoft-visio', 'diagrams for the network team');
    await app.notifier!.pass();
    app.sqlite.approvals.decide(b.id, false, { name: 'cli:ops' }, undefined);
    advance(21 * 3600_000); // 3 h before expiry: not yet
    await app.notifier!.pass();
    expect(slack.posts().filter((p) => p.text.startsWith('Reminder'))).toHaveLength(0);
    advance(3600_000 + 60_000); // inside the last 2 h
    await app.notifier!.pass();
    await app.notifier!.pass();
    const reminders = slack.posts().filter((p) => p.text.startsWith('Reminder'));
    expect(reminders).toHaveLength(1);
    expect(reminders[0]!.text).toContain(a.id);
    expect(
      (await app.embedded.deliveries.forUser('it-approver')).filter((m) => m.subject.startsWith('Reminder')),
    ).toHaveLength(1);
    expect([...hook.accepted.values()].filter((d) => d.body.type === 'approval.reminder')).toHaveLength(1);
    // Once it expires, both of its Slack messages say so, without buttons.
    advance(2 * 3600_000);
    await app.notifier!.pass();
    const posts = slack.posts().filter((p) => p.text.includes(a.id));
    expect(posts).toHaveLength(2);
    for (const p of posts) {
      const now = slack.messages.get(`${p.channel}:${p.ts}`)!;
      expect(now.text).toMatch(/^Expired without a decision: /);
      expect(JSON.stringify(now.blocks)).not.toContain('itguard_approve');
    }
  });
});
