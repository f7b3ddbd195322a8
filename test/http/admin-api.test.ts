/**
 * The admin API over real HTTP (startHttp in process) against its own OpenAPI document: every documented path is
 * exercised, every response is validated against the document's schema for its status, every write is refused
 * without approvals:decide (and nothing changes), reads without audit:read, and decisions follow the console's rules
 * through the one decide, audited with actor admin:<principal>.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { startHttp, type RunningHttp } from '../../src/http/app.js';
import type { NewApproval } from '../../src/store/sqlite/approvals-store.js';
import { silent } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';

interface Op {
  path: string;
  method: 'get' | 'post';
  operationId: string;
  security: { bearer: string[] }[];
  responses: Record<string, { content: { 'application/json': { schema: { $ref: string } } } }>;
}

let app: App;
let http: RunningHttp;
let base: string;
let doc: { openapi: string; paths: Record<string, Record<string, Op>>; components: { schemas: object } };
const ajv = new Ajv2020({ strict: false, allErrors: true });
const tokens: Record<string, string> = {};
const exercised = new Set<string>();

const POLICY = demoPolicy().principal('auditor', ['audit:read']).principal('decider', ['approvals:decide']);

function request(over: Partial<NewApproval> = {}) {
  return app.sqlite.approvals.create({
    tier: 'approval',
    principal: 'helpdesk-agent',
    sessionId: 's1',
    tool: 'software_install',
    args: { user: 'jdoe', package: 'figma', n: Math.random() },
    argsSha: String(Math.random()).padEnd(64, '0'),
    summary: 'Install Figma for jdoe',
    reason: 'design work',
    target: 'jdoe',
    caps: [{ rule: 'license-spend-per-day', measure: 'cost_usd', amount: 180, used: 0, limit: 2000 }],
    capItems: [],
    idemKey: undefined,
    requestId: undefined,
    traceId: `t-${Math.random()}`,
    ttlMs: 3600_000,
    withVerifyLink: false,
    ...over,
  }).row;
}

/** Calls the API as `who`, checks the answer against the document (its path, method and status), returns it. */
async function call(
  who: string | undefined,
  method: 'get' | 'post',
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${base}${path}`, {
    method: method.toUpperCase(),
    headers: {
      ...(who ? { authorization: `Bearer ${tokens[who]}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await r.json()) as Record<string, unknown>;
  const template = Object.keys(doc.paths).find((p) =>
    new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(path.split('?')[0]!),
  );
  expect(template, `${path} is not in the document`).toBeDefined();
  const op = doc.paths[template!]![method];
  expect(op, `${method} ${template} is not in the document`).toBeDefined();
  const resp = op!.responses[String(r.status)];
  expect(resp, `${method} ${path} answered ${r.status}, which the document does not list`).toBeDefined();
  const validate = ajv.getSchema(`admin#${resp!.content['application/json'].schema.$ref.slice(1)}`)!;
  expect(
    validate(json),
    `${method} ${path} ${r.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(json)}`,
  ).toBe(true);
  if (r.status === 200) exercised.add(`${method} ${template}`);
  return { status: r.status, json };
}

beforeAll(async () => {
  app = openApp({ dbPath: ':memory:', policy: POLICY.parse(), log: silent, executorPollMs: 3_600_000 });
  for (const p of ['it-approver', 'helpdesk-agent', 'auditor', 'decider'])
    tokens[p] = app.sqlite.tokens.create(p, 'test').token;
  http = await startHttp(app, { host: '127.0.0.1', port: 0 });
  base = `${http.url}/admin/v1`;
  const r = await fetch(`${base}/openapi.json`);
  expect(r.status).toBe(200);
  doc = (await r.json()) as typeof doc;
  ajv.addSchema(doc, 'admin');
});
afterAll(async () => {
  await http?.close();
  app?.close();
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 whose schemas compile, with a server URL under /admin/v1', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect((doc as unknown as { servers: { url: string }[] }).servers[0]!.url).toBe(base);
    for (const name of Object.keys(doc.components.schemas))
      expect(ajv.getSchema(`admin#/components/schemas/${name}`), name).toBeDefined();
  });
});

