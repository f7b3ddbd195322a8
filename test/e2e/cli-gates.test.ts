/** The human-gate CLI verbs on a real database file: approvals, directory enroll, outbox, report autonomy. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { runCli } from '../helpers/cli.js';
import { policyWith, silent, tempDir } from '../helpers/harness.js';

let tmp: ReturnType<typeof tempDir>;
let app: App;
let db: string;
const mk = (args: Record<string, unknown>, tier = 'approval', principal = 'helpdesk-agent') =>
  app.sqlite.approvals.create({
    tier,
    principal,
    sessionId: 's',
    tool: 'software_install',
    args,
    argsSha: JSON.stringify(args),
    summary: `Install ${String(args.package)} for ${String(args.user)}`,
    reason: 'r',
    target: String(args.user),
    caps: [],
    capItems: [],
    idemKey: undefined,
    requestId: undefined,
    traceId: 't',
    ttlMs: 3600_000,
    withVerifyLink: tier === 'mfa',
  }).row;

beforeAll(() => {
  tmp = tempDir();
  db = join(tmp.dir, 'g.db');
  app = openApp({ dbPath: db, policy: policyWith(), log: silent, executorPollMs: 3_600_000 });
});
afterAll(() => {
  app.close();
  tmp.cleanup();
});

describe('itguard approvals', () => {
  it('lists pending requests and approves or denies them, audited with the OS user', () => {
    const a = mk({ user: 'jdoe', package: 'figma' });
    const b = mk({ user: 'asmith', package: 'autocad' });
    const list = JSON.parse(runCli(['approvals', 'list', '--json', '--db', db]).stdout) as {
      id: string;
      requested_by: string;
    }[];
    expect(list.map((x) => x.id).sort()).toEqual([a.id, b.id].sort());
    expect(runCli(['approvals', 'approve', a.id, '--note', 'ok', '--db', db]).code).toBe(0);
    expect(runCli(['approvals', 'deny', b.id, '--db', db]).code).toBe(0);
    expect(app.sqlite.approvals.get(a.id)).toMatchObject({ status: 'approved', note: 'ok' });
    expect(app.sqlite.approvals.get(a.id)!.decided_by).toMatch(/^cli:/);
    expect(app.sqlite.approvals.get(b.id)!.status).toBe('denied');
    const again = runCli(['approvals', 'approve', b.id, '--db', db]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not pending/);
    expect(
      app.sqlite.auditStore.tail(20).some((r) => r.event === 'approval.approved' && r.actor.startsWith('cli:')),
    ).toBe(true);
  });

  it('refuses to approve an MFA request: only the target user’s code can', () => {
    const m = mk({ user: 'jdoe', package: 'slack' }, 'mfa');
    const r = runCli(['approvals', 'approve', m.id, '--db', db]);
    expect(r.code).toBe(1);
    expect(app.sqlite.approvals.get(m.id)!.status).toBe('pending');
  });

  it('report autonomy counts grants per action class', () => {
    const rep = JSON.parse(runCli(['report', 'autonomy', '--json', '--db', db]).stdout) as {
      tool: string;
      tier: string;
      granted: number;
      denied: number;
      grant_rate: number;
    }[];
    expect(rep.find((c) => c.tier === 'approval')).toMatchObject({
      tool: 'software_install',
      granted: 1,
      denied: 1,
      grant_rate: 0.5,
    });
  });
});

describe('itguard directory enroll and outbox', () => {
  it('prints only the otpauth:// URI on stdout, and the new factor replaces the old', () => {
    const before = app.sqlite.mfa.currentCode('jdoe');
    const r = runCli(['directory', 'enroll', 'jdoe', '--db', db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^otpauth:\/\/totp\/itguard:jdoe\?[^\n]*secret=[A-Z2-7]+[^\n]*\n$/);
    expect(app.sqlite.mfa.currentCode('jdoe')).not.toBe(before);
    expect(runCli(['directory', 'enroll', 'nobody', '--db', db]).code).toBe(1);
  });

  it('outbox hides one-time links unless asked', async () => {
    await app.backends.resets.reset('asmith', {
      requestId: 'r-1',
      linksBase: 'http://127.0.0.1:9',
      signal: AbortSignal.timeout(5000),
    });
    const hidden = runCli(['outbox', '--db', db]).stdout;
    expect(hidden).toMatch(/to asmith via sms/);
    expect(hidden).not.toMatch(/\/reset\//);
    expect(runCli(['outbox', '--show-links', '--db', db]).stdout).toMatch(/http:\/\/127\.0\.0\.1:9\/reset\//);
  });
});
