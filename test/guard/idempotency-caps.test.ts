import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { codeOf, connect, testApp, textOf } from '../helpers/harness.js';
import { demoPolicy, type CapInput } from '../helpers/policy-builder.js';

const reason = 'test';

describe('idempotency', () => {
  it('a completed key replays the stored result with no new side effect, marked as a replay', async () => {
    const app = testApp();
    const c = await connect(app);
    const args = { summary: 'Laptop fan loud', requester: 'jdoe', reason, idempotency_key: 'retry-key-0001' };
    const first = await c.call('ticket_create', args);
    const again = await c.call('ticket_create', { ...args, reason: 'retrying after a timeout' });
    expect(again.isError).toBeFalsy();
    expect((again.structuredContent as { key: string }).key).toBe((first.structuredContent as { key: string }).key);
    expect(textOf(again)).toMatch(/^\[Replay:/);
    expect(again._meta!['itguard/replay']).toMatchObject({ original_trace_id: first._meta!['itguard/trace_id'] });
    expect(await app.embedded.tickets.count()).toBe(1);
    const rows = app.sqlite.auditStore.byTrace(again._meta!['itguard/trace_id'] as string);
    expect(rows.map((r) => r.event)).toEqual(['call.replay']);
    app.close();
  });

  it('same key with different arguments → IDEMPOTENCY_CONFLICT', async () => {
    const app = testApp();
    const c = await connect(app);
    await c.call('ticket_create', { summary: 'A', requester: 'jdoe', reason, idempotency_key: 'conflict-key-1' });
    const r = await c.call('ticket_create', {
      summary: 'B',
      requester: 'jdoe',
      reason,
      idempotency_key: 'conflict-key-1',
    });
    expect(codeOf(r)).toBe('IDEMPOTENCY_CONFLICT');
    expect(await app.embedded.tickets.count()).toBe(1);
    app.close();
  });

  it('keys are scoped to the principal', async () => {
    const app = testApp({
      policy: demoPolicy().principal('helpdesk-2', ['tickets:write', 'tickets:read']).parse(),
    });
    const a = await connect(app);
    const b = await connect(app, 'helpdesk-2');
    const args = { summary: 'Same', requester: 'jdoe', reason, idempotency_key: 'shared-key-01' };
    await a.call('ticket_create', args);
    const r = await b.call('ticket_create', args);
    expect(r.isError).toBeFalsy();
    expect(r._meta!['itguard/replay']).toBeUndefined();
    expect(await app.embedded.tickets.count()).toBe(2);
    app.close();
  });

  it('without a key, identical writes within the dedupe window are deduplicated; after it they run again', async () => {
    let now = Date.parse('2026-06-01T09:00:00Z');
    const app = testApp({ now: () => now });
    const c = await connect(app);
    const args = { summary: 'Printer offline', requester: 'asmith', reason };
    await c.call('ticket_create', args);
    const dup = await c.call('ticket_create', args);
    expect(dup._meta!['itguard/replay']).toBeDefined();
    expect(await app.embedded.tickets.count()).toBe(1);
    now += 16 * 60_000;
    const c2 = await connect(app);
    const later = await c2.call('ticket_create', args);
    expect(later._meta!['itguard/replay']).toBeUndefined();
    expect(await app.embedded.tickets.count()).toBe(2);
    app.close();
  });

  it('20 concurrent calls with one key → one side effect, the rest replays or IN_PROGRESS', async () => {
    for (let round = 0; round < 5; round++) {
      const app = testApp();
      // One session per call: in a single session the loop breaker would stop identical calls after 3.
      const clients = await Promise.all(Array.from({ length: 20 }, () => connect(app)));
      const args = { summary: 'Concurrent', requester: 'jdoe', reason, idempotency_key: `concurrent-${round}-key` };
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => clients[i]!.call('ticket_create', args)));
      const ok = results.filter((r) => !r.isError && !r._meta?.['itguard/replay']);
      const other = results.filter((r) => r._meta?.['itguard/replay'] || codeOf(r) === 'IN_PROGRESS');
      expect(ok).toHaveLength(1);
      expect(other).toHaveLength(19);
      expect(await app.embedded.tickets.count()).toBe(1);
      app.close();
    }
  });

  it('an in-flight record left by a dead process is resolved by asking the backend, not by running again', async () => {
    const app = testApp();
    const c = await connect(app);
    const args = { summary: 'Crash me', requester: 'jdoe', reason, idempotency_key: 'crash-key-001' };
    await c.call('ticket_create', args);
    // Simulate a crash after the side effect but before the record completed: the row goes back to in flight,
    // owned by a process that no longer exists.
    app.sqlite.db
      .prepare(
        "UPDATE idempotency SET state = 'in_flight', result = NULL, owner = 'vm:999999999:dead' WHERE key = 'k:crash-key-001'",
      )
      .run();
    app.sqlite.db
      .prepare("UPDATE idempotency SET owner = ? || ':999999999:dead' WHERE key = 'k:crash-key-001'")
      .run((await import('node:os')).hostname());
    const retry = await c.call('ticket_create', args);
    expect(retry.isError).toBeFalsy();
    expect(retry._meta!['itguard/replay']).toBeDefined();
    expect(await app.embedded.tickets.count()).toBe(1);
    // And if the backend never saw it, the retry runs it once.
    app.sqlite.db.prepare("DELETE FROM tickets WHERE summary = 'Crash me'").run();
    app.sqlite.db
      .prepare(
        "UPDATE idempotency SET state = 'in_flight', result = NULL, owner = ? || ':999999999:dead' WHERE key = 'k:crash-key-001'",
      )
      .run((await import('node:os')).hostname());
    const c2 = await connect(app);
    const rerun = await c2.call('ticket_create', args);
    expect(rerun.isError).toBeFalsy();
    expect(rerun._meta!['itguard/replay']).toBeUndefined();
    expect(await app.embedded.tickets.count()).toBe(1);
    app.close();
  });
});

