/**
 * The CLI as scripts and operators meet it (issue 22 point 5): every `--json` document in DESIGN §7's shape
 * (snake_case keys, ISO 8601 times, failures as JSON too), one sentence and exit 2 for a busy port, an unusable
 * database path and a bad policy, and the `itguard` binary that `npx itguard` runs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, TEST_STATE_KEY } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let tmp: ReturnType<typeof tempDir>;
let db: string;
beforeAll(() => {
  tmp = tempDir();
  db = join(tmp.dir, 'j.db');
  // `status` opens (and seeds) the database; then a token, a kill and a resume put rows with times in it.
  expect(runCli(['status', '--db', db]).code).toBe(0);
  expect(runCli(['token', 'create', '--principal', 'it-approver', '--label', 'ops', '--db', db]).code).toBe(0);
  expect(runCli(['kill', '--reason', 'drill', '--db', db]).code).toBe(0);
  expect(runCli(['resume', '--reason', 'drill over', '--db', db]).code).toBe(0);
});
afterAll(() => tmp.cleanup());

/** Every key snake_case (names under maps excepted), every time field an ISO 8601 string; returns the problems. */
function conventionProblems(v: unknown, path = '$', nameMap = false): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => conventionProblems(x, `${path}[${i}]`));
  if (v === null || typeof v !== 'object') return [];
  const problems: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const p = `${path}.${k}`;
    if (!nameMap && /[A-Z]/.test(k)) problems.push(`${p}: key not snake_case`);
    if (
      (k === 'ts' || (k.endsWith('_at') && k !== 'alarm_at')) &&
      x !== null &&
      x !== '-' &&
      !(typeof x === 'string' && ISO.test(x))
    )
      problems.push(`${p}: time not ISO 8601 (${JSON.stringify(x)})`);
    problems.push(...conventionProblems(x, p, ['principals', 'tools', 'apps', 'approvers'].includes(k)));
  }
  return problems;
}

describe('--json documents: snake_case keys, ISO 8601 times', () => {
  const verbs: string[][] = [
    ['status'],
    ['caps'],
    ['budgets'],
    ['token', 'list'],
    ['directory', 'list'],
    ['approvals', 'list', '--all'],
    ['outbox'],
    ['audit', 'tail', '--n', '50'],
    ['audit', 'verify'],
    ['policy', 'check'],
    ['report', 'autonomy'],
  ];
  for (const verb of verbs) {
    it(`itguard ${verb.join(' ')} --json`, () => {
      const r = runCli([...verb, '--json', '--db', db]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as unknown;
      expect(conventionProblems(doc)).toEqual([]);
    });
  }

  it('token list --json: the documented fields, times as ISO strings, never the secret', () => {
    const r = runCli(['token', 'list', '--json', '--db', db]);
    const [t] = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(Object.keys(t!).sort()).toEqual(
      ['created_at', 'created_by', 'id', 'label', 'last_used_at', 'principal', 'revoked_at'].sort(),
    );
    expect(t).toMatchObject({ principal: 'it-approver', label: 'ops', revoked_at: null, last_used_at: null });
    expect(t!.created_at).toMatch(ISO);
    expect(Math.abs(Date.parse(String(t!.created_at)) - Date.now())).toBeLessThan(120_000);
    expect(r.stdout).not.toMatch(/itg_/);
  });

  it('audit tail --json: ts is an ISO time; the kill and resume are there, by cli:<user>', () => {
    const rows = JSON.parse(runCli(['audit', 'tail', '--n', '5', '--json', '--db', db]).stdout) as {
      ts: string;
      event: string;
      actor: string;
    }[];
    expect(rows.map((r) => r.event)).toEqual(expect.arrayContaining(['killswitch.engaged', 'killswitch.resumed']));
    for (const r of rows) expect(r.ts).toMatch(ISO);
    expect(rows.find((r) => r.event === 'killswitch.engaged')!.actor).toMatch(/^cli:/);
  });
});

describe('failures under --json are JSON on stdout too, with one sentence on stderr', () => {
  const failure = (args: string[], code: number, errorCode: string) => {
    const r = runCli(args);
    expect(r.code, r.stderr).toBe(code);
    const doc = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe(errorCode);
    expect(doc.error.message.length).toBeGreaterThan(10);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    return doc;
  };
  it('an unknown command: USAGE, exit 2', () => {
    failure(['frobnicate', '--json', '--db', db], 2, 'USAGE');
  });
  it('an unknown flag: USAGE, exit 2', () => {
    failure(['status', '--json', '--frob', '--db', db], 2, 'USAGE');
  });
  it('a bad policy: CONFIG, exit 2, naming the key', () => {
    const f = join(tmp.dir, 'bad.yaml');
    writeFileSync(f, 'version: 1\nfrobs: 1\n');
    const doc = failure(['status', '--json', '--policy', f, '--db', db], 2, 'CONFIG');
    expect(doc.error.message).toMatch(/frobs/);
  });
  it('token revoke of an unknown id: NOT_FOUND, exit 1', () => {
    failure(['token', 'revoke', 'nosuchtoken', '--json', '--db', db], 1, 'NOT_FOUND');
  });
  it('token create for a principal not in the policy: USAGE, exit 2, nothing printed as a token', () => {
    const doc = failure(['token', 'create', '--principal', 'nobody', '--json', '--db', db], 2, 'USAGE');
    expect(doc.error.message).toMatch(/not a principal in the policy/);
  });
});

describe('serve refuses what it cannot use in one sentence, exit 2', () => {
  let busy: Server;
  let port: number;
  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    port = (busy.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => busy.close(() => r())));

  const oneSentence = (r: { code: number | null; stderr: string }): string => {
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
    expect(lines, r.stderr).toHaveLength(1);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    return lines[0]!;
  };

  it('a busy port', () => {
    const r = runCli(['serve', '--http', '--port', String(port), '--db', join(tmp.dir, 'busy.db')], {
      ITGUARD_STATE_KEY: TEST_STATE_KEY,
    });
    expect(oneSentence(r)).toBe(
      `itguard: cannot listen on 127.0.0.1:${port}: the port is already in use (another itguard or another program); stop it or choose another with --port or ITGUARD_PORT`,
    );
  });
  it('a database path whose directory cannot be made', () => {
    const file = join(tmp.dir, 'a-file');
    writeFileSync(file, 'x');
    const r = runCli(['serve', '--http', '--port', '0', '--db', join(file, 'sub', 'x.db')], {
      ITGUARD_STATE_KEY: TEST_STATE_KEY,
    });
    expect(oneSentence(r)).toMatch(/^itguard: database .*x\.db cannot be opened .*ENOTDIR.*use another --db$/);
  });
  it('a bad policy', () => {
    const f = join(tmp.dir, 'bad2.yaml');
    writeFileSync(
      f,
      'version: 1\nstdio_principal: a\nprincipals: { a: { scopes: [kb:read] } }\ntools: { ticket_create: { tier: sometimes } }\n',
    );
    const r = runCli(['serve', '--stdio', '--policy', f, '--db', join(tmp.dir, 'p.db')]);
    expect(oneSentence(r)).toMatch(/^invalid policy .*bad2\.yaml: tools\.ticket_create\.tier/);
  });
});

