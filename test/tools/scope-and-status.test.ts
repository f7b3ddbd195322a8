import { setKillSwitch } from '../../src/guard/operator.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { codeOf, connect, testApp, textOf } from '../helpers/harness.js';

let app: App;
beforeAll(() => {
  app = testApp();
});
afterAll(() => app.close());

describe('principal and scopes', () => {
  it('a principal without tickets:write does not see ticket_create and is refused when it calls it', async () => {
    const c = await connect(app, 'kb-reader');
    const names = (await c.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('kb_search');
    expect(names).toContain('ticket_get');
    expect(names).not.toContain('ticket_create');
    expect(names).not.toContain('ticket_comment');
    const before = await app.embedded.tickets.count();
    const r = await c.call('ticket_create', { summary: 'x', requester: 'jdoe', reason: 'r' });
    expect(r.isError).toBe(true);
    expect(codeOf(r)).toBe('SCOPE_DENIED');
    expect(textOf(r)).toMatch(/lacks scope tickets:write/);
    expect(await app.embedded.tickets.count()).toBe(before);
    const meta = r._meta!['itguard/error'] as Record<string, unknown>;
    expect(meta).toMatchObject({ code: 'SCOPE_DENIED', retryable: false });
    expect(typeof meta.trace_id).toBe('string');
    const rows = app.sqlite.auditStore.byTrace(meta.trace_id as string);
    expect(rows.map((x) => [x.event, x.code])).toEqual([['call.denied', 'SCOPE_DENIED']]);
  });

  it('an approver sees only guard_status of the IT tools', async () => {
    const c = await connect(app, 'it-approver');
    expect((await c.client.listTools()).tools.map((t) => t.name)).toEqual(['guard_status']);
  });

  it('an unknown tool name is refused as a result, not a protocol error', async () => {
    const c = await connect(app);
    const r = await c.call('rm_rf', {});
    expect(codeOf(r)).toBe('UNKNOWN_TOOL');
    // With arguments too (refused at scope, before validation), and audited as a denial.
    const r2 = await c.call('rm_rf', { path: '/' });
    expect(codeOf(r2)).toBe('UNKNOWN_TOOL');
    const trace = (r2._meta!['itguard/error'] as { trace_id: string }).trace_id;
    const rows = app.sqlite.auditStore.tail(20).filter((x) => x.trace_id === trace);
    expect(rows.map((x) => [x.event, x.code])).toEqual([['call.denied', 'UNKNOWN_TOOL']]);
  });
});

describe('software_catalog and request_status', () => {
  it('lists catalog ids with versions, cost, self-service and seats; filters by query', async () => {
    const c = await connect(app);
    const all = (await c.call('software_catalog')).structuredContent as {
      packages: { id: string; self_service: boolean; seats_used: number }[];
    };
    expect(all.packages.length).toBeGreaterThanOrEqual(15);
    expect(all.packages.find((p) => p.id === 'slack')).toMatchObject({ self_service: true, seats_used: 0 });
    const adobe = (await c.call('software_catalog', { query: 'adobe' })).structuredContent as {
      packages: { id: string }[];
    };
    expect(adobe.packages.map((p) => p.id)).toContain('adobe-acrobat-pro');
    expect(adobe.packages.every((p) => /adobe/.test(p.id))).toBe(true);
    expect(codeOf(await c.call('software_catalog', { query: '' }))).toBe('INVALID_ARGUMENT');
  });

  it('refuses principals without the scopes (software:read; any write scope for request_status)', async () => {
    const c = await connect(app, 'kb-reader');
    expect(codeOf(await c.call('software_catalog'))).toBe('SCOPE_DENIED');
    expect(codeOf(await c.call('request_status', { request_id: 'REQ-ABCDEF2345' }))).toBe('SCOPE_DENIED');
    const agent = await connect(app);
    expect(codeOf(await agent.call('request_status', { request_id: 'REQ-ABCDEF2345' }))).toBe('NOT_FOUND');
    expect(codeOf(await agent.call('request_status', { request_id: 'nope' }))).toBe('INVALID_ARGUMENT');
  });
});

describe('guard_status', () => {
  it('shows kill switch, principal, scopes and the task budget', async () => {
    const c = await connect(app);
    await c.call('kb_search', { query: 'vpn' });
    const r = await c.call('guard_status');
    const d = r.structuredContent as {
      principal: string;
      scopes: string[];
      kill_switch: { engaged: boolean };
      task: { id: string; identified_by: string; calls_used: number; calls_left: number };
    };
    expect(d.principal).toBe('helpdesk-agent');
    expect(d.scopes).toContain('tickets:write');
    expect(d.kill_switch.engaged).toBe(false);
    expect(d.task).toMatchObject({ identified_by: 'session' });
    expect(d.task.id).toMatch(/^session:/);
    expect(d.task.calls_used).toBe(1); // the kb_search; guard_status is a polling tool and not counted
    expect(d.task.calls_left).toBe(39);
    expect(textOf(r)).toMatch(/Kill switch: off/);
  });
});

describe('kill switch', () => {
  it('refuses every tool while engaged, and allows again after resume; both audited', async () => {
    const c = await connect(app);
    await setKillSwitch(app, true, 'drill', 'test');
    const r = await c.call('kb_search', { query: 'vpn' });
    expect(codeOf(r)).toBe('KILL_SWITCH_ENGAGED');
    expect(textOf(r)).toMatch(/drill/);
    await setKillSwitch(app, false, 'drill over', 'test');
    expect((await c.call('kb_search', { query: 'vpn' })).isError).toBeFalsy();
    const events = app.sqlite.auditStore.tail(50).map((x) => x.event);
    expect(events).toContain('killswitch.engaged');
    expect(events).toContain('killswitch.resumed');
  });
});

describe('audit', () => {
  it('records intent before outcome for writes, one record for reads, and the chain verifies', async () => {
    const c = await connect(app);
    const w = await c.call('ticket_create', {
      summary: 'Audit me',
      requester: 'jdoe',
      reason: 'test',
      idempotency_key: 'audit-test-0001',
    });
    const trace = (w._meta!['itguard/trace_id'] as string) ?? '';
    const rows = app.sqlite.auditStore.byTrace(trace);
    expect(rows.map((x) => x.event)).toEqual(['call.intent', 'call.outcome']);
    expect(rows[1]!.outcome).toBe('ok');
    expect(JSON.parse(rows[0]!.args!)).toMatchObject({ summary: 'Audit me', requester: 'jdoe' });
    const r = await c.call('kb_search', { query: 'wifi' });
    expect(app.sqlite.auditStore.byTrace(r._meta!['itguard/trace_id'] as string).map((x) => x.event)).toEqual([
      'call.outcome',
    ]);
    expect(app.sqlite.auditStore.verify().ok).toBe(true);
  });

  it('refuses UPDATE and DELETE on the audit table', () => {
    expect(() => app.sqlite.db.prepare("UPDATE audit SET actor = 'x' WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => app.sqlite.db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
  });
});
