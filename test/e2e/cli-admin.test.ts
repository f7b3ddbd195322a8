/** Admin CLI verbs on a real database file: kb import, policy check, token list, audit show/export, exit codes. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp } from '../../src/app.js';
import { startHttp } from '../../src/http/app.js';
import { runCli } from '../helpers/cli.js';
import { policyWith, silent, tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { until } from '../helpers/planner.js';

let tmp: ReturnType<typeof tempDir>;
let db: string;
beforeAll(() => {
  tmp = tempDir();
  db = join(tmp.dir, 'a.db');
});
afterAll(() => tmp.cleanup());

describe('itguard kb import', () => {
  it('adds new articles and updates existing ones; searchable at once; a bad file is a clear error', async () => {
    const dir = join(tmp.dir, 'kb');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'a.md'),
      '---\nid: KB-9001\ntitle: Quantum stapler jams\ncategory: hardware\ntags: [stapler]\nupdated: 2026-11-01\n---\nThe quantum stapler jams when overfilled.\n',
    );
    expect(runCli(['kb', 'import', dir, '--db', db]).stdout).toMatch(/1 added, 0 updated/);
    writeFileSync(
      join(dir, 'a.md'),
      '---\nid: KB-9001\ntitle: Quantum stapler jams (revised)\ncategory: hardware\ntags: [stapler]\nupdated: 2026-11-02\n---\nRevised text.\n',
    );
    expect(runCli(['kb', 'import', dir, '--db', db]).stdout).toMatch(/0 added, 1 updated/);
    const app = openApp({ dbPath: db, policy: policyWith(), log: silent });
    expect((await app.embedded.kb.find('quantum stapler', 5))[0]).toMatchObject({
      id: 'KB-9001',
      title: 'Quantum stapler jams (revised)',
    });
    app.close();
    writeFileSync(join(dir, 'b.md'), '---\ntitle: no id\ncategory: x\nupdated: 2026-01-01\n---\nbody');
    const bad = runCli(['kb', 'import', dir, '--db', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/b\.md: id: required/);
  });

  it('brings the folder synonyms.yaml, keeps the vocabulary in use without one, refuses a bad one', async () => {
    const dir = join(tmp.dir, 'kb-vocab');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'a.md'),
      '---\nid: KB-9101\ntitle: Gizmo tray jams\ncategory: hardware\nupdated: 2026-11-01\n---\nThe gizmo tray jams.\n',
    );
    writeFileSync(join(dir, 'synonyms.yaml'), 'version: 4\ngroups:\n  - [gizmo, doohickey]\n');
    const first = runCli(['kb', 'import', dir, '--db', db]);
    expect(first.stdout).toMatch(/vocabulary: version 4, 1 group\(s\), imported from .*synonyms\.yaml/);
    rmSync(join(dir, 'synonyms.yaml'));
    expect(runCli(['kb', 'import', dir, '--db', db]).stdout).toMatch(
      /vocabulary: version 4, 1 group\(s\), kept: imported from/,
    );
    writeFileSync(join(dir, 'synonyms.yaml'), 'version: 5\ngroups:\n  - [lonely]\n');
    const bad = runCli(['kb', 'import', dir, '--db', db]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/synonyms\.yaml: groups\[0\]: /);
    const app = openApp({ dbPath: db, policy: policyWith(), log: silent });
    expect((await app.embedded.kb.synonyms.current()).version).toBe(4);
    expect((await app.embedded.kb.find('doohickey', 5))[0]).toMatchObject({ id: 'KB-9101' });
    app.close();
  });
});

describe('itguard policy check', () => {
  it('prints the effective policy, or the errors with exit 2', () => {
    const ok = runCli(['policy', 'check']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/cap resets-per-user: 2 calls per day per target/);
    const f = join(tmp.dir, 'bad.yaml');
    writeFileSync(
      f,
      'version: 1\nstdio_principal: a\nprincipals: { a: { scopes: [kb:read] } }\ntools:\n  password_reset:\n    caps:\n      - { name: x, window: day, limit: 1 }\n      - { name: y, window: week, limit: -3 }\n',
    );
    const bad = runCli(['policy', 'check', f]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/tools\.password_reset\.caps\[1\]\.window: must be one of "hour", "day"/);
    expect(bad.stderr).toMatch(/tools\.password_reset\.caps\[1\]\.limit: expected a positive number/);
    expect(runCli(['serve', '--stdio', '--policy', f, '--db', db]).code).toBe(2);
  });

  it('warns, exit status unchanged, when one principal can both request an approval-tier action and decide it', async () => {
    const clean = runCli(['policy', 'check', '--json']);
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, warnings: [] });
    expect(runCli(['policy', 'check']).stdout).not.toMatch(/warning/);

    const f = join(tmp.dir, 'approver-installs.yaml');
    writeFileSync(f, demoPolicy().grant('it-approver', 'software:install').yaml());
    const text = runCli(['policy', 'check', f]);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    expect(text.stdout.split('\n').slice(0, 2)).toEqual([
      `policy OK (${f})`,
      expect.stringMatching(
        /^warning: principal it-approver holds software:install and approvals:decide: .*The store still refuses self-approval at decision time, but the separation of duties is weak/,
      ),
    ]);
    const json = runCli(['policy', 'check', f, '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; warnings: unknown[] };
    expect(parsed.ok).toBe(true);
    expect(parsed.warnings).toEqual([
      {
        code: 'approver_can_request',
        principal: 'it-approver',
        scopes: ['software:install', 'approvals:decide'],
        tools: ['software_install'],
        message: expect.stringMatching(/separation of duties is weak/),
      },
    ]);
  });

  it('unknown verbs and flags are usage errors (exit 2)', () => {
    expect(runCli(['frobnicate']).code).toBe(2);
    expect(runCli(['status', '--bogus']).code).toBe(2);
    expect(runCli(['kill', '--db', db]).code).toBe(2); // --reason is required
  });
});

describe('itguard token create', () => {
  it("refuses a principal the policy does not know: exit 2, one line naming it and the policy's principals", () => {
    const r = runCli(['token', 'create', '--principal', 'helpdesk-agnet', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /"helpdesk-agnet" is not a principal in the policy \(built-in demo policy\); its principals: .*helpdesk-agent/,
    );
    const ok = runCli(['token', 'create', '--principal', 'helpdesk-agent', '--db', db]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^\S+\n$/);
  });
});

describe('HTTP sessions', () => {
  it('an idle session expires and its id is then refused', async () => {
    const app = openApp({ dbPath: join(tmp.dir, 'idle.db'), policy: policyWith(), log: silent });
    // Idle expiry reads this clock: the test moves it past idleMs instead of sleeping through it.
    let clock = Date.now();
    const http = await startHttp(app, { host: '127.0.0.1', port: 0, idleMs: 1000, now: () => clock });
    const token = app.sqlite.tokens.create('helpdesk-agent', 'test').token;
    const transport = new StreamableHTTPClientTransport(new URL(`${http.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: 'idle', version: '1' });
    let stream: ServerResponse | undefined;
    http.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET') stream = res;
    });
    await client.connect(transport);
    // The client opens its GET stream after connect resolves. Once the server has answered it (the session was
    // touched before that), the client does nothing more, so the session's last use is the clock as it stands.
    await until('the GET stream to be answered', 5_000, () => (stream?.headersSent ? true : undefined));
    expect(http.sessions.size).toBe(1);
    clock += 1000;
    http.sessions.sweep();
    expect(http.sessions.size).toBe(1); // idle exactly idleMs: not yet
    clock += 1;
    http.sessions.sweep();
    expect(http.sessions.size).toBe(0);
    const res = await fetch(`${http.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': transport.sessionId!,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(404);
    await http.close();
    app.close();
  });
});
