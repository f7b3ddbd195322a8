/**
 * Agent text cannot spoof the operator's terminal: text that reached the database (written by an agent, a user,
 * or older versions that let control characters through) is printed by the CLI with every control character,
 * ANSI escape and bidi override shown as a visible escape, and a newline in it cannot fake an extra row.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { runCli } from '../helpers/cli.js';
import { codeOf, connect, policyWith, silent, tempDir } from '../helpers/harness.js';

const ESC_CLEAR_RED = '\u001b[2J\u001b[31m';
/** Anything a terminal may act on: C0 other than newline, DEL, C1 (U+009B is CSI), bidi overrides and isolates. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

let tmp: ReturnType<typeof tempDir>;
let app: App;
let db: string;
let ticketTrace: string;

beforeAll(async () => {
  tmp = tempDir();
  db = join(tmp.dir, 't.db');
  app = openApp({ dbPath: db, policy: policyWith(), log: silent, executorPollMs: 3_600_000 });
  // Old data: a pending approval whose summary and reason carry escapes (written before `reason` was checked).
  app.sqlite.approvals.create({
    tier: 'approval',
    principal: 'helpdesk-agent',
    sessionId: 's',
    tool: 'software_install',
    args: { user: 'jdoe', package: 'figma' },
    argsSha: 'x',
    summary: `Install figma for jdoe${ESC_CLEAR_RED}\u009b1A`,
    reason: `routine${ESC_CLEAR_RED}APPROVED\nREQ-FAKE  approved  by it-lead: \u202eexe.daolnwod`,
    target: 'jdoe',
    caps: [],
    capItems: [],
    idemKey: undefined,
    requestId: undefined,
    traceId: 't-old',
    ttlMs: 3600_000,
    withVerifyLink: false,
  });
  app.sqlite.db
    .prepare(
      'INSERT INTO outbox (username, channel, address, subject, body, created_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    .run(
      'jdoe',
      'email',
      'j@example.com',
      `Reset${ESC_CLEAR_RED}`,
      `line one\u001b]0;pwned\u0007\r\nline two \u009b2K`,
      Date.now(),
      null,
    );
  // Through the real tool path: an unknown tool name and a ticket summary are agent text that reaches the audit.
  const c = await connect(app);
  const unknown = await c.call(`${ESC_CLEAR_RED}APPROVED`, {});
  expect(codeOf(unknown)).toBe('UNKNOWN_TOOL');
  const created = await c.call('ticket_create', {
    summary: `Printer${ESC_CLEAR_RED}\u009b31m\u202eon fire`,
    description: 'd',
    requester: 'jdoe',
    reason: 'user asked',
  });
  expect(created.isError).toBeFalsy();
  ticketTrace = app.sqlite.auditStore.tail(10).find((r) => r.tool === 'ticket_create')!.trace_id!;
  await c.close();
});
afterAll(() => {
  app.close();
  tmp.cleanup();
});

describe('CLI output of stored agent text', () => {
  it('approvals list escapes controls and bidi overrides, and a newline in a reason stays on its row', () => {
    const r = runCli(['approvals', 'list', '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(UNSAFE);
    expect(r.stdout).toContain('\\x1b[2J\\x1b[31m');
    expect(r.stdout).toContain('\\u009b1A');
    expect(r.stdout).toContain('\\u202eexe.daolnwod');
    // Two lines per request: the planted "\nREQ-FAKE  approved ..." is not a row of its own.
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(r.stdout).toContain('APPROVED\\nREQ-FAKE');
  });

  it('approvals list --json is JSON with the same text, and no raw C1 or bidi character either', () => {
    const r = runCli(['approvals', 'list', '--json', '--db', db]);
    expect(r.stdout).not.toMatch(UNSAFE);
    const [row] = JSON.parse(r.stdout) as { reason: string; summary: string }[];
    expect(row!.summary).toBe(`Install figma for jdoe${ESC_CLEAR_RED}\u009b1A`);
    expect(row!.reason).toContain('\u202eexe.daolnwod');
  });

  it('audit tail and audit show escape agent text', () => {
    const tail = runCli(['audit', 'tail', '--db', db]);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toMatch(/UNKNOWN_TOOL/);
    expect(tail.stdout).not.toMatch(UNSAFE);
    expect(tail.stdout).toContain('\\x1b[2J\\x1b[31mAPPROVED');
    const show = runCli(['audit', 'show', '--db', db, '--', ticketTrace]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/call\.intent/);
    expect(show.stdout).not.toMatch(UNSAFE);
    expect(runCli(['audit', 'export', '--db', db]).stdout).not.toMatch(UNSAFE);
  });

  it('outbox escapes subjects and bodies', () => {
    const r = runCli(['outbox', '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(UNSAFE);
    expect(r.stdout).toContain('Reset\\x1b[2J\\x1b[31m');
    expect(r.stdout).toContain('\\x1b]0;pwned\\x07');
  });
});
