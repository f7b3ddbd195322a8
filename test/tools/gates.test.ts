import { setKillSwitch } from '../../src/guard/operator.js';
import {
  ElicitRequestSchema,
  type CallToolResult,
  type ElicitRequest,
  type ElicitResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { startVerifyListener } from '../../src/http/app.js';
import { decide } from '../../src/guard/decide.js';
import { codeOf, connect, testApp, textOf } from '../helpers/harness.js';
import { fakeWaitClock } from '../helpers/wait-clock.js';
import type { WaitClock } from '../../src/guard/deps.js';
import { demoPolicy, type PolicyBuilder } from '../helpers/policy-builder.js';

const reason = 'user asked in chat';
type Responder = (req: ElicitRequest['params']) => Promise<ElicitResult> | ElicitResult;

let apps: App[] = [];
let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers) await c();
  for (const a of apps) a.close();
  apps = [];
  closers = [];
});

/** An app on the demo policy with approvals.wait_seconds 1, then `edit`. */
function gatesApp(edit: (p: PolicyBuilder) => PolicyBuilder = (p) => p, now?: () => number, waitClock?: WaitClock) {
  const app = testApp({
    policy: edit(demoPolicy().approvals({ wait_seconds: 1 })).parse(),
    executorPollMs: 50,
    ...(now ? { now } : {}),
    ...(waitClock ? { waitClock } : {}),
  });
  apps.push(app);
  return app;
}

/** A client that declares the given elicitation modes and answers with `respond`. */
async function clientWith(app: App, modes: ('form' | 'url')[], respond?: Responder, principal = 'helpdesk-agent') {
  const elicitation = modes.length ? Object.fromEntries(modes.map((m) => [m, {}])) : undefined;
  const c = await connect(app, principal, elicitation ? { elicitation } : {});
  const asked: ElicitRequest['params'][] = [];
  if (elicitation) {
    c.client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params);
      return respond ? respond(req.params) : { action: 'decline' };
    });
  }
  return { ...c, asked };
}

const waitFor = async (pred: () => boolean | Promise<boolean>, ms = 3000) => {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};
const user = async (app: App, u: string) => (await app.embedded.directory.user(u))!;
const outboxCount = (app: App) =>
  (
    app.sqlite.db.prepare("SELECT count(*) AS n FROM outbox WHERE subject LIKE '%password reset%'").get() as {
      n: number;
    }
  ).n;
const auditText = (app: App) => JSON.stringify(app.sqlite.auditStore.tail(10_000));

