/** /slack/actions: Approve and Deny from Slack, signed, mapped, single-use, refusals audited. */
import { describe, expect, it } from 'vitest';
import { app, audit, base, hook, installRequest, nowS, SIGNING, slack, useNotifyFixture } from './fixture.js';

useNotifyFixture();

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
    const row = app.sqlite.approvals.get(id)!;
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
    expect(app.sqlite.approvals.get(id)!.status).toBe('succeeded');
    const installs = app.sqlite.db
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
        app.sqlite.db.prepare("SELECT count(*) AS n FROM install_jobs WHERE package = 'adobe-acrobat-pro'").get() as {
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
    expect(app.sqlite.approvals.get(id)!.status).toBe('pending');
    const refused = audit('approval.refused');
    // Only the signed click of the unmapped user is audited; unsigned requests are not (strangers cannot grow the chain).
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ actor: 'slack:U0STRANGER' });
    expect(refused[0]!.detail.reason).toBe('unmapped_slack_user');
    const told = () => slack.ephemeral.find((e) => e.text.startsWith(id));
    for (let i = 0; i < 100 && !told(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(told()!.text).toContain('not mapped to an itguard approver');
  });

  it("an approver cannot approve their own principal's request from Slack, and is not asked to", async () => {
    const { id } = await installRequest('adobe-photoshop', 'retouching for marketing', 'it-lead');
    await app.notifier!.pass();
    const blocks = JSON.stringify(slack.posts()[0]!.blocks);
    expect(blocks).toContain('<@U0APPROVER>');
    expect(blocks).not.toContain('<@U0LEAD>');
    expect(await app.embedded.deliveries.forUser('it-lead')).toHaveLength(0);
    const click = await slack.click(base, {
      secret: SIGNING,
      user: 'U0LEAD',
      requestId: id,
      action: 'approve',
      nowS: nowS(),
    });
    expect(click.status).toBe(200);
    expect(app.sqlite.approvals.get(id)!.status).toBe('pending');
    const [refusal] = audit('approval.refused');
    expect(refusal).toMatchObject({ actor: 'slack:it-lead', code: 'self_approval' });
    expect(refusal!.detail).toMatchObject({
      request_id: id,
      via: 'slack',
      slack_user: 'U0LEAD',
      reason: 'self_approval',
    });
  });

  it('Deny from Slack denies, gives the caps back, and the message says so', async () => {
    const { id } = await installRequest();
    const reserved = app.sqlite.db
      .prepare("SELECT coalesce(sum(used), 0) AS n FROM cap_usage WHERE rule = 'installs-per-day'")
      .get() as { n: number };
    expect(reserved.n).toBe(1);
    await app.notifier!.pass();
    const click = await slack.click(base, {
      secret: SIGNING,
      user: 'U0APPROVER',
      requestId: id,
      action: 'deny',
      nowS: nowS(),
    });
    expect(click.status).toBe(200);
    expect(app.sqlite.approvals.get(id)!.status).toBe('denied');
    expect(audit('approval.denied')[0]).toMatchObject({ actor: 'slack:it-approver' });
    const held = app.sqlite.db
      .prepare("SELECT coalesce(sum(used), 0) AS n FROM cap_usage WHERE rule = 'installs-per-day'")
      .get() as { n: number };
    expect(held.n).toBe(0);
    await app.notifier!.pass();
    const update = slack.calls.find((c) => c.method === 'chat.update')!;
    expect(update.text).toMatch(/^Denied: /);
    await app.executorPass();
    expect((app.sqlite.db.prepare('SELECT count(*) AS n FROM install_jobs').get() as { n: number }).n).toBe(0);
  });
});
