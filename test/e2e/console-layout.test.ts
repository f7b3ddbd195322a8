/**
 * The approver console as an approver sees it (issue 22 point 4), in headless Chromium: Approve and Deny on screen
 * with no horizontal scroll at 1024×768, 1280×800 and a phone's width, money as money, times in the viewer's zone
 * with UTC on hover, and live updates without a reload (new requests appear marked NEW, decided ones go, a note
 * being typed survives). Screenshots go to test-artifacts/ (git-ignored) for a person to look at.
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { actionArgs, canonicalJson, sha256 } from '../../src/canonical.js';
import { decide } from '../../src/guard/decide.js';
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
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

let tmp: ReturnType<typeof tempDir>;
let app: App;
let srv: Server;
let base: string;
let browser: Browser;
let approverToken: string;
let n = 0;

function request(over: Partial<NewApproval> = {}) {
  n += 1;
  const args = {
    user: 'jdoe',
    package: 'adobe-acrobat-pro',
    version: '2025.001',
    device_id: 'LT-1001',
    // A long unbroken value: the arguments once pushed the page to 2,010 px.
    reason: `needs to edit PDFs ${'x'.repeat(400)} ${n}`,
  };
  return app.sqlite.approvals.create({
    tier: 'approval',
    principal: 'helpdesk-agent',
    sessionId: 's1',
    tool: 'software_install',
    args,
    argsSha: `${n}`.padStart(64, '0'),
    summary: `Install Adobe Acrobat Pro 2025.001 on LT-1001 for jdoe (#${n})`,
    reason: 'needs to edit PDFs for the finance close',
    target: 'jdoe',
    caps: [
      { rule: 'installs-per-day', measure: 'calls', amount: 1, used: 3, limit: 50 },
      { rule: 'license-spend-per-day', measure: 'cost_usd', amount: 180, used: 0, limit: 2000 },
    ],
    capItems: [],
    idemKey: undefined,
    requestId: undefined,
    traceId: `t${n}`,
    ttlMs: 3600_000,
    withVerifyLink: false,
    ...over,
  }).row;
}

async function signedIn(width: number, height: number): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width, height },
    timezoneId: 'America/New_York',
    locale: 'en-US',
  });
  const page = await context.newPage();
  await page.goto(`${base}/console`);
  await page.getByTestId('token-input').fill(approverToken);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('principal').waitFor();
  return page;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  tmp = tempDir();
  app = openApp({ dbPath: join(tmp.dir, 'l.db'), policy: policyWith(), log: silent, executorPollMs: 3_600_000 });
  approverToken = app.sqlite.tokens.create('it-approver', 'test').token;
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

describe('console layout', () => {
  for (const [width, height] of [
    [1024, 768],
    [1280, 800],
    [390, 844],
  ] as const) {
    it(`${width}×${height}: Approve and Deny inside the viewport, no horizontal scroll, arguments expanded`, async () => {
      const req = request();
      const page = await signedIn(width, height);
      try {
        await page.evaluate(`document.querySelector('[data-testid="pending-${req.id}"] details').open = true`);
        expect(await page.getByTestId(`pending-${req.id}`).locator('pre').isVisible()).toBe(true);
        for (const id of [`approve-${req.id}`, `deny-${req.id}`]) {
          const box = (await page.getByTestId(id).boundingBox())!;
          expect(box.x, id).toBeGreaterThanOrEqual(0);
          expect(box.x + box.width, id).toBeLessThanOrEqual(width);
          expect(box.y + box.height, id).toBeLessThanOrEqual(height);
          expect(box.width, id).toBeGreaterThan(40); // the whole word, not "Ap"
        }
        const widths = (await page.evaluate(
          '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })',
        )) as { scroll: number; client: number };
        expect(widths.scroll).toBeLessThanOrEqual(widths.client);
        await page.screenshot({ path: join(ARTIFACTS, `console-${width}x${height}.png`), fullPage: true });
      } finally {
        await page.context().close();
        await decide(app, { id: req.id, approve: false, actor: { name: 'test', via: 'cli' } });
      }
    });
  }

  it('money as money; times in the viewer zone, UTC on hover', async () => {
    const req = request();
    const page = await signedIn(1280, 800);
    try {
      const card = page.getByTestId(`pending-${req.id}`);
      await expect(card.getByTestId('caps').textContent()).resolves.toBe(
        'installs-per-day +1 (3/50)license-spend-per-day +$180.00 ($0.00 of $2,000.00 spent)',
      );
      const created = card.locator('time').first();
      const title = await created.getAttribute('title');
      expect(title).toBe(
        new Date(req.created_at)
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d{3}Z$/, ' UTC'),
      );
      const hour = new Intl.DateTimeFormat('en-US', {
        hour: '2-digit',
        hour12: true,
        timeZone: 'America/New_York',
      }).formatToParts(new Date(req.created_at));
      const text = (await created.textContent())!;
      expect(text).toMatch(/E[SD]T$/);
      expect(text).toContain(`${hour.find((p) => p.type === 'hour')!.value}:`);
    } finally {
      await page.context().close();
      await decide(app, { id: req.id, approve: false, actor: { name: 'test', via: 'cli' } });
    }
  });
});

describe('console live updates', () => {
  it('a new request appears marked NEW and a decided one goes, without a reload; a note being typed survives', async () => {
    const first = request();
    const page = await signedIn(1280, 800);
    try {
      await page.evaluate('window.marker = 42');
      const note = page.getByTestId(`note-${first.id}`);
      await note.fill('half-typed reason');
      await note.focus();
      expect(await page.getByTestId(`pending-${first.id}`).getAttribute('class')).not.toContain('new');

      const second = request();
      const card = page.getByTestId(`pending-${second.id}`);
      await card.waitFor({ timeout: 10_000 });
      expect(await card.getAttribute('class')).toContain('new');
      expect(await card.getByTestId('new-badge').isVisible()).toBe(true);
      await expect(page.getByTestId('pending-count').textContent()).resolves.toBe('2');

      await decide(app, { id: second.id, approve: false, actor: { name: 'test', via: 'cli' } });
      await card.waitFor({ state: 'detached', timeout: 10_000 });
      await page.getByTestId(`recent-${second.id}`).waitFor({ timeout: 10_000 });
      await expect(page.getByTestId('pending-count').textContent()).resolves.toBe('1');

      // The same document all along, and the note still holds what was typed.
      expect(await page.evaluate('window.marker')).toBe(42);
      expect(await note.inputValue()).toBe('half-typed reason');
      await page.screenshot({ path: join(ARTIFACTS, 'console-live.png'), fullPage: true });

      // A card that arrived live decides like any other: Deny submits its own form.
      const third = request();
      await page.getByTestId(`pending-${third.id}`).waitFor({ timeout: 10_000 });
      await page.getByTestId(`deny-${third.id}`).click();
      await page.waitForLoadState();
      await expect(page.getByTestId('flash').textContent()).resolves.toContain(`Denied ${third.id}`);
      expect(app.sqlite.approvals.get(third.id)!.status).toBe('denied');
    } finally {
      await page.context().close();
    }
  });

  it('an approved install runs, and its recent row shows the install job as the deploy backend reported it', async () => {
    const args = {
      user: 'jdoe',
      package: 'adobe-acrobat-pro',
      version: '2025.001',
      device_id: 'LT-1001',
      reason: 'needs to edit PDFs',
    };
    const req = request({
      args,
      argsSha: sha256(canonicalJson({ tool: 'software_install', args: actionArgs(args) })),
      summary: 'Install Adobe Acrobat Pro',
    });
    const page = await signedIn(1280, 800);
    try {
      expect((await decide(app, { id: req.id, approve: true, actor: { name: 'test', via: 'cli' } })).ok).toBe(true);
      await app.executorPass();
      const row = app.sqlite.approvals.get(req.id)!;
      expect(row.status, row.result ?? '').toBe('succeeded');
      const recent = page.getByTestId(`recent-${req.id}`);
      await recent.waitFor({ timeout: 10_000 });
      await expect(recent.getByTestId('status').textContent()).resolves.toBe('succeeded');
      const outcome = (await recent.getByTestId('outcome').textContent())!;
      expect(outcome).toMatch(/adobe-acrobat-pro/i);
      expect(outcome.length).toBeGreaterThan(10);
    } finally {
      await page.context().close();
    }
  });

  it('the live fragment needs a session: 401 without one', async () => {
    const r = await fetch(`${base}/console/live`);
    expect(r.status).toBe(401);
    expect(await r.text()).not.toContain('pending-');
  });
});