describe('approvals', () => {
  it('list, get, approve (with a note) and deny, audited as admin:<principal>', async () => {
    const a = request();
    const b = request();
    const list = await call('it-approver', 'get', '/approvals');
    expect((list.json.approvals as { id: string }[]).map((x) => x.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    const got = await call('auditor', 'get', `/approvals/${a.id}`);
    expect(got.json).toMatchObject({ id: a.id, status: 'pending', requested_by: 'helpdesk-agent' });
    const ok = await call('it-approver', 'post', `/approvals/${a.id}/approve`, { note: 'fine' });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ id: a.id, status: 'approved', decided_by: 'admin:it-approver', note: 'fine' });
    const no = await call('decider', 'post', `/approvals/${b.id}/deny`, {});
    expect(no.json).toMatchObject({ status: 'denied', decided_by: 'admin:decider' });
    const all = await call('auditor', 'get', '/approvals?status=all&limit=50');
    expect((all.json.approvals as unknown[]).length).toBeGreaterThanOrEqual(2);
    const audit = app.sqlite.auditStore.tail(20);
    expect(audit.find((r) => r.event === 'approval.approved')).toMatchObject({ actor: 'admin:it-approver' });
    expect(JSON.parse(audit.find((r) => r.event === 'approval.approved')!.detail!)).toMatchObject({
      request_id: a.id,
      via: 'admin',
      note: 'fine',
    });
  });

  it('refuses what the console refuses: decided twice (409), unknown (404), self-approval (403), mfa (403)', async () => {
    const a = request();
    await call('it-approver', 'post', `/approvals/${a.id}/deny`, {});
    const twice = await call('it-approver', 'post', `/approvals/${a.id}/approve`, {});
    expect(twice).toMatchObject({ status: 409, json: { error: { code: 'NOT_PENDING' } } });
    expect((await call('it-approver', 'get', '/approvals/REQ-NOPE')).status).toBe(404);
    expect((await call('it-approver', 'post', '/approvals/REQ-NOPE/approve', {})).status).toBe(404);
    const own = request({ principal: 'decider' });
    const self = await call('decider', 'post', `/approvals/${own.id}/approve`, {});
    expect(self).toMatchObject({ status: 403, json: { error: { code: 'SELF_APPROVAL' } } });
    const m = request({ tier: 'mfa', withVerifyLink: true });
    const mfa = await call('it-approver', 'post', `/approvals/${m.id}/approve`, {});
    expect(mfa).toMatchObject({ status: 403, json: { error: { code: 'WRONG_TIER' } } });
    expect(app.sqlite.approvals.get(own.id)!.status).toBe('pending');
    expect(app.sqlite.auditStore.tail(10).filter((r) => r.event === 'approval.refused').length).toBeGreaterThanOrEqual(
      2,
    );
  });

  it('bad input names the field: a note too long, an unknown key, JSON that is not JSON, a bad query', async () => {
    const a = request();
    const long = await call('it-approver', 'post', `/approvals/${a.id}/approve`, { note: 'x'.repeat(501) });
    expect(long).toMatchObject({ status: 400, json: { error: { code: 'INVALID_ARGUMENT' } } });
    expect(String((long.json.error as { message: string }).message)).toMatch(/note/);
    const extra = await call('it-approver', 'post', `/approvals/${a.id}/approve`, { approve: true });
    expect(extra.status).toBe(400);
    const r = await fetch(`${base}/approvals/${a.id}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens['it-approver']}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: { code: 'INVALID_JSON', message: 'the body is not valid JSON' } });
    expect((await call('it-approver', 'get', '/approvals?status=maybe')).status).toBe(400);
    expect(app.sqlite.approvals.get(a.id)!.status).toBe('pending');
  });
});

describe('kill switch, tasks, budgets, breakers', () => {
  it('engage and release, audited with the caller, a missing reason refused', async () => {
    const on = await call('decider', 'post', '/kill-switch/engage', { reason: 'incident 42' });
    expect(on.json).toMatchObject({ engaged: true, reason: 'incident 42', actor: 'admin:decider' });
    expect((await call('auditor', 'get', '/kill-switch')).json).toMatchObject({ engaged: true });
    expect(app.sqlite.killSwitch.state().engaged).toBe(true);
    const missing = await call('decider', 'post', '/kill-switch/engage', {});
    expect(missing.status).toBe(400);
    const off = await call('it-approver', 'post', '/kill-switch/release', { reason: 'resolved' });
    expect(off.json).toMatchObject({ engaged: false, actor: 'admin:it-approver' });
    const events = app.sqlite.auditStore.tail(10).map((r) => [r.event, r.actor]);
    expect(events).toEqual(
      expect.arrayContaining([
        ['killswitch.engaged', 'admin:decider'],
        ['killswitch.resumed', 'admin:it-approver'],
      ]),
    );
  });

  it('tasks and budgets read; breaker reset by principal and by task (404 for an unknown one)', async () => {
    expect((await call('auditor', 'get', '/tasks')).json).toMatchObject({ open: expect.any(Number) });
    expect((await call('auditor', 'get', '/tasks?tripped=true')).status).toBe(200);
    const b = await call('auditor', 'get', '/budgets');
    expect((b.json.budgets as { rule: string }[]).length).toBeGreaterThan(0);
    const p = await call('it-approver', 'post', '/breakers/reset', { principal: 'helpdesk-agent' });
    expect(p.json).toEqual({
      reset: [{ level: 'principal', principal: 'helpdesk-agent', task: null, was_tripped: false }],
    });
    expect(app.sqlite.auditStore.tail(1)[0]).toMatchObject({ event: 'breaker.reset', actor: 'admin:it-approver' });
    expect((await call('it-approver', 'post', '/breakers/reset', { task: 'no-such-task' })).status).toBe(404);
    expect((await call('it-approver', 'post', '/breakers/reset', { principal: 'nobody' })).status).toBe(404);
    expect((await call('it-approver', 'post', '/breakers/reset', { principal: 'a', task: 'b' })).status).toBe(400);
  });
});

describe('notifications and audit', () => {
  it('notifications list; retry of an unknown one is 404', async () => {
    const l = await call('auditor', 'get', '/notifications?limit=10');
    expect(Array.isArray(l.json.notifications)).toBe(true);
    expect((await call('auditor', 'get', '/notifications?status=failed')).status).toBe(200);
    expect((await call('it-approver', 'post', '/notifications/N-NOPE/retry')).status).toBe(404);
    // A delivery that failed for good: the retry makes it due again, audited.
    const a = request();
    app.sqlite.notifyStore.enqueue([
      { requestId: a.id, kind: 'requested', channel: 'webhook', recipient: 'hook:test', payload: { x: 1 } },
    ]);
    const [job] = app.sqlite.notifyStore.claimDue(60_000, 20, a.id);
    app.sqlite.notifyStore.attemptFailed(job!.id, 'HTTP 500', undefined);
    const failed = await call('auditor', 'get', `/notifications?status=failed&request_id=${a.id}`);
    expect(failed.json.notifications).toMatchObject([{ id: job!.id, status: 'failed', last_error: 'HTTP 500' }]);
    const retried = await call('it-approver', 'post', `/notifications/${job!.id}/retry`);
    expect(retried.json).toMatchObject({ id: job!.id, status: 'pending', attempts: 0 });
    expect(app.sqlite.auditStore.tail(1)[0]).toMatchObject({ event: 'notify.retried', actor: 'admin:it-approver' });
    expect((await call('it-approver', 'post', `/notifications/${job!.id}/retry`)).status).toBe(409);
  });

  it('audit tail, show by trace and by task, verify (and a head it does not reach)', async () => {
    const t = await call('auditor', 'get', '/audit?n=5');
    const records = t.json.records as { seq: number; trace_id: string | null; ts: string }[];
    expect(records.length).toBe(5);
    expect(records[0]!.ts).toMatch(/^\d{4}-\d\d-\d\dT/);
    const a = request();
    await call('it-approver', 'post', `/approvals/${a.id}/deny`, {});
    const shown = await call('auditor', 'get', `/audit/traces/${encodeURIComponent(a.trace_id)}`);
    expect((shown.json.records as { event: string }[]).some((r) => r.event === 'approval.denied')).toBe(true);
    expect((await call('auditor', 'get', '/audit/traces/none-such')).status).toBe(404);
    expect((await call('auditor', 'get', '/audit/tasks/none-such')).status).toBe(404);
    const v = await call('auditor', 'get', '/audit/verify');
    expect(v.json).toMatchObject({ ok: true });
    const head = v.json.head as { seq: number; hash: string };
    expect((await call('auditor', 'get', `/audit/verify?expect_head=${head.seq}:${head.hash}`)).json.ok).toBe(true);
    const far = await call('auditor', 'get', `/audit/verify?expect_head=${head.seq + 100}:${'a'.repeat(64)}`);
    expect(far.json.ok).toBe(false);
    expect((await call('auditor', 'get', '/audit/verify?expect_head=nope')).status).toBe(400);
  });

  it('audit show by task: records of a task id', async () => {
    app.sqlite.auditStore.append({ event: 'test.marker', actor: 'test', taskId: 'task-xyz' });
    const r = await call('auditor', 'get', '/audit/tasks/task-xyz');
    expect((r.json.records as { task_id: string }[])[0]!.task_id).toBe('task-xyz');
  });
});

describe('authentication and scopes', () => {
  it('every documented operation: 401 without a token, 401 with a bad one', async () => {
    for (const [path, ops] of Object.entries(doc.paths))
      for (const method of Object.keys(ops) as ('get' | 'post')[]) {
        const concrete = path.replace(/\{\w+\}/g, 'X');
        const r = await call(undefined, method, concrete, method === 'post' ? {} : undefined);
        expect(r.status, `${method} ${path}`).toBe(401);
        expect(r.json).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
      }
    const bad = await fetch(`${base}/approvals`, { headers: { authorization: 'Bearer itg_nope_nope' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('every write is refused without approvals:decide, and nothing changes', async () => {
    const a = request();
    const writes = Object.entries(doc.paths).flatMap(([path, ops]) => (ops.post ? [[path, ops.post] as const] : []));
    expect(writes.length).toBe(6);
    for (const [path, op] of writes) {
      expect(op.security[0]!.bearer).toEqual(['approvals:decide']);
      const concrete = path.replace('{id}', a.id);
      for (const who of ['auditor', 'helpdesk-agent']) {
        const r = await call(who, 'post', concrete, path.includes('kill-switch') ? { reason: 'x' } : {});
        expect(r.status, `${who} ${path}`).toBe(403);
        expect(r.json).toMatchObject({ error: { code: 'SCOPE_DENIED' } });
      }
    }
    expect(app.sqlite.approvals.get(a.id)!.status).toBe('pending');
    expect(app.sqlite.killSwitch.state().engaged).toBe(false);
  });

  it('reads need audit:read (approvals and the kill switch also approvals:decide)', async () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (!ops.get) continue;
      const scopes = ops.get.security[0]!.bearer;
      expect(scopes).toContain('audit:read');
      const concrete = path.replace('{id}', 'X');
      const agent = await call('helpdesk-agent', 'get', concrete);
      expect(agent.status, path).toBe(403);
      const decider = await call('decider', 'get', concrete);
      expect(decider.status === 403, path).toBe(!scopes.includes('approvals:decide'));
    }
  });

  it('every documented operation was exercised with a 200', () => {
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(documented.filter((d) => !exercised.has(d))).toEqual([]);
  });
});