describe('mfa tier: password_reset', () => {
  it('form-only client: asks for the target user’s code and succeeds only with the right one', async () => {
    const app = gatesApp();
    let code = '000000';
    const c = await clientWith(app, ['form'], () => ({ action: 'accept', content: { code } }));
    const wrong = await c.call('password_reset', { user: 'jdoe', reason });
    expect(codeOf(wrong)).toBe('APPROVAL_DENIED');
    expect((await user(app, 'jdoe')).mustChangePassword).toBe(false);
    expect(outboxCount(app)).toBe(0);
    expect(c.asked[0]!.message).toMatch(/jdoe must confirm/);

    code = app.sqlite.mfa.currentCode('jdoe')!;
    const ok = await c.call('password_reset', { user: 'jdoe', reason: 'second try' });
    expect(ok.isError).toBeFalsy();
    expect(textOf(ok)).toMatch(/reset link was sent to j\*\*\*@example\.com/);
    expect((await user(app, 'jdoe')).mustChangePassword).toBe(true);
    expect(outboxCount(app)).toBe(1);
    // No link, token or code in the result or the audit.
    const link = (app.sqlite.db.prepare('SELECT body FROM outbox').get() as { body: string }).body.match(
      /https?:\/\/\S+/,
    )![0];
    expect(JSON.stringify(ok)).not.toContain(link);
    expect(auditText(app)).not.toContain(link);
    expect(auditText(app)).not.toContain(code);
  });

  it('refuses an admin or service account before any prompt', async () => {
    const app = gatesApp();
    const c = await clientWith(app, ['form', 'url'], () => ({ action: 'accept', content: { code: '123456' } }));
    for (const target of ['admin.root', 'svc-backup']) {
      const r = await c.call('password_reset', { user: target, reason });
      expect(codeOf(r)).toBe('POLICY_DENIED');
    }
    expect(c.asked).toHaveLength(0);
    expect(app.sqlite.approvals.list(['pending'])).toHaveLength(0);
  });

  it('client without elicitation: a verification link; nothing is reset until the code is entered on that page', async () => {
    const app = gatesApp();
    const page = await startVerifyListener(app, 0);
    closers.push(page.close);
    const c = await clientWith(app, []);
    const r = await c.call('password_reset', { user: 'asmith', reason });
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    const meta = r._meta!['itguard/error'] as { request_id: string; verification_link: string };
    expect(meta.verification_link).toMatch(new RegExp(`^${page.url}/verify/`));
    expect(auditText(app)).not.toContain(meta.verification_link);
    // An executor pass (the only runner of a parked request) leaves it alone: it is not confirmed yet.
    await app.executorPass();
    expect(app.sqlite.approvals.get(meta.request_id)!.status).toBe('pending');
    expect((await user(app, 'asmith')).mustChangePassword).toBe(false);

    const form = await fetch(meta.verification_link);
    expect(await form.text()).toMatch(/Reset the password of asmith/);
    const post = (code: string) =>
      fetch(meta.verification_link, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `code=${code}&decision=confirm`,
      });
    const bad = await post('111111');
    expect(bad.status).toBe(400);
    expect((await user(app, 'asmith')).mustChangePassword).toBe(false);
    const good = await post(app.sqlite.mfa.currentCode('asmith')!);
    expect(await good.text()).toMatch(/Confirmed/);
    await waitFor(async () => (await user(app, 'asmith')).mustChangePassword);
    await waitFor(() => app.sqlite.approvals.get(meta.request_id)!.status === 'succeeded');
    const s = await c.call('request_status', { request_id: meta.request_id });
    expect((s.structuredContent as { status: string }).status).toBe('succeeded');
    expect(textOf(s)).toMatch(/\+1-\*\*\*|\*\*\*@/);
    // single use
    expect((await fetch(meta.verification_link)).status).toBe(404);
    expect(outboxCount(app)).toBe(1);
  });

  it('the verification link is mailed to the target too, and a retry that issues a new link mails the new one', async () => {
    const app = gatesApp();
    const page = await startVerifyListener(app, 0);
    closers.push(page.close);
    const c = await clientWith(app, []);
    const args = { user: 'dkim', reason, idempotency_key: 'reset-dkim-verify-1' };
    const mailedLinks = async () =>
      (await app.embedded.deliveries.forUser('dkim'))
        .filter((m) => m.subject.startsWith('Confirm an IT request'))
        .map((m) => /https?:\/\/\S+\/verify\/[A-Za-z0-9_-]+/.exec(m.body)![0]);
    const r1 = await c.call('password_reset', args);
    const m1 = r1._meta!['itguard/error'] as { verification_link: string; link_sent_to: string };
    expect(m1.link_sent_to).toBe('d***@example.com');
    expect(await mailedLinks()).toEqual([m1.verification_link]);
    // The retry is parked on the same request: a fresh link, mailed; the earlier one no longer works.
    const r2 = await c.call('password_reset', args);
    const m2 = r2._meta!['itguard/error'] as { verification_link: string; link_sent_to: string };
    expect(m2.verification_link).not.toBe(m1.verification_link);
    expect(m2.link_sent_to).toBe('d***@example.com');
    expect(await mailedLinks()).toEqual([m1.verification_link, m2.verification_link]);
    expect((await fetch(m1.verification_link)).status).toBe(404);
    expect((await fetch(m2.verification_link)).status).toBe(200);
    expect(auditText(app)).not.toContain(m2.verification_link.split('/verify/')[1]);
  });

  it('client without elicitation and mfa.out_of_band false → APPROVAL_UNAVAILABLE', async () => {
    const app = gatesApp((p) => p.mfa({ out_of_band: false }));
    const c = await clientWith(app, []);
    expect(codeOf(await c.call('password_reset', { user: 'jdoe', reason }))).toBe('APPROVAL_UNAVAILABLE');
  });

  it('form-only client with allow_form_code false falls back to the out-of-band link', async () => {
    const app = gatesApp((p) => p.mfa({ allow_form_code: false }));
    const c = await clientWith(app, ['form'], () => ({ action: 'accept', content: { code: '123456' } }));
    expect(codeOf(await c.call('password_reset', { user: 'jdoe', reason }))).toBe('APPROVAL_PENDING');
    expect(c.asked).toHaveLength(0);
  });

  it('URL-mode client (also when it has form): the page is opened, the user enters the code, the call completes', async () => {
    for (const modes of [['url'], ['form', 'url']] as ('form' | 'url')[][]) {
      const app = gatesApp((p) => p.approvals({ wait_seconds: 5 }));
      const page = await startVerifyListener(app, 0);
      closers.push(page.close);
      const c = await clientWith(app, modes, async (p) => {
        expect(p.mode).toBe('url');
        const url = (p as { url: string }).url;
        // the user opens the page and types their code, after the client accepted
        setTimeout(() => {
          void fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: `code=${app.sqlite.mfa.currentCode('jdoe')}&decision=confirm`,
          });
        }, 100);
        return { action: 'accept' };
      });
      const r = await c.call('password_reset', { user: 'jdoe', reason });
      expect(r.isError).toBeFalsy();
      expect(textOf(r)).toMatch(/reset link was sent/);
      expect(c.asked).toHaveLength(1);
      expect(outboxCount(app)).toBe(1);
    }
  });

  it('URL-mode decline denies the request', async () => {
    const app = gatesApp();
    const c = await clientWith(app, ['url'], () => ({ action: 'decline' }));
    const r = await c.call('password_reset', { user: 'jdoe', reason });
    expect(codeOf(r)).toBe('APPROVAL_DENIED');
    expect(app.sqlite.approvals.list(['denied'])).toHaveLength(1);
  });

  it('never accepts a code as a tool argument', async () => {
    const app = gatesApp();
    const c = await clientWith(app, []);
    const r = await c.call('password_reset', { user: 'jdoe', reason, code: app.sqlite.mfa.currentCode('jdoe') });
    expect(codeOf(r)).toBe('INVALID_ARGUMENT');
    expect(textOf(r)).toMatch(/code: unknown key/);
  });
});