describe('the itguard binary', () => {
  it('package.json bin points at dist/cli.js, which has a node shebang and is executable', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(join(ROOT, pkg.bin.itguard!)).toBe(CLI);
    expect(readFileSync(CLI, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(statSync(CLI).mode & 0o111).toBe(0o111);
  });
  it('npx itguard --help works from the checkout (offline: it runs this package, never the registry)', () => {
    const r = spawnSync('npx', ['--offline', 'itguard', '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: itguard <command>/);
  });
});

describe('approvals approve|deny --json', () => {
  it('prints the decided request, and a refusal as ok: false with its code, both on stdout', async () => {
    const { openApp } = await import('../../src/app.js');
    const { policyWith, silent } = await import('../helpers/harness.js');
    const gdb = join(tmp.dir, 'gates.db');
    const app = openApp({ dbPath: gdb, policy: policyWith(), log: silent, executorPollMs: 3_600_000 });
    const mk = (tier: string) =>
      app.sqlite.approvals.create({
        tier,
        principal: 'helpdesk-agent',
        sessionId: 's',
        tool: 'software_install',
        args: { user: 'jdoe', package: 'figma', n: tier },
        argsSha: `sha-${tier}`,
        summary: 'Install figma for jdoe',
        reason: 'r',
        target: 'jdoe',
        caps: [],
        capItems: [],
        idemKey: undefined,
        requestId: undefined,
        traceId: 't',
        ttlMs: 3600_000,
        withVerifyLink: tier === 'mfa',
      }).row;
    try {
      const a = mk('approval');
      const ok = runCli(['approvals', 'approve', a.id, '--note', 'fine', '--json', '--db', gdb]);
      expect(ok.code, ok.stderr).toBe(0);
      const doc = JSON.parse(ok.stdout) as { ok: boolean; request: Record<string, unknown> };
      expect(doc).toMatchObject({ ok: true, request: { id: a.id, status: 'approved', note: 'fine' } });
      expect(String(doc.request.decided_by)).toMatch(/^cli:/);
      expect(conventionProblems(doc)).toEqual([]);

      const again = runCli(['approvals', 'deny', a.id, '--json', '--db', gdb]);
      expect(again.code).toBe(1);
      expect(JSON.parse(again.stdout)).toMatchObject({
        ok: false,
        error: { code: 'CONFLICT', reason: 'not_pending' },
        request: { id: a.id, status: 'approved' },
      });
      const m = mk('mfa');
      const mfa = JSON.parse(runCli(['approvals', 'approve', m.id, '--json', '--db', gdb]).stdout) as unknown;
      expect(mfa).toMatchObject({ ok: false, error: { code: 'REFUSED', reason: 'wrong_tier' } });
      const none = JSON.parse(runCli(['approvals', 'deny', 'REQ-NOPE', '--json', '--db', gdb]).stdout) as unknown;
      expect(none).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' }, request: null });
    } finally {
      app.close();
    }
  });
});