describe('aggregate caps', () => {
  const capped = (rules: CapInput[], timezone = 'UTC') =>
    demoPolicy().caps('ticket_create', rules).set('timezone', timezone).task({ max_calls: 1000 }).parse();

  it('stops at the cap with CAP_EXCEEDED naming the rule, used/limit and resets_at; releases on refusal', async () => {
    const app = testApp({ policy: capped([{ name: 'tickets-per-day', window: 'day', limit: 3, alarm_at: 2 }]) });
    const c = await connect(app);
    const notes: unknown[] = [];
    c.client.setNotificationHandler(
      (await import('@modelcontextprotocol/sdk/types.js')).LoggingMessageNotificationSchema,
      (n) => void notes.push(n.params),
    );
    for (let i = 0; i < 3; i++)
      expect((await c.call('ticket_create', { summary: `T${i}`, requester: 'jdoe', reason })).isError).toBeFalsy();
    const r = await c.call('ticket_create', { summary: 'T3', requester: 'jdoe', reason });
    expect(codeOf(r)).toBe('CAP_EXCEEDED');
    expect(r._meta!['itguard/error']).toMatchObject({
      rule: 'tickets-per-day',
      used: 3,
      limit: 3,
      resets_at: expect.stringMatching(/T00:00:00.000Z$/),
    });
    expect(textOf(r)).toMatch(/tickets-per-day.*3\/3 calls used this day, nothing is left .*; it resets at/);
    expect(r._meta!['itguard/error']).toMatchObject({ amount: 1, remaining: 0 });
    expect(await app.embedded.tickets.count()).toBe(3);
    // one alarm at alarm_at, once
    expect(app.sqlite.auditStore.tail(100).filter((x) => x.event === 'alarm' && x.code === 'CAP_ALARM')).toHaveLength(
      1,
    );
    // guard_status shows it
    const s = await c.call('guard_status');
    expect(
      (s.structuredContent as { caps: { rule: string; used: number; limit: number }[] }).caps.find(
        (x) => x.rule === 'tickets-per-day',
      ),
    ).toMatchObject({ used: 3, limit: 3 });
    // The alarm's notification is sent (awaited) before its call answers, on the same ordered transport: once the
    // later guard_status round trip is back, every notification of the calls before it has been delivered.
    expect(notes).toHaveLength(1);
    app.close();
  });

  it('a call too large for what is left says how much it asked for and how much is left: a smaller one may fit', async () => {
    const app = testApp({
      policy: demoPolicy().approvals({ wait_seconds: 0 }).parse(),
    });
    const rule = app.policy.tools.software_install.caps.find((x) => x.name === 'license-spend-per-day')!;
    expect(app.sqlite.caps.reserve([{ rule, scopeKey: '*', amount: 234 }], app.now()).ok).toBe(true);
    const c = await connect(app);
    const r = await c.call('software_install', { user: 'asmith', package: 'autocad', reason });
    expect(codeOf(r)).toBe('CAP_EXCEEDED');
    expect(r._meta!['itguard/error']).toMatchObject({
      rule: 'license-spend-per-day',
      amount: 1975,
      used: 234,
      limit: 2000,
      remaining: 1766,
      measure: 'cost_usd',
      resets_at: expect.stringMatching(/Z$/),
    });
    const text = textOf(r);
    expect(text).toMatch(/has 1766\.00 USD left this day \(234\.00\/2000\.00 used\); this call needs 1975\.00 USD/);
    expect(text).toMatch(/Next: A smaller action \(at most 1766\.00 USD\) would still fit/);
    expect(text).not.toMatch(/reached/);
    // And indeed a cheaper install still fits.
    expect(codeOf(await c.call('software_install', { user: 'jdoe', package: 'figma', reason }))).not.toBe(
      'CAP_EXCEEDED',
    );
    app.close();
  });

  it('a per-requester cap counts each requester on its own', async () => {
    const app = testApp({ policy: capped([{ name: 'per-req', window: 'hour', per: 'requester', limit: 1 }]) });
    const c = await connect(app);
    expect((await c.call('ticket_create', { summary: 'x', requester: 'jdoe', reason })).isError).toBeFalsy();
    expect(codeOf(await c.call('ticket_create', { summary: 'y', requester: 'jdoe', reason }))).toBe('CAP_EXCEEDED');
    expect((await c.call('ticket_create', { summary: 'z', requester: 'asmith', reason })).isError).toBeFalsy();
    app.close();
  });

  it('a refusal after the reservation releases it: a declined confirmation spends nothing', async () => {
    const app = testApp({
      policy: demoPolicy()
        .tool('ticket_create', { tier: 'confirm', caps: [{ name: 'one', window: 'day', limit: 1 }] }, { replace: true })
        .parse(),
    });
    const c = await connect(app, 'helpdesk-agent', { elicitation: { form: {} } });
    let answer: ElicitResult = { action: 'decline' };
    c.client.setRequestHandler(ElicitRequestSchema, async () => answer);
    // Reserved at the caps step, then refused at the approval step: the reservation is given back.
    expect(codeOf(await c.call('ticket_create', { summary: 'x', requester: 'jdoe', reason }))).toBe('APPROVAL_DENIED');
    expect(app.sqlite.caps.used(app.policy.tools.ticket_create.caps[0]!, '*', app.now())).toBe(0);
    answer = { action: 'accept', content: { approve: true } };
    expect((await c.call('ticket_create', { summary: 'x2', requester: 'jdoe', reason })).isError).toBeFalsy();
    expect(codeOf(await c.call('ticket_create', { summary: 'x3', requester: 'jdoe', reason }))).toBe('CAP_EXCEEDED');
    app.close();
  });

  it('replays spend no cap', async () => {
    const app = testApp({ policy: capped([{ name: 'two', window: 'day', limit: 2 }]) });
    const c = await connect(app);
    const args = { summary: 'same', requester: 'jdoe', reason, idempotency_key: 'cap-replay-1' };
    await c.call('ticket_create', args);
    await c.call('ticket_create', args);
    await c.call('ticket_create', args);
    expect((await c.call('ticket_create', { summary: 'other', requester: 'jdoe', reason })).isError).toBeFalsy();
    app.close();
  });

  it('the day window resets at local midnight of the policy time zone (injected clock)', async () => {
    let now = Date.parse('2026-01-15T22:30:00Z'); // 23:30 in Berlin
    const app = testApp({
      now: () => now,
      policy: capped([{ name: 'one', window: 'day', limit: 1 }], 'Europe/Berlin'),
    });
    const c = await connect(app);
    const first = await c.call('ticket_create', { summary: 'a', requester: 'jdoe', reason });
    expect(textOf(first)).toMatch(/Opened/);
    const r = await c.call('ticket_create', { summary: 'b', requester: 'jdoe', reason });
    expect(r._meta!['itguard/error']).toMatchObject({ code: 'CAP_EXCEEDED', resets_at: '2026-01-15T23:00:00.000Z' });
    now = Date.parse('2026-01-15T22:59:59Z');
    expect(codeOf(await c.call('ticket_create', { summary: 'c', requester: 'jdoe', reason }))).toBe('CAP_EXCEEDED');
    now = Date.parse('2026-01-15T23:00:00Z'); // midnight in Berlin, still Jan 15 in UTC
    const fresh = await connect(app); // the first session has used its 30 minutes by now
    expect((await fresh.call('ticket_create', { summary: 'd', requester: 'jdoe', reason })).isError).toBeFalsy();
    app.close();
  });

  it('reconnecting does not reset caps (they live in the database); task budgets are per task', async () => {
    const app = testApp({ policy: capped([{ name: 'p', window: 'day', per: 'principal', limit: 2 }]) });
    const a = await connect(app);
    await a.call('ticket_create', { summary: 'a', requester: 'jdoe', reason });
    await a.call('ticket_create', { summary: 'b', requester: 'jdoe', reason });
    const b = await connect(app);
    expect(codeOf(await b.call('ticket_create', { summary: 'c', requester: 'jdoe', reason }))).toBe('CAP_EXCEEDED');
    const s = await b.call('guard_status');
    // The refused call counted (every call does); guard_status, a polling tool, does not.
    expect((s.structuredContent as { task: { calls_used: number } }).task.calls_used).toBe(1);
    app.close();
  });
});