describe('TOTP (injected clock)', () => {
  it('±1 step window, no replay, 5 failures lock for 15 minutes', () => {
    let now = Date.parse('2026-06-01T10:00:05Z');
    const app = gatesApp(undefined, () => now);
    const code = app.sqlite.mfa.currentCode('jdoe', now)!;
    expect(app.sqlite.mfa.verify('jdoe', code)).toEqual({ ok: true });
    expect(app.sqlite.mfa.verify('jdoe', code)).toMatchObject({ ok: false, why: 'replayed' });
    // a code from the previous step is still accepted once (±1), two steps back is not
    now += 30_000;
    const prev = app.sqlite.mfa.currentCode('jdoe', now - 30_000)!;
    expect(app.sqlite.mfa.verify('jdoe', prev)).toMatchObject({ ok: false, why: 'replayed' }); // that step was already used
    const cur = app.sqlite.mfa.currentCode('jdoe', now)!;
    now += 30_000; // cur is now one step old
    expect(app.sqlite.mfa.verify('jdoe', cur)).toEqual({ ok: true });
    const old = app.sqlite.mfa.currentCode('jdoe', now - 60_000)!;
    expect(app.sqlite.mfa.verify('asmith', app.sqlite.mfa.currentCode('asmith', now - 60_000)!)).toMatchObject({
      ok: false,
      why: 'wrong',
    });
    expect(old).toBeTruthy();
    // lockout
    for (let i = 0; i < 4; i++)
      expect(app.sqlite.mfa.verify('mgarcia', '000000')).toMatchObject({ ok: false, why: 'wrong', justLocked: false });
    expect(app.sqlite.mfa.verify('mgarcia', '000000')).toMatchObject({ ok: false, justLocked: true });
    expect(app.sqlite.mfa.verify('mgarcia', app.sqlite.mfa.currentCode('mgarcia', now)!)).toMatchObject({
      ok: false,
      why: 'locked',
    });
    now += 15 * 60_000 + 1;
    expect(app.sqlite.mfa.verify('mgarcia', app.sqlite.mfa.currentCode('mgarcia', now)!)).toEqual({ ok: true });
  });

  it('a locked factor refuses the reset without prompting, and the lockout raised an alarm', async () => {
    const app = gatesApp();
    const c = await clientWith(app, ['form'], () => ({ action: 'accept', content: { code: '000000' } }));
    for (let i = 0; i < 5; i++)
      await (
        await clientWith(app, ['form'], () => ({ action: 'accept', content: { code: '000000' } }))
      ).call('password_reset', { user: 'jdoe', reason: `try ${i}` });
    expect(app.sqlite.auditStore.tail(200).some((r) => r.event === 'alarm' && r.code === 'MFA_LOCKED')).toBe(true);
    const r = await c.call('password_reset', { user: 'jdoe', reason: 'again' });
    expect(codeOf(r)).toBe('APPROVAL_DENIED');
    expect(textOf(r)).toMatch(/locked/);
    expect(c.asked).toHaveLength(0);
  });
});

