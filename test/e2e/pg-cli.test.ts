/**
 * The CLI on a PostgreSQL store (issue 20 item 3, DESIGN §7): every admin verb works on either store. A running
 * replica on a real PostgreSQL makes some state (calls, a task, an approval request, a delivery); then each verb runs
 * as an operator would, with `--json`, against the same database. Last, the store goes away: `/healthz` answers 503
 * and a call is refused (fail closed), never served.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { codeOf, until } from '../helpers/planner.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { startPg, type Pg } from '../helpers/pg.js';
import { v2Http, v2Task } from '../helpers/v2-clients.js';

let pg: Pg;
let tmp: ReturnType<typeof tempDir>;
let policy: string;
let env: Record<string, string>;
let server: Served;
let token: string;

const cli = (...args: string[]) => runCli([...args, '--policy', policy], env);
const json = (...args: string[]) => {
  const r = cli(...args, '--json');
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as unknown;
};

beforeAll(async () => {
  pg = await startPg({ database: 'cli' });
  tmp = tempDir();
  policy = demoPolicy()
    .edit((d) => {
      d.store = { kind: 'postgres', url_env: 'ITGUARD_PG_URL' };
    })
    .write(tmp.dir);
  env = { ITGUARD_PG_URL: pg.url, ITGUARD_AUDIT_KEY: 'pg-cli-audit-key-0123456789' };
  server = await serveHttp(join(tmp.dir, 'never.db'), ['--policy', policy], env);
  const made = cli('token', 'create', '--principal', 'helpdesk-agent');
  expect(made.code, made.stderr).toBe(0);
  token = made.stdout.trim();
  // Some state: a task's calls, a ticket, an approval request waiting on a human, a password reset's delivery.
  const agent = await v2Task('modern', server.url, token, 'pg-cli-task', 'meta');
  expect(codeOf(await agent.call('kb_search', { query: 'vpn' }))).toBeUndefined();
  expect(
    codeOf(await agent.call('ticket_create', { summary: 'printer', requester: 'jdoe', reason: 'user asked' })),
  ).toBeUndefined();
  expect(
    codeOf(
      await agent.call('software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'needs to sign' }),
    ),
  ).toBe('APPROVAL_PENDING');
  await agent.close();
}, 90_000);

afterAll(async () => {
  await server?.stop();
  await pg?.stop();
  tmp?.cleanup();
});

describe('the CLI on a PostgreSQL store', () => {
  it('reports: status, caps, budgets, tasks, token list, approvals list, audit tail/show/verify, outbox, report, directory', () => {
    expect(json('status')).toMatchObject({ kill_switch: { engaged: false } });
    expect(Array.isArray(json('caps'))).toBe(true);
    expect(json('budgets')).toBeTruthy();
    const { tasks } = json('tasks') as { tasks: { task: string; calls: number }[] };
    expect(tasks.find((t) => t.task === 'pg-cli-task')?.calls).toBe(3);
    expect((json('token', 'list') as unknown[]).length).toBeGreaterThanOrEqual(1);
    const pending = json('approvals', 'list') as { id: string; tool: string }[];
    expect(pending.map((p) => p.tool)).toContain('software_install');
    const tail = json('audit', 'tail', '--n', '50') as { event: string; trace_id: string | null }[];
    expect(tail.some((r) => r.event === 'call.outcome')).toBe(true);
    const trace = tail.find((r) => r.event === 'call.outcome')!.trace_id!;
    expect((json('audit', 'show', trace) as unknown[]).length).toBeGreaterThan(0);
    const byTask = json('audit', 'show', '--task', 'pg-cli-task') as { records: unknown[] };
    expect(byTask.records.length).toBeGreaterThan(0);
    expect(json('audit', 'verify')).toMatchObject({ ok: true });
    expect(Array.isArray(json('outbox'))).toBe(true);
    expect(json('report', 'autonomy')).toBeTruthy();
    expect((json('directory', 'list') as { username: string }[]).map((u) => u.username)).toContain('jdoe');
    expect(json('policy', 'check', '--probe')).toMatchObject({ store: { kind: 'postgres', ok: true } });
  });

  it('acts: approvals deny, breaker reset, kill and resume, token revoke — each audited, the chain verifies', async () => {
    const [req] = json('approvals', 'list') as { id: string }[];
    expect(json('approvals', 'deny', req!.id, '--note', 'not this week')).toMatchObject({
      ok: true,
      request: { status: 'denied' },
    });
    expect(cli('breaker', 'reset', '--task', 'pg-cli-task').code).toBeLessThanOrEqual(1);
    expect(json('kill', '--reason', 'cli drill')).toMatchObject({ engaged: true });
    const agent = await v2Http('modern', server.url, token);
    try {
      await until('the replica sees the switch', 2000, async () =>
        codeOf(await agent.call('kb_search', { query: 'vpn' })) === 'KILL_SWITCH_ENGAGED' ? true : undefined,
      );
      expect(json('resume', '--reason', 'drill over')).toMatchObject({ engaged: false });
    } finally {
      await agent.close();
    }
    const tokens = json('token', 'list') as { id: string; revoked_at: string | null }[];
    expect(json('token', 'revoke', tokens[0]!.id)).toBeTruthy();
    const events = (json('audit', 'tail', '--n', '20') as { event: string }[]).map((r) => r.event);
    expect(events).toEqual(
      expect.arrayContaining(['approval.denied', 'killswitch.engaged', 'killswitch.resumed', 'token.revoked']),
    );
    expect(json('audit', 'verify')).toMatchObject({ ok: true });
  });

  it('the store gone: /healthz answers 503 and calls are refused, never served', async () => {
    const made = cli('token', 'create', '--principal', 'helpdesk-agent');
    expect(made.code, made.stderr).toBe(0);
    const agent = await v2Http('modern', server.url, made.stdout.trim());
    await pg.stop();
    try {
      const health = await fetch(server.url.replace(/\/mcp$/, '/healthz'));
      expect(health.status).toBe(503);
      const body = (await health.json()) as { store: { kind: string; ok: boolean; detail?: string } };
      expect(body.store).toMatchObject({ kind: 'postgres', ok: false });
      expect(JSON.stringify(body)).not.toContain('password');
      // Refused before anything runs: 503 with the reason (the token cannot be checked), or a refused call.
      const r = await agent.call('ticket_create', { summary: 'no store', requester: 'jdoe', reason: 'outage' }).then(
        (x) => ({ refused: x.isError === true, status: 200 }),
        (e: { status?: number; message?: string }) => ({ refused: true, status: e.status, message: e.message }),
      );
      expect(r).toMatchObject({ refused: true });
      if (r.status !== 200) expect(r).toMatchObject({ status: 503, message: expect.stringMatching(/fail closed/) });
      // The CLI says what is wrong in one sentence, exit 2.
      const s = cli('status');
      expect(s.code).toBe(2);
      expect(s.stderr).toMatch(/PostgreSQL store/);
    } finally {
      await agent.close().catch(() => undefined);
    }
  });
});
