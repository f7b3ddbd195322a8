/**
 * The whole approval path as people use it: a real `itguard serve --http` process, an agent asks for a licensed
 * install over MCP, an approver signs in to /console in headless Chromium and approves, the install runs once
 * and request_status says so; the console shows the install job's live state as it moves on.
 */
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';

let tmp: ReturnType<typeof tempDir>;
let served: Served;
let db: string;
beforeAll(async () => {
  tmp = tempDir();
  db = join(tmp.dir, 'flow.db');
  const policy = join(tmp.dir, 'p.yaml');
  (await import('node:fs')).writeFileSync(policy, demoPolicy().approvals({ wait_seconds: 1 }).yaml());
  served = await serveHttp(db, ['--policy', policy]);
});
afterAll(async () => {
  await served?.stop();
  tmp.cleanup();
});

it('an install of a licensed package waits for an approver, shows in the console, runs once after approval', async () => {
  const client = new Client({ name: 'agent', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(served.url), {
      requestInit: { headers: { Authorization: `Bearer ${served.demoToken}` } },
    }),
  );
  const r = (await client.callTool({
    name: 'software_install',
    arguments: { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'needs to sign contracts' },
  })) as CallToolResult;
  const meta = r._meta!['itguard/error'] as { code: string; request_id: string };
  expect(meta.code).toBe('APPROVAL_PENDING');
  await client.close(); // the agent goes away; the approval must still run

  const approver = runCli(['token', 'create', '--principal', 'it-approver', '--db', db]).stdout.trim();
  const base = new URL(served.url).origin;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/console`);
    await page.getByTestId('token-input').fill(approver);
    await page.getByTestId('sign-in').click();
    const row = page.getByTestId(`pending-${meta.request_id}`);
    expect(await row.getByTestId('summary').textContent()).toContain('adobe-acrobat-pro');
    expect(await row.getByTestId('reason').textContent()).toBe('needs to sign contracts');
    expect(await row.getByTestId('requester').textContent()).toBe('helpdesk-agent');
    expect(await row.getByTestId('caps').textContent()).toContain('license-spend-per-day');
    await page.getByTestId(`approve-note-${meta.request_id}`).fill('approved for legal');
    await page.getByTestId(`approve-${meta.request_id}`).click();
    // it executes within seconds; the console's recent list shows it
    let status = '';
    for (let i = 0; i < 40 && status !== 'succeeded'; i++) {
      await page.waitForTimeout(250);
      await page.goto(`${base}/console`);
      status = (await page.getByTestId(`recent-${meta.request_id}`).getByTestId('status').textContent()) ?? '';
    }
    expect(status).toBe('succeeded');
    // The Outcome shows the install job as the deployment backend reports it now, and the live script moves it
    // on without a reload (embedded jobs: queued, installing, then installed after about five seconds).
    const job = page.getByTestId(`recent-${meta.request_id}`).getByTestId('job-state');
    expect(await job.getAttribute('data-state')).toMatch(/^(queued|installing|installed)$/);
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 20_000, interval: 500 }).toBe('installed');
    await page.screenshot({ path: join(tmp.dir, 'console.png') });
  } finally {
    await browser.close();
  }

  const again = new Client({ name: 'agent-2', version: '1' });
  await again.connect(
    new StreamableHTTPClientTransport(new URL(served.url), {
      requestInit: { headers: { Authorization: `Bearer ${served.demoToken}` } },
    }),
  );
  const s = (await again.callTool({
    name: 'request_status',
    arguments: { request_id: meta.request_id },
  })) as CallToolResult;
  expect(s.structuredContent).toMatchObject({
    status: 'succeeded',
    decided_by: 'console:it-approver',
    note: 'approved for legal',
  });
  await again.close();
  const d = new Database(db, { readonly: true });
  expect(
    (d.prepare("SELECT count(*) AS n FROM install_jobs WHERE package = 'adobe-acrobat-pro'").get() as { n: number }).n,
  ).toBe(1);
  d.close();
  expect(runCli(['audit', 'verify', '--db', db]).code).toBe(0);
}, 60_000);
