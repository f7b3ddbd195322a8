/**
 * Issue 8, item 2: pressing Enter in the console's note field approved the request (the form's first submit button,
 * the implicit one, was Approve). Against a real `itguard serve --http` process in headless Chromium: Enter in the
 * note denies and nothing is installed; Enter in the approval's own note does nothing; only an explicit click on
 * Approve approves, and then the install runs exactly once. Outcomes are read from the system's own records (the
 * CLI's `approvals list --json`, the audit export and the install jobs), not from the page.
 */
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';

let tmp: ReturnType<typeof tempDir>;
let served: Served;
let db: string;
let browser: Browser;
beforeAll(async () => {
  tmp = tempDir();
  db = join(tmp.dir, 'enter.db');
  const policy = join(tmp.dir, 'p.yaml');
  (await import('node:fs')).writeFileSync(policy, demoPolicy().approvals({ wait_seconds: 1 }).yaml());
  served = await serveHttp(db, ['--policy', policy]);
  browser = await chromium.launch({
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
});
afterAll(async () => {
  await browser?.close();
  await served?.stop();
  tmp?.cleanup();
});

/** An agent asks for a licensed install over MCP; the call comes back APPROVAL_PENDING with the request id. */
async function requestInstall(pkg: string, reason: string): Promise<string> {
  const client = new Client({ name: 'agent', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(served.url), {
      requestInit: { headers: { Authorization: `Bearer ${served.demoToken}` } },
    }),
  );
  try {
    const r = (await client.callTool({
      name: 'software_install',
      arguments: { user: 'jdoe', package: pkg, reason },
    })) as CallToolResult;
    const meta = r._meta!['itguard/error'] as { code: string; request_id: string };
    expect(meta.code).toBe('APPROVAL_PENDING');
    return meta.request_id;
  } finally {
    await client.close();
  }
}

interface Listed {
  id: string;
  status: string;
  decided_by: string | null;
  note: string | null;
}
const listed = (id: string): Listed | undefined => {
  const r = runCli(['approvals', 'list', '--all', '--json', '--db', db]);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as Listed[]).find((x) => x.id === id);
};

/** The approve/deny records the audit holds for one request. */
const decisions = (id: string): string[] =>
  runCli(['audit', 'export', '--db', db])
    .stdout.trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string; detail: string | null })
    .filter((a) => (a.event === 'approval.approved' || a.event === 'approval.denied') && a.detail?.includes(id))
    .map((a) => a.event);

const installs = (pkg: string): number => {
  const d = new Database(db, { readonly: true });
  try {
    return (d.prepare('SELECT count(*) AS n FROM install_jobs WHERE package = ?').get(pkg) as { n: number }).n;
  } finally {
    d.close();
  }
};

it('Enter in the note field denies and installs nothing; only an explicit click on Approve approves', async () => {
  const denied = await requestInstall('adobe-acrobat-pro', 'needs to sign contracts');
  const approved = await requestInstall('microsoft-visio', 'needs to draw network diagrams');
  const approver = runCli(['token', 'create', '--principal', 'it-approver', '--db', db]).stdout.trim();
  const base = new URL(served.url).origin;
  const page = await browser.newPage();
  await page.goto(`${base}/console`);
  await page.getByTestId('token-input').fill(approver);
  await page.getByTestId('sign-in').click();
  await page.waitForLoadState();
  expect(await page.getByTestId(`pending-${denied}`).count()).toBe(1);
  // Every form the page submits from here on: a submission Enter caused would be one of these.
  const posts: string[] = [];
  page.on('request', (r) => void (r.method() === 'POST' && posts.push(new URL(r.url()).pathname)));

  // What the issue reports: the approver types a denial and presses Enter.
  const note = page.getByTestId(`note-${denied}`);
  await note.fill('deny: not justified');
  await Promise.all([page.waitForURL(`${base}/console`, { waitUntil: 'load' }), note.press('Enter')]);
  // The denial's POST has been answered (the page loaded its result), so the decision is final; that nothing was
  // installed for it is checked again at the end, after the executor has run the later approval.
  expect(listed(denied)).toMatchObject({
    status: 'denied',
    decided_by: 'console:it-approver',
    note: 'deny: not justified',
  });
  expect(decisions(denied)).toEqual(['approval.denied']);
  expect(installs('adobe-acrobat-pro')).toBe(0);
  await expect(page.getByTestId('flash').textContent()).resolves.toContain(`Denied ${denied}`);

  // Enter in the approval's note is a new line, never a submission.
  const approveNote = page.getByTestId(`approve-note-${approved}`);
  await approveNote.fill('ok for the network team');
  await approveNote.press('Enter');
  // The key became a new line in the note; that it submitted nothing is checked on the page's POSTs below.
  expect(await approveNote.inputValue()).toMatch(/\n$/);
  expect(listed(approved)).toMatchObject({ status: 'pending', decided_by: null });
  expect(decisions(approved)).toEqual([]);

  // The explicit click approves, with the note as typed, and the install runs once.
  await approveNote.fill('ok for the network team');
  await Promise.all([
    page.waitForURL(`${base}/console`, { waitUntil: 'load' }),
    page.getByTestId(`approve-${approved}`).click(),
  ]);
  let status = '';
  for (let i = 0; i < 40 && status !== 'succeeded'; i++) {
    await page.waitForTimeout(250);
    status = listed(approved)?.status ?? '';
  }
  expect(listed(approved)).toMatchObject({
    status: 'succeeded',
    decided_by: 'console:it-approver',
    note: 'ok for the network team',
  });
  expect(decisions(approved)).toEqual(['approval.approved']);
  // Two submissions, the denial and the explicit Approve: the Enter in the approval's note, pressed before the
  // click whose answer has loaded since, sent none.
  expect(posts).toHaveLength(2);
  expect(installs('microsoft-visio')).toBe(1);
  expect(installs('adobe-acrobat-pro')).toBe(0);
  expect(listed(denied)?.status).toBe('denied');
  expect(runCli(['audit', 'verify', '--db', db]).code).toBe(0);
  await page.close();
}, 60_000);