describe('task budget', () => {
  it('max_minutes and max_result_bytes refuse at their bounds', async () => {
    let now = Date.parse('2026-06-01T09:00:00Z');
    const app = testApp({
      now: () => now,
      policy: demoPolicy().task({ max_result_bytes: 3000 }).parse(),
    });
    const c = await connect(app);
    expect((await c.call('kb_search', { query: 'vpn', limit: 1 })).isError).toBeFalsy();
    let r;
    for (let i = 0; i < 10 && !r; i++) {
      const x = await c.call('kb_search', { query: `printer wifi outlook ${i}`, limit: 5 });
      if (codeOf(x) === 'BUDGET_EXHAUSTED') r = x;
    }
    expect(textOf(r!)).toMatch(/result bytes/);
    // max_minutes counts from the task's first call; a call every 10 minutes keeps it open (idle_minutes 30).
    const c2 = await connect(app);
    for (let i = 0; i < 3; i++) {
      expect((await c2.call('kb_search', { query: `vpn ${i}`, limit: 1 })).isError).toBeFalsy();
      now += 10 * 60_000;
    }
    const t = await c2.call('kb_search', { query: 'vpn', limit: 1 });
    expect(codeOf(t)).toBe('BUDGET_EXHAUSTED');
    expect(textOf(t)).toMatch(/minutes: 30\/30 \(task\.max_minutes\)/);
    // A new conversation is a new task.
    expect((await (await connect(app)).call('kb_search', { query: 'vpn', limit: 1 })).isError).toBeFalsy();
    app.close();
  });

  it('per-tool breaker override', async () => {
    const app = testApp({
      policy: demoPolicy().tool('kb_search', { max_identical_calls: 1 }).parse(),
    });
    const c = await connect(app);
    await c.call('kb_search', { query: 'vpn' });
    expect(codeOf(await c.call('kb_search', { query: 'vpn' }))).toBe('LOOP_DETECTED');
    expect(codeOf(await c.call('guard_status'))).toBe('LOOP_DETECTED');
    app.close();
  });
});
