/**
 * The approver console in headless Chromium (playwright-core) against an in-process app. The router is mounted on a
 * small local express server so this test does not depend on how startHttp wires it.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { consoleRouter } from '../../src/http/console.js';
import type { NewApproval } from '../../src/store/sqlite/approvals-store.js';
import { policyWith, silent, tempDir } from '../helpers/harness.js';

const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let tmp: ReturnType<typeof tempDir>;
let app: App;
let srv: Server;
let base: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let approverToken: string;
let agentToken: string;

function request(over: Partial<NewApproval> = {}) {
  return app.sqlite.approvals.create({
    tier: 'approval',
    principal: 'helpdesk-agent',
    sessionId: 's1',
    tool: 'software_install',
    args: {
      user: 'jdoe',
      package: 'adobe-acrobat-pro',
      version: '2025.001',
      device_id: 'LT-1001',
      reason: 'needs to edit PDFs',
    },
    argsSha: 'x'.repeat(64),
    summary: 'Install Adobe Acrobat Pro 2025.001 on LT-1001 for jdoe',
    reason: 'needs to edit PDFs',
    target: 'jdoe',
    caps: [{ rule: 'installs-per-day', measure: 'calls', amount: 1, used: 0, limit: 50 }],
    capItems: [],
    idemKey: undefined,
    requestId: undefined,
    traceId: 't1',
    ttlMs: 3600_000,
    withVerifyLink: false,
    ...over,
  }).row;
}

async function signIn(p: Page, token: string) {
  await p.goto(`${base}/console`);
  await p.getByTestId('token-input').fill(token);
  const [resp] = await Promise.all([
    p.waitForResponse((r) => r.url().endsWith('/console/login')),
    p.getByTestId('sign-in').click(),
  ]);
  await p.waitForLoadState();
  return resp;
}

/** A session cookie obtained without the browser, for hand-made requests. */
async function fetchSession(token: string): Promise<string> {
  const r = await fetch(`${base}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  expect(r.status).toBe(303);
  return r.headers.getSetCookie()[0]!.split(';')[0]!;
}

beforeAll(async () => {
  tmp = tempDir();
  // The background executor would run an approved request at once; held off so the test sees the decision itself.
  app = openApp({ dbPath: join(tmp.dir, 'c.db'), policy: policyWith(), log: silent, executorPollMs: 3_600_000 });
  approverToken = app.sqlite.tokens.create('it-approver', 'test').token;
  agentToken = app.sqlite.tokens.create('helpdesk-agent', 'test').token;
  const web = express();
  web.use('/console', consoleRouter(app));
  srv = web.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => srv.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (srv ? srv.close(() => resolve()) : resolve()));
  app?.close();
  tmp?.cleanup();
});
beforeEach(async () => {
  context = await browser.newContext();
  page = await context.newPage();
});
afterEach(async () => {
  await context.close();
});

describe('approver console', () => {
  it('refuses to sign in a token whose principal is not an approver, and never echoes the token', async () => {
    const resp = await signIn(page, agentToken);
    expect(resp.status()).toBe(401);
    await expect(page.content()).resolves.toContain('not an approver');
    expect(await page.content()).not.toContain(agentToken);
    expect(await context.cookies()).toEqual([]);
    expect(await page.getByTestId('token-input').count()).toBe(1);
    expect(await page.getByTestId('principal').count()).toBe(0);
    // An unknown token gets the same answer.
    expect((await signIn(page, 'itg_nope_nope')).status()).toBe(401);
  });

  it('signs an approver in with a strict cookie, shows the pending request in full and approves it with a note', async () => {
    const req = request();
    const resp = await signIn(page, approverToken);
    expect(resp.status()).toBe(303);
    const cookie = (await context.cookies()).find((c) => c.name === 'itguard_console')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
    expect(cookie.value).not.toContain(approverToken);
    await expect(page.getByTestId('principal').textContent()).resolves.toBe('it-approver');

    const headers = (await page.reload())!.headers();
    expect(headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(headers).toMatchObject({
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
      'referrer-policy': 'same-origin', // not no-referrer: that makes Chromium send Origin: null on same-origin POSTs, which the Origin check refuses
    });

    const row = page.getByTestId(`pending-${req.id}`);
    await expect(row.getByTestId('requester').textContent()).resolves.toBe('helpdesk-agent');
    await expect(row.getByTestId('target').textContent()).resolves.toBe('jdoe');
    await expect(row.getByTestId('summary').textContent()).resolves.toContain(
      'Install Adobe Acrobat Pro 2025.001 on LT-1001 for jdoe',
    );
    await expect(row.getByTestId('reason').textContent()).resolves.toBe('needs to edit PDFs');
    await expect(row.getByTestId('caps').textContent()).resolves.toBe('installs-per-day +1 (0/50)');

    await page.getByTestId(`approve-note-${req.id}`).fill('licence <ok> for finance');
    await page.getByTestId(`approve-${req.id}`).click();
    await page.waitForLoadState();
    await expect(page.getByTestId('flash').textContent()).resolves.toContain(`Approved ${req.id}`);
    const after = app.sqlite.approvals.get(req.id)!;
    expect(after).toMatchObject({
      status: 'approved',
      decided_by: 'console:it-approver',
      note: 'licence <ok> for finance',
    });
    expect(await page.getByTestId(`pending-${req.id}`).count()).toBe(0);
    const recent = page.getByTestId(`recent-${req.id}`);
    await expect(recent.getByTestId('status').textContent()).resolves.toBe('approved');
    await expect(recent.getByTestId('note').textContent()).resolves.toBe('licence <ok> for finance'); // escaped, shown as text
    const audit = app.sqlite.auditStore.tail(10);
    expect(audit.some((a) => a.event === 'console.login' && a.actor === 'it-approver')).toBe(true);
    expect(audit.find((a) => a.event === 'approval.approved')).toMatchObject({ actor: 'console:it-approver' });
    expect(JSON.parse(audit.find((a) => a.event === 'approval.approved')!.detail!)).toMatchObject({
      request_id: req.id,
      note: 'licence <ok> for finance',
    });
    expect(JSON.stringify(audit)).not.toContain(approverToken);
  });

  it('refuses a POST without the CSRF token (or with a wrong one, or without a session) and changes nothing', async () => {
    const req = request({ argsSha: 'c'.repeat(64) });
    const cookie = await fetchSession(approverToken);
    const post = (path: string, body: Record<string, string>, withCookie = true) =>
      fetch(`${base}/console${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(withCookie ? { cookie } : {}) },
        body: new URLSearchParams(body),
      });
    expect((await post(`/requests/${req.id}`, { decision: 'approve', note: 'x' })).status).toBe(403);
    expect((await post(`/requests/${req.id}`, { decision: 'approve', note: 'x', csrf: 'A'.repeat(43) })).status).toBe(
      403,
    );
    expect((await post('/kill', { reason: 'csrf' })).status).toBe(403);
    // The real CSRF token (read from the signed-in page) is still refused without the session cookie.
    const csrf = /name="csrf" value="([^"]+)"/.exec(
      await (await fetch(`${base}/console`, { headers: { cookie } })).text(),
    )![1]!;
    expect((await post(`/requests/${req.id}`, { decision: 'approve', csrf }, false)).status).toBe(403);
    expect(app.sqlite.approvals.get(req.id)!.status).toBe('pending');
    expect(app.sqlite.killSwitch.state().engaged).toBe(false);
    // ...and with both, the same request goes through: the 403s above were the CSRF check, not something else.
    const ok = await post(`/requests/${req.id}`, { decision: 'deny', csrf, note: 'dup' });
    expect(ok.status).toBe(303);
    expect(app.sqlite.approvals.get(req.id)!.status).toBe('denied');
  });

  it('decides only on an explicit approve or deny: a post without one is refused with 400 and approves nothing', async () => {
    const req = request({ argsSha: 'f'.repeat(64) });
    const cookie = await fetchSession(approverToken);
    const csrf = /name="csrf" value="([^"]+)"/.exec(
      await (await fetch(`${base}/console`, { headers: { cookie } })).text(),
    )![1]!;
    const post = (path: string, body: string) =>
      fetch(`${base}/console${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body,
      });
    const q = (o: Record<string, string>) => new URLSearchParams({ csrf, ...o }).toString();
    expect((await post(`/requests/${req.id}`, q({ note: 'no decision' }))).status).toBe(400);
    expect((await post(`/requests/${req.id}`, q({ decision: '' }))).status).toBe(400);
    expect((await post(`/requests/${req.id}`, q({ decision: 'Approve' }))).status).toBe(400);
    expect((await post(`/requests/${req.id}`, `${q({ decision: 'deny' })}&decision=approve`)).status).toBe(400);
    // The old per-decision URLs are gone: a console page left open from before cannot decide anything.
    expect((await post(`/requests/${req.id}/approve`, q({}))).status).toBe(404);
    expect(app.sqlite.approvals.get(req.id)).toMatchObject({ status: 'pending', decided_by: null });
    expect(
      app.sqlite.auditStore
        .tail(50)
        .some((a) => a.detail?.includes(req.id) && /^approval\.(approved|denied)$/.test(a.event)),
    ).toBe(false);
    // The same session and token with decision=approve does approve: the 400s were the decision check.
    expect((await post(`/requests/${req.id}`, q({ decision: 'approve' }))).status).toBe(303);
    expect(app.sqlite.approvals.get(req.id)!.status).toBe('approved');
  });

  it('never lets a principal approve its own request', async () => {
    const own = request({
      principal: 'it-approver',
      argsSha: 'd'.repeat(64),
      summary: 'Install Visio on LT-2002 for it-approver',
      target: 'it-approver',
    });
    await signIn(page, approverToken);
    await page.getByTestId(`approve-${own.id}`).click();
    await page.waitForLoadState();
    await expect(page.getByTestId('flash').textContent()).resolves.toContain(
      'You cannot approve a request made by your own principal',
    );
    expect(app.sqlite.approvals.get(own.id)).toMatchObject({ status: 'pending', decided_by: null });
    expect(await page.getByTestId(`pending-${own.id}`).count()).toBe(1);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.screenshot({ path: '/tmp/console.png', fullPage: true });
  });

  it('offers no Approve for an mfa request (the target user confirms with their code) and refuses a forged one', async () => {
    const mfa = request({
      tier: 'mfa',
      tool: 'password_reset',
      argsSha: 'e'.repeat(64),
      summary: 'Reset the password of jdoe',
      caps: [],
    });
    await signIn(page, approverToken);
    const row = page.getByTestId(`pending-${mfa.id}`);
    expect(await row.count()).toBe(1);
    await expect(row.getByTestId('caps').textContent()).resolves.toBe('none');
    expect(await page.getByTestId(`approve-${mfa.id}`).count()).toBe(0);
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    const forged = await fetch(`${base}/console/requests/${mfa.id}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ decision: 'approve', csrf: csrf! }),
    });
    expect(forged.status).toBe(303);
    expect(app.sqlite.approvals.get(mfa.id)!.status).toBe('pending');
    await page.getByTestId(`deny-${mfa.id}`).click();
    await page.waitForLoadState();
    expect(app.sqlite.approvals.get(mfa.id)!.status).toBe('denied');
  });

  it('engages and resumes the kill switch', async () => {
    await signIn(page, approverToken);
    await expect(page.getByTestId('killswitch-state').textContent()).resolves.toBe('off');
    await page.getByTestId('kill-reason').fill('suspicious install burst');
    await page.getByTestId('engage').click();
    await page.waitForLoadState();
    expect(app.sqlite.killSwitch.state()).toMatchObject({
      engaged: true,
      reason: 'suspicious install burst',
      actor: 'console:it-approver',
    });
    await expect(page.getByTestId('killswitch-state').textContent()).resolves.toBe('ENGAGED');
    await page.getByTestId('resume').click();
    await page.waitForLoadState();
    expect(app.sqlite.killSwitch.state()).toMatchObject({ engaged: false, actor: 'console:it-approver' });
    await expect(page.getByTestId('killswitch-state').textContent()).resolves.toBe('off');
    const events = app.sqlite.auditStore.tail(10).map((a) => a.event);
    expect(events).toEqual(expect.arrayContaining(['killswitch.engaged', 'killswitch.resumed']));
  });

  it('signing out ends the session, and a revoked token ends it too', async () => {
    await signIn(page, approverToken);
    await page.getByTestId('sign-out').click();
    await page.waitForLoadState();
    expect(await page.getByTestId('token-input').count()).toBe(1);
    const { token, id } = app.sqlite.tokens.create('it-approver', 'test');
    const cookie = await fetchSession(token);
    expect(await (await fetch(`${base}/console`, { headers: { cookie } })).text()).toContain('data-testid="principal"');
    app.sqlite.tokens.revoke(id);
    expect(await (await fetch(`${base}/console`, { headers: { cookie } })).text()).toContain(
      'data-testid="token-input"',
    );
  });
});