describe('approval tier: software_install', () => {
  const acrobat = { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'needs to edit signed PDFs' };
  const jobs = async (app: App) => (await app.embedded.deploy.jobs()).length;

  it('waits, returns APPROVAL_PENDING, then runs exactly once after approval even though the caller disconnected', async () => {
    // A 10-minute wait (the most policy allows) on an injected clock: it passes in the polls' own time; the progress says 600 s.
    const clock = fakeWaitClock();
    const app = gatesApp((p) => p.approvals({ wait_seconds: 600 }), undefined, clock);
    const c = await clientWith(app, ['form', 'url']);
    const progress: { progress: number; total?: number | undefined }[] = [];
    const r = (await c.client.callTool({ name: 'software_install', arguments: acrobat }, undefined, {
      onprogress: (p) => void progress.push(p),
      timeout: 600_000,
    })) as CallToolResult;
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    expect(clock.slept).toBe(600_000);
    expect(progress.length).toBeGreaterThan(100);
    expect(progress.at(-1)).toMatchObject({ total: 600 });
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    const row = app.sqlite.approvals.get(id)!;
    expect(row).toMatchObject({
      status: 'pending',
      principal: 'helpdesk-agent',
      target: 'jdoe',
      reason: acrobat.reason,
    });
    expect(JSON.parse(row.args)).toMatchObject({ device_id: 'LT-1001', version: '2025.001' });
    expect(JSON.parse(row.caps).map((x: { rule: string }) => x.rule)).toEqual([
      'installs-per-day',
      'license-spend-per-day',
    ]);
    await c.close();
    // separation of duties
    expect(
      await decide(app, {
        id,
        approve: true,
        actor: { name: 'console:helpdesk-agent', via: 'console', principal: 'helpdesk-agent' },
      }),
    ).toMatchObject({ ok: false, reason: 'self_approval' });
    expect(
      await decide(app, {
        id,
        approve: true,
        note: 'ok for finance',
        actor: { name: 'console:it-approver', via: 'console', principal: 'it-approver' },
      }),
    ).toMatchObject({ ok: true });
    await waitFor(() => app.sqlite.approvals.get(id)!.status === 'succeeded');
    expect(await jobs(app)).toBe(1);
    const c2 = await clientWith(app, []);
    const s = await c2.call('request_status', { request_id: id });
    expect((s.structuredContent as { status: string; decided_by: string }).status).toBe('succeeded');
    expect(textOf(s)).toMatch(/install job JOB-/);
    // a second approval decision is impossible; nothing runs twice
    expect(
      await decide(app, { id, approve: true, actor: { name: 'x', via: 'console', principal: 'it-approver' } }),
    ).toMatchObject({ ok: false, reason: 'not_pending' });
    // A full executor pass after the refused decision runs nothing again.
    await app.executorPass();
    expect(await jobs(app)).toBe(1);
  });

  it('approved while the call waits: the call itself runs it and returns the result', async () => {
    const app = gatesApp((p) => p.approvals({ wait_seconds: 5 }));
    const c = await clientWith(app, []);
    const pending = c.call('software_install', acrobat);
    await waitFor(() => app.sqlite.approvals.list(['pending']).length === 1);
    app.sqlite.approvals.decide(app.sqlite.approvals.list(['pending'])[0]!.id, true, { name: 'cli:alice' }, undefined);
    const r = await pending;
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toMatch(/Install job JOB-\w+: adobe-acrobat-pro 2025.001 on LT-1001 for jdoe is queued/);
    expect(await jobs(app)).toBe(1);
  });

  it('a denied request is refused and releases its caps; a retry with the same key replays the denial', async () => {
    const app = gatesApp();
    const c = await clientWith(app, []);
    const args = { ...acrobat, idempotency_key: 'install-deny-01' };
    const r = await c.call('software_install', args);
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    const spend = () => app.sqlite.caps.used(app.policy.tools.software_install.caps[1]!, '*', Date.now());
    expect(spend()).toBeCloseTo(239.88);
    const again = await c.call('software_install', args);
    expect((again._meta!['itguard/error'] as { request_id: string }).request_id).toBe(id);
    app.sqlite.approvals.decide(id, false, { name: 'cli:alice' }, 'use the free reader');
    expect(spend()).toBe(0);
    const third = await c.call('software_install', args);
    expect(codeOf(third)).toBe('APPROVAL_DENIED');
    expect(await jobs(app)).toBe(0);
  });

  it('a request expires after approvals.expire_hours and releases its caps', async () => {
    let now = Date.parse('2026-06-01T09:00:00Z');
    const app = gatesApp(undefined, () => now);
    const c = await clientWith(app, []);
    const r = await c.call('software_install', acrobat);
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    now += 24 * 3600_000 + 1;
    expect(app.sqlite.approvals.get(id)!.status).toBe('expired');
    expect(app.sqlite.approvals.decide(id, true, { name: 'cli:alice' }, undefined)).toMatchObject({
      ok: false,
      reason: 'expired',
    });
    const c2 = await clientWith(app, []);
    expect((await c2.call('request_status', { request_id: id })).structuredContent).toMatchObject({
      status: 'expired',
    });
  });

  it('another principal cannot read the request', async () => {
    const app = gatesApp((p) => p.principal('helpdesk-2', ['software:install', 'software:read']));
    const c = await clientWith(app, []);
    const r = await c.call('software_install', acrobat);
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    const other = await clientWith(app, [], undefined, 'helpdesk-2');
    expect(codeOf(await other.call('request_status', { request_id: id }))).toBe('NOT_FOUND');
  });

  it('only catalog ids, listed versions and the user’s own devices; cost caps and licence pools hold', async () => {
    const app = gatesApp((p) =>
      p.cap('software_install', { name: 'license-spend-per-day', window: 'day', measure: 'cost_usd', limit: 300 }),
    );
    const c = await clientWith(app, []);
    expect(textOf(await c.call('software_install', { ...acrobat, package: 'https://evil.example/setup.exe' }))).toMatch(
      /package: must be a catalog id/,
    );
    expect(textOf(await c.call('software_install', { ...acrobat, package: 'not-a-package' }))).toMatch(
      /not in the catalog/,
    );
    expect(textOf(await c.call('software_install', { ...acrobat, version: '1999.1' }))).toMatch(
      /version: adobe-acrobat-pro is available in/,
    );
    expect(codeOf(await c.call('software_install', { ...acrobat, device_id: 'MB-3001' }))).toBe('POLICY_DENIED');
    const c2 = await clientWith(app, []);
    const first = await c2.call('software_install', acrobat);
    expect(codeOf(first)).toBe('APPROVAL_PENDING');
    const second = await c2.call('software_install', { ...acrobat, user: 'asmith', device_id: 'MB-3001' });
    expect(codeOf(second)).toBe('CAP_EXCEEDED');
    expect(second._meta!['itguard/error']).toMatchObject({
      rule: 'license-spend-per-day',
      measure: 'cost_usd',
      limit: 300,
    });
    app.sqlite.db.prepare("UPDATE catalog SET license_pool = 0 WHERE id = 'microsoft-visio'").run();
    const pool = await c2.call('software_install', { user: 'jdoe', package: 'microsoft-visio', reason });
    expect(codeOf(pool)).toBe('POLICY_DENIED');
    expect(textOf(pool)).toMatch(/licence seats/);
  });
});

describe('confirm tier: self-service installs', () => {
  const slack = { user: 'jdoe', package: 'slack', reason: 'team chat' };

  it('form client: approve = true proceeds, decline and approve = false deny', async () => {
    const app = gatesApp();
    const yes = await clientWith(app, ['form'], () => ({ action: 'accept', content: { approve: true } }));
    const r = await yes.call('software_install', slack);
    expect(r.isError).toBeFalsy();
    expect(yes.asked[0]!.message).toMatch(/Install slack .* of jdoe[\s\S]*team chat/);
    const no = await clientWith(app, ['form'], () => ({ action: 'accept', content: { approve: false } }));
    expect(codeOf(await no.call('software_install', { ...slack, user: 'asmith', device_id: 'MB-3001' }))).toBe(
      'APPROVAL_DENIED',
    );
    const dec = await clientWith(app, ['form'], () => ({ action: 'decline' }));
    expect(codeOf(await dec.call('software_install', { ...slack, user: 'mgarcia', device_id: 'LT-1018' }))).toBe(
      'APPROVAL_DENIED',
    );
    expect(await app.embedded.deploy.jobs()).toHaveLength(1);
    // A decline is not replayed: the same call again, with or without a new key, asks the user again.
    const asked = dec.asked.length;
    await dec.call('software_install', { ...slack, user: 'mgarcia', device_id: 'LT-1018' });
    await dec.call('software_install', {
      ...slack,
      user: 'mgarcia',
      device_id: 'LT-1018',
      idempotency_key: 'again-0001',
    });
    expect(dec.asked.length).toBe(asked + 2);
  });

  it('a client without elicitation escalates to an approver, never waved through', async () => {
    const app = gatesApp();
    const c = await clientWith(app, []);
    const r = await c.call('software_install', slack);
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    expect(await app.embedded.deploy.jobs()).toHaveLength(0);
    expect(app.sqlite.approvals.list(['pending'])[0]!.tier).toBe('approval');
  });
});

describe('kill switch and waiting calls', () => {
  it('engaging the kill switch aborts a call waiting on approval within 1 s', async () => {
    const app = gatesApp((p) => p.approvals({ wait_seconds: 20 }));
    const c = await clientWith(app, []);
    const pending = c.call('software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason });
    await waitFor(() => app.sqlite.approvals.list(['pending']).length === 1);
    await setKillSwitch(app, true, 'drill', 'test');
    const t0 = Date.now();
    const r = await pending;
    expect(codeOf(r)).toBe('KILL_SWITCH_ENGAGED');
    expect(Date.now() - t0).toBeLessThan(1000);
    // an approval given while engaged does not run until resume
    const id = app.sqlite.approvals.list(['pending'])[0]!.id;
    app.sqlite.approvals.decide(id, true, { name: 'cli:alice' }, undefined);
    // An executor pass while engaged leaves the approved request waiting.
    await app.executorPass();
    expect(app.sqlite.approvals.get(id)!.status).toBe('approved');
    expect(await app.embedded.deploy.jobs()).toHaveLength(0);
    await setKillSwitch(app, false, 'over', 'test');
    await waitFor(async () => (await app.embedded.deploy.jobs()).length === 1);
  });
});

describe('the one-time reset link', () => {
  it('opens a page that sets the new password once; the link then stops working', async () => {
    const app = gatesApp();
    const page = await startVerifyListener(app, 0);
    closers.push(page.close);
    const c = await clientWith(app, ['form'], () => ({
      action: 'accept',
      content: { code: app.sqlite.mfa.currentCode('jdoe')! },
    }));
    expect((await c.call('password_reset', { user: 'jdoe', reason })).isError).toBeFalsy();
    const link = (app.sqlite.db.prepare('SELECT body FROM outbox').get() as { body: string }).body.match(
      /https?:\/\/\S+/,
    )![0];
    expect(link.startsWith(`${page.url}/reset/`)).toBe(true);
    expect(await (await fetch(link)).text()).toMatch(/Choose a new password for jdoe/);
    const post = (pw: string, confirm = pw) =>
      fetch(link, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ password: pw, confirm }).toString(),
      });
    expect((await post('short')).status).toBe(400);
    expect((await post('correct horse battery staple')).status).toBe(200);
    expect((await user(app, 'jdoe')).mustChangePassword).toBe(false);
    expect((await post('another long password')).status).toBe(404);
    expect(auditText(app)).not.toContain('correct horse');
  });
});

describe('shadow mode and guard_status under the kill switch', () => {
  it('shadow: evaluated and audited as if real, nothing executes, the result says what would have happened', async () => {
    const app = gatesApp((p) => p.tool('software_install', { mode: 'shadow' }));
    const c = await clientWith(app, []);
    const r = await c.call('software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason });
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toMatch(
      /\[shadow mode\] Would have done: Install adobe-acrobat-pro .* after an approver’s approval/,
    );
    expect(await app.embedded.deploy.jobs()).toHaveLength(0);
    expect(app.sqlite.approvals.list(['pending'])).toHaveLength(0);
    expect(app.sqlite.caps.used(app.policy.tools.software_install.caps[0]!, '*', Date.now())).toBe(0);
    const rows = app.sqlite.auditStore.byTrace(r._meta!['itguard/trace_id'] as string);
    expect(rows.map((x) => x.event)).toEqual(['call.intent', 'call.outcome']);
  });

  it('guard_status answers while the kill switch is engaged, so the planner can see why it is stopped', async () => {
    const app = gatesApp();
    const c = await clientWith(app, []);
    await setKillSwitch(app, true, 'incident 42', 'test');
    const r = await c.call('guard_status');
    expect(r.isError).toBeFalsy();
    expect(textOf(r)).toMatch(/Kill switch: ENGAGED \(incident 42\)/);
    expect(codeOf(await c.call('kb_search', { query: 'vpn' }))).toBe('KILL_SWITCH_ENGAGED');
  });
});
